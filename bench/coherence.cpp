// What each caching policy costs, as ratios to a baseline measured in the
// same run on the same machine. On 2 ranks, rank 0 measures against data
// homed on rank 1 (rank 1 serves it). CSV on stdout:
//
//   policy,measure,unit_bytes,x,median_ns,baseline,baseline_ns,ratio
//
// measures (x is what varies within one):
//   hit_read / hit_write  ns per element on a valid copy   vs a local std::vector load / store
//   hit_read_cyclic, hit_write_cyclic, hit_read_block_cyclic, hit_write_block_cyclic
//                         the same over a whole cyclic / block_cyclic(64)
//                         array (owner and local index per element)
//   span_read / span_write  the same through read_span / write_span (write
//                         spans: write_shared)               vs the same
//   miss                  ns per miss (one unit fetched; units walked
//                         downwards, so no readahead)        vs a direct rget of one unit
//   miss_readahead        the same walked upwards: consecutive misses
//                         fetch the following units ahead     vs a direct rget of one unit
//   miss_home_computing   the same while the home computes and never calls
//                         into dsm                          vs a direct rget of one unit, the
//                                                           home computing too
//   miss_cold             read_only's: every miss is a first touch of the
//                         mirror's pages, page faults included
//   release               ns per dirty unit at unlock, x = dirty bytes per unit
//                                                           vs rput of those bytes + fence
//   write_miss            single_writer: ns per unit taken exclusively (grant
//                         with data, owner's twin)           vs a direct rget of one unit
//   write_back            single_writer: ns per owned unit at a barrier
//                         (changed runs sent home), x = dirty bytes per unit
//                                                           vs an idle barrier + rput of
//                                                           those bytes (+ fence), and vs
//                                                           the same with whole units put
//   sweep_one_line        ns to miss and read 1 line of a unit (walked
//                         downwards)                      vs a direct rget of one 64 B line
//   sweep_all_lines       ns to miss and read every line (upwards, with
//                         readahead)                      vs the same
//   combine_hit           reduction<sum>: ns per a[i] += v into this rank's
//                         contributions                    vs v added into a local std::vector
//   pattern_reduction     reduction<sum>: ns per element for every rank adding
//                         into every element (its contribution span), a
//                         barrier, and reading them all
//                                                           vs the same pattern on direct: a row
//                                                           per rank, each owner summing its slice
//                                                           of the rows, a barrier, bulk reads
//   pattern_producer_consumer  producer_consumer: ns per element for each
//                         rank rewriting its block, a barrier, and reading
//                         the other's block by element
//                                                           vs the same on direct (a get per element)
//   pattern_producer_consumer_bulk  the same read with one bulk get
//                                                           vs the same on direct (one get of the block)
//   pattern_migratory     migratory: ns per critical section (lock, read a
//                         record of 8 words, write it back changed, unlock),
//                         the ranks in turn                 vs the same on single_writer, and on
//                                                           direct with one get and one put
// The sweep runs the unit size from 64 B to 64 KiB (software DSM with page
// units pays for a whole page to read one line).
//
//   dsmrun --transport shm -n 2 build/bench/coherence [--units N] [--reps N] [--max-unit BYTES]
//                                                     [--only hits|misses|releases|ownership|sweep|patterns]
#include "timing.hpp"

#include <dsm/dsm.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using dsm_bench::median_ns;

volatile double sink;

struct options {
  std::size_t units = 64;  // units touched per measurement
  int reps = 5;
  std::size_t max_unit = 64 * 1024;
  std::string_view only;  // one of `groups`, or empty for all
  bool runs(std::string_view group) const { return only.empty() || only == group; }
};
constexpr std::string_view groups[] = {"hits", "misses", "releases", "ownership", "sweep", "patterns"};

void row(const char* policy, const char* measure, std::size_t unit_bytes, std::size_t x, double ns, const char* baseline,
         double baseline_ns) {
  fmt::print("{},{},{},{},{:.1f},{},{:.1f},{:.2f}\n", policy, measure, unit_bytes, x, ns, baseline, baseline_ns,
             ns / baseline_ns);
  std::fflush(stdout);
}

// An array of `units` units per rank; rank 0 works on rank 1's half.
template <class Policy>
struct fixture {
  std::size_t per_unit, per_rank;
  dsm::shared_array<double, Policy> a;
  fixture(std::size_t unit_bytes, std::size_t units)
      : per_unit(unit_bytes / sizeof(double)),
        per_rank(per_unit * units),
        a(per_rank * 2, dsm::block, dsm::unit_size{unit_bytes}, "bench") {
    for (double& v : a.local()) v = 1.0;
    dsm::barrier();  // publishes read_only data; every copy starts invalid
  }
  std::size_t remote(std::size_t unit, std::size_t k = 0) const { return per_rank + unit * per_unit + k; }
};

// Direct transfers of `bytes` from rank 1's half, one after another.
double direct_gets_ns(const options& o, std::size_t bytes) {
  fixture<dsm::direct> f(std::max<std::size_t>(bytes, 64), o.units);
  std::vector<double> buffer(bytes / sizeof(double) + 1);
  double ns = 0;
  if (dsm::rank() == 0)
    ns = median_ns(o.reps, [&] {
      for (std::size_t u = 0; u < o.units; ++u) dsm::rget(f.a.pointer(f.remote(u)), bytes / sizeof(double), buffer.data()).wait();
    }) / static_cast<double>(o.units);
  dsm::barrier();
  return ns;
}

// The measured loops are functions of their own, as a kernel is, for the
// baseline and the array alike: inlined into a timing lambda, GCC keeps the
// sum in memory around the (never taken) miss call.
template <class Array>
[[gnu::noinline]] double sum_of(Array& a, std::size_t first, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += a[first + i];
  return s;
}
template <class Array>
[[gnu::noinline]] void fill(Array& a, std::size_t first, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) a[first + i] = static_cast<double>(i);
}

template <class Policy>
void hits(const options& o, std::size_t unit_bytes) {
  fixture<Policy> f(unit_bytes, o.units);
  const std::size_t n = f.per_rank;
  if (dsm::rank() == 0) {
    std::vector<double> local(n, 1.0);
    const double local_read = median_ns(o.reps, [&] { sink = sum_of(local, 0, n); }) / static_cast<double>(n);
    sink = sum_of(f.a, f.remote(0), n);  // every unit valid
    const double read = median_ns(o.reps, [&] { sink = sum_of(f.a, f.remote(0), n); }) / static_cast<double>(n);
    row(Policy::name, "hit_read", unit_bytes, n, read, "local_load", local_read);
    // The bulk path: a span over the cached copy, then plain loads.
    const double span_read = median_ns(o.reps, [&] {
      const auto view = f.a.read_span(f.remote(0), n);
      sink = sum_of(view, 0, n);
    }) / static_cast<double>(n);
    row(Policy::name, "span_read", unit_bytes, n, span_read, "local_load", local_read);
    if constexpr (!std::is_same_v<Policy, dsm::read_only>) {
      const double local_write = median_ns(o.reps, [&] {
        fill(local, 0, n);
        sink = local[n / 2];
      }) / static_cast<double>(n);
      fill(f.a, f.remote(0), n);  // owned or twinned
      const double write = median_ns(o.reps, [&] { fill(f.a, f.remote(0), n); }) / static_cast<double>(n);
      row(Policy::name, "hit_write", unit_bytes, n, write, "local_store", local_write);
      if constexpr (std::is_same_v<Policy, dsm::write_shared>) {
        const double span_write = median_ns(o.reps, [&] {
          auto out = f.a.write_span(f.remote(0), n);
          fill(out, 0, n);
        }) / static_cast<double>(n);
        row(Policy::name, "span_write", unit_bytes, n, span_write, "local_store", local_write);
      }
    }
  }
  dsm::barrier();
}

// Misses need copies that are not there. A barrier drops the copies of
// single_writer and write_shared units; read_only copies are never dropped,
// so each of its repetitions takes a fresh array (and pays for first
// touching its mirror pages). Keys and mappings of the home's memory are
// warmed first: that is a once-per-array cost, not a miss.
// Units are walked upwards (consecutive misses: readahead fetches ahead)
// or downwards (every unit a miss of its own).
enum class walk { upwards, downwards };
template <class Policy>
double miss_ns(const options& o, std::size_t unit_bytes, bool all_lines, walk order) {
  constexpr bool fresh_each_time = std::is_same_v<Policy, dsm::read_only>;
  std::vector<double> t;
  std::optional<fixture<Policy>> f;
  auto read_units = [&] {
    double s = 0;
    const std::size_t step = all_lines ? 64 / sizeof(double) : f->per_unit;
    for (std::size_t k = 0; k < o.units; ++k) {
      const std::size_t u = order == walk::upwards ? k : o.units - 1 - k;
      for (std::size_t e = 0; e < f->per_unit; e += step) s += f->a[f->remote(u, e)];
    }
    sink = s;
  };
  for (int r = 0; r < o.reps + 1; ++r) {
    if (fresh_each_time || !f) {
      f.reset();
      f.emplace(unit_bytes, o.units);
      if (dsm::rank() == 0) {
        double warm;
        dsm::rget(f->a.pointer(f->remote(0)), 1, &warm).wait();
      }
    }
    if (dsm::rank() == 0) {
      const double ns = dsm_bench::time_ns(read_units) / static_cast<double>(o.units);
      if (r > 0 || fresh_each_time) t.push_back(ns);  // the first pass of a reused array also maps its mirror
    }
    dsm::barrier();
  }
  return dsm::rank() == 0 ? dsm_bench::median(t) : 0;
}

// Runs `work` on rank 0 while rank 1 computes without calling into dsm: it
// only watches a flag in its memory, which rank 0 puts when done (served,
// over TCP, by rank 1's progress thread, like every get meanwhile).
template <class F>
void while_home_computes(F&& work) {
  const auto mine = dsm::allocate<std::uint64_t>(1);
  const auto flags = dsm::allgather(mine);
  if (dsm::rank() == 0) (void)dsm::rget(flags[1]).wait();  // its key, fetched while rank 1 still serves messages
  dsm::barrier();
  if (dsm::rank() == 1) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::atomic_ref<std::uint64_t> done(*mine.local());
    double x = 1;
    while (done.load(std::memory_order_acquire) == 0) {
      for (int k = 0; k < 1000; ++k) x = x * 1.0000001 + 1e-9;
      if (std::chrono::steady_clock::now() > give_up) {
        fmt::print(stderr, "bench/coherence: rank 0 never said it was done (is progress polling over TCP?)\n");
        std::exit(1);
      }
    }
    sink = x;
  } else {
    work();
    dsm::rput(std::uint64_t{1}, flags[1]).wait();
  }
  dsm::barrier();
  dsm::deallocate(mine);
}

// Read misses (every copy dropped by the barrier before each pass) and
// direct gets of the same units, each pass while the home computes.
template <class Policy>
void misses_home_computing(const options& o, std::size_t unit_bytes) {
  fixture<Policy> f(unit_bytes, o.units);
  std::vector<double> buffer(f.per_unit);
  std::vector<double> miss, direct;
  for (int r = 0; r < o.reps + 1; ++r) {
    while_home_computes([&] {
      auto misses = [&] {
        return dsm_bench::time_ns([&] {
          double s = 0;
          for (std::size_t k = 0; k < o.units; ++k) s += f.a[f.remote(o.units - 1 - k)];  // no readahead
          sink = s;
        }) / static_cast<double>(o.units);
      };
      auto gets = [&] {
        return dsm_bench::time_ns([&] {
          for (std::size_t u = 0; u < o.units; ++u) dsm::rget(f.a.pointer(f.remote(u)), f.per_unit, buffer.data()).wait();
        }) / static_cast<double>(o.units);
      };
      // Taking turns at going first: the home's progress thread competes
      // for a core with its computation, and whichever pass comes first
      // meets it in another state.
      double ns, get;
      if (r % 2 == 0) ns = misses(), get = gets();
      else get = gets(), ns = misses();
      if (r > 0) miss.push_back(ns), direct.push_back(get);  // the first pass also maps the mirror
    });
  }
  if (dsm::rank() == 0)
    row(Policy::name, "miss_home_computing", unit_bytes, o.units, dsm_bench::median(miss),
        "direct_get_unit_home_computing", dsm_bench::median(direct));
}

template <class Policy>
void misses(const options& o, std::size_t unit_bytes) {
  const double direct = direct_gets_ns(o, unit_bytes);
  const double ns = miss_ns<Policy>(o, unit_bytes, false, walk::downwards);
  const double ahead = miss_ns<Policy>(o, unit_bytes, false, walk::upwards);
  const bool cold = std::is_same_v<Policy, dsm::read_only>;
  if (dsm::rank() == 0) {
    row(Policy::name, cold ? "miss_cold" : "miss", unit_bytes, o.units, ns, "direct_get_unit", direct);
    row(Policy::name, cold ? "miss_readahead_cold" : "miss_readahead", unit_bytes, o.units, ahead, "direct_get_unit",
        direct);
  }
  if constexpr (!std::is_same_v<Policy, dsm::read_only>) misses_home_computing<Policy>(o, unit_bytes);
}

// write_shared: the unlock sends a diff per dirty unit.
template <class Policy>
void releases(const options& o, std::size_t unit_bytes) {
  for (std::size_t dirty = 8; dirty <= unit_bytes; dirty *= 4) {
    fixture<Policy> f(unit_bytes, o.units);
    dsm::lock l;
    std::vector<double> t, baseline;
    const std::size_t words = dirty / sizeof(double);
    std::vector<double> source(words, 3.0);
    for (int r = 0; r < o.reps; ++r) {
      if (dsm::rank() == 0) {
        l.lock();
        for (std::size_t u = 0; u < o.units; ++u)
          for (std::size_t k = 0; k < words; ++k) f.a[f.remote(u, k)] = static_cast<double>(r * 7 + 1);
        t.push_back(dsm_bench::time_ns([&] { l.unlock(); }) / static_cast<double>(o.units));
        baseline.push_back(dsm_bench::time_ns([&] {
          for (std::size_t u = 0; u < o.units; ++u) dsm::rput(source.data(), words, f.a.pointer(f.remote(u)));
          dsm::fence();
        }) / static_cast<double>(o.units));
      }
      dsm::barrier();
    }
    if (dsm::rank() == 0)
      row(Policy::name, "release", unit_bytes, dirty, dsm_bench::median(t), "put_dirty_bytes", dsm_bench::median(baseline));
  }
}

// single_writer: taking units exclusively, and what a barrier costs when
// they go home with some of their bytes changed.
void ownership(const options& o, std::size_t unit_bytes) {
  using policy = dsm::single_writer;
  const double direct = direct_gets_ns(o, unit_bytes);
  for (std::size_t dirty = 8; dirty <= unit_bytes; dirty *= 4) {
    fixture<policy> f(unit_bytes, o.units);
    std::vector<double> grant, back, idle, dirty_put, whole_put;
    const std::size_t words = dirty / sizeof(double), unit_words = unit_bytes / sizeof(double);
    std::vector<double> source(unit_words, 3.0);
    for (int r = 0; r < o.reps; ++r) {
      if (dsm::rank() == 0) {
        grant.push_back(dsm_bench::time_ns([&] {
          for (std::size_t u = 0; u < o.units; ++u) f.a[f.remote(u)] = static_cast<double>(r + 2);
        }) / static_cast<double>(o.units));
        for (std::size_t u = 0; u < o.units; ++u)
          for (std::size_t k = 1; k < words; ++k) f.a[f.remote(u, k)] = static_cast<double>(r + 2);
      }
      back.push_back(dsm_bench::time_ns([] { dsm::barrier(); }) / static_cast<double>(o.units));
      idle.push_back(dsm_bench::time_ns([] { dsm::barrier(); }) / static_cast<double>(o.units));
      if (dsm::rank() == 0) {
        auto puts = [&](std::size_t n) {
          return dsm_bench::time_ns([&] {
            for (std::size_t u = 0; u < o.units; ++u) dsm::rput(source.data(), n, f.a.pointer(f.remote(u)));
            dsm::fence();
          }) / static_cast<double>(o.units);
        };
        dirty_put.push_back(puts(words));
        whole_put.push_back(puts(unit_words));
      }
      dsm::barrier();
    }
    if (dsm::rank() != 0) continue;
    if (dirty == 8) row(policy::name, "write_miss", unit_bytes, o.units, dsm_bench::median(grant), "direct_get_unit", direct);
    const double barrier_ns = dsm_bench::median(idle);
    row(policy::name, "write_back", unit_bytes, dirty, dsm_bench::median(back), "barrier_and_put_dirty_bytes",
        barrier_ns + dsm_bench::median(dirty_put));
    row(policy::name, "write_back", unit_bytes, dirty, dsm_bench::median(back), "barrier_and_put_whole_units",
        barrier_ns + dsm_bench::median(whole_put));
  }
}

template <class Policy>
void sweep(const options& o) {
  for (std::size_t unit = 64; unit <= o.max_unit; unit *= 4) {
    const double line = direct_gets_ns(o, 64);
    const double one = miss_ns<Policy>(o, unit, false, walk::downwards);  // scattered: no readahead
    const double all = miss_ns<Policy>(o, unit, true, walk::upwards);     // a sweep
    if (dsm::rank() == 0) {
      row(Policy::name, "sweep_one_line", unit, 1, one, "direct_get_line", line);
      row(Policy::name, "sweep_all_lines", unit, unit / 64, all, "direct_get_line", line);
    }
  }
}

// The hit path of layouts that units do not tile (owner and local index
// computed per element): the whole array, every copy valid, against the
// same local loops.
template <class Policy, class Layout>
void layout_hits(const options& o, std::size_t unit_bytes, Layout layout, const char* read_name, const char* write_name) {
  const std::size_t n = unit_bytes / sizeof(double) * o.units * 2;
  dsm::shared_array<double, Policy> a(n, layout, dsm::unit_size{unit_bytes}, "bench layout");
  for (double& v : a.local()) v = 1.0;
  dsm::barrier();
  if (dsm::rank() == 0) {
    std::vector<double> local(n, 1.0);
    const double local_read = median_ns(o.reps, [&] { sink = sum_of(local, 0, n); }) / static_cast<double>(n);
    sink = sum_of(a, 0, n);
    const double read = median_ns(o.reps, [&] { sink = sum_of(a, 0, n); }) / static_cast<double>(n);
    row(Policy::name, read_name, unit_bytes, n, read, "local_load", local_read);
    if constexpr (!std::is_same_v<Policy, dsm::read_only>) {
      const double local_write = median_ns(o.reps, [&] {
        fill(local, 0, n);
        sink = local[n / 2];
      }) / static_cast<double>(n);
      fill(a, 0, n);
      const double write = median_ns(o.reps, [&] { fill(a, 0, n); }) / static_cast<double>(n);
      row(Policy::name, write_name, unit_bytes, n, write, "local_store", local_write);
    }
  }
  dsm::barrier();
}

template <class Array>
[[gnu::noinline]] void add_into(Array& a, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) a[i] += static_cast<double>(i & 7);
}

// Every rank adds into every element, a barrier, every rank reads them
// all: under reduction<sum>, and what the same takes on direct arrays.
void reduction_pattern(const options& o, std::size_t unit_bytes) {
  const std::size_t n = unit_bytes / sizeof(double) * o.units * 2;
  const std::size_t ranks = static_cast<std::size_t>(dsm::ranks()), me = static_cast<std::size_t>(dsm::rank());
  std::vector<double> local(n, 0.0), all(n), part(n, 1.0);
  dsm::shared_array<double, dsm::reduction<dsm::sum>> sums(n, dsm::block, dsm::unit_size{unit_bytes}, "bench sums");
  const double local_add = median_ns(o.reps, [&] {
    add_into(local, n);
    sink = local[n / 2];
  }) / static_cast<double>(n);
  const double combine = median_ns(o.reps, [&] { add_into(sums, n); }) / static_cast<double>(n);
  dsm::barrier();
  if (me == 0) row("reduction", "combine_hit", unit_bytes, n, combine, "local_add", local_add);

  const double reduced = median_ns(o.reps, [&] {
    if (sums.contributions_tiled()) {
      const auto mine = sums.contribution_span(0, n);
      std::copy(part.begin(), part.end(), mine.begin());
    } else {
      sums.combine(0, part);
    }
    dsm::barrier();
    sums.get(0, all);
    dsm::barrier();  // everybody has read before the next round's combine
  }) / static_cast<double>(n);
  dsm::shared_array<double, dsm::direct> rows(n * ranks, dsm::block, dsm::unit_size{unit_bytes}, "bench rows");
  dsm::shared_array<double, dsm::direct> result(n, dsm::block, dsm::unit_size{unit_bytes}, "bench result");
  const std::size_t first = result.distribution().global_index(me, 0), slice = result.local_size();
  std::vector<double> other(slice);
  const double direct = median_ns(o.reps, [&] {
    std::copy(part.begin(), part.end(), rows.local().begin());
    dsm::barrier();
    const auto mine = result.local();
    std::copy_n(part.begin() + static_cast<std::ptrdiff_t>(first), slice, mine.begin());
    for (std::size_t r = 0; r < ranks; ++r) {
      if (r == me || slice == 0) continue;
      rows.get(r * n + first, other);
      for (std::size_t k = 0; k < slice; ++k) mine[k] += other[k];
    }
    dsm::barrier();
    result.get(0, all);
    dsm::barrier();
  }) / static_cast<double>(n);
  if (me == 0) row("reduction", "pattern_reduction", unit_bytes, n, reduced, "direct_rows", direct);
}

// Each rank rewrites its block, a barrier, each rank reads the other's
// block, a barrier: under producer_consumer (the home pushes the changes at
// the barrier, the reads hit), and on direct, whose reads are gets: by
// element (the same program) and in bulk (one get of the block, what a
// careful direct program does).
template <class Read>
double produce_and_consume(const options& o, auto& a, Read&& read) {
  const std::size_t n = a.size();
  const auto mine = a.local();
  double total = 0;
  int round = 0;
  const double ns = median_ns(o.reps, [&] {
    ++round;
    std::fill(mine.begin(), mine.end(), static_cast<double>(round));
    dsm::barrier();
    total += read();
    dsm::barrier();  // read before the next round's writes
  });
  sink = total;
  return ns / static_cast<double>(n / 2);
}
void producer_consumer_pattern(const options& o, std::size_t unit_bytes) {
  const std::size_t n = unit_bytes / sizeof(double) * o.units * 2;
  const std::size_t other = 1 - static_cast<std::size_t>(dsm::rank());
  std::vector<double> buffer(n / 2);
  auto element_reads = [&](auto& a) {
    return [&] {
      double s = 0;
      for (std::size_t i = other * n / 2; i < (other + 1) * n / 2; ++i) s += a[i];
      return s;
    };
  };
  auto bulk_read = [&](auto& a) {
    return [&] {
      a.get(other * n / 2, buffer);
      return buffer[buffer.size() / 2];
    };
  };
  dsm::shared_array<double, dsm::producer_consumer> pushed(n, dsm::block, dsm::unit_size{unit_bytes}, "bench pushed");
  dsm::shared_array<double, dsm::direct> plain(n, dsm::block, dsm::unit_size{unit_bytes}, "bench direct");
  produce_and_consume(o, pushed, element_reads(pushed));  // the readers subscribe
  const double pc = produce_and_consume(o, pushed, element_reads(pushed));
  const double direct = produce_and_consume(o, plain, element_reads(plain));
  const double pc_bulk = produce_and_consume(o, pushed, bulk_read(pushed));
  const double direct_bulk = produce_and_consume(o, plain, bulk_read(plain));
  if (dsm::rank() == 0) {
    row("producer_consumer", "pattern_producer_consumer", unit_bytes, n / 2, pc, "direct_element_reads", direct);
    row("producer_consumer", "pattern_producer_consumer_bulk", unit_bytes, n / 2, pc_bulk, "direct_bulk_get", direct_bulk);
  }
}

// Records updated under a lock, the ranks in turn: each critical section
// reads a record of 8 words and writes it back changed. Under migratory
// the read takes the unit with its data and the writes hit; the baselines
// are the same program on single_writer (a read copy, then an ownership
// request) and on direct (one get, one put of the record).
template <class Policy>
double locked_records(const options& o, dsm::queue_lock& l) {
  constexpr std::size_t fields = 8;
  const std::size_t records = o.units;
  dsm::shared_array<std::uint64_t, Policy> a(records * fields, dsm::cyclic, dsm::unit_size{fields * sizeof(std::uint64_t)},
                                             "bench records");
  std::array<std::uint64_t, fields> record{};
  std::uint64_t total = 0;
  const double ns = median_ns(o.reps, [&] {
    for (std::size_t r = 0; r < records; ++r) {
      l.lock();
      const std::size_t first = ((r * 2 + static_cast<std::size_t>(dsm::rank())) % records) * fields;
      if constexpr (std::is_same_v<Policy, dsm::direct>) {
        a.get(first, record);
        for (auto& f : record) total += f, ++f;
        a.put(first, record);
      } else {
        for (std::size_t f = 0; f < fields; ++f) {
          const std::uint64_t v = a[first + f];
          total += v;
          a[first + f] = v + 1;
        }
      }
      l.unlock();
    }
    dsm::barrier();
  });
  sink = static_cast<double>(total);
  return ns / static_cast<double>(records);
}
void migratory_pattern(const options& o) {
  dsm::queue_lock l;
  const double migratory = locked_records<dsm::migratory>(o, l);
  const double single_writer = locked_records<dsm::single_writer>(o, l);
  const double direct = locked_records<dsm::direct>(o, l);
  if (dsm::rank() == 0) {
    row("migratory", "pattern_migratory", 64, o.units, migratory, "single_writer", single_writer);
    row("migratory", "pattern_migratory", 64, o.units, migratory, "direct_get_put", direct);
  }
}

template <class Policy>
void measure(const options& o) {
  if (o.runs("hits")) {
    hits<Policy>(o, 1024);
    layout_hits<Policy>(o, 1024, dsm::cyclic, "hit_read_cyclic", "hit_write_cyclic");
    layout_hits<Policy>(o, 1024, dsm::block_cyclic(64), "hit_read_block_cyclic", "hit_write_block_cyclic");
  }
  if (o.runs("misses")) misses<Policy>(o, 1024);
  if constexpr (std::is_same_v<Policy, dsm::write_shared>)
    if (o.runs("releases")) releases<Policy>(o, 1024);
  if constexpr (std::is_same_v<Policy, dsm::single_writer>)
    if (o.runs("ownership")) ownership(o, 1024);
  if (o.runs("sweep")) sweep<Policy>(o);
}

}  // namespace

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  options o;
  const bool parsed = dsm_bench::parse_pairs(
      argc, argv, "[--units N] [--reps N] [--max-unit BYTES] [--only hits|misses|releases|ownership|sweep|patterns]",
      [&](std::string_view flag, std::string_view value) {
        const auto number = std::strtoull(std::string(value).c_str(), nullptr, 10);
        if (flag == "--units") return o.units = number, true;
        if (flag == "--reps") return o.reps = static_cast<int>(number), true;
        if (flag == "--max-unit") return o.max_unit = number, true;
        if (flag == "--only" && std::ranges::find(groups, value) != std::end(groups)) return o.only = value, true;
        return false;
      });
  if (!parsed) return 2;
  if (dsm::ranks() != 2) {
    if (dsm::rank() == 0) fmt::print(stderr, "bench/coherence runs on 2 ranks (dsmrun -n 2)\n");
    return 2;
  }
  if (dsm::rank() == 0) fmt::print("policy,measure,unit_bytes,x,median_ns,baseline,baseline_ns,ratio\n");
  measure<dsm::read_only>(o);
  measure<dsm::single_writer>(o);
  measure<dsm::write_shared>(o);
  if (o.runs("patterns")) {
    reduction_pattern(o, 1024);
    producer_consumer_pattern(o, 1024);
    migratory_pattern(o);
  }
}

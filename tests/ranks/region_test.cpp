// global_region (issue 20) on real ranks: one base address everywhere;
// plain loads and stores kept coherent by single_writer, write_shared and
// read_only in block and cyclic homing, with litmus tests that catch a
// lost write (counters under a lock, false sharing inside one page, a
// page written by every rank in turn); containers built with
// region_allocator by one rank and used by all; LOCO's OpenMP mapping
// (critical, atomic, flush) in a worksharing loop; advise and prefetch;
// sizes refused. Arguments name the failure modes, each run alone: a
// read_only page written after publication, an access just outside the
// region, a fault after the runtime ended, a fault from another thread, a
// fault on a home that never answers; "mixed" runs the fixed-width cases
// in a job of two ISAs; "threads" stores from several threads of each rank
// (threads::multiple).
#include "check.hpp"

#include <dsm/global_region.hpp>
#include <dsm/region_allocator.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <list>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

// Every rank sees the region at one address.
template <class Policy>
void same_address(const dsm::global_region<Policy>& r) {
  const auto bases = dsm::allgather(reinterpret_cast<std::uintptr_t>(r.base()));
  for (auto b : bases) CHECK_EQ(b, reinterpret_cast<std::uintptr_t>(r.base()));
}

// Each rank fills a stripe that crosses every home, everyone checks
// everything after the barrier; then the stripes move one rank on.
template <class Policy, class Homing>
void stripes(Homing homing, const char* name) {
  const int me = dsm::rank(), n = dsm::ranks();
  dsm::global_region<Policy> r(std::size_t{3} << 16, homing, name);
  same_address(r);
  auto* words = r.template as<std::uint64_t>();
  const std::size_t count = r.size() / sizeof(std::uint64_t);
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < count; ++i)
      if (static_cast<int>((i / 100 + round) % n) == me) words[i] = i * 1000 + round;
    dsm::barrier();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < count; ++i) wrong += words[i] != i * 1000 + round;
    CHECK_EQ(wrong, 0u);
    dsm::barrier();
  }
  const auto s = r.stats();
  if (n > 1) CHECK(s.read_faults > 0);
  CHECK(s.write_faults > 0);
  // Where the NIC does not see the caches (arm64), the fault path
  // invalidates what it fetched and cleans what it sends; elsewhere never.
  if constexpr (dsm::arch::cache_maintenance_enabled) {
    if (n > 1) CHECK(s.coherence.bytes_invalidated > 0);
    CHECK(s.coherence.bytes_cleaned > 0);
  } else {
    CHECK_EQ(s.coherence.bytes_invalidated + s.coherence.bytes_cleaned, 0u);
  }
}

// The lost-write litmus tests. (1) Counters incremented under a critical
// section by every rank: any increment lost shows in the total. (2) Each
// rank writes its own words of one page, no lock, between barriers (false
// sharing): single_writer moves the page at each write, write_shared
// merges the diffs; a lost write leaves a word behind. (3) The page
// written by each rank in turn under a lock, every word once per turn.
template <class Policy>
void litmus() {
  const int me = dsm::rank(), n = dsm::ranks();
  dsm::global_region<Policy> r(std::size_t{4} << 12, "litmus");
  auto* counters = r.template as<std::uint64_t>();
  constexpr int iterations = 200;
  for (int k = 0; k < iterations; ++k)
    r.critical("counters", [&] {
      counters[0] += 1;
      counters[1] += static_cast<std::uint64_t>(me) + 1;
    });
  dsm::barrier();
  CHECK_EQ(counters[0], static_cast<std::uint64_t>(iterations) * n);
  CHECK_EQ(counters[1], static_cast<std::uint64_t>(iterations) * n * (n + 1) / 2);
  dsm::barrier();

  auto* page = r.template as<std::uint32_t>(4096);
  for (int round = 1; round <= 20; ++round) {
    for (int w = me; w < 1024; w += n) page[w] = static_cast<std::uint32_t>(round * 10000 + w);
    dsm::barrier();
    int lost = 0;
    for (int w = 0; w < 1024; ++w) lost += page[w] != static_cast<std::uint32_t>(round * 10000 + w);
    CHECK_EQ(lost, 0);
    dsm::barrier();
  }

  auto* turns = r.template as<std::uint64_t>(2 * 4096);
  for (int turn = 0; turn < 4; ++turn) {
    r.critical("turns", [&] {
      for (int w = 0; w < 512; ++w) turns[w] += 1;
    });
  }
  dsm::barrier();
  int short_words = 0;
  for (int w = 0; w < 512; ++w) short_words += turns[w] != static_cast<std::uint64_t>(4 * n);
  CHECK_EQ(short_words, 0);
  dsm::barrier();
}

// Atomics on region words and a flag handed over by flush (a release and
// an acquire): what the writer stored before it is read after.
template <class Policy>
void loco_mapping() {
  const int me = dsm::rank(), n = dsm::ranks();
  dsm::global_region<Policy> r(std::size_t{64} << 12, "loco");
  auto* data = r.template as<double>(4096);
  const std::size_t count = (r.size() - 4096) / sizeof(double);
  auto* ticket = r.template as<std::uint64_t>(0);
  auto* sum_bits = r.template as<double>(8);
  // #pragma omp for schedule(static) over every rank, then a reduction
  // in a critical section and a ticket per rank from atomic capture.
  const std::size_t per = (count + n - 1) / n;
  const std::size_t first = std::min(count, per * me), last = std::min(count, first + per);
  double mine = 0;
  for (std::size_t i = first; i < last; ++i) mine += (data[i] = static_cast<double>(i) * 0.5);
  r.critical("sum", [&] { *sum_bits += mine; });
  const std::uint64_t my_ticket = r.atomic_fetch_add(ticket, std::uint64_t{1});
  CHECK(my_ticket < static_cast<std::uint64_t>(n));
  dsm::barrier();
  CHECK_EQ(*ticket, static_cast<std::uint64_t>(n));
  const double expected = 0.5 * static_cast<double>(count) * static_cast<double>(count - 1) / 2;
  CHECK_EQ(*sum_bits, expected);
  double seen = 0;
  for (std::size_t i = 0; i < count; ++i) seen += data[i];
  CHECK_EQ(seen, expected);
  std::uint64_t expected_value = 0;
  CHECK(!r.atomic_compare_exchange(ticket, expected_value, std::uint64_t{99}));
  CHECK_EQ(expected_value, static_cast<std::uint64_t>(n));
  dsm::barrier();

  // Message passing through flush: rank 0 writes a payload, flushes, sets
  // a flag with an atomic; the others wait on the flag with atomic_load,
  // flush, and read the payload.
  auto* flag = r.template as<std::uint64_t>(16);
  auto* payload = r.template as<std::uint64_t>(8 * 4096);
  if (me == 0) {
    for (int k = 0; k < 512; ++k) payload[k] = 7000 + k;
    r.flush();
    (void)r.atomic_exchange(flag, std::uint64_t{1});
  } else {
    while (r.atomic_load(flag) == 0) dsm::progress();
    r.flush();
    int wrong = 0;
    for (int k = 0; k < 512; ++k) wrong += payload[k] != static_cast<std::uint64_t>(7000 + k);
    CHECK_EQ(wrong, 0);
  }
  dsm::barrier();
}

// A vector, a map and a linked list built by rank 0 inside the region
// (their headers too), found by the others through the pointer rank 0
// broadcasts, traversed, then extended by every rank in turn.
void containers() {
  const int me = dsm::rank(), n = dsm::ranks();
  dsm::global_region<dsm::single_writer> r(std::size_t{1} << 22, "containers");
  using vec = std::vector<std::int64_t, dsm::region_allocator<std::int64_t>>;
  using map = std::map<std::int32_t, std::int64_t, std::less<>, dsm::region_allocator<std::pair<const std::int32_t, std::int64_t>>>;
  using list = std::list<std::int64_t, dsm::region_allocator<std::int64_t>>;
  struct roots {
    vec* v;
    map* m;
    list* l;
  };
  roots* built = nullptr;
  if (me == 0) {
    dsm::region_allocator<roots> alloc(r);
    roots* rs = alloc.new_object();
    rs->v = dsm::region_allocator<vec>(r).new_object(dsm::region_allocator<std::int64_t>(r));
    rs->m = dsm::region_allocator<map>(r).new_object(dsm::region_allocator<std::pair<const std::int32_t, std::int64_t>>(r));
    rs->l = dsm::region_allocator<list>(r).new_object(dsm::region_allocator<std::int64_t>(r));
    for (int k = 0; k < 1000; ++k) {
      rs->v->push_back(k * 3);
      rs->m->emplace(k, k * k);
      rs->l->push_back(-k);
    }
    built = rs;
  }
  // One address everywhere: the pointer itself is what the others need.
  const auto root = dsm::broadcast(reinterpret_cast<std::uintptr_t>(built), 0);
  dsm::barrier();
  auto* rs = reinterpret_cast<roots*>(root);
  CHECK(r.contains(rs));
  CHECK_EQ(rs->v->size(), 1000u);
  std::int64_t vs = 0, ms = 0, ls = 0;
  for (auto x : *rs->v) vs += x;
  for (const auto& [k, v] : *rs->m) ms += v - static_cast<std::int64_t>(k) * k;
  for (auto x : *rs->l) ls += x;
  CHECK_EQ(vs, 3 * 999 * 1000 / 2);
  CHECK_EQ(ms, 0);
  CHECK_EQ(ls, -999 * 1000 / 2);
  dsm::barrier();
  // Every rank appends under one critical section: its nodes come from its
  // own arena, and the others follow its pointers.
  r.critical("containers", [&] {
    for (int k = 0; k < 100; ++k) {
      rs->v->push_back(100000 + me);
      rs->m->emplace(100000 + me * 1000 + k, me);
      rs->l->push_front(me);
    }
  });
  dsm::barrier();
  CHECK_EQ(rs->v->size(), 1000u + 100u * static_cast<unsigned>(n));
  CHECK_EQ(rs->m->size(), 1000u + 100u * static_cast<unsigned>(n));
  CHECK_EQ(rs->l->size(), 1000u + 100u * static_cast<unsigned>(n));
  std::vector<int> per_rank(static_cast<std::size_t>(n));
  for (auto x : *rs->l)
    if (x >= 0 && x < n && rs->l->size() > 0) per_rank[static_cast<std::size_t>(x)] += 1;
  for (int k = 0; k < n; ++k) CHECK(per_rank[static_cast<std::size_t>(k)] >= 100);
  dsm::barrier();
  // Nodes freed by whichever rank erases them: rank n-1 clears the list
  // (rank 0's nodes go back to rank 0's arena by rpc_ff).
  if (me == n - 1) rs->l->clear();
  dsm::barrier();
  CHECK(rs->l->empty());
  dsm::barrier();
}

// read_only: each rank writes its own pages, the barrier publishes, every
// rank reads every page; copies are never dropped (no fault after a second
// barrier).
template <class Homing>
void read_only_region(Homing homing) {
  const int me = dsm::rank();
  dsm::global_region<dsm::read_only> r(std::size_t{8} << 12, homing, "tables");
  auto* words = r.as<std::uint32_t>();
  const std::size_t count = r.size() / 4;
  for (std::size_t i = 0; i < count; ++i)
    if (r.home_of(words + i) == static_cast<std::size_t>(me)) words[i] = static_cast<std::uint32_t>(i ^ 0x5a5a);
  dsm::barrier();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < count; ++i) wrong += words[i] != static_cast<std::uint32_t>(i ^ 0x5a5a);
  CHECK_EQ(wrong, 0u);
  const auto faults = r.stats().read_faults;
  dsm::barrier();
  for (std::size_t i = 0; i < count; ++i) wrong += words[i] != static_cast<std::uint32_t>(i ^ 0x5a5a);
  CHECK_EQ(wrong, 0u);
  CHECK_EQ(r.stats().read_faults, faults);
  CHECK_ERROR(dsm::errc::read_only_violation, r.atomic_fetch_add(words, 1u));
  dsm::barrier();
}

// willneed fetches ahead (the reads then fault no more than the units not
// yet arrived); dontneed drops the copies, and the next reads fetch again.
void advice() {
  const int me = dsm::rank(), n = dsm::ranks();
  dsm::global_region<dsm::write_shared> r(std::size_t{32} << 12, "advised");
  auto* words = r.as<std::uint64_t>();
  const std::size_t count = r.size() / 8;
  for (std::size_t i = 0; i < count; ++i)
    if (r.home_of(words + i) == static_cast<std::size_t>(me)) words[i] = i + 1;
  dsm::barrier();
  r.advise(r.base(), r.size(), dsm::advice::willneed);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < count; ++i) wrong += words[i] != i + 1;
  CHECK_EQ(wrong, 0u);
  const auto after_first = r.stats().read_faults;
  if (n > 1) CHECK(r.stats().coherence.prefetched > 0);
  r.advise(r.base(), r.size(), dsm::advice::dontneed);
  for (std::size_t i = 0; i < count; ++i) wrong += words[i] != i + 1;
  CHECK_EQ(wrong, 0u);
  if (n > 1) CHECK(r.stats().read_faults > after_first);
  CHECK_ERROR(dsm::errc::out_of_range, r.advise(r.base() + r.size() - 8, 16, dsm::advice::willneed));
  CHECK_ERROR(dsm::errc::invalid_argument, r.advise(r.base(), 8, static_cast<dsm::advice>(9)));
  dsm::barrier();
}

void refused_sizes() {
  CHECK_ERROR(dsm::errc::out_of_memory, dsm::global_region<dsm::single_writer>(std::size_t{1} << 50, "huge"));
  // Per rank more than any machine here holds: refused before anything is
  // mapped, on every rank alike.
  CHECK_ERROR(dsm::errc::out_of_memory,
              dsm::global_region<dsm::single_writer>(static_cast<std::size_t>(dsm::ranks()) << 42, "too big"));
  CHECK_ERROR(dsm::errc::invalid_argument, dsm::global_region<dsm::single_writer>(0, "empty"));
  CHECK_ERROR(dsm::errc::invalid_argument,
              dsm::global_region<dsm::single_writer>(1 << 20, dsm::block, dsm::unit_size{1000}, "odd unit"));
  dsm::global_region<dsm::single_writer> r(1 << 16, "bounds");
  CHECK_ERROR(dsm::errc::out_of_range, (void)r.as<std::uint64_t>(r.size()));
  CHECK_ERROR(dsm::errc::out_of_range, (void)r.as<std::uint64_t>(3));
  int outside = 0;
  CHECK_ERROR(dsm::errc::out_of_range, (void)r.home_of(&outside));
  dsm::barrier();
}

// -- failure modes, each the whole program of its run

void written_after_publication() {
  dsm::global_region<dsm::read_only> r(std::size_t{4} << 12, "published");
  auto* w = r.as<std::uint32_t>();
  dsm::barrier();
  if (dsm::rank() == 0) w[0] = 1;  // ends the process, named
  dsm::barrier();
}
void just_outside() {
  dsm::global_region<dsm::single_writer> r(std::size_t{4} << 12, "bounded");
  dsm::barrier();
  if (dsm::rank() == 0) {
    volatile char* past = reinterpret_cast<volatile char*>(r.base() + r.size() + (std::size_t{1} << 40));
    *past = 1;  // the program's own segmentation fault
  }
  dsm::barrier();
}
void other_thread() {
  dsm::global_region<dsm::single_writer> r(std::size_t{4} << 12, "threaded");
  dsm::barrier();
  if (dsm::rank() == 0) {
    auto* w = r.as<std::uint32_t>(4096 * (r.size() / 4096 - 1));
    std::thread t([w] { *w = 5; });
    t.join();
  }
  dsm::barrier();
}

// threads::multiple: several threads of each rank store into the region
// and load from it (each fault taking the rank lock); every thread's
// stores survive and every rank reads them all after the barrier.
template <class Policy>
void threads_of_a_rank() {
  const int me = dsm::rank(), n = dsm::ranks();
  dsm::global_region<Policy> r(std::size_t{16} << 12, "threaded");
  auto* words = r.template as<std::uint64_t>();
  const std::size_t count = r.size() / 8;
  constexpr int threads = 3;
  std::vector<std::thread> team;
  for (int t = 0; t < threads; ++t)
    team.emplace_back([&, t] {
      for (std::size_t i = 0; i < count; ++i)
        if (static_cast<int>(i % static_cast<std::size_t>(n * threads)) == me * threads + t) words[i] = i * 7 + 1;
    });
  for (auto& t : team) t.join();
  dsm::barrier();
  std::vector<std::size_t> wrong(threads);
  team.clear();
  for (int t = 0; t < threads; ++t)
    team.emplace_back([&, t] {
      for (std::size_t i = static_cast<std::size_t>(t); i < count; i += threads) wrong[static_cast<std::size_t>(t)] += words[i] != i * 7 + 1;
    });
  for (auto& t : team) t.join();
  for (auto w : wrong) CHECK_EQ(w, 0u);
  dsm::barrier();
}

// Rank 1 stops (SIGSTOP: no thread of it runs, and over TCP a get needs
// its process; a rank that merely sleeps may still have UCX's own thread
// answer): rank 0's read fault on its page waits DSM_TIMEOUT, then ends
// the process, named.
void stalled_home() {
  dsm::global_region<dsm::single_writer> r(std::size_t{4} << 12, "stalled");
  const auto pids = dsm::allgather(static_cast<std::int64_t>(::getpid()));
  dsm::barrier();
  if (dsm::rank() == 1) ::raise(SIGSTOP);
  if (dsm::rank() == 0) {
    // Only once rank 1 is stopped: before, its barrier's progress may
    // still serve the get.
    const std::string stat = "/proc/" + std::to_string(pids[1]) + "/stat";
    for (int k = 0; k < 1000; ++k) {
      std::ifstream in(stat);
      std::string pid, name, state;
      in >> pid >> name >> state;
      if (state == "T" || state == "t") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    volatile std::uint32_t* w = r.as<std::uint32_t>(r.size() - 4096);
    (void)*w;
  }
  dsm::barrier();
}

}  // namespace

// A fault after the runtime ended: the region outlives it on purpose.
static int after_runtime(int argc, char** argv) {
  std::byte* base = nullptr;
  std::size_t size = 0;
  {
    dsm::runtime rt{argc, argv};
    auto* leaked = new dsm::global_region<dsm::single_writer>(std::size_t{4} << 12, "leaked");
    base = leaked->base();
    size = leaked->size();
    dsm::barrier();
  }
  std::puts("the runtime has ended");
  std::fflush(stdout);
  volatile std::byte* last = base + size - 1;
  *last = std::byte{1};
  return 0;
}

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "all";
  if (mode == "after_runtime") return after_runtime(argc, argv);
  if (mode == "threads")
    return dsm_test::run(
        argc, argv,
        [] {
          threads_of_a_rank<dsm::write_shared>();
          threads_of_a_rank<dsm::single_writer>();
        },
        dsm::threads::multiple);
  return dsm_test::run(argc, argv, [&] {
    if (mode == "written_after_publication") return written_after_publication();
    if (mode == "just_outside") return just_outside();
    if (mode == "other_thread") return other_thread();
    if (mode == "stalled_home") return stalled_home();
    if (mode == "mixed") {
      // Ranks of two ISAs: fixed-width words only (containers are left out:
      // their layout is one library's, not a fixed-width type's).
      stripes<dsm::single_writer>(dsm::block, "sw block");
      stripes<dsm::single_writer>(dsm::cyclic, "sw cyclic");
      stripes<dsm::write_shared>(dsm::block, "ws block");
      litmus<dsm::single_writer>();
      litmus<dsm::write_shared>();
      loco_mapping<dsm::single_writer>();
      read_only_region(dsm::block);
      return;
    }
    stripes<dsm::single_writer>(dsm::block, "sw block");
    stripes<dsm::single_writer>(dsm::cyclic, "sw cyclic");
    stripes<dsm::write_shared>(dsm::block, "ws block");
    stripes<dsm::write_shared>(dsm::cyclic, "ws cyclic");
    litmus<dsm::single_writer>();
    litmus<dsm::write_shared>();
    loco_mapping<dsm::single_writer>();
    loco_mapping<dsm::write_shared>();
    containers();
    read_only_region(dsm::block);
    read_only_region(dsm::cyclic);
    advice();
    refused_sizes();
  });
}

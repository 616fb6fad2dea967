// Litmus tests of the caching policies, run with one policy per process
// (argv[1]: single_writer, write_shared, read_only): barrier visibility,
// message passing through a lock with no stale read after the acquire,
// false sharing within one unit, and each policy's own contract (read_only
// publication, write_shared race detection).
#include "check.hpp"

#include <chrono>
#include <cstdint>
#include <thread>
#include <string_view>
#include <vector>

namespace {

std::uint64_t value_of(std::size_t i, int round) { return i * 1000003u + static_cast<std::uint64_t>(round) * 7 + 1; }

// Every rank writes a stripe of indices homed elsewhere; after the barrier
// every rank reads every value, through element reads and a bulk get.
template <class Policy, class Layout>
void barrier_visibility(Layout layout, dsm::unit_size unit) {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t n = 1000;
  dsm::shared_array<std::uint64_t, Policy> a(n, layout, unit, "visible");
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < n; ++i)
      if (static_cast<int>((i + static_cast<std::size_t>(round)) % static_cast<std::size_t>(p)) == (me + 1) % p)
        a[i] = value_of(i, round);
    dsm::barrier();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < n; ++i) wrong += a[i] != value_of(i, round);
    std::vector<std::uint64_t> all(n);
    a.get(0, all);
    for (std::size_t i = 0; i < n; ++i) wrong += all[i] != value_of(i, round);
    // The home sees the same through its plain local memory.
    std::size_t l = 0;
    for (std::size_t g : a.local_indices()) wrong += a.local()[l++] != value_of(g, round);
    CHECK_EQ(wrong, 0u);
    dsm::barrier();
  }
}

// Message passing through a lock: each holder checks that the whole record
// the previous holder wrote is there (no stale copy survives the acquire,
// although every rank cached the record before), then writes the next one.
template <class Policy>
void lock_message_passing(dsm::unit_size unit) {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t fields = 40;
  dsm::shared_array<std::uint64_t, Policy> record(fields + 1, dsm::cyclic, unit, "record");
  dsm::lock l;
  std::uint64_t cached = 0;
  for (std::size_t f = 0; f <= fields; ++f) cached += record[f];  // every rank caches the record
  CHECK_EQ(cached, 0u);
  dsm::barrier();
  const int rounds = 6;
  for (int round = 0; round < rounds; ++round) {
    l.lock();
    const std::uint64_t count = record[fields];
    std::size_t torn = 0;
    for (std::size_t f = 0; f < fields; ++f) torn += record[f] != count * 100 + f;
    if (count == 0) torn = 0;  // nobody wrote yet
    CHECK_EQ(torn, 0u);
    for (std::size_t f = 0; f < fields; ++f) record[f] = (count + 1) * 100 + f;
    record[fields] = count + 1;
    l.unlock();
    (void)me;
  }
  dsm::barrier();
  CHECK_EQ(record[fields].get(), static_cast<std::uint64_t>(rounds * p));
}

// Every rank writes its own interleaved bytes of one unit in one interval:
// every write must survive the barrier.
template <class Policy>
void false_sharing() {
  const int me = dsm::rank(), p = dsm::ranks();
  dsm::shared_array<std::uint8_t, Policy> bytes(static_cast<std::size_t>(64 * p), dsm::block, dsm::unit_size{64}, "false-shared");
  for (int round = 1; round <= 3; ++round) {
    for (std::size_t i = static_cast<std::size_t>(me); i < 64; i += static_cast<std::size_t>(p))
      bytes[i] = static_cast<std::uint8_t>(round * 16 + me);
    dsm::barrier();
    std::size_t lost = 0;
    for (std::size_t i = 0; i < 64; ++i) lost += bytes[i] != static_cast<std::uint8_t>(round * 16 + static_cast<int>(i % static_cast<std::size_t>(p)));
    CHECK_EQ(lost, 0u);
    dsm::barrier();
  }
  if constexpr (std::is_same_v<Policy, dsm::single_writer>) {
    // The unit moved between writers: visible in the home's counters.
    const auto moves = dsm::allreduce(bytes.policy_state().stats().ownership_transfers.load());
    if (p > 1) CHECK(moves >= static_cast<std::uint64_t>(p - 1));
  }
  if constexpr (std::is_same_v<Policy, dsm::write_shared>) {
    const auto races = dsm::allreduce(bytes.policy_state().stats().races.load());
    CHECK_EQ(races, 0u);  // disjoint bytes are not a race
  }
}

// Element access checks the index in the policy (operator[] leaves it to
// read and write, so that a tiled hit folds it into one compare): every
// layout, tiled or not, refuses index size() and beyond, naming the array
// and the index, and leaves every element as it was.
template <class Policy>
void index_errors() {
  const int me = dsm::rank();
  for (const std::size_t n : {std::size_t{1024}, std::size_t{1001}})
    for (const bool cyclic : {false, true}) {
      const auto name = fmt::format("indexed {} {}", n, cyclic ? "cyclic" : "block");
      auto check = [&](auto layout) {
        dsm::shared_array<std::uint64_t, Policy> a(n, layout, dsm::unit_size{64}, name);
        std::size_t l = 0;
        for (std::size_t g : a.local_indices()) a.local()[l++] = value_of(g, 0);
        dsm::barrier();
        for (const std::size_t bad : {n, n + 1, n * 64, std::size_t{1} << 62, ~std::size_t{0}}) {
          const std::string read = CHECK_ERROR(dsm::errc::out_of_range, (void)a[bad].get());
          CHECK(read.find(fmt::format("'{}'", name)) != std::string::npos);
          CHECK(read.find(fmt::format("index {}", bad)) != std::string::npos);
          CHECK(read.find(fmt::format("rank {}", me)) != std::string::npos);
          if constexpr (!std::is_same_v<Policy, dsm::read_only>) {
            const std::string write = CHECK_ERROR(dsm::errc::out_of_range, a[bad] = 7);
            CHECK(write.find(fmt::format("index {}", bad)) != std::string::npos);
            CHECK_ERROR(dsm::errc::out_of_range, a[bad] += 1);
          }
        }
        dsm::barrier();
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < n; ++i) wrong += a[i] != value_of(i, 0);
        CHECK_EQ(wrong, 0u);
        dsm::barrier();
      };
      if (cyclic) check(dsm::cyclic);
      else check(dsm::block);
    }
}

void read_only_contract() {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t n = 300;
  dsm::shared_array<double, dsm::read_only> x(n, dsm::block_cyclic(7), dsm::unit_size{128}, "coefficients");
  std::size_t l = 0;
  for (std::size_t g : x.local_indices()) {
    if (g != 0) x.local()[l] = static_cast<double>(g) * 0.5;
    ++l;
  }
  if (me == p - 1) x[0] = -1.0;  // an element write before publication, possibly remote
  if (p > 1 && me != 1) {  // indices 7..13 are rank 1's: not copied before publication
    const std::string text = CHECK_ERROR(dsm::errc::invalid_argument, (void)x.read_span(7, 7));
    CHECK(text.find("before publication") != std::string::npos);
  }
  dsm::barrier();
  {
    const auto block = x.read_span(7, 7);
    double in_block = 0;
    for (double v : block) in_block += v;
    CHECK_EQ(in_block, 0.5 * (7 + 8 + 9 + 10 + 11 + 12 + 13));
  }
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += x[i];
  const auto misses = x.policy_state().stats().misses;
  CHECK(p == 1 || misses > 0);
  for (std::size_t i = 0; i < n; ++i) sum += x[i];
  CHECK_EQ(x.policy_state().stats().misses, misses);  // every unit was copied once: the second pass hits
  CHECK_EQ(sum, 2 * (-1.0 + 0.5 * static_cast<double>(n * (n - 1) / 2)));
  const std::string message = CHECK_ERROR(dsm::errc::read_only_violation, x[5] = 2.0);
  CHECK(message.find("'coefficients'") != std::string::npos);
  CHECK(message.find("index 5") != std::string::npos);
  const double one = 1.0;
  CHECK_ERROR(dsm::errc::read_only_violation, x.put(3, std::span<const double>(&one, 1)));
  dsm::barrier();
  CHECK_EQ(x[0].get(), -1.0);  // the refused writes changed nothing
  CHECK_EQ(x[5].get(), 2.5);
  index_errors<dsm::read_only>();
}

// Two ranks write the same byte of a write_shared unit in one interval.
void race_detection() {
  const int me = dsm::rank(), p = dsm::ranks();
  dsm::shared_array<std::uint32_t, dsm::write_shared> a(64, dsm::block, dsm::unit_size{64}, "contended");
  // Both copies are taken before either rank writes (a collective that is
  // not a barrier: no copy is dropped), so neither write can have seen the
  // other: a race whichever diff reaches the home first.
  const std::uint32_t before = a[5];
  dsm::allreduce(before);
  if (me == p - 1 || me == p - 2) a[5] = static_cast<std::uint32_t>(100 + me);
  bool refused = false;
  try {
    dsm::barrier();
  } catch (const dsm::error& e) {
    CHECK_EQ(dsm::to_string(e.category()), dsm::to_string(dsm::errc::data_race));
    const std::string text = e.what();
    CHECK(text.find("'contended'") != std::string::npos);
    CHECK(text.find("index 5") != std::string::npos);
    CHECK(text.find(fmt::format("rank {}", p - 1)) != std::string::npos);
    CHECK(text.find(fmt::format("rank {}", p - 2)) != std::string::npos);
    refused = true;
    dsm::barrier();  // the release half ran; finish the barrier
  }
  const auto races = dsm::allreduce(a.policy_state().stats().races.load());
  CHECK_EQ(races, 1u);
  const bool checked = std::getenv("DSM_CHECK_RACES") != nullptr && std::string_view(std::getenv("DSM_CHECK_RACES")) == "1";
  CHECK_EQ(dsm::allreduce(refused ? 1 : 0), checked ? 1 : 0);
  const std::uint32_t v = a[5];
  CHECK(v == static_cast<std::uint32_t>(100 + p - 1) || v == static_cast<std::uint32_t>(100 + p - 2));
}

// The protocol maintains exactly the ranges that move: a read_only miss
// invalidates the lines of the unit it fetched, publication cleans the
// lines of the home's block. Built once with maintenance forced on (x86-64:
// the real CLFLUSHOPT path), once with the platform default.
void maintenance_ranges() {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t per_rank = 1000;
  dsm::shared_array<double, dsm::read_only> x(per_rank * static_cast<std::size_t>(p), dsm::block, dsm::unit_size{128},
                                              "maintained");
  for (double& v : x.local()) v = 1.0;
  dsm::barrier();
  auto& s = x.policy_state();
  const auto line_bytes = [](const void* at, std::size_t bytes) {
    return dsm::arch::cache_maintenance_enabled ? dsm::arch::lines_touching(at, bytes).bytes() : 0;
  };
  CHECK_EQ(s.stats().bytes_cleaned.load(), line_bytes(x.local().data(), x.local().size_bytes()));
  const std::size_t next = static_cast<std::size_t>((me + 1) % p);
  double sum = 0;
  for (std::size_t i = next * per_rank; i < (next + 1) * per_rank; ++i) sum += x[i];
  CHECK_EQ(sum, static_cast<double>(per_rank));
  std::size_t expected = 0;
  const auto& units = s.units();
  if (p > 1)
    for (std::size_t u = next * units.units_per_rank(); u < (next + 1) * units.units_per_rank(); ++u)
      expected += line_bytes(s.copies().unit_data(u), units.bytes_in(u));
  CHECK_EQ(s.stats().bytes_invalidated.load(), expected);
  if (dsm::arch::cache_maintenance_enabled && p > 1) CHECK(expected >= per_rank * sizeof(double));
}

// Malformed coherence messages are rejected and counted, never applied;
// the array works on afterwards. Rank 0 sends rank 1 (home of units 8-15).
void malformed_messages() {
  const int me = dsm::rank(), p = dsm::ranks();
  dsm::shared_array<std::uint64_t, dsm::write_shared> a(static_cast<std::size_t>(64 * p), dsm::block, dsm::unit_size{64},
                                                        "target");
  auto& rt = dsm::detail::rt();
  const std::uint64_t before = rt.messages().rejected();
  dsm::barrier();
  namespace wire = dsm::coherence::wire;
  const std::uint64_t epoch1 = wire::stamp(0, 1);  // the array's interval is 1 after one barrier
  const std::size_t expected = 8;
  if (me == 0) {
    const std::uint64_t id = a.layout().object_id;
    const std::byte three[3]{};
    std::byte bad_run[8 + 8 + 1]{};  // base version, then a run of length 0
    rt.send_to_object(1, id + 1000, 8, wire::write | epoch1);          // no such object
    rt.send_to_object(1, id, std::uint64_t{1} << 30, wire::diff | epoch1);  // no such unit
    rt.send_to_object(1, id, 8, 99 | epoch1);                   // no such kind
    rt.send_to_object(1, id, 8, wire::grant | epoch1, three);         // a grant nobody asked for
    rt.send_to_object(1, id, 8, wire::stamp(wire::applied, 6));             // an interval far ahead
    rt.send_to_object(1, id, 8, wire::write | epoch1);                // ownership under write_shared
    rt.send_to_object(1, id, 8, wire::diff | epoch1, three);          // a diff too short for its header
    rt.send_to_object(1, id, 8, wire::diff | epoch1, bad_run);        // a diff with an empty run
  }
  if (me == 1)
    rt.worker().wait_until([&] { return rt.messages().rejected() - before >= expected; }, rt.worker().timeout(),
                           [] { return std::string("the malformed coherence messages"); });
  dsm::barrier();
  if (me == 1) CHECK_EQ(rt.messages().rejected() - before, expected);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < a.size(); ++i) wrong += a[i] != 0u;
  CHECK_EQ(wrong, 0u);
  dsm::barrier();
  a[static_cast<std::size_t>(64 + me)] = 7;  // unit 8, shared by every rank
  dsm::barrier();
  CHECK_EQ(a[static_cast<std::size_t>(64 + (me + 1) % p)].get(), 7u);
}

// A home that never serves its messages (polling progress, and it sleeps
// instead of calling into dsm): a write miss, which needs the home's
// directory, ends in errc::timeout naming the array, unit and home, not in
// a hang. Run with DSM_TIMEOUT=2.
void stalled_home() {
  const int me = dsm::rank();
  dsm::shared_array<std::uint64_t, dsm::single_writer> a(1024, dsm::block, dsm::unit_size{64}, "stalled");
  if (me == 1) std::this_thread::sleep_for(std::chrono::seconds(8));
  if (me == 0) a[1000] = 1;
}

// The same sleeping home (over shared memory, polling): read misses of
// every caching policy are gets of the home's memory, served without it,
// with what it wrote before the barrier, and over before it wakes.
double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
template <class Policy>
void sleeping_home() {
  const int me = dsm::rank();
  dsm::shared_array<std::uint64_t, Policy> a(1024, dsm::block, dsm::unit_size{1024}, "asleep");
  if (me == 1)
    for (std::size_t l = 0; l < a.local().size(); ++l) a.local()[l] = 512 + l;
  dsm::barrier();
  double read = 0, woke = 0;
  if (me == 1) {
    std::this_thread::sleep_for(std::chrono::seconds(3));
    woke = seconds_now();
  }
  if (me == 0) {
    std::size_t wrong = 0;
    for (std::size_t i = 512; i < 1024; ++i) wrong += a[i] != i;
    read = seconds_now();
    CHECK_EQ(wrong, 0u);
    const auto& st = a.policy_state().stats();
    CHECK(st.misses + st.prefetched >= 4);  // the 4 units were fetched (some ahead, by readahead)
  }
  const double read_at = dsm::allreduce(read, dsm::max{}), woke_at = dsm::allreduce(woke, dsm::max{});
  CHECK(read_at < woke_at);
  dsm::barrier();
}

// Spans: a read span over the next rank's block is its values (fetched as
// units), a range crossing owners is refused naming the array and where it
// crosses; under write_shared a write span's writes reach the home at the
// barrier, and its other elements stay as the home wrote them.
template <class Policy>
void spans() {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t n = 1000;
  dsm::shared_array<std::uint64_t, Policy> a(n, dsm::block, dsm::unit_size{64}, "spanned");
  std::size_t l = 0;
  for (std::size_t g : a.local_indices()) a.local()[l++] = value_of(g, 0);
  dsm::barrier();
  const std::size_t block = a.distribution().block_size();
  const std::size_t next = static_cast<std::size_t>((me + 1) % p);
  const std::size_t first = next * block, count = std::min(block, n - first);
  const auto view = a.read_span(first, count);
  std::size_t wrong = 0;
  for (std::size_t k = 0; k < count; ++k) wrong += view[k] != value_of(first + k, 0);
  CHECK_EQ(wrong, 0u);
  if (p > 1) {
    const std::string text = CHECK_ERROR(dsm::errc::invalid_argument, (void)a.read_span(block - 2, 4));
    CHECK(text.find("'spanned'") != std::string::npos);
    CHECK(text.find(fmt::format("crosses from rank 0's storage at index {}", block)) != std::string::npos);
  }
  CHECK_ERROR(dsm::errc::out_of_range, (void)a.read_span(n - 1, 2));
  dsm::barrier();
  if constexpr (std::is_same_v<Policy, dsm::write_shared>) {
    const auto out = a.write_span(first, std::min<std::size_t>(10, count));
    for (std::size_t k = 0; k < out.size(); ++k) out[k] = value_of(first + k, 1);
    dsm::barrier();
    std::size_t lost = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const bool written = i % block < 10;
      lost += a[i] != value_of(i, written ? 1 : 0);
    }
    CHECK_EQ(lost, 0u);
    dsm::barrier();
  }
}

// Sweeps (issue 13.3): a sequential walk over another rank's block is
// mostly served by readahead, a strided one never; prefetch() leaves no
// miss; advice::dontneed drops copies; a write to a unit still on its way
// is kept (the get completes before the grant); a copy fetched ahead of a
// lock acquire is not read stale after it.
template <class Policy>
void sweeps() {
  const int me = dsm::rank(), p = dsm::ranks();
  if (p < 2) return;
  const std::size_t per_unit = 128, units = 32, n = per_unit * units * static_cast<std::size_t>(p);
  dsm::shared_array<std::uint64_t, Policy> a(n, dsm::block, dsm::unit_size{1024}, "swept");
  std::size_t l = 0;
  for (std::size_t g : a.local_indices()) a.local()[l++] = value_of(g, 0);
  dsm::barrier();
  auto& s = a.policy_state().stats();
  const std::size_t next = static_cast<std::size_t>((me + 1) % p), first = next * per_unit * units;
  auto wrong_in = [&](std::size_t from, std::size_t count, int round) {
    std::size_t wrong = 0;
    for (std::size_t i = from; i < from + count; ++i) wrong += a[i] != value_of(i, round);
    return wrong;
  };
  // Sequential: readahead.
  auto misses = s.misses, ahead = s.prefetched;
  CHECK_EQ(wrong_in(first, per_unit * units, 0), 0u);
  CHECK(s.misses - misses < units / 4);
  CHECK(s.prefetched - ahead > units / 2);
  // dontneed, then a strided walk: every unit a miss, none fetched ahead.
  const auto dropped = s.copies_dropped;
  a.advise(first, per_unit * units, dsm::advice::dontneed);
  CHECK_EQ(s.copies_dropped - dropped, units);
  misses = s.misses, ahead = s.prefetched;
  std::size_t wrong = 0;
  for (std::size_t k = 0; k < units; ++k) {
    const std::size_t u = (k * 7) % units;  // 7 is coprime with 32: every unit once
    wrong += a[first + u * per_unit + 5] != value_of(first + u * per_unit + 5, 0);
  }
  CHECK_EQ(wrong, 0u);
  CHECK_EQ(s.misses - misses, units);
  CHECK_EQ(s.prefetched - ahead, 0u);
  // prefetch, then no miss.
  a.advise(first, per_unit * units, dsm::advice::dontneed);
  a.prefetch(first, per_unit * units);
  misses = s.misses;
  CHECK_EQ(wrong_in(first, per_unit * units, 0), 0u);
  CHECK_EQ(s.misses - misses, 0u);
  dsm::barrier();
  // A write into a unit still being fetched ahead survives.
  a.advise(first, per_unit, dsm::advice::willneed);
  a[first + 3] = value_of(first + 3, 1);
  dsm::barrier();
  CHECK_EQ(a[first + 3].get(), value_of(first + 3, 1));
  dsm::barrier();
  // Fetched ahead of an acquire, read after it: the home's release since
  // is seen. Rank r's unit 0 is rewritten under the lock by its home.
  dsm::lock guard;
  a.prefetch(first, per_unit);
  (void)dsm::allreduce(0);
  {
    std::scoped_lock g(guard);
    for (std::size_t k = 0; k < per_unit; ++k) {
      const std::size_t i = static_cast<std::size_t>(me) * per_unit * units + k;
      a[i] = value_of(i, 2);
    }
  }
  (void)dsm::allreduce(0);
  {
    std::scoped_lock g(guard);
    CHECK_EQ(wrong_in(first, per_unit, 2), 0u);
  }
  dsm::barrier();
}

// Every rank writes its own elements of every unit in passes over the
// whole array, so units move between writers while they write: a recall
// (single_writer) lands between a write hit's state check and its store.
// Each element is written once a round, so a store lost to that race stays
// lost and is caught here.
template <class Policy>
void writes_during_recalls() {
  const auto me = static_cast<std::size_t>(dsm::rank()), p = static_cast<std::size_t>(dsm::ranks());
  constexpr std::size_t per_unit = 1024, passes = 32;
  dsm::shared_array<std::uint32_t, Policy> a(per_unit * p, dsm::block, dsm::unit_size{per_unit * 4}, "recalled while written");
  for (std::uint32_t round = 1; round <= 2; ++round) {
    for (std::size_t pass = 0; pass < passes; ++pass)
      for (std::size_t i = me + pass * p; i < a.size(); i += p * passes) a[i] = round << 24 | static_cast<std::uint32_t>(i);
    dsm::barrier();
    std::size_t lost = 0;
    for (std::size_t i = 0; i < a.size(); ++i) lost += a[i] != (round << 24 | static_cast<std::uint32_t>(i));
    CHECK_EQ(lost, 0u);
    dsm::barrier();
  }
  if constexpr (std::is_same_v<Policy, dsm::single_writer>) {
    const auto moves = dsm::allreduce(a.policy_state().stats().ownership_transfers.load());
    CHECK(moves >= 2 * p * (p - 1));  // each round, every unit went to every rank but its home
  }
}

// Records updated under a lock, read then written field by field: no
// update is lost; under migratory each critical section took each unit at
// most once (the read takes it, the write hits: single_writer pays a read
// miss and then a write miss) and moved it at most once.
template <class Policy>
void migrating_records() {
  const int p = dsm::ranks();
  const std::size_t fields = 64;  // one 512 B unit per record
  dsm::shared_array<std::uint64_t, Policy> records(fields * 2, dsm::block, dsm::unit_size{512}, "migrating");
  std::size_t units = 0;  // with elements in them, over every rank's block
  for (std::size_t r = 0; r < static_cast<std::size_t>(p); ++r)
    units += (records.distribution().local_size(r) * sizeof(std::uint64_t) + 511) / 512;
  dsm::lock l;
  const int rounds = 5;
  const auto& s = records.policy_state().stats();
  const auto misses_before = s.misses;
  const auto transfers_before = s.ownership_transfers.load();
  for (int round = 0; round < rounds; ++round) {
    l.lock();
    for (std::size_t f = 0; f < records.size(); ++f) {
      const std::uint64_t v = records[f];
      records[f] = v + 1;
    }
    l.unlock();
  }
  const auto misses = s.misses - misses_before, moved = s.ownership_transfers.load() - transfers_before;
  dsm::barrier();
  std::size_t lost = 0;
  for (std::size_t f = 0; f < records.size(); ++f) lost += records[f] != static_cast<std::uint64_t>(rounds * p);
  CHECK_EQ(lost, 0u);
  if constexpr (std::is_same_v<Policy, dsm::migratory>) {
    CHECK(misses <= static_cast<std::uint64_t>(rounds) * units);
    CHECK(dsm::allreduce(moved) <= static_cast<std::uint64_t>(rounds * p) * units);
  }
  dsm::barrier();
}

template <class Policy>
void litmus() {
  barrier_visibility<Policy>(dsm::block, dsm::unit_size{});
  barrier_visibility<Policy>(dsm::cyclic, dsm::unit_size{64});
  barrier_visibility<Policy>(dsm::block_cyclic(5), dsm::unit_size{4096});
  lock_message_passing<Policy>(dsm::unit_size{64});
  lock_message_passing<Policy>(dsm::unit_size{1024});
  false_sharing<Policy>();
  writes_during_recalls<Policy>();
  spans<Policy>();
  sweeps<Policy>();
  index_errors<Policy>();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view policy = argc > 1 ? argv[1] : "";
  return dsm_test::run(argc, argv, [&] {
    if (policy == "single_writer") litmus<dsm::single_writer>();
    else if (policy == "write_shared") litmus<dsm::write_shared>();
    else if (policy == "read_only") read_only_contract();
    else if (policy == "migratory") {
      // single_writer's litmus but the readahead sweeps (reads take units, they fetch no copies)
      barrier_visibility<dsm::migratory>(dsm::block, dsm::unit_size{});
      barrier_visibility<dsm::migratory>(dsm::cyclic, dsm::unit_size{64});
      barrier_visibility<dsm::migratory>(dsm::block_cyclic(5), dsm::unit_size{4096});
      lock_message_passing<dsm::migratory>(dsm::unit_size{64});
      lock_message_passing<dsm::migratory>(dsm::unit_size{1024});
      false_sharing<dsm::migratory>();
      writes_during_recalls<dsm::migratory>();
      spans<dsm::migratory>();
      index_errors<dsm::migratory>();
      migrating_records<dsm::migratory>();
      migrating_records<dsm::single_writer>();
    }
    else if (policy == "maintenance") maintenance_ranges();
    else if (policy == "stalled") stalled_home();
    else if (policy == "sleeping") {
      sleeping_home<dsm::single_writer>();
      sleeping_home<dsm::write_shared>();
      sleeping_home<dsm::read_only>();
    }
    else if (policy == "malformed") {
      if (dsm::ranks() >= 2) malformed_messages();
    }
    else if (policy == "races") {
      if (dsm::ranks() >= 2) race_detection();
    } else CHECK(!"expected single_writer, write_shared, read_only, migratory, races, maintenance, stalled, sleeping or malformed");
  });
}

// Litmus tests of dsm::producer_consumer (argv[1] "litmus" or "malformed"):
// every home's writes of an interval are what every reader reads after the
// barrier, round after round, once the home pushes them (the readers' hits
// prove the pushes replaced the gets); in every layout and unit size;
// writes of part of a unit, a unit changed and changed back within an
// interval, a reader that stops reading and comes back, dontneed and
// prefetch, message passing through a lock, the contract (a write to
// another rank's element is errc::contract_violation and changes nothing)
// and malformed subscription messages refused with nothing applied.
#include "check.hpp"

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace {

using pc = dsm::producer_consumer;

std::uint64_t value_of(std::size_t i, int round) { return i * 2654435761u + static_cast<std::uint64_t>(round) * 977 + 1; }

std::uint64_t misses(dsm::shared_array<std::uint64_t, pc>& a) { return a.policy_state().stats().misses; }

// Collective: whether every rank's copy of every unit it does not home is
// subscribed (the home pushes to it). Subscriptions reach the homes late
// on a loaded machine, so tests that count pushes wait for this first.
bool all_subscribed(dsm::shared_array<std::uint64_t, pc>& a) {
  const auto& s = a.policy_state();
  std::uint64_t missing = 0;
  for (std::size_t u = 0; u < s.units().units(); ++u) missing += !s.copies().is_home(u) && !s.subscribed(u);
  return dsm::allreduce(missing) == 0;
}

// Each round every home rewrites its elements (through local(), element
// writes or put, in turn); after the barrier every rank reads every element
// (element reads, a bulk get or a span, in turn) and finds that round's
// values. Once every copy is subscribed a reader misses nothing: the
// homes pushed every change.
template <class Layout>
void updates_visible(Layout layout, dsm::unit_size unit, std::size_t n) {
  const int p = dsm::ranks();
  dsm::shared_array<std::uint64_t, pc> a(n, layout, unit, "produced");
  const auto mine = a.local_indices();
  std::vector<std::uint64_t> all(n);
  for (int round = 0; round < 8; ++round) {
    std::size_t l = 0;
    switch (round % 3) {
      case 0:
        for (std::size_t g : mine) a.local()[l++] = value_of(g, round);
        break;
      case 1:
        for (std::size_t g : mine) a[g] = value_of(g, round);
        break;
      default:
        for (std::size_t g : mine) a.put(g, std::span<const std::uint64_t>(std::vector<std::uint64_t>{value_of(g, round)}));
    }
    dsm::barrier();
    std::size_t wrong = 0;
    if (round % 3 == 0) {
      for (std::size_t i = 0; i < n; ++i) wrong += a[i] != value_of(i, round);
    } else if (round % 3 == 1) {
      a.get(0, all);
      for (std::size_t i = 0; i < n; ++i) wrong += all[i] != value_of(i, round);
    } else {
      a.distribution().for_each_run(0, n, [&](const dsm::distribution::run& r) {
        const auto span = a.read_span(r.first, r.count);
        for (std::size_t k = 0; k < r.count; ++k) wrong += span[k] != value_of(r.first + k, round);
      });
    }
    CHECK_EQ(wrong, 0u);
    dsm::barrier();
  }
  if (p > 1) CHECK(dsm::allreduce(a.policy_state().stats().updates) > 0u);
  // However late subscriptions reach the homes, every rank's copies end up
  // pushed (a bounded number of rounds); from then on nobody misses.
  int round = 8;
  auto one_round = [&] {
    std::size_t l = 0;
    for (std::size_t g : mine) a.local()[l++] = value_of(g, round);
    dsm::barrier();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < n; ++i) wrong += a[i] != value_of(i, round);
    CHECK_EQ(wrong, 0u);
    dsm::barrier();
    ++round;
  };
  while (round < 100 && !all_subscribed(a)) one_round();
  CHECK(round < 100);
  const auto misses_subscribed = misses(a);
  for (int k = 0; k < 3; ++k) one_round();
  CHECK_EQ(misses(a) - misses_subscribed, 0u);
}

// Part of a unit changes (its middle elements), and another unit is changed
// and changed back within one interval: readers see exactly the home's
// final bytes; once every copy is subscribed (its first push is whole),
// the pushes move only what changed.
void partial_changes() {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t per = 512;  // 8 units of 64 elements per rank
  dsm::shared_array<std::uint64_t, pc> a(per * static_cast<std::size_t>(p), dsm::block, dsm::unit_size{512}, "partial");
  auto expect = [&](std::size_t i, int round) {
    const std::size_t k = i % per;
    return k >= 70 && k < 75 && round > 0 ? value_of(i, round) : value_of(i, 0);
  };
  auto local = a.local();
  for (std::size_t k = 0; k < per; ++k) local[k] = value_of(static_cast<std::size_t>(me) * per + k, 0);
  int round = 0;
  auto one_round = [&] {
    if (round > 0) {
      for (std::size_t k = 70; k < 75; ++k) local[k] = value_of(static_cast<std::size_t>(me) * per + k, round);
      for (std::size_t k = 128; k < 192; ++k) local[k] = 0xdead;  // changed and changed back
      for (std::size_t k = 128; k < 192; ++k) local[k] = value_of(static_cast<std::size_t>(me) * per + k, 0);
    }
    dsm::barrier();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < a.size(); ++i) wrong += a[i] != expect(i, round);
    CHECK_EQ(wrong, 0u);
    dsm::barrier();
    ++round;
  };
  while (round < 6) one_round();
  if (p == 1) return;
  while (round < 100 && !all_subscribed(a)) one_round();
  CHECK(round < 100);
  const auto& s = a.policy_state().stats();
  const auto bytes_before = dsm::allreduce(s.update_bytes), updates_before = dsm::allreduce(s.updates);
  for (int k = 0; k < 3; ++k) one_round();
  // Per round, home and reader: one unit with 5 changed elements (at most
  // 40 of its 512 bytes), nothing for the unit changed back.
  const auto bytes = dsm::allreduce(s.update_bytes) - bytes_before;
  const auto updates = dsm::allreduce(s.updates) - updates_before;
  CHECK_EQ(updates, 3u * static_cast<std::uint64_t>(p) * static_cast<std::uint64_t>(p - 1));
  CHECK(bytes > 0u);
  CHECK(bytes <= updates * 5 * sizeof(std::uint64_t));
}

// A reader that stops reading a unit drops out of its copyset (after an
// update it did not read), and when it reads again it sees the current
// values: nothing it missed meanwhile is stale.
void readers_come_and_go() {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t n = 64 * static_cast<std::size_t>(p);
  dsm::shared_array<std::uint64_t, pc> a(n, dsm::block, dsm::unit_size{128}, "intermittent");
  for (int round = 0; round < 14; ++round) {
    std::size_t l = 0;
    for (std::size_t g : a.local_indices()) a.local()[l++] = value_of(g, round);
    dsm::barrier();
    const bool reading = round < 4 || round >= 9 || me == 0;
    if (reading) {
      std::size_t wrong = 0;
      for (std::size_t i = 0; i < n; ++i) wrong += a[i] != value_of(i, round);
      CHECK_EQ(wrong, 0u);
    }
    if (round == 8 && p > 1 && me != 0) {
      // Stopped reading at round 4: dropped out of every other home's copysets.
      std::size_t still = 0;
      for (std::size_t i = 0; i < n; i += 16)
        if (a.owner(i) != static_cast<std::size_t>(me)) still += a.policy_state().subscribed(i / 16);
      CHECK_EQ(still, 0u);
    }
    dsm::barrier();
  }
}

// advice::dontneed drops a copy and its subscription; prefetch brings the
// units before they are read. Either way the values are the current ones.
void advice_and_prefetch() {
  const int p = dsm::ranks();
  const std::size_t n = 1000;
  dsm::shared_array<std::uint64_t, pc> a(n, dsm::cyclic, dsm::unit_size{64}, "advised");
  for (int round = 0; round < 6; ++round) {
    std::size_t l = 0;
    for (std::size_t g : a.local_indices()) a.local()[l++] = value_of(g, round);
    dsm::barrier();
    if (round % 2 == 0) a.prefetch(0, n);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < n; ++i) wrong += a[i] != value_of(i, round);
    CHECK_EQ(wrong, 0u);
    if (round == 2) a.advise(0, n, dsm::advice::dontneed);
    dsm::barrier();
  }
  (void)p;
}

// Message passing through a lock: the record's home writes it under the
// lock; a reader that takes the lock after sees the whole record (the
// acquire dropped its copies, though it read the record before).
void lock_message_passing() {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t fields = 32;
  dsm::shared_array<std::uint64_t, pc> record(fields * static_cast<std::size_t>(p), dsm::block, dsm::unit_size{64}, "record");
  dsm::lock l;
  auto local = record.local();
  for (int round = 1; round <= 5; ++round) {
    l.lock();
    for (std::size_t f = 0; f < fields; ++f) local[f] = static_cast<std::uint64_t>(round * 1000 + me) * 100 + f;
    l.unlock();
    // Any rank's record, read under the lock: whole, never torn.
    l.lock();
    const std::size_t other = static_cast<std::size_t>((me + round) % p);
    const std::uint64_t first = record[other * fields];
    std::size_t torn = 0;
    const std::uint64_t base = first - first % 100;  // 0: not written yet (this round's writer may come later)
    for (std::size_t f = 0; f < fields; ++f) torn += record[other * fields + f] != (base == 0 ? 0 : base + f);
    CHECK_EQ(torn, 0u);
    CHECK(base == 0 || first / 100 % 1000 == other);
    CHECK(base == 0 || first / 100 / 1000 >= static_cast<std::uint64_t>(round - 1));  // never older than the last barrier's
    l.unlock();
    dsm::barrier();
    std::size_t wrong = 0;
    for (int r = 0; r < p; ++r)
      for (std::size_t f = 0; f < fields; ++f)
        wrong += record[static_cast<std::size_t>(r) * fields + f] != static_cast<std::uint64_t>(round * 1000 + r) * 100 + f;
    CHECK_EQ(wrong, 0u);
    dsm::barrier();
  }
}

// Only the home writes: element writes and puts to other ranks' elements
// are refused, naming the array, the index and both ranks, and change
// nothing.
void contract() {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t n = 100 * static_cast<std::size_t>(p);
  dsm::shared_array<std::uint64_t, pc> a(n, dsm::block, dsm::unit_size{64}, "owned");
  std::size_t l = 0;
  for (std::size_t g : a.local_indices()) a.local()[l++] = value_of(g, 0);
  dsm::barrier();
  if (p > 1) {
    const std::size_t theirs = (static_cast<std::size_t>(me + 1) % static_cast<std::size_t>(p)) * 100 + 3;
    const std::string w = CHECK_ERROR(dsm::errc::contract_violation, a[theirs] = 5);
    CHECK(w.find("'owned'") != std::string::npos);
    CHECK(w.find(fmt::format("index {}", theirs)) != std::string::npos);
    CHECK(w.find(fmt::format("rank {}", me)) != std::string::npos);
    CHECK(w.find(fmt::format("rank {}", a.owner(theirs))) != std::string::npos);
    const std::vector<std::uint64_t> many(150, 9);
    // Across this rank's elements and a neighbour's: refused whole.
    const std::size_t from = me + 1 == p ? static_cast<std::size_t>(me) * 100 - 50 : static_cast<std::size_t>(me) * 100 + 50;
    CHECK_ERROR(dsm::errc::contract_violation, a.put(from, many));
  }
  CHECK_ERROR(dsm::errc::out_of_range, a[n] = 1);
  dsm::barrier();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += a[i] != value_of(i, 0);
  CHECK_EQ(wrong, 0u);
  dsm::barrier();
}

// Malformed subscription messages are refused by the home (errc::protocol,
// counted as rejected) and change nothing: the array's pushes go on.
void malformed() {
  const int me = dsm::rank(), p = dsm::ranks();
  dsm::shared_array<std::uint64_t, pc> a(static_cast<std::size_t>(64 * p), dsm::block, dsm::unit_size{64}, "target");
  auto& rt = dsm::detail::rt();
  const std::uint64_t before = rt.messages().rejected();
  dsm::barrier();
  const std::size_t expected = 6;
  if (me == 0) {
    const std::uint64_t id = a.layout().object_id;
    auto change = [](std::uint64_t unit, std::uint32_t generation, std::uint32_t subscribe) {
      std::vector<std::byte> b(sizeof(dsm::coherence::subscription_change));
      const dsm::coherence::subscription_change c{unit, generation, subscribe};
      std::memcpy(b.data(), &c, sizeof c);
      return b;
    };
    const std::byte three[3]{};
    rt.send_to_object(1, id, 1000, 0, three);          // not whole changes
    rt.send_to_object(1, id, 1001, 0, change(0, 1, 1));    // unit 0 is rank 0's
    rt.send_to_object(1, id, 1002, 0, change(1u << 30, 1, 1));  // no such unit
    rt.send_to_object(1, id, 1003, 0, change(8, 0, 1));    // generation 0
    rt.send_to_object(1, id, 1004, 0, change(8, 1, 7));    // neither subscribe nor stop
    rt.send_to_object(1, id, 5000, 0, change(8, 1, 1));    // well formed, but far ahead: queued, never applied
    rt.send_to_object(1, id, 5000, 0, change(8, 1, 1));    // the same message number again
  }
  if (me == 1)
    rt.worker().wait_until([&] { return rt.messages().rejected() - before >= expected; }, rt.worker().timeout(),
                           [] { return std::string("the malformed subscription messages"); });
  dsm::barrier();
  if (me == 1) CHECK_EQ(rt.messages().rejected() - before, expected);
  for (int round = 0; round < 4; ++round) {
    std::size_t l = 0;
    for (std::size_t g : a.local_indices()) a.local()[l++] = value_of(g, round);
    dsm::barrier();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < a.size(); ++i) wrong += a[i] != value_of(i, round);
    CHECK_EQ(wrong, 0u);
    dsm::barrier();
  }
}

}  // namespace

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [&] {
    const std::string_view mode = argc > 1 ? argv[1] : "litmus";
    if (mode == "litmus") {
      updates_visible(dsm::block, dsm::unit_size{}, 1000);
      updates_visible(dsm::block, dsm::unit_size{64}, 1001);
      updates_visible(dsm::cyclic, dsm::unit_size{64}, 999);
      updates_visible(dsm::block_cyclic(5), dsm::unit_size{4096}, 1000);
      updates_visible(dsm::block, dsm::unit_size{dsm::unit_size::max_bytes}, 20000);
      partial_changes();
      readers_come_and_go();
      advice_and_prefetch();
      lock_message_passing();
      contract();
    } else if (mode == "malformed") {
      malformed();
    } else {
      CHECK(!"expected litmus or malformed");
    }
  });
}

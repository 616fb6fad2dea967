// Shared arrays and locks over teams (issue 16.4).
// Usage: team_array_test CASE
//   litmus POLICY  the world split by parity, each half one array of POLICY
//                  over it. Phase 1: rounds of writes, a barrier of the
//                  team, reads of every element (the two halves run
//                  different numbers of rounds, so neither waits for the
//                  other); phase 2: the same with dsm::barrier(), next to
//                  a world array. The writer of an element moves every
//                  round (each unit changes hands); a lost or stale write
//                  is a failed check naming the element
//   lock           a dsm::lock and a counter over each half: every member
//                  increments it under the lock, a different number of
//                  times per half
//   placement      where a team array's elements live: owners are team
//                  ranks, pointers home on their world ranks, local()
//                  covers this member's; arrays over a one-rank team and
//                  over local_team(); an invalid team is refused
//   outsider       a message to a team array from a rank outside its team
//                  is rejected, and the array works on
#include "check.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::uint64_t value_of(int round, std::size_t i) { return (static_cast<std::uint64_t>(round) << 32) ^ (i * 2654435761u); }

dsm::team halves() { return dsm::world().split(dsm::rank() % 2, dsm::rank()); }

// Who writes element i in `round`: the owner for producer_consumer (its
// units are written by their home), otherwise a member that moves on
// every round.
template <class Policy, class Array>
bool writes(const Array& a, std::size_t i, int round) {
  const int n = a.team().size(), me = a.team().rank();
  if constexpr (std::same_as<Policy, dsm::producer_consumer>)
    return a.owner(i) == static_cast<std::size_t>(me);
  else
    return static_cast<int>((i + static_cast<std::size_t>(round)) % static_cast<std::size_t>(n)) == me;
}

// One round on array a: writes, sync(), a check of every element, sync().
template <class Policy, class Array, class Sync>
void round_of_writes(Array& a, int round, Sync sync) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (writes<Policy>(a, i, round)) a[i] = value_of(round, i);
  sync();
  std::size_t wrong = 0, first_wrong = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].get() != value_of(round, i) && wrong++ == 0) first_wrong = i;
  if (wrong != 0)
    dsm_test::report(false, "every element holds this round's write", __FILE__, __LINE__,
                     fmt::format("{}: round {}: {} stale element(s), first [{}] = {:#x}, expected {:#x}", a.describe(),
                                 round, wrong, first_wrong, a[first_wrong].get(), value_of(round, first_wrong)));
  sync();
}

// A reduction array: every member adds round + its team rank + 1 + i to
// element i; after the barrier each holds the sum so far (`base` for
// element 0, plus i for each member and round).
struct sums_so_far {
  std::uint64_t base = 0, rounds = 0;
};
template <class Array, class Sync>
void round_of_sums(Array& a, int round, sums_so_far& expected, Sync sync) {
  const int n = a.team().size(), me = a.team().rank();
  for (std::size_t i = 0; i < a.size(); ++i) a[i] += static_cast<std::uint64_t>(round + me + 1) + i;
  sync();
  for (int m = 0; m < n; ++m) expected.base += static_cast<std::uint64_t>(round + m + 1);
  ++expected.rounds;
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    wrong += a[i].get() != expected.base + i * expected.rounds * static_cast<std::uint64_t>(n);
  CHECK_EQ(wrong, 0u);
  sync();
}

template <class Policy>
void litmus() {
  const dsm::team half = halves();
  const int n = half.size();
  const std::size_t size = 96 * static_cast<std::size_t>(n) + 5;  // the last block is short
  dsm::shared_array<std::uint64_t, Policy> a(half, size, dsm::block, dsm::unit_size{64}, "litmus");
  dsm::shared_array<std::uint64_t, dsm::single_writer> everyone(static_cast<std::size_t>(16 * dsm::ranks()), "everyone");
  const auto team_barrier = [&] { dsm::barrier(half); };
  const auto world_barrier = [] { dsm::barrier(); };
  const int team_rounds = 3 + 4 * (dsm::rank() % 2);
  if constexpr (std::same_as<Policy, dsm::read_only>) {
    // Written once, by the owners, before the first barrier; then read.
    for (std::size_t i = 0; i < size; ++i)
      if (a.owner(i) == static_cast<std::size_t>(half.rank())) a[i] = value_of(1, i);
    for (int b = 0; b < team_rounds; ++b) team_barrier();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < size; ++i) wrong += a[i].get() != value_of(1, i);
    CHECK_EQ(wrong, 0u);
    world_barrier();
  } else if constexpr (dsm::coherence::is_reduction<Policy>) {
    // Rounds interleave the two kinds of barrier: sums carry across both.
    sums_so_far expected;
    int round = 0;
    for (; round < team_rounds; ++round) round_of_sums(a, round, expected, team_barrier);
    for (int r = 0; r < 3; ++r, ++round) round_of_sums(a, round, expected, world_barrier);
  } else {
    for (int round = 1; round <= team_rounds; ++round) round_of_writes<Policy>(a, round, team_barrier);
    for (int round = 100; round < 103; ++round) {
      round_of_writes<Policy>(a, round, world_barrier);
      round_of_writes<dsm::single_writer>(everyone, round, world_barrier);
    }
  }
}

void lock_counts() {
  const dsm::team half = halves();
  dsm::lock l(half);
  dsm::shared_array<std::uint64_t, dsm::single_writer> counter(half, 1, "counter");
  const int times = 40 + 25 * (dsm::rank() % 2);
  for (int k = 0; k < times; ++k) {
    l.lock();
    counter[0] = counter[0].get() + 1;
    l.unlock();
  }
  dsm::barrier(half);
  CHECK_EQ(counter[0].get(), static_cast<std::uint64_t>(times * half.size()));
  dsm::barrier(half);
}

template <class Array>
void check_placement(Array& a, const dsm::team& t) {
  CHECK(a.team() == t);
  CHECK_EQ(dsm::allreduce(t, a.local_size()), a.size());
  std::size_t misplaced = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::size_t owner = a.owner(i);
    misplaced += owner >= static_cast<std::size_t>(t.size()) ||
                 static_cast<int>(a.pointer(i).home_rank()) != t.world_rank(static_cast<int>(owner));
  }
  CHECK_EQ(misplaced, 0u);
  // Every member fills its own elements in place; all of them read back.
  std::size_t k = 0;
  for (const std::size_t i : a.local_indices()) a.local()[k++] = value_of(7, i);
  dsm::barrier(t);
  std::vector<std::uint64_t> all(a.size());
  a.get(0, all.size(), all.data());
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < all.size(); ++i) wrong += all[i] != value_of(7, i);
  CHECK_EQ(wrong, 0u);
  dsm::barrier(t);
}

void placement() {
  const dsm::team half = halves();
  {
    dsm::shared_array<std::uint64_t, dsm::direct> a(half, 1000, dsm::block_cyclic{7}, "placed");
    check_placement(a, half);
    CHECK(a.describe().find(" over team ") != std::string::npos);
  }
  {
    const dsm::team alone = dsm::world().split(dsm::rank(), 0);
    dsm::shared_array<std::uint64_t, dsm::write_shared> a(alone, 300, "alone");
    check_placement(a, alone);
  }
  {
    const dsm::team local = dsm::local_team();
    dsm::shared_array<std::uint64_t, dsm::single_writer> a(local, 500, dsm::cyclic, "local");
    check_placement(a, local);
  }
  // No member: refused before any collective step (the others go on).
  const dsm::team none = dsm::world().split(dsm::team::no_color, 0);
  CHECK_ERROR(dsm::errc::invalid_argument, dsm::shared_array<int> a(none, 10));
  CHECK_ERROR(dsm::errc::invalid_argument, dsm::lock l(none));
  CHECK_ERROR(dsm::errc::invalid_argument, (void)dsm::allocate_collective<int>(none, 4));
  dsm::barrier();
}

// World rank 1 is in the odd half; rank 0's array is the even half's.
void outsider() {
  if (dsm::ranks() < 2) return;
  const int me = dsm::rank();
  const dsm::team half = halves();
  dsm::shared_array<std::uint64_t, dsm::single_writer> a(half, 64 * static_cast<std::size_t>(half.size()), dsm::block,
                                                         dsm::unit_size{64}, "guarded");
  auto& rt = dsm::detail::rt();
  const std::uint64_t id = dsm::broadcast(a.layout().object_id, 0);
  const std::uint64_t before = rt.messages().rejected();
  dsm::barrier();
  namespace wire = dsm::coherence::wire;
  if (me == 1) rt.send_to_object(0, id, 0, wire::stamp(wire::write, 1));  // world ranks: to rank 0
  if (me == 0)
    rt.worker().wait_until([&] { return rt.messages().rejected() - before >= 1; }, rt.worker().timeout(),
                           [] { return std::string("the outsider's message"); });
  dsm::barrier();
  if (me == 0) CHECK_EQ(rt.messages().rejected() - before, 1u);
  round_of_writes<dsm::single_writer>(a, 1, [&] { dsm::barrier(half); });
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view which = argc > 1 ? argv[1] : "";
  const std::string_view policy = argc > 2 ? argv[2] : "";
  return dsm_test::run(argc, argv, [&] {
    if (which == "litmus") {
      if (policy == "direct") litmus<dsm::direct>();
      else if (policy == "single_writer") litmus<dsm::single_writer>();
      else if (policy == "write_shared") litmus<dsm::write_shared>();
      else if (policy == "migratory") litmus<dsm::migratory>();
      else if (policy == "producer_consumer") litmus<dsm::producer_consumer>();
      else if (policy == "read_only") litmus<dsm::read_only>();
      else if (policy == "reduction") litmus<dsm::reduction<dsm::sum>>();
      else CHECK_EQ(std::string(policy), std::string("a policy"));
    } else if (which == "lock") {
      lock_counts();
    } else if (which == "placement") {
      placement();
    } else if (which == "outsider") {
      outsider();
    } else {
      CHECK_EQ(std::string(which), std::string("a case"));
    }
  });
}

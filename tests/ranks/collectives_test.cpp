// Collectives and teams (issue 16.3-5). Usage: collectives_test CASE
//   all        barrier ordering; broadcast, reduce, allreduce, scan, exscan,
//              gather(v), scatter(v), allgather(v), alltoall(v) against
//              values computed here, reductions bitwise equal on every
//              rank and to the documented tree, an associative operator
//              that does not commute kept in rank order, both allreduce
//              algorithms; non-blocking forms waited for after other
//              collectives; teams (split, local_team) and their
//              collectives; arguments refused before anything is sent
//   mismatch-* ranks that disagree on a collective: every rank reports
//              errc::collective_mismatch naming both (checked by
//              expect_run.py from what each rank prints)
#include "check.hpp"

#include <bit>
#include <cstdio>
#include <limits>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

// x -> m x + c (mod 2^64); combine(a, b) applies a, then b: associative,
// not commutative, exact.
struct affine {
  std::uint64_t m, c;
  friend bool operator==(const affine&, const affine&) = default;
};
struct then {
  affine operator()(const affine& a, const affine& b) const { return {a.m * b.m, a.c * b.m + b.c}; }
  template <class T>
  static constexpr T identity() {
    return {1, 0};
  }
};
affine map_of(int rank, std::size_t i) { return {2 * static_cast<std::uint64_t>(rank) + 3 + i, 7 * i + static_cast<std::uint64_t>(rank)}; }

// The documented tree, computed here from every rank's value: ranks 2i+1
// folded into 2i while the count is past a power of two, then neighbours
// paired, lower on the left.
template <class T, class Op>
T tree_of(std::vector<T> v, Op op) {
  const std::size_t q = std::bit_floor(v.size()), excess = v.size() - q;
  std::vector<T> level;
  for (std::size_t r = 0; r < v.size(); ++r) {
    if (r < 2 * excess && r % 2 == 1) continue;
    level.push_back(r < 2 * excess ? op(v[r], v[r + 1]) : v[r]);
  }
  while (level.size() > 1) {
    std::vector<T> up;
    for (std::size_t k = 0; k < level.size(); k += 2) up.push_back(op(level[k], level[k + 1]));
    level = std::move(up);
  }
  return level[0];
}

double value_of(int rank, std::size_t i) { return 1.0 / (3.0 + rank + 0.001 * static_cast<double>(i)); }

std::uint64_t bits_of(double d) { return std::bit_cast<std::uint64_t>(d); }

void reductions() {
  const int me = dsm::rank(), n = dsm::ranks();
  CHECK_EQ(dsm::allreduce(me + 1), n * (n + 1) / 2);
  CHECK_EQ(dsm::allreduce(me * 2.5, dsm::min{}), 0.0);
  CHECK_EQ(dsm::allreduce(std::int64_t(me) - 7, dsm::max{}), std::int64_t(n - 1) - 7);
  // Both algorithms (whole vectors up to 4 KiB, halves beyond), counts
  // below the rank count too: the same tree, the same bits everywhere.
  for (const std::size_t count : {std::size_t{1}, std::size_t{3}, std::size_t{700}, std::size_t{5000}}) {
    std::vector<double> v(count);
    for (std::size_t i = 0; i < count; ++i) v[i] = value_of(me, i);
    dsm::allreduce(std::span<double>(v));
    std::uint64_t wrong = 0;
    for (std::size_t i = 0; i < count; ++i) {
      std::vector<double> each(static_cast<std::size_t>(n));
      for (int r = 0; r < n; ++r) each[static_cast<std::size_t>(r)] = value_of(r, i);
      wrong += bits_of(v[i]) != bits_of(tree_of(each, dsm::sum{}));
    }
    CHECK_EQ(wrong, 0u);
    // reduce to every root: allreduce's bits; the others' values untouched.
    for (int root = 0; root < n; ++root) {
      std::vector<double> w(count);
      for (std::size_t i = 0; i < count; ++i) w[i] = value_of(me, i);
      dsm::reduce(std::span<double>(w), root);
      std::uint64_t off = 0;
      for (std::size_t i = 0; i < count; ++i) off += bits_of(w[i]) != bits_of(me == root ? v[i] : value_of(me, i));
      CHECK_EQ(off, 0u);
    }
    // In rank order: the composition of every rank's map, 0 first.
    std::vector<affine> maps(count);
    for (std::size_t i = 0; i < count; ++i) maps[i] = map_of(me, i);
    dsm::allreduce(std::span<affine>(maps), then{});
    std::uint64_t out_of_order = 0;
    for (std::size_t i = 0; i < count; ++i) {
      affine expected = map_of(0, i);
      for (int r = 1; r < n; ++r) expected = then{}(expected, map_of(r, i));
      out_of_order += !(maps[i] == expected);
    }
    CHECK_EQ(out_of_order, 0u);
  }
  CHECK_EQ(dsm::reduce(me + 1, n - 1), me == n - 1 ? n * (n + 1) / 2 : me + 1);

  // Prefixes: inclusive and exclusive, sums and the ordered maps.
  CHECK_EQ(dsm::scan(me + 1), (me + 1) * (me + 2) / 2);
  CHECK_EQ(dsm::exscan(me + 1), me * (me + 1) / 2);
  CHECK_EQ(dsm::exscan(me + 1, dsm::max{}), me == 0 ? std::numeric_limits<int>::lowest() : me);
  std::vector<affine> prefix(3), before(3);
  for (std::size_t i = 0; i < 3; ++i) prefix[i] = before[i] = map_of(me, i);
  dsm::scan(std::span<affine>(prefix), then{});
  dsm::exscan(std::span<affine>(before), then{});
  for (std::size_t i = 0; i < 3; ++i) {
    affine upto = then::identity<affine>();
    for (int r = 0; r < me; ++r) upto = then{}(upto, map_of(r, i));
    CHECK(before[i] == upto);
    CHECK(prefix[i] == then{}(upto, map_of(me, i)));
  }
}

void movement() {
  const int me = dsm::rank(), n = dsm::ranks();
  const auto un = static_cast<std::size_t>(n);
  for (int root = 0; root < n; ++root) {
    CHECK_EQ(dsm::broadcast(me == root ? 1000 + root : -1, root), 1000 + root);
    std::vector<double> v(5, me == root ? root + 0.5 : -1.0);
    dsm::broadcast(std::span<double>(v), root);
    for (double x : v) CHECK_EQ(x, root + 0.5);
    std::vector<int> sized(me == root ? static_cast<std::size_t>(root + 3) : 1, me == root ? 9 : 0);
    dsm::broadcast(sized, root);  // resized to the root's
    CHECK_EQ(sized.size(), static_cast<std::size_t>(root + 3));
    for (int x : sized) CHECK_EQ(x, 9);

    // gather and gatherv to this root; scatter and scatterv from it.
    const auto gathered = dsm::gather(me * 10, root);
    CHECK_EQ(gathered.size(), me == root ? un : 0u);
    for (std::size_t r = 0; r < gathered.size(); ++r) CHECK_EQ(gathered[r], static_cast<int>(r) * 10);
    const std::vector<int> mine(static_cast<std::size_t>(me), me);  // rank r gives r copies of r
    const auto uneven = dsm::gatherv(std::span<const int>(mine), root);
    CHECK_EQ(uneven.size(), me == root ? un : 0u);
    for (std::size_t r = 0; r < uneven.size(); ++r) CHECK(uneven[r] == std::vector<int>(r, static_cast<int>(r)));
    std::vector<int> all;
    if (me == root)
      for (int r = 0; r < n; ++r) all.insert(all.end(), {r, r + 100});
    CHECK(dsm::scatter(std::span<const int>(all), root) == (std::vector<int>{me, me + 100}));
    std::vector<std::vector<int>> parts;
    if (me == root)
      for (int r = 0; r < n; ++r) parts.emplace_back(static_cast<std::size_t>(r + 1), -r);
    CHECK(dsm::scatterv(std::span<const std::vector<int>>(parts), root) == std::vector<int>(static_cast<std::size_t>(me + 1), -me));
  }
  const auto ids = dsm::allgather(me * 10);
  CHECK_EQ(ids.size(), un);
  for (int r = 0; r < n; ++r) CHECK_EQ(ids[static_cast<std::size_t>(r)], r * 10);
  const std::vector<std::int64_t> pair{me, -me};
  const auto pairs = dsm::allgather(std::span<const std::int64_t>(pair));
  CHECK_EQ(pairs.size(), 2 * un);
  for (int r = 0; r < n; ++r) CHECK(pairs[2 * static_cast<std::size_t>(r)] == r && pairs[2 * static_cast<std::size_t>(r) + 1] == -r);
  const std::vector<char> text(static_cast<std::size_t>(me + 1), static_cast<char>('a' + me));
  const auto texts = dsm::allgatherv(std::span<const char>(text));
  for (int r = 0; r < n; ++r)
    CHECK(texts[static_cast<std::size_t>(r)] == std::vector<char>(static_cast<std::size_t>(r + 1), static_cast<char>('a' + r)));

  // alltoall: block r of rank s is {s, r}; alltoallv: s sends r copies of s*100+r.
  std::vector<int> send;
  for (int r = 0; r < n; ++r) send.insert(send.end(), {me, r});
  const auto got = dsm::alltoall(std::span<const int>(send));
  for (int s = 0; s < n; ++s) CHECK(got[2 * static_cast<std::size_t>(s)] == s && got[2 * static_cast<std::size_t>(s) + 1] == me);
  std::vector<std::vector<int>> to_each;
  for (int r = 0; r < n; ++r) to_each.emplace_back(static_cast<std::size_t>(r), me * 100 + r);
  const auto from = dsm::alltoallv(std::span<const std::vector<int>>(to_each));
  for (int s = 0; s < n; ++s) CHECK(from[static_cast<std::size_t>(s)] == std::vector<int>(static_cast<std::size_t>(me), s * 100 + me));
}

// Non-blocking: started, then other collectives (blocking and not), then
// waited for in another order on different ranks; each rank's waits
// advance the others' operations.
void nonblocking() {
  const int me = dsm::rank(), n = dsm::ranks();
  std::vector<double> big(3000), small{static_cast<double>(me)};
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = value_of(me, i);
  std::vector<int> root_value{me == 0 ? 42 : 0};
  auto sum = dsm::allreduce_async(std::span<double>(big));
  auto bcast = dsm::broadcast_async(dsm::world(), std::span<int>(root_value), 0);
  auto mx = dsm::allreduce_async(dsm::world(), std::span<double>(small), dsm::max{});
  const std::vector<int> mine{me};
  auto everyone = dsm::allgatherv_async(dsm::world(), std::span<const int>(mine));
  if (me % 2 == 0) {
    dsm::barrier();
    sum.wait();
  } else {
    sum.wait();
    dsm::barrier();
  }
  CHECK_EQ(dsm::allreduce(1), n);  // a blocking one while the others are in flight
  auto fence = dsm::barrier_async(dsm::world());
  if (me == n - 1)
    while (!mx.ready()) {
    }
  mx.wait();
  bcast.wait();
  const auto all = everyone.wait();
  fence.wait();
  CHECK_EQ(small[0], static_cast<double>(n - 1));
  CHECK_EQ(root_value[0], 42);
  CHECK_EQ(all.size(), static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) CHECK(all[static_cast<std::size_t>(r)] == std::vector<int>{r});
  std::uint64_t wrong = 0;
  for (std::size_t i = 0; i < big.size(); ++i) {
    std::vector<double> each(static_cast<std::size_t>(n));
    for (int r = 0; r < n; ++r) each[static_cast<std::size_t>(r)] = value_of(r, i);
    wrong += bits_of(big[i]) != bits_of(tree_of(each, dsm::sum{}));
  }
  CHECK_EQ(wrong, 0u);
  // Destroyed unwaited: completed by its destructor.
  { auto dropped = dsm::allreduce_async(std::span<double>(small)); }
  CHECK_EQ(small[0], static_cast<double>(n - 1) * n);
}

void teams() {
  const int me = dsm::rank(), n = dsm::ranks();
  const dsm::team world = dsm::world();
  CHECK_EQ(world.rank(), me);
  CHECK_EQ(world.size(), n);
  const dsm::team local = dsm::local_team();  // one machine: everyone
  CHECK_EQ(local.size(), n);
  CHECK_EQ(local.rank(), me);
  // By parity, ranked in reverse.
  const dsm::team half = world.split(me % 2, -me);
  const int expected_size = (n - me % 2 + 1) / 2;
  CHECK_EQ(half.size(), expected_size);
  CHECK_EQ(half.world_rank(half.rank()), me);
  for (int r = 0; r + 1 < half.size(); ++r) CHECK(half.world_rank(r) > half.world_rank(r + 1));
  CHECK_EQ(half.rank_of(me), half.rank());
  int parity_sum = 0;
  for (int r = me % 2; r < n; r += 2) parity_sum += r;
  CHECK_EQ(dsm::allreduce(half, me), parity_sum);
  CHECK_EQ(dsm::broadcast(half, me, 0), half.world_rank(0));
  dsm::barrier(half);
  CHECK(dsm::allgather(half, me) == [&] {
    std::vector<int> w;
    for (int r = 0; r < half.size(); ++r) w.push_back(half.world_rank(r));
    return w;
  }());
  CHECK_EQ(dsm::scan(half, 1), half.rank() + 1);
  // The halves' collectives interleave with the world's on their own sequences.
  std::vector<int> h{1};
  auto on_half = dsm::allreduce_async(half, std::span<int>(h));
  CHECK_EQ(dsm::allreduce(1), n);
  on_half.wait();
  CHECK_EQ(h[0], half.size());
  // Only rank 0 joins; the rest pass no_color.
  const dsm::team alone = world.split(me == 0 ? 0 : dsm::team::no_color, 0);
  CHECK_EQ(alone.valid(), me == 0);
  if (me == 0) CHECK_EQ(dsm::allreduce(alone, 5), 5);
  else CHECK_ERROR(dsm::errc::invalid_argument, (void)alone.size());
  // A split of a split.
  const dsm::team quarter = half.split(half.rank() % 2, half.rank());
  CHECK_EQ(dsm::allreduce(quarter, 1), quarter.size());
  CHECK_ERROR(dsm::errc::invalid_argument, (void)world.split(-5, 0));
  dsm::barrier();
}

void refused() {
  const int me = dsm::rank(), n = dsm::ranks();
  CHECK_ERROR(dsm::errc::invalid_argument, dsm::broadcast(1, n));
  CHECK_ERROR(dsm::errc::invalid_argument, (void)dsm::reduce(1, -1));
  const std::vector<int> three{1, 2, 3};
  if (n > 1 && n != 3) CHECK_ERROR(dsm::errc::invalid_argument, (void)dsm::alltoall(std::span<const int>(three)));
  const std::vector<std::vector<int>> too_few(static_cast<std::size_t>(n + 1));
  CHECK_ERROR(dsm::errc::invalid_argument, (void)dsm::alltoallv(std::span<const std::vector<int>>(too_few)));
  (void)me;
  dsm::barrier();
}

void barrier_ordering() {
  const int me = dsm::rank(), n = dsm::ranks();
  // In phase k every rank writes k into its slot of rank 0's array; after
  // the barrier every slot reads k.
  const auto slots = dsm::allocate_collective<std::int64_t>(static_cast<std::size_t>(n))[0];
  for (std::int64_t phase = 1; phase <= 20; ++phase) {
    dsm::rput(phase, slots + me).wait();
    dsm::barrier();
    std::vector<std::int64_t> seen(static_cast<std::size_t>(n));
    dsm::rget(slots, seen.size(), seen.data()).wait();
    for (auto v : seen) CHECK_EQ(v, phase);
    dsm::barrier();
  }
}

// Each rank prints what it was told; expect_run.py checks every rank's line.
template <class F>
void report_mismatch(F&& f) {
  const int me = dsm::rank();
  dsm::barrier();
  if (me == 0) fmt::print("mismatch starts\n");
  std::fflush(stdout);
  try {
    f();
    fmt::print("rank {}: no error\n", me);
  } catch (const dsm::error& e) {
    fmt::print("rank {}: {}: {}\n", me, dsm::to_string(e.category()), e.message());
  }
  std::fflush(stdout);
}

void mismatch(std::string_view which) {
  const int me = dsm::rank();
  report_mismatch([&] {
    if (which == "mismatch-array-on-one-rank") {
      if (me == 0) dsm::shared_array<double, dsm::direct> a(100, "lonely");
      dsm::barrier();
    } else if (which == "mismatch-sizes") {
      dsm::shared_array<double> a(static_cast<std::size_t>(100 + me), "sized");
    } else if (which == "mismatch-policies") {
      if (me == 0) dsm::shared_array<int, dsm::direct> a(64, "p");
      else dsm::shared_array<int, dsm::write_shared> a(64, "p");
    } else if (which == "mismatch-counts") {
      std::vector<int> v(static_cast<std::size_t>(me + 1), 1);
      dsm::allreduce(std::span<int>(v));
    } else if (which == "mismatch-roots") {
      // Two roots receive nothing: their messages, which nobody awaits,
      // are found by the next collective's end, and everyone is told.
      (void)dsm::broadcast(me, me == 0 ? 0 : 1);
      dsm::barrier();
    } else if (which == "mismatch-team-sizes") {
      // The even half disagrees (ranks 0 and 2); rank 1, alone in its
      // half, builds its array and hears of the mismatch at the barrier.
      const dsm::team half = dsm::world().split(me % 2, me);
      { dsm::shared_array<double> a(half, static_cast<std::size_t>(100 + me), "teamed"); }
      dsm::barrier();
    } else if (which == "mismatch-allocation") {
      (void)dsm::allocate_collective<int>(me == 0 ? 4 : 8);
    } else if (which == "mismatch-kinds") {
      if (me == 0) dsm::barrier();
      else (void)dsm::allgather(me);
    }
    dsm::barrier();
  });
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view which = argc > 1 ? argv[1] : "";
  if (which.starts_with("mismatch-")) {
    dsm::runtime rt{argc, argv};
    mismatch(which);
    return 1;  // the job failed: this rank says so too
  }
  return dsm_test::run(argc, argv, [&] {
    if (which == "all") {
      barrier_ordering();
      reductions();
      movement();
      nonblocking();
      teams();
      refused();
    } else {
      CHECK(!"expected all or mismatch-*");
    }
  });
}

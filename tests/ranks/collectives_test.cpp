// barrier ordering, broadcast from every root, allreduce (sum, min, max;
// scalars and spans), allgather.
#include "check.hpp"

#include <cstdint>
#include <vector>

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [] {
    const int me = dsm::rank(), n = dsm::ranks();

    // Barrier ordering: in phase k every rank writes k into its slot of
    // rank 0's array; after the barrier every slot reads k, before the next
    // phase's writes (a second barrier) it still does.
    const auto slots = dsm::allocate_collective<std::int64_t>(static_cast<std::size_t>(n))[0];
    for (std::int64_t phase = 1; phase <= 20; ++phase) {
      dsm::rput(phase, slots + me).wait();
      dsm::barrier();
      std::vector<std::int64_t> seen(static_cast<std::size_t>(n));
      dsm::rget(slots, seen.size(), seen.data()).wait();
      for (auto v : seen) CHECK_EQ(v, phase);
      dsm::barrier();
    }

    for (int root = 0; root < n; ++root) {
      CHECK_EQ(dsm::broadcast(me == root ? 1000 + root : -1, root), 1000 + root);
      std::vector<double> v(5, me == root ? root + 0.5 : -1.0);
      dsm::broadcast(std::span<double>(v), root);
      for (double x : v) CHECK_EQ(x, root + 0.5);
    }
    CHECK_ERROR(dsm::errc::invalid_argument, dsm::broadcast(1, n));

    CHECK_EQ(dsm::allreduce(me + 1), n * (n + 1) / 2);
    CHECK_EQ(dsm::allreduce(me * 2.5, dsm::min{}), 0.0);
    CHECK_EQ(dsm::allreduce(std::int64_t(me) - 7, dsm::max{}), std::int64_t(n - 1) - 7);
    std::vector<std::uint64_t> span{std::uint64_t(me), 1, std::uint64_t(me * me)};
    dsm::allreduce(std::span<std::uint64_t>(span));
    std::uint64_t squares = 0;
    for (int r = 0; r < n; ++r) squares += std::uint64_t(r * r);
    CHECK_EQ(span[0], std::uint64_t(n * (n - 1) / 2));
    CHECK_EQ(span[1], std::uint64_t(n));
    CHECK_EQ(span[2], squares);
    // Floating-point sums are bitwise equal on every rank.
    const double f = dsm::allreduce(1.0 / (me + 3));
    const auto fs = dsm::allgather(f);
    for (double x : fs) CHECK(x == f);

    const auto ids = dsm::allgather(me * 10);
    CHECK_EQ(ids.size(), static_cast<std::size_t>(n));
    for (int r = 0; r < n; ++r) CHECK_EQ(ids[static_cast<std::size_t>(r)], r * 10);
    // Mismatched contributions are an error, not garbage.
    if (n > 1) {
      std::vector<int> uneven(me == 0 ? 2 : 3, 1);
      CHECK_ERROR(dsm::errc::invalid_argument, dsm::allreduce(std::span<int>(uneven)));
    }
    dsm::barrier();
  });
}

// Litmus tests of dsm::reduction<Op>: no contribution is lost or counted
// twice across barriers (every layout, small and large units), floating
// point combined in rank order (the same bits as a sequential fold),
// min/max and a user's operator, sparse contributions leave the other
// elements alone, reads between barriers see the last barrier's values,
// the home's local() rewrites, bulk combines, the contract
// (errc::contract_violation, out_of_range, nothing changed afterwards) and
// a malformed contribution refused with nothing combined (argv[1]
// "malformed").
#include "check.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace {

std::uint64_t share(std::size_t i, int r, int round) {
  return (i * 131 + static_cast<std::uint64_t>(r) * 7 + static_cast<std::uint64_t>(round)) % 1000 + 1;
}

// Every rank adds its share to every element each round, by element and by
// bulk combine alternately; the sums accumulate over rounds.
template <class Layout>
void no_lost_contributions(Layout layout, dsm::unit_size unit) {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t n = 777;
  dsm::shared_array<std::uint64_t, dsm::reduction<dsm::sum>> a(n, layout, unit, "sums");
  std::vector<std::uint64_t> expected(n, 0), mine(n);
  for (int round = 0; round < 4; ++round) {
    for (std::size_t i = 0; i < n; ++i) mine[i] = share(i, me, round);
    if (round % 2 == 0)
      for (std::size_t i = 0; i < n; ++i) a[i] += mine[i];
    else
      a.combine(0, mine);
    for (std::size_t i = 0; i < n; ++i)
      for (int r = 0; r < p; ++r) expected[i] += share(i, r, round);
    dsm::barrier();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < n; ++i) wrong += a[i] != expected[i];
    std::vector<std::uint64_t> all(n);
    a.get(0, all);
    for (std::size_t i = 0; i < n; ++i) wrong += all[i] != expected[i];
    std::size_t l = 0;
    for (std::size_t g : a.local_indices()) wrong += a.local()[l++] != expected[g];
    CHECK_EQ(wrong, 0u);
  }
  const auto& s = a.policy_state().stats();
  if (p > 1) CHECK(s.contributions > 0 && s.combines > 0);
}

// Doubles whose sum depends on the order: the result must be the rank-order
// fold (starting from the home's value), the same bits on every rank.
void rank_order_doubles() {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t n = 64;
  dsm::shared_array<double, dsm::reduction<>> a(n, dsm::cyclic, "doubles");
  // One rounding per part, no multiply a compiler could fuse into an FMA on
  // one ISA and not another (mixed-ISA jobs run this too).
  auto part = [](std::size_t i, int r) {
    return (r % 2 == 0 ? 1e16 : -1e16) + static_cast<double>(i * 10 + static_cast<std::size_t>(r) * 3 + 1);
  };
  for (std::size_t l = 0; l < a.local_size(); ++l) a.local()[l] = -0.0;
  dsm::barrier();
  for (std::size_t i = 0; i < n; i += 2) a[i] += part(i, me);  // odd elements: nobody contributes
  dsm::barrier();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double expected = -0.0;
    if (i % 2 == 0)
      for (int r = 0; r < p; ++r) expected += part(i, r);
    wrong += std::bit_cast<std::uint64_t>(static_cast<double>(a[i])) != std::bit_cast<std::uint64_t>(expected);
  }
  CHECK_EQ(wrong, 0u);  // -0.0 stays -0.0 where nobody contributed (the identity of sum is -0.0)
}

struct bit_or {
  template <class T>
  T operator()(const T& x, const T& y) const { return x | y; }
  template <class T>
  static constexpr T identity() { return T{}; }
};

void other_operators() {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t n = 300;
  dsm::shared_array<double, dsm::reduction<dsm::min>> lo(n, dsm::block, dsm::unit_size{64}, "minima");
  dsm::shared_array<std::int32_t, dsm::reduction<dsm::max>> hi(n, dsm::block_cyclic(7), "maxima");
  dsm::shared_array<std::uint64_t, dsm::reduction<bit_or>> bits(n, dsm::cyclic, "bits");
  for (std::size_t l = 0; l < lo.local_size(); ++l) lo.local()[l] = 1e300;
  for (std::size_t l = 0; l < hi.local_size(); ++l) hi.local()[l] = -1000000;
  dsm::barrier();
  for (std::size_t i = 0; i < n; ++i) {
    lo[i].combine(static_cast<double>((i + static_cast<std::size_t>(me)) % 17) - 8.5);
    hi[i].combine(static_cast<std::int32_t>((i * 3 + static_cast<std::size_t>(me) * 5) % 23) - 11);
    bits[i].combine(std::uint64_t{1} << ((i + static_cast<std::size_t>(me)) % 64));
  }
  dsm::barrier();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double want_lo = 1e300;
    std::int32_t want_hi = -1000000;
    std::uint64_t want_bits = 0;
    for (int r = 0; r < p; ++r) {
      const auto ur = static_cast<std::size_t>(r);
      want_lo = std::min(want_lo, static_cast<double>((i + ur) % 17) - 8.5);
      want_hi = std::max(want_hi, static_cast<std::int32_t>((i * 3 + ur * 5) % 23) - 11);
      want_bits |= std::uint64_t{1} << ((i + ur) % 64);
    }
    wrong += lo[i] != want_lo;
    wrong += hi[i] != want_hi;
    wrong += bits[i] != want_bits;
  }
  CHECK_EQ(wrong, 0u);
}

// Each element gets contributions from one rank only, some from none; reads
// before the barrier see the last barrier's values; the home restarts its
// elements through local() in the same interval as new contributions.
void sparse_and_between_barriers() {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t n = 500;
  dsm::shared_array<std::int64_t, dsm::reduction<>> a(n, dsm::block, dsm::unit_size{128}, "sparse");
  for (int round = 1; round <= 3; ++round) {
    for (std::size_t i = 0; i < n; ++i)
      if (i % 5 != 0 && static_cast<int>(i % static_cast<std::size_t>(p)) == me) a[i] += 1;
    // Not combined yet: every element still has the last barrier's value.
    std::size_t early = 0;
    for (std::size_t i = 0; i < n; ++i) early += a[i] != (i % 5 != 0 ? round - 1 : 0);
    CHECK_EQ(early, 0u);
    dsm::barrier();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < n; ++i) wrong += a[i] != (i % 5 != 0 ? round : 0);
    CHECK_EQ(wrong, 0u);
  }
  dsm::barrier();  // everybody has read the last round before the homes rewrite it
  // A restart: the homes zero their elements while contributions of the
  // same interval arrive; the barrier combines them into the zeros.
  for (auto& v : a.local()) v = 0;
  for (std::size_t i = 0; i < n; ++i) a[i] += 1;
  dsm::barrier();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += a[i] != p;
  CHECK_EQ(wrong, 0u);
}

// Contributions written straight into the contribution span, mixed with
// element combines to the same elements in the same interval: both count.
void contribution_spans() {
  const int p = dsm::ranks();
  const std::size_t n = 1024;
  dsm::shared_array<std::int64_t, dsm::reduction<>> tiled(n, dsm::block, dsm::unit_size{64}, "tiled spans");
  CHECK(tiled.contributions_tiled() == (n % static_cast<std::size_t>(p) == 0 && (n / static_cast<std::size_t>(p)) % 8 == 0));
  dsm::shared_array<std::int64_t, dsm::reduction<>> runs(n, dsm::block_cyclic(5), dsm::unit_size{64}, "run spans");
  for (int round = 1; round <= 2; ++round) {
    if (tiled.contributions_tiled()) {
      const auto all = tiled.contribution_span(0, n);
      std::size_t fresh = 0;
      for (auto v : all) fresh += v != 0;
      CHECK_EQ(fresh, 0u);  // the identity at the first contribution of the interval
      for (auto& v : all) v += 2;
    } else {
      for (std::size_t i = 0; i < n; ++i) tiled[i] += 2;
    }
    for (std::size_t i = 0; i < n; ++i) tiled[i] += 1;
    for (std::size_t first = 0; first < n; first += 5) {
      const auto run = runs.contribution_span(first, std::min<std::size_t>(5, n - first));
      for (auto& v : run) v += 3;
    }
    if (n > 7) CHECK_ERROR(dsm::errc::invalid_argument, runs.contribution_span(3, 4));  // crosses to another owner
    CHECK_ERROR(dsm::errc::out_of_range, tiled.contribution_span(n - 1, 2));
    dsm::barrier();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < n; ++i) wrong += tiled[i] != 3 * p * round, wrong += runs[i] != 3 * p * round;
    CHECK_EQ(wrong, 0u);
    dsm::barrier();
  }
}

// The contract: plain writes are refused, bad indices too, and the
// array is unchanged by either.
void contract() {
  const int p = dsm::ranks();
  const std::size_t n = 100;
  dsm::shared_array<std::int32_t, dsm::reduction<>> a(n, dsm::cyclic, "contract");
  for (std::size_t i = 0; i < n; ++i) a[i] += 2;
  const std::string message = CHECK_ERROR(dsm::errc::contract_violation, a[3] = 5);
  CHECK(message.find("'contract'") != std::string::npos && message.find("index 3") != std::string::npos &&
        message.find("combine") != std::string::npos);
  const std::int32_t one = 1;
  CHECK_ERROR(dsm::errc::contract_violation, a.put(7, std::span<const std::int32_t>(&one, 1)));
  CHECK_ERROR(dsm::errc::out_of_range, a[n] += 1);
  CHECK_ERROR(dsm::errc::out_of_range, a[~std::size_t{0}].combine(1));
  CHECK_ERROR(dsm::errc::out_of_range, a.combine(n - 1, std::vector<std::int32_t>{1, 2}));
  CHECK_ERROR(dsm::errc::out_of_range, (void)static_cast<std::int32_t>(a[n]));
  dsm::barrier();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += a[i] != 2 * p;
  CHECK_EQ(wrong, 0u);
}

// Rank 1 stands in for a broken peer: where rank 0's array exchanges its
// contributions at a barrier, rank 1 sends bytes that name a unit rank 0
// does not home. Rank 0 refuses them with errc::protocol naming the array
// and rank 1, and combines nothing of them but every other rank's
// contributions; the ranks then line up again.
void malformed_contribution() {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t n = 256;
  dsm::shared_array<std::uint32_t, dsm::reduction<>> a(n, dsm::block, dsm::unit_size{64}, "refusing");
  auto& rt = dsm::detail::rt();
  for (std::size_t i = 0; i < n; ++i) a[i] += 1;
  if (me == 1) {
    std::vector<std::vector<std::byte>> to(static_cast<std::size_t>(p));
    const std::uint64_t bad[2] = {~std::uint64_t{0}, 7};  // a unit number past the array
    to[0].resize(sizeof bad);
    std::memcpy(to[0].data(), bad, sizeof bad);
    rt.exchange(to);  // in place of its array's arrive
    rt.synchronize();
  } else {
    if (me == 0) {
      const std::string message = CHECK_ERROR(dsm::errc::protocol, dsm::barrier());
      CHECK(message.find("'refusing'") != std::string::npos && message.find("rank 1") != std::string::npos);
      rt.synchronize();  // the barrier's own synchronisation, which the error cut short
    } else {
      dsm::barrier();
    }
  }
  // Rank 0's elements hold every rank's contribution but rank 1's.
  if (me == 0) {
    std::size_t wrong = 0;
    for (auto v : a.local()) wrong += v != static_cast<std::uint32_t>(p - 1);
    CHECK_EQ(wrong, 0u);
  }
  // Rank 1 still holds its contributions (it never sent them); the next
  // barrier combines them, and nothing another rank sent before again.
  // (Rank 1, playing the broken peer, threw away what it was sent.)
  dsm::barrier();
  std::size_t wrong = 0;
  if (me != 1)
    for (auto v : a.local()) wrong += v != static_cast<std::uint32_t>(p);
  CHECK_EQ(wrong, 0u);
  dsm::barrier();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "litmus";
  return dsm_test::run(argc, argv, [&] {
    if (mode == "litmus") {
      no_lost_contributions(dsm::block, dsm::unit_size{});
      no_lost_contributions(dsm::block, dsm::unit_size{64});
      no_lost_contributions(dsm::cyclic, dsm::unit_size{64});
      no_lost_contributions(dsm::block_cyclic(5), dsm::unit_size{4096});
      rank_order_doubles();
      other_operators();
      sparse_and_between_barriers();
      contribution_spans();
      contract();
    } else if (mode == "malformed") {
      if (dsm::ranks() >= 2) malformed_contribution();
    } else {
      CHECK(!"expected litmus or malformed");
    }
  });
}

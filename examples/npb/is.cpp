// is: NPB 3.4's Integer Sort on dsm (the problem and the bucket algorithm
// are in is_kernel.hpp).
//
// DSM shape: each rank generates its block of the keys, privately. Every
// iteration it sorts them into buckets and writes its row of `rows` (its
// bucket counts and the test keys it holds), homed on it; after a barrier
// every rank gets the whole of `rows` and computes the same plan: which
// run of buckets each rank ranks, and where each rank's keys go among
// another's received keys. Each rank then puts its keys for every other
// rank into that rank's block of `received`, one put per pair, at the
// offset the plan gives (after the keys of lower ranks); after a second
// barrier each rank ranks its own keys (counted straight from its buckets)
// and the ones it received. `received` is sized from the untimed first
// iteration's plan with room to spare, and grown (collectively: every rank
// has the same plan) should an iteration need more.
//
// Both arrays are rewritten every iteration before they are read, by their
// home (rows, through local()) or by remote puts into disjoint runs
// (received): direct by default; single_writer and write_shared serve them
// too (--policy), and keep paying a miss per unit per iteration.
//
//   dsmrun -n 2 build/examples/is --class S [--policy direct|single_writer|write_shared]
#include "is_kernel.hpp"
#include "npb.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace {

using is::key;

template <class Policy>
bool run(const npb::options& o, const is::is_class& c) {
  const auto me = static_cast<std::size_t>(dsm::rank()), p = static_cast<std::size_t>(dsm::ranks());
  const std::size_t n = std::size_t{1} << c.keys_log2, max_key = std::size_t{1} << c.max_key_log2;
  const int shift = c.max_key_log2 - is::buckets_log2;

  const std::size_t first_index = is::first_key_index(n, p, me);
  std::vector<key> keys(is::first_key_index(n, p, me + 1) - first_index);
  is::generate_keys(keys, first_index, max_key);

  dsm::shared_array<key, Policy> rows(p * is::row_size, dsm::block, "is bucket counts");
  std::optional<dsm::shared_array<key, Policy>> received;
  std::size_t capacity = 0;  // of each rank's block of received
  std::vector<key> by_bucket, all_rows(p * is::row_size), rank_of;
  std::optional<is::bucket_plan> plan;
  int passed = 0;

  // Whether this rank holds the job's key i (at keys[i - first_index]).
  auto holds = [&](std::size_t i) { return i >= first_index && i < first_index + keys.size(); };
  auto set_key = [&](std::size_t i, key k) {
    if (holds(i)) keys[i - first_index] = k;
  };

  auto rank_keys = [&](int it) {
    is::mark_iteration(it, max_key, set_key);
    const auto row = rows.local();
    is::sort_into_buckets(keys, shift, row.first(is::buckets), by_bucket);
    for (std::size_t i = 0; i < is::test_keys; ++i) {
      const auto t = static_cast<std::size_t>(c.test_index[i]);
      row[is::buckets + i] = holds(t) ? keys[t - first_index] : key{-1};
    }
    dsm::barrier();
    rows.get(0, all_rows);
    plan.emplace(all_rows, p, n);
    if (plan->most_received() > capacity) {
      // A collective decision: every rank has computed the same plan.
      capacity = plan->most_received() + plan->most_received() / 8 + 64;
      received.reset();
      received.emplace(p * capacity, dsm::block, "is received keys");
    }
    for (std::size_t d = 0; d < p; ++d) {
      const std::size_t count = plan->sends(me, d);
      if (d == me || count == 0) continue;
      received->put(d * capacity + plan->offset(me, d),
                    std::span<const key>(by_bucket).subspan(plan->send_start(me, d), count));
    }
    dsm::barrier();  // every put into this rank's block has landed
    const is::key_share share(*plan, me, shift);
    const auto mine = received->local();
    share.start_counting(rank_of);
    for (std::size_t s = 0; s < p; ++s) {
      const std::size_t count = plan->sends(s, me);
      if (s == me)
        share.count(std::span<const key>(by_bucket).subspan(plan->send_start(me, me), count), rank_of);
      else
        share.count(mine.subspan(plan->offset(s, me), count), rank_of);
    }
    share.finish_ranking(rank_of);
    passed += is::partial_checks(c, it, *plan, share, rank_of, n, o.perturb_reference);
  };

  rank_keys(1);  // NPB's untimed first iteration (and received's allocation)
  passed = 0;
  dsm::allreduce(0);
  const auto t0 = std::chrono::steady_clock::now();
  for (int it = 1; it <= is::iterations; ++it) rank_keys(it);
  const double seconds = dsm::allreduce(npb::seconds_since(t0), dsm::max{});

  // NPB's full verification, untimed: this rank's keys placed by their
  // ranks come out sorted, and its first key is not below the last key of
  // the nearest lower rank that holds any. Beyond NPB: every key arrived
  // once (their count and their sum over all ranks are the generated ones).
  const is::key_share share(*plan, me, shift);
  const auto mine = received->local();
  std::copy_n(by_bucket.begin() + static_cast<std::ptrdiff_t>(plan->send_start(me, me)), plan->sends(me, me),
              mine.begin() + static_cast<std::ptrdiff_t>(plan->offset(me, me)));
  const auto arrived = mine.first(plan->received(me));
  std::vector<key> sorted(arrived.size());
  std::size_t misplaced = is::place_and_check(arrived, share, rank_of, sorted);
  dsm::shared_array<key, dsm::direct> last_keys(p, dsm::block, "is last keys");
  last_keys[me] = sorted.empty() ? key{-1} : sorted.back();
  dsm::barrier();
  std::vector<key> lasts(p);
  last_keys.get(0, lasts);
  if (!sorted.empty()) {
    const auto lower = std::find_if(lasts.rbegin() + static_cast<std::ptrdiff_t>(p - me), lasts.rend(),
                                    [](key k) { return k >= 0; });
    if (lower != lasts.rend() && *lower > sorted.front()) ++misplaced;
  }
  std::array<std::int64_t, 4> sums{0, 0, static_cast<std::int64_t>(misplaced), passed};
  for (key k : arrived) sums[0] += k;
  for (key k : keys) sums[1] += k;
  const auto arrived_count = dsm::allreduce(arrived.size());
  dsm::allreduce(std::span<std::int64_t>(sums));
  const bool all_arrived = arrived_count == n && sums[0] == sums[1];
  const int required = 5 * is::iterations + 1;
  const auto total_passed = static_cast<int>(sums[3]) + (sums[2] == 0 && all_arrived ? 1 : 0);
  const bool verified = total_passed == required;
  if (me == 0) {
    fmt::print(" NAS Parallel Benchmarks (dsm) - IS Benchmark\n\n Size: {}  (class {})\n Iterations: {}\n", n, c.name,
               is::iterations);
    if (sums[2] != 0) fmt::print(" Full verification: {} keys out of sort\n", sums[2]);
    if (!all_arrived)
      fmt::print(" Full verification: {} keys arrived of {}, their sum {} of {}\n", arrived_count, n, sums[0], sums[1]);
    fmt::print(" Verification checks passed: {} of {}\n", total_passed, required);
  }
  npb::print(is::report(c, seconds, Policy::name, verified));
  return verified;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* usage = "is [--class S|W|A|B|C] [--policy direct|single_writer|write_shared]";
  return npb::main(argc, argv, usage, [](const npb::options& o) {
    const auto& c = npb::find_class(is::classes, o.problem_class);
    return npb::with_policy<dsm::direct, dsm::single_writer, dsm::write_shared>(
        o, "is", [&]<class P>() { return run<P>(o, c); });
  });
}

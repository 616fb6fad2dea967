// is_histogram: NPB's Integer Sort problem ranked by a different algorithm
// than NPB's (examples/npb/is.cpp is NPB's): the keys never move; every
// rank ranks its slice of the key range from the histogram of all keys.
// It verifies against NPB's values, but its timings do not compare with
// NPB's IS. It is kept for what it shows: reduction<sum> on a histogram.
//
// DSM shape: the keys are a block-distributed shared array, each rank
// generating its own block (the generator jumped to it). Every iteration,
// each rank counts its keys; each rank owns a slice of the key range and
// needs that slice of the histogram summed over all ranks (class histogram
// below: a reduction<sum> array, by default, adds the counts up at the
// homes at the barrier; under the other policies each rank reads the slice
// of every other rank's row). It prefix-sums the slice, publishes its slice
// total, and writes the global ranks of its slice into a shared array whose
// block is exactly that slice. Rank 0 reads the test keys' ranks. Those
// arrays are rewritten every iteration before they are read, so a cache
// would never hit: direct, also under --policy reduction. The full
// verification scatters every key to its place in a write_shared array:
// ranks write disjoint bytes, possibly of one unit, which is what that
// policy is for.
//
//   dsmrun -n 2 build/examples/is_histogram --class S [--policy reduction|direct|single_writer|write_shared]
#include "is_kernel.hpp"
#include "npb.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <numeric>
#include <span>
#include <type_traits>
#include <vector>

namespace {

using is::key;
using is::iterations;

// The histogram of the key values, two ways. Rows (direct and the caching
// policies): each rank counts into its own row of a ranks x max_key array,
// homed on it; the owner of a slice of the key range reads that slice of
// every other row and adds them up. Reduction: one max_key array whose
// block on each rank is its slice of the key range; every rank combines
// its counts into it and the barrier adds them up at the homes, so the
// owner finds its slice summed in its own memory.
template <class Policy>
class histogram {
 public:
  static constexpr bool combined = requires { typename Policy::combiner; };

  histogram(std::size_t ranks, std::size_t max_key)
      : max_key_(max_key),
        counts_(combined ? max_key : ranks * max_key, dsm::block, "is histograms"),
        row_(combined ? max_key : 0) {}

  // This rank's counts of `keys`; then, once every rank has counted (a
  // barrier), `slice` gets the counts of keys [first, first + slice.size())
  // summed over every rank.
  void count(std::span<const key> keys) {
    const auto own = counts_.local();
    if constexpr (combined) {
      std::fill(own.begin(), own.end(), 0);  // the homes start the sum afresh; the barrier combines into it
      if (counts_.contributions_tiled()) {
        // Counted straight into this rank's contributions (zero at first).
        const auto mine = counts_.contribution_span(0, max_key_);
        for (key k : keys) ++mine[static_cast<std::size_t>(k)];
      } else {
        std::fill(row_.begin(), row_.end(), 0);
        for (key k : keys) ++row_[static_cast<std::size_t>(k)];
        counts_.combine(0, row_);
      }
    } else {
      std::fill(own.begin(), own.end(), 0);  // counted in place, in this rank's row
      for (key k : keys) ++own[static_cast<std::size_t>(k)];
    }
  }
  void sum_slice(std::size_t first, std::span<key> slice) {
    const auto own = counts_.local();
    if constexpr (combined) {
      std::copy(own.begin(), own.end(), slice.begin());
    } else {
      const std::size_t ranks = counts_.size() / max_key_, me = static_cast<std::size_t>(dsm::rank());
      std::copy_n(own.begin() + static_cast<std::ptrdiff_t>(first), slice.size(), slice.begin());
      other_.resize(slice.size());
      for (std::size_t r = 0; r < ranks; ++r) {
        if (r == me || slice.empty()) continue;
        counts_.get(r * max_key_ + first, other_);
        for (std::size_t k = 0; k < slice.size(); ++k) slice[k] += other_[k];
      }
    }
  }
 private:
  std::size_t max_key_;
  dsm::shared_array<key, Policy> counts_;
  std::vector<key> row_, other_;  // reused across iterations: fresh megabytes each time would cost page faults
};

template <class Policy>
bool run(const npb::options& o, const is::is_class& c) {
  // The arrays a reduction does not fit are direct under it.
  using plain = std::conditional_t<histogram<Policy>::combined, dsm::direct, Policy>;
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t n = std::size_t{1} << c.keys_log2, max_key = std::size_t{1} << c.max_key_log2;
  const auto up = static_cast<std::size_t>(p), um = static_cast<std::size_t>(me);

  dsm::shared_array<key, plain> keys(n, dsm::block, "is keys");
  histogram<Policy> counts(up, max_key);
  dsm::shared_array<key, plain> key_ranks(max_key, dsm::block, "is key ranks");  // keys <= k, for each k
  dsm::shared_array<std::int64_t, plain> slice_totals(up, dsm::block, "is slice totals");

  is::generate_keys(keys.local(), keys.distribution().global_index(um, 0), max_key);
  dsm::barrier();

  // This rank's slice of the key range: the block of key_ranks it homes.
  const std::size_t slice_first = key_ranks.distribution().global_index(um, 0), slice_size = key_ranks.local_size();
  std::vector<key> slice(slice_size);
  std::vector<std::int64_t> totals(up);
  int passed = 0;

  auto rank_keys = [&](int it) {
    if (me == 0) is::mark_iteration(it, max_key, [&](std::size_t i, key k) { keys[i] = k; });
    std::array<key, 5> test_keys{};
    if (me == 0)
      for (std::size_t i = 0; i < 5; ++i) test_keys[i] = keys[static_cast<std::size_t>(c.test_index[i])];
    dsm::barrier();
    counts.count(keys.local());
    dsm::barrier();
    // This slice summed over every rank, prefix-summed straight into key_ranks.
    counts.sum_slice(slice_first, slice);
    auto mine = key_ranks.local();
    key running = 0;
    for (std::size_t k = 0; k < slice_size; ++k) mine[k] = running += slice[k];
    slice_totals[um] = running;
    dsm::barrier();
    slice_totals.get(0, totals);
    const auto below = static_cast<key>(std::accumulate(totals.begin(), totals.begin() + me, std::int64_t{0}));
    if (below != 0)
      for (key& k : mine) k += below;
    dsm::barrier();
    if (me == 0)
      for (std::size_t i = 0; i < 5; ++i) {
        const key k = test_keys[i];
        if (k <= 0 || static_cast<std::size_t>(k) > n - 1) continue;
        if (key_ranks[static_cast<std::size_t>(k - 1)] == c.expected(i, it) + (o.perturb_reference ? 1 : 0)) ++passed;
      }
  };

  rank_keys(1);  // NPB's untimed first iteration
  passed = 0;
  dsm::allreduce(0);
  const auto t0 = std::chrono::steady_clock::now();
  for (int it = 1; it <= iterations; ++it) rank_keys(it);
  const double seconds = dsm::allreduce(npb::seconds_since(t0), dsm::max{});

  // Full verification: each key goes to its place, after the keys of the
  // same value on lower ranks; the result must be sorted.
  std::size_t unsorted = 0;
  {
    dsm::shared_array<key, dsm::write_shared> sorted(n, dsm::block, "is sorted");
    dsm::shared_array<key, dsm::direct> rows(up * max_key, dsm::block, "is rows");  // every rank's counts
    for (key k : keys.local()) ++rows.local()[static_cast<std::size_t>(k)];
    dsm::barrier();
    std::vector<key> all_ranks(max_key), all_rows(up * max_key);
    key_ranks.get(0, all_ranks);
    rows.get(0, all_rows);
    std::vector<std::int64_t> next(max_key);
    for (std::size_t v = 0; v < max_key; ++v) {
      std::int64_t place = v == 0 ? 0 : all_ranks[v - 1];
      for (std::size_t r = 0; r < um; ++r) place += all_rows[r * max_key + v];
      next[v] = place;
    }
    for (key k : keys.local()) sorted[static_cast<std::size_t>(next[static_cast<std::size_t>(k)]++)] = k;
    dsm::barrier();
    auto mine = sorted.local();
    for (std::size_t i = 1; i < mine.size(); ++i) unsorted += mine[i - 1] > mine[i];
    const std::size_t first_index = sorted.distribution().global_index(um, 0);
    if (!mine.empty() && first_index != 0) unsorted += sorted[first_index - 1] > mine[0];
    unsorted = dsm::allreduce(unsorted);
    dsm::barrier();
  }
  passed = dsm::broadcast(passed, 0) + (unsorted == 0 ? 1 : 0);
  const int required = 5 * iterations + 1;
  const bool verified = passed == required;
  if (me == 0) {
    fmt::print(" NAS Parallel Benchmarks (dsm) - IS problem, histogram ranking (not NPB's algorithm)\n\n"
               " Size: {}  (class {})\n Iterations: {}\n", n, c.name, iterations);
    if (unsorted != 0) fmt::print(" Full verification: {} keys out of sort\n", unsorted);
    fmt::print(" Verification checks passed: {} of {}\n", passed, required);
  }
  npb::print(is::report(c, seconds, Policy::name, verified, "IS-histogram"));
  return verified;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* usage =
      "is_histogram [--class S|W|A|B|C] [--policy reduction|direct|single_writer|write_shared]";
  return npb::main(argc, argv, usage, [](const npb::options& o) {
    const auto& c = npb::find_class(is::classes, o.problem_class);
    return npb::with_policy<dsm::reduction<dsm::sum>, dsm::direct, dsm::single_writer, dsm::write_shared>(
        o, "is_histogram", [&]<class P>() { return run<P>(o, c); });
  });
}

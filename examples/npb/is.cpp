// is: NPB's Integer Sort kernel on dsm: rank 2^n keys drawn from NPB's
// generator (each key the scaled mean of four uniforms), ten times, with
// NPB's partial verification of five test keys per iteration and the full
// verification (the keys placed by their ranks come out sorted).
//
// DSM shape: the keys are a block-distributed shared array, each rank
// generating its own block (the generator jumped to it). Every iteration,
// each rank writes its key histogram into its own row of a shared array
// (rows homed on their writers); each rank then owns a slice of the key
// range: it reads that slice of every row, prefix-sums it, publishes its
// slice total, and writes the global ranks of its slice into a shared array
// whose block is exactly that slice. Rank 0 reads the test keys' ranks.
// The full verification scatters every key to its place in a write_shared
// array: ranks write disjoint bytes, possibly of one unit.
//
//   dsmrun -n 2 build/examples/npb/is --class S [--policy single_writer|write_shared|direct]
#include "npb.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <numeric>

namespace {

struct is_class {
  char name;
  int keys_log2, max_key_log2;
  std::array<std::int64_t, 5> test_index, test_rank;
  // NPB shifts each expected rank by the iteration; the shape differs per class.
  std::int64_t expected(std::size_t i, int it) const {
    switch (name) {
      case 'S': return i <= 2 ? test_rank[i] + it : test_rank[i] - it;
      case 'W': return i < 2 ? test_rank[i] + (it - 2) : test_rank[i] - it;
      case 'A': return i <= 2 ? test_rank[i] + (it - 1) : test_rank[i] - (it - 1);
      default: return (i == 1 || i == 2 || i == 4) ? test_rank[i] + it : test_rank[i] - it;  // B
    }
  }
};
constexpr std::array<is_class, 4> classes{{
    {'S', 16, 11, {48427, 17148, 23627, 62548, 4431}, {0, 18, 346, 64917, 65463}},
    {'W', 20, 16, {357773, 934767, 875723, 898999, 404505}, {1249, 11698, 1039987, 1043896, 1048018}},
    {'A', 23, 19, {2112377, 662041, 5336171, 3642833, 4250760}, {104, 17523, 123928, 8288932, 8388264}},
    {'B', 25, 21, {41869, 812306, 5102857, 18232239, 26860214}, {33422937, 10244, 59149, 33135281, 99}},
}};
constexpr int iterations = 10;
constexpr double seed = 314159265.0;

using key = std::int32_t;

template <class Policy>
bool run(const npb::options& o, const is_class& c) {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t n = std::size_t{1} << c.keys_log2, max_key = std::size_t{1} << c.max_key_log2;
  const auto up = static_cast<std::size_t>(p), um = static_cast<std::size_t>(me);

  dsm::shared_array<key, Policy> keys(n, dsm::block, "is keys");
  dsm::shared_array<key, Policy> histograms(up * max_key, dsm::block, "is histograms");  // row r homed on rank r
  dsm::shared_array<key, Policy> key_ranks(max_key, dsm::block, "is key ranks");  // keys <= k, for each k
  dsm::shared_array<std::int64_t, Policy> slice_totals(up, dsm::block, "is slice totals");

  // Keys: key i is (max_key / 4) times the sum of uniforms 4i .. 4i+3.
  {
    const std::size_t first = keys.distribution().global_index(um, 0);
    npb::lcg g(static_cast<double>(npb::lcg::multiply(static_cast<std::uint64_t>(seed),
                                                       npb::lcg::power(npb::lcg::default_multiplier, 4 * first))));
    const double scale = static_cast<double>(max_key / 4);
    for (key& k : keys.local()) {
      double x = g.next();
      x += g.next();
      x += g.next();
      x += g.next();
      k = static_cast<key>(scale * x);
    }
  }
  dsm::barrier();

  // This rank's slice of the key range: the block of key_ranks it homes.
  const std::size_t slice_first = key_ranks.distribution().global_index(um, 0), slice_size = key_ranks.local_size();
  std::vector<key> counts(max_key), rows(up * slice_size);
  int passed = 0;

  auto rank_keys = [&](int it) {
    if (me == 0) {
      keys[static_cast<std::size_t>(it)] = it;
      keys[static_cast<std::size_t>(it + iterations)] = static_cast<key>(max_key) - it;
    }
    std::array<key, 5> test_keys{};
    if (me == 0)
      for (std::size_t i = 0; i < 5; ++i) test_keys[i] = keys[static_cast<std::size_t>(c.test_index[i])];
    dsm::barrier();
    std::fill(counts.begin(), counts.end(), 0);
    for (key k : keys.local()) ++counts[static_cast<std::size_t>(k)];
    std::copy(counts.begin(), counts.end(), histograms.local().begin());
    dsm::barrier();
    // Sum this slice over every rank's row, then prefix-sum it.
    std::int64_t running = 0;
    for (std::size_t r = 0; r < up; ++r)
      if (slice_size != 0) histograms.get(r * max_key + slice_first, slice_size, rows.data() + r * slice_size);
    std::vector<std::int64_t> slice(slice_size);
    for (std::size_t k = 0; k < slice_size; ++k) {
      for (std::size_t r = 0; r < up; ++r) running += rows[r * slice_size + k];
      slice[k] = running;
    }
    slice_totals[um] = running;
    dsm::barrier();
    std::vector<std::int64_t> totals(up);
    slice_totals.get(0, totals);
    const std::int64_t below = std::accumulate(totals.begin(), totals.begin() + me, std::int64_t{0});
    auto mine = key_ranks.local();
    for (std::size_t k = 0; k < slice_size; ++k) mine[k] = static_cast<key>(slice[k] + below);
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
    std::vector<key> all_ranks(max_key), all_rows(up * max_key);
    key_ranks.get(0, all_ranks);
    histograms.get(0, all_rows);
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
    fmt::print(" NAS Parallel Benchmarks (dsm) - IS Benchmark\n\n Size: {}  (class {})\n Iterations: {}\n", n, c.name,
               iterations);
    if (unsorted != 0) fmt::print(" Full verification: {} keys out of sort\n", unsorted);
    fmt::print(" Verification checks passed: {} of {}\n", passed, required);
  }
  npb::print({"IS", c.name, std::to_string(n), iterations, seconds,
              static_cast<double>(iterations) * static_cast<double>(n) / seconds / 1e6, "keys ranked", Policy::name,
              verified});
  return verified;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* usage =
      "is [--class S|W|A|B] [--policy single_writer|write_shared|direct]";
  return npb::main(argc, argv, usage, [](const npb::options& o) {
    const auto& c = npb::find_class(classes, o.problem_class);
    return npb::with_policy<dsm::single_writer, dsm::write_shared, dsm::direct>(
        o, "is", [&]<class P>() { return run<P>(o, c); });
  });
}

// NPB's Integer Sort kernel without dsm: the problem classes, NPB's
// expected ranks of the test keys, the key generator and NPB 3.4's bucket
// algorithm, shared by the dsm builds and the plain single-process build.
//
// 2^n keys drawn from NPB's generator (each key the scaled mean of four
// uniforms) are ranked ten times, with NPB's partial verification of five
// test keys per iteration and the full verification (the keys placed by
// their ranks come out sorted).
//
// NPB's parallel ranking, per iteration: each rank sorts its keys into
// 1024 buckets by their top bits; from every rank's bucket counts, each
// rank is given a run of buckets holding about n / ranks keys; every key
// moves to the rank of its bucket; each rank then ranks the keys it
// received over its own range of key values.
#pragma once

#include "common.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

namespace is {

struct is_class {
  char name;
  int keys_log2, max_key_log2;
  std::array<std::int64_t, 5> test_index, test_rank;
  // NPB shifts each expected rank by the iteration; the shape differs per class.
  std::int64_t expected(std::size_t i, int it) const {
    switch (name) {
      case 'S':
      case 'C': return i <= 2 ? test_rank[i] + it : test_rank[i] - it;
      case 'W': return i < 2 ? test_rank[i] + (it - 2) : test_rank[i] - it;
      case 'A': return i <= 2 ? test_rank[i] + (it - 1) : test_rank[i] - (it - 1);
      case 'B': return (i == 1 || i == 2 || i == 4) ? test_rank[i] + it : test_rank[i] - it;
    }
    return -1;  // not a class
  }
};
constexpr std::array<is_class, 5> classes{{
    {'S', 16, 11, {48427, 17148, 23627, 62548, 4431}, {0, 18, 346, 64917, 65463}},
    {'W', 20, 16, {357773, 934767, 875723, 898999, 404505}, {1249, 11698, 1039987, 1043896, 1048018}},
    {'A', 23, 19, {2112377, 662041, 5336171, 3642833, 4250760}, {104, 17523, 123928, 8288932, 8388264}},
    {'B', 25, 21, {41869, 812306, 5102857, 18232239, 26860214}, {33422937, 10244, 59149, 33135281, 99}},
    {'C', 27, 23, {44172927, 72999161, 74326391, 129606274, 21736814}, {61147, 882988, 266290, 133997595, 133525895}},
}};
constexpr int iterations = 10;
constexpr double seed = 314159265.0;

using key = std::int32_t;

// Keys first .. first + out.size() - 1: key i is (max_key / 4) times the
// sum of uniforms 4i .. 4i+3.
inline void generate_keys(std::span<key> out, std::size_t first, std::size_t max_key) {
  npb::lcg g(static_cast<double>(npb::lcg::multiply(static_cast<std::uint64_t>(seed),
                                                     npb::lcg::power(npb::lcg::default_multiplier, 4 * first))));
  const double scale = static_cast<double>(max_key / 4);
  for (key& k : out) {
    double x = g.next();
    x += g.next();
    x += g.next();
    x += g.next();
    k = static_cast<key>(scale * x);
  }
}

// NPB's iteration prologue: two keys changed per iteration.
inline void mark_iteration(int it, std::size_t max_key, auto&& set) {
  set(static_cast<std::size_t>(it), static_cast<key>(it));
  set(static_cast<std::size_t>(it + iterations), static_cast<key>(max_key) - it);
}

constexpr int buckets_log2 = 10;  // NPB's NUM_BUCKETS_LOG_2, every class
constexpr std::size_t buckets = std::size_t{1} << buckets_log2, test_keys = 5;
// What each rank tells every other per iteration: its count of keys per
// bucket, then the values of the test keys it holds (-1 for those it does
// not; NPB hides them in its bucket-count allreduce the same way).
constexpr std::size_t row_size = buckets + test_keys;

// Keys [first, end) of `keys`'s index range, given the whole job's n keys
// split over `ranks`: rank r generates and holds [n r / ranks, n (r+1) / ranks).
inline std::size_t first_key_index(std::size_t n, std::size_t ranks, std::size_t r) { return n * r / ranks; }

// NPB's first pass: `keys` counted by bucket into `counts` (size buckets)
// and copied into `by_bucket` in bucket order (NPB's key_buff1).
inline void sort_into_buckets(std::span<const key> keys, int shift, std::span<key> counts, std::vector<key>& by_bucket) {
  std::fill(counts.begin(), counts.end(), 0);
  for (key k : keys) ++counts[static_cast<std::size_t>(k >> shift)];
  std::array<std::size_t, buckets> next{};
  for (std::size_t b = 1; b < buckets; ++b) next[b] = next[b - 1] + static_cast<std::size_t>(counts[b - 1]);
  by_bucket.resize(keys.size());
  for (key k : keys) by_bucket[next[static_cast<std::size_t>(k >> shift)]++] = k;
}

// Who ranks which keys, from every rank's row (ranks x row_size): rank d
// takes buckets [first_bucket(d), first_bucket(d + 1)), its run closed at
// the bucket where the running total first reaches (d + 1) n / ranks, as
// NPB closes it (the last rank takes what is left; a rank past the last
// closed run takes none). Then, for each pair, how many keys s sends d and
// where they go among d's received keys (after those of lower ranks).
class bucket_plan {
 public:
  bucket_plan(std::span<const key> rows, std::size_t ranks, std::size_t n)
      : ranks_(ranks), first_bucket_(ranks + 1, buckets), sends_(ranks * ranks, 0), offsets_(ranks * ranks, 0) {
    std::vector<std::size_t> totals(buckets, 0);
    for (std::size_t s = 0; s < ranks; ++s)
      for (std::size_t b = 0; b < buckets; ++b) totals[b] += static_cast<std::size_t>(rows[s * row_size + b]);
    first_bucket_[0] = 0;
    std::size_t d = 0, running = 0;
    for (std::size_t b = 0; b < buckets; ++b) {
      running += totals[b];
      if (d + 1 < ranks && running * ranks >= (d + 1) * n) first_bucket_[++d] = b + 1;
    }
    below_.assign(ranks, 0);
    for (std::size_t r = 0; r < ranks; ++r) {
      below_[r] = std::accumulate(totals.begin(), totals.begin() + static_cast<std::ptrdiff_t>(first_bucket_[r]),
                                  std::size_t{0});
      for (std::size_t s = 0; s < ranks; ++s) {
        const key* row = rows.data() + s * row_size;
        sends_[s * ranks + r] = std::accumulate(row + first_bucket_[r], row + first_bucket_[r + 1], std::size_t{0});
      }
    }
    received_.assign(ranks, 0);
    for (std::size_t r = 0; r < ranks; ++r)
      for (std::size_t s = 0; s < ranks; ++s) {
        offsets_[s * ranks + r] = received_[r];
        received_[r] += sends_[s * ranks + r];
      }
    for (std::size_t i = 0; i < test_keys; ++i) {
      test_values_[i] = -1;
      for (std::size_t s = 0; s < ranks; ++s) test_values_[i] = std::max(test_values_[i], rows[s * row_size + buckets + i]);
    }
  }

  std::size_t first_bucket(std::size_t r) const { return first_bucket_[r]; }
  // Keys s sends r, and where they start among r's received keys.
  std::size_t sends(std::size_t s, std::size_t r) const { return sends_[s * ranks_ + r]; }
  std::size_t offset(std::size_t s, std::size_t r) const { return offsets_[s * ranks_ + r]; }
  // Where s's keys for r start in s's bucket-sorted keys.
  std::size_t send_start(std::size_t s, std::size_t r) const {
    std::size_t start = 0;
    for (std::size_t d = 0; d < r; ++d) start += sends(s, d);
    return start;
  }
  std::size_t received(std::size_t r) const { return received_[r]; }
  std::size_t most_received() const { return *std::max_element(received_.begin(), received_.end()); }
  // Keys of every lower rank's buckets.
  std::size_t below(std::size_t r) const { return below_[r]; }
  key test_value(std::size_t i) const { return test_values_[i]; }

 private:
  std::size_t ranks_;
  std::vector<std::size_t> first_bucket_, sends_, offsets_, received_, below_;
  std::array<key, test_keys> test_values_{};
};

// A rank's share of the key values, [first, end), and the ranks of its
// keys: rank_of[v - first] = how many keys of the whole job are <= v.
class key_share {
 public:
  key_share(const bucket_plan& plan, std::size_t r, int shift)
      : first_(plan.first_bucket(r) << shift), end_(plan.first_bucket(r + 1) << shift), below_(plan.below(r)) {}

  std::size_t first() const { return first_; }
  std::size_t end() const { return end_; }
  std::size_t below() const { return below_; }

  // NPB's ranking: count the received keys (in any number of runs), then
  // prefix-sum from the count of keys below the share.
  void start_counting(std::vector<key>& rank_of) const { rank_of.assign(end_ - first_, 0); }
  void count(std::span<const key> run, std::vector<key>& rank_of) const {
    key* const at = rank_of.data() - first_;
    for (key k : run) ++at[k];
  }
  void finish_ranking(std::vector<key>& rank_of) const {
    auto running = static_cast<key>(below_);
    for (key& r : rank_of) r = running += r;
  }
  // Keys of the whole job below v, v in [first, end].
  key rank_below(std::span<const key> rank_of, std::size_t v) const {
    return v > first_ ? rank_of[v - 1 - first_] : static_cast<key>(below_);
  }

 private:
  std::size_t first_, end_, below_;
};

// NPB's partial verification of iteration `it` on one rank: each test key
// in the rank's share is checked by it (the others by their ranks).
inline int partial_checks(const is_class& c, int it, const bucket_plan& plan, const key_share& share,
                          std::span<const key> rank_of, std::size_t n, bool perturb_reference) {
  int passed = 0;
  for (std::size_t i = 0; i < test_keys; ++i) {
    const key k = plan.test_value(i);
    if (k <= 0 || static_cast<std::size_t>(k) > n - 1) continue;
    const auto v = static_cast<std::size_t>(k);
    if (v < share.first() || v >= share.end()) continue;
    if (share.rank_below(rank_of, v) == c.expected(i, it) + (perturb_reference ? 1 : 0)) ++passed;
  }
  return passed;
}

// NPB's full verification on one rank: its received keys placed by their
// ranks into `sorted` (their count long). Returns the keys out of place:
// a key or position outside the share, a place left empty, or a key
// smaller than the one before it.
inline std::size_t place_and_check(std::span<const key> received, const key_share& share, std::vector<key> rank_of,
                                   std::span<key> sorted) {
  std::fill(sorted.begin(), sorted.end(), key{-1});
  std::size_t misplaced = 0;
  for (key k : received) {
    const auto v = static_cast<std::size_t>(k);
    if (k < 0 || v < share.first() || v >= share.end()) {
      ++misplaced;
      continue;
    }
    const auto place = static_cast<std::int64_t>(--rank_of[v - share.first()]) - static_cast<std::int64_t>(share.below());
    if (place < 0 || static_cast<std::size_t>(place) >= sorted.size()) {
      ++misplaced;
      continue;
    }
    sorted[static_cast<std::size_t>(place)] = k;
  }
  for (std::size_t i = 0; i < sorted.size(); ++i) misplaced += sorted[i] < 0 || (i > 0 && sorted[i - 1] > sorted[i]);
  return misplaced;
}

inline npb::report report(const is_class& c, double seconds, std::string policy, bool verified,
                          std::string kernel = "IS") {
  const auto n = std::size_t{1} << c.keys_log2;
  return {std::move(kernel), c.name, std::to_string(n), iterations, seconds,
          static_cast<double>(iterations) * static_cast<double>(n) / seconds / 1e6, "keys ranked", std::move(policy),
          verified};
}

}  // namespace is

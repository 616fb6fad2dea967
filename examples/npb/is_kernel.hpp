// NPB's Integer Sort kernel without dsm: the problem classes, NPB's
// expected ranks of the test keys, and the key generator, shared by the
// dsm build and the plain single-process build.
//
// 2^n keys drawn from NPB's generator (each key the scaled mean of four
// uniforms) are ranked ten times, with NPB's partial verification of five
// test keys per iteration and the full verification (the keys placed by
// their ranks come out sorted).
#pragma once

#include "common.hpp"

#include <array>
#include <cstdint>
#include <span>

namespace is {

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

inline npb::report report(const is_class& c, double seconds, std::string policy, bool verified) {
  const auto n = std::size_t{1} << c.keys_log2;
  return {"IS", c.name, std::to_string(n), iterations, seconds,
          static_cast<double>(iterations) * static_cast<double>(n) / seconds / 1e6, "keys ranked", std::move(policy),
          verified};
}

}  // namespace is

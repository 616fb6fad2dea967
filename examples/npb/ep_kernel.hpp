// NPB's Embarrassingly Parallel kernel without dsm: the problem classes
// and the tallies of a run of batches, shared by the dsm build and the
// plain single-process build.
//
// 2^(M+1) uniform pseudorandom numbers in batches of 2^17 are turned into
// Gaussian pairs by the acceptance-rejection (Marsaglia polar) method and
// tallied in ten square annuli; the sums of the deviates verify against
// NPB's values.
#pragma once

#include "common.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

namespace ep {

struct ep_class {
  char name;
  int m;  // 2^m pairs
  double sx, sy;
};
constexpr std::array<ep_class, 5> classes{{{'S', 24, -3.247834652034740e3, -6.958407078382297e3},
                                           {'W', 25, -2.863319731645753e3, -6.320053679109499e3},
                                           {'A', 28, -4.295875165629892e3, -1.580732573678431e4},
                                           {'B', 30, 4.033815542441498e4, -2.660669192809235e4},
                                           {'C', 32, 4.764367927995374e4, -8.084072988043731e4}}};
constexpr int batch_log2 = 16;  // NPB's MK: 2^16 pairs per batch
constexpr std::size_t annuli = 10;
constexpr double seed = 271828183.0, epsilon = 1.0e-8;

inline std::uint64_t batches(const ep_class& c) { return std::uint64_t{1} << (c.m - batch_log2); }

struct tallies {
  double sx = 0, sy = 0;
  std::array<double, annuli> counts{};
};

// Batches [first, last), each from the generator jumped straight to it.
inline tallies run_batches(std::uint64_t first, std::uint64_t last) {
  const std::uint64_t pairs = std::uint64_t{1} << batch_log2;
  const std::uint64_t batch_stride = npb::lcg::power(npb::lcg::default_multiplier, 2 * pairs);
  std::vector<double> x(2 * pairs);
  tallies t;
  for (std::uint64_t k = first; k < last; ++k) {
    npb::lcg g(static_cast<double>(npb::lcg::multiply(static_cast<std::uint64_t>(seed), npb::lcg::power(batch_stride, k))));
    g.fill(x.data(), x.size());
    for (std::uint64_t i = 0; i < pairs; ++i) {
      const double x1 = 2.0 * x[2 * i] - 1.0, x2 = 2.0 * x[2 * i + 1] - 1.0;
      const double t1 = x1 * x1 + x2 * x2;
      if (t1 > 1.0) continue;
      const double t2 = std::sqrt(-2.0 * std::log(t1) / t1);
      const double t3 = x1 * t2, t4 = x2 * t2;
      t.counts[static_cast<std::size_t>(std::max(std::abs(t3), std::abs(t4)))] += 1.0;
      t.sx += t3;
      t.sy += t4;
    }
  }
  return t;
}

// NPB's result lines and the verification of the sums.
inline bool verify_and_print(const ep_class& c, const tallies& t, double seconds, bool perturb_reference) {
  const double scale = perturb_reference ? 1.01 : 1.0;
  const bool verified = npb::within(t.sx, c.sx * scale, epsilon) && npb::within(t.sy, c.sy * scale, epsilon);
  double gaussian_pairs = 0;
  for (double n : t.counts) gaussian_pairs += n;
  fmt::print("EP Benchmark Results:\n\nTime = {:10.4f}\nN = 2^{:5}\nNo. Gaussian Pairs = {:15.0f}\n", seconds, c.m,
             gaussian_pairs);
  fmt::print("Sums = {:25.15e} {:25.15e}\nCounts:\n", t.sx, t.sy);
  for (std::size_t l = 0; l < annuli; ++l) fmt::print("{:3} {:15.0f}\n", l, t.counts[l]);
  if (!verified) fmt::print("Reference sums: {:25.15e} {:25.15e}\n", c.sx * scale, c.sy * scale);
  return verified;
}

inline npb::report report(const ep_class& c, double seconds, std::string policy, bool verified) {
  return {"EP", c.name, std::to_string(std::uint64_t{1} << (c.m + 1)), 0, seconds,
          std::ldexp(1.0, c.m + 1) / seconds / 1e6, "Random numbers generated", std::move(policy), verified};
}

}  // namespace ep

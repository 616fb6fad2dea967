// What the NPB-style kernels and their plain single-process builds share,
// without dsm: NPB's pseudorandom generator (the linear congruential
// generator x <- a x mod 2^46 with a = 5^13, as randlc and vranlc define
// it), problem classes, command-line options, verification and the
// NPB-style report.
#pragma once

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

namespace npb {

// randlc / vranlc: the same numbers as NPB's double-precision formulation,
// which is exact, computed here in 64-bit integers.
class lcg {
 public:
  static constexpr std::uint64_t modulus_bits = 46;
  static constexpr std::uint64_t mask = (std::uint64_t{1} << modulus_bits) - 1;
  static constexpr double scale = 1.0 / static_cast<double>(std::uint64_t{1} << modulus_bits);
  static constexpr std::uint64_t default_multiplier = 1220703125;  // 5^13

  explicit lcg(double seed, double multiplier = static_cast<double>(default_multiplier))
      : x_(static_cast<std::uint64_t>(seed)), a_(static_cast<std::uint64_t>(multiplier)) {}

  // randlc: advance, return the new value in (0, 1).
  double next() noexcept {
    x_ = multiply(a_, x_);
    return static_cast<double>(x_) * scale;
  }
  // vranlc: n values. Four interleaved streams, each stepped by a^4, so
  // the multiplies do not wait on one another as one stream's would.
  void fill(double* out, std::size_t n) noexcept {
    std::size_t i = 0;
    if (n >= 4) {
      const std::uint64_t a2 = multiply(a_, a_), a4 = multiply(a2, a2);
      std::uint64_t x0 = multiply(a_, x_), x1 = multiply(a_, x0), x2 = multiply(a_, x1), x3 = multiply(a_, x2);
      for (; i + 4 <= n; i += 4) {
        out[i] = static_cast<double>(x0) * scale;
        out[i + 1] = static_cast<double>(x1) * scale;
        out[i + 2] = static_cast<double>(x2) * scale;
        out[i + 3] = static_cast<double>(x3) * scale;
        x_ = x3;
        x0 = multiply(a4, x0);
        x1 = multiply(a4, x1);
        x2 = multiply(a4, x2);
        x3 = multiply(a4, x3);
      }
    }
    for (double* rest = out + i; rest != out + n; ++rest) *rest = next();
  }
  double seed() const noexcept { return static_cast<double>(x_); }
  std::uint64_t state() const noexcept { return x_; }

  // a b mod 2^46: the product's wrap-around mod 2^64 keeps its low 46 bits.
  static std::uint64_t multiply(std::uint64_t a, std::uint64_t b) noexcept { return (a * b) & mask; }
  // a^n mod 2^46, by squaring.
  static std::uint64_t power(std::uint64_t a, std::uint64_t n) noexcept {
    std::uint64_t result = 1;
    for (; n != 0; n >>= 1, a = multiply(a, a))
      if (n & 1) result = multiply(result, a);
    return result;
  }

 private:
  std::uint64_t x_, a_;
};

inline bool within(double value, double reference, double tolerance) {
  return std::abs((value - reference) / reference) <= tolerance;
}

struct options {
  char problem_class = 'S';
  std::string policy;           // empty: the kernel's choice per object
  bool perturb_reference = false;  // test hook: verification must then fail
  std::vector<std::string> rest;
};

inline options parse(int argc, char** argv, std::string_view usage) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw std::invalid_argument(fmt::format("{} needs a value\nusage: {}", a, usage));
      return argv[++i];
    };
    if (a == "--class") {
      const auto c = value();
      if (c.size() != 1 || std::string_view("SWABC").find(c[0]) == std::string_view::npos)
        throw std::invalid_argument(fmt::format("--class {}: expected S, W, A, B or C", c));
      o.problem_class = c[0];
    } else if (a == "--policy") {
      o.policy = value();
    } else if (a == "--perturb-reference") {
      o.perturb_reference = true;
    } else {
      o.rest.emplace_back(a);
    }
  }
  return o;
}

// The problem class named by --class (every kernel lists S, W, A, B, C).
template <class Class, std::size_t N>
const Class& find_class(const std::array<Class, N>& classes, char name) {
  for (const Class& c : classes)
    if (c.name == name) return c;
  throw std::invalid_argument(fmt::format("no class {}", name));
}

struct report {
  std::string kernel;
  char problem_class;
  std::string size;
  int iterations;
  double seconds;
  double mops_total;
  std::string operation;
  std::string policy;
  bool verified;
};

// NPB's result block, flushed.
inline void print(const report& r, int ranks, std::string_view version) {
  fmt::print(
      "\n {} Benchmark Completed.\n"
      " Class           = {:>24}\n"
      " Size            = {:>24}\n"
      " Iterations      = {:>24}\n"
      " Time in seconds = {:>24.4f}\n"
      " Total ranks     = {:>24}\n"
      " Mop/s total     = {:>24.2f}\n"
      " Mop/s/rank      = {:>24.2f}\n"
      " Operation type  = {:>24}\n"
      " Policy          = {:>24}\n"
      " Verification    = {:>24}\n"
      " Version         = {:>24}\n",
      r.kernel, r.problem_class, r.size, r.iterations, r.seconds, ranks, r.mops_total, r.mops_total / ranks,
      r.operation, r.policy, r.verified ? "SUCCESSFUL" : "UNSUCCESSFUL", version);
  std::fflush(stdout);
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs a kernel and maps its outcome to an exit code: a failed
// verification 1, a usage error 2, any other error 1.
template <class Body>
int exit_code(Body&& body) {
  try {
    return body() ? 0 : 1;
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 1;
  }
}

}  // namespace npb

// What the NPB-style kernels share: NPB's pseudorandom generator (the
// linear congruential generator x <- a x mod 2^46 with a = 5^13, as randlc
// and vranlc define it), problem classes, command-line options, policy
// selection, verification and the NPB-style report.
#pragma once

#include <dsm/dsm.hpp>

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
  // vranlc: n values.
  void fill(double* out, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) out[i] = next();
  }
  double seed() const noexcept { return static_cast<double>(x_); }
  std::uint64_t state() const noexcept { return x_; }

  // Both factors are below 2^46: split b so no partial product passes 2^64.
  static std::uint64_t multiply(std::uint64_t a, std::uint64_t b) noexcept {
    const std::uint64_t low = b & ((std::uint64_t{1} << 23) - 1), high = b >> 23;
    return ((((a * high) & mask) << 23) + a * low) & mask;
  }
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
      if (c.size() != 1 || std::string_view("SWAB").find(c[0]) == std::string_view::npos)
        throw std::invalid_argument(fmt::format("--class {}: expected S, W, A or B", c));
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

// The problem class named by --class (every kernel lists S, W, A, B).
template <class Class, std::size_t N>
const Class& find_class(const std::array<Class, N>& classes, char name) {
  for (const Class& c : classes)
    if (c.name == name) return c;
  throw std::invalid_argument(fmt::format("no class {}", name));
}

// Runs run.template operator()<Policy>() for the policy --policy names (the
// first listed when none is named).
template <class... Policies, class Run>
bool with_policy(const options& o, std::string_view kernel, Run&& run) {
  using first = std::tuple_element_t<0, std::tuple<Policies...>>;
  if (!o.rest.empty()) throw std::invalid_argument(fmt::format("{}: unknown argument {}", kernel, o.rest.front()));
  bool found = false, result = false;
  auto attempt = [&]<class P>() {
    if (found || !(o.policy.empty() ? std::is_same_v<P, first> : o.policy == P::name)) return;
    found = true;
    result = run.template operator()<P>();
  };
  (attempt.template operator()<Policies>(), ...);
  if (!found) {
    std::string names;
    ((names += std::string(names.empty() ? "" : ", ") + Policies::name), ...);
    throw std::invalid_argument(fmt::format("{}: --policy {}: expected one of {}", kernel, o.policy, names));
  }
  return result;
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

// NPB's result block, printed by rank 0 and flushed: a failed verification
// ends every rank non-zero, and dsmrun ends a job at the first such exit.
inline void print(const report& r) {
  if (dsm::rank() != 0) return;
  const int ranks = dsm::ranks();
  fmt::print(
      "\n {} Benchmark Completed.\n"
      " Class           = {:>24}\n"
      " Size            = {:>24}\n"
      " Iterations      = {:>24}\n"
      " Time in seconds = {:>24.2f}\n"
      " Total ranks     = {:>24}\n"
      " Mop/s total     = {:>24.2f}\n"
      " Mop/s/rank      = {:>24.2f}\n"
      " Operation type  = {:>24}\n"
      " Policy          = {:>24}\n"
      " Verification    = {:>24}\n"
      " Version         = {:>24}\n",
      r.kernel, r.problem_class, r.size, r.iterations, r.seconds, ranks, r.mops_total, r.mops_total / ranks,
      r.operation, r.policy, r.verified ? "SUCCESSFUL" : "UNSUCCESSFUL", DSM_VERSION);
  std::fflush(stdout);
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs a kernel's main: a usage error exits 2, a failed verification 1.
template <class Kernel>
int main(int argc, char** argv, std::string_view usage, Kernel&& kernel) {
  try {
    dsm::runtime rt{argc, argv};
    const options o = parse(argc, argv, usage);
    const bool ok = kernel(o);
    dsm::barrier();  // rank 0's report is out before any rank exits
    return ok ? 0 : 1;
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 1;
  }
}

}  // namespace npb

// Timing for the benchmarks: the median of repeated runs, which shrugs off
// the odd run disturbed by the other processes of a small shared machine.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string_view>
#include <vector>

namespace dsm_bench {

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

template <class F>
double time_ns(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}

// Median wall time of `reps` calls of f, in nanoseconds.
template <class F>
double median_ns(int reps, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) t.push_back(time_ns(f));
  return median(std::move(t));
}

// Reads the "--flag value" pairs of a command line: `take(flag, value)`
// says whether it knew the pair. An unknown pair, or a flag without its
// value, prints the usage line and returns false.
template <class Take>
bool parse_pairs(int argc, char** argv, std::string_view usage, Take&& take) {
  bool ok = argc % 2 == 1;
  for (int i = 1; ok && i + 1 < argc; i += 2) ok = take(std::string_view(argv[i]), std::string_view(argv[i + 1]));
  if (!ok) fmt::print(stderr, "usage: {} {}\n", argv[0], usage);
  return ok;
}

}  // namespace dsm_bench

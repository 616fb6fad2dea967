// Timing for the benchmarks: the median of repeated runs, which shrugs off
// the odd run disturbed by the other processes of a small shared machine.
#pragma once

#include <algorithm>
#include <chrono>
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

}  // namespace dsm_bench

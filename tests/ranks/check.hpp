// Checks for multi-rank test programs (each rank is its own process, so
// doctest's single-process runner does not fit): a failed check prints the
// rank, the place and the values, and the program exits non-zero at the end.
#pragma once

#include <dsm/dsm.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>

namespace dsm_test {

inline int& failures() {
  static int n = 0;
  return n;
}

inline void report(bool ok, const char* expr, const char* file, int line, const std::string& detail = {}) {
  if (ok) return;
  ++failures();
  int r = -1;
  try {
    r = dsm::rank();
  } catch (...) {
  }
  fmt::print(stderr, "FAIL rank {} {}:{}: {}{}{}\n", r, file, line, expr, detail.empty() ? "" : " -- ", detail);
}

// Runs f, expecting a dsm::error of `category`; returns its message.
template <class F>
std::string expect_error(F&& f, dsm::errc category, const char* what, const char* file, int line) {
  try {
    f();
  } catch (const dsm::error& e) {
    report(e.category() == category, what, file, line,
           fmt::format("category '{}', expected '{}': {}", dsm::to_string(e.category()), dsm::to_string(category), e.what()));
    return e.what();
  }
  report(false, what, file, line, "no dsm::error thrown");
  return {};
}

// main() of a test program: the runtime, the body, a final verdict.
inline int run(int argc, char** argv, const std::function<void()>& body,
               dsm::threads model = dsm::threads::single) {
  try {
    dsm::runtime rt{argc, argv, model};
    body();
    const int all = dsm::allreduce(failures());
    if (dsm::rank() == 0)
      fmt::print("{}: {} on {} rank(s) via {}, {} failed check(s)\n", argv[0], all == 0 ? "passed" : "FAILED",
                 dsm::ranks(), rt.bootstrap_method(), all);
    return all == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "FAIL: uncaught: {}\n", e.what());
    return 1;
  }
}

}  // namespace dsm_test

#define CHECK(expr) ::dsm_test::report(static_cast<bool>(expr), #expr, __FILE__, __LINE__)
#define CHECK_EQ(a, b)                                                                                    \
  do {                                                                                                    \
    const auto& check_a_ = (a);                                                                           \
    const auto& check_b_ = (b);                                                                           \
    ::dsm_test::report(check_a_ == check_b_, #a " == " #b, __FILE__, __LINE__,                            \
                       fmt::format("{} != {}", check_a_, check_b_));                                      \
  } while (0)
#define CHECK_ERROR(category, ...) \
  ::dsm_test::expect_error([&] { __VA_ARGS__; }, category, #__VA_ARGS__, __FILE__, __LINE__)

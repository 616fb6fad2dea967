// Bounded waiting: every wait in dsm has a deadline and, past it, an error
// naming what was waited for.
#pragma once

#include <dsm/error.hpp>

#include <fmt/format.h>

#include <chrono>
#include <string_view>

namespace dsm::transport {

using clock_type = std::chrono::steady_clock;

class deadline {
 public:
  explicit deadline(std::chrono::duration<double> limit)
      : limit_(limit), end_(clock_type::now() + std::chrono::duration_cast<clock_type::duration>(limit)) {}
  bool passed() const noexcept { return clock_type::now() >= end_; }
  [[noreturn]] void expire(std::string_view what) const {
    throw error(errc::timeout, fmt::format("waited {:.0f} s for {} (DSM_TIMEOUT)", limit_.count(), what));
  }

 private:
  std::chrono::duration<double> limit_;
  clock_type::time_point end_;
};

}  // namespace dsm::transport

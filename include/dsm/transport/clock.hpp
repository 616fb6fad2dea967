// Bounded waiting: every wait in dsm has a deadline and, past it, an error
// naming what was waited for. An infinite limit (DSM_TIMEOUT=0 or inf)
// never passes; a finite one is at most settings' maximum, so adding it to
// the clock cannot overflow.
#pragma once

#include <dsm/error.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <string_view>

namespace dsm::transport {

using clock_type = std::chrono::steady_clock;

// The time point `limit` from now; the clock's end for an infinite limit.
inline clock_type::time_point time_after(std::chrono::duration<double> limit) noexcept {
  if (!std::isfinite(limit.count())) return clock_type::time_point::max();
  return clock_type::now() + std::chrono::duration_cast<clock_type::duration>(limit);
}

class deadline {
 public:
  explicit deadline(std::chrono::duration<double> limit) : limit_(limit), end_(time_after(limit)) {}
  bool passed() const noexcept { return clock_type::now() >= end_; }
  [[noreturn]] void expire(std::string_view what) const {
    throw error(errc::timeout, fmt::format("waited {:.0f} s for {} (DSM_TIMEOUT)", limit_.count(), what));
  }

 private:
  std::chrono::duration<double> limit_;
  clock_type::time_point end_;
};

}  // namespace dsm::transport

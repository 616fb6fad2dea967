// What the environment says about how this rank should run.
//
//   DSM_TIMEOUT   seconds any single wait may take (default 120; 0 or
//                 inf: no limit; at most max_timeout_seconds otherwise)
//   DSM_START_TIMEOUT  seconds start-up (joining the job, the first
//                 exchange and barrier) may take at least (default 60): ranks
//                 of a loaded machine start seconds apart, and a short
//                 DSM_TIMEOUT meant for the run must not end the job there
//   DSM_PROGRESS  thread | poll (default: poll when UCX_TLS names only
//                 shared-memory transports, thread otherwise)
//   DSM_STATS     1: print per-rank counters at exit (and per array)
//   DSM_CHECK_RACES 1: a data race a write_shared home detects is a
//                 dsm::error on the writer (default: counted and warned)
//   DSM_MAX_SEGMENT_BYTES  the largest segment (one rank's block of an
//                 array) this rank maps (default: its physical memory)
//   DSM_HOST_TIMEOUT  seconds a machine of the job may stay silent before
//                 its ranks count as lost (default 3; 0 or inf: not
//                 watched; see peer_watch.hpp)
#pragma once

#include <dsm/error.hpp>
#include <dsm/transport/worker.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <cstdlib>
#include <string>
#include <string_view>

namespace dsm::detail {

struct settings {
  double timeout_seconds = 120.0;
  double start_timeout_seconds = 60.0;
  transport::progress_mode progress = transport::progress_mode::thread;
  bool stats = false;
  bool check_races = false;
  std::uint64_t max_segment_bytes = UINT64_MAX;
  double host_timeout_seconds = 3.0;

  static settings from_environment() {
    settings s;
    if (const char* t = std::getenv("DSM_TIMEOUT")) s.timeout_seconds = parse_timeout(t);
    if (const char* t = std::getenv("DSM_START_TIMEOUT"))
      s.start_timeout_seconds = parse_timeout(t, "DSM_START_TIMEOUT");
    if (const char* t = std::getenv("DSM_HOST_TIMEOUT")) s.host_timeout_seconds = parse_timeout(t, "DSM_HOST_TIMEOUT");
    if (const char* p = std::getenv("DSM_PROGRESS")) {
      const std::string_view v = p;
      if (v == "thread") s.progress = transport::progress_mode::thread;
      else if (v == "poll") s.progress = transport::progress_mode::poll;
      else throw error(errc::invalid_argument, fmt::format("DSM_PROGRESS='{}': expected thread or poll", v));
    } else {
      s.progress = shared_memory_only(std::getenv("UCX_TLS")) ? transport::progress_mode::poll
                                                              : transport::progress_mode::thread;
    }
    if (const char* v = std::getenv("DSM_STATS")) s.stats = std::string_view(v) == "1";
    if (const char* v = std::getenv("DSM_CHECK_RACES")) s.check_races = std::string_view(v) == "1";
    if (const char* v = std::getenv("DSM_MAX_SEGMENT_BYTES")) {
      char* end = nullptr;
      const unsigned long long b = std::strtoull(v, &end, 10);
      if (end == v || *end != '\0' || b == 0)
        throw error(errc::invalid_argument, fmt::format("DSM_MAX_SEGMENT_BYTES='{}': expected a positive number of bytes", v));
      s.max_segment_bytes = b;
    }
    return s;
  }

  // Start-up waits take the longer of the two limits.
  double start_limit_seconds() const noexcept { return std::max(timeout_seconds, start_timeout_seconds); }

  // A wait's limit in seconds: 0 and inf mean no limit (infinity); a
  // finite limit is positive and at most max_timeout_seconds, so that a
  // deadline never overflows the clock.
  static constexpr double max_timeout_seconds = 1e9;  // about 31 years
  static double parse_timeout(const char* text, std::string_view variable = "DSM_TIMEOUT") {
    char* end = nullptr;
    const double v = std::strtod(text, &end);
    const auto refuse = [&](std::string_view why) {
      throw error(errc::invalid_argument,
                  fmt::format("{}='{}': {}; expected seconds (at most {:g}), or 0 or inf to wait for ever", variable, text,
                              why, max_timeout_seconds));
    };
    if (end == text || *end != '\0') refuse("not a number");
    if (std::isnan(v)) refuse("not a number");
    if (v < 0) refuse("negative");
    if (v == 0 || std::isinf(v)) return std::numeric_limits<double>::infinity();
    if (v > max_timeout_seconds) refuse("too long");
    return v;
  }

  // Shared-memory transports serve RMA and atomics without the target's
  // help; a progress thread would only add a lock to every operation.
  static bool shared_memory_only(const char* tls) {
    return transport::transport_list(tls).names_only(
        {"self", "posix", "sysv", "cma", "sm", "shm", "xpmem", "knem"});
  }
};

}  // namespace dsm::detail

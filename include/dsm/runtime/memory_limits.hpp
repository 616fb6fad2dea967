// How much memory one segment may take, checked before anything is mapped:
// a shared array of 1e12 doubles must be an error, not a full /dev/shm and
// the kernel's OOM killer. The fixed limit (physical memory, or
// DSM_MAX_SEGMENT_BYTES when smaller) is what every rank tells the others
// at start-up; at allocation the free space of /dev/shm, where UCX's
// shared-memory transport maps segments, is checked as well.
#pragma once

#include <dsm/error.hpp>
#include <dsm/runtime/settings.hpp>

#include <fmt/format.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace dsm::detail {

inline std::uint64_t physical_memory_bytes() noexcept {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : UINT64_MAX;
}

// The largest segment this rank will ever map.
inline std::uint64_t segment_limit(const settings& s) noexcept {
  return std::min(physical_memory_bytes(), s.max_segment_bytes);
}

struct room {
  std::uint64_t bytes;
  std::string what;
};

// Whether UCX may place segments in /dev/shm: its posix transport is in use.
inline bool segments_in_dev_shm() noexcept {
  const char* tls = std::getenv("UCX_TLS");
  if (tls == nullptr || *tls == '\0' || *tls == '^') return true;
  const std::string list = std::string(",") + tls + ",";
  return list.find(",posix,") != std::string::npos || list.find(",shm,") != std::string::npos ||
         list.find(",sm,") != std::string::npos || list.find(",all,") != std::string::npos;
}

// What may be mapped now, and what bounds it, for messages.
inline room mappable_now(std::uint64_t limit) {
  room r{limit, limit == physical_memory_bytes() ? "this machine's physical memory" : "DSM_MAX_SEGMENT_BYTES"};
  struct statvfs fs {};
  if (segments_in_dev_shm() && ::statvfs("/dev/shm", &fs) == 0) {
    const std::uint64_t free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    if (free_bytes < r.bytes) r = {free_bytes, "the free space of /dev/shm"};
  }
  return r;
}

}  // namespace dsm::detail

// How much memory a segment may take, checked before anything is mapped:
// a shared array of 1e12 doubles must be an error, not a full /dev/shm and
// the kernel's OOM killer. The fixed limit (physical memory, or
// DSM_MAX_SEGMENT_BYTES when smaller) is what every rank tells the others
// at start-up; at allocation what the machine has now bounds it too: the
// free space of /dev/shm (where UCX's shared-memory transport maps
// segments), the memory the kernel says is available, and the room left
// under RLIMIT_AS.
#pragma once

#include <dsm/error.hpp>
#include <dsm/runtime/settings.hpp>
#include <dsm/transport/transport_list.hpp>

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace dsm::detail {

inline constexpr std::uint64_t unbounded_bytes = UINT64_MAX;

inline std::uint64_t physical_memory_bytes() noexcept {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : unbounded_bytes;
}

// The largest segment this rank will ever map.
inline std::uint64_t segment_limit(const settings& s) noexcept {
  return std::min(physical_memory_bytes(), s.max_segment_bytes);
}

// Whether UCX may place segments in /dev/shm: its posix transport is in use.
inline bool segments_in_dev_shm() noexcept {
  const auto tls = transport::transport_list::from_environment();
  return tls.unrestricted() || tls.names_any({"posix", "shm", "sm", "all"});
}

inline std::uint64_t dev_shm_free_bytes() noexcept {
  struct statvfs fs {};
  if (::statvfs("/dev/shm", &fs) != 0) return unbounded_bytes;
  return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
}

// MemAvailable of /proc/meminfo: what can be allocated without swapping.
inline std::uint64_t available_memory_bytes() noexcept {
  std::FILE* f = std::fopen("/proc/meminfo", "re");
  if (f == nullptr) return unbounded_bytes;
  std::uint64_t bytes = unbounded_bytes;
  char line[256];
  unsigned long long kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
      bytes = static_cast<std::uint64_t>(kib) * 1024;
      break;
    }
  std::fclose(f);
  return bytes;
}

// What RLIMIT_AS leaves of this process's address space.
inline std::uint64_t address_space_room() noexcept {
  rlimit lim{};
  if (::getrlimit(RLIMIT_AS, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return unbounded_bytes;
  std::uint64_t used = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "re")) {
    unsigned long long pages = 0;
    if (std::fscanf(f, "%llu", &pages) == 1) used = pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    std::fclose(f);
  }
  return lim.rlim_cur > used ? lim.rlim_cur - used : 0;
}

// What may be mapped now, what bounds it, and every bound, for messages.
struct room {
  std::uint64_t bytes;
  std::string bound;    // the smallest: "the free space of /dev/shm", ...
  std::string details;  // "free /dev/shm N B, available memory N B, ..."
};

inline std::string bytes_text(std::uint64_t b) {
  return b == unbounded_bytes ? std::string("unlimited") : fmt::format("{} B", b);
}

inline room mappable_now(std::uint64_t limit, const settings& s) {
  const bool fixed_by_setting = limit == s.max_segment_bytes && limit < physical_memory_bytes();
  room r{limit, fixed_by_setting ? "DSM_MAX_SEGMENT_BYTES" : "this machine's physical memory", {}};
  const auto bound_by = [&](std::uint64_t bytes, const char* what) {
    if (bytes < r.bytes) r = {bytes, what, {}};
  };
  const std::uint64_t shm = segments_in_dev_shm() ? dev_shm_free_bytes() : unbounded_bytes;
  const std::uint64_t available = available_memory_bytes(), address_space = address_space_room();
  bound_by(shm, "the free space of /dev/shm");
  bound_by(available, "the memory available (MemAvailable)");
  bound_by(address_space, "the address space RLIMIT_AS leaves");
  r.details = fmt::format("{} {}, free /dev/shm {}, available memory {}, RLIMIT_AS room {}",
                          fixed_by_setting ? "DSM_MAX_SEGMENT_BYTES" : "physical memory", bytes_text(limit),
                          segments_in_dev_shm() ? bytes_text(shm) : std::string("not used"), bytes_text(available),
                          bytes_text(address_space));
  return r;
}

}  // namespace dsm::detail

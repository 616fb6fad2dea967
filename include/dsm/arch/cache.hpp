// Cache maintenance over byte ranges: what the protocol calls around a
// transfer on an ISA whose DMA is not cache-coherent. With maintenance off
// (x86-64 by default) every call checks its arguments and returns.
#pragma once

#include <dsm/arch/isa.hpp>
#include <dsm/arch/lines.hpp>
#include <dsm/error.hpp>

#if defined(__x86_64__)
#include <dsm/arch/x86_64.hpp>
#elif defined(__aarch64__)
#include <dsm/arch/aarch64.hpp>
#else
#include <unistd.h>
#endif

#include <cstddef>
#include <cstdint>
#include <limits>

namespace dsm::arch {

namespace detail {

#if defined(__x86_64__)
namespace native = x86_64;
#elif defined(__aarch64__)
namespace native = aarch64;
#else
namespace native {
inline std::size_t read_cache_line_bytes() noexcept {
  const long l1 = ::sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
  return l1 > 0 ? static_cast<std::size_t>(l1) : 64;  // no maintenance here: size is advisory
}
}  // namespace native
#endif

inline void check_range(const void* p, std::size_t n, const char* operation) {
#if DSM_CHECKS
  if (n == 0) return;
  if (p == nullptr)
    throw error(errc::invalid_argument, fmt::format("arch::{}: null address with {} bytes", operation, n));
  if (reinterpret_cast<std::uintptr_t>(p) > std::numeric_limits<std::uintptr_t>::max() - (n - 1))
    throw error(errc::invalid_argument,
                fmt::format("arch::{}: range of {} bytes at {} wraps the address space", operation, n, p));
#else
  (void)p, (void)n, (void)operation;
#endif
}

}  // namespace detail

// The smallest data cache line of this CPU in bytes, read once at run time.
inline std::size_t cache_line_bytes() noexcept {
  static const std::size_t line_bytes = detail::native::read_cache_line_bytes();
  return line_bytes;
}

inline line_range lines_touching(const void* p, std::size_t n) noexcept {
  return lines_touching(reinterpret_cast<std::uintptr_t>(p), n, cache_line_bytes());
}

// Write every dirty line of [p, p+n) back to memory (arm64 DC CVAC + DSB SY;
// x86-64 CLWB + SFENCE when forced on), so a device reading memory sees it.
inline void clean(const void* p, std::size_t n) {
  detail::check_range(p, n, "clean");
  if constexpr (cache_maintenance_enabled) {
    if (n != 0) detail::native::clean_lines(lines_touching(p, n));
  }
}

// Write back and discard every line of [p, p+n) (arm64 DC CIVAC + DSB SY;
// x86-64 CLFLUSHOPT + SFENCE when forced on), so the next CPU read comes
// from memory.
inline void clean_invalidate(void* p, std::size_t n) {
  detail::check_range(p, n, "clean_invalidate");
  if constexpr (cache_maintenance_enabled) {
    if (n != 0) detail::native::clean_invalidate_lines(lines_touching(p, n));
  }
}

// Make the CPU's next read of [p, p+n) come from memory. Deliberately the
// same instructions as clean_invalidate: DC IVAC is not allowed at EL0, and a
// line that is only partly inside the range may hold dirty bytes of a
// neighbour that an invalidate-only would throw away.
inline void invalidate(void* p, std::size_t n) {
  detail::check_range(p, n, "invalidate");
  if constexpr (cache_maintenance_enabled) {
    if (n != 0) detail::native::clean_invalidate_lines(lines_touching(p, n));
  }
}

}  // namespace dsm::arch

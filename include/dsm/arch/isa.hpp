// Which ISA this translation unit is compiled for, and whether the library
// performs cache maintenance around one-sided transfers on it.
#pragma once

#include <dsm/config.hpp>

namespace dsm::arch {

enum class isa { x86_64, aarch64, other };

#if defined(__x86_64__)
inline constexpr isa host_isa = isa::x86_64;
#elif defined(__aarch64__)
inline constexpr isa host_isa = isa::aarch64;
#else
inline constexpr isa host_isa = isa::other;
#endif

#if DSM_CACHE_MAINTENANCE != 0 && DSM_CACHE_MAINTENANCE != 1 && DSM_CACHE_MAINTENANCE != 2
#error "DSM_CACHE_MAINTENANCE must be 0 (off), 1 (on) or 2 (auto)"
#endif
#if DSM_CACHE_MAINTENANCE == 1 && !defined(__x86_64__) && !defined(__aarch64__)
#error "DSM_CACHE_MAINTENANCE=1: dsm has cache maintenance instructions for x86-64 and arm64 only"
#endif

// auto: arm64 gives no guarantee that a NIC's DMA into memory is coherent with
// the CPU caches, x86-64 does.
inline constexpr bool cache_maintenance_enabled =
    DSM_CACHE_MAINTENANCE == 1 || (DSM_CACHE_MAINTENANCE == 2 && host_isa == isa::aarch64);

// True when the library treats DMA into registered memory as coherent and so
// skips all maintenance; the protocol layers branch on it at compile time.
inline constexpr bool coherent_dma = !cache_maintenance_enabled;

constexpr const char* to_string(isa i) noexcept {
  switch (i) {
    case isa::x86_64: return "x86-64";
    case isa::aarch64: return "arm64";
    case isa::other: return "other";
  }
  return "unknown";
}

}  // namespace dsm::arch

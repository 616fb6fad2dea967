// arm64 cache maintenance to the point of coherency, from user space (EL0).
// Linux sets SCTLR_EL1.UCI and UCT, so DC CVAC, DC CIVAC and reads of CTR_EL0
// are allowed at EL0; DC IVAC is not (it traps: SIGILL), hence no
// invalidate-only instruction here.
#pragma once

#if defined(__aarch64__)

#include <dsm/arch/lines.hpp>

#include <cstddef>
#include <cstdint>

namespace dsm::arch::detail::aarch64 {

// CTR_EL0.DminLine (bits 19:16): log2 of the smallest data cache line in
// 4-byte words. Real parts differ (cortex-a72 64 B, a64fx 256 B, qemu's max
// CPU 32 B), so it is read, never assumed.
inline std::size_t read_cache_line_bytes() noexcept {
  std::uint64_t ctr = 0;
  asm volatile("mrs %0, ctr_el0" : "=r"(ctr));
  return std::size_t{4} << ((ctr >> 16) & 0xf);
}

// DSB SY, not ISH: the observer that must see the lines at the point of
// coherency is a DMA master outside the inner-shareable domain.
inline void clean_lines(const line_range& r) noexcept {
  for (std::size_t i = 0; i < r.line_count; ++i)
    asm volatile("dc cvac, %0" ::"r"(r.first_line + i * r.line_bytes) : "memory");
  asm volatile("dsb sy" ::: "memory");
}

inline void clean_invalidate_lines(const line_range& r) noexcept {
  for (std::size_t i = 0; i < r.line_count; ++i)
    asm volatile("dc civac, %0" ::"r"(r.first_line + i * r.line_bytes) : "memory");
  asm volatile("dsb sy" ::: "memory");
}

}  // namespace dsm::arch::detail::aarch64

#endif

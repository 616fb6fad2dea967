// x86-64 cache maintenance instructions. DMA is coherent on x86-64, so these
// run only when cache_maintenance=on forces them (to measure their cost).
#pragma once

#if defined(__x86_64__)

#include <dsm/arch/lines.hpp>

#include <cpuid.h>

#include <cstddef>
#include <cstdint>

namespace dsm::arch::detail::x86_64 {

struct flush_support {
  std::size_t line_bytes;  // CPUID.1:EBX[15:8] * 8, the CLFLUSH line size
  bool clflushopt;         // CPUID.(7,0):EBX[23]
  bool clwb;               // CPUID.(7,0):EBX[24]
};

inline flush_support probe_flush_support() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  flush_support s{64, false, false};  // 64: only if CPUID leaf 1 is absent
  if (__get_cpuid(1, &a, &b, &c, &d) && ((b >> 8) & 0xff) != 0) s.line_bytes = ((b >> 8) & 0xff) * 8;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    s.clflushopt = (b >> 23) & 1;
    s.clwb = (b >> 24) & 1;
  }
  return s;
}

inline const flush_support& flush_support_of_this_cpu() noexcept {
  static const flush_support support = probe_flush_support();
  return support;
}

inline std::size_t read_cache_line_bytes() noexcept {
  return flush_support_of_this_cpu().line_bytes;
}

template <class Op>
inline void for_each_line(const line_range& r, Op op) noexcept {
  for (std::size_t i = 0; i < r.line_count; ++i) op(r.first_line + i * r.line_bytes);
}

// CLFLUSHOPT and CLWB are ordered by SFENCE; legacy CLFLUSH is ordered with
// stores already, MFENCE also orders it against later loads.
inline void clean_invalidate_lines(const line_range& r) noexcept {
  if (flush_support_of_this_cpu().clflushopt) {
    for_each_line(r, [](std::uintptr_t a) { asm volatile("clflushopt (%0)" ::"r"(a) : "memory"); });
    asm volatile("sfence" ::: "memory");
  } else {
    for_each_line(r, [](std::uintptr_t a) { asm volatile("clflush (%0)" ::"r"(a) : "memory"); });
    asm volatile("mfence" ::: "memory");
  }
}

// Without CLWB, writing a line back means flushing it.
inline void clean_lines(const line_range& r) noexcept {
  const flush_support& s = flush_support_of_this_cpu();
  if (s.clwb) {
    for_each_line(r, [](std::uintptr_t a) { asm volatile("clwb (%0)" ::"r"(a) : "memory"); });
    asm volatile("sfence" ::: "memory");
  } else {
    clean_invalidate_lines(r);
  }
}

}  // namespace dsm::arch::detail::x86_64

#endif

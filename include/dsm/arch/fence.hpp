// Ordering primitives the protocol layers are written against.
#pragma once

#include <atomic>

namespace dsm::arch {

// Later loads and stores stay after earlier loads (arm64: DMB ISHLD; x86-64
// TSO: compiler barrier only).
inline void acquire_fence() noexcept { std::atomic_thread_fence(std::memory_order_acquire); }

// Earlier loads and stores complete before later stores (arm64: DMB ISH;
// x86-64: compiler barrier only).
inline void release_fence() noexcept { std::atomic_thread_fence(std::memory_order_release); }

// Full ordering of all earlier against all later accesses, including against
// an observer outside the inner-shareable domain, e.g. a NIC reading memory
// after a doorbell write (arm64: DSB SY; x86-64: MFENCE).
inline void device_fence() noexcept {
#if defined(__aarch64__)
  asm volatile("dsb sy" ::: "memory");
#elif defined(__x86_64__)
  asm volatile("mfence" ::: "memory");
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace dsm::arch

// Ordering primitives the protocol layers are written against.
#pragma once

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

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

// A Dekker pair with one hot side (a store, then a load that must not pass
// it) and one rare side: the hot side calls light_fence(), the rare side
// heavy_fence(). With Linux's membarrier (private expedited, registered
// once per process) the heavy fence makes every running thread of the
// process execute a full barrier, so the light one need only stop the
// compiler; without it both are full fences.
namespace detail {
inline bool register_membarrier() noexcept {
#if defined(__linux__) && defined(SYS_membarrier)
  const long offered = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  return offered > 0 && (offered & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
         ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
  return false;
#endif
}
}  // namespace detail

inline bool asymmetric_fences() noexcept {
  static const bool registered = detail::register_membarrier();
  return registered;
}

// `asymmetric` is asymmetric_fences(), read once by the caller so the hot
// path tests a member, not a guarded static.
inline void light_fence(bool asymmetric) noexcept {
  if (asymmetric) std::atomic_signal_fence(std::memory_order_seq_cst);
  else std::atomic_thread_fence(std::memory_order_seq_cst);
}
inline void heavy_fence(bool asymmetric) noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
#if defined(__linux__) && defined(SYS_membarrier)
  if (asymmetric) ::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
#endif
}

}  // namespace dsm::arch

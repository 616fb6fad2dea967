// Ownership hand-over of a buffer between the CPU and a DMA master (the NIC
// behind UCX), with the semantics of Linux's dma_sync_single_for_device /
// dma_sync_single_for_cpu on arm64.
#pragma once

#include <dsm/arch/cache.hpp>
#include <dsm/error.hpp>

#include <cstddef>
#include <cstdint>

namespace dsm::arch {

// Same values as Linux's enum dma_data_direction.
enum class dma_direction : std::uint8_t { bidirectional = 0, to_device = 1, from_device = 2 };

constexpr const char* to_string(dma_direction d) noexcept {
  switch (d) {
    case dma_direction::bidirectional: return "bidirectional";
    case dma_direction::to_device: return "to_device";
    case dma_direction::from_device: return "from_device";
  }
  return "invalid";
}

namespace detail {
inline void check_direction(dma_direction d, const char* operation) {
  switch (d) {
    case dma_direction::bidirectional:
    case dma_direction::to_device:
    case dma_direction::from_device: return;
  }
  throw error(errc::invalid_argument, fmt::format("arch::{}: invalid dma_direction {}", operation,
                                                  static_cast<unsigned>(d)));
}
}  // namespace detail

// Before the device touches [p, p+n). Every direction cleans: the device
// must read the CPU's data (to_device), and no dirty line may be evicted on
// top of what the device writes (from_device). As in Linux since 5.19, no
// invalidation here: lines fetched speculatively during the transfer would
// be stale anyway, so sync_for_cpu invalidates afterwards.
inline void sync_for_device(const void* p, std::size_t n, dma_direction d) {
  detail::check_direction(d, "sync_for_device");
  clean(p, n);
}

// After the device is done with [p, p+n), before the CPU reads it. A buffer
// the device only read (to_device) has nothing new for the CPU: no-op.
inline void sync_for_cpu(void* p, std::size_t n, dma_direction d) {
  detail::check_direction(d, "sync_for_cpu");
  if (d == dma_direction::to_device) {
    detail::check_range(p, n, "sync_for_cpu");
    return;
  }
  invalidate(p, n);
}

}  // namespace dsm::arch

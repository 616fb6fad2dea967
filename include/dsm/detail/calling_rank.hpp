// The rank of this process, as far as the layers below the runtime need it
// (for error messages). The runtime sets it at bootstrap.
#pragma once

#include <atomic>

namespace dsm::detail {

inline constexpr int no_rank = -1;

inline std::atomic<int>& calling_rank_slot() noexcept {
  static std::atomic<int> rank{no_rank};
  return rank;
}

inline int calling_rank() noexcept { return calling_rank_slot().load(std::memory_order_relaxed); }
inline void set_calling_rank(int rank) noexcept {
  calling_rank_slot().store(rank, std::memory_order_relaxed);
}

}  // namespace dsm::detail

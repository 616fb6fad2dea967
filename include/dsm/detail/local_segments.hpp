// This rank's segments as the address layer sees them: base, size and
// generation per segment id. The runtime fills it when it maps and frees
// memory; global_ptr::local() reads it to turn a global address into a
// local one, refusing stale generations and offsets past the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dsm::detail {

struct local_segment_view {
  std::byte* base = nullptr;
  std::uint64_t bytes = 0;
  std::uint8_t generation = 0;  // 0: no live segment in this slot
};

class local_segment_table {
 public:
  static constexpr std::size_t max_segments = 1u << 16;  // the 16-bit segment field

  const local_segment_view* find(std::uint16_t id) const noexcept {
    return id < slots_.size() && slots_[id].generation != 0 ? &slots_[id] : nullptr;
  }
  void publish(std::uint16_t id, const local_segment_view& v) {
    if (id >= slots_.size()) slots_.resize(std::size_t{id} + 1);
    slots_[id] = v;
  }
  void retire(std::uint16_t id) noexcept {
    if (id < slots_.size()) slots_[id] = {};
  }

 private:
  std::vector<local_segment_view> slots_;
};

inline local_segment_table& local_segments() noexcept {
  static local_segment_table table;
  return table;
}

}  // namespace dsm::detail

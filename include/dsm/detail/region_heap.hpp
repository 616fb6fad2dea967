// The bookkeeping of one rank's arena in a global region: which byte
// ranges are free, first fit, neighbours merged on free. Offsets only; the
// bytes themselves are region memory this bookkeeping never touches (a
// fault there would be served inside an allocation).
#pragma once

#include <dsm/error.hpp>

#include <fmt/format.h>

#include <cstddef>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace dsm::detail {

class region_heap {
 public:
  static constexpr std::size_t granule = 16;  // every block starts and ends on one: malloc's alignment

  region_heap(std::size_t begin, std::size_t end, std::string object) : begin_(begin), end_(end), object_(std::move(object)) {
    if (end > begin) free_.emplace(begin, end - begin);
  }

  // The offset of `bytes` aligned to `align` (a power of two), or none
  // when no free range holds them.
  std::optional<std::size_t> allocate(std::size_t bytes, std::size_t align) {
    if (align < granule) align = granule;
    if (bytes == 0) bytes = 1;
    if (bytes > end_ - begin_) return std::nullopt;
    bytes = round_up(bytes, granule);
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      const std::size_t start = round_up(it->first, align), run_end = it->first + it->second;
      if (start > run_end || run_end - start < bytes) continue;
      const std::size_t before = start - it->first, after = run_end - (start + bytes);
      const std::size_t first = it->first;
      free_.erase(it);
      if (before != 0) free_.emplace(first, before);
      if (after != 0) free_.emplace(start + bytes, after);
      used_ += bytes;
      return start;
    }
    return std::nullopt;
  }

  // Gives back what allocate(bytes) returned; a range outside the arena
  // or already free is a dsm::error, never a corrupted free list.
  void free(std::size_t offset, std::size_t bytes) {
    if (bytes == 0) bytes = 1;
    bytes = round_up(bytes, granule);
    if (offset < begin_ || offset % granule != 0 || offset > end_ || bytes > end_ - offset)
      throw error(errc::invalid_argument, fmt::format("{}: freeing {} B at offset {}: not a block of this rank's arena "
                                                      "[{}, {})", object_, bytes, offset, begin_, end_));
    auto next = free_.lower_bound(offset);
    if ((next != free_.end() && next->first < offset + bytes) ||
        (next != free_.begin() && std::prev(next)->first + std::prev(next)->second > offset))
      throw error(errc::invalid_argument,
                  fmt::format("{}: freeing {} B at offset {}: (part of) it is free already", object_, bytes, offset));
    std::size_t start = offset, length = bytes;
    if (next != free_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == start) {
        start = prev->first;
        length += prev->second;
        free_.erase(prev);
      }
    }
    if (next != free_.end() && next->first == offset + bytes) {
      length += next->second;
      free_.erase(next);
    }
    free_.emplace(start, length);
    used_ -= bytes;
  }

  std::size_t begin() const noexcept { return begin_; }
  std::size_t end() const noexcept { return end_; }
  std::size_t bytes_used() const noexcept { return used_; }
  std::size_t free_ranges() const noexcept { return free_.size(); }

 private:
  static std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

  std::size_t begin_, end_;
  std::string object_;
  std::map<std::size_t, std::size_t> free_;  // offset -> length, never adjacent
  std::size_t used_ = 0;
};

// One rank's arena of one region, found by the region's base address (the
// same on every rank, so an allocator stored inside the region finds it
// on whichever rank uses it).
struct region_arena {
  std::byte* base;          // the region's
  std::size_t slot_bytes;   // every rank's arena: [rank * slot_bytes, + slot_bytes)
  std::size_t me;
  region_heap heap;
};

class region_arenas {
 public:
  static void add(region_arena* a) {
    auto& r = instance();
    const std::lock_guard g{r.mutex_};
    r.arenas_.push_back(a);
  }
  static void remove(region_arena* a) noexcept {
    auto& r = instance();
    const std::lock_guard g{r.mutex_};
    std::erase(r.arenas_, a);
  }
  static region_arena* find(const std::byte* base) noexcept {
    auto& r = instance();
    const std::lock_guard g{r.mutex_};
    for (region_arena* a : r.arenas_)
      if (a->base == base) return a;
    return nullptr;
  }

 private:
  static region_arenas& instance() {
    static region_arenas r;
    return r;
  }
  std::mutex mutex_;
  std::vector<region_arena*> arenas_;
};

}  // namespace dsm::detail

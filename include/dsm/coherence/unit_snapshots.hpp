// What a home's units held at the last barrier its readers were updated
// at, so that the next one finds the bytes that changed since: one copy of
// the home's block (its pages appear only for units that have readers), a
// flag per unit saying whether its snapshot is taken.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace dsm::coherence {

// Bytes [first, last) of a unit; empty when first == last.
struct byte_range {
  std::size_t first = 0, last = 0;
  bool empty() const noexcept { return first == last; }
  std::size_t bytes() const noexcept { return last - first; }
};

class unit_snapshots {
 public:
  unit_snapshots(std::size_t units, std::size_t unit_bytes)
      : unit_bytes_(unit_bytes), taken_(units, 0), copies_(new std::byte[units * unit_bytes]) {}  // not zeroed: untouched pages stay unmapped

  // The bytes of `unit` (n of them, at `now`) that differ from its
  // snapshot, which then holds `now`; all n when none was taken.
  byte_range update(std::size_t unit, const std::byte* now, std::size_t n) {
    std::byte* snapshot = copies_.get() + unit * unit_bytes_;
    byte_range changed{0, n};
    if (taken_[unit]) changed = differing(snapshot, now, n);
    if (!changed.empty()) std::memcpy(snapshot + changed.first, now + changed.first, changed.bytes());
    taken_[unit] = 1;
    return changed;
  }

  // From the first byte that differs to one past the last one.
  static byte_range differing(const std::byte* a, const std::byte* b, std::size_t n) {
    constexpr std::size_t step = 64;  // memcmp finds the block, a byte loop the byte
    std::size_t first = 0;
    while (first + step <= n && std::memcmp(a + first, b + first, step) == 0) first += step;
    while (first < n && a[first] == b[first]) ++first;
    if (first == n) return {n, n};
    std::size_t last = n;
    while (last - first >= step && std::memcmp(a + last - step, b + last - step, step) == 0) last -= step;
    while (a[last - 1] == b[last - 1]) --last;
    return {first, last};
  }

 private:
  std::size_t unit_bytes_;
  std::vector<std::uint8_t> taken_;
  std::unique_ptr<std::byte[]> copies_;
};

}  // namespace dsm::coherence

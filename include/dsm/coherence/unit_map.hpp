// Coherence units: the blocks a caching policy fetches, tracks and
// invalidates as one. A unit is a run of consecutive *local* indices of one
// owner, so that it is contiguous at its home and a miss is one transfer,
// whatever the distribution (cyclic layouts scatter consecutive global
// indices over ranks). Unit u belongs to rank u / units_per_rank and covers
// local indices [(u % units_per_rank) * elements_per_unit, ...).
//
// A unit holds the largest power of two of elements that fits in the
// requested unit size (at least one element), so locating one is a shift.
#pragma once

#include <dsm/detail/divisor.hpp>
#include <dsm/distribution.hpp>
#include <dsm/error.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <string_view>
#include <vector>

namespace dsm {

// The coherence unit of a caching array, in bytes: a power of two from 64 B
// (one cache line on most CPUs) to 64 KiB. Small units move less data per
// miss and suffer less false sharing; large ones need fewer misses for
// sweeps. The default, 1 KiB, is 16 cache lines: a sweep costs one miss per
// 16 lines, a scattered read moves 1 KiB rather than a 4 KiB page.
struct unit_size {
  static constexpr std::size_t min_bytes = 64, max_bytes = 64 * 1024, default_bytes = 1024;
  std::size_t bytes = default_bytes;
};

namespace coherence {

class unit_map {
 public:
  unit_map(const dsm::distribution& d, std::size_t element_bytes, unit_size requested, std::string_view object)
      : element_bytes_(element_bytes),
        elements_(d.size()),
        elements_per_unit_(checked_elements_per_unit(element_bytes, requested, object)) {
    shift_ = static_cast<unsigned>(std::countr_zero(elements_per_unit_));
    ranks_ = d.ranks();
    max_local_ = d.max_local_size();
    slot_elements_ = whole_units(max_local_, elements_per_unit_);
    units_per_rank_ = slot_elements_ >> shift_;
    local_sizes_.resize(ranks_);
    for (std::size_t r = 0; r < ranks_; ++r) local_sizes_[r] = d.local_size(r);
    by_block_ = dsm::detail::divisor(d.block_size());
    by_ranks_ = dsm::detail::divisor(ranks_);
    block_step_ = slot_elements_ - d.block_size();  // both wrap: see place_of
    round_step_ = ranks_ * slot_elements_ - d.block_size();
    const bool tiled = d.layout() == dsm::distribution::kind::block && d.block_size() == max_local_ &&
                       max_local_ == slot_elements_;
    tiled_elements_ = tiled ? d.size() : 0;
  }

  // Elements per unit: the largest power of two whose bytes fit in the
  // requested unit, at least one; throws on a unit size out of range.
  static std::size_t checked_elements_per_unit(std::size_t element_bytes, unit_size requested, std::string_view object) {
    if (!std::has_single_bit(requested.bytes) || requested.bytes < unit_size::min_bytes ||
        requested.bytes > unit_size::max_bytes)
      throw error(errc::invalid_argument,
                  fmt::format("{}: unit size {} B: expected a power of two from {} B to {} B", object, requested.bytes,
                              unit_size::min_bytes, unit_size::max_bytes));
    return std::bit_floor(std::max<std::size_t>(1, requested.bytes / element_bytes));
  }
  // Each rank's slot in the mirror, in elements: its largest block rounded
  // up to whole units, so that a unit is slot index >> shift whatever the
  // layout (what mirror_space reserves per rank).
  static std::size_t slot_elements_of(const dsm::distribution& d, std::size_t element_bytes, unit_size requested,
                                      std::string_view object) {
    return whole_units(d.max_local_size(), checked_elements_per_unit(element_bytes, requested, object));
  }
  // `elements` rounded up to a multiple of `per_unit`: the one formula for
  // the slot, here and in the map.
  static std::size_t whole_units(std::size_t elements, std::size_t per_unit) noexcept {
    return (elements + per_unit - 1) / per_unit * per_unit;
  }

  // A block layout whose units tile every block: global index i is in unit
  // i >> shift and at element i of the ranks x slot_elements mirror, so
  // the hit path needs no division.
  bool tiled() const noexcept { return tiled_elements_ != 0; }
  // The array's size if tiled, else 0: `i < tiled_elements()` is the bounds
  // check and the tiled test of an element access in one compare.
  std::size_t tiled_elements() const noexcept { return tiled_elements_; }
  std::size_t elements() const noexcept { return elements_; }
  unsigned shift() const noexcept { return shift_; }

  std::size_t element_bytes() const noexcept { return element_bytes_; }
  std::size_t elements_per_unit() const noexcept { return elements_per_unit_; }
  std::size_t unit_bytes() const noexcept { return elements_per_unit_ * element_bytes_; }
  std::size_t units_per_rank() const noexcept { return units_per_rank_; }
  std::size_t units() const noexcept { return units_per_rank_ * ranks_; }
  std::size_t ranks() const noexcept { return ranks_; }
  std::size_t max_local_size() const noexcept { return max_local_; }
  std::size_t slot_elements() const noexcept { return slot_elements_; }

  std::size_t unit_of(std::size_t owner, std::size_t local) const noexcept {
    return owner * units_per_rank_ + (local >> shift_);
  }
  // Global index i's unit, and its place in the ranks x slot_elements
  // mirror (in elements): the hit path of layouts that are not tiled. Slots
  // hold whole units, so the unit is the place shifted. From members of
  // this map alone, so that the hit path reads one object, not a chain of
  // references.
  struct element_place {
    std::size_t unit;
    std::size_t slot;
  };
  // With blk = i / block and round = blk / ranks, element i is local index
  // round * block + (i - blk * block) of rank blk - round * ranks, so its
  // place owner * slot + local folds to i + blk * (slot - block) - round *
  // (ranks * slot - block): two multiplies for the divisions and two for
  // the place, one formula for every layout (a block layout's round is 0, a
  // cyclic one's blk is i). Unsigned arithmetic wraps back into range.
  [[gnu::always_inline]] element_place place_of(std::size_t i) const noexcept {
    const std::size_t blk = by_block_.quotient(i), round = by_ranks_.quotient(blk);
    const std::size_t place = i + blk * block_step_ - round * round_step_;
    return {place >> shift_, place};
  }
  std::size_t home_of(std::size_t unit) const noexcept { return unit / units_per_rank_; }
  // First local index of the unit at its home.
  std::size_t first_local(std::size_t unit) const noexcept { return (unit % units_per_rank_) << shift_; }
  // Elements the unit really holds: the last unit of a rank may be short,
  // and ranks with fewer elements than the largest have empty units.
  std::size_t elements_in(std::size_t unit) const noexcept {
    const std::size_t size = local_sizes_[home_of(unit)], first = first_local(unit);
    return first >= size ? 0 : std::min(elements_per_unit_, size - first);
  }
  std::size_t bytes_in(std::size_t unit) const noexcept { return elements_in(unit) * element_bytes_; }
  // The units holding global indices [first, first + count), each once, in
  // ascending order.
  std::vector<std::size_t> units_covering(const dsm::distribution& d, std::size_t first, std::size_t count) const {
    std::vector<std::size_t> units;
    d.for_each_run(first, count, [&](const dsm::distribution::run& r) {
      const std::size_t last = unit_of(r.owner, r.local_first + r.count - 1);
      for (std::size_t u = unit_of(r.owner, r.local_first); u <= last; ++u) units.push_back(u);
    });
    std::sort(units.begin(), units.end());
    units.erase(std::unique(units.begin(), units.end()), units.end());
    return units;
  }

 private:
  std::size_t element_bytes_;
  std::size_t elements_;
  std::size_t elements_per_unit_;
  unsigned shift_ = 0;
  std::size_t ranks_ = 1, max_local_ = 0, units_per_rank_ = 0, slot_elements_ = 0;
  std::size_t tiled_elements_ = 0;
  dsm::detail::divisor by_block_, by_ranks_;  // place_of's
  std::size_t block_step_ = 0, round_step_ = 0;
  std::vector<std::size_t> local_sizes_;
};

}  // namespace coherence
}  // namespace dsm

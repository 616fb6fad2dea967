// A rank's contributions to a reduction array that its homes have not yet
// combined: one space laid out like the mirror (element i at the place
// mirror_space gives it, so the hit path's address formula serves both),
// as long as every rank's slot together, in registered memory the homes
// read with one-sided gets (its pages appear only for the units this rank
// contributes to). A unit's contribution starts at the operator's identity
// with its first contribution of the interval; the units contributed to
// are listed for the barrier, which has the homes fetch them and clears
// the list. Their pages stay for the next interval: refilling a unit costs
// less than faulting its pages in again.
#pragma once

#include <dsm/coherence/unit_map.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace dsm::coherence {

class contributions {
 public:
  // `space`: this rank's registered memory of units() x unit_bytes() bytes.
  contributions(const unit_map& units, std::byte* space) : units_(units), base_(space), started_(units.units(), 0) {}
  contributions(const contributions&) = delete;
  contributions& operator=(const contributions&) = delete;

  // The bytes a space needs.
  static std::size_t bytes_for(const unit_map& units) { return units.units() * units.unit_bytes(); }

  // Slot 0's address: element i of a unit_map place p is at base() + p elements.
  std::uintptr_t base() const noexcept { return reinterpret_cast<std::uintptr_t>(base_); }
  std::byte* unit_data(std::size_t unit) const noexcept {
    return base_ + (unit << units_.shift()) * units_.element_bytes();
  }

  bool started(std::size_t unit) const noexcept { return started_[unit] != 0; }
  // The unit's first contribution of the interval: every element `identity`.
  template <class T>
  void start(std::size_t unit, const T& identity) {
    T* first = reinterpret_cast<T*>(unit_data(unit));
    std::fill(first, first + units_.bytes_in(unit) / sizeof(T), identity);
    started_[unit] = 1;
    listed_.push_back(unit);
  }
  // The units contributed to since the last clear(), ascending.
  std::span<const std::size_t> units() {
    std::sort(listed_.begin(), listed_.end());
    return listed_;
  }
  void clear() noexcept {
    for (std::size_t u : listed_) started_[u] = 0;
    listed_.clear();
  }

 private:
  const unit_map& units_;
  std::byte* base_;
  std::vector<std::uint8_t> started_;  // per unit
  std::vector<std::size_t> listed_;
};

}  // namespace dsm::coherence

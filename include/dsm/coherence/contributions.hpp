// A rank's contributions to a reduction array that its homes have not yet
// combined: one space laid out like the mirror (element i at the place
// mirror_space gives it, so the hit path's address formula serves both),
// reserved for every rank's slot, whose pages appear only for the units
// this rank contributes to. A unit's contribution starts at the operator's
// identity with its first contribution of the interval; the units
// contributed to are listed for the barrier, which sends them home and
// clears the list. Their pages stay for the next interval: refilling a
// unit costs less than faulting its pages in again.
#pragma once

#include <dsm/coherence/unit_map.hpp>
#include <dsm/error.hpp>

#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace dsm::coherence {

class contributions {
 public:
  contributions(const unit_map& units, std::string_view object) : units_(units), started_(units.units(), 0) {
    bytes_ = std::max<std::size_t>(1, units.units() * units.unit_bytes());
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      throw error(errc::invalid_argument, fmt::format("{}: reserving {} B of address space for contributions failed: {}",
                                                      object, bytes_, std::strerror(errno)));
    base_ = static_cast<std::byte*>(p);
  }
  contributions(const contributions&) = delete;
  contributions& operator=(const contributions&) = delete;
  ~contributions() { ::munmap(base_, bytes_); }

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
  // The units contributed to since the last clear(), in the order first
  // contributed.
  std::span<const std::size_t> units() const noexcept { return listed_; }
  void clear() noexcept {
    for (std::size_t u : listed_) started_[u] = 0;
    listed_.clear();
  }

 private:
  const unit_map& units_;
  std::byte* base_ = nullptr;
  std::size_t bytes_ = 0;
  std::vector<std::uint8_t> started_;  // per unit
  std::vector<std::size_t> listed_;
};

}  // namespace dsm::coherence

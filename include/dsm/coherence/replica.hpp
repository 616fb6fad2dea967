// One rank's view of a caching array: its own block (the home of its
// units) plus a mirror of every other rank's block, reserved as address
// space only (pages appear when a unit is first fetched), and one state
// byte per unit. The hit path is `state(u) >= shared ? *address : miss`.
//
// State bytes are written by the program's thread and, for the eager
// transitions a protocol allows (losing ownership), by the thread that runs
// message handlers; both go through atomic_ref so the hit path stays a
// plain byte load.
#pragma once

#include <dsm/coherence/unit_map.hpp>
#include <dsm/error.hpp>

#include <fmt/format.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace dsm::coherence {

enum unit_state : std::uint8_t {
  invalid = 0,
  fetching = 1,   // a read copy on its way (a get; no message answers it)
  pending = 2,    // requested from the home; the grant's handler sets the granted state
  shared = 3,     // readable copy
  exclusive = 4,  // writable: owned (single_writer) or twinned (write_shared)
};

class replica {
 public:
  replica(const unit_map& units, std::byte* own_block, std::size_t me, std::string_view object)
      : units_(units), own_block_(own_block), me_(me), states_(units.units()) {
    mirror_bytes_ = units.ranks() * units.max_local_size() * units.element_bytes();
    if (mirror_bytes_ != 0) {
      void* p = ::mmap(nullptr, mirror_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED)
        throw error(errc::invalid_argument, fmt::format("{}: reserving a {} B mirror failed: {}", object, mirror_bytes_,
                                                        std::strerror(errno)));
      mirror_ = static_cast<std::byte*>(p);
    }
    units_per_rank_ = units.units_per_rank();
    own_first_unit_ = me * units_per_rank_;
    mirror_base_ = reinterpret_cast<std::uintptr_t>(mirror_);
    own_rebased_ = reinterpret_cast<std::uintptr_t>(own_block_) - me * units.max_local_size() * units.element_bytes();
  }
  replica(const replica&) = delete;
  replica& operator=(const replica&) = delete;
  ~replica() {
    if (mirror_ != nullptr) ::munmap(mirror_, mirror_bytes_);
  }

  bool is_home(std::size_t unit) const noexcept { return units_.home_of(unit) == me_; }

  // The copy of element `local` of rank `owner` this rank reads and writes:
  // its own block for its own elements, the mirror for everyone else's.
  std::byte* element(std::size_t owner, std::size_t local) const noexcept {
    const std::size_t eb = units_.element_bytes();
    return owner == me_ ? own_block_ + local * eb : mirror_ + (owner * units_.max_local_size() + local) * eb;
  }
  std::byte* unit_data(std::size_t unit) const noexcept {
    return element(units_.home_of(unit), units_.first_local(unit));
  }
  // Tiled layouts (unit_map::tiled): the address of global element 0 in
  // whichever storage holds `unit` (this rank's block, rebased, or the
  // mirror); element i is at that plus i elements. A select, no division.
  std::uintptr_t tiled_base(std::size_t unit) const noexcept {
    return unit - own_first_unit_ < units_per_rank_ ? own_rebased_ : mirror_base_;
  }

  std::uint8_t state(std::size_t unit) const noexcept {
    return std::atomic_ref<std::uint8_t>(states_[unit]).load(std::memory_order_relaxed);
  }
  // The granted state is published with release order so a waiter that sees
  // it (acquire) sees the data the handler copied in before.
  std::uint8_t state_acquire(std::size_t unit) const noexcept {
    return std::atomic_ref<std::uint8_t>(states_[unit]).load(std::memory_order_acquire);
  }
  void set_state(std::size_t unit, std::uint8_t s) noexcept {
    std::atomic_ref<std::uint8_t>(states_[unit]).store(s, std::memory_order_release);
  }
  // Every unit homed here to `own`, every other to invalid (a barrier's
  // fresh start).
  void reset(std::uint8_t own) noexcept {
    const std::size_t per = units_.units_per_rank();
    std::memset(states_.data(), invalid, states_.size());
    std::memset(states_.data() + me_ * per, own, per);
  }

 private:
  const unit_map& units_;
  std::byte* own_block_;
  std::size_t me_;
  mutable std::vector<std::uint8_t> states_;
  std::byte* mirror_ = nullptr;
  std::size_t mirror_bytes_ = 0;
  std::size_t units_per_rank_ = 0, own_first_unit_ = 0;
  std::uintptr_t mirror_base_ = 0, own_rebased_ = 0;  // unsigned: wraps, never dereferenced as such
};

// Where global element i is: its unit, and this rank's copy of it (the
// home's memory for its own elements). Tiled layouts shift and select;
// others divide (distribution::locate). The hit path of every caching
// policy; a free function, so that callers pass their own unit_map and
// replica, one indirection fewer.
template <class T>
struct copy_place {
  std::size_t unit;
  T* element;
};
template <class T>
copy_place<T> locate_copy(const unit_map& units, const replica& copies, const dsm::distribution& d,
                          std::size_t i) noexcept {
  if (units.tiled()) [[likely]] {
    const std::size_t u = i >> units.shift();
    return {u, reinterpret_cast<T*>(copies.tiled_base(u) + i * sizeof(T))};
  }
  const auto [owner, local] = d.locate(i);
  return {units.unit_of(owner, local), reinterpret_cast<T*>(copies.element(owner, local))};
}

}  // namespace dsm::coherence

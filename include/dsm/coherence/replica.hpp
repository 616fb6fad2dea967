// One rank's view of a caching array: its own block (the home of its
// units) and a mirror of every other rank's block, laid out as one address
// space (mirror_space.hpp), and one state byte per unit. The hit path is
// `state(u) >= shared ? *address : miss`.
//
// State bytes are written by the program's thread and, for the eager
// transitions a protocol allows (losing ownership), by the thread that runs
// message handlers; both go through atomic_ref so the hit path stays a
// plain byte load.
#pragma once

#include <dsm/coherence/mirror_space.hpp>
#include <dsm/config.hpp>
#include <dsm/coherence/unit_map.hpp>
#include <dsm/distribution.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <vector>

namespace dsm::coherence {

enum unit_state : std::uint8_t {
  invalid = 0,
  fetching = 1,   // a read copy on its way (a get; no message answers it)
  pending = 2,    // requested from the home; the grant's handler sets the granted state
  shared = 3,     // readable copy
  exclusive = 4,  // writable: owned (single_writer) or twinned (write_shared)
  updated = 5,    // readable copy its home updated at the last barrier, not read since (producer_consumer)
};

// Told of every state change of a replica that has one (a global_region:
// its page protections follow the states). Called with the state already
// stored, under the watcher's own lock, so that two threads changing one
// unit leave protection and state in the same order.
class state_watcher {
 public:
  // Unit `unit` went from `before` to `now`.
  virtual void state_changed(std::size_t unit, std::uint8_t before, std::uint8_t now) noexcept = 0;
  // Every state was set anew (reset()).
  virtual void states_reset() noexcept = 0;

 protected:
  ~state_watcher() = default;
};

class replica {
 public:
  // `mirror` holds every rank's slot, this rank's block in its own.
  replica(const unit_map& units, const mirror_space& mirror, std::size_t me)
      : units_(units), me_(me), states_(units.units()), base_(mirror.base()) {}
  replica(const replica&) = delete;
  replica& operator=(const replica&) = delete;

  bool is_home(std::size_t unit) const noexcept { return units_.home_of(unit) == me_; }

  // The copy of element `local` of rank `owner` this rank reads and writes:
  // its own block for its own elements, the mirror for everyone else's;
  // one address formula for both (mirror_space.hpp).
  std::byte* element(std::size_t owner, std::size_t local) const noexcept {
    return reinterpret_cast<std::byte*>(base_ + (owner * units_.slot_elements() + local) * units_.element_bytes());
  }
  // Slots hold whole units: unit u starts u units into the mirror.
  std::byte* unit_data(std::size_t unit) const noexcept {
    return reinterpret_cast<std::byte*>(base_ + (unit << units_.shift()) * units_.element_bytes());
  }
  // Tiled layouts (unit_map::tiled): global element i is at base() plus i
  // elements.
  std::uintptr_t base() const noexcept { return base_; }

  std::uint8_t state(std::size_t unit) const noexcept {
    return std::atomic_ref<std::uint8_t>(states_[unit]).load(std::memory_order_relaxed);
  }
  // The granted state is published with release order so a waiter that sees
  // it (acquire) sees the data the handler copied in before.
  std::uint8_t state_acquire(std::size_t unit) const noexcept {
    return std::atomic_ref<std::uint8_t>(states_[unit]).load(std::memory_order_acquire);
  }
  void set_state(std::size_t unit, std::uint8_t s) noexcept {
    if (watcher_ != nullptr) [[unlikely]] {
      const std::uint8_t before = std::atomic_ref<std::uint8_t>(states_[unit]).exchange(s, std::memory_order_acq_rel);
      if (before != s) watcher_->state_changed(unit, before, s);
      return;
    }
    std::atomic_ref<std::uint8_t>(states_[unit]).store(s, std::memory_order_release);
  }
  // Every unit homed here to `own`, every other to invalid (a barrier's
  // fresh start).
  void reset(std::uint8_t own) noexcept {
    const std::size_t per = units_.units_per_rank();
    std::memset(states_.data(), invalid, states_.size());
    std::memset(states_.data() + me_ * per, own, per);
    if (watcher_ != nullptr) watcher_->states_reset();
  }
  // From now on `w` hears of every change (null: nobody). The caller holds
  // whatever lock the replica's other writers hold (the worker's).
  void watch(state_watcher* w) noexcept { watcher_ = w; }
  std::size_t units() const noexcept { return states_.size(); }

 private:
  const unit_map& units_;
  std::size_t me_;
  mutable std::vector<std::uint8_t> states_;
  std::uintptr_t base_;
  state_watcher* watcher_ = nullptr;  // mirror_space::base(): slot 0
};

// Where global element i is: its unit, and this rank's copy of it (the
// home's memory for its own elements), or its place in any other space
// laid out like the mirror (given by its slot 0's address). Tiled layouts shift; others divide
// by multiplying (unit_map::place_of). The hit path of every caching
// policy; a free function, so that callers pass their own unit_map and
// replica, one indirection fewer.
// How a miss path takes the value being written: small values in
// registers, so that the hit path around the call never stores them to the
// stack first.
template <class T>
using by_value_if_small = std::conditional_t<(sizeof(T) <= 16), T, const T&>;

template <class T>
struct copy_place {
  std::size_t unit;
  T* element;
};
// Always inlined: GCC otherwise calls it from a kernel's loop, and the call
// costs more than the arithmetic it does.
template <class T>
[[gnu::always_inline]] inline copy_place<T> locate_copy(const unit_map& units, std::uintptr_t base,
                                                        std::size_t i) noexcept {
  if (units.tiled()) [[likely]] {
    const std::size_t u = i >> units.shift();
    return {u, reinterpret_cast<T*>(base + i * sizeof(T))};
  }
  const auto [unit, slot] = units.place_of(i);
  return {unit, reinterpret_cast<T*>(base + slot * sizeof(T))};
}
template <class T>
[[gnu::always_inline]] inline copy_place<T> locate_copy(const unit_map& units, const replica& copies,
                                                        std::size_t i) noexcept {
  return locate_copy<T>(units, copies.base(), i);
}

// The same for an index nobody has checked yet (operator[]'s element
// access): on a tiled layout one compare is both the bounds check and the
// tiled test; other layouts check against the size before dividing. On a
// bad index it calls `out_of_range(i)`, which throws: a cold member of the
// caller, so that the loop carries no argument of the message.
[[noreturn, gnu::cold, gnu::noinline]] inline void throw_index_out_of_range(std::string_view object, std::size_t i,
                                                                            std::size_t size) {
  throw error(errc::out_of_range, fmt::format("{}: element index {} out of range (size {})", object, i, size));
}
template <class T, class OutOfRange>
[[gnu::always_inline]] inline copy_place<T> locate_checked(const unit_map& units, std::uintptr_t base, std::size_t i,
                                                           OutOfRange&& out_of_range) {
  // No [[likely]] on the tiled test: it would move the other layouts' path
  // out of line, behind two more taken jumps per element (measured: 3.2x a
  // local load for block_cyclic instead of 2.7x; block unchanged).
  if (i < units.tiled_elements()) return {i >> units.shift(), reinterpret_cast<T*>(base + i * sizeof(T))};
  if (i >= units.elements()) [[unlikely]]
    out_of_range(i);
  const auto [unit, slot] = units.place_of(i);
  return {unit, reinterpret_cast<T*>(base + slot * sizeof(T))};
}
template <class T, class OutOfRange>
[[gnu::always_inline]] inline copy_place<T> locate_checked(const unit_map& units, const replica& copies, std::size_t i,
                                                           OutOfRange&& out_of_range) {
  return locate_checked<T>(units, copies.base(), i, out_of_range);
}

// The read hit of every policy whose readable copies are in state
// `shared` (read_only, reduction, producer_consumer): the element, or
// `miss(unit, element)`; `hits` counts only in a DSM_COUNT_HITS build
// with stats on.
template <class T, class OutOfRange, class Miss>
[[gnu::always_inline]] inline T read_shared(const unit_map& units, const replica& copies, std::size_t i,
                                            OutOfRange&& out_of_range, Miss&& miss, bool count_hits,
                                            std::uint64_t& hits) {
  const auto p = locate_checked<const T>(units, copies, i, out_of_range);
  if (copies.state(p.unit) == shared) [[likely]] {
    if constexpr (DSM_COUNT_HITS != 0)
      if (count_hits) ++hits;
    return *p.element;
  }
  (void)count_hits, (void)hits;
  return miss(p.unit, p.element);
}

// Elements [first, first + count) of the copies into out: one copy per
// owner's run (bulk reads of every caching policy, every unit readable).
template <class T>
void copy_out(const dsm::distribution& d, const replica& copies, std::size_t first, std::size_t count, T* out) {
  d.for_each_run(first, count, [&](const dsm::distribution::run& r) {
    std::memcpy(out + (r.first - first), copies.element(r.owner, r.local_first), r.count * sizeof(T));
  });
}

}  // namespace dsm::coherence

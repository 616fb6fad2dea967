// A global region's page protections, kept equal to its coherence states:
// a unit the state says is missing cannot be touched, a readable copy
// only read, a unit this rank may write (owned, or twinned) written. The
// program's loads and stores then fault exactly where the array path would
// miss. Every change is applied before the state change returns: a unit
// given up (a recall) is unwritable before its changes are copied out.
#pragma once

#include <dsm/coherence/replica.hpp>
#include <dsm/coherence/unit_map.hpp>
#include <dsm/detail/region_mapping.hpp>

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <mutex>

namespace dsm::coherence {

class page_protection final : public state_watcher {
 public:
  // Engine unit u (rank u / per_rank's local unit u % per_rank) is at
  // program-view offset u * unit_bytes in block homing, at
  // ((u % per_rank) * ranks + u / per_rank) * unit_bytes in cyclic homing.
  page_protection(const replica& copies, const dsm::detail::region_mapping& mapping, std::size_t unit_bytes,
                  std::size_t ranks, std::size_t per_rank, bool cyclic)
      : copies_(copies), mapping_(mapping), unit_bytes_(unit_bytes), ranks_(ranks), per_rank_(per_rank),
        cyclic_(cyclic) {}

  std::size_t view_offset(std::size_t unit) const noexcept {
    return (cyclic_ ? (unit % per_rank_) * ranks_ + unit / per_rank_ : unit) * unit_bytes_;
  }
  std::size_t unit_at(std::size_t view_offset) const noexcept {
    const std::size_t g = view_offset / unit_bytes_;
    return cyclic_ ? (g % ranks_) * per_rank_ + g / ranks_ : g;
  }
  std::size_t unit_bytes() const noexcept { return unit_bytes_; }

  static int protection_of(std::uint8_t state) noexcept {
    if (state == exclusive) return PROT_READ | PROT_WRITE;
    if (state == shared || state == updated) return PROT_READ;
    return PROT_NONE;
  }

  // read_only before publication: this rank's own units are written in
  // place, so they are writable whatever their state says.
  void set_home_writable(bool writable) noexcept {
    const std::lock_guard g{mutex_};
    home_writable_ = writable;
    apply_all();
  }

  void state_changed(std::size_t unit, std::uint8_t, std::uint8_t) noexcept override {
    const std::lock_guard g{mutex_};
    apply(unit);  // the state now, not the one this call was made for: a later change may have overtaken it
  }
  void states_reset() noexcept override {
    const std::lock_guard g{mutex_};
    apply_all();
  }
  // A fault at a unit whose state allows the access: its protection is
  // set again (never needed while the watcher sees every change; a guard
  // against retrying one fault for ever).
  void refresh(std::size_t unit) noexcept {
    const std::lock_guard g{mutex_};
    apply(unit);
  }

 private:
  int wanted(std::size_t unit) const noexcept {
    if (home_writable_ && copies_.is_home(unit)) return PROT_READ | PROT_WRITE;
    return protection_of(copies_.state(unit));
  }
  void apply(std::size_t unit) const noexcept { mapping_.protect(view_offset(unit), unit_bytes_, wanted(unit)); }
  // Runs of units with one protection, adjacent in the view, in one call.
  void apply_all() const noexcept {
    const std::size_t n = copies_.units();
    std::size_t g = 0;
    while (g < n) {
      const int prot = wanted(unit_at(g * unit_bytes_));
      std::size_t end = g + 1;
      while (end < n && wanted(unit_at(end * unit_bytes_)) == prot) ++end;
      mapping_.protect(g * unit_bytes_, (end - g) * unit_bytes_, prot);
      g = end;
    }
  }

  const replica& copies_;
  const dsm::detail::region_mapping& mapping_;
  std::size_t unit_bytes_, ranks_, per_rank_;
  bool cyclic_;
  bool home_writable_ = false;
  std::mutex mutex_;
};

}  // namespace dsm::coherence

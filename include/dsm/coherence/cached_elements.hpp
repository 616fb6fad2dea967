// Typed element access over a caching policy's copies: where element i is
// (its unit, and the address of this rank's copy), the read hit path, and
// bulk reads that request every missing unit at once. Shared by
// single_writer and write_shared; their write paths differ.
#pragma once

#include <dsm/coherence/advice.hpp>
#include <dsm/coherence/array_layout.hpp>
#include <dsm/config.hpp>
#include <dsm/coherence/engine.hpp>
#include <dsm/coherence/unit_map.hpp>
#include <dsm/runtime/runtime.hpp>

#include <cstddef>
#include <type_traits>
#include <vector>

namespace dsm::coherence {

template <class T>
class cached_elements {
 public:
  cached_elements(const array_layout<T>& layout, protocol p)
      : layout_(layout),
        units_(layout.distribution, sizeof(T), layout.unit, layout.description),
        engine_(p, layout.team.state(), layout.object_id, layout.distribution, units_, *layout.mirror, layout.byte_blocks(),
                layout.description),
        count_hits_(dsm::detail::rt().config().stats) {}

  using place = copy_place<T>;
  [[gnu::always_inline]] place locate(std::size_t i) const noexcept {
    return locate_copy<T>(units_, engine_.copies(), i);
  }
  // For an index operator[] passed on unchecked (policy checks_indices).
  [[gnu::always_inline]] place locate_checked(std::size_t i) const {
    return coherence::locate_checked<T>(units_, engine_.copies(), i, [this](std::size_t bad) { out_of_range(bad); });
  }
  [[noreturn, gnu::cold, gnu::noinline]] void out_of_range(std::size_t i) const {
    throw_index_out_of_range(layout_.description, i, units_.elements());
  }

  // The hit is the state byte and the load, small enough to inline into
  // the caller's loop; the miss is out of line.
  [[gnu::always_inline]] T read(std::size_t i) {
    const place p = locate_checked(i);
    if (engine_.copies().state(p.unit) >= shared) [[likely]] {
      hit();
      return *p.element;
    }
    return read_miss(p);
  }
  [[gnu::noinline]] T read_miss(place p) {  // by value: the hit path keeps it in registers
    engine_.fetch(p.unit);
    return *p.element;
  }

  void get(std::size_t first, std::size_t count, T* out) {
    const auto wanted = units_.units_covering(layout_.distribution, first, count);
    engine_.fetch(wanted);
    copy_out(layout_.distribution, engine_.copies(), first, count, out);
  }

  // The copy of [first, first + count), one owner's consecutive elements
  // (checked by the caller) whose units are `covering`, each made readable.
  T* span_of(std::size_t first, std::span<const std::size_t> covering) {
    engine_.fetch(covering);
    return locate(first).element;
  }
  T* span_of(std::size_t first, std::size_t count) {
    return span_of(first, units_.units_covering(layout_.distribution, first, count));
  }

  void prefetch(std::size_t first, std::size_t count) {
    engine_.prefetch(units_.units_covering(layout_.distribution, first, count));
  }
  void advise(std::size_t first, std::size_t count, advice a) {
    const auto wanted = units_.units_covering(layout_.distribution, first, count);
    if (a == advice::dontneed) engine_.drop(wanted);
    else engine_.prefetch(wanted);
  }

  void hit() noexcept {
    if constexpr (DSM_COUNT_HITS != 0)
      if (count_hits_) ++engine_.stats().hits;
  }
  engine& protocol_engine() noexcept { return engine_; }
  const engine& protocol_engine() const noexcept { return engine_; }
  const unit_map& units() const noexcept { return units_; }
  const array_layout<T>& layout() const noexcept { return layout_; }

 private:
  const array_layout<T>& layout_;
  unit_map units_;
  engine engine_;
  bool count_hits_;
};

}  // namespace dsm::coherence

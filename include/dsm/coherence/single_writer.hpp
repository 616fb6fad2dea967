// The single_writer policy: one writer at a time per unit, any number of
// readers. A read miss is one get of the unit from its home's memory (no
// message, no home CPU); the copy is valid until this rank's next acquire,
// which drops the copies of every home that counted a release since. A
// write needs the unit exclusively: the home recalls the current owner
// (eagerly: the owner stops writing at once and sends its changes) and
// hands unit and ownership to the writer. A release (unlock, barrier)
// sends every owned unit's changes home and waits until they are applied;
// ownership stays, so the next write is a hit again. The home's own first
// write to a unit after a release needs no message unless another rank
// owns it.
//
// Contract: correct for any program that synchronises its conflicting
// accesses; several ranks writing one unit in one interval (false sharing)
// stays correct but moves the unit at every write that changes hands.
#pragma once

#include <dsm/coherence/cached_elements.hpp>
#include <dsm/coherence/policy.hpp>

#include <cstddef>
#include <cstdint>

namespace dsm {

struct single_writer {
  static constexpr std::uint8_t id = 2;
  static constexpr const char* name = "single_writer";
  static constexpr bool keeps_copies = true;  // a mirror_space holds them
  static constexpr bool checks_indices = true;  // read and write: operator[] leaves it to them

  template <class T>
  class state {
   public:
    explicit state(const coherence::array_layout<T>& layout) : cache_(layout, coherence::protocol::single_writer) {}

    [[gnu::always_inline]] T read(std::size_t i) { return cache_.read(i); }

    [[gnu::always_inline]] void write(std::size_t i, const T& v) {
      const auto p = cache_.locate_checked(i);
      if (cache_.protocol_engine().copies().state(p.unit) == coherence::exclusive) [[likely]] {
        *p.element = v;
        if (still_exclusive(p.unit)) [[likely]] return cache_.hit();
      }
      write_miss(p, v);
    }

   private:
    // Out of line, so that the hit above inlines. Granted exclusively, the
    // unit stays until this rank confirms, so the store cannot be lost; the
    // recheck covers a unit that was already owned when the recall came.
    [[gnu::noinline]] void write_miss(typename coherence::cached_elements<T>::place p, coherence::by_value_if_small<T> v) {
      auto& e = cache_.protocol_engine();
      for (;;) {
        bool requested = false;
        if (e.copies().state(p.unit) != coherence::exclusive &&
            !(e.copies().is_home(p.unit) && e.claim_home_unit(p.unit))) {
          e.obtain_to_write(p.unit);
          requested = true;
        }
        *p.element = v;
        if (requested) return e.confirm_exclusive(p.unit);
        if (still_exclusive(p.unit)) return;
      }
    }

   public:
    void get(std::size_t first, std::size_t count, T* out) { cache_.get(first, count, out); }
    const T* read_span(std::size_t first, std::size_t count) { return cache_.span_of(first, count); }
    void prefetch(std::size_t first, std::size_t count) { cache_.prefetch(first, count); }
    void advise(std::size_t first, std::size_t count, advice a) { cache_.advise(first, count, a); }
    // Every unit not owned yet is requested at once; one taken away before
    // its elements are written is written through the element path.
    void put(std::size_t first, const T* in, std::size_t count) {
      auto& e = cache_.protocol_engine();
      e.obtain_exclusive(cache_.units().units_covering(cache_.layout().distribution, first, count));
      for (std::size_t k = 0; k < count; ++k) {
        const auto p = cache_.locate(first + k);
        if (e.copies().state(p.unit) != coherence::exclusive) {
          write(first + k, in[k]);
          continue;
        }
        *p.element = in[k];
        if (!still_exclusive(p.unit)) write(first + k, in[k]);
      }
    }
    void acquire() { cache_.protocol_engine().acquire(); }
    void release() { cache_.protocol_engine().release(); }
    void arrive() { cache_.protocol_engine().arrive(); }
    void barrier() { cache_.protocol_engine().start_interval(); }

    coherence::array_stats& stats() noexcept { return cache_.protocol_engine().stats(); }

    // With a progress thread, a recall may have taken the unit between the
    // state check and the store: see engine::on_recall for the pairing.
    bool still_exclusive(std::size_t unit) const { return cache_.protocol_engine().still_exclusive(unit); }
    // For objects built on this policy (migratory, global_region).
    coherence::cached_elements<T>& elements() noexcept { return cache_; }

   private:
    coherence::cached_elements<T> cache_;
  };
};

static_assert(coherence::policy<single_writer>);

}  // namespace dsm

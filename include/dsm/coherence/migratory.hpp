// The migratory policy (Munin's migratory objects): a unit is used by one
// rank at a time, read and then written, like a record updated under a
// lock. Ownership moves with the first access, read or write: a read miss
// takes the unit exclusively (single_writer's grant, with the data), so
// the write after it is a hit and a hand-off costs one transfer, where
// single_writer pays a get for the read and then an ownership request for
// the write. No read-only copies: a copy a recall leaves behind is never
// read (the hit is `state == exclusive`). Releases and acquires are
// single_writer's: the owner's changes go home at every release.
//
// Contract: as single_writer's (synchronise conflicting accesses); ranks
// reading one unit at the same time take it from each other in turn, so
// read-shared data belongs in another policy.
#pragma once

#include <dsm/coherence/single_writer.hpp>

#include <cstddef>
#include <cstdint>

namespace dsm {

struct migratory {
  static constexpr std::uint8_t id = 6;
  static constexpr const char* name = "migratory";
  static constexpr bool keeps_copies = true;    // a mirror_space holds them
  static constexpr bool checks_indices = true;  // read and write: operator[] leaves it to them

  template <class T>
  class state {
   public:
    explicit state(const coherence::array_layout<T>& layout) : owned_(layout) {}

    [[gnu::always_inline]] T read(std::size_t i) {
      const auto p = elements().locate_checked(i);
      if (engine().copies().state(p.unit) == coherence::exclusive) [[likely]] {
        const T v = *p.element;
        if (owned_.still_exclusive(p.unit)) [[likely]] {
          elements().hit();
          return v;
        }
      }
      return read_miss(p);
    }
    [[gnu::always_inline]] void write(std::size_t i, const T& v) { owned_.write(i, v); }

    // Bulk reads take every unit they cover, as element reads would.
    void get(std::size_t first, std::size_t count, T* out) {
      take(first, count);
      coherence::copy_out(elements().layout().distribution, engine().copies(), first, count, out);
    }
    const T* read_span(std::size_t first, std::size_t count) {
      take(first, count);
      return elements().locate(first).element;
    }
    void put(std::size_t first, const T* in, std::size_t count) { owned_.put(first, in, count); }
    // Fetching ahead means taking ownership ahead: the units are requested
    // together now (the call waits for them).
    void prefetch(std::size_t first, std::size_t count) { take(first, count); }
    void advise(std::size_t first, std::size_t count, advice a) {
      if (a == advice::willneed) take(first, count);
    }
    void acquire() { owned_.acquire(); }
    void release() { owned_.release(); }
    void arrive() { owned_.arrive(); }
    void barrier() { owned_.barrier(); }

    coherence::array_stats& stats() noexcept { return owned_.stats(); }

   private:
    coherence::cached_elements<T>& elements() noexcept { return owned_.elements(); }
    coherence::engine& engine() noexcept { return owned_.elements().protocol_engine(); }

    void take(std::size_t first, std::size_t count) {
      engine().obtain_exclusive(elements().units().units_covering(elements().layout().distribution, first, count));
    }

    // As single_writer's write miss, for a read: granted, the unit stays
    // until this rank confirms, so the value read is the granted one.
    [[gnu::noinline]] T read_miss(typename coherence::cached_elements<T>::place p) {
      auto& e = engine();
      for (;;) {
        bool requested = false;
        if (e.copies().state(p.unit) != coherence::exclusive &&
            !(e.copies().is_home(p.unit) && e.claim_home_unit(p.unit))) {
          e.obtain_to_write(p.unit);
          requested = true;
        }
        const T v = *p.element;
        if (requested) {
          e.confirm_exclusive(p.unit);
          return v;
        }
        if (owned_.still_exclusive(p.unit)) return v;
      }
    }

    single_writer::state<T> owned_;
  };
};

static_assert(coherence::policy<migratory>);

}  // namespace dsm

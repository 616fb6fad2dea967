// The write_shared policy (multi-writer, after Munin and TreadMarks):
// several ranks may write disjoint bytes of one unit in one interval. The
// first write to a copy keeps a twin of it; a release (unlock, barrier)
// sends home only the bytes that differ from the twin, the home applies
// them and checks them against the other writers' bytes that were not
// ordered before: two ranks writing one byte without synchronisation is a
// data race, reported with the array, index and ranks (an error with
// DSM_CHECK_RACES=1, else a warning and a count). Reads are one-sided
// gets of the home's memory; an acquire drops the copies of homes that
// counted a release since (see engine.hpp).
#pragma once

#include <dsm/coherence/cached_elements.hpp>
#include <dsm/coherence/policy.hpp>

#include <cstddef>
#include <cstdint>

namespace dsm {

struct write_shared {
  static constexpr std::uint8_t id = 3;
  static constexpr const char* name = "write_shared";
  static constexpr bool keeps_copies = true;  // a mirror_space holds them
  static constexpr bool checks_indices = true;  // read and write: operator[] leaves it to them

  template <class T>
  class state {
   public:
    explicit state(const coherence::array_layout<T>& layout) : cache_(layout, coherence::protocol::write_shared) {}

    [[gnu::always_inline]] T read(std::size_t i) { return cache_.read(i); }

    [[gnu::always_inline]] void write(std::size_t i, const T& v) {
      const auto p = cache_.locate_checked(i);
      if (cache_.protocol_engine().copies().state(p.unit) == coherence::exclusive) [[likely]] {
        *p.element = v;
        return cache_.hit();
      }
      first_write(p, v);
    }

   private:
    // Out of line: the hit above stays small enough to inline.
    [[gnu::noinline]] void first_write(typename coherence::cached_elements<T>::place p, coherence::by_value_if_small<T> v) {
      auto& e = cache_.protocol_engine();
      if (e.copies().state(p.unit) < coherence::shared) e.fetch(p.unit);  // missing, or still on its way
      e.make_twin(p.unit);
      *p.element = v;
    }

   public:
    void get(std::size_t first, std::size_t count, T* out) { cache_.get(first, count, out); }
    const T* read_span(std::size_t first, std::size_t count) { return cache_.span_of(first, count); }
    void prefetch(std::size_t first, std::size_t count) { cache_.prefetch(first, count); }
    void advise(std::size_t first, std::size_t count, advice a) { cache_.advise(first, count, a); }
    // Every unit twinned now, so whatever the span's writes change is sent
    // at the release.
    T* write_span(std::size_t first, std::size_t count) {
      const auto covering = cache_.units().units_covering(cache_.layout().distribution, first, count);
      T* data = cache_.span_of(first, covering);
      auto& e = cache_.protocol_engine();
      for (std::size_t u : covering)
        if (e.copies().state(u) != coherence::exclusive) e.make_twin(u);
      return data;
    }
    // Missing units are fetched together first (a twin needs the unit).
    void put(std::size_t first, const T* in, std::size_t count) {
      cache_.protocol_engine().fetch(cache_.units().units_covering(cache_.layout().distribution, first, count));
      for (std::size_t k = 0; k < count; ++k) write(first + k, in[k]);
    }
    void acquire() { cache_.protocol_engine().acquire(); }
    void release() { cache_.protocol_engine().release(); }
    void arrive() { cache_.protocol_engine().arrive(); }
    void barrier() { cache_.protocol_engine().start_interval(); }

    coherence::array_stats& stats() noexcept { return cache_.protocol_engine().stats(); }
    // For objects built on this policy (global_region).
    coherence::cached_elements<T>& elements() noexcept { return cache_; }

   private:
    coherence::cached_elements<T> cache_;
  };
};

static_assert(coherence::policy<write_shared>);

}  // namespace dsm

// The read_only policy: elements are written only between construction and
// the first barrier after it (through local(), element writes or put, which
// go straight to the homes). That barrier publishes the array: from then
// on a read miss copies the unit from its home once and the copy is never
// invalidated, so every later read of it is a local load. A write after
// publication is a dsm::error naming the array and index (writes through
// local() bypass the check: they are plain memory).
#pragma once

#include <dsm/coherence/advice.hpp>
#include <dsm/coherence/array_layout.hpp>
#include <dsm/coherence/array_stats.hpp>
#include <dsm/config.hpp>
#include <dsm/coherence/bulk.hpp>
#include <dsm/coherence/policy.hpp>
#include <dsm/coherence/replica.hpp>
#include <dsm/coherence/unit_fetcher.hpp>
#include <dsm/coherence/unit_map.hpp>
#include <dsm/error.hpp>
#include <dsm/rma.hpp>
#include <dsm/runtime/runtime.hpp>

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace dsm {

struct read_only {
  static constexpr std::uint8_t id = 4;
  static constexpr const char* name = "read_only";
  static constexpr bool keeps_copies = true;  // a mirror_space holds them
  static constexpr bool checks_indices = true;  // read and write: operator[] leaves it to them

  template <class T>
  class state {
   public:
    explicit state(const coherence::array_layout<T>& layout)
        : layout_(layout),
          units_(layout.distribution, sizeof(T), layout.unit, layout.description),
          me_(static_cast<std::size_t>(layout.team.rank())),
          copies_(units_, *layout.mirror, me_),
          count_hits_(detail::rt().config().stats),
          print_stats_(count_hits_) {
      copies_.reset(coherence::shared);
    }
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state() {
      if (print_stats_) stats_.print(stderr, static_cast<int>(detail::rt().rank()), layout_.description);
    }

    // The hit inlines; everything else is out of line.
    // Before publication only this rank's own units are valid (its memory):
    // the state alone decides, and a remote read misses to a direct get.
    [[gnu::always_inline]] T read(std::size_t i) {
      return coherence::read_shared<T>(
          units_, copies_, i, [this](std::size_t bad) { out_of_range(bad); },
          [this, i](std::size_t unit, const T* copy) { return read_miss(i, unit, copy); }, count_hits_, stats_.hits);
    }

    [[noreturn, gnu::cold, gnu::noinline]] void out_of_range(std::size_t i) const {
      coherence::throw_index_out_of_range(layout_.description, i, units_.elements());
    }

    [[gnu::noinline]] T read_miss(std::size_t i, std::size_t unit, const T* copy) {
      if (!published_) {  // still being written: no copies yet
        if (units_.home_of(unit) == me_) return *copy;
        T value;
        rget(layout_.pointer(i), 1, &value).wait();
        return value;
      }
      fetcher_.fetch(unit);
      return *copy;
    }

    void write(std::size_t i, const T& v) {
      if (i >= units_.elements()) out_of_range(i);
      check_unpublished(i, "write");
      rput(v, layout_.pointer(i)).wait();
    }

    void get(std::size_t first, std::size_t count, T* out) {
      if (!published_) return coherence::bulk_get(layout_, first, count, out);
      fetcher_.fetch(units_.units_covering(layout_.distribution, first, count));
      coherence::copy_out(layout_.distribution, copies_, first, count, out);
    }

    // After publication, the copies; before it, only this rank's own
    // elements (anything else is still being written).
    const T* read_span(std::size_t first, std::size_t count) {
      const auto [owner, local] = layout_.distribution.locate(first);
      if (!published_ && owner != me_)
        throw error(errc::invalid_argument,
                    fmt::format("{}: read_span of index {} (rank {}'s) before publication: read_only data is copied only "
                                "after the first barrier",
                                layout_.description, first, owner));
      if (published_) fetcher_.fetch(units_.units_covering(layout_.distribution, first, count));
      return reinterpret_cast<const T*>(copies_.element(owner, local));
    }

    void put(std::size_t first, const T* in, std::size_t count) {
      if (count != 0) check_unpublished(first, "put");
      coherence::bulk_put(layout_, first, in, count);
    }

    // Ahead of use; nothing before publication (the data is still being
    // written).
    void prefetch(std::size_t first, std::size_t count) {
      if (published_) fetcher_.prefetch(units_.units_covering(layout_.distribution, first, count));
    }
    void advise(std::size_t first, std::size_t count, advice a) {
      const auto wanted = units_.units_covering(layout_.distribution, first, count);
      if (a == advice::dontneed) return fetcher_.drop(wanted);
      if (published_) fetcher_.prefetch(wanted);
    }

    void acquire() {}
    void release() {}
    // Peers will read this rank's block directly: what its CPU wrote must
    // be in memory first (a no-op where DMA is coherent).
    void arrive() {
      if (!published_)
        coherence::maintenance{&stats_}.before_transfer_reads(
            copies_.element(me_, 0), layout_.distribution.local_size(me_) * sizeof(T));
    }
    void barrier() { published_ = true; }

    bool published() const noexcept { return published_; }
    const coherence::replica& copies() const noexcept { return copies_; }
    // Units, for objects built on this policy (global_region): a copy of
    // each (after publication), fetched now, ahead, or dropped.
    coherence::replica& copies() noexcept { return copies_; }
    void fetch_units(std::span<const std::size_t> wanted) { fetcher_.fetch(wanted); }
    void prefetch_units(std::span<const std::size_t> wanted) { fetcher_.prefetch(wanted); }
    void drop_units(std::span<const std::size_t> wanted) { fetcher_.drop(wanted); }
    const coherence::unit_map& units() const noexcept { return units_; }
    coherence::array_stats& stats() noexcept { return stats_; }

   private:
    void check_unpublished(std::size_t i, const char* operation) const {
      if (published_)
        throw error(errc::read_only_violation,
                    fmt::format("{}: {} to index {} after publication (read_only data is written only before the "
                                "first barrier after construction)",
                                layout_.description, operation, i));
    }

    const coherence::array_layout<T>& layout_;
    coherence::unit_map units_;
    std::size_t me_;
    coherence::replica copies_;
    bool published_ = false;
    bool count_hits_;
    bool print_stats_;
    coherence::array_stats stats_;
    coherence::unit_fetcher fetcher_{units_, copies_, layout_.byte_blocks(), stats_, layout_.description};
  };
};

static_assert(coherence::policy<read_only>);

}  // namespace dsm

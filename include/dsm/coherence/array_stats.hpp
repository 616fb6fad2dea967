// Per-array coherence counters (DSM_STATS=1 prints them when the array is
// destroyed). Counters a message handler updates are atomic; hits and
// misses belong to the program's thread.
#pragma once

#include <dsm/arch/cache.hpp>
#include <dsm/arch/dma.hpp>
#include <dsm/arch/isa.hpp>
#include <dsm/config.hpp>

#include <fmt/format.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace dsm::coherence {

}  // namespace dsm::coherence

namespace dsm {

// One array's coherence counters on this rank (a shared_array's stats();
// DSM_STATS=1 prints them when the array is destroyed). Hits are counted
// only in a build with -DDSM_COUNT_HITS=1 and DSM_STATS=1 set.
struct array_counters {
  std::uint64_t hits = 0, misses = 0;
  std::uint64_t copies_dropped = 0;  // read copies dropped at acquires and barriers (self-invalidation), and on advice
  std::uint64_t prefetched = 0;      // units fetched ahead: prefetch(), advice::willneed, readahead
  std::uint64_t twins = 0;
  std::uint64_t diffs = 0, diff_bytes = 0;
  std::uint64_t write_backs = 0, write_back_bytes = 0;  // single_writer: owned units' changes sent home at a release
  std::uint64_t contributions = 0, contribution_bytes = 0;  // reduction: units sent to their homes at a barrier
  std::uint64_t combines = 0;                               // reduction: units a home combined a contribution into
  std::uint64_t subscriptions = 0;                          // producer_consumer: units this rank started reading
  std::uint64_t updates = 0, update_bytes = 0;              // producer_consumer: units (and changed bytes) a home pushed
  std::uint64_t ownership_transfers = 0, races = 0;
  std::uint64_t bytes_cleaned = 0, bytes_invalidated = 0;   // cache maintenance (arm64, or forced on)
};

}  // namespace dsm

namespace dsm::coherence {

// The counters as the protocol keeps them: those a handler on the progress
// thread may bump are atomic, and stand in for the base's plain ones of the
// same names (snapshot() copies them over).
struct array_stats : array_counters {
  std::atomic<std::uint64_t> ownership_transfers{0};
  std::atomic<std::uint64_t> races{0};
  std::atomic<std::uint64_t> bytes_cleaned{0}, bytes_invalidated{0};

  array_counters snapshot() const {
    array_counters c = *this;
    c.ownership_transfers = ownership_transfers.load(), c.races = races.load();
    c.bytes_cleaned = bytes_cleaned.load(), c.bytes_invalidated = bytes_invalidated.load();
    return c;
  }

  void print(std::FILE* out, int rank, std::string_view array) const {
    const array_counters c = snapshot();
    fmt::print(out,
               "dsm stats rank {}: {}: hits {}, misses {}, prefetched {}, copies dropped {}, twins {}, "
               "diffs {} ({} B), ownership transfers {}, races {}, bytes cleaned {}, bytes invalidated {}, write-backs {} ({} B), "
               "contributions {} ({} B), combines {}, subscriptions {}, updates {} ({} B)\n",
               rank, array, DSM_COUNT_HITS != 0 ? fmt::to_string(c.hits) : std::string("-"), c.misses, c.prefetched,
               c.copies_dropped, c.twins, c.diffs, c.diff_bytes, c.ownership_transfers, c.races, c.bytes_cleaned,
               c.bytes_invalidated, c.write_backs, c.write_back_bytes, c.contributions, c.contribution_bytes, c.combines,
               c.subscriptions, c.updates, c.update_bytes);
  }
};

// Cache maintenance the protocol drives, counted where it happens. Without
// maintenance (coherent DMA) both are no-ops and count nothing.
struct maintenance {
  array_stats* stats;

  // Before a transfer reads [p, p + n) (a put, a message carrying it, or a
  // peer's get of memory the CPU wrote).
  void before_transfer_reads(const void* p, std::size_t n) const {
    if constexpr (arch::cache_maintenance_enabled) {
      if (n == 0) return;
      arch::sync_for_device(p, n, arch::dma_direction::to_device);
      stats->bytes_cleaned += arch::lines_touching(p, n).bytes();
    } else {
      (void)p, (void)n;
    }
  }
  // After a transfer wrote [p, p + n), before the CPU reads it.
  void after_transfer_wrote(void* p, std::size_t n) const {
    if constexpr (arch::cache_maintenance_enabled) {
      if (n == 0) return;
      arch::sync_for_cpu(p, n, arch::dma_direction::from_device);
      stats->bytes_invalidated += arch::lines_touching(p, n).bytes();
    } else {
      (void)p, (void)n;
    }
  }
};

}  // namespace dsm::coherence

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

struct array_stats {
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
  std::atomic<std::uint64_t> ownership_transfers{0};
  std::atomic<std::uint64_t> races{0};
  std::atomic<std::uint64_t> bytes_cleaned{0}, bytes_invalidated{0};

  void print(std::FILE* out, int rank, std::string_view array) const {
    fmt::print(out,
               "dsm stats rank {}: {}: hits {}, misses {}, prefetched {}, copies dropped {}, twins {}, "
               "diffs {} ({} B), ownership transfers {}, races {}, bytes cleaned {}, bytes invalidated {}, write-backs {} ({} B), "
               "contributions {} ({} B), combines {}, subscriptions {}, updates {} ({} B)\n",
               rank, array, DSM_COUNT_HITS != 0 ? fmt::to_string(hits) : std::string("-"), misses, prefetched, copies_dropped, twins, diffs,
               diff_bytes, ownership_transfers.load(), races.load(), bytes_cleaned.load(), bytes_invalidated.load(),
               write_backs, write_back_bytes, contributions, contribution_bytes, combines, subscriptions, updates,
               update_bytes);
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

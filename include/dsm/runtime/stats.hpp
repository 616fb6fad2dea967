// Per-rank counters, printed at exit with DSM_STATS=1.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>

#include <fmt/format.h>

namespace dsm::detail {

struct runtime_stats {
  std::uint64_t puts = 0, gets = 0, atomics = 0;
  std::uint64_t bytes_put = 0, bytes_got = 0;
  std::uint64_t barriers = 0;
  double barrier_seconds = 0;
  std::uint64_t collectives = 0;
  std::uint64_t allocations = 0, deallocations = 0, rkey_fetches = 0;
  std::uint64_t locks = 0;

  void print(std::FILE* out, int rank, std::uint64_t am_sent, std::uint64_t am_received,
             std::uint64_t am_rejected) const {
    fmt::print(out,
               "dsm stats rank {}: puts {} ({} B), gets {} ({} B), atomics {}, active messages sent {} received {} "
               "rejected {}, barriers {} ({:.6f} s), collectives {}, allocations {}, deallocations {}, rkey fetches "
               "{}, lock acquisitions {}\n",
               rank, puts, bytes_put, gets, bytes_got, atomics, am_sent, am_received, am_rejected, barriers,
               barrier_seconds, collectives, allocations, deallocations, rkey_fetches, locks);
  }
};

}  // namespace dsm::detail

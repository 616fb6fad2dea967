// Per-rank counters: dsm::stats() returns them, DSM_STATS=1 prints them at
// exit.
#pragma once

#include <cstdint>
#include <cstdio>

#include <fmt/format.h>

namespace dsm {

// This rank's operations since its runtime started.
struct rank_stats {
  std::uint64_t puts = 0, gets = 0, atomics = 0;  // one-sided operations posted
  std::uint64_t bytes_put = 0, bytes_got = 0;
  std::uint64_t barriers = 0;
  double barrier_seconds = 0;  // time spent in barriers
  std::uint64_t collectives = 0;
  std::uint64_t allocations = 0, deallocations = 0, rkey_fetches = 0;
  std::uint64_t locks = 0;  // dsm::lock acquisitions
  std::uint64_t rpcs = 0, rpcs_served = 0;  // RPCs this rank sent, and ran for others (or itself)
  std::uint64_t messages_sent = 0, messages_received = 0, messages_rejected = 0;  // active messages
};

namespace detail {

// What the runtime counts itself; the messages' fields are filled from the
// transport's counts when a snapshot is taken (runtime_state::stats_snapshot).
using runtime_stats = rank_stats;

inline void print_stats(std::FILE* out, int rank, const rank_stats& s) {
  fmt::print(out,
             "dsm stats rank {}: puts {} ({} B), gets {} ({} B), atomics {}, active messages sent {} received {} "
             "rejected {}, barriers {} ({:.6f} s), collectives {}, allocations {}, deallocations {}, rkey fetches "
             "{}, lock acquisitions {}, rpcs {} served {}\n",
             rank, s.puts, s.bytes_put, s.gets, s.bytes_got, s.atomics, s.messages_sent, s.messages_received,
             s.messages_rejected, s.barriers, s.barrier_seconds, s.collectives, s.allocations, s.deallocations,
             s.rkey_fetches, s.locks, s.rpcs, s.rpcs_served);
}

}  // namespace detail
}  // namespace dsm

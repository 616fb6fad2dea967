// The coherence engine's messages: their kinds and fixed heads. A message
// travels as an object message (runtime/state.hpp): word 0 the array's
// object id, word 1 the unit, word 2 the kind in its low byte and the
// sender's barrier interval above it. Read misses send nothing: they are
// one-sided gets of the home's memory.
#pragma once

#include <cstdint>

namespace dsm::coherence::wire {

enum kind : std::uint8_t {
  write = 1,   // requester -> home: the unit exclusively (single_writer)
  grant,       // home -> requester: grant_head, then the unit (none when the requester is the home)
  installed,   // requester -> home: the grant is in place
  recall,      // home -> owner: give the unit up
  recalled,    // owner -> home: the runs it changed since its grant, encoded as a diff (none from the home itself)
  diff,        // writer -> home: diff_head, then encoded runs (write_shared)
  applied,     // home -> sender of changes: applied_report (for a diff, a write-back, recalled changes)
  write_back,  // owner -> home, at a release: the runs it changed since its grant (single_writer)
};
inline constexpr std::uint8_t last_kind = write_back;

constexpr std::uint64_t stamp(std::uint8_t k, std::uint64_t interval) { return k | (interval << 8); }

struct grant_head {
  std::uint8_t state;
  std::uint8_t reserved[7];
};
struct diff_head {
  // The home's release count the writer saw at its last acquire (0: none
  // since the barrier): changes counted after it were not ordered before
  // the writer's, and overlapping them is a data race.
  std::uint64_t seen_count;
};
struct applied_report {
  std::uint32_t conflict;  // 0 or 1
  std::uint32_t other_rank;
  std::uint64_t byte;           // offset in the unit of the first byte both wrote
  std::uint64_t release_count;  // the home's count after these changes (0: dropped, nothing changed)
};
static_assert(sizeof(grant_head) == 8 && sizeof(diff_head) == 8 && sizeof(applied_report) == 24);

}  // namespace dsm::coherence::wire

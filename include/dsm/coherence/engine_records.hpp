// What the coherence engine keeps per unit and per message, apart from the
// engine itself: the home's transaction per unit with the requests queued
// behind it, the diffs it applied (for race checks), messages stashed until
// their barrier interval, and an owner's write-backs in flight.
#pragma once

#include <dsm/coherence/diff.hpp>
#include <dsm/coherence/wire.hpp>
#include <dsm/transport/active_messages.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace dsm::coherence::engine_records {

// A request waiting behind its unit's transaction.
struct queued {
  std::uint8_t kind;
  std::uint32_t source;
  std::vector<std::byte> payload;
};
// The home's one transaction per unit (single_writer).
struct transaction {
  std::uint8_t kind = 0;
  std::uint32_t requester = 0;
  std::int64_t recalled_from = -1;  // the owner recalled
  bool recall_due = false;          // its changes have not arrived yet
  bool granted = false;             // waiting for 'installed'
  wire::applied_report report{};
  std::deque<queued> waiting;
};
// A diff the home applied, kept for race checks (write_shared).
struct written {
  std::uint64_t count;  // the home's release count for it
  std::uint32_t writer;
  std::uint64_t home_interval;  // the home's acquires_ when applied
  std::vector<byte_run> runs;
};
// A message from a rank already past a barrier this rank is still in.
struct stashed {
  transport::message_header header;
  std::vector<std::byte> payload;
};
// A write-back in flight: once applied, the owner's twin becomes what it
// sent, unless the unit changed hands meanwhile.
struct sent_back {
  std::uint32_t grant;
  std::vector<std::byte> data;
};

}  // namespace dsm::coherence::engine_records

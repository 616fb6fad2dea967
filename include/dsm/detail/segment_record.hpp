// What ranks tell each other about a segment (its record, sent with the
// packed remote key), and the check a key reply gets before anything of it
// is installed: every field against the request and against what the
// responder said of itself at start-up.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <span>
#include <string>
#include <type_traits>

namespace dsm::detail {

enum rkey_status : std::uint64_t { rkey_ok = 0, rkey_stale = 1, rkey_refused = 2 /* local only: a malformed reply */ };

// Where a segment lives and how to reach it, as exchanged between ranks.
struct segment_record {
  std::uint64_t base;
  std::uint64_t bytes;
  std::uint16_t segment;
  std::uint8_t generation;
  std::uint8_t reserved[5];
};
static_assert(sizeof(segment_record) == 24 && std::is_trivially_copyable_v<segment_record>);

// A packed UCX key is far smaller than this.
inline constexpr std::size_t max_packed_key_bytes = 64 * 1024;

// What is wrong with a reply (status word and reserved word of its header,
// then its payload: status, record, packed key) to a request for
// `segment`/`generation` of a rank that maps at most `limit` bytes per
// segment; empty when nothing is.
inline std::string check_rkey_reply(std::uint16_t segment, std::uint8_t generation, std::uint64_t limit,
                                    std::uint64_t status_word, std::uint64_t reserved_word,
                                    std::span<const std::byte> payload) {
  constexpr std::size_t fixed = sizeof(std::uint64_t) + sizeof(segment_record);
  if (payload.size() < fixed || payload.size() > fixed + max_packed_key_bytes)
    return fmt::format("{} bytes", payload.size());
  std::uint64_t status;
  std::memcpy(&status, payload.data(), sizeof status);
  if (status != status_word || (status != rkey_ok && status != rkey_stale) || reserved_word != 0)
    return fmt::format("status {} (header {}, reserved {})", status, status_word, reserved_word);
  if (status == rkey_stale) return payload.size() == fixed ? std::string() : "a stale reply with a key";
  segment_record rec;
  std::memcpy(&rec, payload.data() + sizeof status, sizeof rec);
  if (payload.size() == fixed) return "no key";
  if (rec.segment != segment || rec.generation != generation)
    return fmt::format("a record of segment {} generation {}", rec.segment, unsigned{rec.generation});
  if (rec.bytes > limit || rec.base + rec.bytes < rec.base)
    return fmt::format("a segment of {} bytes at {:#x}, where that rank maps at most {}", rec.bytes, rec.base, limit);
  if (std::any_of(std::begin(rec.reserved), std::end(rec.reserved), [](std::uint8_t b) { return b != 0; }))
    return "reserved bytes set";
  return {};
}

}  // namespace dsm::detail

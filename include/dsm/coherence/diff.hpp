// Byte-granular diffs for multi-writer units: the runs of bytes where a
// unit differs from its twin (the copy taken at the first write), encoded
// for the wire as (offset, length, bytes) records. Only changed bytes are
// recorded: a gap is never merged into a run, since its stale bytes would
// overwrite another writer's at the home.
#pragma once

#include <dsm/error.hpp>

#include <fmt/format.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

namespace dsm::coherence {

struct byte_run {
  std::uint32_t offset;
  std::uint32_t length;
  friend bool operator==(const byte_run&, const byte_run&) = default;
};

// Wire record header; `length` bytes follow it.
struct diff_record {
  std::uint32_t offset;
  std::uint32_t length;
};
static_assert(sizeof(diff_record) == 8);

// Changed runs of `current` against `twin` (both n bytes). Compares a word
// at a time; in a word that differs, each run of changed bytes is found
// from the XOR's nonzero bytes, not byte by byte.
inline std::vector<byte_run> changed_runs(const std::byte* current, const std::byte* twin, std::size_t n) {
  std::vector<byte_run> runs;
  auto extend = [&](std::size_t at, std::size_t length) {
    if (!runs.empty() && runs.back().offset + runs.back().length == at)
      runs.back().length += static_cast<std::uint32_t>(length);
    else
      runs.push_back({static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(length)});
  };
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t a, b;
    std::memcpy(&a, current + i, 8);
    std::memcpy(&b, twin + i, 8);
    std::uint64_t x = a ^ b;
    if (x == 0) continue;
    // One bit per byte that differs (bit k: byte k in memory, which is
    // little-endian: checked in active_messages.hpp for the wire), packed
    // into eight bits; then each run of set bits is one run of bytes.
    x |= x >> 4;
    x |= x >> 2;
    x |= x >> 1;
    unsigned changed = static_cast<unsigned>(((x & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56);
    while (changed != 0) {
      const unsigned first = static_cast<unsigned>(std::countr_zero(changed));
      const unsigned length = static_cast<unsigned>(std::countr_one(changed >> first));
      extend(i + first, length);
      changed &= ~(((1u << length) - 1) << first);
    }
  }
  for (; i < n; ++i)
    if (current[i] != twin[i]) extend(i, 1);
  return runs;
}

inline std::size_t run_bytes(std::span<const byte_run> runs) noexcept {
  std::size_t total = 0;
  for (const auto& r : runs) total += r.length;
  return total;
}

// Appends the wire form of `runs` (their bytes taken from `current`).
inline void encode_runs(std::span<const byte_run> runs, const std::byte* current, std::vector<std::byte>& out) {
  for (const auto& r : runs) {
    const diff_record rec{r.offset, r.length};
    const auto* h = reinterpret_cast<const std::byte*>(&rec);
    out.insert(out.end(), h, h + sizeof rec);
    out.insert(out.end(), current + r.offset, current + r.offset + r.length);
  }
}

// Parses a received diff for a unit of `unit_bytes` bytes; anything
// malformed (truncated, out of the unit, overlapping or unordered runs) is
// rejected before a byte is applied.
inline std::vector<byte_run> decode_runs(std::span<const std::byte> wire, std::size_t unit_bytes) {
  std::vector<byte_run> runs;
  std::size_t at = 0, next_free = 0;
  while (at < wire.size()) {
    if (wire.size() - at < sizeof(diff_record))
      throw error(errc::protocol, fmt::format("diff truncated inside a run header at byte {}", at));
    diff_record rec;
    std::memcpy(&rec, wire.data() + at, sizeof rec);
    at += sizeof rec;
    if (rec.length == 0 || rec.offset < next_free || rec.offset > unit_bytes || rec.length > unit_bytes - rec.offset)
      throw error(errc::protocol, fmt::format("diff run of {} bytes at offset {} in a unit of {} bytes", rec.length,
                                              rec.offset, unit_bytes));
    if (wire.size() - at < rec.length)
      throw error(errc::protocol, fmt::format("diff truncated inside the run at offset {}", rec.offset));
    runs.push_back({rec.offset, rec.length});
    at += rec.length;
    next_free = std::size_t{rec.offset} + rec.length;
  }
  return runs;
}

// Copies the decoded runs' bytes from the wire form into `unit`.
inline void apply_runs(std::span<const byte_run> runs, std::span<const std::byte> wire, std::byte* unit) {
  std::size_t at = 0;
  for (const auto& r : runs) {
    at += sizeof(diff_record);
    std::memcpy(unit + r.offset, wire.data() + at, r.length);
    at += r.length;
  }
}

// The first byte two sorted run lists both cover, if any.
inline std::optional<std::uint32_t> first_overlap(std::span<const byte_run> a, std::span<const byte_run> b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const std::uint32_t lo = std::max(a[i].offset, b[j].offset);
    const std::uint32_t hi = std::min(a[i].offset + a[i].length, b[j].offset + b[j].length);
    if (lo < hi) return lo;
    if (a[i].offset + a[i].length < b[j].offset + b[j].length) ++i;
    else ++j;
  }
  return std::nullopt;
}

}  // namespace dsm::coherence

// A packed put as it travels: `runs` pairs of u64 (byte offset in the
// target's segment, bytes), then the runs' bytes in order. The decoder
// trusts nothing: the table must fit, no run is empty, and the runs'
// bytes are exactly the data's.
#pragma once

#include <dsm/error.hpp>

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace dsm::detail {

struct packed_run {
  std::uint64_t offset, bytes;
};
inline constexpr std::size_t packed_run_bytes = 2 * sizeof(std::uint64_t);

// The runs, and the data they take in order; errc::protocol otherwise.
inline std::vector<packed_run> decode_packed_runs(std::span<const std::byte> payload, std::uint64_t runs,
                                                  std::span<const std::byte>& data) {
  if (runs == 0 || runs > payload.size() / packed_run_bytes)
    throw error(errc::protocol, fmt::format("a packed put of {} runs in {} bytes", runs, payload.size()));
  data = payload.subspan(runs * packed_run_bytes);
  std::vector<packed_run> table(runs);
  std::memcpy(table.data(), payload.data(), runs * packed_run_bytes);
  std::uint64_t total = 0;
  for (const packed_run& r : table) {
    if (r.bytes == 0 || r.bytes > data.size() - total)
      throw error(errc::protocol,
                  fmt::format("a packed put with a run of {} bytes in its {} bytes of data", r.bytes, data.size()));
    total += r.bytes;
  }
  if (total != data.size())
    throw error(errc::protocol, fmt::format("a packed put with {} bytes beyond its runs", data.size() - total));
  return table;
}

}  // namespace dsm::detail

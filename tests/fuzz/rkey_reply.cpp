// Fuzz target: a remote-key reply (status, segment record, packed key),
// checked against the request it claims to answer. An accepted reply names
// the segment and generation asked for, within the responder's limit.
#include "input.hpp"

#include <dsm/detail/segment_record.hpp>

#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  dsm_fuzz::input in(data, size);
  const auto segment = in.take<std::uint16_t>();
  const auto generation = in.take<std::uint8_t>();
  const std::uint64_t limit = std::uint64_t{1} << (in.take<std::uint8_t>() % 48);
  const std::uint64_t status_word = in.take<std::uint8_t>() % 4, reserved_word = in.take<std::uint8_t>() % 2;
  const auto payload = in.rest();
  const auto problem = dsm::detail::check_rkey_reply(segment, generation, limit, status_word, reserved_word, payload);
  if (!problem.empty() || payload.size() < 8 + sizeof(dsm::detail::segment_record)) return 0;
  std::uint64_t status;
  std::memcpy(&status, payload.data(), sizeof status);
  if (status == dsm::detail::rkey_stale) return 0;
  dsm::detail::segment_record rec;
  std::memcpy(&rec, payload.data() + 8, sizeof rec);
  if (rec.segment != segment || rec.generation != generation || rec.bytes > limit) std::abort();
  return 0;
}

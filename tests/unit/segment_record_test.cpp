// A key reply is checked field by field against the request it answers.
#include <dsm/detail/segment_record.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

namespace {

using dsm::detail::segment_record;

std::vector<std::byte> reply(std::uint64_t status, segment_record rec, std::size_t key_bytes) {
  std::vector<std::byte> out(8 + sizeof rec + key_bytes, std::byte{1});
  std::memcpy(out.data(), &status, 8);
  std::memcpy(out.data() + 8, &rec, sizeof rec);
  return out;
}

constexpr std::uint64_t gib = std::uint64_t{1} << 30;

}  // namespace

TEST_CASE("a key reply matching its request passes") {
  const auto ok = reply(dsm::detail::rkey_ok, {0x7f0000000000, 4096, 3, 2, {}}, 40);
  CHECK(dsm::detail::check_rkey_reply(3, 2, 24 * gib, dsm::detail::rkey_ok, 0, ok).empty());
  const std::vector<std::byte> stale = reply(dsm::detail::rkey_stale, {}, 0);
  CHECK(dsm::detail::check_rkey_reply(3, 2, 24 * gib, dsm::detail::rkey_stale, 0, stale).empty());
}

TEST_CASE("a key reply that differs from its request in any field is refused") {
  using dsm::detail::check_rkey_reply;
  const std::uint64_t ok = dsm::detail::rkey_ok;
  CHECK(check_rkey_reply(3, 2, 24 * gib, ok, 0, reply(ok, {0x1000, 4096, 4, 2, {}}, 40)).find("segment 4") !=
        std::string::npos);                                                                        // another segment
  CHECK_FALSE(check_rkey_reply(3, 2, 24 * gib, ok, 0, reply(ok, {0x1000, 4096, 3, 1, {}}, 40)).empty());  // generation
  CHECK(check_rkey_reply(3, 2, 24 * gib, ok, 0, reply(ok, {0x1000, 1024 * gib, 3, 2, {}}, 40)).find("maps at most") !=
        std::string::npos);                                                                        // 1 TiB
  CHECK_FALSE(check_rkey_reply(3, 2, 24 * gib, ok, 0, reply(ok, {~0ull - 10, 4096, 3, 2, {}}, 40)).empty());  // wraps
  CHECK_FALSE(check_rkey_reply(3, 2, 24 * gib, ok, 0, reply(ok, {0x1000, 4096, 3, 2, {1}}, 40)).empty());  // reserved
  CHECK_FALSE(check_rkey_reply(3, 2, 24 * gib, ok, 0, reply(ok, {0x1000, 4096, 3, 2, {}}, 0)).empty());    // no key
  CHECK_FALSE(check_rkey_reply(3, 2, 24 * gib, dsm::detail::rkey_stale, 0, reply(ok, {}, 40)).empty());  // header says stale
  CHECK_FALSE(check_rkey_reply(3, 2, 24 * gib, ok, 1, reply(ok, {0x1000, 4096, 3, 2, {}}, 40)).empty());  // reserved word
  CHECK_FALSE(check_rkey_reply(3, 2, 24 * gib, 7, 0, reply(7, {0x1000, 4096, 3, 2, {}}, 40)).empty());  // unknown status
  const std::vector<std::byte> short_reply(10);
  CHECK_FALSE(check_rkey_reply(3, 2, 24 * gib, ok, 0, short_reply).empty());
  CHECK_FALSE(check_rkey_reply(3, 2, 24 * gib, ok, 0, reply(ok, {0x1000, 4096, 3, 2, {}}, 70000)).empty());  // huge key
}

// The wire protocol between dsmrun and its ranks on the rendezvous socket,
// and the framing both sides use. Every length is bounded and checked
// before anything is allocated; integers are 32-bit little-endian.
//
//   rank -> dsmrun   hello:   magic, version, rank, token length, token,
//                             address length, address
//   dsmrun -> rank   refusal: status 1, reason length, reason
//                    table:   status 0, ranks, then per rank
//                             (address length, address)
#pragma once

#include <dsm/error.hpp>

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsm::detail::rendezvous {

inline constexpr std::uint32_t hello_magic = 0x52534d44;  // "DSMR"
inline constexpr std::uint32_t protocol_version = 1;
inline constexpr std::uint32_t status_ok = 0;
inline constexpr std::uint32_t status_refused = 1;
inline constexpr std::size_t max_token_bytes = 256;
inline constexpr std::size_t max_address_bytes = 64 * 1024;
inline constexpr std::size_t max_reason_bytes = 1024;
inline constexpr std::uint32_t max_ranks = 1u << 20;

// Environment a launcher hands its ranks.
inline constexpr const char* env_socket = "DSM_RENDEZVOUS";
inline constexpr const char* env_token = "DSM_TOKEN";
inline constexpr const char* env_rank = "DSM_RANK";
inline constexpr const char* env_ranks = "DSM_RANKS";

inline void append_u32(std::vector<std::byte>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}
inline void append_blob(std::vector<std::byte>& out, std::span<const std::byte> blob) {
  append_u32(out, static_cast<std::uint32_t>(blob.size()));
  out.insert(out.end(), blob.begin(), blob.end());
}

// Blocking I/O on a socket with an overall deadline; any failure is a
// dsm::error of `category` naming `what`.
class channel {
 public:
  channel(int fd, std::chrono::steady_clock::time_point deadline, errc category)
      : fd_(fd), deadline_(deadline), category_(category) {}

  void write_all(std::span<const std::byte> bytes, std::string_view what) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      wait_for(POLLOUT, what);
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) fail(what, n < 0 ? std::strerror(errno) : "connection closed");
      done += static_cast<std::size_t>(n);
    }
  }

  void read_exact(std::span<std::byte> bytes, std::string_view what) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      wait_for(POLLIN, what);
      const ssize_t n = ::recv(fd_, bytes.data() + done, bytes.size() - done, 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) fail(what, n < 0 ? std::strerror(errno) : "connection closed by the other side");
      done += static_cast<std::size_t>(n);
    }
  }

  std::uint32_t read_u32(std::string_view what) {
    std::byte b[4];
    read_exact(b, what);
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(std::to_integer<std::uint8_t>(b[i])) << (8 * i);
    return v;
  }

  std::vector<std::byte> read_blob(std::size_t limit, std::string_view what) {
    const std::uint32_t n = read_u32(what);
    if (n > limit) fail(what, fmt::format("length {} exceeds the limit of {}", n, limit));
    std::vector<std::byte> blob(n);
    read_exact(blob, what);
    return blob;
  }

  [[noreturn]] void fail(std::string_view what, std::string_view cause) const {
    throw error(category_, fmt::format("rendezvous: {}: {}", what, cause));
  }

 private:
  void wait_for(short events, std::string_view what) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw error(errc::timeout, fmt::format("rendezvous: timed out during {}", what));
      pollfd p{fd_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
      if (r > 0) return;
      if (r < 0 && errno != EINTR) fail(what, std::strerror(errno));
    }
  }

  int fd_;
  std::chrono::steady_clock::time_point deadline_;
  errc category_;
};

// A rank's hello, as dsmrun reads it. `refuse(reason)` (which must not
// return) is called for a well-framed hello dsmrun will not take; a
// truncated or oversized one is a dsm::error from the channel.
struct hello {
  std::uint32_t rank;
  std::vector<std::byte> token;
  std::vector<std::byte> address;
};
template <class Refuse>
hello read_hello(channel& ch, Refuse&& refuse) {
  if (ch.read_u32("hello") != hello_magic) refuse(std::string("not a dsm rendezvous hello"));
  if (const auto v = ch.read_u32("hello"); v != protocol_version)
    refuse(fmt::format("protocol version {}, dsmrun speaks {}", v, protocol_version));
  hello h;
  h.rank = ch.read_u32("hello");
  h.token = ch.read_blob(max_token_bytes, "token");
  h.address = ch.read_blob(max_address_bytes, "address");
  return h;
}

// dsmrun's answer, as a rank reads it: every rank's worker address, for a
// job of `ranks` ranks.
inline std::vector<std::vector<std::byte>> read_table(channel& ch, std::uint32_t ranks) {
  const std::uint32_t status = ch.read_u32("waiting for the other ranks");
  if (status == status_refused) {
    const auto reason = ch.read_blob(max_reason_bytes, "reading the refusal");
    ch.fail("dsmrun refused this rank", std::string(reinterpret_cast<const char*>(reason.data()), reason.size()));
  }
  if (status != status_ok) ch.fail("reading the address table", fmt::format("unknown status {}", status));
  const std::uint32_t n = ch.read_u32("reading the address table");
  if (n != ranks) ch.fail("reading the address table", fmt::format("{} ranks, DSM_RANKS says {}", n, ranks));
  std::vector<std::vector<std::byte>> addresses;
  for (std::uint32_t r = 0; r < n; ++r) addresses.push_back(ch.read_blob(max_address_bytes, "reading an address"));
  return addresses;
}

// Compares without an early exit, so the time taken says nothing of where
// a guessed token first differs.
inline bool same_token(std::span<const std::byte> a, std::span<const std::byte> b) noexcept {
  if (a.size() != b.size()) return false;
  unsigned diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= std::to_integer<unsigned>(a[i] ^ b[i]);
  return diff == 0;
}

inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

}  // namespace dsm::detail::rendezvous

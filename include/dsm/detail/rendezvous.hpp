// The wire protocol between dsmrun and its ranks on the rendezvous socket,
// and the framing both sides use. Every length is bounded and checked
// before anything is allocated; integers are 32-bit little-endian.
//
//   rank -> dsmrun   hello:   magic, version, rank, token length, token,
//                             address length, address
//   dsmrun -> rank   refusal: status 1, reason length, reason
//                    table:   status 0, ranks, then per rank
//                             (address length, address)
//
// The connection then stays open for the job's life, each side watching
// it, and carries notices, each: kind, rank, text length, text.
//   rank -> dsmrun   goodbye: the rank left its runtime after the final
//                             barrier (rank: itself); an exit without one
//                             is an early exit, even with code 0
//                    gave up: a wait timed out (rank: the one awaited, or
//                             no_rank), with the error's text
//   dsmrun -> rank   ending:  the job is ending (rank: the one blamed, or
//                             no_rank), with the cause
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
#include <optional>
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

inline constexpr std::uint32_t notice_goodbye = 1;
inline constexpr std::uint32_t notice_gave_up = 2;
inline constexpr std::uint32_t notice_ending = 3;
// A rank's connection to rank `rank` failed (the text says how): dsmrun,
// which knows whether that rank's process ended and how, answers with
// notice_ending, or notice_peer_finished, or ends the job itself when the
// rank still runs (a connection lost between live ranks).
inline constexpr std::uint32_t notice_lost_peer = 4;
// Rank `rank` finished the job: its connections' end is no failure.
inline constexpr std::uint32_t notice_peer_finished = 5;
// The kinds a reader accepts: notice_goodbye .. notice_last_kind.
inline constexpr std::uint32_t notice_last_kind = notice_peer_finished;
inline constexpr std::uint32_t notice_no_rank = 0xffffffff;
inline constexpr std::size_t max_notice_text_bytes = 4096;

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
      if (left.count() <= 0) throw error(errc::timeout, fmt::format("rendezvous: timed out while {}", what));
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

// A rank's hello, as dsmrun reads it, from whatever has arrived so far (a
// non-blocking socket): nullopt while it is incomplete. `refuse(reason)`
// (which must not return) is called for a well-framed hello dsmrun will not
// take; an oversized field is a dsm::error of errc::bootstrap.
struct hello {
  std::uint32_t rank;
  std::vector<std::byte> token;
  std::vector<std::byte> address;
};
template <class Refuse>
std::optional<hello> parse_hello(std::span<const std::byte> bytes, Refuse&& refuse) {
  std::size_t at = 0;
  const auto u32 = [&](std::uint32_t& v) {
    if (bytes.size() - at < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(std::to_integer<std::uint8_t>(bytes[at + i])) << (8 * i);
    at += 4;
    return true;
  };
  const auto blob = [&](std::size_t limit, std::string_view what, std::vector<std::byte>& out) {
    std::uint32_t n = 0;
    if (!u32(n)) return false;
    if (n > limit)
      throw error(errc::bootstrap, fmt::format("rendezvous: {}: length {} exceeds the limit of {}", what, n, limit));
    if (bytes.size() - at < n) return false;
    out.assign(bytes.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
    return true;
  };
  std::uint32_t magic = 0, version = 0;
  if (!u32(magic)) return std::nullopt;
  if (magic != hello_magic) refuse(std::string("not a dsm rendezvous hello"));
  if (!u32(version)) return std::nullopt;
  if (version != protocol_version) refuse(fmt::format("protocol version {}, dsmrun speaks {}", version, protocol_version));
  hello h{};
  if (!u32(h.rank) || !blob(max_token_bytes, "token", h.token) || !blob(max_address_bytes, "address", h.address))
    return std::nullopt;
  if (at != bytes.size()) refuse(std::string("bytes after the hello, before the address table"));
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

struct notice {
  std::uint32_t kind;
  std::uint32_t rank;
  std::string text;
};

inline std::vector<std::byte> encode(const notice& n) {
  std::vector<std::byte> out;
  append_u32(out, n.kind);
  append_u32(out, n.rank);
  const std::string_view text = std::string_view(n.text).substr(0, max_notice_text_bytes);
  append_blob(out, {reinterpret_cast<const std::byte*>(text.data()), text.size()});
  return out;
}

// Notices as they arrive on a non-blocking socket, in any pieces: feed()
// what was read, next() each complete one. A malformed stream (unknown
// kind, oversized text) is a dsm::error of errc::protocol.
class notice_reader {
 public:
  void feed(std::span<const std::byte> bytes) { buffer_.insert(buffer_.end(), bytes.begin(), bytes.end()); }
  std::optional<notice> next() {
    if (buffer_.size() < 12) return std::nullopt;
    const std::uint32_t kind = u32_at(0), rank = u32_at(4), length = u32_at(8);
    if (kind < notice_goodbye || kind > notice_last_kind || length > max_notice_text_bytes)
      throw error(errc::protocol, fmt::format("rendezvous: a notice of kind {} with {} bytes of text", kind, length));
    if (buffer_.size() < 12 + std::size_t{length}) return std::nullopt;
    notice n{kind, rank, std::string(reinterpret_cast<const char*>(buffer_.data() + 12), length)};
    buffer_.erase(buffer_.begin(), buffer_.begin() + 12 + length);
    return n;
  }

 private:
  std::uint32_t u32_at(std::size_t at) const {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(std::to_integer<std::uint8_t>(buffer_[at + i])) << (8 * i);
    return v;
  }
  std::vector<std::byte> buffer_;
};

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

// Fuzz target: the rendezvous socket, both directions: a rank's hello as
// dsmrun parses it (from any prefix: incomplete, a hello or an error), the
// notices both sides exchange afterwards, and dsmrun's address table as a
// rank reads it. Every input ends in a result within the limits or a
// dsm::error; none blocks (the writer's end is closed) or allocates past a
// limit.
#include <dsm/detail/rendezvous.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <span>
#include <string>

namespace rv = dsm::detail::rendezvous;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 64 * 1024) return 0;  // within one socket buffer
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  try {
    const auto refuse = [](const std::string& reason) -> void { throw dsm::error(dsm::errc::bootstrap, reason); };
    // Every prefix is incomplete, refused, or the same hello.
    const auto whole = rv::parse_hello(bytes, refuse);
    if (whole && (whole->token.size() > rv::max_token_bytes || whole->address.size() > rv::max_address_bytes))
      std::abort();
    if (const auto half = rv::parse_hello(bytes.first(bytes.size() / 2), refuse); half && bytes.size() / 2 < 20)
      std::abort();  // a hello has at least 20 bytes
  } catch (const dsm::error& e) {
    if (e.category() != dsm::errc::bootstrap) std::abort();
  }
  try {
    rv::notice_reader notices;
    notices.feed(bytes.first(bytes.size() / 3));
    notices.feed(bytes.subspan(bytes.size() / 3));
    while (const auto n = notices.next())
      if (n->kind < rv::notice_goodbye || n->kind > rv::notice_last_kind || n->text.size() > rv::max_notice_text_bytes)
        std::abort();
  } catch (const dsm::error& e) {
    if (e.category() != dsm::errc::protocol) std::abort();
  }
  {  // the table, as a rank reads it
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
    if (::write(fds[1], data + 1, size - 1) != static_cast<ssize_t>(size - 1)) std::abort();
    ::shutdown(fds[1], SHUT_WR);
    rv::channel ch{fds[0], std::chrono::steady_clock::now() + std::chrono::seconds(2), dsm::errc::bootstrap};
    try {
      const auto table = rv::read_table(ch, data[0] % 5 + 1);
      if (table.size() != data[0] % 5u + 1) std::abort();
    } catch (const dsm::error& e) {
      if (e.category() != dsm::errc::bootstrap) std::abort();  // a timeout would mean it blocked
    }
    ::close(fds[0]);
    ::close(fds[1]);
  }
  return 0;
}

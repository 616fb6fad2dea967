// Fuzz target: the rendezvous socket, both directions: a rank's hello as
// dsmrun reads it and dsmrun's address table as a rank reads it. Every
// input ends in a hello / table within the limits or a dsm::error; none
// blocks (the writer's end is closed) or allocates past a limit.
#include <dsm/detail/rendezvous.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace rv = dsm::detail::rendezvous;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 64 * 1024) return 0;  // within one socket buffer
  for (const bool as_dsmrun : {true, false}) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
    if (::write(fds[1], data + 1, size - 1) != static_cast<ssize_t>(size - 1)) std::abort();
    ::shutdown(fds[1], SHUT_WR);
    rv::channel ch{fds[0], std::chrono::steady_clock::now() + std::chrono::seconds(2), dsm::errc::bootstrap};
    try {
      if (as_dsmrun) {
        const auto h = rv::read_hello(ch, [](const std::string& reason) { throw dsm::error(dsm::errc::bootstrap, reason); });
        if (h.token.size() > rv::max_token_bytes || h.address.size() > rv::max_address_bytes) std::abort();
      } else {
        const auto table = rv::read_table(ch, data[0] % 5 + 1);
        if (table.size() != data[0] % 5u + 1) std::abort();
      }
    } catch (const dsm::error& e) {
      if (e.category() != dsm::errc::bootstrap) std::abort();  // a timeout would mean it blocked
    }
    ::close(fds[0]);
    ::close(fds[1]);
  }
  return 0;
}

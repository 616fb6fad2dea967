// A program for testing dsmrun itself. Usage: launcher_probe MODE [ARG]
//   hello           every rank prints "rank R of N"
//   abort R         rank R says "rank R ends now" and aborts after joining;
//                   the others wait in a barrier
//   exit R C        the same, but rank R exits with code C
//   sleep S         every rank sleeps S seconds (for --timeout and signals)
//   bad-token       rank 0 also knocks on the rendezvous with a wrong token
//                   and checks it is refused
#include <dsm/dsm.hpp>

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

namespace rv = dsm::detail::rendezvous;

static int knock_with_wrong_token() {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", std::getenv(rv::env_socket));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    fmt::print(stderr, "probe: cannot connect to the rendezvous\n");
    return 1;
  }
  std::vector<std::byte> hello;
  rv::append_u32(hello, rv::hello_magic);
  rv::append_u32(hello, rv::protocol_version);
  rv::append_u32(hello, 0);
  rv::append_blob(hello, rv::as_bytes("not-the-token"));
  rv::append_blob(hello, rv::as_bytes("address"));
  rv::channel ch{fd, std::chrono::steady_clock::now() + std::chrono::seconds(10), dsm::errc::bootstrap};
  ch.write_all(hello, "hello");
  const auto status = ch.read_u32("status");
  const auto reason = ch.read_blob(rv::max_reason_bytes, "reason");
  ::close(fd);
  const std::string_view text(reinterpret_cast<const char*>(reason.data()), reason.size());
  fmt::print("probe: status {} reason '{}'\n", status, text);
  return status == rv::status_refused && text == "wrong token" ? 0 : 1;
}

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "hello";
  const int a = argc > 2 ? std::atoi(argv[2]) : 0, b = argc > 3 ? std::atoi(argv[3]) : 0;
  dsm::runtime rt{argc, argv};
  const int me = dsm::rank();
  if (mode == "hello") {
    fmt::print("rank {} of {}\n", me, dsm::ranks());
  } else if (mode == "abort" || mode == "exit") {
    if (me == a) {
      // The test times the job's end from this line, not from its start.
      fmt::print("rank {} ends now\n", me);
      std::fflush(stdout);
      if (mode == "abort") std::abort();
      std::_Exit(b);
    }
    dsm::barrier();  // never completes: the launcher must end us
  } else if (mode == "sleep") {
    std::this_thread::sleep_for(std::chrono::seconds(a));
  } else if (mode == "bad-token") {
    if (me == 0 && knock_with_wrong_token() != 0) return 1;
  } else {
    fmt::print(stderr, "probe: unknown mode {}\n", mode);
    return 2;
  }
  return 0;
}

// A program for testing dsmrun and the ways a job ends. Usage:
// launcher_probe MODE [ARG...]
//   hello           every rank prints "rank R of N"
//   abort R         rank R says "rank R ends now" and aborts after joining;
//                   the others wait in a barrier
//   exit R C        the same, but rank R exits with code C (std::_Exit: no
//                   cleanup at all)
//   std-exit R      the same, but rank R calls std::exit(0) with its
//                   runtime alive
//   kill R SIG      the same, but rank R raises SIG (KILL, SEGV, STOP)
//   cut R           rank R says "rank R cuts its connections", shuts down
//                   every TCP socket it has (UCX's, over --transport tcp)
//                   and sleeps 30 s, alive; the others wait in a barrier
//   sleep S         every rank sleeps S seconds (for --timeout and signals)
//   hold R S        every rank says "rank N waits"; rank R sleeps S seconds
//                   outside dsm, the others wait in a barrier for it (a
//                   machine's failure meanwhile must end the wait)
//   bad-token       rank 0 also knocks on the rendezvous with a wrong token
//                   and checks it is refused
//   chatty R N      every rank but R prints N numbered lines (stdout, fully
//                   buffered by a plain program) and waits in a barrier;
//                   rank R aborts once they all have
//   silent-client   rank 0 connects to the rendezvous and says nothing,
//                   holding the connection; every rank sleeps 30 s
//   orphan          rank 0 leaves a background child holding its output
//                   for 60 s, then every rank finishes
// A rank that sees a dsm::error anywhere prints "rank R: CATEGORY:
// MESSAGE" and exits 1.
#include <dsm/dsm.hpp>

#include <fmt/format.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

namespace rv = dsm::detail::rendezvous;

namespace {

int connect_to_rendezvous() {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", std::getenv(rv::env_socket));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    fmt::print(stderr, "probe: cannot connect to the rendezvous\n");
    std::exit(1);
  }
  return fd;
}

int knock_with_wrong_token() {
  const int fd = connect_to_rendezvous();
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

// The others' side of a rank that ends: a barrier that must fail, fast,
// naming what happened.
int wait_for_the_end(int me) {
  dsm::barrier();
  dsm::barrier();
  fmt::print("rank {}: the barrier completed\n", me);
  return 0;
}

// A lost link between live processes: every TCP socket of this process
// (the rendezvous is a Unix socket) shut down both ways; how many.
int shut_down_tcp_sockets() {
  int cut = 0;
  for (int fd = 3; fd < 4096; ++fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) continue;
    if (address.ss_family != AF_INET && address.ss_family != AF_INET6) continue;
    int listening = 0;
    socklen_t size = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0 && listening) continue;  // no link
    cut += ::shutdown(fd, SHUT_RDWR) == 0;
  }
  return cut;
}

int signal_of(std::string_view name) {
  if (name == "KILL") return SIGKILL;
  if (name == "SEGV") return SIGSEGV;
  if (name == "STOP") return SIGSTOP;
  return 0;
}

int report(const dsm::error& e) {
  fmt::print("rank {}: {}: {}\n", e.rank(), dsm::to_string(e.category()), e.message());
  std::fflush(stdout);
  return 1;
}

int run_modes(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "hello";
  const int a = argc > 2 ? std::atoi(argv[2]) : 0, b = argc > 3 ? std::atoi(argv[3]) : 0;
  const std::string_view third = argc > 3 ? argv[3] : "";
  const int me = dsm::rank();
  if (mode == "hello" || mode == "late") {
    fmt::print("rank {} of {}\n", me, dsm::ranks());
  } else if (mode == "hosts") {
    // How many ranks this one finds on its machine (host name, boot and
    // /dev/shm), once every rank has started: the rest of the job is elsewhere.
    fmt::print("rank {} of {}: {} rank(s) on this host\n", me, dsm::ranks(), dsm::local_team().size());
  } else if (mode == "abort" || mode == "exit" || mode == "std-exit" || mode == "kill") {
    if (me == a) {
      // The test times the job's end from this line, not from its start.
      fmt::print("rank {} ends now\n", me);
      std::fflush(stdout);
      if (mode == "abort") std::abort();
      if (mode == "std-exit") std::exit(0);
      if (mode == "kill") {
        ::raise(signal_of(third));
        for (;;) ::pause();  // stopped: never resumed
      }
      std::_Exit(b);
    }
    return wait_for_the_end(me);
  } else if (mode == "chatty") {
    if (me != a)
      for (int i = 0; i < b; ++i) fmt::print("rank {} line {}\n", me, i);
    dsm::barrier();  // every line is printed (in a buffer)
    if (me == a) {
      fmt::print("rank {} ends now\n", me);
      std::fflush(stdout);
      std::abort();
    }
    return wait_for_the_end(me);
  } else if (mode == "hold") {
    fmt::print("rank {} waits\n", me);
    std::fflush(stdout);
    if (me == a) std::this_thread::sleep_for(std::chrono::seconds(b));
    return wait_for_the_end(me);
  } else if (mode == "sleep") {
    std::this_thread::sleep_for(std::chrono::seconds(a));
  } else if (mode == "bad-token") {
    if (me == 0 && knock_with_wrong_token() != 0) return 1;
  } else if (mode == "cut") {
    if (me == a) {
      fmt::print("rank {} cuts its connections\n", me);
      std::fflush(stdout);
      const int cut = shut_down_tcp_sockets();
      if (cut == 0) fmt::print("rank {}: no TCP socket to cut\n", me);
      std::this_thread::sleep_for(std::chrono::seconds(30));
      return 0;
    }
    return wait_for_the_end(me);
  } else if (mode == "silent-client") {
    const int fd = me == 0 ? connect_to_rendezvous() : -1;
    std::this_thread::sleep_for(std::chrono::seconds(30));
    if (fd >= 0) ::close(fd);
  } else if (mode == "orphan") {
    if (me == 0 && ::fork() == 0) {
      std::this_thread::sleep_for(std::chrono::seconds(60));
      std::_Exit(0);
    }
    fmt::print("rank {} done\n", me);
  } else {
    fmt::print(stderr, "probe: unknown mode {}\n", mode);
    return 2;
  }
  return 0;
}

}  // namespace

// The failure may reach a rank anywhere, even in the runtime's constructor
// (a rank that leaves the constructor's last exchange first may end before
// the others have left it), so the whole run is caught, not one barrier;
// and it is told before the runtime goes (under mpirun, a failed job's
// ranks are killed soon after the first one ends).
int main(int argc, char** argv) {
  // late <rank> <seconds>: that rank starts its runtime late (start-up is
  // bounded by DSM_START_TIMEOUT, not a shorter DSM_TIMEOUT).
  if (argc > 3 && std::string_view(argv[1]) == "late") {
    const char* me = std::getenv("DSM_RANK");
    if (me && std::atoi(me) == std::atoi(argv[2])) std::this_thread::sleep_for(std::chrono::seconds(std::atoi(argv[3])));
  }
  try {
    dsm::runtime rt{argc, argv};
    try {
      return run_modes(argc, argv);
    } catch (const dsm::error& e) {
      return report(e);
    }
  } catch (const dsm::error& e) {
    return report(e);
  }
}

// Liveness of ranks on other machines, kept by the kernels rather than by
// the ranks' programs. UCX notices a peer whose process died (its
// connections close), but not a machine that went silent: a cut link or a
// machine that lost power leaves TCP retransmitting for many minutes while
// every wait on this side runs to DSM_TIMEOUT. Each rank keeps one TCP
// connection to a few ranks on every other machine, with kernel
// keepalives and TCP_USER_TIMEOUT set to DSM_HOST_TIMEOUT: the peer's
// kernel answers the probes whatever its program is doing (computing, in
// a wait, stopped), so only a machine or link that is gone stays silent
// for that long. A rank that leaves says how (one byte) before closing.
#pragma once

#include <dsm/error.hpp>
#include <dsm/transport/clock.hpp>

#include <fmt/format.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace dsm::detail {

// Where a rank's watch listens: what it publishes at start-up.
struct watch_contact {
  std::array<std::uint32_t, 4> ipv4{};  // network byte order; 0: unused
  std::uint16_t port = 0;               // 0: this rank keeps no watch
  std::uint16_t reserved = 0;
  std::uint32_t reserved2 = 0;
  std::uint64_t nonce = 0;  // a connecting peer presents it (a stray connection is not a peer)
};
static_assert(sizeof(watch_contact) == 32 && std::is_trivially_copyable_v<watch_contact>);

// The ranks `self` watches, given each rank's machine (`hosts[r]`, any
// identity): on every other machine, the rank whose index among that
// machine's ranks is self's own index modulo their number, and every rank
// that picked self so. Each rank then keeps about one connection per
// other machine, not one per rank.
inline std::vector<std::uint32_t> watched_peers(std::uint32_t self, const std::vector<std::uint64_t>& hosts) {
  std::map<std::uint64_t, std::vector<std::uint32_t>> by_host;  // ranks in order
  std::vector<std::size_t> index(hosts.size());
  for (std::uint32_t r = 0; r < hosts.size(); ++r) {
    auto& members = by_host[hosts[r]];
    index[r] = members.size();
    members.push_back(r);
  }
  std::set<std::uint32_t> watched;
  for (std::uint32_t r = 0; r < hosts.size(); ++r)
    for (const auto& [host, members] : by_host) {
      if (host == hosts[r]) continue;
      const std::uint32_t pick = members[index[r] % members.size()];
      if (r == self) watched.insert(pick);
      if (pick == self) watched.insert(r);
    }
  return {watched.begin(), watched.end()};
}

class peer_watch {
 public:
  // rank, and what its connection's end says of it
  using lost_handler = std::function<void(std::uint32_t, std::string)>;
  static constexpr char said_finished = 'F', said_failing = 'X';
  static constexpr std::uint32_t hello_magic = 0x5753'4d44;  // "DMSW"

  // Listens on every interface (a port of the kernel's choice) unless
  // timeout_seconds is infinite (DSM_HOST_TIMEOUT=0: no watch).
  explicit peer_watch(double timeout_seconds) : timeout_seconds_(timeout_seconds) {
    if (!std::isfinite(timeout_seconds)) return;
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t len = sizeof sa;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(listener_, SOMAXCONN) != 0 || ::getsockname(listener_, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
      throw error(errc::bootstrap, fmt::format("the peer watch's listening socket: {}", std::strerror(errno)));
    contact_.port = ntohs(sa.sin_port);
    contact_.nonce = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
    contact_.ipv4 = addresses();
  }
  peer_watch(const peer_watch&) = delete;
  peer_watch& operator=(const peer_watch&) = delete;
  ~peer_watch() {
    stop();
    if (listener_ >= 0) ::close(listener_);
  }

  const watch_contact& contact() const noexcept { return contact_; }

  // Connects to the watched ranks above self and accepts those below (all
  // listen before any contact is published, so nothing waits on an
  // accept), then watches them on a thread of its own; `lost` is called
  // there, once per rank, when a connection ends without a word.
  void start(std::uint32_t self, const std::vector<std::uint32_t>& watched, const std::vector<watch_contact>& contacts,
             const transport::deadline& until, lost_handler lost) {
    if (contact_.port == 0) return;
    std::set<std::uint32_t> expected;
    for (const std::uint32_t r : watched) {
      if (contacts[r].port == 0) continue;  // that rank keeps no watch
      if (r > self) add(r, connect_to(self, r, contacts[r], until));
      else expected.insert(r);
    }
    while (!expected.empty()) {
      const std::uint32_t r = accept_one(self, expected, until);
      expected.erase(r);
    }
    ::close(listener_);
    listener_ = -1;
    if (watched_.empty()) return;
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0)
      throw error(errc::bootstrap, fmt::format("the peer watch's pipe: {}", std::strerror(errno)));
    lost_ = std::move(lost);
    thread_ = std::thread([this] { watch(); });
  }

  // Stops watching, then tells every watcher how this rank leaves. In
  // that order: a watcher closes its end on the word, which a watch still
  // running here would take for that watcher's loss.
  void leave(char how) noexcept {
    stop_watching();
    for (const auto& w : watched_)
      if (w.fd >= 0) (void)!::send(w.fd, &how, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    stop();
  }

 private:
  struct connection {
    std::uint32_t rank;
    int fd;
  };
  struct hello {
    std::uint32_t magic, rank;
    std::uint64_t nonce;
  };

  // This machine's IPv4 addresses other than loopback, the interfaces
  // UCX_NET_DEVICES names first (the network the job's traffic uses); on
  // a machine with loopback only, 127.0.0.1: "machines" that differ by
  // their shared memory alone (a private /dev/shm) still share it.
  static std::array<std::uint32_t, 4> addresses() {
    std::vector<std::pair<int, std::uint32_t>> found;  // (preference, address)
    const std::string_view devices = std::getenv("UCX_NET_DEVICES") ? std::getenv("UCX_NET_DEVICES") : "";
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) == 0) {
      for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) ||
            !(i->ifa_flags & IFF_UP))
          continue;
        const std::string_view name = i->ifa_name;
        const bool named = devices.find(name) != std::string_view::npos;
        found.emplace_back(named ? 0 : 1, reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
      }
      ::freeifaddrs(list);
    }
    std::stable_sort(found.begin(), found.end(), [](auto& x, auto& y) { return x.first < y.first; });
    if (found.empty()) found.emplace_back(0, htonl(INADDR_LOOPBACK));
    std::array<std::uint32_t, 4> out{};
    for (std::size_t k = 0; k < out.size() && k < found.size(); ++k) out[k] = found[k].second;
    return out;
  }

  static std::string address_text(std::uint32_t ipv4, std::uint16_t port) {
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &ipv4, text, sizeof text);
    return fmt::format("{}:{}", text, port);
  }

  // Keepalive probes from the first idle second, and the connection
  // dropped once nothing has been acknowledged for the timeout.
  void tune(int fd) const {
    const int on = 1, idle = 1, interval = 1;
    const int count = static_cast<int>(std::ceil(timeout_seconds_)) + 1;
    const unsigned user_timeout = static_cast<unsigned>(std::ceil(timeout_seconds_ * 1000));
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
  }

  // Waits for fd to be ready for `events`, at most until `until`.
  static bool ready(int fd, short events, const transport::deadline& until) {
    for (;;) {
      pollfd p{fd, events, 0};
      const int n = ::poll(&p, 1, 100);
      if (n > 0) return true;
      if (n < 0 && errno != EINTR) return false;
      if (until.passed()) return false;
    }
  }

  int connect_to(std::uint32_t self, std::uint32_t r, const watch_contact& c, const transport::deadline& until) const {
    std::string tried;
    for (const std::uint32_t ip : c.ipv4) {
      if (ip == 0) break;
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(c.port);
      sa.sin_addr.s_addr = ip;
      int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
      if (rc != 0 && errno == EINPROGRESS && ready(fd, POLLOUT, until)) {
        socklen_t len = sizeof rc;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &rc, &len) != 0) rc = errno;
        errno = rc;
      }
      const hello h{hello_magic, self, c.nonce};
      if (rc == 0 && ::send(fd, &h, sizeof h, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof h)) {
        tune(fd);
        return fd;
      }
      tried += fmt::format("{}{} ({})", tried.empty() ? "" : ", ", address_text(ip, c.port),
                           rc == 0 ? "hello not sent" : std::strerror(errno));
      ::close(fd);
    }
    throw error(errc::bootstrap, fmt::format("rank {} cannot reach rank {}'s peer watch at {}", self, r,
                                             tried.empty() ? "no address (it has no network interface)" : tried));
  }

  // The next watched rank below self to connect; strays are dropped.
  std::uint32_t accept_one(std::uint32_t self, const std::set<std::uint32_t>& expected, const transport::deadline& until) {
    for (;;) {
      if (!ready(listener_, POLLIN, until))
        throw error(errc::bootstrap, fmt::format("rank {} waited in vain for its peer watch's connection from "
                                                 "rank {} (of {} expected)",
                                                 self, *expected.begin(), expected.size()));
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      hello h{};
      const transport::deadline soon{std::chrono::seconds(2)};
      if (ready(fd, POLLIN, soon) && ::recv(fd, &h, sizeof h, MSG_WAITALL) == static_cast<ssize_t>(sizeof h) &&
          h.magic == hello_magic && h.nonce == contact_.nonce && expected.count(h.rank)) {
        tune(fd);
        add(h.rank, fd);
        return h.rank;
      }
      ::close(fd);
    }
  }

  void add(std::uint32_t r, int fd) { watched_.push_back({r, fd}); }

  void watch() {
    std::vector<pollfd> fds;
    for (;;) {
      fds.assign(1, pollfd{stop_pipe_[0], POLLIN, 0});
      for (const auto& w : watched_) fds.push_back({w.fd, static_cast<short>(w.fd >= 0 ? POLLIN : 0), 0});
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
      if (fds[0].revents) return;
      for (std::size_t k = 1; k < fds.size(); ++k) {
        if (fds[k].revents == 0) continue;
        connection& w = watched_[k - 1];
        char word = 0;
        const ssize_t n = ::recv(w.fd, &word, 1, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        const int cause = n < 0 ? errno : 0;
        ::close(w.fd);
        w.fd = -1;
        if (n == 1 && (word == said_finished || word == said_failing)) continue;  // it left, and said so
        lost_(w.rank, cause == ETIMEDOUT
                          ? fmt::format("its machine did not answer for {:g} s (DSM_HOST_TIMEOUT): the machine or "
                                        "its network link is down",
                                        timeout_seconds_)
                      : cause != 0 ? fmt::format("its machine reset the connection ({})", std::strerror(cause))
                                   : std::string("its process ended without leaving the job (killed or crashed)"));
      }
    }
  }

  void stop_watching() noexcept {
    if (thread_.joinable()) {
      (void)!::write(stop_pipe_[1], "x", 1);
      thread_.join();
    }
  }

  void stop() noexcept {
    stop_watching();
    for (int& fd : stop_pipe_)
      if (fd >= 0) ::close(fd), fd = -1;
    for (auto& w : watched_)
      if (w.fd >= 0) ::close(w.fd), w.fd = -1;
  }

  double timeout_seconds_;
  int listener_ = -1;
  watch_contact contact_;
  std::vector<connection> watched_;
  int stop_pipe_[2] = {-1, -1};
  lost_handler lost_;
  std::thread thread_;
};

}  // namespace dsm::detail

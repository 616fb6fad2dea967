// A rank's side of dsmrun's connection, kept open for the job's life (see
// detail/rendezvous.hpp): this rank tells dsmrun that it left cleanly or
// that a wait of its gave up (and on whom), and learns from dsmrun that the
// job is ending, or, at the connection's end, that dsmrun is gone. Either
// fails the job on this rank (every wait then throws errc::peer_failure)
// rather than leaving it to a timeout. Without dsmrun (PMIx, alone) it is
// inert.
#pragma once

#include <dsm/detail/rendezvous.hpp>
#include <dsm/error.hpp>
#include <dsm/transport/clock.hpp>
#include <dsm/transport/worker.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>

namespace dsm::detail {

class launcher_link {
 public:
  launcher_link(int fd, transport::worker& w) : fd_(fd), worker_(w) {
    if (fd_ < 0) return;
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    w.watch(fd_, [this] { on_readable(); });
  }
  launcher_link(const launcher_link&) = delete;
  launcher_link& operator=(const launcher_link&) = delete;

  // After the final barrier: this rank finished, whatever its exit code.
  void goodbye() { tell({rendezvous::notice_goodbye, 0, {}}); }
  // A wait for `awaited` (or for no rank in particular) timed out.
  void gave_up(int awaited, const std::string& text) {
    tell({rendezvous::notice_gave_up, awaited < 0 ? rendezvous::notice_no_rank : static_cast<std::uint32_t>(awaited),
          text});
  }
  // This rank's connection to `peer` failed (`how`): dsmrun answers with
  // that rank's fate (see rendezvous::notice_lost_peer).
  void lost_peer(std::uint32_t peer, const std::string& how) { tell({rendezvous::notice_lost_peer, peer, how}); }
  // From here on, the connection's end is this rank's own doing.
  void leaving() noexcept { leaving_ = true; }
  // Whether dsmrun announced the job's end (it needs no report of it).
  bool told_ending() const noexcept { return told_ending_; }

 private:
  // On the thread that found the connection readable (worker::watch: one
  // at a time).
  void on_readable() {
    if (closed_) return;
    std::byte buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        notices_.feed({buf, static_cast<std::size_t>(n)});
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      closed_ = true;  // the end, or an error: dsmrun is gone
      worker_.watch(-1, {});
      if (!leaving_)
        worker_.fail_job(errc::peer_failure, "dsmrun, the launcher, is gone (its connection to this rank closed): "
                                             "the job cannot go on");
      break;
    }
    try {
      while (auto n = notices_.next())
        if (n->kind == rendezvous::notice_ending) {
          told_ending_ = true;
          worker_.fail_job(errc::peer_failure, std::move(n->text),
                           n->rank == rendezvous::notice_no_rank ? transport::no_peer : static_cast<int>(n->rank));
        } else if (n->kind == rendezvous::notice_peer_finished) {
          worker_.withdraw_failure_soon(static_cast<int>(n->rank));
        } else {
          throw error(errc::protocol, fmt::format("dsmrun sent a rank notice kind {}", n->kind));
        }
    } catch (const error& e) {
      worker_.fail_job(errc::protocol, e.message());
    }
  }

  // Small and rare; bounded, so a launcher that stopped reading cannot
  // hold this rank.
  void tell(const rendezvous::notice& n) noexcept {
    if (fd_ < 0 || closed_) return;
    const auto bytes = rendezvous::encode(n);
    const std::lock_guard g{send_mutex_};
    const transport::deadline until{std::chrono::seconds(1)};
    for (std::size_t done = 0; done < bytes.size() && !until.passed();) {
      const ssize_t sent = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent > 0) {
        done += static_cast<std::size_t>(sent);
      } else if (sent < 0 && (errno == EAGAIN || errno == EINTR)) {
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, 10);
      } else {
        return;
      }
    }
  }

  int fd_;
  transport::worker& worker_;
  rendezvous::notice_reader notices_;
  std::mutex send_mutex_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> told_ending_{false};
  std::atomic<bool> leaving_{false};
};

}  // namespace dsm::detail

// One UCP context and one worker per process, and the progress engine that
// drives them: either the caller polls (every wait progresses the worker) or
// a progress thread sleeps on the worker's wakeup fd and progresses it when
// anything arrives, so that a peer's get or atomic is served while this
// process computes (over TCP, UCX 1.13 emulates both in software at the
// target). With a progress thread all calls into UCX are serialized by one
// mutex; without one there is no lock at all.
#pragma once

#include <dsm/transport/clock.hpp>
#include <dsm/transport/status.hpp>
#include <dsm/transport/transport_list.hpp>

#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <ucp/api/ucp.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <string>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>
#include <string_view>
#include <thread>
#include <vector>

namespace dsm::transport {

enum class progress_mode { poll, thread };

constexpr std::string_view to_string(progress_mode m) noexcept {
  return m == progress_mode::poll ? "poll" : "thread";
}

class worker {
 public:
  // `several_callers`: the program calls from more than one thread (one
  // at a time into UCX, as with the progress thread).
  explicit worker(progress_mode mode, bool several_callers = false)
      : mode_(mode), locked_(mode == progress_mode::thread || several_callers) {
    enable_peer_failure_detection();
    ucp_config_t* config = nullptr;
    check(ucp_config_read(nullptr, nullptr, &config), "config_read");
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES;
    params.features = UCP_FEATURE_RMA | UCP_FEATURE_AMO32 | UCP_FEATURE_AMO64 | UCP_FEATURE_AM;
    if (mode == progress_mode::thread) params.features |= UCP_FEATURE_WAKEUP;
    const ucs_status_t init = ucp_init(&params, config, &context_);
    ucp_config_release(config);
    check(init, "init");

    ucp_worker_params_t wp{};
    wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    wp.thread_mode = locked_ ? UCS_THREAD_MODE_SERIALIZED : UCS_THREAD_MODE_SINGLE;
    if (const ucs_status_t s = ucp_worker_create(context_, &wp, &worker_); s != UCS_OK) {
      ucp_cleanup(context_);
      throw_status(s, "worker_create");
    }
  }

  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  ~worker() {
    stop_progress_thread();
    // Endpoints are closed by now, which completes (cancels) what they
    // carried; a request UCX still holds keeps its buffer: leaked, never
    // handed to anyone else.
    for (int round = 0; round < 100 && !quarantined_.empty(); ++round) progress();
    ucp_worker_destroy(worker_);
    ucp_cleanup(context_);
  }

  ucp_context_h context() const noexcept { return context_; }
  // How long any single wait may take (DSM_TIMEOUT).
  std::chrono::duration<double> timeout() const noexcept { return timeout_; }
  void set_timeout(std::chrono::duration<double> t) noexcept { timeout_ = t; }
  ucp_worker_h handle() const noexcept { return worker_; }
  progress_mode mode() const noexcept { return mode_; }
  // Whether more than one thread drives the worker (the progress thread,
  // or the program's threads): then every call into UCX is locked, and
  // handlers may run beside the program's code.
  bool shared_between_threads() const noexcept { return locked_; }

  // The worker's address, an opaque blob peers create endpoints from.
  std::vector<std::byte> address() const {
    ucp_address_t* address = nullptr;
    std::size_t length = 0;
    check(ucp_worker_get_address(worker_, &address, &length), "worker_get_address");
    const auto* bytes = reinterpret_cast<const std::byte*>(address);
    std::vector<std::byte> blob(bytes, bytes + length);
    ucp_worker_release_address(worker_, address);
    return blob;
  }

  // Held around every call into UCX; a no-op with one thread (poll mode).
  class guard {
   public:
    explicit guard(const worker& w) : lock_(w.locked_ ? &w.mutex_ : nullptr) {
      if (lock_) lock_->lock();
    }
    ~guard() {
      if (lock_) lock_->unlock();
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;

   private:
    std::recursive_mutex* lock_;
  };
  guard lock() const { return guard{*this}; }

  // From the program's thread (the progress thread stands aside while the
  // program keeps calling this; see polling_scope).
  unsigned progress() {
    if (mode_ == progress_mode::thread) program_waits_.fetch_add(1, std::memory_order_relaxed);
    const guard g{*this};
    const unsigned events = ucp_worker_progress(worker_);
    if (!quarantined_.empty()) reap_quarantined();
    return events;
  }

  // A request whose waiter gave up (a timeout): UCX may still complete it
  // into `buffer` (a late reply), so neither is reused before it does. The
  // worker frees both once UCX is done, whichever thread progresses; they
  // are never waited on again.
  struct abandoned {
    void* request;
    void* buffer;                        // may be null
    void (*dispose)(void*) noexcept;     // frees `buffer`
  };
  void quarantine(abandoned a) {
    const guard g{*this};
    quarantined_.push_back(a);
  }
  std::size_t quarantined() const {
    const guard g{*this};
    return quarantined_.size();
  }

  // ---- the job's health ------------------------------------------------
  //
  // Once a peer has failed, or a wait ran out of time (a rank stopped
  // answering), the job is failed: every wait from then on throws that
  // error at once, so that unwinding and destructors add no timeouts of
  // their own. The first failure is kept.
  // `culprit`: the rank that failed or did not answer, if one is known.
  void fail_job(errc category, std::string message, int culprit = no_peer) {
    {
      const std::lock_guard g{failure_mutex_};
      if (failed_.load(std::memory_order_relaxed)) return;
      failure_category_ = category;
      failure_message_ = message;
      soon_.reset();
      failed_.store(true, std::memory_order_release);
    }
    if (on_failure_) on_failure_(category, message, culprit);
  }
  // A failure that takes effect `delay` from now unless another comes
  // first (a peer's death seen by UCX, when the launcher may yet say how
  // it died).
  void fail_job_soon(errc category, std::string message, int culprit, std::chrono::milliseconds delay) {
    const std::lock_guard g{failure_mutex_};
    if (failed_.load(std::memory_order_relaxed) || soon_) return;
    soon_ = {category, std::move(message), culprit, clock_type::now() + delay};
  }
  // The failure due soon that blames `culprit` does not happen (the
  // launcher said that rank finished).
  void withdraw_failure_soon(int culprit) {
    const std::lock_guard g{failure_mutex_};
    if (soon_ && soon_->culprit == culprit) soon_.reset();
  }
  bool job_failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  // What kind of failure it is (peer_failure: learnt from elsewhere).
  errc failure_category() const {
    const std::lock_guard g{failure_mutex_};
    return failure_category_;
  }
  // The failure's text ("" while the job is healthy).
  std::string failure() const {
    const std::lock_guard g{failure_mutex_};
    return failed_.load(std::memory_order_relaxed) ? failure_message_ : std::string();
  }
  [[noreturn, gnu::cold, gnu::noinline]] void throw_failure() const {
    const std::lock_guard g{failure_mutex_};
    throw error(failure_category_, failure_message_);
  }
  // For tests that time a wait out on purpose and go on.
  void clear_failure() {
    const std::lock_guard g{failure_mutex_};
    failed_.store(false, std::memory_order_release);
    failure_message_.clear();
    soon_.reset();
  }
  // Told of the job's failure, once: its category, text and culprit (for
  // a wait that timed out, the rank awaited).
  using failure_handler = std::function<void(errc, const std::string&, int culprit)>;
  void on_failure(failure_handler f) { on_failure_ = std::move(f); }

  // A descriptor watched while the program waits and by the progress
  // thread (the launcher's connection): on_readable runs when it is, on
  // one thread at a time, without the worker lock.
  // watch(-1, {}) from inside on_readable stops watching.
  void watch(int fd, std::function<void()> on_readable) {
    if (fd >= 0) on_readable_ = std::move(on_readable);
    watched_fd_.store(fd, std::memory_order_release);
  }

  // Progresses until done() holds; past `limit`, a dsm::error naming what
  // describe() returns (called only then, so waiting formats nothing) and
  // `awaited`, the rank that did not answer, if one did not. A failed job
  // fails the wait at once. Yields the CPU after a run of idle rounds:
  // ranks often outnumber cores.
  template <class Done, class Describe>
  void wait_until(Done&& done, std::chrono::duration<double> limit, Describe&& describe, int awaited = no_peer) {
    if (done()) return;
    if (job_failed()) [[unlikely]] throw_failure();
    const polling_scope polling{*this};
    const awaiting_scope awaiting{*this, awaited};
    const deadline until{limit};
    for (unsigned idle = 0;;) {
      idle = progress() ? 0 : idle + 1;
      if (wait_hook_armed_.load(std::memory_order_relaxed)) [[unlikely]] run_wait_hook();
      if (done()) return;
      if (idle >= 64) {
        idle = 0;
        look_at_watched();
        if (job_failed()) throw_failure();
        if (until.passed()) expire(until, describe(), awaited);
        sched_yield();
      }
    }
  }

  // progress(), then the wait hook if armed (dsm::progress(): a program's
  // own polling serves what its waits would).
  unsigned progress_and_serve() {
    const unsigned events = progress();
    if (wait_hook_armed_.load(std::memory_order_relaxed)) run_wait_hook();
    return events;
  }

  // Runs during every wait on this thread while armed (the runtime's
  // non-blocking collectives); not within itself.
  void on_wait(std::function<void()> hook) { wait_hook_ = std::move(hook); }
  void arm_wait_hook(bool armed) noexcept { wait_hook_armed_.store(armed, std::memory_order_relaxed); }

  // Whether the watched descriptor has something, at most every few
  // milliseconds (a system call).
  // Also where a failure due soon takes effect.
  void look_at_watched() {
    const auto now = clock_type::now();
    // One waiting thread a round looks (several wait under threads::multiple).
    auto look_at = next_look_.load(std::memory_order_relaxed);
    if (now < look_at ||
        !next_look_.compare_exchange_strong(look_at, now + std::chrono::milliseconds(5), std::memory_order_relaxed))
      return;
    if (const int fd = watched_fd_.load(std::memory_order_acquire); fd >= 0) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) serve_watched();
    }
    std::optional<soon_failure> due;
    {
      const std::lock_guard g{failure_mutex_};
      if (soon_ && now >= soon_->at) due = std::exchange(soon_, std::nullopt);
    }
    if (due) fail_job(due->category, std::move(due->message), due->culprit);
  }

  void start_progress_thread() {
    if (mode_ != progress_mode::thread || progress_thread_.joinable()) return;
    int fd = -1;
    check(ucp_worker_get_efd(worker_, &fd), "worker_get_efd");
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (stop_fd_ < 0) throw error(errc::internal, "eventfd for the progress thread failed");
    progress_thread_ = std::thread([this, fd] { run_progress_thread(fd); });
  }

  void stop_progress_thread() {
    if (!progress_thread_.joinable()) return;
    stopping_.store(true, std::memory_order_release);
    const std::uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(stop_fd_, &one, sizeof one);
    progress_thread_.join();
    ::close(stop_fd_);
    stop_fd_ = -1;
  }

 private:
  // While the program's thread polls inside a wait, the progress thread
  // stands aside: two threads taking turns on one worker (and the one
  // that was woken paying the wake-up) double a round trip's latency. It
  // serves the worker again once the program has stayed out of dsm's waits
  // for a nap (computing), so a computing rank is still served.
  class polling_scope {
   public:
    explicit polling_scope(worker& w) noexcept : w_(w.mode_ == progress_mode::thread ? &w : nullptr) {
      if (w_) w_->program_polling_.fetch_add(1, std::memory_order_acq_rel);
    }
    ~polling_scope() {
      if (w_) {
        w_->program_waits_.fetch_add(1, std::memory_order_relaxed);
        w_->program_polling_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
    polling_scope(const polling_scope&) = delete;
    polling_scope& operator=(const polling_scope&) = delete;

   private:
    worker* w_;
  };

  // Worker lock held.
  void reap_quarantined() noexcept {
    std::erase_if(quarantined_, [](const abandoned& a) {
      if (ucp_request_check_status(a.request) == UCS_INPROGRESS) return false;
      ucp_request_free(a.request);
      if (a.buffer != nullptr) a.dispose(a.buffer);
      return true;
    });
  }

  // The rank the program's thread waits for now, if any: a failure that
  // arrives meanwhile is reported with it (the news of a peer's failure
  // may come from a rank that gave up, while this one was stuck on another).
  class awaiting_scope {
   public:
    awaiting_scope(worker& w, int awaited) noexcept : w_(w), outer_(w.awaited_.exchange(awaited)) {}
    ~awaiting_scope() { w_.awaited_.store(outer_); }
    awaiting_scope(const awaiting_scope&) = delete;
    awaiting_scope& operator=(const awaiting_scope&) = delete;

   private:
    worker& w_;
    int outer_;
  };

 public:
  // See awaiting_scope (no_peer outside a wait).
  int awaited_now() const noexcept { return awaited_.load(); }

 private:
  [[noreturn]] void expire(const deadline& until, std::string what, int awaited) {
    try {
      until.expire(what);
    } catch (const error& e) {
      fail_job(errc::timeout, e.message(), awaited);
      throw;
    }
  }

  void run_wait_hook() {
    // Not within itself on one thread; threads of a rank each have their own.
    static thread_local bool in_wait_hook = false;
    if (in_wait_hook || !wait_hook_) return;
    in_wait_hook = true;
    try {
      wait_hook_();
    } catch (...) {
      in_wait_hook = false;
      throw;
    }
    in_wait_hook = false;
  }


  void serve_watched() {
    const std::unique_lock g{watch_mutex_, std::try_to_lock};
    if (g.owns_lock() && on_readable_) on_readable_();
  }

  // UCX reports a peer that died (its endpoint's error callback) only with
  // error handling enabled; shared-memory transports then check that the
  // peer's process still exists, at every keepalive round. Set here, unless
  // the user set them, before UCX reads its configuration.
  static void enable_peer_failure_detection() {
    if (may_use_shared_memory(std::getenv("UCX_TLS"))) ::setenv("UCX_MM_ERROR_HANDLING", "y", 0);
    ::setenv("UCX_KEEPALIVE_INTERVAL", "500ms", 0);
  }
  // Whether UCX_TLS leaves UCX its shared-memory transports (else it warns
  // of their settings as unused).
  static bool may_use_shared_memory(const char* tls) { return transport_list(tls).allows_shared_memory(); }

  void run_progress_thread(int worker_fd) {
    pollfd fds[3] = {{worker_fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}, {-1, POLLIN, 0}};
    // The program's waits as of this thread's last look: kept across
    // wake-ups, so that a program computing outside dsm is served at once
    // (not after a nap per event).
    std::uint64_t seen = program_waits_.load(std::memory_order_relaxed);
    for (;;) {
      // The program's thread is polling, or was a moment ago: it serves
      // what arrives. Naps rather than a notification, so that leaving a
      // wait costs the program nothing.
      for (;;) {
        const std::uint64_t waits = program_waits_.load(std::memory_order_relaxed);
        if (program_polling_.load(std::memory_order_acquire) == 0 && waits == seen) break;
        seen = waits;
        if (stopping_.load(std::memory_order_acquire)) return;
        std::this_thread::sleep_for(stand_aside_nap);
      }
      if (stopping_.load(std::memory_order_acquire)) return;
      ucs_status_t armed;
      {
        const guard g{*this};
        while (ucp_worker_progress(worker_) != 0) {
        }
        if (!quarantined_.empty()) reap_quarantined();
        armed = ucp_worker_arm(worker_);
      }
      if (armed == UCS_ERR_BUSY) continue;  // events arrived meanwhile
      // The timeout bounds how long an event that raced with arming can
      // wait; the main thread progresses during its own waits anyway.
      fds[2].fd = watched_fd_.load(std::memory_order_acquire);
      ::poll(fds, fds[2].fd >= 0 ? 3 : 2, 100);
      if (fds[1].revents & POLLIN) return;
      if (fds[2].fd >= 0 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) serve_watched();
    }
  }

  progress_mode mode_;
  bool locked_;
  std::chrono::duration<double> timeout_{120.0};
  std::function<void()> wait_hook_;
  std::atomic<bool> wait_hook_armed_{false};
  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  mutable std::recursive_mutex mutex_;  // a message handler, run inside progress, may send
  std::thread progress_thread_;
  int stop_fd_ = -1;
  std::vector<abandoned> quarantined_;  // under the worker lock
  std::atomic<int> program_polling_{0};         // waits of the program's thread in progress
  std::atomic<std::uint64_t> program_waits_{0};  // waits it has finished
  std::atomic<bool> stopping_{false};
  std::atomic<bool> failed_{false};
  std::atomic<int> awaited_{no_peer};
  mutable std::mutex failure_mutex_;
  errc failure_category_ = errc::peer_failure;
  std::string failure_message_;
  struct soon_failure {
    errc category;
    std::string message;
    int culprit;
    clock_type::time_point at;
  };
  std::optional<soon_failure> soon_;  // under failure_mutex_
  failure_handler on_failure_;
  std::atomic<int> watched_fd_{-1};
  std::function<void()> on_readable_;
  std::mutex watch_mutex_;
  std::atomic<clock_type::time_point> next_look_{};
  static constexpr std::chrono::microseconds stand_aside_nap{200};
};

}  // namespace dsm::transport

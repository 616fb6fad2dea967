// dsm::runtime and the job-wide operations every program uses: rank(),
// ranks(), barrier(), fence(), progress(). The collectives are in
// dsm/collectives.hpp.
#pragma once

#include <dsm/error.hpp>
#include <dsm/operators.hpp>
#include <dsm/runtime/rank_lock.hpp>
#include <dsm/runtime/state.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace dsm {

namespace detail {
inline runtime_state*& current_runtime() noexcept {
  static runtime_state* rt = nullptr;
  return rt;
}
// A number per dsm::runtime of the process (0: none now), recorded by
// objects that must not outlive theirs.
inline std::uint64_t& runtimes_made() noexcept {
  static std::uint64_t made = 0;
  return made;
}
inline std::uint64_t current_runtime_number() noexcept { return current_runtime() ? runtimes_made() : 0; }
// An object destroyed after its runtime ended: its memory, keys and
// messages went with the runtime, so nothing it could do is safe; a
// destructor cannot throw, so it says what happened and ends the process
// (std::thread destroyed unjoined does the same) rather than touch freed state.
[[noreturn, gnu::cold, gnu::noinline]] inline void outlived_its_runtime(const std::string& object) noexcept {
  std::fprintf(stderr,
               "dsm: %s was destroyed after the dsm::runtime it was made under ended: destroy arrays before the "
               "runtime (their memory went with it); ending the process\n",
               object.c_str());
  std::fflush(stderr);
  std::abort();
}
[[noreturn, gnu::cold, gnu::noinline]] inline void throw_no_runtime() {
  throw error(errc::invalid_argument, "no dsm::runtime: construct one at the start of main");
}
// dsm's thread model. By default (threads::single) the thread that
// constructed dsm::runtime is the one that calls dsm (its progress thread,
// if any, is dsm's own); the rank's state (caches, open collectives,
// pending requests) is not locked, so a call from any other thread is
// refused rather than left to race. Under threads::multiple any thread
// calls, each call holding the rank lock (rank_lock.hpp).
constinit inline thread_local bool on_runtime_thread = false;
[[noreturn, gnu::cold, gnu::noinline]] inline void throw_other_thread() {
  throw error(errc::contract_violation,
              "dsm called from a thread other than the one that constructed dsm::runtime: one thread per rank "
              "calls dsm unless the runtime is built with dsm::threads::multiple (docs/guide/runtime.md: Threads)");
}
// On every transfer's path: three loads and three tests, the throws out of
// line. The entry, a temporary, holds the rank lock (threads::multiple)
// until the end of the caller's full expression: `rt().barrier()` runs
// under it.
[[gnu::always_inline]] inline runtime_state& rt(const rank_entry& = rank_entry{}) {
  runtime_state* r = current_runtime();
  if (r == nullptr) [[unlikely]] throw_no_runtime();
  if (!on_runtime_thread && !multithreaded) [[unlikely]] throw_other_thread();
  return *r;
}
}  // namespace detail

namespace detail {
// A process that exits (std::exit, or main returning while the runtime is
// a static) with its runtime alive tells its peers, which would otherwise
// wait for it until their waits time out.
inline void leave_at_exit() noexcept {
  if (runtime_state* r = current_runtime())
    r->leave(leaving_failed, "it exited (std::exit) while its dsm::runtime was still alive");
}

// Every line a rank prints reaches the launcher (a pipe) as it is printed:
// a rank ended by a signal, or by the launcher after another rank failed,
// loses none of its finished lines in a full stdio buffer.
inline void line_buffer_piped_stdout() noexcept {
  struct stat st {};
  if (::fstat(STDOUT_FILENO, &st) == 0 && S_ISFIFO(st.st_mode)) std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);
}
}  // namespace detail

// Who may call dsm: the thread that built the runtime (single), or any
// thread of the rank (multiple; see docs/guide/runtime.md: Threads).
enum class threads { single, multiple };

// RAII: joins the job (dsmrun rendezvous, PMIx, or alone) on construction;
// on destruction, a final barrier, then every resource is released. Under
// threads::multiple every other thread's calls into dsm are over before
// it is destroyed.
class runtime {
 public:
  runtime() : runtime(0, nullptr) {}
  runtime(int /*argc*/, char** /*argv*/, threads model = threads::single) {
    if (detail::current_runtime() != nullptr) throw error(errc::invalid_argument, "a dsm::runtime exists already");
    if (model != threads::single && model != threads::multiple)
      throw error(errc::invalid_argument, fmt::format("dsm::runtime: thread model {}: expected dsm::threads::single "
                                                      "or multiple", static_cast<int>(model)));
    detail::line_buffer_piped_stdout();
    detail::multithreaded = model == threads::multiple;  // before the worker is made: it locks then
    try {
      state_ = std::make_unique<detail::runtime_state>(detail::settings::from_environment());
    } catch (...) {
      detail::multithreaded = false;
      throw;
    }
    ++detail::runtimes_made();
    detail::current_runtime() = state_.get();
    detail::on_runtime_thread = true;
    state_->open_for_rpcs();
    static const bool registered = std::atexit(&detail::leave_at_exit) == 0;
    (void)registered;
  }
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;
  ~runtime() {
    state_.reset();
    detail::current_runtime() = nullptr;
    detail::on_runtime_thread = false;
    detail::multithreaded = false;
  }

  // "dsmrun", "pmix" or "singleton".
  const std::string& bootstrap_method() const noexcept { return state_->bootstrap_method(); }
  transport::progress_mode progress() const noexcept { return state_->worker().mode(); }
  threads thread_model() const noexcept { return detail::multithreaded ? threads::multiple : threads::single; }

 private:
  std::unique_ptr<detail::runtime_state> state_;
};

inline int rank() { return static_cast<int>(detail::rt().rank()); }
inline int ranks() { return static_cast<int>(detail::rt().ranks()); }
// This rank's counters (what DSM_STATS=1 prints at exit), now.
inline rank_stats stats() { return detail::rt().stats_snapshot(); }
inline void barrier() { detail::rt().barrier(); }
// Whether the job's ranks run more than one ISA (x86-64 and arm64
// processes, say); shared arrays then check each element type's layout.
inline bool mixed_isa() { return detail::rt().mixed_isa(); }
inline void fence() { detail::rt().fence(); }
// Lets the runtime serve what has arrived (remote writes over TCP, messages).
// For code that polls its own memory for a peer's write.
// Also runs the RPCs that arrived for this rank.
inline void progress() { detail::rt().progress(); }

template <class T>
concept collective_value = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T>;

}  // namespace dsm

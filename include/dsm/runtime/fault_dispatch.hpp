// The process's SIGSEGV handler for global regions: a fault inside a
// registered address range goes to its region (fault_target), any other
// to whatever handled SIGSEGV before (by default the program's own
// segmentation fault, as if dsm were not there).
//
// The faults are synchronous: the program's thread stopped at a load or
// store of region memory, never inside dsm or UCX (dsm reads and writes
// region pages only through a second mapping that is never protected), so
// serving the fault with ordinary code, locks and transfers is the same as
// a function call at that point.
#pragma once

#include <dsm/transport/signals.hpp>

#include <signal.h>
#include <ucontext.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>

namespace dsm::detail {

enum class fault_access : std::uint8_t { read, write, unknown };

class fault_target {
 public:
  // Serves a fault at `address` (inside the target's range); returns only
  // once the access can be retried. Ends the process, with a message, when
  // it cannot be served.
  virtual void on_fault(std::byte* address, fault_access access) noexcept = 0;

 protected:
  ~fault_target() = default;
};

class fault_dispatch {
 public:
  static constexpr std::size_t max_ranges = 64;

  // Where a fault at `address` goes from now on; false when every entry is
  // taken. Installs the handler at the first call.
  static bool add(std::byte* begin, std::byte* end, fault_target* target) {
    auto& d = instance();
    const std::lock_guard g{d.mutex_};
    d.install();
    for (auto& r : d.ranges_) {
      if (r.target.load(std::memory_order_relaxed) != nullptr) continue;
      r.begin.store(reinterpret_cast<std::uintptr_t>(begin), std::memory_order_relaxed);
      r.end.store(reinterpret_cast<std::uintptr_t>(end), std::memory_order_relaxed);
      r.target.store(target, std::memory_order_release);
      return true;
    }
    return false;
  }
  static void remove(fault_target* target) noexcept {
    auto& d = instance();
    const std::lock_guard g{d.mutex_};
    for (auto& r : d.ranges_)
      if (r.target.load(std::memory_order_relaxed) == target) {
        r.target.store(nullptr, std::memory_order_release);
        r.begin.store(0, std::memory_order_relaxed);
        r.end.store(0, std::memory_order_relaxed);
      }
  }

  // What the CPU says the access was, where it says it: x86-64's page-fault
  // error code, arm64's ESR record in the signal frame; unknown otherwise
  // (the region then infers it from the page's state).
  static fault_access access_of(const void* context) noexcept {
#if defined(__x86_64__)
    const auto* uc = static_cast<const ucontext_t*>(context);
    return (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0 ? fault_access::write : fault_access::read;
#elif defined(__aarch64__)
    const auto* uc = static_cast<const ucontext_t*>(context);
    const auto* p = reinterpret_cast<const unsigned char*>(uc->uc_mcontext.__reserved);
    const auto* end = p + sizeof uc->uc_mcontext.__reserved;
    constexpr std::uint32_t esr_magic = 0x45535201;
    while (p + 8 <= end) {
      std::uint32_t magic, size;
      std::memcpy(&magic, p, 4);
      std::memcpy(&size, p + 4, 4);
      if (magic == 0 || size < 8) break;
      if (magic == esr_magic && size >= 16) {
        std::uint64_t esr;
        std::memcpy(&esr, p + 8, 8);
        const unsigned ec = static_cast<unsigned>(esr >> 26) & 0x3f;
        if (ec == 0x24 || ec == 0x25) return (esr & (1u << 6)) != 0 ? fault_access::write : fault_access::read;
        return fault_access::unknown;
      }
      p += size;
    }
    return fault_access::unknown;
#else
    (void)context;
    return fault_access::unknown;
#endif
  }

 private:
  struct range {
    std::atomic<std::uintptr_t> begin{0}, end{0};
    std::atomic<fault_target*> target{nullptr};
  };

  static fault_dispatch& instance() {
    static fault_dispatch d;
    return d;
  }

  void install() {
    if (installed_) return;
    // UCX's handler would take a region's faults for crashes; faults
    // outside every region reach the handler UCX found.
    transport::take_back_segv_from_ucx();
    struct sigaction a {};
    a.sa_sigaction = &on_signal;
    a.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&a.sa_mask);
    ::sigaction(SIGSEGV, &a, &previous_);
    installed_ = true;
  }

  static void on_signal(int sig, siginfo_t* info, void* context) {
    const int saved_errno = errno;
    auto& d = instance();
    const auto address = reinterpret_cast<std::uintptr_t>(info->si_addr);
    for (auto& r : d.ranges_) {
      fault_target* t = r.target.load(std::memory_order_acquire);
      if (t == nullptr) continue;
      if (address >= r.begin.load(std::memory_order_relaxed) && address < r.end.load(std::memory_order_relaxed)) {
        t->on_fault(static_cast<std::byte*>(info->si_addr), access_of(context));
        errno = saved_errno;
        return;
      }
    }
    errno = saved_errno;
    d.pass_on(sig, info, context);
  }

  // Not a region's: the handler before dsm's takes it; with none (or an
  // ignored SIGSEGV, which the kernel cannot honour for a fault), the
  // default action: returning retries the access, which ends the process
  // as it would have without dsm.
  void pass_on(int sig, siginfo_t* info, void* context) {
    if ((previous_.sa_flags & SA_SIGINFO) != 0 && previous_.sa_sigaction != nullptr)
      return previous_.sa_sigaction(sig, info, context);
    if (previous_.sa_handler != SIG_DFL && previous_.sa_handler != SIG_IGN) return previous_.sa_handler(sig);
    struct sigaction a {};
    a.sa_handler = SIG_DFL;
    sigemptyset(&a.sa_mask);
    ::sigaction(SIGSEGV, &a, nullptr);
  }

  std::mutex mutex_;
  bool installed_ = false;
  struct sigaction previous_ {};
  range ranges_[max_ranges];
};

}  // namespace dsm::detail

// The rank lock of dsm::threads::multiple: one lock per process that every
// call into dsm holds while it touches the rank's state (caches, open
// collectives, requests), taken again freely by its holder (a call inside
// a call). A wait for what another rank's *program* must do (a barrier or
// collective, a flag, a lock's hand-over) gives it up entirely while it
// waits and takes it back after, so that the rank's other threads go on:
// one thread in a barrier never stops another's put. Waits for what only
// the network or a peer's dsm serves (a transfer, a coherence reply) keep
// it. In the default mode (threads::single) nothing is locked.
#pragma once

#include <atomic>
#include <mutex>
#include <thread>

namespace dsm::detail {

class rank_lock {
 public:
  void lock() {
    const auto me = std::this_thread::get_id();
    if (owner_.load(std::memory_order_relaxed) == me) {
      ++depth_;
      return;
    }
    mutex_.lock();
    owner_.store(me, std::memory_order_relaxed);
    depth_ = 1;
  }
  bool try_lock() {
    const auto me = std::this_thread::get_id();
    if (owner_.load(std::memory_order_relaxed) == me) {
      ++depth_;
      return true;
    }
    if (!mutex_.try_lock()) return false;
    owner_.store(me, std::memory_order_relaxed);
    depth_ = 1;
    return true;
  }
  void unlock() {
    if (--depth_ != 0) return;
    owner_.store(std::thread::id{}, std::memory_order_relaxed);
    mutex_.unlock();
  }
  bool held_here() const noexcept { return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id(); }

  // Gives the lock up, however deep this thread holds it; returns the
  // depth to take it back at (0: this thread did not hold it).
  unsigned give_up() {
    if (!held_here()) return 0;
    const unsigned depth = depth_;
    depth_ = 0;
    owner_.store(std::thread::id{}, std::memory_order_relaxed);
    mutex_.unlock();
    return depth;
  }
  void take_back(unsigned depth) {
    if (depth == 0) return;
    mutex_.lock();
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    depth_ = depth;
  }

 private:
  std::mutex mutex_;
  std::atomic<std::thread::id> owner_{};  // read unlocked by other threads: only "is it me" is asked
  unsigned depth_ = 0;                    // the owner's alone
};

// Whether this process runs dsm::threads::multiple (set by dsm::runtime
// before any other thread can call dsm), and its lock.
constinit inline bool multithreaded = false;
inline rank_lock& the_rank_lock() noexcept {
  static rank_lock l;
  return l;
}

// Held for the life of one call into dsm, in threads::multiple only: one
// load and a branch otherwise.
class rank_entry {
 public:
  [[gnu::always_inline]] rank_entry() {
    if (multithreaded) [[unlikely]] enter();
  }
  [[gnu::always_inline]] ~rank_entry() {
    if (held_) [[unlikely]] held_->unlock();
  }
  rank_entry(const rank_entry&) = delete;
  rank_entry& operator=(const rank_entry&) = delete;

 private:
  [[gnu::noinline]] void enter() {
    held_ = &the_rank_lock();
    held_->lock();
  }
  rank_lock* held_ = nullptr;
};

// A wait for other ranks' programs: the rank lock is given up while it
// lasts (threads::multiple), nothing otherwise.
class waiting_for_peers {
 public:
  waiting_for_peers() {
    if (multithreaded) [[unlikely]] depth_ = the_rank_lock().give_up();
  }
  ~waiting_for_peers() {
    if (depth_ != 0) [[unlikely]] the_rank_lock().take_back(depth_);
  }
  waiting_for_peers(const waiting_for_peers&) = delete;
  waiting_for_peers& operator=(const waiting_for_peers&) = delete;

 private:
  unsigned depth_ = 0;
};

}  // namespace dsm::detail

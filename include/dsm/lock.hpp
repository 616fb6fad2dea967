// dsm::queue_lock (also spelled dsm::lock): a distributed MCS queue lock on remote atomics. Constructed and
// destroyed collectively, over every rank or over a team (whose members
// alone may take it). lock() is an acquire and unlock() a release (all
// of this rank's puts are complete at their targets before the next holder
// gets the lock); waiters queue in arrival order, so no rank starves. Each
// waiter spins on its own queue node, homed on itself.
#pragma once

#include <dsm/allocate.hpp>
#include <dsm/rma.hpp>
#include <dsm/runtime/runtime.hpp>
#include <dsm/team.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <vector>

namespace dsm {

class queue_lock;
namespace detail {
// Tests only: the queue's tail (team rank + 1 of the last rank to queue; 0
// when free), so a test can queue ranks in a known order without sleeps.
struct lock_queue_probe {
  static std::uint64_t tail(const queue_lock& l);
};
}  // namespace detail

class queue_lock {
  friend struct detail::lock_queue_probe;

  // Per member: tail (used on team rank 0 only), locked flag, successor
  // (team rank + 1; 0 = none).
  static constexpr std::size_t tail_word = 0, locked_word = 1, next_word = 2, words = 3;

 public:
  queue_lock() : queue_lock(world()) {}
  explicit queue_lock(const team& t)
      : team_(t), nodes_(allocate_collective<std::uint64_t>(t, words)), me_(static_cast<std::uint64_t>(t.rank())) {}
  queue_lock(const queue_lock&) = delete;
  queue_lock& operator=(const queue_lock&) = delete;
  // Collective, except while an exception unwinds or in a failed job (see
  // ~shared_array): then the nodes stay mapped until the runtime ends.
  ~queue_lock() {
    if (std::uncaught_exceptions() > uncaught_at_construction_ || detail::rt().job_failed()) return;
    try {
      barrier(team_);  // nobody queues on a node that is about to go
      deallocate(nodes_[me_]);
    } catch (const std::exception& e) {
      fmt::print(stderr, "dsm: rank {}: destroying a lock: {}\n", me_, e.what());
    }
  }

  // Under threads::multiple the rank's threads first take turns on a local
  // mutex (the rank has one queue node), waiting without the rank lock.
  void lock() {
    const detail::rank_entry entry;
    if (detail::multithreaded) {
      const detail::waiting_for_peers away;
      local_turn_.lock();
    }
    try {
      acquire();
    } catch (...) {
      if (detail::multithreaded) local_turn_.unlock();
      throw;
    }
  }

  bool try_lock() {
    const detail::rank_entry entry;
    if (detail::multithreaded && !local_turn_.try_lock()) return false;
    init_own_node();
    if (atomic_compare_exchange(tail(), 0, me_ + 1).wait() != 0) {
      if (detail::multithreaded) local_turn_.unlock();
      return false;
    }
    on_acquired();
    return true;
  }

  void unlock() {
    const detail::rank_entry entry;
    hand_over();
    if (detail::multithreaded) local_turn_.unlock();
  }

 private:
  void hand_over() {
    detail::rt().release();
    if (own(next_word).load(std::memory_order_acquire) == 0) {
      if (atomic_compare_exchange(tail(), me_ + 1, 0).wait() == me_ + 1) return;  // nobody waiting
      // A successor swapped itself in but has not linked yet.
      wait_own(next_word, [](std::uint64_t v) { return v != 0; }, "its successor to link in (unlock)");
    }
    const std::uint64_t successor = own(next_word).load(std::memory_order_acquire) - 1;
    atomic_store(nodes_[successor] + locked_word, 0).wait();
  }

  void acquire() {
    init_own_node();
    const std::uint64_t predecessor = atomic_exchange(tail(), me_ + 1).wait();
    if (predecessor != 0) {
      atomic_store(nodes_[predecessor - 1] + next_word, me_ + 1).wait();
      wait_own(locked_word, [](std::uint64_t v) { return v == 0; }, "the lock to be handed over (lock)");
    }
    on_acquired();
  }

  // Serve pending requests before queueing: a rank whose own lock traffic
  // completes at once (the tail homed on it, over the self transport) would
  // otherwise never progress its worker, and over TCP a peer's emulated swap
  // on the tail would wait behind all of this rank's acquisitions.
  void init_own_node() {
    detail::rt().worker().progress();
    own(next_word).store(0, std::memory_order_relaxed);
    own(locked_word).store(1, std::memory_order_release);
  }

  void on_acquired() {
    detail::rt().acquire();
    ++detail::rt().stats().locks;
  }

  global_ptr<std::uint64_t> tail() const { return nodes_[0] + tail_word; }

  std::atomic_ref<std::uint64_t> own(std::size_t word) const {
    return std::atomic_ref<std::uint64_t>(*(nodes_[me_] + static_cast<std::ptrdiff_t>(word)).local());
  }

  // Peers write our node (through UCX: directly over shared memory, through
  // our worker over TCP), so waiting progresses the worker.
  template <class Done>
  void wait_own(std::size_t word, Done done, const char* what) {
    auto cell = own(word);
    const detail::waiting_for_peers away;  // a hand-over waits for another rank's program
    detail::rt().worker().wait_until([&] { return done(cell.load(std::memory_order_acquire)); },
                                     detail::rt().worker().timeout(),
                                     [&] { return fmt::format("{} on rank {}", what, team_.world_rank(static_cast<int>(me_))); });
  }

  team team_;
  std::mutex local_turn_;  // threads::multiple: which of the rank's threads queues
  std::vector<global_ptr<std::uint64_t>> nodes_;
  std::uint64_t me_;  // this rank's place in team_
  int uncaught_at_construction_ = std::uncaught_exceptions();
};

// The name programs use: `dsm::lock l; std::scoped_lock g(l);` (a class
// cannot be named lock and have a member lock()).
using lock = queue_lock;

inline std::uint64_t detail::lock_queue_probe::tail(const queue_lock& l) { return rget(l.tail()).wait(); }

}  // namespace dsm

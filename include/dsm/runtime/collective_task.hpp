// A collective operation as a coroutine: its algorithm is written as the
// sequence of sends and receives it is (`co_await call.receive(from,
// round)`), and a driver resumes it whenever the message it waits for has
// arrived. Blocking collectives drive one to its end; non-blocking ones
// hand it to a future and the runtime advances it during every wait of
// this rank, so that ranks calling the same collectives in the same order
// never wait on each other's unadvanced operations.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace dsm::detail {

// Which collective a message belongs to: a barrier's message never
// satisfies an allgather, and a rank that finds a peer in another
// collective at the same point says so.
enum class collective_kind : std::uint64_t {
  synchronize = 1, allgather, broadcast, exchange, reduce, gather, scatter, allreduce, scan,
};
inline constexpr std::uint64_t last_collective_kind = static_cast<std::uint64_t>(collective_kind::scan);
constexpr const char* to_string(collective_kind k) noexcept {
  switch (k) {
    case collective_kind::synchronize: return "barrier";
    case collective_kind::allgather: return "allgather";
    case collective_kind::broadcast: return "broadcast";
    case collective_kind::exchange: return "alltoall";
    case collective_kind::reduce: return "reduce";
    case collective_kind::gather: return "gather";
    case collective_kind::scatter: return "scatter";
    case collective_kind::allreduce: return "allreduce";
    case collective_kind::scan: return "scan";
  }
  return "an unknown collective";
}

// A message a suspended collective waits for.
class collective_awaited {
 public:
  // Takes the message if it is there (throws errc::collective_mismatch if
  // the peer is in another collective at this point).
  virtual bool arrived() = 0;
  virtual std::string describe() const = 0;
  virtual int peer() const = 0;  // the world rank it comes from

 protected:
  ~collective_awaited() = default;
};

class collective_task {
 public:
  struct promise_type {
    collective_awaited* awaiting = nullptr;
    std::exception_ptr failure;
    collective_task get_return_object() noexcept {
      return collective_task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { failure = std::current_exception(); }
  };
  using handle = std::coroutine_handle<promise_type>;

  collective_task() = default;
  collective_task(collective_task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  collective_task& operator=(collective_task&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  collective_task(const collective_task&) = delete;
  collective_task& operator=(const collective_task&) = delete;
  ~collective_task() {
    if (h_) h_.destroy();
  }

  // Runs as far as the arrived messages allow; true once finished, with
  // its error (if it failed) thrown here, once.
  bool advance() {
    for (;;) {
      if (h_.done()) {
        if (auto f = std::exchange(h_.promise().failure, nullptr)) std::rethrow_exception(f);
        return true;
      }
      collective_awaited* a = h_.promise().awaiting;
      if (a != nullptr && !a->arrived()) return false;
      h_.promise().awaiting = nullptr;
      h_.resume();
    }
  }
  // What it waits for now (after advance() returned false).
  collective_awaited* awaiting() const noexcept { return h_ ? h_.promise().awaiting : nullptr; }
  bool finished() const noexcept { return !h_ || h_.done(); }

 private:
  explicit collective_task(handle h) noexcept : h_(h) {}
  handle h_;
};

// co_await collective_step(task): runs another collective task (one
// algorithm inside another) to its end, the outer one suspended meanwhile.
class collective_step final : public collective_awaited {
 public:
  explicit collective_step(collective_task t) noexcept : t_(std::move(t)) {}
  bool arrived() override { return t_.advance(); }
  std::string describe() const override {
    const collective_awaited* a = t_.awaiting();
    return a != nullptr ? a->describe() : "a collective step";
  }
  int peer() const override {
    const collective_awaited* a = t_.awaiting();
    return a != nullptr ? a->peer() : -1;
  }
  bool await_ready() { return arrived(); }
  void await_suspend(collective_task::handle h) noexcept { h.promise().awaiting = this; }
  void await_resume() const noexcept {}

 private:
  collective_task t_;
};

// What carries one collective call's messages (the runtime): team ranks
// in, world ranks and wire format inside.
struct collective_call;
class collective_transport {
 public:
  virtual void post(const collective_call& c, std::uint32_t to, std::uint32_t round, std::span<const std::byte> data) = 0;
  virtual std::optional<std::vector<std::byte>> take(const collective_call& c, std::uint32_t from, std::uint32_t round) = 0;
  virtual int world_rank_of(const collective_call& c, std::uint32_t member) const = 0;

 protected:
  ~collective_transport() = default;
};

// One collective call: on which team, its place in the team's sequence,
// its kind and its signature (the operation and the arguments every member
// must agree on, as text: compared on every message, named on a mismatch).
struct collective_call {
  collective_transport* via = nullptr;
  std::uint64_t team = 0;
  std::uint64_t seq = 0;
  collective_kind kind = collective_kind::synchronize;
  std::string signature;
  std::uint32_t rank = 0;  // this rank's place in the team
  std::uint32_t size = 1;
  std::shared_ptr<const std::vector<std::uint32_t>> members;  // world ranks by team rank

  void post(std::uint32_t to, std::uint32_t round, std::span<const std::byte> data = {}) const {
    via->post(*this, to, round, data);
  }

  class receipt final : public collective_awaited {
   public:
    receipt(const collective_call& c, std::uint32_t from, std::uint32_t round) : call_(c), from_(from), round_(round) {}
    bool arrived() override {
      if (!got_) got_ = call_.via->take(call_, from_, round_);
      return got_.has_value();
    }
    // "barrier 2 (round 0) from rank 1"; a call with arguments names them:
    // "allreduce<dsm::sum> of 4 x int (allreduce 7, round 1) from rank 3".
    std::string describe() const override {
      const std::string numbered = std::string(to_string(call_.kind)) + " " + std::to_string(call_.seq);
      const std::string round = "round " + std::to_string(round_);
      const std::string what = call_.signature == to_string(call_.kind)
                                   ? numbered + " (" + round + ")"
                                   : call_.signature + " (" + numbered + ", " + round + ")";
      return what + " from rank " + std::to_string(peer());
    }
    int peer() const override { return call_.via->world_rank_of(call_, from_); }

    bool await_ready() { return arrived(); }
    void await_suspend(collective_task::handle h) noexcept { h.promise().awaiting = this; }
    std::vector<std::byte> await_resume() { return std::move(*got_); }

   private:
    const collective_call& call_;
    std::uint32_t from_, round_;
    std::optional<std::vector<std::byte>> got_;
  };
  // co_await: the payload team rank `from` sent this call in `round`.
  receipt receive(std::uint32_t from, std::uint32_t round) const { return {*this, from, round}; }
};

}  // namespace dsm::detail

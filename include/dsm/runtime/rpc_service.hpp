// The runtime's side of RPC: requests that arrived and wait for this
// rank's program thread to run them, replies that arrived for this rank's
// calls, and the distributed objects an RPC may name. Message handlers
// (any thread that progresses the worker) deposit here; the program's
// thread takes out. What the bytes mean is dsm/rpc.hpp's business.
#pragma once

#include <dsm/error.hpp>

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace dsm::detail {

// An RPC's arguments or result: at most this many bytes (RPC moves
// requests and small results; bulk data goes by rput/rget).
inline constexpr std::size_t max_rpc_bytes = std::size_t{64} << 20;

struct rpc_incoming {
  std::uint32_t source;
  std::uint64_t id;  // 0: fire and forget
  std::uint64_t key, invoker_offset;
  std::vector<std::byte> arguments;
};

// A reply's status: rpc_ok, or 1 + the errc of the error the body threw
// (its message is the reply's bytes).
inline constexpr std::uint64_t rpc_ok = 0;
inline constexpr std::uint64_t rpc_last_status = static_cast<std::uint64_t>(errc::rpc_exception) + 1;

struct rpc_reply {
  std::uint64_t status;
  std::vector<std::byte> bytes;
};

class rpc_service {
 public:
  // ---- the caller's side ------------------------------------------------
  // A new call to `target`, whose reply is expected. A write (a packed
  // put) is counted until its answer is in: a fence waits for them all.
  std::uint64_t expect_reply(std::uint32_t target, bool write = false) {
    const std::lock_guard g{mutex_};
    const std::uint64_t id = next_id_++;
    awaited_.emplace(id, awaited_reply{target, std::nullopt, write});
    writes_unanswered_ += write;
    return id;
  }
  std::uint64_t writes_unanswered() const {
    const std::lock_guard g{mutex_};
    return writes_unanswered_;
  }
  // The reply, once it is in (then forgotten).
  std::optional<rpc_reply> take_reply(std::uint64_t id) {
    const std::lock_guard g{mutex_};
    const auto found = awaited_.find(id);
    if (found == awaited_.end() || !found->second.reply) return std::nullopt;
    std::optional<rpc_reply> r = std::move(found->second.reply);
    awaited_.erase(found);
    return r;
  }
  bool has_reply(std::uint64_t id) const {
    const std::lock_guard g{mutex_};
    const auto found = awaited_.find(id);
    return found != awaited_.end() && found->second.reply.has_value();
  }
  // A call whose caller gave up (a timeout, a future destroyed unwaited):
  // its reply, if it comes, is dropped.
  void forget(std::uint64_t id) {
    const std::lock_guard g{mutex_};
    const auto found = awaited_.find(id);
    if (found == awaited_.end()) return;
    writes_unanswered_ -= found->second.write && !found->second.reply;
    awaited_.erase(found);
  }
  // From the reply handler: checked against the call; errc::protocol if
  // no such call went to `source`.
  void deposit_reply(std::uint32_t source, std::uint64_t id, std::uint64_t status, std::span<const std::byte> bytes) {
    if (status > rpc_last_status || bytes.size() > max_rpc_bytes)
      throw error(errc::protocol, fmt::format("rpc reply {} with status {} and {} bytes", id, status, bytes.size()));
    const std::lock_guard g{mutex_};
    const auto found = awaited_.find(id);
    if (found == awaited_.end()) {
      if (id != 0 && id < next_id_) {
        ++late_replies_;  // its caller gave up on it
        return;
      }
      throw error(errc::protocol, fmt::format("rpc reply {}, a call this rank never made", id));
    }
    if (found->second.target != source || found->second.reply)
      throw error(errc::protocol, fmt::format("rpc reply {} from rank {}: the call went to rank {}{}", id, source,
                                              found->second.target, found->second.reply ? " and was answered" : ""));
    found->second.reply = rpc_reply{status, {bytes.begin(), bytes.end()}};
    writes_unanswered_ -= found->second.write;
  }
  std::uint64_t late_replies() const {
    const std::lock_guard g{mutex_};
    return late_replies_;
  }

  // ---- the target's side ------------------------------------------------
  // `arm` (called under this service's lock) tells the worker that its
  // waits have requests to serve: so no deposit is missed by a serve()
  // that just found the queue empty.
  template <class Arm>
  void deposit_request(rpc_incoming&& r, Arm&& arm) {
    const std::lock_guard g{mutex_};
    requests_.push_back(std::move(r));
    arm(true);
  }
  std::deque<rpc_incoming> take_requests() {
    const std::lock_guard g{mutex_};
    return std::exchange(requests_, {});
  }
  template <class Arm>
  void rearm(bool other_reason, Arm&& arm) {
    const std::lock_guard g{mutex_};
    arm(other_reason || !requests_.empty());
  }

  // ---- distributed objects ------------------------------------------------
  void add_object(std::uint64_t id, void* object, std::uint64_t type_key) {
    const std::lock_guard g{mutex_};
    if (!objects_.emplace(id, held_object{object, type_key}).second)
      throw error(errc::internal, fmt::format("dist_object {} registered twice", id));
  }
  void remove_object(std::uint64_t id) {
    const std::lock_guard g{mutex_};
    objects_.erase(id);
    removed_objects_.insert(id);
  }
  // This rank's instance of object `id`, of the type with `type_key`.
  void* object(std::uint64_t id, std::uint64_t type_key, std::string_view type) const {
    const std::lock_guard g{mutex_};
    const auto found = objects_.find(id);
    if (found == objects_.end())
      throw error(errc::invalid_argument,
                  fmt::format("dist_object<{}> #{} {} on this rank", type, id,
                              removed_objects_.count(id) ? "was destroyed" : "does not exist"));
    if (found->second.type_key != type_key)
      throw error(errc::protocol, fmt::format("dist_object #{} is not a dist_object<{}> on this rank", id, type));
    return found->second.object;
  }

 private:
  struct awaited_reply {
    std::uint32_t target;
    std::optional<rpc_reply> reply;
    bool write;
  };
  struct held_object {
    void* object;
    std::uint64_t type_key;
  };
  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, awaited_reply> awaited_;
  std::uint64_t late_replies_ = 0;
  std::uint64_t writes_unanswered_ = 0;
  std::deque<rpc_incoming> requests_;
  std::map<std::uint64_t, held_object> objects_;
  std::set<std::uint64_t> removed_objects_;
};

}  // namespace dsm::detail

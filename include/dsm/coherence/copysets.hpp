// Which ranks read which of a home's units (producer_consumer): every
// reader tells each home when it starts reading a unit (subscribes) and
// when it stops, in one message per home and barrier, numbered so that
// the home applies them in the order they were sent whatever order they
// arrive in. A subscription carries a generation the reader picks (one
// more than its last for that unit), which the home writes into the
// reader's stamp with every update it pushes: a stamp of the reader's
// current generation proves the home pushed that subscription the whole
// unit and every change since, however late the messages came.
//
// The message handler only queues (worker lock, progress thread); the
// program's thread applies the queue at the barrier.
#pragma once

#include <dsm/error.hpp>

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace dsm::coherence {

// One change, as the wire carries it.
struct subscription_change {
  std::uint64_t unit;
  std::uint32_t generation;  // never 0
  std::uint32_t subscribe;   // 1: starts reading; 0: stops
};
static_assert(sizeof(subscription_change) == 16);

// A stamp: the barrier interval of an update, and the generation of the
// subscription it went to. 0 is no update ever.
inline constexpr std::uint64_t update_stamp(std::uint64_t epoch, std::uint32_t generation) noexcept {
  return epoch << 32 | generation;
}
inline constexpr std::uint32_t stamp_generation(std::uint64_t stamp) noexcept {
  return static_cast<std::uint32_t>(stamp);
}
inline constexpr std::uint64_t stamp_epoch(std::uint64_t stamp) noexcept { return stamp >> 32; }

class copysets {
 public:
  struct member {
    std::uint32_t generation = 0;  // 0: not reading
    bool needs_whole = false;      // subscribed since the last push: gets the whole unit
  };

  // This rank's units are [first_unit, first_unit + units).
  copysets(std::size_t ranks, std::size_t me, std::size_t first_unit, std::size_t units, std::string object)
      : me_(me), first_unit_(first_unit), units_(units), object_(std::move(object)), readers_(units, 0),
        members_(ranks), next_sequence_(ranks, 0), early_(ranks) {}

  // Handler side: rank `from`'s message number `sequence`, checked and
  // queued (errc::protocol rejects it, and nothing of it is applied).
  void receive(std::size_t from, std::uint64_t sequence, std::span<const std::byte> payload) {
    if (from == me_ || from >= members_.size())
      throw error(errc::protocol, fmt::format("{}: subscription message from rank {} on rank {}", object_, from, me_));
    if (payload.size() % sizeof(subscription_change) != 0)
      malformed(from, fmt::format("{} bytes, not whole changes", payload.size()));
    std::vector<subscription_change> changes(payload.size() / sizeof(subscription_change));
    if (!changes.empty()) std::memcpy(changes.data(), payload.data(), payload.size());
    for (const auto& c : changes) {
      if (c.unit < first_unit_ || c.unit - first_unit_ >= units_)
        malformed(from, fmt::format("unit {}, which is not homed here", c.unit));
      if (c.generation == 0 || c.subscribe > 1)
        malformed(from, fmt::format("unit {}: generation {}, subscribe {}", c.unit, c.generation, c.subscribe));
    }
    const std::lock_guard g{mutex_};
    if (sequence < next_sequence_[from] || early_[from].count(sequence) != 0)
      malformed(from, fmt::format("message {} again", sequence));
    early_[from].emplace(sequence, std::move(changes));
  }

  // Program's thread, at a barrier: every message that can be applied in
  // order is. Returns whether any reader reads anything.
  bool apply_received() {
    const std::lock_guard g{mutex_};
    for (std::size_t r = 0; r < early_.size(); ++r) {
      auto& queued = early_[r];
      for (auto next = queued.find(next_sequence_[r]); next != queued.end(); next = queued.find(next_sequence_[r])) {
        for (const auto& c : next->second) apply(r, c);
        queued.erase(next);
        ++next_sequence_[r];
      }
    }
    return reading_ != 0;
  }

  // How many ranks read local unit k.
  std::size_t readers(std::size_t k) const noexcept { return readers_[k]; }
  // Rank r's subscription to local unit k (empty span: r reads nothing).
  std::span<member> of(std::size_t r) noexcept { return members_[r]; }

 private:
  void apply(std::size_t r, const subscription_change& c) {
    auto& m = members_[r];
    if (m.empty()) m.resize(units_);
    member& e = m[c.unit - first_unit_];
    if (c.subscribe) {
      if (e.generation == 0) ++readers_[c.unit - first_unit_], ++reading_;
      e = {c.generation, true};
    } else if (e.generation == c.generation) {  // an older subscription's end changes nothing
      e = {};
      --readers_[c.unit - first_unit_], --reading_;
    }
  }
  [[noreturn]] void malformed(std::size_t from, const std::string& what) const {
    throw error(errc::protocol, fmt::format("{}: rank {}'s subscriptions to rank {}: {}", object_, from, me_, what));
  }

  std::size_t me_, first_unit_, units_;
  std::string object_;
  std::vector<std::uint32_t> readers_;       // per local unit
  std::size_t reading_ = 0;                  // subscriptions in all
  std::vector<std::vector<member>> members_;  // per reader, per local unit (allocated at its first)
  std::mutex mutex_;                          // the queue: handler and program
  std::vector<std::uint64_t> next_sequence_;  // per reader
  std::vector<std::map<std::uint64_t, std::vector<subscription_change>>> early_;  // per reader, by sequence
};

}  // namespace dsm::coherence

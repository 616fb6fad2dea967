// Messages that arrived ahead of the code waiting for them, keyed by what
// they answer. Handlers (possibly on the progress thread) deposit; the
// waiting thread takes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <tuple>
#include <utility>
#include <vector>

namespace dsm::detail {

enum class channel : std::uint8_t { collective, rkey_reply, free_ack };

struct mail_key {
  channel kind;
  std::uint64_t first;   // collective: sequence; rkey_reply: request id; free_ack: segment
  std::uint64_t second;  // collective: round, and the collective's kind above bit 32; free_ack: generation
  std::uint32_t source;
  std::uint64_t team = 0;  // collective: the team's id (0: every rank)
  friend auto operator<=>(const mail_key&, const mail_key&) = default;
};

class mailbox {
 public:
  // False when a message with this key is already waiting: a duplicate.
  bool deposit(const mail_key& k, std::span<const std::byte> payload) {
    const std::lock_guard g{mutex_};
    return box_.try_emplace(k, payload.begin(), payload.end()).second;
  }
  std::optional<std::vector<std::byte>> take(const mail_key& k) {
    const std::lock_guard g{mutex_};
    auto it = box_.find(k);
    if (it == box_.end()) return std::nullopt;
    auto v = std::move(it->second);
    box_.erase(it);
    return v;
  }
  // A waiting message on `kind`'s channel with sequence `first` from
  // `source` (on `team`) whose `second` fails `fits`: a peer at the same
  // point of the job doing something else (another collective). Returns
  // its key and payload.
  template <class Fits>
  std::optional<std::pair<mail_key, std::vector<std::byte>>> other_than(channel kind, std::uint64_t first,
                                                                       std::uint32_t source, std::uint64_t team,
                                                                       Fits&& fits) const {
    const std::lock_guard g{mutex_};
    for (auto it = box_.lower_bound({kind, first, 0, 0, 0}); it != box_.end() && it->first.kind == kind && it->first.first == first; ++it)
      if (it->first.source == source && it->first.team == team && !fits(it->first.second)) return *it;
    return std::nullopt;
  }
  // The first waiting collective message whose key `wanted` accepts.
  template <class Wanted>
  std::optional<std::pair<mail_key, std::vector<std::byte>>> first_collective(Wanted&& wanted) const {
    const std::lock_guard g{mutex_};
    for (auto it = box_.lower_bound({channel::collective, 0, 0, 0, 0}); it != box_.end() && it->first.kind == channel::collective; ++it)
      if (wanted(it->first)) return *it;
    return std::nullopt;
  }
  std::size_t waiting() const {
    const std::lock_guard g{mutex_};
    return box_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::map<mail_key, std::vector<std::byte>> box_;
};

}  // namespace dsm::detail

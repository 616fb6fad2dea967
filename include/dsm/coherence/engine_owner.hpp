// single_writer's requesting side of the coherence engine (engine.hpp):
// obtaining units exclusively (and the home's own units without a message),
// grants installed with their twins, recalls given up at once, and owned
// units' changes written home at releases.
// Member definitions of dsm::coherence::engine, included by engine.hpp.
#pragma once

#ifndef DSM_COHERENCE_ENGINE_DECLARED
#error "include <dsm/coherence/engine.hpp>, which includes this header"
#endif

namespace dsm::coherence {

inline void engine::obtain_exclusive(std::span<const std::size_t> wanted) {
  std::size_t requested = 0;
  for (std::size_t u : wanted) {
    fetcher_.complete(u);  // a get in flight must not land over the grant
    const std::uint8_t s = replica_.state(u);
    if (s == exclusive || s == pending) continue;  // pending: listed twice
    replica_.set_state(u, pending);
    post(units_.home_of(u), u, wire::write);
    ++requested;
  }
  if (requested == 0) return;
  stats_.misses += requested;
  for (std::size_t u : wanted)
    rt_.worker().wait_until(
        [&] { return replica_.state_acquire(u) != pending; }, rt_.worker().timeout(),
        [&] { return fmt::format("{}: unit {} from its home, rank {} (write miss)", object_, u, units_.home_of(u)); },
        static_cast<int>(units_.home_of(u)));
}

inline void engine::obtain_to_write(std::size_t unit) {
  {
    const auto g = rt_.worker().lock();  // the grant's handler reads it
    holding_ = unit;
  }
  obtain_exclusive(std::span<const std::size_t>(&unit, 1));
}

inline void engine::confirm_exclusive(std::size_t unit) {
  const auto g = rt_.worker().lock();
  holding_ = no_unit;
  send(units_.home_of(unit), unit, wire::installed);
  deliver_to_self();
}

inline bool engine::claim_home_unit(std::size_t unit) {
  const auto g = rt_.worker().lock();
  const std::size_t lu = local_unit(unit);
  if (owner_[lu] != static_cast<std::int32_t>(me_) || txns_.contains(lu)) return false;
  replica_.set_state(unit, exclusive);
  home_written_.push_back(unit);
  return true;
}

inline void engine::write_back_owned() {
  std::vector<std::byte> wire;
  for (std::size_t u = 0; u < units_.units(); ++u) {
    if (replica_.is_home(u) || replica_.state(u) != exclusive) continue;
    const auto g = rt_.worker().lock();
    if (replica_.state(u) != exclusive) continue;  // recalled meanwhile
    wire.clear();
    const auto changed = take_changes(u, wire, true);
    if (!changed)  // never silently: its writes would be lost
      throw error(errc::internal, fmt::format("{}: unit {} owned without a twin at a release", object_, u));
    if (*changed == 0) continue;
    ++stats_.write_backs;
    stats_.write_back_bytes += *changed;
    const std::byte* data = replica_.unit_data(u);
    sent_back_[u] = {grants_[u], {data, data + units_.bytes_in(u)}};
    send_expecting_acknowledgement(u, wire::write_back, wire);
  }
  await_acknowledgements("changes written home");
}

inline void engine::publish_home_writes() {
  const auto g = rt_.worker().lock();
  if (home_written_.empty()) return;
  for (std::size_t u : home_written_) {
    maintain_.before_transfer_reads(replica_.unit_data(u), units_.bytes_in(u));
    if (replica_.state(u) == exclusive) replica_.set_state(u, shared);
  }
  home_written_.clear();
  (void)counts_.count_release(maintain_);
}

inline void engine::on_grant(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
  if (replica_.state(unit) != pending || from != units_.home_of(unit))
    throw error(errc::protocol, fmt::format("{}: unsolicited grant of unit {} from rank {}", object_, unit, from));
  const auto head = head_of<wire::grant_head>(payload, unit, "grant");
  const std::size_t data_bytes = replica_.is_home(unit) ? 0 : units_.bytes_in(unit);
  if (payload.size() != sizeof head + data_bytes || head.state != exclusive)
    throw error(errc::protocol, fmt::format("{}: grant of unit {} with {} bytes, state {}", object_, unit,
                                            payload.size(), unsigned{head.state}));
  if (data_bytes != 0) {
    auto data = payload.subspan(sizeof head);
    maintain_.after_transfer_wrote(const_cast<std::byte*>(data.data()), data.size());
    std::memcpy(replica_.unit_data(unit), data.data(), data.size());
    // The owner's twin: what it hands back is what differs from this.
    twins_[unit].assign(data.begin(), data.end());
  } else {
    home_written_.push_back(unit);
  }
  ++grants_[unit];
  replica_.set_state(unit, exclusive);
  // An exclusive grant for a single write is confirmed by the writer once
  // it has written: until then the home recalls nobody, so a unit in
  // demand cannot be taken away between its arrival and the write.
  if (unit != holding_) send(from, unit, wire::installed);
}

inline void engine::on_recall(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
  const bool home = replica_.is_home(unit);
  const std::uint8_t s = replica_.state(unit);
  // The home may have asked for its own unit again (a claim that found a
  // transaction under way) while its ownership is being recalled: it stays
  // pending, its request queued behind this one, and gives up the unit it
  // holds in its memory.
  const bool home_waiting = home && s == pending;
  if (from != units_.home_of(unit) || !payload.empty() || (home ? s < shared && !home_waiting : s != exclusive))
    throw error(errc::protocol,
                fmt::format("{}: recall of unit {} from rank {} in state {}", object_, unit, from, unsigned{s}));
  if (!home_waiting) replica_.set_state(unit, shared);
  ++grants_[unit];
  arch::heavy_fence(asymmetric_fences_);
  if (home) return send(from, unit, wire::recalled);
  std::vector<std::byte> wire;
  // The Dekker pair above is outside ThreadSanitizer's model: the reads of
  // the unit may race with a store the program then redoes.
  const auto unchecked = home_memory_read();
  if (!take_changes(unit, wire))
    throw error(errc::internal, fmt::format("{}: unit {} owned without a twin", object_, unit));
  if (wire.empty()) return send(from, unit, wire::recalled);
  send_expecting_acknowledgement(unit, wire::recalled, wire);
}

}  // namespace dsm::coherence

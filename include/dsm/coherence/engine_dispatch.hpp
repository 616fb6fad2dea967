// The coherence engine's message dispatch (engine.hpp): every message is
// checked against the policy, the barrier interval and the unit's home
// before a handler sees it; a request from a rank already past a barrier
// this rank is still in waits in the stash.
// Member definitions of dsm::coherence::engine, included by engine.hpp.
#pragma once

#ifndef DSM_COHERENCE_ENGINE_DECLARED
#error "include <dsm/coherence/engine.hpp>, which includes this header"
#endif

namespace dsm::coherence {

inline void engine::handle(const transport::message_header& h, std::span<const std::byte> payload) {
  const std::uint64_t unit = h.word[1];
  const std::uint8_t k = static_cast<std::uint8_t>(h.word[2] & 0xff);
  const std::uint64_t epoch = h.word[2] >> 8;
  const std::uint32_t from = h.source_rank;
  if (unit >= units_.units() || k == 0 || k > wire::last_kind)
    throw error(errc::protocol, fmt::format("{}: message kind {} for unit {} of {}", object_, unsigned{k}, unit,
                                            units_.units()));
  const bool request = k == wire::write || k == wire::diff || k == wire::write_back;
  if ((k == wire::write || k == wire::recall || k == wire::recalled || k == wire::write_back || k == wire::grant) &&
      protocol_ != protocol::single_writer)
    throw error(errc::protocol, fmt::format("{}: ownership message under write_shared", object_));
  if (k == wire::diff && protocol_ != protocol::write_shared)
    throw error(errc::protocol, fmt::format("{}: diff under single_writer", object_));
  if (request && epoch == epoch_ + 1) {  // the sender is past a barrier this rank is still in
    stash_.push_back({h, {payload.begin(), payload.end()}});
    return;
  }
  if (k == wire::installed && epoch < epoch_) return;  // that barrier closed the transaction already
  if (epoch != epoch_)
    throw error(errc::protocol, fmt::format("{}: message of barrier interval {} in interval {}", object_, epoch, epoch_));
  const bool to_home = request || k == wire::installed || k == wire::recalled;
  if (to_home && !replica_.is_home(unit))
    throw error(errc::protocol, fmt::format("{}: home message for unit {}, homed on rank {}", object_, unit,
                                            units_.home_of(unit)));
  switch (k) {
    case wire::write:
    case wire::diff:
    case wire::write_back:
      validate_request(k, unit, from, payload);
      return home_request(k, unit, from, payload);
    case wire::installed: return home_installed(unit, from, payload);
    case wire::recalled: return home_recalled(unit, from, payload);
    case wire::grant: return on_grant(unit, from, payload);
    case wire::recall: return on_recall(unit, from, payload);
    case wire::applied: return on_applied(unit, from, payload);
  }
}

}  // namespace dsm::coherence

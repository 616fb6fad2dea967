// The home's side of the coherence engine (engine.hpp): its directory of
// owners, one transaction per unit at a time with later requests queued
// behind it, grants with the unit's data, and changes from owners
// (recalled, written back) applied to its memory and counted as releases.
// Member definitions of dsm::coherence::engine, included by engine.hpp.
#pragma once

#ifndef DSM_COHERENCE_ENGINE_DECLARED
#error "include <dsm/coherence/engine.hpp>, which includes this header"
#endif

namespace dsm::coherence {

inline void engine::validate_request(std::uint8_t k, std::size_t unit, std::uint32_t from,
                                     std::span<const std::byte> payload) const {
  switch (k) {
    case wire::write:
      if (!payload.empty())
        throw error(errc::protocol,
                    fmt::format("{}: write request for unit {} from rank {} with a payload", object_, unit, from));
      return;
    case wire::write_back:
      if (from == me_) throw error(errc::protocol, fmt::format("{}: unit {} written back by its home", object_, unit));
      (void)decoded_runs(payload, unit, from, "write-back");
      return;
    case wire::diff: {
      const auto head = head_of<wire::diff_head>(payload, unit, "diff");
      (void)decoded_runs(payload.subspan(sizeof head), unit, from, "diff");
      return;
    }
  }
}

inline std::vector<byte_run> engine::decoded_runs(std::span<const std::byte> wire, std::size_t unit, std::uint32_t from,
                                                  const char* what) const {
  try {
    return decode_runs(wire, units_.bytes_in(unit));
  } catch (const error& e) {
    throw error(errc::protocol,
                fmt::format("{}: {} for unit {} from rank {}: {}", object_, what, unit, from, e.message()));
  }
}

inline void engine::home_request(std::uint8_t k, std::size_t unit, std::uint32_t from,
                                 std::span<const std::byte> payload) {
  const auto busy = txns_.find(local_unit(unit));
  if (busy != txns_.end()) {
    busy->second.waiting.push_back({k, from, {payload.begin(), payload.end()}});
    return;
  }
  start(k, unit, from, payload);
}

inline void engine::start(std::uint8_t k, std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
  const std::size_t lu = local_unit(unit);
  transaction t;
  t.kind = k;
  t.requester = from;
  if (k == wire::write) {
    if (owner_[lu] != static_cast<std::int32_t>(from)) {
      t.recalled_from = owner_[lu];
      t.recall_due = true;
      send(static_cast<std::size_t>(owner_[lu]), unit, wire::recall);
    }
  } else if (k == wire::write_back) {
    // Taken only from the rank that still owns the unit: a recall may
    // have moved it on (with these bytes) since this was sent.
    if (owner_[lu] == static_cast<std::int32_t>(from))
      t.report.release_count = apply_owner_changes(unit, payload, from, "write-back");
  } else {
    apply_diff(unit, lu, from, payload, t);
  }
  auto& placed = txns_[lu] = std::move(t);
  if (!placed.recall_due) proceed(unit, lu, placed);
}

inline std::uint64_t engine::apply_owner_changes(std::size_t unit, std::span<const std::byte> wire, std::uint32_t from,
                                                 const char* what) {
  const auto runs = decoded_runs(wire, unit, from, what);
  maintain_.after_transfer_wrote(const_cast<std::byte*>(wire.data()), wire.size());
  apply_runs(runs, wire, replica_.unit_data(unit));
  for (const auto& r : runs) maintain_.before_transfer_reads(replica_.unit_data(unit) + r.offset, r.length);
  return counts_.count_release(maintain_);
}

inline void engine::proceed(std::size_t unit, std::size_t lu, transaction& t) {
  if (t.kind == wire::diff || t.kind == wire::write_back) {
    send(t.requester, unit, wire::applied, bytes_of(t.report));
    return finish(unit, lu);
  }
  if (owner_[lu] != static_cast<std::int32_t>(t.requester)) ++stats_.ownership_transfers;
  owner_[lu] = static_cast<std::int32_t>(t.requester);
  auto message = bytes_of(wire::grant_head{exclusive, {}});
  if (t.requester != me_) {
    const std::byte* data = replica_.unit_data(unit);
    // Read as a peer's one-sided get would read it (see home_memory_read).
    const auto unchecked = home_memory_read();
    message.insert(message.end(), data, data + units_.bytes_in(unit));
  }
  t.granted = true;
  send(t.requester, unit, wire::grant, message);
}

inline void engine::finish(std::size_t unit, std::size_t lu) {
  auto waiting = std::move(txns_[lu].waiting);
  txns_.erase(lu);
  while (!waiting.empty()) {
    queued next = std::move(waiting.front());
    waiting.pop_front();
    try {
      start(next.kind, unit, next.source, next.payload);
    } catch (const std::exception& e) {
      txns_.erase(lu);
      rt_.messages().reject("object", next.source, e);
      continue;
    }
    const auto still = txns_.find(lu);
    if (still != txns_.end()) {
      for (auto& q : waiting) still->second.waiting.push_back(std::move(q));
      return;
    }
  }
}

inline void engine::home_installed(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
  const std::size_t lu = local_unit(unit);
  const auto t = txns_.find(lu);
  if (t == txns_.end() || !t->second.granted || t->second.requester != from || !payload.empty())
    throw error(errc::protocol,
                fmt::format("{}: unexpected 'installed' for unit {} from rank {}", object_, unit, from));
  finish(unit, lu);
}

inline void engine::home_recalled(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
  const std::size_t lu = local_unit(unit);
  const auto found = txns_.find(lu);
  if (found == txns_.end() || found->second.granted || !found->second.recall_due ||
      found->second.recalled_from != static_cast<std::int64_t>(from))
    throw error(errc::protocol,
                fmt::format("{}: unexpected recalled unit for unit {} from rank {}", object_, unit, from));
  transaction& t = found->second;
  if (from == me_) {
    if (!payload.empty()) throw error(errc::protocol, fmt::format("{}: home recalled itself with data", object_));
  } else if (!payload.empty()) {
    wire::applied_report report{};
    report.release_count = apply_owner_changes(unit, payload, from, "recalled unit");
    send(from, unit, wire::applied, bytes_of(report));
  }
  t.recall_due = false;
  proceed(unit, lu, t);
}

}  // namespace dsm::coherence

// write_shared's part of the coherence engine (engine.hpp): twins at the
// first write, diffs sent home at the release, and at the home their
// application and the race check against the other writers' diffs of the
// interval that were not ordered before.
// Member definitions of dsm::coherence::engine, included by engine.hpp.
#pragma once

#ifndef DSM_COHERENCE_ENGINE_DECLARED
#error "include <dsm/coherence/engine.hpp>, which includes this header"
#endif

namespace dsm::coherence {

inline void engine::make_twin(std::size_t unit) {
  const auto g = rt_.worker().lock();  // a home's twin is patched by handlers
  const std::byte* data = replica_.unit_data(unit);
  twins_[unit].assign(data, data + units_.bytes_in(unit));
  // The home's copy is its memory, always current: its races are judged
  // by interval (see apply_diff), not by the count it saw.
  if (replica_.is_home(unit)) twin_interval_.emplace(unit, acquires_);  // the first twin of the interval counts
  dirty_.push_back(unit);
  ++stats_.twins;
  replica_.set_state(unit, exclusive);
}

inline void engine::send_diffs() {
  std::vector<std::byte> wire;
  for (std::size_t u : dirty_) {
    const auto g = rt_.worker().lock();
    wire.assign(sizeof(wire::diff_head), std::byte{0});
    const auto changed = take_changes(u, wire);
    if (!changed) continue;
    replica_.set_state(u, shared);
    if (*changed == 0) continue;
    const wire::diff_head head{seen_count(units_.home_of(u))};
    std::memcpy(wire.data(), &head, sizeof head);
    ++stats_.diffs;
    stats_.diff_bytes += *changed;
    send_expecting_acknowledgement(u, wire::diff, wire);
  }
  dirty_.clear();
  await_acknowledgements("diffs to be applied at their homes");
  std::string race;
  {
    const auto g = rt_.worker().lock();
    race.swap(race_found_);
  }
  if (!race.empty() && check_races_) throw error(errc::data_race, race);
}

inline void engine::apply_diff(std::size_t unit, std::size_t lu, std::uint32_t from, std::span<const std::byte> payload,
                               transaction& t) {
  const auto head = head_of<wire::diff_head>(payload, unit, "diff");
  const auto wire = payload.subspan(sizeof head);
  auto runs = decoded_runs(wire, unit, from, "diff");
  if (from != me_) {  // the home's own diff is already in its memory
    // The home writing the same bytes in this interval (not yet diffed)
    // races with this writer.
    if (const auto twin = twins_.find(unit); twin != twins_.end()) {
      const auto unchecked = home_memory_read();
      const auto mine = changed_runs(replica_.unit_data(unit), twin->second.data(), twin->second.size());
      if (const auto at = first_overlap(runs, mine)) report_race(t, unit, *at, me_, from);
    }
    maintain_.after_transfer_wrote(const_cast<std::byte*>(wire.data()), wire.size());
    apply_runs(runs, wire, replica_.unit_data(unit));
    // The home is writing the unit too: its twin takes the others' bytes,
    // so its own diff holds only its own.
    if (const auto twin = twins_.find(unit); twin != twins_.end()) apply_runs(runs, wire, twin->second.data());
  }
  for (const auto& r : runs) maintain_.before_transfer_reads(replica_.unit_data(unit) + r.offset, r.length);
  auto& written_here = history_[lu];
  // A diff from another rank conflicts with bytes counted after the count
  // it saw at its last acquire (not ordered before it); the home's own
  // diff with bytes applied since the home's last acquire.
  const auto interval = twin_interval_.find(unit);
  for (const auto& w : written_here) {
    if (t.report.conflict != 0) break;
    if (w.writer == from) continue;
    const bool ordered = from == me_ ? interval != twin_interval_.end() && w.home_interval < interval->second
                                     : w.count <= head.seen_count;
    if (ordered) continue;
    if (const auto at = first_overlap(runs, w.runs)) report_race(t, unit, *at, w.writer, from);
  }
  if (from == me_ && interval != twin_interval_.end()) twin_interval_.erase(interval);
  t.report.release_count = counts_.count_release(maintain_);
  if (written_here.size() == history_limit) written_here.erase(written_here.begin());
  written_here.push_back({t.report.release_count, from, acquires_, std::move(runs)});
}

inline void engine::report_race(transaction& t, std::size_t unit, std::size_t byte, std::size_t first,
                                std::size_t second) {
  t.report.conflict = 1;
  t.report.other_rank = static_cast<std::uint32_t>(first);
  t.report.byte = byte;
  ++stats_.races;
  if (!check_races_) fmt::print(stderr, "dsm: rank {}: warning: {}\n", me_, race_text(unit, byte, first, second));
}

inline std::string engine::race_text(std::size_t unit, std::size_t byte, std::size_t first, std::size_t second) const {
  return fmt::format("{}: data race on index {} (unit {}, byte {}): written by rank {} and rank {} in one interval",
                     object_, index_of(unit, byte), unit, byte, first, second);
}

}  // namespace dsm::coherence

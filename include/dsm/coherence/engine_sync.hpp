// The coherence engine's synchronisation (engine.hpp): releases that send
// every change home and wait until each is applied, acquires that drop the
// copies of homes whose release count moved, a barrier's fresh interval,
// and the acknowledgements of changes sent home.
// Member definitions of dsm::coherence::engine, included by engine.hpp.
#pragma once

#ifndef DSM_COHERENCE_ENGINE_DECLARED
#error "include <dsm/coherence/engine.hpp>, which includes this header"
#endif

namespace dsm::coherence {

inline void engine::release() {
  if (protocol_ == protocol::write_shared) return send_diffs();
  write_back_owned();
  publish_home_writes();
}

inline void engine::arrive() {
  fetcher_.settle();  // the barrier drops every copy: no get may land after it
  release();
  if (const std::size_t n = distribution_.local_size(me_) * units_.element_bytes(); n != 0)
    maintain_.before_transfer_reads(replica_.unit_data(me_ * units_.units_per_rank()), n);
}

inline void engine::acquire() {
  fetcher_.settle();  // copies fetched ahead count as fetched before the acquire
  if (protocol_ == protocol::write_shared && !dirty_.empty()) send_diffs();
  const auto now = counts_.read_all(maintain_);
  std::size_t dropped = 0;
  const auto g = rt_.worker().lock();
  for (std::size_t h = 0; h < team_.size(); ++h) {
    if (h == me_) continue;
    if (!seen_known_[h] || now[h] != seen_[h]) dropped += drop_copies_of(h);
    seen_[h] = now[h];
    seen_known_[h] = 1;
  }
  stats_.copies_dropped += dropped;
  ++acquires_;
}

inline void engine::start_interval() {
  const auto g = rt_.worker().lock();
  for (auto& [unit, t] : txns_)
    if (!t.granted || !t.waiting.empty())
      throw error(errc::internal, fmt::format("{}: unit {} still in a transaction at a barrier", object_, unit));
  txns_.clear();
  history_.clear();
  twins_.clear();
  twin_interval_.clear();
  dirty_.clear();
  home_written_.clear();
  sent_back_.clear();
  std::fill(seen_known_.begin(), seen_known_.end(), 0);
  ++acquires_;
  std::fill(owner_.begin(), owner_.end(), static_cast<std::int32_t>(me_));
  stats_.copies_dropped += count_remote_copies();
  replica_.reset(shared);
  ++epoch_;
  auto early = std::move(stash_);
  stash_.clear();
  for (auto& m : early) handle_kept(m);
  deliver_to_self();
}

inline void engine::await_acknowledgements(const char* what) {
  rt_.worker().wait_until([&] { return acknowledgements_due_.load(std::memory_order_acquire) == 0; },
                          rt_.worker().timeout(),
                          [&] { return fmt::format("{}: {} {}", object_, acknowledgements_due_.load(), what); });
}

inline std::size_t engine::drop_copies_of(std::size_t h) {
  std::size_t dropped = 0;
  const std::size_t first = h * units_.units_per_rank();
  for (std::size_t u = first; u < first + units_.units_per_rank(); ++u)
    if (replica_.state(u) == shared) replica_.set_state(u, invalid), ++dropped;
  return dropped;
}

inline std::size_t engine::count_remote_copies() const {
  std::size_t n = 0;
  for (std::size_t u = 0; u < units_.units(); ++u) n += !replica_.is_home(u) && replica_.state(u) >= shared;
  return n;
}

inline std::optional<std::size_t> engine::take_changes(std::size_t unit, std::vector<std::byte>& wire, bool keep_twin) {
  const auto found = twins_.find(unit);
  if (found == twins_.end()) return std::nullopt;
  const std::byte* data = replica_.unit_data(unit);
  const auto runs = changed_runs(data, found->second.data(), found->second.size());
  encode_runs(runs, data, wire);
  if (!keep_twin) twins_.erase(found);
  return run_bytes(runs);
}

inline void engine::send_expecting_acknowledgement(std::size_t unit, std::uint8_t k, std::span<const std::byte> wire) {
  ++acknowledgements_by_unit_[unit];
  acknowledgements_due_.fetch_add(1, std::memory_order_relaxed);
  maintain_.before_transfer_reads(wire.data(), wire.size());
  send(units_.home_of(unit), unit, k, wire);
  deliver_to_self();
}

inline void engine::on_applied(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
  const auto report = head_of<wire::applied_report>(payload, unit, "diff acknowledgement");
  const auto due = acknowledgements_by_unit_.find(unit);
  if (from != units_.home_of(unit) || payload.size() != sizeof report || due == acknowledgements_by_unit_.end() ||
      report.conflict > 1 ||
      (report.conflict == 1 && (report.other_rank >= team_.size() || report.byte >= units_.bytes_in(unit))))
    throw error(errc::protocol,
                fmt::format("{}: unexpected diff acknowledgement for unit {} from rank {}", object_, unit, from));
  if (--due->second == 0) acknowledgements_by_unit_.erase(due);
  if (report.conflict == 1 && race_found_.empty()) race_found_ = race_text(unit, report.byte, report.other_rank, me_);
  // Counted right after what this rank last saw: only its own change
  // moved the count, and its copies stay valid.
  if (report.release_count != 0 && seen_known_[from] && report.release_count == seen_[from] + 1)
    seen_[from] = report.release_count;
  // A write-back applied while this rank still owns the unit: the twin
  // becomes what was sent, so the next one carries only newer changes.
  if (const auto back = sent_back_.find(unit); back != sent_back_.end()) {
    if (back->second.grant == grants_[unit] && replica_.state(unit) == exclusive)
      twins_[unit] = std::move(back->second.data);
    sent_back_.erase(back);
  }
  acknowledgements_due_.fetch_sub(1, std::memory_order_release);
}

}  // namespace dsm::coherence

// The message-driven part of the caching policies single_writer and
// write_shared: a home-based directory for the units homed on this rank,
// and the requesting side for every other unit. Bytes only: the policies
// add types, element addressing and their write paths.
//
// The protocol (see README, "Coherence"):
//
// * Homes serialise. Each home handles one transaction per unit at a time;
//   requests arriving meanwhile queue behind it. A transaction that hands a
//   copy out ends only when the requester says it installed it, so no later
//   invalidation or recall can overtake the grant on the wire (UCX does not
//   order active messages).
// * Invalidations of read copies are deferred: the receiver records them
//   and acknowledges at once, and drops the copies at its next acquire
//   (lock(), barrier). Acknowledged before the writer gets its grant or its
//   diff acknowledgement, they are recorded before that writer can release,
//   so an acquire that follows the release finds them.
// * single_writer: a write needs the unit exclusively. The home invalidates
//   the read copies and recalls the current owner, which gives up the unit
//   eagerly (its handler drops the state, then sends what it changed), and
//   the home grants the unit with its data to the writer. An owner twins
//   the unit it is granted, and recalls and write-backs carry only the
//   bytes that differ from the twin: the home's memory is also written
//   through local() meanwhile, and those bytes must survive.
// * write_shared: writers twin the unit and, at release, send the changed
//   bytes; the home applies them, checks them against the other writers'
//   diffs of the interval (data races), invalidates the other copies and
//   acknowledges.
// * Barriers start afresh: before the ranks synchronise every rank sends
//   its writes home; after, every rank drops its copies of other ranks'
//   units and every home resets its directory. Messages are stamped with
//   the barrier epoch; a request from a rank already past the barrier
//   waits at the home until the home is past it too.
#pragma once

#include <dsm/coherence/array_stats.hpp>
#include <dsm/coherence/diff.hpp>
#include <dsm/coherence/replica.hpp>
#include <dsm/coherence/unit_map.hpp>
#include <dsm/detail/sanitizer.hpp>
#include <dsm/distribution.hpp>
#include <dsm/error.hpp>
#include <dsm/global_ptr.hpp>
#include <dsm/runtime/runtime.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace dsm::coherence {

enum class protocol : std::uint8_t { single_writer, write_shared };

class engine final : public dsm::detail::object_endpoint {
  enum kind : std::uint8_t {
    k_read = 1,      // requester -> home: a read copy
    k_write,         // requester -> home: the unit exclusively (single_writer)
    k_grant,         // home -> requester: grant_head, then the unit (none when the requester is the home)
    k_installed,     // requester -> home: the grant is in place
    k_invalidate,    // home -> copy holder: drop at your next acquire
    k_invalidated,   // holder -> home
    k_recall,        // home -> owner: recall_head; give the unit up
    k_recalled,      // owner -> home: the runs it changed, encoded as a diff (none when the owner is the home)
    k_diff,          // writer -> home: diff_head, then encoded runs (write_shared)
    k_diff_applied,  // home -> writer: race_report (also acknowledges k_write_back)
    k_write_back,    // owner -> home, before a barrier: the runs it changed (single_writer)
  };
  static constexpr std::uint8_t last_kind = k_write_back;

  struct grant_head {
    std::uint64_t version;
    std::uint8_t state;
    std::uint8_t reserved[7];
  };
  struct recall_head {
    std::uint8_t to_state;
    std::uint8_t reserved[7];
  };
  struct diff_head {
    std::uint64_t base_version;  // version of the copy the writer twinned
  };
  struct race_report {
    std::uint32_t conflict;  // 0 or 1
    std::uint32_t other_rank;
    std::uint64_t byte;  // offset in the unit of the first byte both wrote
  };
  static_assert(sizeof(grant_head) == 16 && sizeof(recall_head) == 8 && sizeof(race_report) == 16);

  struct queued {
    std::uint8_t kind;
    std::uint32_t source;
    std::vector<std::byte> payload;
  };
  struct transaction {
    std::uint8_t kind = 0;
    std::uint32_t requester = 0;
    std::vector<std::uint32_t> invalidating;  // ranks whose invalidation acknowledgement is due
    std::int64_t recalled_from = -1;          // owner recalled (a read leaves it a sharer)
    bool recall_due = false;                  // its unit has not arrived yet
    bool granted = false;                     // waiting for k_installed
    race_report race{};
    std::deque<queued> waiting;
    bool awaiting() const noexcept { return !invalidating.empty() || recall_due; }
  };
  struct written {
    std::uint64_t version;
    std::uint32_t writer;
    std::uint64_t home_interval;  // the home's acquires_ when applied
    std::vector<byte_run> runs;
  };
  struct stashed {
    transport::message_header header;
    std::vector<std::byte> payload;
  };
  static constexpr std::size_t history_limit = 64;  // diffs per unit kept for race checks, per barrier interval

 public:
  engine(protocol p, std::uint64_t object_id, const dsm::distribution& d, const unit_map& units,
         std::vector<global_ptr<std::byte>> blocks, std::string object)
      : rt_(dsm::detail::rt()),
        protocol_(p),
        id_(object_id),
        distribution_(d),
        units_(units),
        blocks_(std::move(blocks)),
        object_(std::move(object)),
        me_(rt_.rank()),
        replica_(units, blocks_[me_].local(), me_, object_),
        sharer_words_((rt_.ranks() + 63) / 64),
        owner_(units.units_per_rank(), static_cast<std::int32_t>(me_)),
        version_(units.units_per_rank(), 0),
        sharers_(units.units_per_rank() * sharer_words_, 0),
        base_version_(units.units(), 0),
        concurrent_handlers_(rt_.worker().mode() == transport::progress_mode::thread),
        check_races_(rt_.config().check_races),
        maintain_{&stats_} {
    replica_.reset(own_state());
    rt_.register_object(id_, this);
    // Nobody may send this array a message before every rank can take it.
    rt_.synchronize();
  }
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;
  ~engine() {
    rt_.retire_object(id_);
    if (rt_.config().stats) stats_.print(stderr, static_cast<int>(me_), object_);
  }

  replica& copies() noexcept { return replica_; }
  const replica& copies() const noexcept { return replica_; }
  array_stats& stats() noexcept { return stats_; }
  // With a progress thread, handlers run beside the program's thread.
  bool concurrent_handlers() const noexcept { return concurrent_handlers_; }

  // ---- the requesting side (program's thread) ---------------------------

  // Makes each listed unit readable (read copies requested together, then
  // awaited), or exclusive when `exclusively`.
  void obtain(std::span<const std::size_t> wanted, bool exclusively) {
    std::size_t requested = 0;
    for (std::size_t u : wanted) {
      const std::uint8_t s = replica_.state(u);
      if (s == exclusive || s == pending || (!exclusively && s == shared)) continue;  // pending: listed twice
      replica_.set_state(u, pending);
      post(units_.home_of(u), u, exclusively ? k_write : k_read);
      ++requested;
    }
    if (requested == 0) return;
    stats_.misses += requested;
    for (std::size_t u : wanted)
      rt_.worker().wait_until([&] { return replica_.state_acquire(u) != pending; }, rt_.worker().timeout(), [&] {
        return fmt::format("{}: unit {} from its home, rank {} ({} miss)", object_, u, units_.home_of(u),
                           exclusively ? "write" : "read");
      });
  }
  void obtain(std::size_t unit, bool exclusively) { obtain(std::span<const std::size_t>(&unit, 1), exclusively); }

  // single_writer: one unit exclusively, held until confirm_exclusive(): the
  // home passes it on to nobody before this rank has written it. One unit
  // at a time: ranks holding several while waiting for more could wait on
  // each other for ever. (Units obtained in a batch are confirmed at once.)
  void obtain_to_write(std::size_t unit) {
    {
      const auto g = rt_.worker().lock();  // the grant's handler reads it
      holding_ = unit;
    }
    obtain(unit, true);
  }
  void confirm_exclusive(std::size_t unit) {
    const auto g = rt_.worker().lock();
    holding_ = no_unit;
    send(units_.home_of(unit), unit, k_installed);
    deliver_to_self();
  }

  // write_shared: the first write to a readable unit keeps a twin of it.
  void make_twin(std::size_t unit) {
    const auto g = rt_.worker().lock();  // a home's twin is patched by handlers
    const std::byte* data = replica_.unit_data(unit);
    twins_[unit].assign(data, data + units_.bytes_in(unit));
    // The home's copy is its memory, always current: its races are judged
    // by interval (see apply_diff), not by the version it twinned.
    if (replica_.is_home(unit)) twin_interval_.emplace(unit, acquires_);  // the first twin of the interval counts
    dirty_.push_back(unit);
    ++stats_.twins;
    replica_.set_state(unit, exclusive);
  }

  // write_shared: sends every dirty unit's diff home and waits until each
  // is applied (and the other copies invalidated). A race a home reported
  // is an error here under DSM_CHECK_RACES=1.
  void send_diffs() {
    std::vector<std::byte> wire;
    for (std::size_t u : dirty_) {
      const auto g = rt_.worker().lock();
      wire.assign(sizeof(diff_head), std::byte{0});
      const auto changed = take_changes(u, wire);
      if (!changed) continue;
      replica_.set_state(u, shared);
      if (*changed == 0) continue;
      const diff_head head{base_version_[u]};
      std::memcpy(wire.data(), &head, sizeof head);
      ++stats_.diffs;
      stats_.diff_bytes += *changed;
      send_expecting_acknowledgement(u, k_diff, wire);
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
  void await_acknowledgements(const char* what) {
    rt_.worker().wait_until([&] { return acknowledgements_due_.load(std::memory_order_acquire) == 0; },
                            rt_.worker().timeout(),
                            [&] { return fmt::format("{}: {} {}", object_, acknowledgements_due_.load(), what); });
  }

  // Drops the copies invalidated since the last acquire. A dirty
  // (write_shared) copy among them is sent home first: its own bytes are
  // not lost, the rest of it is stale.
  void drop_invalidated() {
    std::vector<std::size_t> dropped;
    {
      const auto g = rt_.worker().lock();
      dropped.swap(invalidated_);
      ++acquires_;
    }
    if (dropped.empty()) return;
    if (std::any_of(dropped.begin(), dropped.end(), [&](std::size_t u) { return replica_.state(u) == exclusive; }) &&
        protocol_ == protocol::write_shared)
      send_diffs();
    for (std::size_t u : dropped)
      if (replica_.state(u) == shared) replica_.set_state(u, invalid);
  }

  // single_writer, before a barrier: every unit owned here goes home. The
  // home takes it only if this rank still owns it when the message's turn
  // comes (a recall may have moved it on meanwhile, with these bytes).
  // Only the bytes this rank changed go (the home may have written others
  // through local()); a unit it did not change sends nothing. The unit
  // stays owned until the barrier ends, and its twin too: a recall
  // meanwhile sends every change since the grant again, since the home may
  // take the recall first and then drop this write-back as no longer the
  // owner's.
  void write_home_owned() {
    std::vector<std::byte> wire;
    for (std::size_t u = 0; u < units_.units(); ++u) {
      if (replica_.is_home(u) || replica_.state(u) != exclusive) continue;
      const auto g = rt_.worker().lock();
      if (replica_.state(u) != exclusive) continue;  // recalled meanwhile
      wire.clear();
      const auto changed = take_changes(u, wire, true);
      if (!changed)  // never silently: its writes would be lost
        throw error(errc::internal, fmt::format("{}: unit {} owned without a twin at a barrier", object_, u));
      if (*changed == 0) continue;
      ++stats_.write_backs;
      stats_.write_back_bytes += *changed;
      send_expecting_acknowledgement(u, k_write_back, wire);
    }
    await_acknowledgements("units written home");
  }

  // After every rank passed a barrier: a fresh interval.
  void start_interval() {
    const auto g = rt_.worker().lock();
    for (auto& [unit, t] : txns_)
      if (!t.granted || !t.waiting.empty())
        throw error(errc::internal, fmt::format("{}: unit {} still in a transaction at a barrier", object_, unit));
    txns_.clear();
    history_.clear();
    twins_.clear();
    twin_interval_.clear();
    dirty_.clear();
    invalidated_.clear();
    ++acquires_;
    std::fill(owner_.begin(), owner_.end(), static_cast<std::int32_t>(me_));
    std::fill(sharers_.begin(), sharers_.end(), 0);
    replica_.reset(own_state());
    ++epoch_;
    auto early = std::move(stash_);
    stash_.clear();
    for (auto& m : early) handle_kept(m);
    deliver_to_self();
  }

  // ---- messages (worker lock held) ---------------------------------------

  void on_message(const transport::message_header& h, std::span<const std::byte> payload) override {
    handle(h, payload);
    deliver_to_self();
  }

 private:
  void handle(const transport::message_header& h, std::span<const std::byte> payload) {
    const std::uint64_t unit = h.word[1];
    const std::uint8_t k = static_cast<std::uint8_t>(h.word[2] & 0xff);
    const std::uint64_t epoch = h.word[2] >> 8;
    const std::uint32_t from = h.source_rank;
    if (unit >= units_.units() || k == 0 || k > last_kind)
      throw error(errc::protocol, fmt::format("{}: message kind {} for unit {} of {}", object_, unsigned{k}, unit,
                                              units_.units()));
    const bool request = k == k_read || k == k_write || k == k_diff || k == k_write_back;
    if ((k == k_write || k == k_recall || k == k_recalled || k == k_write_back) && protocol_ != protocol::single_writer)
      throw error(errc::protocol, fmt::format("{}: ownership message under write_shared", object_));
    if (k == k_diff && protocol_ != protocol::write_shared)
      throw error(errc::protocol, fmt::format("{}: diff under single_writer", object_));
    if (request && epoch == epoch_ + 1) {  // the sender is past a barrier this rank is still in
      stash_.push_back({h, {payload.begin(), payload.end()}});
      return;
    }
    if (k == k_installed && epoch < epoch_) return;  // that barrier closed the transaction already
    if (epoch != epoch_)
      throw error(errc::protocol, fmt::format("{}: message of barrier interval {} in interval {}", object_, epoch, epoch_));
    const bool to_home = request || k == k_installed || k == k_invalidated || k == k_recalled;
    if (to_home && !replica_.is_home(unit))
      throw error(errc::protocol, fmt::format("{}: home message for unit {}, homed on rank {}", object_, unit,
                                              units_.home_of(unit)));
    switch (k) {
      case k_read:
      case k_write:
      case k_diff:
      case k_write_back:
        validate_request(k, unit, from, payload);
        return home_request(k, unit, from, payload);
      case k_installed: return home_installed(unit, from, payload);
      case k_invalidated: return home_acknowledged(unit, from, payload, false);
      case k_recalled: return home_acknowledged(unit, from, payload, true);
      case k_grant: return on_grant(unit, from, payload);
      case k_invalidate: return on_invalidate(unit, from, payload);
      case k_recall: return on_recall(unit, from, payload);
      case k_diff_applied: return on_diff_applied(unit, from, payload);
    }
  }

  // A handler reading memory the program's thread may be writing, on a
  // peer's behalf: a home's unit copied into a grant (what a peer's
  // one-sided get reads at any time, and a grant of a unit the home was
  // just recalled from, Dekker-ordered as in on_recall), or a home's own
  // changes compared for race detection. Concurrent program stores make
  // such a copy stale, which release consistency allows and the next
  // synchronisation repairs; it never writes a byte. Outside
  // ThreadSanitizer's model (it sees no fence and no get), so its reads
  // are not checked; the handlers' writes always are.
  [[nodiscard]] static dsm::detail::tsan_ignore_reads home_memory_read() noexcept { return {}; }

  std::uint8_t own_state() const noexcept { return protocol_ == protocol::single_writer ? exclusive : shared; }
  std::size_t local_unit(std::size_t unit) const noexcept { return unit - me_ * units_.units_per_rank(); }

  // Messages to this rank itself (a home that is also requester, writer or
  // owner) skip UCX and queue here: they are handled in order once the
  // current handler or request is done, never inside it.
  void send(std::size_t to, std::size_t unit, std::uint8_t k, std::span<const std::byte> payload = {}) {
    if (to != me_) return rt_.send_to_object(static_cast<std::uint32_t>(to), id_, unit, k | (epoch_ << 8), payload);
    transport::message_header h{transport::message_magic, static_cast<std::uint32_t>(me_), {id_, unit, k | (epoch_ << 8)}};
    to_self_.push_back({h, {payload.begin(), payload.end()}});
  }
  // From the program's thread.
  void post(std::size_t to, std::size_t unit, std::uint8_t k, std::span<const std::byte> payload = {}) {
    const auto g = rt_.worker().lock();
    send(to, unit, k, payload);
    deliver_to_self();
  }
  void deliver_to_self() {
    if (delivering_) return;
    delivering_ = true;
    while (!to_self_.empty()) {
      stashed m = std::move(to_self_.front());
      to_self_.pop_front();
      handle_kept(m);
    }
    delivering_ = false;
  }
  // A message handled after its arrival: refused like one on arrival.
  void handle_kept(const stashed& m) {
    try {
      handle(m.header, m.payload);
    } catch (const std::exception& e) {
      rt_.messages().reject("object", m.header.source_rank, e);
    }
  }
  template <class Head>
  static std::vector<std::byte> bytes_of(const Head& head) {
    std::vector<std::byte> out(sizeof head);
    std::memcpy(out.data(), &head, sizeof head);
    return out;
  }
  template <class Head>
  Head head_of(std::span<const std::byte> payload, std::size_t unit, const char* what) const {
    Head head;
    if (payload.size() < sizeof head)
      throw error(errc::protocol, fmt::format("{}: {} for unit {} of {} bytes", object_, what, unit, payload.size()));
    std::memcpy(&head, payload.data(), sizeof head);
    return head;
  }

  // Global index of byte `offset` of `unit`, for messages.
  std::size_t index_of(std::size_t unit, std::size_t offset) const {
    return distribution_.global_index(units_.home_of(unit), units_.first_local(unit) + offset / units_.element_bytes());
  }

  // -- sharer sets
  bool is_sharer(std::size_t lu, std::size_t r) const noexcept {
    return (sharers_[lu * sharer_words_ + r / 64] >> (r % 64)) & 1;
  }
  void add_sharer(std::size_t lu, std::size_t r) noexcept { sharers_[lu * sharer_words_ + r / 64] |= 1ull << (r % 64); }
  void clear_sharers(std::size_t lu) noexcept {
    std::fill_n(sharers_.begin() + static_cast<std::ptrdiff_t>(lu * sharer_words_), sharer_words_, 0);
  }
  // Sends an invalidation to every sharer except `keep` and this rank's
  // own home copy under write_shared (the home's memory is the unit); the
  // transaction records whose acknowledgements it awaits.
  void invalidate_sharers(std::size_t unit, std::size_t lu, std::size_t keep, transaction& t) {
    for (std::size_t r = 0; r < rt_.ranks(); ++r) {
      if (r == keep || !is_sharer(lu, r)) continue;
      if (r == me_ && protocol_ == protocol::write_shared) continue;
      send(r, unit, k_invalidate);
      t.invalidating.push_back(static_cast<std::uint32_t>(r));
    }
    stats_.invalidations_sent += t.invalidating.size();
    clear_sharers(lu);
  }

  // -- home side
  // Everything a request's sender controls is checked when it arrives,
  // before it can queue behind a transaction: a malformed request is
  // refused alone, never dropping the requests queued with it.
  void validate_request(std::uint8_t k, std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) const {
    switch (k) {
      case k_read:
      case k_write:
        if (!payload.empty())
          throw error(errc::protocol, fmt::format("{}: {} request for unit {} from rank {} with a payload", object_,
                                                  k == k_read ? "read" : "write", unit, from));
        return;
      case k_write_back:
        if (from == me_)
          throw error(errc::protocol, fmt::format("{}: unit {} written back by its home", object_, unit));
        (void)decoded_runs(payload, unit, from, "write-back");
        return;
      case k_diff: {
        const auto head = head_of<diff_head>(payload, unit, "diff");
        (void)decoded_runs(payload.subspan(sizeof head), unit, from, "diff");
        return;
      }
    }
  }
  std::vector<byte_run> decoded_runs(std::span<const std::byte> wire, std::size_t unit, std::uint32_t from,
                                     const char* what) const {
    try {
      return decode_runs(wire, units_.bytes_in(unit));
    } catch (const error& e) {
      throw error(errc::protocol, fmt::format("{}: {} for unit {} from rank {}: {}", object_, what, unit, from, e.message()));
    }
  }

  void home_request(std::uint8_t k, std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
    const auto busy = txns_.find(local_unit(unit));
    if (busy != txns_.end()) {
      busy->second.waiting.push_back({k, from, {payload.begin(), payload.end()}});
      return;
    }
    start(k, unit, from, payload);
  }

  // Begins a transaction; it stays in txns_ while it waits for anything.
  void start(std::uint8_t k, std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
    const std::size_t lu = local_unit(unit);
    transaction t;
    t.kind = k;
    t.requester = from;
    if (k == k_read) {
      if (protocol_ == protocol::single_writer && owner_[lu] >= 0 && static_cast<std::uint32_t>(owner_[lu]) != from) {
        t.recalled_from = owner_[lu];
        t.recall_due = true;
        send(static_cast<std::size_t>(owner_[lu]), unit, k_recall, bytes_of(recall_head{shared, {}}));
      }
    } else if (k == k_write) {
      invalidate_sharers(unit, lu, from, t);
      if (owner_[lu] >= 0 && static_cast<std::uint32_t>(owner_[lu]) != from) {
        t.recalled_from = owner_[lu];
        t.recall_due = true;
        send(static_cast<std::size_t>(owner_[lu]), unit, k_recall, bytes_of(recall_head{invalid, {}}));
      }
    } else if (k == k_write_back) {
      // Taken only from the rank that still owns the unit: a recall may
      // have moved it on (with these bytes) since this was sent.
      if (owner_[lu] == static_cast<std::int32_t>(from)) apply_owner_changes(unit, payload, from, "write-back");
    } else {
      apply_diff(unit, lu, from, payload, t);
    }
    auto& placed = txns_[lu] = std::move(t);
    if (!placed.awaiting()) proceed(unit, lu, placed);
  }

  // An owner's changed runs into the home's memory (which peers may then
  // read directly).
  void apply_owner_changes(std::size_t unit, std::span<const std::byte> wire, std::uint32_t from, const char* what) {
    const auto runs = decoded_runs(wire, unit, from, what);
    maintain_.after_transfer_wrote(const_cast<std::byte*>(wire.data()), wire.size());
    apply_runs(runs, wire, replica_.unit_data(unit));
    for (const auto& r : runs) maintain_.before_transfer_reads(replica_.unit_data(unit) + r.offset, r.length);
  }

  // Everything the transaction waited for has arrived.
  void proceed(std::size_t unit, std::size_t lu, transaction& t) {
    if (t.kind == k_diff || t.kind == k_write_back) {
      send(t.requester, unit, k_diff_applied, bytes_of(t.race));
      return finish(unit, lu);
    }
    std::uint8_t granted = shared;
    if (t.kind == k_read) {
      if (t.recalled_from >= 0) add_sharer(lu, static_cast<std::size_t>(t.recalled_from));
      if (protocol_ == protocol::single_writer) owner_[lu] = -1;
      add_sharer(lu, t.requester);
    } else {
      granted = exclusive;
      if (owner_[lu] != static_cast<std::int32_t>(t.requester)) ++stats_.ownership_transfers;
      owner_[lu] = static_cast<std::int32_t>(t.requester);
      clear_sharers(lu);
    }
    auto message = bytes_of(grant_head{version_[lu], granted, {}});
    if (t.requester != me_) {
      const std::byte* data = replica_.unit_data(unit);
      maintain_.before_transfer_reads(data, units_.bytes_in(unit));
      // Read as a peer's one-sided get would read it (see home_memory_read).
      const auto unchecked = home_memory_read();
      message.insert(message.end(), data, data + units_.bytes_in(unit));
    }
    t.granted = true;
    send(t.requester, unit, k_grant, message);
  }

  // The transaction is over: the next queued request starts.
  // Requests were validated on arrival; should one fail anyway, it alone
  // is refused and the ones behind it are served.
  void finish(std::size_t unit, std::size_t lu) {
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

  void home_installed(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
    const std::size_t lu = local_unit(unit);
    const auto t = txns_.find(lu);
    if (t == txns_.end() || !t->second.granted || t->second.requester != from || !payload.empty())
      throw error(errc::protocol, fmt::format("{}: unexpected 'installed' for unit {} from rank {}", object_, unit, from));
    finish(unit, lu);
  }

  void home_acknowledged(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload, bool recalled) {
    const std::size_t lu = local_unit(unit);
    const auto found = txns_.find(lu);
    // Matched to the transaction, the unit and the sender: an
    // acknowledgement nobody was asked for completes nothing.
    const bool expected =
        found != txns_.end() && !found->second.granted &&
        (recalled ? found->second.recall_due && found->second.recalled_from == static_cast<std::int64_t>(from)
                  : std::find(found->second.invalidating.begin(), found->second.invalidating.end(), from) !=
                        found->second.invalidating.end());
    if (!expected)
      throw error(errc::protocol, fmt::format("{}: unexpected {} for unit {} from rank {}", object_,
                                              recalled ? "recalled unit" : "invalidation acknowledgement", unit, from));
    transaction& t = found->second;
    if (recalled) {
      if (from == me_) {
        if (!payload.empty()) throw error(errc::protocol, fmt::format("{}: home recalled itself with data", object_));
      } else {
        apply_owner_changes(unit, payload, from, "recalled unit");
      }
      t.recall_due = false;
    } else {
      if (!payload.empty())
        throw error(errc::protocol,
                    fmt::format("{}: invalidation acknowledgement for unit {} from rank {} with a payload", object_, unit, from));
      std::erase(t.invalidating, from);
    }
    if (!t.awaiting()) proceed(unit, lu, t);
  }

  void apply_diff(std::size_t unit, std::size_t lu, std::uint32_t from, std::span<const std::byte> payload,
                  transaction& t) {
    const auto head = head_of<diff_head>(payload, unit, "diff");
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
      for (const auto& r : runs) maintain_.before_transfer_reads(replica_.unit_data(unit) + r.offset, r.length);
      // The home is writing the unit too: its twin takes the others' bytes,
      // so its own diff holds only its own.
      if (const auto twin = twins_.find(unit); twin != twins_.end()) apply_runs(runs, wire, twin->second.data());
    }
    auto& written_here = history_[lu];
    // A diff from another rank conflicts with bytes its copy did not
    // include (applied after the version it twinned); the home's own diff
    // with bytes applied since the home's last acquire.
    const auto interval = twin_interval_.find(unit);
    for (const auto& w : written_here) {
      if (t.race.conflict != 0) break;
      if (w.writer == from) continue;
      const bool ordered = from == me_ ? interval != twin_interval_.end() && w.home_interval < interval->second
                                       : w.version <= head.base_version;
      if (ordered) continue;
      if (const auto at = first_overlap(runs, w.runs)) report_race(t, unit, *at, w.writer, from);
    }
    if (from == me_ && interval != twin_interval_.end()) twin_interval_.erase(interval);
    if (written_here.size() == history_limit) written_here.erase(written_here.begin());
    written_here.push_back({++version_[lu], from, acquires_, std::move(runs)});
    invalidate_sharers(unit, lu, from, t);
    if (from != me_) add_sharer(lu, from);
  }

  void report_race(transaction& t, std::size_t unit, std::size_t byte, std::size_t first, std::size_t second) {
    t.race = {1, static_cast<std::uint32_t>(first), byte};
    ++stats_.races;
    if (!check_races_) fmt::print(stderr, "dsm: rank {}: warning: {}\n", me_, race_text(unit, byte, first, second));
  }
  std::string race_text(std::size_t unit, std::size_t byte, std::size_t first, std::size_t second) const {
    return fmt::format("{}: data race on index {} (unit {}, byte {}): written by rank {} and rank {} in one interval",
                       object_, index_of(unit, byte), unit, byte, first, second);
  }

  // -- requesting side
  void on_grant(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
    if (replica_.state(unit) != pending || from != units_.home_of(unit))
      throw error(errc::protocol, fmt::format("{}: unsolicited grant of unit {} from rank {}", object_, unit, from));
    const auto head = head_of<grant_head>(payload, unit, "grant");
    const std::size_t data_bytes = replica_.is_home(unit) ? 0 : units_.bytes_in(unit);
    if (payload.size() != sizeof head + data_bytes || (head.state != shared && head.state != exclusive) ||
        (head.state == exclusive && protocol_ != protocol::single_writer))
      throw error(errc::protocol, fmt::format("{}: grant of unit {} with {} bytes, state {}", object_, unit,
                                              payload.size(), unsigned{head.state}));
    if (data_bytes != 0) {
      auto data = payload.subspan(sizeof head);
      maintain_.after_transfer_wrote(const_cast<std::byte*>(data.data()), data.size());
      std::memcpy(replica_.unit_data(unit), data.data(), data.size());
      // The owner's twin: what it hands back is what differs from this.
      if (head.state == exclusive) twins_[unit].assign(data.begin(), data.end());
    }
    base_version_[unit] = head.version;
    std::erase(invalidated_, unit);  // older than this copy
    replica_.set_state(unit, head.state);
    // An exclusive grant for a single write is confirmed by the writer once
    // it has written: until then the home recalls nobody, so a unit in
    // demand cannot be taken away between its arrival and the write.
    if (head.state != exclusive || unit != holding_) send(from, unit, k_installed);
  }

  void on_invalidate(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
    if (from != units_.home_of(unit) || !payload.empty())
      throw error(errc::protocol, fmt::format("{}: invalidation of unit {} from rank {}", object_, unit, from));
    invalidated_.push_back(unit);
    ++stats_.invalidations_received;
    send(from, unit, k_invalidated);
  }

  // single_writer: gives the unit up at once. The state drops before the
  // data is copied out, with a full fence between; the program's write
  // path stores, fences, then re-checks the state. One of the two sees the
  // other: the store is in the copy, or the writer notices and writes again
  // once it owns the unit again (Dekker).
  void on_recall(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
    const auto head = head_of<recall_head>(payload, unit, "recall");
    if (from != units_.home_of(unit) || payload.size() != sizeof head || replica_.state(unit) != exclusive ||
        (head.to_state != shared && head.to_state != invalid))
      throw error(errc::protocol, fmt::format("{}: recall of unit {} from rank {} in state {}", object_, unit, from,
                                              unsigned{replica_.state(unit)}));
    replica_.set_state(unit, head.to_state);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (replica_.is_home(unit)) return send(from, unit, k_recalled);
    std::vector<std::byte> wire;
    // The Dekker pair above is outside ThreadSanitizer's model: the reads of
    // the unit may race with a store the program then redoes.
    const auto unchecked = home_memory_read();
    if (!take_changes(unit, wire))
      throw error(errc::internal, fmt::format("{}: unit {} owned without a twin", object_, unit));
    maintain_.before_transfer_reads(wire.data(), wire.size());
    send(from, unit, k_recalled, wire);
  }

  // Appends the encoded runs where `unit` differs from its twin; the
  // number of changed bytes, or none without a twin. The twin is dropped
  // unless `keep_twin`. Worker lock held.
  std::optional<std::size_t> take_changes(std::size_t unit, std::vector<std::byte>& wire, bool keep_twin = false) {
    const auto found = twins_.find(unit);
    if (found == twins_.end()) return std::nullopt;
    const std::byte* data = replica_.unit_data(unit);
    const auto runs = changed_runs(data, found->second.data(), found->second.size());
    encode_runs(runs, data, wire);
    if (!keep_twin) twins_.erase(found);
    return run_bytes(runs);
  }

  // Worker lock held. The home's acknowledgement is matched to this unit.
  void send_expecting_acknowledgement(std::size_t unit, std::uint8_t k, std::span<const std::byte> wire) {
    ++acknowledgements_by_unit_[unit];
    acknowledgements_due_.fetch_add(1, std::memory_order_relaxed);
    maintain_.before_transfer_reads(wire.data(), wire.size());
    send(units_.home_of(unit), unit, k, wire);
    deliver_to_self();
  }

  void on_diff_applied(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) {
    const auto report = head_of<race_report>(payload, unit, "diff acknowledgement");
    const auto due = acknowledgements_by_unit_.find(unit);
    if (from != units_.home_of(unit) || payload.size() != sizeof report || due == acknowledgements_by_unit_.end() ||
        report.conflict > 1 ||
        (report.conflict == 1 && (report.other_rank >= rt_.ranks() || report.byte >= units_.bytes_in(unit))))
      throw error(errc::protocol, fmt::format("{}: unexpected diff acknowledgement for unit {} from rank {}", object_, unit, from));
    if (--due->second == 0) acknowledgements_by_unit_.erase(due);
    if (report.conflict == 1 && race_found_.empty()) race_found_ = race_text(unit, report.byte, report.other_rank, me_);
    acknowledgements_due_.fetch_sub(1, std::memory_order_release);
  }

  dsm::detail::runtime_state& rt_;
  protocol protocol_;
  std::uint64_t id_;
  const dsm::distribution& distribution_;
  const unit_map& units_;
  std::vector<global_ptr<std::byte>> blocks_;
  std::string object_;
  std::size_t me_;
  replica replica_;
  std::uint64_t epoch_ = 0;

  // Directory of the units homed here (indexed by local unit).
  std::size_t sharer_words_;
  std::vector<std::int32_t> owner_;  // single_writer: the rank holding it exclusively, -1 when shared
  std::vector<std::uint64_t> version_;
  std::vector<std::uint64_t> sharers_;
  std::unordered_map<std::size_t, transaction> txns_;
  std::unordered_map<std::size_t, std::vector<written>> history_;
  std::vector<stashed> stash_;
  std::deque<stashed> to_self_;
  bool delivering_ = false;
  std::uint64_t acquires_ = 0;  // this rank's acquires: the home's own writes race with diffs of the same interval
  std::unordered_map<std::size_t, std::uint64_t> twin_interval_;  // home units: acquires_ when twinned

  // This rank's copies.
  std::vector<std::uint64_t> base_version_;
  std::unordered_map<std::size_t, std::vector<std::byte>> twins_;
  std::vector<std::size_t> dirty_;
  std::vector<std::size_t> invalidated_;
  static constexpr std::size_t no_unit = ~std::size_t{0};
  std::size_t holding_ = no_unit;  // the unit an exclusive grant is held for, until written (worker lock)
  std::unordered_map<std::size_t, std::uint32_t> acknowledgements_by_unit_;  // diffs and write-backs unacknowledged (worker lock)
  std::atomic<std::size_t> acknowledgements_due_{0};  // their total, for the program's thread to wait on
  std::string race_found_;  // reported by a home about this rank's diff

  bool concurrent_handlers_;
  bool check_races_;
  array_stats stats_;
  maintenance maintain_;
};

}  // namespace dsm::coherence

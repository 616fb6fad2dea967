// The part of the caching policies single_writer and write_shared that
// moves units between ranks: read misses, the home's directory of owners
// (single_writer) and the releases and acquires of both. Bytes only: the
// policies add types, element addressing and their write paths.
//
// The protocol (see docs/protocol.md): reads never ask the home, writes
// send home what they changed at the release, acquires drop what may be
// stale.
//
// * A read miss is one get of the unit from the home's memory, which is
//   always the unit as of the last release that reached the home: nothing
//   is registered, the home's CPU takes no part (release counts are in
//   registered memory, release_counts.hpp). The copy is valid until this
//   rank's next acquire.
// * Releases (unlock, barrier) put every change home before they end: a
//   write_shared writer's diff of each twinned unit, a single_writer
//   owner's changed runs of each owned unit, the home's own writes. The
//   home applies them, counts a release, and acknowledges; the release
//   waits for every acknowledgement, so the count moved before the next
//   acquirer of the lock (or anyone past the barrier) can look.
// * Acquires drop the copies of every home whose count moved since this
//   rank's last acquire (self-invalidation). Correctness: a release R that
//   happened before acquire A was counted before A reads the count; either
//   A sees the count moved and drops the home's copies, or the copies were
//   fetched after A's previous count read, which already included R; both
//   ways nothing older than R is read after A. A write not ordered before
//   A may or may not be seen, as release consistency allows. A barrier
//   drops every copy.
// * single_writer: a write needs the unit exclusively, through the home,
//   which serialises: one transaction per unit, later requests queue
//   behind it. The home recalls the current owner, which gives the unit up
//   at once (its handler drops to a read copy, then sends what it changed
//   since its grant), and grants the unit with its data. An owner twins
//   what it was granted, so recalls and write-backs carry only its
//   changes: the home's memory is written through local() too, and those
//   bytes survive. A grant ends only when the requester says it installed
//   it (UCX does not order active messages).
// * write_shared: writers twin the unit at the first write and send the
//   changed bytes at the release; the home applies them and checks them
//   against the other writers' diffs that were not ordered before (data
//   races).
// * Messages are stamped with the barrier interval; a request from a rank
//   already past a barrier waits at the home until the home is past it.
#pragma once

#include <dsm/arch/fence.hpp>
#include <dsm/coherence/array_stats.hpp>
#include <dsm/coherence/diff.hpp>
#include <dsm/coherence/engine_records.hpp>
#include <dsm/coherence/release_counts.hpp>
#include <dsm/coherence/replica.hpp>
#include <dsm/coherence/unit_fetcher.hpp>
#include <dsm/coherence/unit_map.hpp>
#include <dsm/coherence/wire.hpp>
#include <dsm/detail/sanitizer.hpp>
#include <dsm/distribution.hpp>
#include <dsm/error.hpp>
#include <dsm/global_ptr.hpp>
#include <dsm/rma.hpp>
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
  using queued = engine_records::queued;
  using transaction = engine_records::transaction;
  using written = engine_records::written;
  using stashed = engine_records::stashed;
  using sent_back = engine_records::sent_back;
  static constexpr std::size_t history_limit = 64;  // diffs per unit kept for race checks, per barrier interval

 public:
  // Every rank number here is a rank of `team` (the array's).
  engine(protocol p, dsm::detail::team_state& team, std::uint64_t object_id, const dsm::distribution& d,
         const unit_map& units, const mirror_space& mirror, std::vector<global_ptr<std::byte>> blocks,
         std::string object)
      : rt_(dsm::detail::rt()),
        team_(team),
        protocol_(p),
        id_(object_id),
        distribution_(d),
        units_(units),
        object_(std::move(object)),
        me_(team.rank),
        replica_(units, mirror, me_),
        counts_(rt_, team, object_),
        owner_(units.units_per_rank(), static_cast<std::int32_t>(me_)),
        seen_(team.size(), 0),
        seen_known_(team.size(), 0),
        grants_(units.units(), 0),
        concurrent_handlers_(rt_.worker().shared_between_threads()),
        asymmetric_fences_(concurrent_handlers_ && arch::asymmetric_fences()),
        check_races_(rt_.config().check_races),
        maintain_{&stats_},
        fetcher_(units, replica_, std::move(blocks), stats_, object_) {
    replica_.reset(shared);
    rt_.register_object(id_, this, team_);
    // Nobody may send this array a message before every member can take it.
    rt_.synchronize(team_);
  }
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;
  ~engine() {
    rt_.retire_object(id_);
    if (rt_.config().stats) stats_.print(stderr, static_cast<int>(rt_.rank()), object_);
  }

  replica& copies() noexcept { return replica_; }
  const replica& copies() const noexcept { return replica_; }
  array_stats& stats() noexcept { return stats_; }
  // single_writer's write hit, after its store: whether the unit is still
  // owned, so that a recall sends the store (on_recall's Dekker pair). Only
  // a progress thread runs handlers beside the program's thread.
  bool still_exclusive(std::size_t unit) const noexcept {
    if (!concurrent_handlers_) [[likely]] return true;  // the hit falls through; the recheck is the jump
    arch::light_fence(asymmetric_fences_);
    return replica_.state(unit) == exclusive;
  }

  // ---- the requesting side (program's thread) ---------------------------

  // Read copies: one get each from the home's memory (unit_fetcher.hpp).
  // Units homed here are always readable.
  void fetch(std::span<const std::size_t> wanted) { fetcher_.fetch(wanted); }
  void fetch(std::size_t unit) { fetcher_.fetch(unit); }
  void prefetch(std::span<const std::size_t> wanted) { fetcher_.prefetch(wanted); }
  // Read copies the program no longer needs; units it writes stay.
  void drop(std::span<const std::size_t> wanted) {
    const auto g = rt_.worker().lock();
    fetcher_.drop(wanted);
  }

  // single_writer: each listed unit exclusively (requested together, then
  // awaited).
  void obtain_exclusive(std::span<const std::size_t> wanted);

  // single_writer: one unit exclusively, held until confirm_exclusive(): the
  // home passes it on to nobody before this rank has written it. One unit
  // at a time: ranks holding several while waiting for more could wait on
  // each other for ever. (Units obtained in a batch are confirmed at once.)
  void obtain_to_write(std::size_t unit);
  void confirm_exclusive(std::size_t unit);

  // single_writer, the home's first write to one of its units since its
  // last release: no message when no other rank owns the unit. Recorded,
  // so that the release counts it.
  bool claim_home_unit(std::size_t unit);

  // write_shared: the first write to a readable unit keeps a twin of it.
  void make_twin(std::size_t unit);

  // Every change of this rank goes home; returns when each is applied
  // (and counted). write_shared: a race a home reported is an error here
  // under DSM_CHECK_RACES=1.
  void release();

  // A barrier's release: as release(), and on a CPU whose caches the NIC
  // does not see, this rank's whole block is cleaned, since local() writes
  // are plain stores nobody tracks and peers read the block directly.
  void arrive();

  // Drops the copies of every home whose release count moved since this
  // rank's last acquire. A write_shared rank with unsent changes sends them
  // first: their units are dropped too, and its bytes must not be lost.
  void acquire();

  // After every rank passed a barrier: a fresh interval.
  void start_interval();

  // ---- messages (worker lock held) ---------------------------------------

  void on_message(const transport::message_header& h, std::span<const std::byte> payload) override {
    handle(h, payload);
    deliver_to_self();
  }

 private:
  // write_shared: sends every dirty unit's diff home and waits until each
  // is applied.
  void send_diffs();

  // single_writer: the changes of every unit owned here (homed elsewhere)
  // go home. The home takes them only if this rank still owns the unit
  // when their turn comes (a recall may have moved it on meanwhile, with
  // these bytes). Only the bytes this rank changed go; a unit it did not
  // change sends nothing. The twin stays until the home applied them: a
  // recall meanwhile sends every change since the grant again, since the
  // home may take the recall first and then drop this write-back.
  void write_back_owned();

  // single_writer: the home's own writes since its last release are in its
  // memory; they are counted (and cleaned for the NIC), and the next write
  // to each unit is recorded again.
  void publish_home_writes();

  void await_acknowledgements(const char* what);

  // Worker lock held: copies of home h's units to invalid; owned ones stay
  // (nobody else wrote them).
  std::size_t drop_copies_of(std::size_t h);
  std::size_t count_remote_copies() const;
  // What a diff says this rank saw of home h (worker lock held).
  std::uint64_t seen_count(std::size_t h) const { return seen_known_[h] ? seen_[h] : 0; }

  // Checks a message's kind, interval and addressee, then hands it to its
  // handler (engine_dispatch.hpp).
  void handle(const transport::message_header& h, std::span<const std::byte> payload);

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

  std::size_t local_unit(std::size_t unit) const noexcept { return unit - me_ * units_.units_per_rank(); }

  // Messages to this rank itself (a home that is also requester, writer or
  // owner) skip UCX and queue here: they are handled in order once the
  // current handler or request is done, never inside it.
  void send(std::size_t to, std::size_t unit, std::uint8_t k, std::span<const std::byte> payload = {}) {
    if (to != me_)
      return rt_.send_to_object(team_, static_cast<std::uint32_t>(to), id_, unit, wire::stamp(k, epoch_), payload);
    transport::message_header h{transport::message_magic, static_cast<std::uint32_t>(me_), {id_, unit, wire::stamp(k, epoch_)}};
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

  // -- home side
  // Everything a request's sender controls is checked when it arrives,
  // before it can queue behind a transaction: a malformed request is
  // refused alone, never dropping the requests queued with it.
  void validate_request(std::uint8_t k, std::size_t unit, std::uint32_t from, std::span<const std::byte> payload) const;
  std::vector<byte_run> decoded_runs(std::span<const std::byte> wire, std::size_t unit, std::uint32_t from, const char* what) const;

  void home_request(std::uint8_t k, std::size_t unit, std::uint32_t from, std::span<const std::byte> payload);

  // Begins a transaction; it stays in txns_ while it waits for anything.
  void start(std::uint8_t k, std::size_t unit, std::uint32_t from, std::span<const std::byte> payload);

  // An owner's changed runs into the home's memory (which peers then read
  // directly), counted as a release.
  std::uint64_t apply_owner_changes(std::size_t unit, std::span<const std::byte> wire, std::uint32_t from, const char* what);

  // Everything the transaction waited for has arrived.
  void proceed(std::size_t unit, std::size_t lu, transaction& t);

  // The transaction is over: the next queued request starts.
  // Requests were validated on arrival; should one fail anyway, it alone
  // is refused and the ones behind it are served.
  void finish(std::size_t unit, std::size_t lu);

  void home_installed(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload);

  // The recalled owner's changes: matched to the transaction, the unit and
  // the sender (a recalled unit nobody was asked for completes nothing),
  // applied, acknowledged to the owner (whose next release waits for it),
  // and the grant goes out.
  void home_recalled(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload);

  void apply_diff(std::size_t unit, std::size_t lu, std::uint32_t from, std::span<const std::byte> payload, transaction& t);

  void report_race(transaction& t, std::size_t unit, std::size_t byte, std::size_t first, std::size_t second);
  std::string race_text(std::size_t unit, std::size_t byte, std::size_t first, std::size_t second) const;

  // -- requesting side
  void on_grant(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload);

  // single_writer: gives the unit up at once, keeping a read copy (valid
  // until this rank's next acquire). The state drops before the data is
  // copied out, with a fence between; the program's write path stores,
  // fences, then re-checks the state. One of the two sees the other: the
  // store is in the copy, or the writer notices and writes again once it
  // owns the unit again (Dekker). The handler's fence is the heavy one of
  // arch::heavy_fence (membarrier: every thread of this process executes a
  // full barrier before it returns), so the write hit's is a compiler
  // barrier; where the kernel lacks membarrier both are full fences.
  void on_recall(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload);

  // Appends the encoded runs where `unit` differs from its twin; the
  // number of changed bytes, or none without a twin. The twin is dropped
  // unless `keep_twin`. Worker lock held.
  std::optional<std::size_t> take_changes(std::size_t unit, std::vector<std::byte>& wire, bool keep_twin = false);

  // Worker lock held. The home's acknowledgement is matched to this unit.
  void send_expecting_acknowledgement(std::size_t unit, std::uint8_t k, std::span<const std::byte> wire);

  // The home applied (or, for a write-back from a former owner, dropped)
  // changes this rank sent.
  void on_applied(std::size_t unit, std::uint32_t from, std::span<const std::byte> payload);

  dsm::detail::runtime_state& rt_;
  dsm::detail::team_state& team_;
  protocol protocol_;
  std::uint64_t id_;
  const dsm::distribution& distribution_;
  const unit_map& units_;
  std::string object_;
  std::size_t me_;
  replica replica_;
  release_counts counts_;
  std::uint64_t epoch_ = 0;

  // Directory of the units homed here (indexed by local unit).
  std::vector<std::int32_t> owner_;  // single_writer: the rank that may write it
  std::unordered_map<std::size_t, transaction> txns_;
  std::unordered_map<std::size_t, std::vector<written>> history_;
  std::vector<stashed> stash_;
  std::deque<stashed> to_self_;
  bool delivering_ = false;
  std::uint64_t acquires_ = 0;  // this rank's acquires: the home's own writes race with diffs of the same interval
  std::unordered_map<std::size_t, std::uint64_t> twin_interval_;  // home units: acquires_ when twinned
  std::vector<std::size_t> home_written_;  // single_writer: home units written since the last release

  // This rank's copies (worker lock).
  std::vector<std::uint64_t> seen_;  // every home's release count at the last acquire
  std::vector<std::uint8_t> seen_known_;  // 0 after a barrier, until the first acquire reads it
  std::vector<std::uint32_t> grants_;  // per unit: grants and recalls so far (a write-back's twin is still its own)
  std::unordered_map<std::size_t, std::vector<std::byte>> twins_;
  std::unordered_map<std::size_t, sent_back> sent_back_;
  std::vector<std::size_t> dirty_;
  static constexpr std::size_t no_unit = ~std::size_t{0};
  std::size_t holding_ = no_unit;  // the unit an exclusive grant is held for, until written
  std::unordered_map<std::size_t, std::uint32_t> acknowledgements_by_unit_;  // changes sent, unacknowledged
  std::atomic<std::size_t> acknowledgements_due_{0};  // their total, for the program's thread to wait on
  std::string race_found_;  // reported by a home about this rank's diff

  bool concurrent_handlers_;
  bool asymmetric_fences_;  // arch::heavy_fence in handlers lets the write hit's fence be a compiler barrier
  bool check_races_;
  array_stats stats_;
  maintenance maintain_;
  unit_fetcher fetcher_;  // last: its gets in flight end before anything they write into goes
};

}  // namespace dsm::coherence

// The engine's members by job: message dispatch, synchronisation, the
// home's directory, single_writer's requester and owner, write_shared's
// diffs.
#define DSM_COHERENCE_ENGINE_DECLARED 1
#include <dsm/coherence/engine_dispatch.hpp>
#include <dsm/coherence/engine_sync.hpp>
#include <dsm/coherence/engine_diffs.hpp>
#include <dsm/coherence/engine_home.hpp>
#include <dsm/coherence/engine_owner.hpp>

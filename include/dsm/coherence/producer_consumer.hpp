// The producer_consumer policy (Munin's producer-consumer objects, write
// update): each unit is written by its home, between barriers, and read by
// other ranks after them. A reader's first read of a unit misses (one get
// from the home) and subscribes it to the unit; from then on the home
// pushes the bytes that changed in each interval straight into the
// reader's copy at the barrier (one-sided puts, before the barrier's
// synchronisation), so the reader's reads are hits where `direct` pays a
// get. A reader stops receiving a unit when an update reaches a copy it
// has not read since the update before (it no longer reads the unit), on
// advice::dontneed, or at a lock acquire.
//
// How a reader knows its copy is current: with every push the home puts a
// stamp (interval, subscription generation, copysets.hpp) beside the
// reader's copy. A subscription counts from the first stamp of its own
// generation, which only follows the whole unit; until then the copy is
// a plain read copy, dropped at each barrier. The home finds the changed
// bytes against a snapshot of each read unit taken at the last push, so
// writes through local() are found like element writes.
//
// Pushes land in an inbox per rank, registered memory laid out like the
// mirror (pages only where pushed), and move to the copy the hit path
// reads when the barrier accepts them: one local copy, where a put into
// the mirror itself (unregistered, or registered after the fact) would be
// emulated with active messages over shared memory, at a third of the
// speed.
//
// Contract: only a unit's home writes it (element writes, put, local());
// a write to another rank's element is errc::contract_violation. Reads see
// the values of the last barrier (and the home its own writes at once).
// Writes are published at barriers; a lock orders them too, the acquire
// dropping every copy, so reading under locks works but does not pay.
#pragma once

#include <dsm/allocate.hpp>
#include <dsm/coherence/advice.hpp>
#include <dsm/coherence/array_layout.hpp>
#include <dsm/coherence/array_stats.hpp>
#include <dsm/coherence/copysets.hpp>
#include <dsm/coherence/policy.hpp>
#include <dsm/coherence/replica.hpp>
#include <dsm/coherence/unit_fetcher.hpp>
#include <dsm/coherence/unit_map.hpp>
#include <dsm/coherence/unit_snapshots.hpp>
#include <dsm/config.hpp>
#include <dsm/error.hpp>
#include <dsm/rma.hpp>
#include <dsm/runtime/runtime.hpp>

#include <fmt/format.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace dsm {

struct producer_consumer {
  static constexpr std::uint8_t id = 7;
  static constexpr const char* name = "producer_consumer";
  static constexpr bool keeps_copies = true;    // a mirror_space holds them
  static constexpr bool checks_indices = true;  // read and write: operator[] leaves it to them

  template <class T>
  class state final : public detail::object_endpoint {
   public:
    explicit state(const coherence::array_layout<T>& layout)
        : layout_(layout),
          units_(layout.distribution, sizeof(T), layout.unit, layout.description),
          me_(static_cast<std::size_t>(layout.team.rank())),
          first_own_(me_ * units_.units_per_rank()),
          copies_(units_, *layout.mirror, me_),
          inboxes_(allocate_inboxes(layout.team, units_, layout.description)),
          inbox_(inboxes_[me_].local()),
          stamp_space_(detail::allocate_collective_of<std::uint64_t>(layout.team, units_.units(),
                                                                    layout.description + " update stamps")),
          stamps_(stamp_space_[me_].local()),
          readers_(layout.distribution.ranks(), me_, first_own_, units_.units_per_rank(), layout.description),
          snapshots_(units_.units_per_rank(), units_.unit_bytes()),
          generation_(units_.units(), 0),
          generations_used_(units_.units(), 0),
          last_stamp_(units_.units(), 0),
          confirmed_(units_.units(), 0),
          outgoing_(layout.distribution.ranks()),
          sequence_(layout.distribution.ranks(), 0),
          count_hits_(detail::rt().config().stats),
          print_stats_(count_hits_) {
      copies_.reset(coherence::shared);
      detail::rt().register_object(layout_.object_id, this, layout_.team.state());
      // Nobody may send this array a message before every rank can take it.
      detail::rt().synchronize(layout_.team.state());
    }
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state() {
      detail::rt().retire_object(layout_.object_id);
      if (print_stats_) stats_.print(stderr, static_cast<int>(detail::rt().rank()), layout_.description);
    }

    [[gnu::always_inline]] T read(std::size_t i) {
      return coherence::read_shared<T>(
          units_, copies_, i, [this](std::size_t bad) { out_of_range(bad); },
          [this](std::size_t unit, const T* copy) { return read_miss(unit, copy); }, count_hits_, stats_.hits);
    }

    void write(std::size_t i, const T& v) {
      const auto p = coherence::locate_checked<T>(units_, copies_, i, [this](std::size_t bad) { out_of_range(bad); });
      if (!copies_.is_home(p.unit)) refuse_write("a write to", i, units_.home_of(p.unit));
      *p.element = v;
    }
    void put(std::size_t first, const T* in, std::size_t count) {
      if (count == 0) return;  // the range is checked (shared_array)
      layout_.distribution.for_each_run(first, count, [&](const dsm::distribution::run& r) {
        if (r.owner != me_) refuse_write("a put to", r.first, r.owner);
      });
      layout_.distribution.for_each_run(first, count, [&](const dsm::distribution::run& r) {
        std::memcpy(copies_.element(me_, r.local_first), in + (r.first - first), r.count * sizeof(T));
      });
    }

    void get(std::size_t first, std::size_t count, T* out) {
      make_readable(first, count);
      coherence::copy_out(layout_.distribution, copies_, first, count, out);
    }
    const T* read_span(std::size_t first, std::size_t count) {
      make_readable(first, count);
      const auto [owner, local] = layout_.distribution.locate(first);
      return reinterpret_cast<const T*>(copies_.element(owner, local));
    }
    void prefetch(std::size_t first, std::size_t count) {
      const auto wanted = units_.units_covering(layout_.distribution, first, count);
      promote_updated(wanted);
      fetcher_.prefetch(wanted);
    }
    void advise(std::size_t first, std::size_t count, advice a) {
      if (a != advice::dontneed) return prefetch(first, count);
      for (std::size_t u : units_.units_covering(layout_.distribution, first, count)) {
        if (copies_.is_home(u)) continue;
        fetcher_.complete(u);
        stop_reading(u);
      }
    }

    void acquire() {
      fetcher_.settle();
      for (std::size_t u = 0; u < units_.units(); ++u)
        if (!copies_.is_home(u)) stop_reading(u);
    }
    void release() {}

    // Readers say what they started and stopped reading; homes push what
    // changed to every subscription (the barrier's fence completes the puts
    // before its synchronisation).
    void arrive() {
      fetcher_.settle();
      ++epoch_;
      for (std::size_t u = 0; u < units_.units(); ++u) {
        if (copies_.is_home(u)) continue;
        const std::uint8_t s = copies_.state(u);
        if (generation_[u] == 0 && s == coherence::shared) start_reading(u);  // read (or fetched ahead): subscribe
        else if (confirmed_[u] && s == coherence::updated) stop_reading(u);  // updated, then not read: stop
      }
      send_subscriptions();
      if (readers_.apply_received()) push_updates();
    }

    // Every home's pushes are complete: each subscribed copy is kept if its
    // stamp proves it current, every other copy goes.
    void barrier() {
      pushes_.clear();  // complete at their targets: the fence came first
      const std::size_t own_end = first_own_ + units_.units_per_rank();
      coherence::maintenance{&stats_}.after_transfer_wrote(stamps_, units_.units() * sizeof(std::uint64_t));
      for (std::size_t u = 0; u < units_.units(); ++u) {
        if (u >= first_own_ && u < own_end) continue;
        if (generation_[u] == 0) {
          if (copies_.state(u) != coherence::invalid) drop_copy(u);
          continue;
        }
        const std::uint64_t stamp = std::atomic_ref<std::uint64_t>(stamps_[u]).load(std::memory_order_acquire);
        if (stamp == 0 || coherence::stamp_generation(stamp) != generation_[u]) {
          // A subscription the home never pushed (or lost track of: start
          // over): its copy is a plain read copy, not kept.
          if (confirmed_[u]) stop_reading(u);
          else if (copies_.state(u) != coherence::invalid) copies_.set_state(u, coherence::invalid);
          continue;
        }
        if (coherence::stamp_epoch(stamp) > epoch_) {
          // A home already in the next barrier is pushing: its bytes may not
          // all be here. Only a current copy keeps going (with bytes of the
          // next interval landing in it, which nobody reads unsynchronised);
          // its lines go now and again when that stamp is current.
          if (!confirmed_[u]) copies_.set_state(u, coherence::invalid);
          else take_pushed(u);
          continue;
        }
        if (stamp == last_stamp_[u]) continue;  // nothing changed
        last_stamp_[u] = stamp;
        if (confirmed_[u] && copies_.state(u) == coherence::updated) {
          stop_reading(u);  // updated twice without a read between: this rank no longer reads it
          continue;
        }
        take_pushed(u);
        // The first push of a subscription follows the reads that made it:
        // it counts as read; only a change after it waits for a read.
        copies_.set_state(u, confirmed_[u] ? coherence::updated : coherence::shared);
        confirmed_[u] = 1;
      }
      send_subscriptions();  // the ends decided here reach the homes before their next pushes
    }

    // Before the array's blocks go: the registration of the copies and the
    // stamps, while every rank still takes part.
    void retire() {
      if (!stamp_space_.empty()) deallocate(stamp_space_[me_]);
      if (!inboxes_.empty()) deallocate(inboxes_[me_]);
      stamp_space_.clear(), inboxes_.clear();
    }

    // Worker lock held (progress thread): checked and queued.
    void on_message(const transport::message_header& h, std::span<const std::byte> payload) override {
      readers_.receive(h.source_rank, h.word[1], payload);
    }

    const coherence::replica& copies() const noexcept { return copies_; }
    const coherence::unit_map& units() const noexcept { return units_; }
    coherence::array_stats& stats() noexcept { return stats_; }
    // Whether this rank's copy of `unit` is kept current by its home.
    bool subscribed(std::size_t unit) const noexcept { return confirmed_[unit] != 0 && generation_[unit] != 0; }

   private:
    [[noreturn, gnu::cold, gnu::noinline]] void out_of_range(std::size_t i) const {
      coherence::throw_index_out_of_range(layout_.description, i, units_.elements());
    }
    [[noreturn, gnu::cold, gnu::noinline]] void refuse_write(const char* what, std::size_t i, std::size_t home) const {
      throw error(errc::contract_violation,
                  fmt::format("{}: {} index {} on rank {}: a producer_consumer unit is written by its home only "
                              "(rank {}); distribute the array so that each unit's producer is its home",
                              layout_.description, what, i, me_, home));
    }

    // A copy pushed but not read since: now read (no traffic). Anything
    // else is fetched, and subscribes at once, so that the home knows
    // before the barrier (units fetched ahead subscribe at the barrier).
    [[gnu::noinline]] T read_miss(std::size_t unit, const T* copy) {
      if (copies_.state(unit) == coherence::updated) {
        copies_.set_state(unit, coherence::shared);
      } else {
        fetcher_.fetch(unit);
        if (generation_[unit] == 0) start_reading(unit), send_subscriptions();
      }
      return *copy;
    }
    void make_readable(std::size_t first, std::size_t count) {
      const auto wanted = units_.units_covering(layout_.distribution, first, count);
      promote_updated(wanted);
      fetcher_.fetch(wanted);
      for (std::size_t u : wanted)
        if (generation_[u] == 0 && !copies_.is_home(u)) start_reading(u);
      send_subscriptions();
    }
    void promote_updated(std::span<const std::size_t> wanted) {
      for (std::size_t u : wanted)
        if (copies_.state(u) == coherence::updated) copies_.set_state(u, coherence::shared);
    }

    void start_reading(std::size_t u) {
      generation_[u] = next_generation(u);
      confirmed_[u] = 0;
      last_stamp_[u] = 0;
      queue_change(u, generation_[u], true);
    }
    void stop_reading(std::size_t u) {
      if (generation_[u] != 0) queue_change(u, generation_[u], false);
      generation_[u] = 0;
      confirmed_[u] = 0;
      if (copies_.state(u) != coherence::invalid) drop_copy(u);
    }
    void drop_copy(std::size_t u) {
      copies_.set_state(u, coherence::invalid);
      ++stats_.copies_dropped;
    }
    // Generations only grow, so that no stamp of an ended subscription can
    // pass for a later one's.
    std::uint32_t next_generation(std::size_t u) {
      if (++generations_used_[u] == 0) ++generations_used_[u];  // 0 means none
      return generations_used_[u];
    }

    void queue_change(std::size_t u, std::uint32_t generation, bool subscribe) {
      auto& out = outgoing_[units_.home_of(u)];
      const coherence::subscription_change c{u, generation, subscribe ? 1u : 0u};
      const std::size_t at = out.size();
      out.resize(at + sizeof c);
      std::memcpy(out.data() + at, &c, sizeof c);
      if (subscribe) ++stats_.subscriptions;
    }
    void send_subscriptions() {
      for (std::size_t home = 0; home < outgoing_.size(); ++home) {
        auto& out = outgoing_[home];
        if (out.empty()) continue;
        detail::rt().send_to_object(layout_.team.state(), static_cast<std::uint32_t>(home), layout_.object_id,
                                    sequence_[home]++, 0, out);
        out.clear();
      }
    }

    // One put per reader and run of changed bytes (runs of consecutive
    // units up to merge_gap_bytes apart merge), one per run of stamps.
    void push_updates() {
      const std::size_t n = units_.units_per_rank();
      changed_.resize(n);
      for (std::size_t k = 0; k < n; ++k) {
        changed_[k] = {};
        const std::size_t u = first_own_ + k;
        if (readers_.readers(k) != 0 && units_.bytes_in(u) != 0)
          changed_[k] = snapshots_.update(k, copies_.unit_data(u), units_.bytes_in(u));
      }
      stamp_out_.resize(layout_.distribution.ranks());
      for (std::size_t r = 0; r < layout_.distribution.ranks(); ++r) {
        const auto members = readers_.of(r);
        if (members.empty()) continue;
        auto& stamps = stamp_out_[r];
        stamps.assign(n, 0);
        pending_range data{}, stamp_run{};  // bytes of the block; stamps (local units)
        auto flush_data = [&] {
          if (data.count == 0) return;
          const std::byte* from = copies_.unit_data(first_own_) + data.first;
          coherence::maintenance{&stats_}.before_transfer_reads(from, data.count);
          pushes_.push_back(rput(from, data.count, inbox_of(r, data.first)));
          stats_.update_bytes += data.count;
          data = {};
        };
        auto flush_stamps = [&] {
          if (stamp_run.count == 0) return;
          const std::size_t k0 = stamp_run.first;
          pushes_.push_back(rput(stamps.data() + k0, stamp_run.count, stamp_space_[r] + static_cast<std::ptrdiff_t>(first_own_ + k0)));
          stamp_run = {};
        };
        for (std::size_t k = 0; k < n; ++k) {
          auto& m = members[k];
          const coherence::byte_range range =
              m.generation == 0 ? coherence::byte_range{}
              : m.needs_whole   ? coherence::byte_range{0, units_.bytes_in(first_own_ + k)}
                                : changed_[k];
          const bool pushed = m.generation != 0 && (m.needs_whole || !range.empty());
          if (!pushed) {
            flush_stamps();
            continue;
          }
          m.needs_whole = false;
          ++stats_.updates;
          if (!range.empty()) {
            const std::size_t offset = k * units_.unit_bytes() + range.first;
            // A short gap of unchanged bytes goes along (the reader holds
            // those bytes already): a put costs more than a few KiB more of
            // one (a round trip's worth over TCP).
            if (data.count != 0 && offset - (data.first + data.count) > merge_gap_bytes) flush_data();
            if (data.count == 0) data.first = offset;
            data.count = offset + range.bytes() - data.first;
          }
          stamps[k] = coherence::update_stamp(epoch_, m.generation);
          if (stamp_run.count == 0) stamp_run.first = k;
          ++stamp_run.count;
        }
        flush_data();
        flush_stamps();
      }
      // Not waited for here: the barrier's fence completes them all at once
      // (waiting for each over TCP cost a round trip per put), and
      // barrier() lets the futures go.
    }
    static constexpr std::size_t merge_gap_bytes = 4096;
    struct pending_range {
      std::size_t first = 0, count = 0;
    };
    // Byte `offset` of this rank's block, in rank r's inbox.
    global_ptr<std::byte> inbox_of(std::size_t r, std::size_t offset) const {
      return inboxes_[r] + static_cast<std::ptrdiff_t>((first_own_ << units_.shift()) * units_.element_bytes() + offset);
    }
    std::byte* inbox_data(std::size_t unit) const noexcept {
      return inbox_ + (unit << units_.shift()) * units_.element_bytes();
    }
    // The home's pushes land in the inbox (registered memory, so that a
    // put over shared memory is a copy into it); an accepted unit moves to
    // the copy the hit path reads.
    void take_pushed(std::size_t u) {
      coherence::maintenance{&stats_}.after_transfer_wrote(inbox_data(u), units_.bytes_in(u));
      std::memcpy(copies_.unit_data(u), inbox_data(u), units_.bytes_in(u));
    }
    static std::vector<global_ptr<std::byte>> allocate_inboxes(const dsm::team& t, const coherence::unit_map& units,
                                                               const std::string& object) {
      const std::size_t bytes = units.units() * units.unit_bytes();
      return detail::allocate_collective_of<std::byte>(t, bytes, object + " update inbox");
    }

    const coherence::array_layout<T>& layout_;
    coherence::unit_map units_;
    std::size_t me_, first_own_;
    coherence::replica copies_;
    std::vector<global_ptr<std::byte>> inboxes_;           // every rank's, registered, laid out like the mirror
    std::byte* inbox_;                                     // this rank's
    std::vector<global_ptr<std::uint64_t>> stamp_space_;   // every rank's stamps, one per unit
    std::uint64_t* stamps_;                                // this rank's
    // Home side.
    coherence::copysets readers_;
    coherence::unit_snapshots snapshots_;
    std::vector<coherence::byte_range> changed_;
    std::vector<std::vector<std::uint64_t>> stamp_out_;  // per reader, until the puts complete
    std::vector<future<>> pushes_;                       // this barrier's puts
    // Reader side, per unit.
    std::vector<std::uint32_t> generation_;  // of the current subscription; 0: none
    std::vector<std::uint32_t> generations_used_;
    std::vector<std::uint64_t> last_stamp_;
    std::vector<std::uint8_t> confirmed_;  // the home pushed the current subscription
    std::vector<std::vector<std::byte>> outgoing_;  // per home
    std::vector<std::uint64_t> sequence_;           // per home
    std::uint64_t epoch_ = 0;
    bool count_hits_;
    bool print_stats_;
    coherence::array_stats stats_;
    coherence::unit_fetcher fetcher_{units_, copies_, layout_.byte_blocks(), stats_, layout_.description};
  };
};

static_assert(coherence::policy<producer_consumer>);

}  // namespace dsm

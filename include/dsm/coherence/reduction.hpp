// The reduction<Op> policy (Munin's reduction objects): every rank
// contributes to elements with `a[i].combine(v)` (`a[i] += v` for
// reduction<sum>) or a bulk combine(first, values); contributions collect
// in a local space (contributions.hpp) and cost a local load and store,
// with no traffic. At each barrier the homes combine them: every rank tells
// each home which of its units it contributed to (one exchange, all to
// all, of unit runs: a few bytes), the home fetches them from the
// contributors' spaces with one-sided gets (one per run, all in flight)
// and folds them into its elements in rank order, so that floating-point
// results are the same bits on every run: a[i] = ((a[i] op c0[i]) op c1[i])
// ... A contributor's space stays untouched until the barrier ends, which
// no rank passes before every home has fetched and combined. After the barrier every rank reads the combined values: a read miss
// is one get of the unit from its home's memory, and the copy is valid
// until the next barrier. Between barriers reads see the values of the
// last one (a rank's own contributions are not in them yet) and the home
// may rewrite its elements through local() (to start a new sum, say);
// contributions of the interval are combined into what it wrote.
//
// Contract: a plain write (a[i] = v, put) is errc::contract_violation:
// without it every combine would race with the write. Locks order nothing
// here: contributions wait for the barrier.
#pragma once

#include <dsm/coherence/advice.hpp>
#include <dsm/coherence/array_layout.hpp>
#include <dsm/coherence/array_stats.hpp>
#include <dsm/coherence/contributions.hpp>
#include <dsm/coherence/policy.hpp>
#include <dsm/coherence/replica.hpp>
#include <dsm/coherence/unit_fetcher.hpp>
#include <dsm/coherence/unit_map.hpp>
#include <dsm/config.hpp>
#include <dsm/error.hpp>
#include <dsm/operators.hpp>
#include <dsm/allocate.hpp>
#include <dsm/rma.hpp>
#include <dsm/runtime/runtime.hpp>

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

namespace dsm {

template <class Op = sum>
struct reduction {
  static constexpr std::uint8_t id = 5;
  static constexpr const char* name = "reduction";
  static constexpr bool keeps_copies = true;    // a mirror_space holds the read copies
  static constexpr bool checks_indices = true;  // read, write and combine: operator[] leaves it to them
  using combiner = Op;

  template <class T>
  class state {
    static_assert(reduction_operator<Op, T>,
                  "dsm::reduction<Op>: Op must combine two T into a T and name its identity, "
                  "`template <class T> static constexpr T identity()` (see dsm/operators.hpp)");

   public:
    explicit state(const coherence::array_layout<T>& layout)
        : layout_(layout),
          units_(layout.distribution, sizeof(T), layout.unit, layout.description),
          me_(static_cast<std::size_t>(layout.team.rank())),
          copies_(units_, *layout.mirror, me_),
          spaces_(allocate_spaces(layout.team, units_, layout.description)),
          pending_(units_, spaces_[me_].local()),
          count_hits_(detail::rt().config().stats),
          print_stats_(count_hits_) {
      copies_.reset(coherence::shared);
    }
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state() {
      if (print_stats_) stats_.print(stderr, static_cast<int>(detail::rt().rank()), layout_.description);
    }

    [[gnu::always_inline]] T read(std::size_t i) {
      return coherence::read_shared<T>(
          units_, copies_, i, [this](std::size_t bad) { out_of_range(bad); },
          [this](std::size_t unit, const T* copy) { return read_miss(unit, copy); }, count_hits_, stats_.hits);
    }

    // The contribution's hit: a flag load, a load and a store.
    [[gnu::always_inline]] void combine(std::size_t i, coherence::by_value_if_small<T> v) {
      const auto p =
          coherence::locate_checked<T>(units_, pending_.base(), i, [this](std::size_t bad) { out_of_range(bad); });
      if (!pending_.started(p.unit)) [[unlikely]]
        start(p.unit);
      *p.element = op_(*p.element, v);
    }
    // Bulk: in[k] contributed to element first + k; one owner's run at a
    // time, a loop the compiler can vectorise.
    void combine(std::size_t first, const T* in, std::size_t count) {
      for (std::size_t u : units_.units_covering(layout_.distribution, first, count))
        if (!pending_.started(u)) start(u);
      layout_.distribution.for_each_run(first, count, [&](const dsm::distribution::run& r) {
        T* to = reinterpret_cast<T*>(pending_.base() + (r.owner * units_.slot_elements() + r.local_first) * sizeof(T));
        const T* from = in + (r.first - first);
        for (std::size_t k = 0; k < r.count; ++k) to[k] = op_(to[k], from[k]);
      });
    }

    // This rank's contributions to [first, first + count) as plain memory:
    // each element holds what this rank contributed to it so far in the
    // interval (the identity at first), and what the program leaves there
    // is what the barrier combines. One owner's run, or any range of a
    // tiled layout (whose contributions are one run of memory); valid until
    // the barrier.
    T* contribution_span(std::size_t first, std::size_t count) {
      if (count == 0) return nullptr;
      for (std::size_t u : units_.units_covering(layout_.distribution, first, count))
        if (!pending_.started(u)) start(u);
      return coherence::locate_copy<T>(units_, pending_.base(), first).element;
    }
    bool contributions_tiled() const noexcept { return units_.tiled(); }

    void write(std::size_t i, const T&) {
      if (i >= units_.elements()) out_of_range(i);
      refuse_write("a write to", i);
    }
    void put(std::size_t first, const T*, std::size_t count) {
      if (count != 0) refuse_write("a put to", first);
    }

    void get(std::size_t first, std::size_t count, T* out) {
      fetcher_.fetch(units_.units_covering(layout_.distribution, first, count));
      coherence::copy_out(layout_.distribution, copies_, first, count, out);
    }
    const T* read_span(std::size_t first, std::size_t count) {
      fetcher_.fetch(units_.units_covering(layout_.distribution, first, count));
      const auto [owner, local] = layout_.distribution.locate(first);
      return reinterpret_cast<const T*>(copies_.element(owner, local));
    }
    void prefetch(std::size_t first, std::size_t count) {
      fetcher_.prefetch(units_.units_covering(layout_.distribution, first, count));
    }
    void advise(std::size_t first, std::size_t count, advice a) {
      const auto wanted = units_.units_covering(layout_.distribution, first, count);
      if (a == advice::dontneed) fetcher_.drop(wanted);
      else fetcher_.prefetch(wanted);
    }

    void acquire() {}
    void release() {}
    // The homes combine every rank's contributions of the interval. A
    // malformed list of units is refused alone (errc::protocol, after the
    // others are combined); none of the interval's is ever sent again.
    void arrive() {
      struct sent_once {
        coherence::contributions& c;
        ~sent_once() { c.clear(); }
      } clear_at_exit{pending_};
      const auto lists = detail::rt().exchange(layout_.team.state(), outgoing());
      std::vector<std::vector<unit_run>> runs(lists.size());
      std::optional<error> refused;
      for (std::size_t r = 0; r < lists.size(); ++r) {
        if (r == me_) continue;
        try {
          runs[r] = runs_from(r, lists[r]);
        } catch (const error& e) {
          if (!refused) refused = e;
        }
      }
      fetch_and_combine(runs);
      // Peers read this rank's block directly from now on: on a CPU whose
      // caches the NIC does not see, what the combine (or local()) wrote
      // goes to memory first.
      coherence::maintenance{&stats_}.before_transfer_reads(copies_.element(me_, 0),
                                                            layout_.distribution.local_size(me_) * sizeof(T));
      if (refused) throw *refused;
    }
    // Before the array's blocks go (shared_array's destructor): the space
    // too, while every rank still takes part.
    void retire() {
      if (!spaces_.empty()) deallocate(spaces_[me_]);
      spaces_.clear();
    }
    // Every home's values moved: every copy goes.
    void barrier() {
      fetcher_.settle();
      for (std::size_t u = 0; u < units_.units(); ++u)
        if (!copies_.is_home(u) && copies_.state(u) == coherence::shared) ++stats_.copies_dropped;
      copies_.reset(coherence::shared);
    }

    const coherence::replica& copies() const noexcept { return copies_; }
    coherence::array_stats& stats() noexcept { return stats_; }

   private:
    [[noreturn, gnu::cold, gnu::noinline]] void out_of_range(std::size_t i) const {
      coherence::throw_index_out_of_range(layout_.description, i, units_.elements());
    }
    [[noreturn, gnu::cold, gnu::noinline]] void refuse_write(const char* what, std::size_t i) const {
      throw error(errc::contract_violation,
                  fmt::format("{}: {} index {} on rank {}: a reduction array is only combined into (a[i].combine(v){}); "
                              "its home may rewrite its own elements through local()",
                              layout_.description, what, i, me_,
                              std::is_same_v<Op, sum> ? ", a[i] += v" : ""));
    }
    [[gnu::noinline]] T read_miss(std::size_t unit, const T* copy) {
      fetcher_.fetch(unit);
      return *copy;
    }
    [[gnu::noinline]] void start(std::size_t unit) { pending_.start(unit, Op::template identity<T>()); }

    static std::vector<global_ptr<std::byte>> allocate_spaces(const dsm::team& t, const coherence::unit_map& units,
                                                               const std::string& object) {
      const std::size_t bytes = coherence::contributions::bytes_for(units);
      return detail::allocate_collective_of<std::byte>(t, bytes, object + " contributions");
    }

    // Consecutive units of one home, as the wire carries them.
    struct unit_run {
      std::uint64_t first, count;
    };

    // Per home, the runs of its units this rank contributed to. The
    // buffers are kept from barrier to barrier. On a CPU whose caches the
    // NIC does not see, the contributions go to memory for the homes' gets.
    std::span<const std::vector<std::byte>> outgoing() {
      outgoing_.resize(layout_.distribution.ranks());
      for (auto& out : outgoing_) out.clear();
      const auto units = pending_.units();
      for (std::size_t k = 0; k < units.size();) {
        const std::size_t first = units[k], home = units_.home_of(first);
        std::size_t count = 1;
        while (k + count < units.size() && units[k + count] == first + count && units_.home_of(first + count) == home)
          ++count;
        k += count;
        std::size_t bytes = 0;
        for (std::size_t u = first; u < first + count; ++u) bytes += units_.bytes_in(u);
        coherence::maintenance{&stats_}.before_transfer_reads(pending_.unit_data(first), bytes);
        stats_.contributions += count, stats_.contribution_bytes += bytes;
        if (home == me_) continue;
        const unit_run run{first, count};
        auto& out = outgoing_[home];
        const std::size_t at = out.size();
        out.resize(at + sizeof run);
        std::memcpy(out.data() + at, &run, sizeof run);
      }
      return outgoing_;
    }

    // Everything rank `from` says is checked before any of it is fetched:
    // a malformed list fetches and combines nothing of that rank's.
    std::vector<unit_run> runs_from(std::size_t from, std::span<const std::byte> wire) const {
      if (wire.size() % sizeof(unit_run) != 0)
        malformed(from, fmt::format("a list of {} bytes, not of whole runs", wire.size()));
      std::vector<unit_run> runs(wire.size() / sizeof(unit_run));
      if (!runs.empty()) std::memcpy(runs.data(), wire.data(), wire.size());
      const std::size_t first_here = me_ * units_.units_per_rank(), end_here = first_here + units_.units_per_rank();
      for (const unit_run& r : runs)
        if (r.count == 0 || r.first < first_here || r.first >= end_here || r.count > end_here - r.first)
          malformed(from, fmt::format("units {} to {}, which are not all homed here", r.first, r.first + r.count - 1));
      return runs;
    }
    [[noreturn]] void malformed(std::size_t from, const std::string& what) const {
      throw error(errc::protocol, fmt::format("{}: rank {}'s contribution to rank {}: {}", layout_.description, from, me_, what));
    }

    // Every rank's runs fetched together into one staging buffer, then
    // combined in rank order (this rank's own from its space).
    void fetch_and_combine(const std::vector<std::vector<unit_run>>& runs) {
      std::size_t total = 0;
      for (const auto& per_rank : runs)
        for (const unit_run& r : per_rank) total += run_bytes(r);
      staging_.resize(total);
      std::vector<future<>> gets;
      std::size_t at = 0;
      for (std::size_t from = 0; from < runs.size(); ++from)
        for (const unit_run& r : runs[from]) {
          const std::size_t bytes = run_bytes(r);
          const auto source = spaces_[from] + static_cast<std::ptrdiff_t>((r.first << units_.shift()) * sizeof(T));
          gets.push_back(rget(source, bytes, staging_.data() + at));
          at += bytes;
        }
      for (auto& g : gets) g.wait();
      coherence::maintenance{&stats_}.after_transfer_wrote(staging_.data(), total);
      at = 0;
      for (std::size_t from = 0; from < runs.size(); ++from) {
        if (from == me_) {
          for (std::size_t u : pending_.units())
            if (units_.home_of(u) == me_) combine_unit(u, pending_.unit_data(u));
          continue;
        }
        for (const unit_run& r : runs[from])
          for (std::size_t u = r.first; u < r.first + r.count; ++u) {
            combine_unit(u, staging_.data() + at);
            at += units_.bytes_in(u);
          }
      }
    }
    std::size_t run_bytes(const unit_run& r) const {
      std::size_t bytes = 0;
      for (std::size_t u = r.first; u < r.first + r.count; ++u) bytes += units_.bytes_in(u);
      return bytes;
    }
    // Contributions arrive as bytes, in no particular alignment.
    void combine_unit(std::size_t unit, const std::byte* contribution) {
      T* home = reinterpret_cast<T*>(copies_.unit_data(unit));
      const std::size_t n = units_.elements_in(unit);
      for (std::size_t k = 0; k < n; ++k) {
        T c;
        std::memcpy(&c, contribution + k * sizeof(T), sizeof(T));
        home[k] = op_(home[k], c);
      }
      ++stats_.combines;
    }

    const coherence::array_layout<T>& layout_;
    coherence::unit_map units_;
    std::size_t me_;
    coherence::replica copies_;
    std::vector<global_ptr<std::byte>> spaces_;  // every rank's contributions, registered
    coherence::contributions pending_;
    std::vector<std::vector<std::byte>> outgoing_;
    std::vector<std::byte> staging_;
    [[no_unique_address]] Op op_{};
    bool count_hits_;
    bool print_stats_;
    coherence::array_stats stats_;
    coherence::unit_fetcher fetcher_{units_, copies_, layout_.byte_blocks(), stats_, layout_.description};
  };
};

static_assert(coherence::policy<reduction<>>);

namespace coherence {
template <class P>
inline constexpr bool is_reduction = false;
template <class Op>
inline constexpr bool is_reduction<reduction<Op>> = true;
}  // namespace coherence

}  // namespace dsm

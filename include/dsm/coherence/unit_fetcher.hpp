// Read copies of other ranks' units, fetched with one-sided gets of the
// home's memory: on a miss, ahead of the program (prefetch, and readahead
// when misses walk consecutive units of one home), and dropped when the
// program says it no longer needs them. Shared by every caching policy;
// the program's thread only.
//
// A unit being fetched ahead is in state `fetching`; whatever else wants
// the unit (a miss, an ownership request, an acquire, a barrier) completes
// that get first, so no late get ever lands over newer bytes.
#pragma once

#include <dsm/coherence/array_stats.hpp>
#include <dsm/coherence/replica.hpp>
#include <dsm/coherence/unit_map.hpp>
#include <dsm/error.hpp>
#include <dsm/global_ptr.hpp>
#include <dsm/rma.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <cstddef>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace dsm::coherence {

class unit_fetcher {
 public:
  // Readahead doubles from one unit up to this many while misses stay
  // consecutive, and stops at the first miss that is not.
  static constexpr std::size_t max_readahead = 16;

  unit_fetcher(const unit_map& units, replica& copies, std::vector<global_ptr<std::byte>> blocks, array_stats& stats,
               std::string object)
      : units_(units), copies_(copies), blocks_(std::move(blocks)), stats_(stats), object_(std::move(object)) {}
  unit_fetcher(const unit_fetcher&) = delete;
  unit_fetcher& operator=(const unit_fetcher&) = delete;
  // In-flight gets write into the mirror: they end before it goes.
  ~unit_fetcher() {
    try {
      settle();
    } catch (const std::exception& e) {
      fmt::print(stderr, "dsm: {}: a prefetch failed: {}\n", object_, e.what());
    }
  }

  // An element's miss: the unit readable when it returns. Consecutive
  // misses of one home fetch the following units ahead.
  void fetch(std::size_t unit) {
    // The walk goes on when a miss follows the last one within what the
    // walk covered so far (units fetched ahead may have arrived already and
    // missed nothing): the window doubles and the units after it are
    // fetched ahead; any other miss closes it.
    const bool sequential = unit > last_miss_ && unit <= walk_end_;  // never with no walk (walk_end_ 0)
    window_ = sequential ? std::clamp<std::size_t>(window_ * 2, 1, max_readahead) : 0;
    last_miss_ = unit;
    const std::size_t home_end = (units_.home_of(unit) + 1) * units_.units_per_rank();
    const std::size_t end = std::min(home_end, unit + 1 + window_);
    for (std::size_t u = std::max(unit + 1, sequential ? walk_end_ : 0); u < end; ++u) start(u, true);
    walk_end_ = std::max(end, unit + 1);
    // A unit already on its way (fetched ahead) is waited for, not counted
    // as a miss.
    if (copies_.state(unit) == invalid) start(unit, false), ++stats_.misses;
    complete(unit);
  }

  // Many units (bulk reads, spans), `wanted` in ascending order: every get
  // in flight together, one per run of consecutive missing units of one
  // home (they are consecutive in its memory and in the mirror), then the
  // units fetched ahead before are completed.
  void fetch(std::span<const std::size_t> wanted) {
    struct run {
      std::size_t first, count, bytes;
      future<> get;
    };
    std::vector<run> runs;
    for (std::size_t k = 0; k < wanted.size();) {
      const std::size_t first = wanted[k++];
      if (copies_.state(first) != invalid) continue;
      std::size_t last = first;
      // Full units only inside a run: a short one ends its home's block.
      while (k < wanted.size() && wanted[k] == last + 1 && units_.home_of(last + 1) == units_.home_of(first) &&
             copies_.state(last + 1) == invalid && units_.bytes_in(last) == units_.unit_bytes())
        last = wanted[k++];
      std::size_t bytes = 0;
      for (std::size_t u = first; u <= last; ++u) bytes += units_.bytes_in(u), copies_.set_state(u, fetching);
      stats_.misses += last - first + 1;
      runs.push_back({first, last - first + 1, bytes,
                      bytes == 0 ? future<>{} : rget(home_bytes(first), bytes, copies_.unit_data(first))});
    }
    std::optional<error> failed;
    for (run& r : runs) {
      try {
        r.get.wait();
      } catch (const error& e) {
        if (!failed) failed = error(e.category(), fmt::format("{}: read miss of units {}-{} from their home, rank {}: {}", object_,
                                                              r.first, r.first + r.count - 1, units_.home_of(r.first), e.message()));
        for (std::size_t u = r.first; u < r.first + r.count; ++u) copies_.set_state(u, invalid);
        continue;
      }
      maintenance{&stats_}.after_transfer_wrote(copies_.unit_data(r.first), r.bytes);
      for (std::size_t u = r.first; u < r.first + r.count; ++u) copies_.set_state(u, shared);
    }
    if (failed) throw *failed;
    for (std::size_t u : wanted)
      if (copies_.state(u) == fetching) complete(u);
  }

  // Gets for the units not here yet; returns at once.
  void prefetch(std::span<const std::size_t> wanted) {
    for (std::size_t u : wanted) start(u, true);
  }

  // The unit's get, if one is in flight, completed (the unit then readable).
  void complete(std::size_t unit) {
    const auto found = in_flight_.find(unit);
    if (found == in_flight_.end()) return;
    auto get = std::move(found->second);
    in_flight_.erase(found);
    finish(unit, get);
  }

  // Every get in flight completed: before an acquire decides what to
  // drop, and before a barrier drops everything.
  void settle() {
    while (!in_flight_.empty()) complete(in_flight_.begin()->first);
    window_ = 0;
    walk_end_ = 0;
  }

  // The program no longer needs these read copies (advice::dontneed):
  // dropped, refetched if read again. Units this rank writes stay.
  void drop(std::span<const std::size_t> wanted) {
    for (std::size_t u : wanted) {
      complete(u);
      if (copies_.state(u) == shared && !copies_.is_home(u)) copies_.set_state(u, invalid), ++stats_.copies_dropped;
    }
  }

 private:
  // Posts the get of a unit that is not here (nothing for anything else).
  void start(std::size_t unit, bool ahead) {
    if (copies_.state(unit) != invalid) return;
    if (units_.bytes_in(unit) == 0) return copies_.set_state(unit, shared);
    copies_.set_state(unit, fetching);
    auto get = rget(home_bytes(unit), units_.bytes_in(unit), copies_.unit_data(unit));
    if (ahead) ++stats_.prefetched;
    if (get.done()) return finish(unit, get);  // shared memory copies in place: nothing to track
    in_flight_.emplace(unit, std::move(get));
  }

  // Where the unit is in its home's memory.
  global_ptr<std::byte> home_bytes(std::size_t unit) const {
    return blocks_[units_.home_of(unit)] +
           static_cast<std::ptrdiff_t>(units_.first_local(unit) * units_.element_bytes());
  }

  void finish(std::size_t unit, future<>& get) {
    try {
      get.wait();
    } catch (const error& e) {
      copies_.set_state(unit, invalid);
      throw error(e.category(), fmt::format("{}: read miss of unit {} from its home, rank {}: {}", object_, unit,
                                            units_.home_of(unit), e.message()));
    }
    maintenance{&stats_}.after_transfer_wrote(copies_.unit_data(unit), units_.bytes_in(unit));
    copies_.set_state(unit, shared);
  }

  const unit_map& units_;
  replica& copies_;
  std::vector<global_ptr<std::byte>> blocks_;
  array_stats& stats_;
  std::string object_;
  std::unordered_map<std::size_t, future<>> in_flight_;
  std::size_t last_miss_ = 0;
  std::size_t walk_end_ = 0;  // one past the last unit the walk fetched (ahead or not); 0: no walk
  std::size_t window_ = 0;
};

}  // namespace dsm::coherence

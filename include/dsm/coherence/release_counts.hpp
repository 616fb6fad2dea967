// Each home's release count for one caching array, in registered memory so
// that peers read it with a one-sided get, without the home's CPU.
//
// A home adds one to its count each time a release changed units homed
// there (a diff or write-back applied, recalled changes applied, the home's
// own writes published), after the changed bytes are in its memory. A
// reader compares the counts at an acquire with the ones it saw at its
// previous acquire and drops its copies of the units of every home whose
// count moved (self-invalidation): a release that happened before the
// acquire was counted before it, so its writes are never read stale, and a
// home nobody wrote keeps its copies valid. See engine.hpp for the rest of
// the argument.
#pragma once

#include <dsm/coherence/array_stats.hpp>
#include <dsm/error.hpp>
#include <dsm/global_ptr.hpp>
#include <dsm/allocate.hpp>
#include <dsm/rma.hpp>
#include <dsm/runtime/runtime.hpp>

#include <fmt/format.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace dsm::coherence {

class release_counts {
  // The count sits alone in its segment's first cache line (the arch layer
  // cleans it for the NIC without touching anything else).
  static constexpr std::size_t segment_bytes = 256;

 public:
  // Collective over team t, like the array it serves; one count per member.
  release_counts(dsm::detail::runtime_state& rt, dsm::detail::team_state& t, std::string object)
      : rt_(rt), me_(t.rank), object_(std::move(object)) {
    for (const auto& s : rt_.allocate_collective(t, segment_bytes, nullptr, object_ + " release counts"))
      counts_.push_back(dsm::detail::pointer_to<std::uint64_t>(s));
  }
  release_counts(const release_counts&) = delete;
  release_counts& operator=(const release_counts&) = delete;
  // Freeing waits for every peer to drop the key; an array destroyed while
  // an exception unwinds takes no collective step, so its count stays
  // mapped until the runtime ends, like its block.
  ~release_counts() {
    if (std::uncaught_exceptions() > uncaught_at_construction_ || rt_.job_failed()) return;
    try {
      dsm::deallocate(counts_[me_]);
    } catch (const std::exception& e) {
      fmt::print(stderr, "dsm: rank {}: freeing the release count of {}: {}\n", rt_.rank(), object_, e.what());
    }
  }

  // Home, worker lock held: one more release changed units homed here. The
  // changed bytes were stored (and cleaned for the NIC) before.
  std::uint64_t count_release(const maintenance& maintain) {
    std::uint64_t* own = counts_[me_].local();
    std::atomic_ref<std::uint64_t> count(*own);
    const std::uint64_t next = count.load(std::memory_order_relaxed) + 1;
    count.store(next, std::memory_order_release);
    maintain.before_transfer_reads(own, sizeof *own);
    return next;
  }

  // Every home's count (this rank's own as it is), all gets in flight
  // together.
  std::vector<std::uint64_t> read_all(const maintenance& maintain) const {
    std::vector<std::uint64_t> out(counts_.size(), 0);
    std::vector<future<>> gets;
    for (std::size_t r = 0; r < counts_.size(); ++r) {
      if (r == me_)
        out[r] = std::atomic_ref<std::uint64_t>(*counts_[r].local()).load(std::memory_order_acquire);
      else
        gets.push_back(rget(counts_[r], 1, &out[r]));
    }
    for (auto& g : gets) g.wait();
    maintain.after_transfer_wrote(out.data(), out.size() * sizeof(std::uint64_t));
    return out;
  }

 private:
  dsm::detail::runtime_state& rt_;
  std::size_t me_;  // this rank's place in the array's team
  std::string object_;
  std::vector<global_ptr<std::uint64_t>> counts_;
  int uncaught_at_construction_ = std::uncaught_exceptions();
};

}  // namespace dsm::coherence

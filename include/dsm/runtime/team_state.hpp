// What a rank knows of one team (a subset of the job's ranks that run
// collectives among themselves): its id, the same on every member; its
// members' world ranks in team-rank order; and its own collective
// sequence, which numbers the team's collective calls alike on every
// member.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dsm::detail {

struct team_state {
  std::uint64_t id = 0;  // 0: every rank of the job
  std::shared_ptr<const std::vector<std::uint32_t>> members;
  std::uint32_t rank = 0;  // this rank's place among the members
  std::atomic<std::uint64_t> next_sequence{0};
  std::string name;  // for messages: "world", "team 3 of 2 ranks"

  std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(members->size()); }
  std::uint32_t world_rank(std::uint32_t member) const { return (*members)[member]; }
};

// A sub-team's id from its parent's and the split's place in the parent's
// sequence: the same on every member, and distinct, for one rank, from
// every other team it belongs to (splits of one team come at different
// places), but for a 64-bit hash's chance.
constexpr std::uint64_t team_id_of(std::uint64_t parent, std::uint64_t seq) noexcept {
  std::uint64_t x = parent * 0x9e3779b97f4a7c15ull + seq + 1;  // splitmix64
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x == 0 ? 1 : x;
}

}  // namespace dsm::detail

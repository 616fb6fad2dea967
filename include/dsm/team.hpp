// dsm::team: a set of the job's ranks that synchronise and run collectives
// among themselves, each member with a rank within the team (0..size-1).
// dsm::world() is every rank; team.split(color, key) divides a team (as
// MPI_Comm_split); dsm::local_team() is the ranks of this host (those that
// share its memory). A team's collectives are numbered apart from every
// other team's, so ranks of disjoint teams run theirs independently.
#pragma once

#include <dsm/error.hpp>
#include <dsm/runtime/runtime.hpp>
#include <dsm/runtime/team_state.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <tuple>
#include <vector>

namespace dsm {

class team {
 public:
  // split()'s color for ranks that join no new team.
  static constexpr int no_color = -1;

  // This rank's place in the team, and the team's size.
  int rank() const { return static_cast<int>(state().rank); }
  int size() const { return static_cast<int>(state().size()); }
  // The job-wide rank of team rank r.
  int world_rank(int r) const {
    if (r < 0 || r >= size())
      throw error(errc::invalid_argument, fmt::format("{}: team rank {} of {}", state().name, r, size()));
    return static_cast<int>(state().world_rank(static_cast<std::uint32_t>(r)));
  }
  // The team rank of job-wide rank w, or -1 if it is not a member.
  int rank_of(int world) const {
    const auto& m = *state().members;
    const auto it = std::find(m.begin(), m.end(), static_cast<std::uint32_t>(world));
    return it == m.end() ? -1 : static_cast<int>(it - m.begin());
  }
  // False for the team split() gives ranks that passed no_color.
  bool valid() const noexcept { return state_ != nullptr; }
  const std::string& name() const { return state().name; }

  // Collective over this team: the ranks that pass one color form a new
  // team, ranked by key (ties by their rank here). Ranks passing no_color
  // get an invalid team.
  team split(int color, int key) const;

  friend bool operator==(const team& a, const team& b) noexcept {
    return a.state_ == b.state_ || (a.state_ && b.state_ && a.state_->id == b.state_->id);
  }

  detail::team_state& state() const {
    if (!state_) throw error(errc::invalid_argument, "an invalid team (split with dsm::team::no_color)");
    return *state_;
  }
  explicit team(std::shared_ptr<detail::team_state> s) noexcept : state_(std::move(s)) {}

 private:
  std::shared_ptr<detail::team_state> state_;
};

// Every rank of the job.
inline team world() {
  auto& w = detail::rt().world_team();
  return team(std::shared_ptr<detail::team_state>(std::shared_ptr<void>(), &w));  // the runtime owns it
}

// The ranks on this host (that share its memory), in rank order; known to
// every rank from start-up, so no collective.
inline team local_team() { return team(detail::rt().local_team()); }

// Collective over t: a release, every member arrives, an acquire (as a
// lock hand-over: what any member wrote before is visible after). Arrays
// and locks built over t take their barrier actions here; others are
// released and acquired. Over world() it is dsm::barrier(), where every
// array, whatever its team, takes its barrier actions.
inline void barrier(const team& t) { detail::rt().barrier(t.state()); }

inline team team::split(int color, int key) const {
  auto& parent = state();
  const detail::rank_entry entry;
  auto& rt = detail::rt();
  if (color < no_color)
    throw error(errc::invalid_argument,
                fmt::format("{}: split with color {}: a color is >= 0, or dsm::team::no_color", parent.name, color));
  const std::int64_t mine[2] = {color, key};
  std::vector<std::vector<std::int64_t>> all;
  auto call = rt.begin(parent, detail::collective_kind::allgather, "team::split");
  // Members of different colors get different ids (for messages only).
  const std::uint64_t id = detail::team_id_of(detail::team_id_of(parent.id, call.seq), static_cast<std::uint64_t>(color));
  rt.run(detail::allgather_task<std::int64_t>(std::move(call), {mine, mine + 2}, &all));
  if (color == no_color) return team(nullptr);
  std::vector<std::tuple<std::int64_t, std::uint32_t>> chosen;  // key, parent rank
  for (std::uint32_t r = 0; r < all.size(); ++r) {
    if (all[r].size() != 2)
      throw error(errc::protocol, fmt::format("{}: split record of {} values from rank {}", parent.name, all[r].size(),
                                              parent.world_rank(r)));
    if (all[r][0] == color) chosen.emplace_back(all[r][1], r);
  }
  std::sort(chosen.begin(), chosen.end());
  auto members = std::make_shared<std::vector<std::uint32_t>>();
  auto s = std::make_shared<detail::team_state>();
  for (const auto& [k, r] : chosen) {
    if (r == parent.rank) s->rank = static_cast<std::uint32_t>(members->size());
    members->push_back(parent.world_rank(r));
  }
  s->id = id;
  s->members = std::move(members);
  s->name = fmt::format("team {:#x} ({} of {}'s ranks, color {})", id, s->size(), parent.name, color);
  return team(std::move(s));
}

}  // namespace dsm

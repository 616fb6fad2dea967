// What a coherence policy knows about the array it serves: its team, the
// distribution, every member's block, the array's name and description, the
// object id its protocol messages carry, its coherence unit size, and, for
// a policy that keeps copies, the address space they live in.
#pragma once

#include <dsm/coherence/mirror_space.hpp>
#include <dsm/coherence/unit_map.hpp>
#include <dsm/distribution.hpp>
#include <dsm/global_ptr.hpp>
#include <dsm/team.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dsm::coherence {

template <class T>
struct array_layout {
  dsm::distribution distribution;
  std::vector<global_ptr<T>> blocks;  // rank r's elements, in local-index order
  std::string name;
  std::string description;       // "shared_array<double, write_shared> 'x'", for messages
  std::uint64_t object_id = 0;   // the same on every rank
  dsm::unit_size unit{};
  std::unique_ptr<mirror_space> mirror;  // policies with keeps_copies: this rank's block is its slot
  dsm::team team;  // the ranks the array spans; "rank" above and in the distribution is a rank of it

  global_ptr<T> pointer(std::size_t i) const {
    const auto [owner, local] = distribution.locate(i);
    return blocks[owner] + static_cast<std::ptrdiff_t>(local);
  }
  global_ptr<T> local_pointer(std::size_t rank, std::size_t local_index) const {
    return blocks[rank] + static_cast<std::ptrdiff_t>(local_index);
  }
  // The blocks as bytes, for the parts of a policy that move units.
  std::vector<global_ptr<std::byte>> byte_blocks() const {
    std::vector<global_ptr<std::byte>> out;
    for (const auto& b : blocks) out.push_back(dsm::detail::rebind<std::byte>(b, b.byte_offset()));
    return out;
  }
};

}  // namespace dsm::coherence

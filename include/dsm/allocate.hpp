// Typed allocation of global memory: dsm::allocate, dsm::allocate_collective
// and dsm::deallocate.
#pragma once

#include <dsm/arch/isa.hpp>
#include <dsm/detail/element_bytes.hpp>
#include <dsm/detail/element_layout.hpp>
#include <dsm/detail/type_name.hpp>
#include <dsm/global_ptr.hpp>
#include <dsm/collectives.hpp>
#include <dsm/runtime/runtime.hpp>

#include <fmt/format.h>

#include <cstddef>
#include <limits>
#include <string_view>
#include <vector>

namespace dsm {

namespace detail {
template <class T>
global_ptr<T> pointer_to(const segment_address& s) {
  return make_global_ptr<T>({s.rank, s.segment, s.generation, 0, 0});
}
}  // namespace detail

// n zero-initialised elements homed on the calling rank. Not collective.
template <global_element T>
global_ptr<T> allocate(std::size_t n) {
  return detail::pointer_to<T>(detail::rt().allocate(detail::element_bytes<T>(n, "allocate"), nullptr,
                                                      fmt::format("allocate<{}>({})", detail::type_name<T>(), n)));
}

namespace detail {

// A job that mixes ISAs shares a T only if every rank lays it out and
// represents it alike (see detail/element_layout.hpp): compared with team
// rank 0's on every member, so every member finds the same first mismatch
// and throws.
template <class T>
void check_element_layout(const team& t, std::string_view object) {
  if (!rt().mixed_isa()) return;
  const auto all = allgather(t, element_layout_of<T>());
  for (std::size_t r = 1; r < all.size(); ++r) {
    const auto &a = all[0], &b = all[r];
    if (a.fingerprint == b.fingerprint && a.size == b.size && a.alignment == b.alignment) continue;
    auto on = [&](std::size_t member, const element_layout& l) {
      const int rank = t.world_rank(static_cast<int>(member));
      return fmt::format("rank {} ({}): {} B, aligned to {}, layout {:016x}", rank,
                         arch::to_string(rt().isa_of(static_cast<std::uint32_t>(rank))), l.size, l.alignment,
                         l.fingerprint);
    };
    throw error(errc::layout_mismatch,
                fmt::format("{}: the element type is laid out or represented differently on {} and on {}; share "
                            "fixed-width members (no long double) in a job that mixes ISAs",
                            object, on(0, a), on(r, b)));
  }
}

// Over team t, block m of the result homed on team rank m. `at`: where
// this rank's block is mapped, address space the caller reserved (null:
// anywhere).
template <class T>
std::vector<global_ptr<T>> allocate_collective_of(const team& t, std::size_t n_per_rank, std::string_view object,
                                                  std::byte* at = nullptr,
                                                  segment_memory memory = segment_memory::fresh) {
  // Every collective inside carries the object's name and size: a rank
  // allocating something else at this point is a mismatch, named.
  const runtime_state::operation_scope scope(rt(), fmt::format("{}: {} x {} per rank", object, n_per_rank, type_name<T>()));
  check_element_layout<T>(t, object);
  const auto segments =
      rt().allocate_collective(t.state(), element_bytes<T>(n_per_rank, "allocate_collective"), at, object, memory);
  std::vector<global_ptr<T>> blocks;
  blocks.reserve(segments.size());
  for (const auto& s : segments) blocks.push_back(pointer_to<T>(s));
  return blocks;
}

}  // namespace detail

// Collective (over team t, or every rank): n_per_rank elements homed on
// every member; element r of the result is team rank r's block. Every
// member must pass the same n_per_rank, and in a job that mixes ISAs, T
// must have one layout on all of them.
template <global_element T>
std::vector<global_ptr<T>> allocate_collective(const team& t, std::size_t n_per_rank) {
  return detail::allocate_collective_of<T>(t, n_per_rank,
                                           fmt::format("allocate_collective<{}>", detail::type_name<T>()));
}
template <global_element T>
std::vector<global_ptr<T>> allocate_collective(std::size_t n_per_rank) {
  return allocate_collective<T>(world(), n_per_rank);
}

// Frees memory from allocate / allocate_collective; called by its home rank
// with the pointer allocation returned. Afterwards every copy of that
// pointer is stale: using one is a dsm::error, never an access to memory
// reused by a later allocation.
template <class T>
void deallocate(global_ptr<T> p) {
  if (p.is_null()) return;
  const detail::rank_entry entry;
  auto& rt = detail::rt();
  if (p.home_rank() != rt.rank())
    throw error(errc::invalid_argument, fmt::format("deallocate({}): memory homed on rank {} is freed by that rank",
                                                    p.describe(), p.home_rank()));
  if (p.byte_offset() != 0)
    throw error(errc::invalid_argument,
                fmt::format("deallocate({}): not the start of an allocation", p.describe()));
  rt.deallocate(p.segment(), p.generation());
}

}  // namespace dsm

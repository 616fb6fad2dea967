// Typed allocation of global memory: dsm::allocate, dsm::allocate_collective
// and dsm::deallocate.
#pragma once

#include <dsm/detail/element_bytes.hpp>
#include <dsm/global_ptr.hpp>
#include <dsm/runtime/runtime.hpp>

#include <cstddef>
#include <limits>
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
  return detail::pointer_to<T>(detail::rt().allocate(detail::element_bytes<T>(n, "allocate")));
}

// Collective: n_per_rank elements homed on every rank; element r of the
// result is rank r's block. Every rank must pass the same n_per_rank.
template <global_element T>
std::vector<global_ptr<T>> allocate_collective(std::size_t n_per_rank) {
  const auto segments = detail::rt().allocate_collective(detail::element_bytes<T>(n_per_rank, "allocate_collective"));
  std::vector<global_ptr<T>> blocks;
  blocks.reserve(segments.size());
  for (const auto& s : segments) blocks.push_back(detail::pointer_to<T>(s));
  return blocks;
}

// Frees memory from allocate / allocate_collective; called by its home rank
// with the pointer allocation returned. Afterwards every copy of that
// pointer is stale: using one is a dsm::error, never an access to memory
// reused by a later allocation.
template <class T>
void deallocate(global_ptr<T> p) {
  if (p.is_null()) return;
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

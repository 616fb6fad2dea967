// dsm::region_allocator<T>: a standard allocator whose memory is in a
// global_region, so that a container built by one rank (its nodes, its
// buffer and, when it is itself placed in the region, its header) is read
// and written by the others after synchronisation, through the same
// pointers. It holds only the region's base address, the same on every
// rank: an allocator stored inside the region works on any rank.
//
// Each rank allocates from its own arena (its slot of the region: its home
// bytes in block homing), so ranks allocate without talking to each other;
// a block freed by another rank is given back to its arena by an rpc_ff.
#pragma once

#include <dsm/detail/region_heap.hpp>
#include <dsm/detail/type_name.hpp>
#include <dsm/error.hpp>
#include <dsm/global_region.hpp>
#include <dsm/rpc.hpp>

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <new>
#include <utility>

namespace dsm {

namespace detail {
inline region_arena& arena_of(const std::byte* base, const char* operation) {
  region_arena* a = region_arenas::find(base);
  if (a == nullptr)
    throw error(errc::invalid_argument, fmt::format("region_allocator: {} in a global_region at {} that is gone (or "
                                                    "not yet made) on this rank",
                                                    operation, static_cast<const void*>(base)));
  return *a;
}
// Runs on the arena's own rank (an rpc_ff from the rank that freed).
inline void free_in_arena(std::uint64_t base, std::uint64_t offset, std::uint64_t bytes) {
  arena_of(reinterpret_cast<const std::byte*>(base), "deallocate").heap.free(offset, bytes);
}
}  // namespace detail

template <class T>
class region_allocator {
 public:
  using value_type = T;

  template <class Policy>
  explicit region_allocator(const global_region<Policy>& r) : base_(r.base()) {}
  template <class U>
  region_allocator(const region_allocator<U>& other) noexcept : base_(other.region_base()) {}

  T* allocate(std::size_t n) {
    auto& a = detail::arena_of(base_, "allocate");
    if (n > a.slot_bytes / sizeof(T))
      throw error(errc::out_of_memory, fmt::format("region_allocator<{}>: {} elements are more than rank {}'s arena of "
                                                   "{} B holds",
                                                   detail::type_name<T>(), n, a.me, a.slot_bytes));
    const auto offset = a.heap.allocate(n * sizeof(T), alignof(T));
    if (!offset)
      throw error(errc::out_of_memory,
                  fmt::format("region_allocator<{}>: {} elements ({} B) do not fit in rank {}'s arena ({} of {} B in "
                              "use, {} free ranges)",
                              detail::type_name<T>(), n, n * sizeof(T), a.me, a.heap.bytes_used(), a.slot_bytes,
                              a.heap.free_ranges()));
    return reinterpret_cast<T*>(base_ + *offset);
  }

  // On the rank that allocated it, at once; from another rank, an rpc_ff
  // to the allocating rank (freed at its next wait or progress()).
  void deallocate(T* p, std::size_t n) noexcept {
    try {
      auto& a = detail::arena_of(base_, "deallocate");
      const auto offset = static_cast<std::size_t>(reinterpret_cast<std::byte*>(p) - base_);
      const std::size_t owner = offset / a.slot_bytes;
      if (owner == a.me) return a.heap.free(offset, n * sizeof(T));
      rpc_ff(static_cast<int>(owner), fn<&detail::free_in_arena>, reinterpret_cast<std::uint64_t>(base_),
             std::uint64_t{offset}, std::uint64_t{n * sizeof(T)});
    } catch (const std::exception& e) {
      // deallocate may not throw (containers call it in destructors); a
      // block that cannot be freed is said, and stays allocated.
      std::fprintf(stderr, "dsm: region_allocator<%s>: deallocating %zu elements at %p: %s\n",
                   std::string(detail::type_name<T>()).c_str(), n, static_cast<void*>(p), e.what());
    }
  }

  // Constructs a T in the region (allocated by this rank): a container's
  // header placed there, say, so that other ranks reach it by its address.
  template <class... Args>
  T* new_object(Args&&... args) {
    T* p = allocate(1);
    try {
      return ::new (static_cast<void*>(p)) T(std::forward<Args>(args)...);
    } catch (...) {
      deallocate(p, 1);
      throw;
    }
  }
  void delete_object(T* p) noexcept {
    p->~T();
    deallocate(p, 1);
  }

  std::byte* region_base() const noexcept { return base_; }
  template <class U>
  bool operator==(const region_allocator<U>& other) const noexcept {
    return base_ == other.region_base();
  }

 private:
  std::byte* base_;
};

}  // namespace dsm

// The hook set every coherence policy implements. A policy is a tag type
// with an id (carried in the array's global pointers), a name, and a
// per-array state template:
//
//   struct my_policy {
//     static constexpr std::uint8_t id = ...;      // 1..15, unique
//     static constexpr const char* name = "...";
//     template <class T> class state {
//       explicit state(const array_layout<T>&);
//       T read(std::size_t i);                       // element read (a miss, for caching policies)
//       void write(std::size_t i, const T& v);       // element write (first write of a unit)
//       void get(std::size_t first, std::size_t n, T* out);        // bulk
//       void put(std::size_t first, const T* in, std::size_t n);   // bulk
//       void acquire();                              // after lock()
//       void release();                              // before unlock()
//       void arrive();                               // a barrier's release half, before ranks synchronise
//       void barrier();                              // once every rank has passed a barrier
//     };
//   };
//
// shared_array registers every array with the runtime, so dsm::barrier()
// calls arrive() on every live array, synchronises, then barrier(); a
// dsm::lock calls acquire() after lock() and release() before unlock().
// arrive() is at least a release; it is separate because a barrier can do
// more (write everything home, so that homes start the next interval
// afresh).
// barrier() is at least an acquire; it is separate because some contracts
// are tied to barriers (read_only data is published at the first one). A
// new policy is one new header under coherence/.
//
// A policy whose state allocated registered memory of its own frees it in
// an optional `void retire();`, which the array's destructor calls while
// every rank still takes part (after its last barrier, before the blocks
// go).
//
// A policy that caches other ranks' elements says so with
// `static constexpr bool keeps_copies = true;`: its array then maps this
// rank's block inside a mirror_space (array_layout::mirror), so that one
// address formula reaches every copy.
#pragma once

#include <dsm/coherence/array_layout.hpp>
#include <dsm/runtime/runtime.hpp>
#include <dsm/team.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string>

#include <concepts>
#include <cstddef>
#include <cstdint>

namespace dsm::coherence {

template <class P, class T = int>
concept policy = requires {
  { P::id } -> std::convertible_to<std::uint8_t>;
  { P::name } -> std::convertible_to<const char*>;
} && requires(typename P::template state<T>& s, std::size_t i, const T& v, T* out, const T* in) {
  { s.read(i) } -> std::same_as<T>;
  s.write(i, v);
  s.get(i, i, out);
  s.put(i, in, i);
  s.acquire();
  s.release();
  s.arrive();
  s.barrier();
} && std::constructible_from<typename P::template state<T>, const array_layout<T>&>;

template <class P>
inline constexpr bool keeps_copies = requires {
  requires P::keeps_copies;
};

// A policy that declares `static constexpr bool checks_indices = true;`
// checks the index in its state's read() and write() (against the size,
// throwing errc::out_of_range), so that operator[] need not: the hit path
// of a tiled caching array folds that check into its tiled test.
template <class P>
inline constexpr bool checks_indices = requires {
  requires P::checks_indices;
};

// Barriers and locks reach an object's policy state through this: `Body`
// (an array's or a region's, on the heap so that moving the object moves
// nothing) has the policy's `state` behind a pointer-like member and its
// own after_barrier().
template <class Body>
struct sync_hooks final : dsm::detail::sync_participant {
  Body* owner;
  explicit sync_hooks(Body* b) : owner(b) {}
  void release() override { owner->state->release(); }
  void acquire() override { owner->state->acquire(); }
  void before_barrier() override { owner->state->arrive(); }
  void after_barrier() override { owner->after_barrier(); }
};

// The collective end of an array's or a region's life: its barriers are
// left, its changes go home (`arrive`), every member waits for every
// other, `free` gives its memory back, and a last barrier makes every key
// of it stale everywhere. Destroyed while an exception unwinds, or in a
// failed job, it takes no collective step (it would pair with whatever
// collective the others are in, or fail at once) and returns false: its
// memory stays mapped until the runtime ends. A failure on the way is
// printed (destructors do not throw) and is false too.
template <class Arrive, class Free>
bool end_collectively(dsm::detail::sync_participant& sync, const dsm::team& t, const std::string& description,
                      int uncaught_at_construction, Arrive&& arrive, Free&& free) noexcept {
  auto& rt = dsm::detail::rt();
  if (std::uncaught_exceptions() > uncaught_at_construction || rt.job_failed()) {
    rt.leave_sync(&sync);
    return false;
  }
  try {
    const dsm::detail::runtime_state::operation_scope scope(rt, "the destruction of " + description);
    rt.leave_sync(&sync);
    arrive();
    barrier(t);
    free();
    barrier(t);
    return true;
  } catch (const std::exception& e) {
    fmt::print(stderr, "dsm: rank {}: destroying {}: {}\n", rt.rank(), description, e.what());
    return false;
  }
}

}  // namespace dsm::coherence

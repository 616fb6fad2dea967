// One-sided access through global pointers: rput, rget and remote atomics.
// Each returns a dsm::future; local targets are served with plain memory
// operations, except atomics, which always go through UCX so that they are
// atomic with respect to every other rank's.
#pragma once

#include <dsm/detail/element_bytes.hpp>
#include <dsm/global_ptr.hpp>
#include <dsm/runtime/runtime.hpp>
#include <dsm/transport/rma.hpp>

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <utility>

namespace dsm {

namespace detail {
template <class T>
[[noreturn, gnu::noinline, gnu::cold]] void throw_null(const char* operation) {
  throw error(errc::invalid_argument, fmt::format("{} through a null global_ptr<{}>", operation, type_name<T>()));
}
template <class T>
void check_not_null(global_ptr<T> p, const char* operation) {
  if (p.is_null()) [[unlikely]] throw_null<T>(operation);
}
}  // namespace detail

namespace detail {
// A future that is done already, holding the T at `value`.
template <class T>
future<T> ready_future(const void* value, const char* name, int peer) {
  op_buffer* b = op_buffer_pool::take();
  std::memcpy(b->bytes, value, sizeof(T));
  return future<T>(rt().worker(), nullptr, b, {name, peer});
}

enum class direction { put, get };

// What every rput and rget does: refuse null, count, then either copy
// local memory (local(std::byte*)) or post to the home
// (remote(runtime_state&, remote_address)), bounds and generation checked
// for span_bytes from p; payload_bytes (what moves) are counted.
template <class T, class Local, class Remote>
[[gnu::always_inline]] inline auto one_sided_span(direction d, global_ptr<T> p, std::uint64_t span_bytes,
                                                  std::uint64_t payload_bytes, const char* operation, Local&& local,
                                                  Remote&& remote) {
  check_not_null(p, operation);
  const rank_entry entry;  // threads::multiple: the whole call holds the rank
  runtime_state& r = rt();
  runtime_stats& st = r.stats();
  if (d == direction::put) ++st.puts, st.bytes_put += payload_bytes;
  else ++st.gets, st.bytes_got += payload_bytes;
  if (p.is_local()) return local(r.local_bytes(p.segment(), p.generation(), p.byte_offset(), span_bytes, operation));
  return r.with_remote(p.home_rank(), p.segment(), p.generation(), p.byte_offset(), span_bytes, operation,
                       [&](const transport::remote_address& at) { return remote(r, at); });
}
template <class T, class Local, class Remote>
[[gnu::always_inline]] inline auto one_sided(direction d, global_ptr<T> p, std::uint64_t bytes, const char* operation,
                                             Local&& local, Remote&& remote) {
  return one_sided_span(d, p, bytes, bytes, operation, std::forward<Local>(local), std::forward<Remote>(remote));
}
}  // namespace detail

namespace detail {
// Where a put's future completes: at the source (the buffer may be
// reused) or at the target (the bytes are in its memory).
enum class put_completion { source, target };

template <class T>
future<> put_elements(const T* src, std::size_t n, global_ptr<T> dst, put_completion done) {
  const std::uint64_t bytes = element_bytes<T>(n, "rput");
  return one_sided(
      direction::put, dst, bytes, "rput",
      [&](std::byte* at) {
        std::memmove(at, src, bytes);
        return future<>{};
      },
      [&](runtime_state& r, const transport::remote_address& to) {
        return done == put_completion::target ? transport::put_remote_complete(r.worker(), r.endpoints(), src, bytes, to)
                                              : transport::put(r.worker(), r.endpoints(), src, bytes, to);
      });
}

template <class T>
future<> put_one(const T& value, global_ptr<T> dst, put_completion done) {
  if constexpr (sizeof(T) > op_buffer::capacity) {
    put_elements(&value, 1, dst, done).wait();  // too large for a pooled buffer: completed here
    return {};
  } else {
    return one_sided(
        direction::put, dst, sizeof(T), "rput",
        [&](std::byte* at) {
          std::memcpy(at, &value, sizeof(T));
          return future<>{};
        },
        [&](runtime_state& r, const transport::remote_address& to) {
          if (done == put_completion::source) return transport::put_value(r.worker(), r.endpoints(), value, to);
          op_buffer* b = op_buffer_pool::take();
          std::memcpy(b->bytes, &value, sizeof(T));
          return transport::put_remote_complete(r.worker(), r.endpoints(), b->bytes, sizeof(T), to, b);
        });
  }
}
}  // namespace detail

// Copies n elements from local src to p .. p+n.
template <global_element T>
future<> rput(const T* src, std::size_t n, global_ptr<T> dst) {
  return detail::put_elements(src, n, dst, detail::put_completion::source);
}

// Writes one value to *p; the value is copied, the caller need not keep it.
template <global_element T>
future<> rput(const T& value, global_ptr<T> dst) {
  return detail::put_one(value, dst, detail::put_completion::source);
}

// Completion at the target (UPC++'s remote_cx): rput(src, n, p,
// dsm::remote_cx).wait() returns once the bytes are in the target's
// memory, where any rank's later get finds them; plain wait() means only
// that `src` may be reused.
struct remote_completion {
  explicit constexpr remote_completion() = default;
};
inline constexpr remote_completion remote_cx{};

template <global_element T>
future<> rput(const T* src, std::size_t n, global_ptr<T> dst, remote_completion) {
  return detail::put_elements(src, n, dst, detail::put_completion::target);
}
template <global_element T>
future<> rput(const T& value, global_ptr<T> dst, remote_completion) {
  return detail::put_one(value, dst, detail::put_completion::target);
}

// Copies n elements from p .. p+n into local dst.
template <class T>
  requires global_element<std::remove_const_t<T>>
future<> rget(global_ptr<T> src, std::size_t n, std::remove_const_t<T>* dst) {
  const std::uint64_t bytes = detail::element_bytes<T>(n, "rget");
  return detail::one_sided(
      detail::direction::get, src, bytes, "rget",
      [&](const std::byte* at) {
        std::memmove(dst, at, bytes);
        return future<>{};
      },
      [&](detail::runtime_state& r, const transport::remote_address& from) {
        return transport::get(r.worker(), r.endpoints(), dst, bytes, from);
      });
}

// Reads *p.
template <class T>
  requires global_element<std::remove_const_t<T>> && (sizeof(T) <= detail::op_buffer::capacity)
future<std::remove_const_t<T>> rget(global_ptr<T> src) {
  using value_type = std::remove_const_t<T>;
  return detail::one_sided(
      detail::direction::get, src, sizeof(T), "rget",
      [&](const std::byte* at) { return detail::ready_future<value_type>(at, "rget", static_cast<int>(src.home_rank())); },
      [&](detail::runtime_state& r, const transport::remote_address& from) {
        return transport::get_value<value_type>(r.worker(), r.endpoints(), from);
      });
}

// The floating-point types the remote atomics add to.
template <class T>
concept atomic_floating_point = std::same_as<T, float> || std::same_as<T, double>;

namespace detail {
template <class T>
void check_atomic_target(global_ptr<T> p, const char* name) {
  check_not_null(p, name);
#if DSM_CHECKS
  if (p.byte_offset() % sizeof(T) != 0)
    throw error(errc::invalid_argument, fmt::format("{} on {}: not {}-byte aligned", name, p.describe(), sizeof(T)));
#endif
}

template <transport::atomic_word T>
future<T> remote_atomic(global_ptr<T> p, transport::atomic_op op, T operand, T desired, const char* name) {
  check_atomic_target(p, name);
  const rank_entry entry;
  auto& r = rt();
  ++r.stats().atomics;
  return r.with_remote(p.home_rank(), p.segment(), p.generation(), p.byte_offset(), sizeof(T), name,
                       [&](const transport::remote_address& at) {
                         return transport::atomic<T>(r.worker(), r.endpoints(), op, at, operand, desired);
                       });
}

// A read-modify-write UCX has no operation for, as compare-and-swap on the
// word's bits: `update(old)` gives the new value, or nullopt when the word
// needs no change (a min or max already there: the read is then the
// operation). A swap fails only when another rank's update landed between
// the read and the swap, so some rank always progresses, and the loop
// retries from the value the failed swap returned. The call returns once
// its update is in place; the future is done already.
template <class T, class Update>
future<T> atomic_update(global_ptr<T> p, Update update, const char* name) {
  check_atomic_target(p, name);
  using bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  const global_ptr<bits> word = reinterpret_pointer_cast<bits>(p);
  bits seen = remote_atomic<bits>(word, transport::atomic_op::load, 0, 0, name).wait();
  for (;;) {
    const std::optional<T> next = update(std::bit_cast<T>(seen));
    if (!next) break;
    const bits old = remote_atomic<bits>(word, transport::atomic_op::compare_exchange, seen, std::bit_cast<bits>(*next), name).wait();
    if (old == seen) break;
    seen = old;
  }
  const T before = std::bit_cast<T>(seen);
  return ready_future<T>(&before, name, static_cast<int>(p.home_rank()));
}
}  // namespace detail

// Remote atomics on 32- and 64-bit integers; each future yields the value
// before the operation.
template <transport::atomic_word T>
future<T> atomic_fetch_add(global_ptr<T> p, std::type_identity_t<T> v) {
  return detail::remote_atomic<T>(p, transport::atomic_op::fetch_add, v, 0, "atomic_fetch_add");
}
// Bitwise and, or, xor by compare-and-swap: UCX 1.13's own fetching
// and/or/xor over its shared-memory transports compute an and for every
// one of them (and posix's overwrites the caller's stack), where its
// add, swap and compare-and-swap are right; over TCP all are right.
template <transport::atomic_word T>
future<T> atomic_fetch_and(global_ptr<T> p, std::type_identity_t<T> v) {
  return detail::atomic_update(p, [v](T old) { return std::optional<T>(old & v); }, "atomic_fetch_and");
}
template <transport::atomic_word T>
future<T> atomic_fetch_or(global_ptr<T> p, std::type_identity_t<T> v) {
  return detail::atomic_update(p, [v](T old) { return std::optional<T>(old | v); }, "atomic_fetch_or");
}
template <transport::atomic_word T>
future<T> atomic_fetch_xor(global_ptr<T> p, std::type_identity_t<T> v) {
  return detail::atomic_update(p, [v](T old) { return std::optional<T>(old ^ v); }, "atomic_fetch_xor");
}
// *p = min(*p, v), compared as T (signed or unsigned), by compare-and-swap.
template <transport::atomic_word T>
future<T> atomic_fetch_min(global_ptr<T> p, std::type_identity_t<T> v) {
  return detail::atomic_update(p, [v](T old) { return v < old ? std::optional<T>(v) : std::nullopt; }, "atomic_fetch_min");
}
template <transport::atomic_word T>
future<T> atomic_fetch_max(global_ptr<T> p, std::type_identity_t<T> v) {
  return detail::atomic_update(p, [v](T old) { return old < v ? std::optional<T>(v) : std::nullopt; }, "atomic_fetch_max");
}
// *p += v on a float or double, by compare-and-swap: exact totals under
// contention, each addition rounded once, in the order the swaps landed.
template <atomic_floating_point T>
future<T> atomic_fetch_add(global_ptr<T> p, std::type_identity_t<T> v) {
  return detail::atomic_update(p, [v](T old) { return std::optional<T>(old + v); }, "atomic_fetch_add");
}
template <transport::atomic_word T>
future<T> atomic_exchange(global_ptr<T> p, std::type_identity_t<T> v) {
  return detail::remote_atomic<T>(p, transport::atomic_op::exchange, v, 0, "atomic_exchange");
}
// Swaps in `desired` when *p == expected; yields the old value either way.
template <transport::atomic_word T>
future<T> atomic_compare_exchange(global_ptr<T> p, std::type_identity_t<T> expected, std::type_identity_t<T> desired) {
  return detail::remote_atomic<T>(p, transport::atomic_op::compare_exchange, expected, desired, "atomic_compare_exchange");
}
template <transport::atomic_word T>
future<T> atomic_load(global_ptr<T> p) {
  return detail::remote_atomic<T>(p, transport::atomic_op::load, 0, 0, "atomic_load");
}
template <transport::atomic_word T>
future<T> atomic_store(global_ptr<T> p, std::type_identity_t<T> v) {
  return detail::remote_atomic<T>(p, transport::atomic_op::store, v, 0, "atomic_store");
}

}  // namespace dsm

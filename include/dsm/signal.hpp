// Point-to-point synchronisation, as OpenSHMEM users know it: a rank waits
// on a word of its own memory until a condition holds (wait_until), and a
// peer puts data and then a signal into that rank's memory (rput_signal),
// the data landing before the signal does. The hand-off:
//
//   producer:  dsm::rput_signal(src, n, data_at_consumer, flag_at_consumer, round).wait();
//   consumer:  dsm::wait_until(flag, dsm::cmp::ge, round);   // then read data.local()
#pragma once

#include <dsm/arch/fence.hpp>
#include <dsm/detail/element_bytes.hpp>
#include <dsm/global_ptr.hpp>
#include <dsm/rma.hpp>
#include <dsm/runtime/runtime.hpp>
#include <dsm/transport/rma.hpp>

#include <fmt/format.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <type_traits>

namespace dsm {

// The conditions wait_until waits for: *p cmp value.
enum class cmp { eq, ne, gt, ge, lt, le };

constexpr std::string_view to_string(cmp c) noexcept {
  switch (c) {
    case cmp::eq: return "==";
    case cmp::ne: return "!=";
    case cmp::gt: return ">";
    case cmp::ge: return ">=";
    case cmp::lt: return "<";
    case cmp::le: return "<=";
  }
  return "?";
}

template <std::integral T>
constexpr bool holds(T v, cmp c, T value) noexcept {
  switch (c) {
    case cmp::eq: return v == value;
    case cmp::ne: return v != value;
    case cmp::gt: return v > value;
    case cmp::ge: return v >= value;
    case cmp::lt: return v < value;
    case cmp::le: return v <= value;
  }
  return false;
}

namespace detail {
// The word of this rank's memory that p names, checked: not null, homed
// here (peers signal into a waiter's memory; a peer's word is read with
// rget or an atomic), aligned for atomic access, within its segment.
template <transport::atomic_word T>
std::atomic_ref<T> own_word(global_ptr<T> p, const char* operation) {
  check_not_null(p, operation);
  if (!p.is_local())
    throw error(errc::invalid_argument,
                fmt::format("{} on {}: the memory of rank {}; a rank waits on its own memory (where peers signal "
                            "it) and reads a peer's with rget or atomic_load",
                            operation, p.describe(), p.home_rank()));
  if (p.byte_offset() % sizeof(T) != 0)
    throw error(errc::invalid_argument, fmt::format("{} on {}: not {}-byte aligned", operation, p.describe(), sizeof(T)));
  auto* word = reinterpret_cast<T*>(rt().local_bytes(p.segment(), p.generation(), p.byte_offset(), sizeof(T), operation));
  return std::atomic_ref<T>(*word);
}
}  // namespace detail

// Whether *p cmp value holds now (after serving what has arrived); with
// acquire semantics when it does.
template <transport::atomic_word T>
bool test(global_ptr<T> p, cmp c, std::type_identity_t<T> value) {
  auto word = detail::own_word(p, "test");
  detail::rt().worker().progress();
  return holds(word.load(std::memory_order_acquire), c, value);
}

namespace detail {
// Waits until the word p names, on any rank, satisfies `c value`: this
// rank's memory is loaded; a peer's is read with one atomic load in flight
// at a time, so the home's CPU (over TCP, which emulates them) serves one
// request per round trip, not a flood. Returns the value that satisfied
// it. Timeouts name what describe() says, the condition and the value
// last seen.
template <transport::atomic_word T, class Describe>
T await_word(global_ptr<T> p, cmp c, T value, Describe&& describe) {
  const waiting_for_peers away;  // threads::multiple: the rank's other threads go on
  auto& w = rt().worker();
  const auto condition = [&](T last) {
    return fmt::format("wait_until({} {} {}): the value at rank {} is {}", describe(), to_string(c), value,
                       p.home_rank(), last);
  };
  if (p.is_local()) {
    auto word = own_word(p, "wait_until");
    w.wait_until([&] { return holds(word.load(std::memory_order_acquire), c, value); }, w.timeout(),
                 [&] { return condition(word.load()); });
    arch::acquire_fence();
    return word.load(std::memory_order_relaxed);
  }
  T last = atomic_load(p).wait();  // the first read also fetches the home's key, if need be
  if (holds(last, c, value)) return last;
  std::optional<future<T>> reading;
  try {
    w.wait_until(
        [&] {
          if (!reading) reading.emplace(atomic_load(p));
          if (!reading->done()) return false;
          last = reading->wait();
          reading.reset();
          return holds(last, c, value);
        },
        w.timeout(), [&] { return condition(last); }, static_cast<int>(p.home_rank()));
  } catch (...) {
    // The read in flight belongs to the failed wait: finished or abandoned here, quietly.
    if (reading) try {
        (void)reading->wait();
      } catch (const std::exception&) {
      }
    throw;
  }
  arch::acquire_fence();
  return last;
}
}  // namespace detail

// Returns once *p cmp value holds; p is this rank's memory, written by
// peers' puts, atomics or signals. Acquire: what the writer put before its
// signal (rput_signal, or a put completed remotely before a plain one) is
// visible after. Bounded by DSM_TIMEOUT (errc::timeout naming the word,
// the condition and the value last seen).
template <transport::atomic_word T>
void wait_until(global_ptr<T> p, cmp c, std::type_identity_t<T> value) {
  const detail::rank_entry entry;  // given up while it waits (threads::multiple)
  (void)detail::own_word(p, "wait_until");  // a peer's word is refused
  (void)detail::await_word(p, c, value, [&] { return "*" + p.describe(); });
}

// How rput_signal changes the signal word.
enum class signal_op { set, add };

// Puts n elements from src to dst, then sets (or adds to) the 64-bit
// signal word, both homed on one rank: the data is at the target before
// the signal changes, so a rank waiting on the signal finds the data. The
// call returns once src may be reused; the future completes with the
// signal's operation and yields the signal's value before it.
template <global_element T>
future<std::uint64_t> rput_signal(const T* src, std::size_t n, global_ptr<T> dst, global_ptr<std::uint64_t> signal,
                                  std::uint64_t value, signal_op op = signal_op::set) {
  const detail::rank_entry entry;  // threads::multiple: nothing posted between the data and its signal
  detail::check_not_null(dst, "rput_signal");
  detail::check_not_null(signal, "rput_signal");
  if (dst.home_rank() != signal.home_rank())
    throw error(errc::invalid_argument,
                fmt::format("rput_signal: the data ({}) and the signal ({}) are homed on different ranks",
                            dst.describe(), signal.describe()));
  if (signal.byte_offset() % sizeof(std::uint64_t) != 0)
    throw error(errc::invalid_argument, fmt::format("rput_signal: the signal {} is not 8-byte aligned", signal.describe()));
  if (dst.is_local()) {
    rput(src, n, dst).wait();  // a copy
    auto word = detail::own_word(signal, "rput_signal");
    const std::uint64_t before = op == signal_op::set ? word.exchange(value, std::memory_order_release)
                                                      : word.fetch_add(value, std::memory_order_release);
    detail::op_buffer* b = detail::op_buffer_pool::take();
    std::memcpy(b->bytes, &before, sizeof before);
    return future<std::uint64_t>(detail::rt().worker(), nullptr, b, {"rput_signal", static_cast<int>(dst.home_rank())});
  }
  auto data = rput(src, n, dst);
  transport::order_after_posted(detail::rt().worker());
  auto signalled = op == signal_op::set ? atomic_exchange(signal, value) : atomic_fetch_add(signal, value);
  data.wait();
  return signalled;
}

}  // namespace dsm

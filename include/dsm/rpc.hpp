// Remote procedure calls: dsm::rpc(rank, fn, args...) runs fn(args...) on
// `rank` and returns a dsm::future of its result; dsm::rpc_ff does the same
// without a reply. fn is a function, a function pointer, a captureless
// lambda or another stateless function object; arguments and results are
// anything detail/archive.hpp serialises (a dist_object argument arrives
// as the target's own instance). The target runs fn on its program's
// thread whenever that thread waits in dsm or calls dsm::progress().
#pragma once

#include <dsm/detail/archive.hpp>
#include <dsm/detail/rpc_registry.hpp>
#include <dsm/detail/type_name.hpp>
#include <dsm/global_ptr.hpp>
#include <dsm/runtime/reply_future.hpp>
#include <dsm/runtime/runtime.hpp>
#include <dsm/transport/future.hpp>

#include <fmt/format.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace dsm {

template <class T>
class dist_object;

// A function as a stateless function object whose type names it: what an
// RPC to a rank running another binary (a mixed-ISA job) passes instead of
// a function pointer, whose address means nothing there.
template <auto F>
struct fn_t {
  template <class... A>
  decltype(auto) operator()(A&&... a) const {
    return std::invoke(F, std::forward<A>(a)...);
  }
};
template <auto F>
inline constexpr fn_t<F> fn{};

// A global_ptr travels as its two words (the same on every ISA); using it
// there is checked as any other is.
template <class Archive, class T>
void save(Archive& ar, const global_ptr<T>& p) {
  std::uint64_t words[2];
  std::memcpy(words, &p, sizeof words);
  ar(words[0], words[1]);
}
template <class Archive, class T>
void load(Archive& ar, global_ptr<T>& p) {
  std::uint64_t words[2];
  ar(words[0], words[1]);
  std::memcpy(&p, words, sizeof words);
}

namespace detail {

// A dist_object as an RPC carries it: its id; the target finds its own.
template <class T>
struct dist_object_ref {
  std::uint64_t id = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id);
  }
};
template <class T>
std::uint64_t dist_object_type_key() noexcept {
  return fnv1a(type_name<dist_object<T>>());
}

template <class A>
struct rpc_wire {
  using type = A;
};
template <class T>
struct rpc_wire<dist_object<T>> {
  using type = dist_object_ref<T>;
};
// What an argument of type A travels as.
template <class A>
using wire_t = typename rpc_wire<std::remove_cvref_t<A>>::type;

template <class A>
wire_t<A> to_wire(A&& a) {
  if constexpr (std::is_same_v<wire_t<A>, std::remove_cvref_t<A>>) return std::forward<A>(a);
  else return {a.id()};
}

// What the target's function receives for a wire value: the value itself
// (an rvalue: it is the function's to keep), or this rank's dist_object.
template <class W>
W&& local_arg(W& w) noexcept {
  return std::move(w);
}
template <class T>
dist_object<T>& local_arg(dist_object_ref<T>& r) {
  return *static_cast<dist_object<T>*>(rt().rpc().object(r.id, dist_object_type_key<T>(), type_name<T>()));
}
template <class W>
using local_t = decltype(local_arg(std::declval<W&>()));

template <class C>
constexpr bool is_function_pointer = std::is_pointer_v<C> && std::is_function_v<std::remove_pointer_t<C>>;
// Callable on another rank: code every rank of the program has, and no state.
template <class C>
constexpr bool is_remote_callable =
    is_function_pointer<C> || (std::is_class_v<C> && std::is_empty_v<C> && std::is_default_constructible_v<C>);

template <class C, class... W>
using rpc_result_t = std::invoke_result_t<C&, local_t<W>...>;

template <class R>
concept rpc_result_type = std::is_void_v<R> || (serializable<R> && std::is_move_constructible_v<R>);

// The target's side of an RPC of C with wire arguments W...: registered
// before main; every rank of the program that makes such a call has it.
template <class C, class... W>
struct rpc_function {
  using R = rpc_result_t<C, W...>;

  static std::vector<std::byte> invoke(const rpc_request& request) {
    std::tuple<W...> args;
    C callable{};
    if constexpr (is_function_pointer<C>) {
      std::uint64_t offset = 0;
      std::apply([&](auto&... a) { load_values(request.arguments, "rpc arguments", offset, a...); }, args);
      callable = function_at(request, offset);
    } else {
      std::apply([&](auto&... a) { load_values(request.arguments, "rpc arguments", a...); }, args);
    }
    const auto call = [&]() -> R {
      return std::apply([&](auto&... a) -> R { return std::invoke(callable, local_arg(a)...); }, args);
    };
    std::vector<std::byte> result;
    if constexpr (std::is_void_v<R>) call();
    else append_values(result, call());
    return result;
  }

  // A function pointer comes as its offset in the caller's executable:
  // meaningful only in the same binary, and only if it lands in its code.
  static C function_at(const rpc_request& request, std::uint64_t offset) {
    if (!request.same_program)
      throw error(errc::invalid_argument,
                  fmt::format("an RPC named a function by its address, and the caller (rank {}) runs another binary: "
                              "pass dsm::fn<&f> or a lambda instead of a function pointer",
                              request.source));
    const std::uintptr_t address = program_image::self().address_at(offset);
    if (!program_image::self().holds_code(address))
      throw error(errc::protocol, fmt::format("an RPC named a function at offset {:#x}, outside the program's code", offset));
    return reinterpret_cast<C>(address);
  }

  static inline const rpc_entry* const entry =
      rpc_registry::instance().add(type_name<rpc_function>(), type_name<C>(), &invoke);
};

// Checks the call, serialises it and sends it; returns the call's id (0
// for fire and forget).
template <class F, class... Args>
std::uint64_t post_rpc(int rank, bool wants_reply, F&& fn, Args&&... args) {
  using C = std::decay_t<F>;
  static_assert(is_remote_callable<C>,
                "dsm::rpc: fn must be a function, a function pointer, a captureless lambda or another stateless function "
                "object (the target runs its own copy of the program's code): pass what a lambda would capture as "
                "arguments");
  static_assert((serializable<wire_t<Args>> && ...),
                "dsm::rpc: every argument must be serializable: arithmetic values, std::string, std::vector, std::map, "
                "std::tuple, std::optional, ..., a dsm::dist_object, or a type with a cereal serialize() (pointers and "
                "references to this rank's memory mean nothing on another: send values, or a global_ptr)");
  static_assert(std::is_invocable_v<C&, local_t<wire_t<Args>>...>,
                "dsm::rpc: fn cannot be called with the arguments as the target receives them: each value as an rvalue "
                "(take it by value or const&, not by non-const reference), each dist_object as the target's own");
  using R = rpc_result_t<C, wire_t<Args>...>;
  static_assert(rpc_result_type<R>,
                "dsm::rpc: fn's result must be void or serializable and default-constructible (the caller loads it)");
  static_assert(!std::is_reference_v<R>, "dsm::rpc: fn returns a reference; return a value");

  using function = rpc_function<C, wire_t<Args>...>;
  constexpr std::string_view name = type_name<C>();
  runtime_state& r = rt();
  if (rank < 0 || static_cast<std::uint32_t>(rank) >= r.ranks())
    throw error(errc::out_of_range, fmt::format("rpc ({}) to rank {} of a {}-rank job", name, rank, r.ranks()));
  const auto target = static_cast<std::uint32_t>(rank);
  const bool same = r.same_program(target);
  std::vector<std::byte> payload;
  if constexpr (is_function_pointer<C>) {
    const auto address = reinterpret_cast<std::uintptr_t>(static_cast<C>(fn));
    if (address == 0) throw error(errc::invalid_argument, fmt::format("rpc to rank {}: a null {}", rank, name));
    if (!program_image::self().holds_code(address))
      throw error(errc::invalid_argument,
                  fmt::format("rpc to rank {}: the function at {:#x} is not in the program's executable (a shared "
                              "library's?): call it from a lambda",
                              rank, address));
    if (!same)
      throw error(errc::invalid_argument,
                  fmt::format("rpc to rank {}: a function pointer names code of this binary, and rank {} runs another "
                              "({}): pass dsm::fn<&f> or a lambda",
                              rank, rank, to_string(r.isa_of(target))));
    append_values(payload, static_cast<std::uint64_t>(program_image::self().offset_of(address)));
  }
  if (!same && rpc_registry::instance().ambiguous(function::entry->key))
    throw error(errc::invalid_argument,
                fmt::format("rpc to rank {}: {} is spelt alike by several functions of this program, and rank {} runs "
                            "another binary, where only the spelling names it: give it a distinct name (a named "
                            "function object, or dsm::fn<&f>)",
                            rank, name, rank));
  append_values(payload, to_wire(std::forward<Args>(args))...);
  if (payload.size() > max_rpc_bytes)
    throw error(errc::invalid_argument,
                fmt::format("rpc to rank {} ({}): {} bytes of arguments, more than an RPC carries ({}); move bulk data "
                            "with rput/rget",
                            rank, name, payload.size(), max_rpc_bytes));
  const std::uint64_t id = wants_reply ? r.rpc().expect_reply(target) : 0;
  try {
    r.post_rpc(target, id, function::entry->key, function::entry->offset, payload);
  } catch (...) {
    if (id != 0) r.rpc().forget(id);
    throw;
  }
  return id;
}

}  // namespace detail

// fn(args...) on `rank`; the future's value is its result (an error it
// throws, or a failure to deliver, is the future's error). Arguments are
// copied at the call: the caller's may change at once.
template <class F, class... Args>
auto rpc(int rank, F&& fn, Args&&... args) {
  using R = detail::rpc_result_t<std::decay_t<F>, detail::wire_t<Args>...>;
  const detail::rank_entry entry;
  const std::uint64_t id = detail::post_rpc(rank, true, std::forward<F>(fn), std::forward<Args>(args)...);
  detail::runtime_state& r = detail::rt();
  return detail::reply_future<R>(r, id, rank, fmt::format("rpc to rank {} ({})", rank, detail::type_name<std::decay_t<F>>()));
}

// fn(args...) on `rank`, with no reply: the caller learns nothing of it.
// An error fn throws there ends the job (nobody else could hear of it).
template <class F, class... Args>
void rpc_ff(int rank, F&& fn, Args&&... args) {
  const detail::rank_entry entry;
  detail::post_rpc(rank, false, std::forward<F>(fn), std::forward<Args>(args)...);
}

}  // namespace dsm

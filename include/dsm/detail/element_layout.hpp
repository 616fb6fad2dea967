// What a shared element's bytes mean, as a number two ranks can compare: a
// job whose ranks run different ISAs shares a T only if every rank lays it
// out and represents it alike. Size and alignment are not enough: `long
// double` is 16 bytes aligned to 16 on both x86-64 and arm64, but an x87
// 80-bit number on one and IEEE binary128 on the other.
//
// The fingerprint hashes T's size and alignment and then every scalar T is
// made of, with its offset and representation (integer width and
// signedness, floating digits and exponent range). Aggregates are taken
// apart member by member (counted by aggregate initialisation with one
// braced initializer per member, so array members are not elided into
// their elements, then bound by structured bindings), arrays element by
// element. Classes that are not aggregates (private members, std::complex)
// count by size and alignment only; so do aggregates of more than 16
// members, and aggregates with a member whose class has several
// constructors from one argument (it cannot be counted).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

namespace dsm::detail {

namespace layout {

// Converts to whatever a member may be initialised from: counts members,
// never called. Not to classes that are not aggregates, so that a member
// with constructors is not made ambiguous by its copy constructor.
struct any_member {
  template <class U>
    requires(!std::is_class_v<U> || std::is_aggregate_v<U>)
  operator U() const;
};

template <class T, std::size_t... I>
constexpr bool initializable_with(std::index_sequence<I...>) {
  return requires { T{{(void(I), any_member{})}...}; };
}

// Whether T has a member after the first N that {any_member} could not
// initialise (a class with several one-argument constructors, for which the
// conversion is ambiguous): an empty {} still value-initialises it.
template <class T, std::size_t... I>
constexpr bool has_member_after(std::index_sequence<I...>) {
  return requires { T{{(void(I), any_member{})}..., {}}; };
}

inline constexpr std::size_t max_members = 16;

// The number of members of aggregate T; max_members + 1 when there are
// too many to take apart, or when one of them cannot be counted.
template <class T, std::size_t N = 0>
constexpr std::size_t member_count() {
  if constexpr (N > max_members) return N;
  else if constexpr (!initializable_with<T>(std::make_index_sequence<N + 1>{}))
    return has_member_after<T>(std::make_index_sequence<N>{}) ? max_members + 1 : N;
  else return member_count<T, N + 1>();
}

// FNV-1a over 64-bit words.
struct hasher {
  std::uint64_t value = 0xcbf29ce484222325ull;
  void add(std::uint64_t word) {
    for (int i = 0; i < 8; ++i, word >>= 8) {
      value ^= word & 0xff;
      value *= 0x100000001b3ull;
    }
  }
};

template <class M>
inline constexpr bool is_std_array = false;
template <class E, std::size_t N>
inline constexpr bool is_std_array<std::array<E, N>> = true;

enum class kind : std::uint64_t { opaque = 1, boolean, character, signed_integer, unsigned_integer, floating, pointer, array };

template <class M>
void describe(hasher& h, std::uint64_t offset, const M& member);

// Calls f(members...) on the members of aggregate T, by structured binding.
template <std::size_t N, class T, class F>
void with_members(const T& t, F&& f) {
  // clang-format off
  if constexpr (N == 1) { const auto& [a] = t; f(a); }
  else if constexpr (N == 2) { const auto& [a, b] = t; f(a, b); }
  else if constexpr (N == 3) { const auto& [a, b, c] = t; f(a, b, c); }
  else if constexpr (N == 4) { const auto& [a, b, c, d] = t; f(a, b, c, d); }
  else if constexpr (N == 5) { const auto& [a, b, c, d, e] = t; f(a, b, c, d, e); }
  else if constexpr (N == 6) { const auto& [a, b, c, d, e, g] = t; f(a, b, c, d, e, g); }
  else if constexpr (N == 7) { const auto& [a, b, c, d, e, g, i] = t; f(a, b, c, d, e, g, i); }
  else if constexpr (N == 8) { const auto& [a, b, c, d, e, g, i, j] = t; f(a, b, c, d, e, g, i, j); }
  else if constexpr (N == 9) { const auto& [a, b, c, d, e, g, i, j, k] = t; f(a, b, c, d, e, g, i, j, k); }
  else if constexpr (N == 10) { const auto& [a, b, c, d, e, g, i, j, k, l] = t; f(a, b, c, d, e, g, i, j, k, l); }
  else if constexpr (N == 11) { const auto& [a, b, c, d, e, g, i, j, k, l, m] = t; f(a, b, c, d, e, g, i, j, k, l, m); }
  else if constexpr (N == 12) { const auto& [a, b, c, d, e, g, i, j, k, l, m, n] = t; f(a, b, c, d, e, g, i, j, k, l, m, n); }
  else if constexpr (N == 13) { const auto& [a, b, c, d, e, g, i, j, k, l, m, n, o] = t; f(a, b, c, d, e, g, i, j, k, l, m, n, o); }
  else if constexpr (N == 14) { const auto& [a, b, c, d, e, g, i, j, k, l, m, n, o, p] = t; f(a, b, c, d, e, g, i, j, k, l, m, n, o, p); }
  else if constexpr (N == 15) { const auto& [a, b, c, d, e, g, i, j, k, l, m, n, o, p, q] = t; f(a, b, c, d, e, g, i, j, k, l, m, n, o, p, q); }
  else if constexpr (N == 16) { const auto& [a, b, c, d, e, g, i, j, k, l, m, n, o, p, q, r] = t; f(a, b, c, d, e, g, i, j, k, l, m, n, o, p, q, r); }
  // clang-format on
}

template <class M>
void describe(hasher& h, std::uint64_t offset, const M& member) {
  if constexpr (std::is_enum_v<M>) {
    describe(h, offset, std::underlying_type_t<M>{});  // the type only: the value is never read
    return;
  }
  h.add(offset);
  h.add(sizeof(M));
  h.add(alignof(M));
  if constexpr (std::is_same_v<M, bool>) {
    h.add(static_cast<std::uint64_t>(kind::boolean));
  } else if constexpr (std::is_same_v<M, char> || std::is_same_v<M, wchar_t>) {
    // Their signedness differs between the ISAs, their bytes do not.
    h.add(static_cast<std::uint64_t>(kind::character));
  } else if constexpr (std::is_integral_v<M>) {
    h.add(static_cast<std::uint64_t>(std::is_signed_v<M> ? kind::signed_integer : kind::unsigned_integer));
  } else if constexpr (std::is_floating_point_v<M>) {
    h.add(static_cast<std::uint64_t>(kind::floating));
    h.add(static_cast<std::uint64_t>(std::numeric_limits<M>::digits));
    h.add(static_cast<std::uint64_t>(std::numeric_limits<M>::max_exponent));
  } else if constexpr (std::is_pointer_v<M> || std::is_member_pointer_v<M>) {
    h.add(static_cast<std::uint64_t>(kind::pointer));
  } else if constexpr (std::is_array_v<M>) {
    h.add(static_cast<std::uint64_t>(kind::array));
    h.add(std::extent_v<M>);
    if constexpr (std::extent_v<M> > 0) describe(h, offset, member[0]);  // the elements repeat its layout
  } else if constexpr (is_std_array<M>) {  // an aggregate, but structured bindings see its elements
    h.add(static_cast<std::uint64_t>(kind::array));
    h.add(std::tuple_size_v<M>);
    if constexpr (std::tuple_size_v<M> > 0) describe(h, offset, member[0]);
  } else if constexpr (std::is_aggregate_v<M> && member_count<M>() <= max_members) {
    constexpr std::size_t n = member_count<M>();
    h.add(n);
    const auto* base = reinterpret_cast<const unsigned char*>(&member);
    with_members<n>(member, [&](const auto&... members) {
      (describe(h, offset + static_cast<std::uint64_t>(reinterpret_cast<const unsigned char*>(&members) - base), members),
       ...);
    });
  } else {
    h.add(static_cast<std::uint64_t>(kind::opaque));
  }
}

}  // namespace layout

// T's layout as exchanged between ranks (fixed-width fields).
struct element_layout {
  std::uint64_t fingerprint;
  std::uint32_t size;
  std::uint32_t alignment;
};
static_assert(sizeof(element_layout) == 16 && std::is_trivially_copyable_v<element_layout>);

template <class T>
element_layout element_layout_of() {
  static_assert(std::is_trivially_copyable_v<T>, "an element's layout is defined for trivially copyable types");
  // A T's members are only looked at, never read: an object in storage
  // whose constructor never ran serves (T need not be default-constructible).
  union holder {
    unsigned char none;
    T value;
    holder() : none() {}
  } h;
  layout::hasher hash;
  layout::describe(hash, 0, h.value);
  return {hash.value, static_cast<std::uint32_t>(sizeof(T)), static_cast<std::uint32_t>(alignof(T))};
}

}  // namespace dsm::detail

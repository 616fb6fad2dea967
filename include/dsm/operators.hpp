// The combining operators of dsm::allreduce and dsm::reduction<Op>: a
// binary function object with an identity, the value that leaves any
// other unchanged when combined with it (a reduction array starts each
// contribution from it). A user's operator has the same shape:
//
//   struct bit_or {
//     template <class T> T operator()(const T& a, const T& b) const { return a | b; }
//     template <class T> static constexpr T identity() { return T{}; }
//   };
#pragma once

#include <algorithm>
#include <concepts>
#include <limits>
#include <type_traits>

namespace dsm {

struct sum {
  template <class T>
  T operator()(const T& a, const T& b) const { return a + b; }
  // -0.0, not +0.0: x + -0.0 is x for every x, -0.0 included.
  template <class T>
  static constexpr T identity() {
    if constexpr (std::is_floating_point_v<T>) return -T(0);
    else return T{};
  }
};
struct min {
  template <class T>
  T operator()(const T& a, const T& b) const { return std::min(a, b); }
  template <class T>
  static constexpr T identity() {
    if constexpr (std::numeric_limits<T>::has_infinity) return std::numeric_limits<T>::infinity();
    else return std::numeric_limits<T>::max();
  }
};
struct max {
  template <class T>
  T operator()(const T& a, const T& b) const { return std::max(a, b); }
  template <class T>
  static constexpr T identity() {
    if constexpr (std::numeric_limits<T>::has_infinity) return -std::numeric_limits<T>::infinity();
    else return std::numeric_limits<T>::lowest();
  }
};

// What dsm::reduction<Op> needs of Op for elements of T.
template <class Op, class T>
concept reduction_operator = std::default_initializable<Op> && requires(const Op op, const T a, const T b) {
  { op(a, b) } -> std::convertible_to<T>;
  { Op::template identity<T>() } -> std::convertible_to<T>;
};

}  // namespace dsm

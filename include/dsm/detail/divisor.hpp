// Division by a divisor fixed at run time, as a multiply and a shift: the
// element-to-owner arithmetic of cyclic and block-cyclic layouts divides
// every index, and a 64-bit DIV costs ten times a multiply.
//
// For n < 2^63 and d >= 1, with l = ceil(log2 d) and m = ceil(2^(63+l) / d):
// 2^(63+l) <= m*d < 2^(63+l) + 2^l, so floor(n*m / 2^(63+l)) = floor(n/d)
// (Granlund and Montgomery, "Division by invariant integers using
// multiplication", theorem 4.2, with N = 63); m < 2^64 because d > 2^(l-1).
// Taken as the high word of 2n * m (2n < 2^64) shifted by l, the same for
// every d >= 1 (d = 1: l = 0, m = 2^63): an add, a multiply and a shift.
#pragma once

#include <bit>
#include <cstdint>

namespace dsm::detail {

__extension__ typedef unsigned __int128 uint128;  // GCC's and Clang's; __extension__ keeps -Wpedantic quiet

class divisor {
 public:
  // Dividends must stay below this.
  static constexpr std::uint64_t dividend_limit = std::uint64_t{1} << 63;

  constexpr explicit divisor(std::uint64_t d = 1) noexcept : d_(d == 0 ? 1 : d) {
    const unsigned l = static_cast<unsigned>(std::bit_width(d_ - 1));
    if (l == 64) return;  // d > 2^63 > n: the quotient is 0 (magic 0), and a shift by 64 is undefined
    shift_ = l;
    magic_ = static_cast<std::uint64_t>(((static_cast<uint128>(1) << (63 + l)) + d_ - 1) / d_);
  }

  constexpr std::uint64_t value() const noexcept { return d_; }
  // A multiply's high word and a shift; no branch, no double-word shift.
  constexpr std::uint64_t quotient(std::uint64_t n) const noexcept {
    return static_cast<std::uint64_t>((static_cast<uint128>(n + n) * magic_) >> 64) >> shift_;
  }
  constexpr std::uint64_t remainder(std::uint64_t n) const noexcept { return n - quotient(n) * d_; }

 private:
  std::uint64_t d_;
  std::uint64_t magic_ = 0;
  unsigned shift_ = 0;
};

}  // namespace dsm::detail

// dsm::global_ptr<T>: the address of a T anywhere in the job.
//
// Exactly 16 bytes, two 64-bit words, identical on every ISA (it crosses the
// wire as is):
//
//   high word   bits 63..32  unit        home rank of the memory (32 bits)
//               bits 31..16  segment     segment id on that rank (16 bits)
//               bits 15..0   flags:
//                    15..12    reserved, zero
//                    11..8     policy id   coherence policy of the object
//                    7..0      generation  of the segment when the pointer
//                                          was made; a freed segment bumps
//                                          its generation, so an old pointer
//                                          is detected as stale
//   low word    bits 63..0   byte offset inside the segment
//
// Generation 0 is never issued to a live segment, so the all-zero value is
// the null pointer and no live object can compare equal to it.
#pragma once

#include <dsm/config.hpp>
#include <dsm/detail/calling_rank.hpp>
#include <dsm/detail/local_segments.hpp>
#include <dsm/detail/type_name.hpp>
#include <dsm/error.hpp>

#include <fmt/format.h>

#include <compare>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>

namespace dsm {

// What may live behind a global_ptr: bytes that can be moved by memcpy
// between ranks (and ISAs) without running any code.
template <class T>
concept global_element = std::is_object_v<T> && std::is_trivially_copyable_v<std::remove_cv_t<T>>;

namespace detail {

struct global_address_layout {
  static constexpr unsigned unit_shift = 32;
  static constexpr unsigned segment_shift = 16;
  static constexpr unsigned policy_shift = 8;
  static constexpr unsigned generation_shift = 0;
  static constexpr std::uint64_t unit_mask = 0xffff'ffffu;
  static constexpr std::uint64_t segment_mask = 0xffffu;
  static constexpr std::uint64_t flags_mask = 0xffffu;
  static constexpr std::uint64_t policy_mask = 0xfu;
  static constexpr std::uint64_t generation_mask = 0xffu;
  static constexpr std::uint64_t reserved_flag_bits = 0xf000u;
};

// The parts of an address, for the runtime that mints pointers.
struct global_address {
  std::uint32_t unit = 0;
  std::uint16_t segment = 0;
  std::uint8_t generation = 0;
  std::uint8_t policy_id = 0;
  std::uint64_t byte_offset = 0;
};

}  // namespace detail

template <class T>
class global_ptr;

namespace detail {
template <class T>
constexpr global_ptr<T> make_global_ptr(const global_address& a) noexcept;
template <class To, class From>
constexpr global_ptr<To> rebind(global_ptr<From> p, std::uint64_t byte_offset) noexcept;
}  // namespace detail

template <class T>
class global_ptr {
  static_assert(std::is_object_v<T>, "dsm::global_ptr<T>: T must be an object type");
  static_assert(std::is_trivially_copyable_v<std::remove_cv_t<T>>,
                "dsm::global_ptr<T>: T must be trivially copyable: its bytes are copied between "
                "ranks with no constructor, destructor or assignment run");
  using layout = detail::global_address_layout;

 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using difference_type = std::ptrdiff_t;

  constexpr global_ptr() noexcept = default;
  constexpr global_ptr(std::nullptr_t) noexcept {}

  // global_ptr<T> -> global_ptr<const T> (and other qualification additions).
  template <class U>
    requires(!std::same_as<U, T> && std::is_convertible_v<U*, T*> &&
             std::same_as<std::remove_cv_t<U>, std::remove_cv_t<T>>)
  constexpr global_ptr(global_ptr<U> other) noexcept
      : high_(other.high_word()), byte_offset_(other.byte_offset()) {}

  constexpr std::uint32_t home_rank() const noexcept {
    return static_cast<std::uint32_t>((high_ >> layout::unit_shift) & layout::unit_mask);
  }
  constexpr std::uint16_t segment() const noexcept {
    return static_cast<std::uint16_t>((high_ >> layout::segment_shift) & layout::segment_mask);
  }
  constexpr std::uint16_t flags() const noexcept {
    return static_cast<std::uint16_t>(high_ & layout::flags_mask);
  }
  constexpr std::uint8_t generation() const noexcept {
    return static_cast<std::uint8_t>((high_ >> layout::generation_shift) & layout::generation_mask);
  }
  constexpr std::uint8_t policy_id() const noexcept {
    return static_cast<std::uint8_t>((high_ >> layout::policy_shift) & layout::policy_mask);
  }
  constexpr std::uint64_t byte_offset() const noexcept { return byte_offset_; }
  constexpr std::uint64_t high_word() const noexcept { return high_; }

  constexpr bool is_null() const noexcept { return high_ == 0 && byte_offset_ == 0; }

  // Homed on the calling rank: local() gives a plain pointer to it.
  bool is_local() const noexcept {
    return !is_null() && static_cast<int>(home_rank()) == detail::calling_rank();
  }

  // The local address of a pointer homed on this rank. A pointer homed
  // elsewhere, into a freed segment, or beyond one past its segment's end is
  // an error.
  T* local() const {
    if (is_null()) return nullptr;
    if (!is_local())
      throw error(errc::invalid_argument,
                  fmt::format("local() of {} homed on rank {}", describe(), home_rank()));
    const detail::local_segment_view* s = detail::local_segments().find(segment());
    if (s == nullptr || s->generation != generation())
      throw error(errc::stale_pointer, fmt::format("local() of {}: the segment was freed", describe()));
    if (byte_offset_ > s->bytes)  // one past the end is a valid pointer, as in C++
      throw error(errc::out_of_range, fmt::format("local() of {}: past the end of its {}-byte segment",
                                                  describe(), s->bytes));
    return reinterpret_cast<T*>(s->base + byte_offset_);
  }

  // "gptr<double>{unit 3, seg 2, gen 1, +0x40}", for messages.
  std::string describe() const;
  constexpr explicit operator bool() const noexcept { return !is_null(); }

  constexpr global_ptr& operator+=(difference_type n) {
    byte_offset_ = moved_offset(n, "+");
    return *this;
  }
  constexpr global_ptr& operator-=(difference_type n) {
    if (n == std::numeric_limits<difference_type>::min())
      throw error(errc::out_of_range, "global_ptr: offset overflow");
    return *this += -n;
  }
  constexpr global_ptr& operator++() { return *this += 1; }
  constexpr global_ptr& operator--() { return *this -= 1; }
  constexpr global_ptr operator++(int) {
    global_ptr old = *this;
    *this += 1;
    return old;
  }
  constexpr global_ptr operator--(int) {
    global_ptr old = *this;
    *this -= 1;
    return old;
  }
  friend constexpr global_ptr operator+(global_ptr p, difference_type n) { return p += n; }
  friend constexpr global_ptr operator+(difference_type n, global_ptr p) { return p += n; }
  friend constexpr global_ptr operator-(global_ptr p, difference_type n) { return p -= n; }

  // Distance in elements; both pointers must address the same segment (and
  // generation of it).
  friend constexpr difference_type operator-(global_ptr a, global_ptr b) {
#if DSM_CHECKS
    if (a.high_ != b.high_)
      throw error(errc::mixed_objects,
                  fmt::format("global_ptr difference between unit {} seg {} gen {} and unit {} seg {} gen {}",
                              a.home_rank(), a.segment(), unsigned{a.generation()}, b.home_rank(),
                              b.segment(), unsigned{b.generation()}));
#endif
    const auto bytes = static_cast<difference_type>(a.byte_offset_ - b.byte_offset_);
#if DSM_CHECKS
    if (bytes % static_cast<difference_type>(sizeof(T)) != 0)
      throw error(errc::invalid_argument,
                  fmt::format("global_ptr difference of {} bytes is not a whole number of {}-byte "
                              "elements",
                              bytes, sizeof(T)));
#endif
    return bytes / static_cast<difference_type>(sizeof(T));
  }

  // A total order (unit, segment, flags, offset), so pointers can key maps.
  friend constexpr bool operator==(const global_ptr&, const global_ptr&) = default;
  friend constexpr std::strong_ordering operator<=>(const global_ptr& a, const global_ptr& b) noexcept {
    if (auto c = a.high_ <=> b.high_; c != 0) return c;
    return a.byte_offset_ <=> b.byte_offset_;
  }

 private:
  template <class U>
  friend constexpr global_ptr<U> detail::make_global_ptr(const detail::global_address& a) noexcept;
  template <class To, class From>
  friend constexpr global_ptr<To> detail::rebind(global_ptr<From> p, std::uint64_t byte_offset) noexcept;

  constexpr std::uint64_t moved_offset(difference_type n, const char* op) const {
#if DSM_CHECKS
    if (is_null() && n != 0)
      throw error(errc::invalid_argument, fmt::format("global_ptr: arithmetic ({}) on a null pointer", op));
    constexpr auto max_elements = static_cast<difference_type>(std::numeric_limits<difference_type>::max() /
                                                               static_cast<difference_type>(sizeof(T)));
    if (n > max_elements || n < -max_elements ||
        (n < 0 && static_cast<std::uint64_t>(-n) * sizeof(T) > byte_offset_) ||
        (n > 0 && static_cast<std::uint64_t>(n) * sizeof(T) >
                      std::numeric_limits<std::uint64_t>::max() - byte_offset_))
      throw error(errc::out_of_range,
                  fmt::format("global_ptr: {} {} elements from unit {} seg {} +{:#x} leaves the segment's "
                              "address range",
                              op, n, home_rank(), segment(), byte_offset_));
#else
    (void)op;
#endif
    return byte_offset_ + static_cast<std::uint64_t>(n) * sizeof(T);
  }

  std::uint64_t high_ = 0;
  std::uint64_t byte_offset_ = 0;
};

namespace detail {

template <class T>
constexpr global_ptr<T> make_global_ptr(const global_address& a) noexcept {
  using layout = global_address_layout;
  global_ptr<T> p;
  p.high_ = (std::uint64_t{a.unit} << layout::unit_shift) |
            (std::uint64_t{a.segment} << layout::segment_shift) |
            ((std::uint64_t{a.policy_id} & layout::policy_mask) << layout::policy_shift) |
            (std::uint64_t{a.generation} << layout::generation_shift);
  p.byte_offset_ = a.byte_offset;
  return p;
}

template <class To, class From>
constexpr global_ptr<To> rebind(global_ptr<From> p, std::uint64_t byte_offset) noexcept {
  global_ptr<To> q;
  q.high_ = p.high_;
  q.byte_offset_ = byte_offset;
  return q;
}

template <class T>
constexpr global_address address_of(global_ptr<T> p) noexcept {
  return {p.home_rank(), p.segment(), p.generation(), p.policy_id(), p.byte_offset()};
}

// How far static_cast<To*> moves a From* (non-zero only for a base that is
// not the first in a multiple-inheritance list). No object is created or
// read: only the address arithmetic of a suitably aligned buffer.
template <class To, class From>
std::ptrdiff_t static_cast_adjustment() noexcept {
  if constexpr (std::is_same_v<std::remove_cv_t<To>, std::remove_cv_t<From>>) {
    return 0;
  } else {
    alignas(From) static unsigned char probe[sizeof(From)];
    auto* from = reinterpret_cast<From*>(probe);
    auto* to = static_cast<To*>(from);
    return reinterpret_cast<const unsigned char*>(to) - reinterpret_cast<const unsigned char*>(from);
  }
}

}  // namespace detail

static_assert(sizeof(global_ptr<double>) == 16, "global_ptr must be exactly 16 bytes");
static_assert(std::is_trivially_copyable_v<global_ptr<double>>);
static_assert(std::is_standard_layout_v<global_ptr<double>>);

template <class To, class From>
  requires requires(From* f) { static_cast<To*>(f); }
global_ptr<To> static_pointer_cast(global_ptr<From> p) noexcept {
  if (p.is_null()) return {};
  return detail::rebind<To>(p, p.byte_offset() + detail::static_cast_adjustment<To, From>());
}

template <class To, class From>
constexpr global_ptr<To> reinterpret_pointer_cast(global_ptr<From> p) noexcept {
  return detail::rebind<To>(p, p.byte_offset());
}

template <class To, class From>
  requires std::same_as<std::remove_cv_t<To>, std::remove_cv_t<From>>
constexpr global_ptr<To> const_pointer_cast(global_ptr<From> p) noexcept {
  return detail::rebind<To>(p, p.byte_offset());
}

}  // namespace dsm

template <class T>
struct std::hash<dsm::global_ptr<T>> {
  std::size_t operator()(const dsm::global_ptr<T>& p) const noexcept {
    // Both words matter; mix the high word before combining (boost-style).
    std::size_t h = std::hash<std::uint64_t>{}(p.high_word());
    return h ^ (std::hash<std::uint64_t>{}(p.byte_offset()) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
  }
};

// gptr<double>{unit 3, seg 2, gen 1, +0x40}; the policy id is shown when set.
template <class T>
struct fmt::formatter<dsm::global_ptr<T>> {
  constexpr auto parse(format_parse_context& ctx) -> decltype(ctx.begin()) {
    auto it = ctx.begin();
    if (it != ctx.end() && *it != '}') throw format_error("dsm::global_ptr takes no format spec");
    return it;
  }
  template <class FormatContext>
  auto format(const dsm::global_ptr<T>& p, FormatContext& ctx) const -> decltype(ctx.out()) {
    if (p.is_null()) return fmt::format_to(ctx.out(), "gptr<{}>{{null}}", dsm::detail::type_name<T>());
    auto out = fmt::format_to(ctx.out(), "gptr<{}>{{unit {}, seg {}, gen {}", dsm::detail::type_name<T>(),
                              p.home_rank(), p.segment(), unsigned{p.generation()});
    if (p.policy_id() != 0) out = fmt::format_to(out, ", policy {}", unsigned{p.policy_id()});
    return fmt::format_to(out, ", +{:#x}}}", p.byte_offset());
  }
};

template <class T>
std::string dsm::global_ptr<T>::describe() const {
  return fmt::format("{}", *this);
}

// The layout fingerprint a job that mixes ISAs compares per shared type.
#include <dsm/detail/element_layout.hpp>

#include <doctest/doctest.h>

#include <array>
#include <complex>
#include <cstdint>

namespace {

using dsm::detail::element_layout_of;

struct pair_i32 {
  std::int32_t a, b;
};
struct pair_i32_renamed {
  std::int32_t first, second;
};
struct pair_u32_i32 {
  std::uint32_t a;
  std::int32_t b;
};
struct with_double {
  double d;
  std::int64_t i;
};
struct with_long_double {
  double d;
  long double x;
};
struct with_bytes_in_place_of_long_double {
  double d;
  alignas(16) unsigned char x[16];
};
struct with_array_member {
  double values[3];
  std::int32_t count;
};
struct with_array_member_float {
  float values[3];
  std::int32_t count;
};
struct nested {
  pair_i32 p;
  std::array<double, 2> q;
  with_array_member w;
};
struct nested_other_inner {
  pair_u32_i32 p;
  std::array<double, 2> q;
  with_array_member w;
};
struct with_complex {  // a member that is not an aggregate counts by size
  std::complex<double> z;
  std::int32_t tag;
};
enum class colour : std::uint8_t { red, green };
struct with_enum {
  colour c;
  std::uint8_t pad;
};
struct with_bytes {
  std::uint8_t c;
  std::uint8_t pad;
};
class not_aggregate {
 public:
  explicit not_aggregate(int v) : v_(v) {}

 private:
  int v_;
};

struct two_ways {  // trivially copyable, but {x} is ambiguous for it
  two_ways() = default;
  explicit(false) two_ways(int i) : v(i) {}
  explicit(false) two_ways(double d) : v(static_cast<int>(d)) {}
  int v;
};
struct with_two_ways {
  std::int32_t a;
  two_ways b;
  std::int32_t c;
};

bool same(const dsm::detail::element_layout& a, const dsm::detail::element_layout& b) {
  return a.fingerprint == b.fingerprint && a.size == b.size && a.alignment == b.alignment;
}

}  // namespace

TEST_CASE("element layout: member names do not matter, types and places do") {
  CHECK(same(element_layout_of<pair_i32>(), element_layout_of<pair_i32_renamed>()));
  CHECK_FALSE(same(element_layout_of<pair_i32>(), element_layout_of<pair_u32_i32>()));
  CHECK_FALSE(same(element_layout_of<pair_i32>(), element_layout_of<std::int64_t>()));
  CHECK(same(element_layout_of<double>(), element_layout_of<double>()));
  CHECK_FALSE(same(element_layout_of<double>(), element_layout_of<std::int64_t>()));
}

TEST_CASE("element layout: a long double member is its representation, not just 16 bytes") {
  const auto ld = element_layout_of<with_long_double>(), bytes = element_layout_of<with_bytes_in_place_of_long_double>();
  CHECK(ld.size == bytes.size);
  CHECK(ld.alignment == bytes.alignment);
  CHECK(ld.fingerprint != bytes.fingerprint);
  CHECK_FALSE(same(element_layout_of<long double>(), element_layout_of<with_bytes_in_place_of_long_double>()));
}

TEST_CASE("element layout: array members and nested aggregates are taken apart") {
  CHECK_FALSE(same(element_layout_of<with_array_member>(), element_layout_of<with_array_member_float>()));
  CHECK_FALSE(same(element_layout_of<nested>(), element_layout_of<nested_other_inner>()));
  CHECK(dsm::detail::layout::member_count<with_array_member>() == 2);
  CHECK(dsm::detail::layout::member_count<nested>() == 3);
  CHECK(dsm::detail::layout::member_count<with_double>() == 2);
}

TEST_CASE("element layout: enums by their underlying type, classes by size") {
  CHECK(same(element_layout_of<with_enum>(), element_layout_of<with_bytes>()));
  CHECK(element_layout_of<with_complex>().size == sizeof(with_complex));
  CHECK(element_layout_of<not_aggregate>().size == sizeof(int));
}

TEST_CASE("element layout: a member that cannot be counted leaves its aggregate to size and alignment") {
  CHECK(dsm::detail::layout::member_count<with_two_ways>() > dsm::detail::layout::max_members);
  CHECK(element_layout_of<with_two_ways>().size == sizeof(with_two_ways));
}

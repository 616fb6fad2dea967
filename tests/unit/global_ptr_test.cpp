#include <dsm/global_ptr.hpp>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <type_traits>
#include <unordered_set>

namespace {

using dsm::global_ptr;
using dsm::detail::global_address;
using dsm::detail::make_global_ptr;

template <class T = double>
global_ptr<T> ptr(std::uint32_t unit, std::uint16_t seg, std::uint8_t gen, std::uint64_t offset,
                  std::uint8_t policy = 0) {
  return make_global_ptr<T>(global_address{unit, seg, gen, policy, offset});
}

std::array<std::uint64_t, 2> words_of(const auto& p) {
  std::array<std::uint64_t, 2> w{};
  static_assert(sizeof(p) == sizeof(w));
  std::memcpy(w.data(), &p, sizeof(w));
  return w;
}

template <class E>
void check_throws_category(E&& expr, dsm::errc expected) {
  try {
    expr();
    FAIL("no dsm::error thrown");
  } catch (const dsm::error& e) {
    CHECK(e.category() == expected);
  }
}

struct left_base {
  int l;
};
struct right_base {
  double r;
};
struct both : left_base, right_base {
  char c;
};

}  // namespace

static_assert(sizeof(global_ptr<char>) == 16 && sizeof(global_ptr<both>) == 16);
static_assert(std::is_trivially_copyable_v<global_ptr<int>>);
static_assert(std::is_standard_layout_v<global_ptr<int>>);
static_assert(std::is_convertible_v<global_ptr<int>, global_ptr<const int>>);
static_assert(!std::is_convertible_v<global_ptr<const int>, global_ptr<int>>);
static_assert(!std::is_convertible_v<global_ptr<int>, global_ptr<long>>);
static_assert(dsm::global_element<both> && !dsm::global_element<std::map<int, int>>);

TEST_CASE("bit layout: unit, segment, flags in the high word, offset in the low word") {
  const auto p = ptr(0xA1B2C3D4u, 0xBEEF, 0x5A, 0x0123456789ABCDEFull, 0x9);
  CHECK(p.home_rank() == 0xA1B2C3D4u);
  CHECK(p.segment() == 0xBEEF);
  CHECK(p.generation() == 0x5A);
  CHECK(p.policy_id() == 0x9);
  CHECK(p.flags() == 0x095A);
  CHECK(p.byte_offset() == 0x0123456789ABCDEFull);
  CHECK(p.high_word() == 0xA1B2C3D4'BEEF'095Aull);
  // In memory: the high word first, then the offset.
  const auto w = words_of(p);
  CHECK(w[0] == 0xA1B2C3D4'BEEF'095Aull);
  CHECK(w[1] == 0x0123456789ABCDEFull);
  // The policy id is 4 bits; reserved flag bits stay zero.
  CHECK(ptr(1, 1, 1, 0, 0xff).policy_id() == 0xf);
  CHECK((ptr(1, 1, 1, 0, 0xff).flags() & dsm::detail::global_address_layout::reserved_flag_bits) == 0);
  const auto a = dsm::detail::address_of(p);
  CHECK(a.unit == 0xA1B2C3D4u);
  CHECK(a.segment == 0xBEEF);
  CHECK(a.byte_offset == 0x0123456789ABCDEFull);
}

TEST_CASE("null pointer is all zero bits and distinct from every live pointer") {
  global_ptr<int> d;
  global_ptr<int> n = nullptr;
  CHECK(d == n);
  CHECK(d == nullptr);
  CHECK(!d);
  CHECK(d.is_null());
  CHECK(words_of(d) == std::array<std::uint64_t, 2>{0, 0});
  // unit 0, segment 0, offset 0 is still not null: live pointers carry a generation >= 1.
  CHECK(ptr<int>(0, 0, 1, 0) != nullptr);
  CHECK(static_cast<bool>(ptr<int>(0, 0, 1, 0)));
  CHECK(d + 0 == d);
}

TEST_CASE("arithmetic moves by whole elements inside one segment") {
  auto p = ptr<double>(3, 2, 1, 0x40);
  CHECK((p + 3).byte_offset() == 0x40 + 24);
  CHECK((3 + p).byte_offset() == 0x40 + 24);
  CHECK((p - 8).byte_offset() == 0);
  CHECK((p + 5) - p == 5);
  CHECK(p - (p + 5) == -5);
  auto q = p;
  CHECK((q++).byte_offset() == 0x40);
  CHECK(q.byte_offset() == 0x48);
  CHECK((++q).byte_offset() == 0x50);
  CHECK((q--).byte_offset() == 0x50);
  CHECK((--q).byte_offset() == 0x40);
  q += 10;
  q -= 4;
  CHECK(q - p == 6);
  CHECK(q.home_rank() == 3);
  CHECK(q.segment() == 2);
  CHECK(q.generation() == 1);
}

#if DSM_CHECKS
TEST_CASE("mixing units, segments or generations is an error") {
  const auto a = ptr<int>(1, 2, 1, 0);
  check_throws_category([&] { (void)(a - ptr<int>(2, 2, 1, 0)); }, dsm::errc::mixed_objects);
  check_throws_category([&] { (void)(a - ptr<int>(1, 3, 1, 0)); }, dsm::errc::mixed_objects);
  check_throws_category([&] { (void)(a - ptr<int>(1, 2, 2, 0)); }, dsm::errc::mixed_objects);
  try {
    (void)(a - ptr<int>(2, 7, 1, 0));
  } catch (const dsm::error& e) {
    CHECK(std::string(e.what()).find("unit 1 seg 2 gen 1 and unit 2 seg 7 gen 1") != std::string::npos);
  }
}

TEST_CASE("arithmetic on null or out of the 64-bit offset range is an error") {
  global_ptr<int> n;
  check_throws_category([&] { (void)(n + 1); }, dsm::errc::invalid_argument);
  check_throws_category([&] { ++n; }, dsm::errc::invalid_argument);
  const auto p = ptr<int>(1, 1, 1, 8);
  CHECK((p - 2).byte_offset() == 0);
  check_throws_category([&] { (void)(p - 3); }, dsm::errc::out_of_range);
  const auto top = ptr<int>(1, 1, 1, ~std::uint64_t{0} - 7);
  check_throws_category([&] { (void)(top + 2); }, dsm::errc::out_of_range);
  check_throws_category([&] { (void)(p + PTRDIFF_MAX); }, dsm::errc::out_of_range);
  check_throws_category([&] { (void)(p - PTRDIFF_MIN); }, dsm::errc::out_of_range);
}

TEST_CASE("difference that is not a whole number of elements is an error") {
  const auto p = ptr<std::uint32_t>(1, 1, 1, 0);
  const auto odd = dsm::reinterpret_pointer_cast<std::uint32_t>(dsm::reinterpret_pointer_cast<char>(p) + 2);
  check_throws_category([&] { (void)(odd - p); }, dsm::errc::invalid_argument);
}
#endif

TEST_CASE("ordering is total and strong: unit, then segment, then flags, then offset") {
  const auto a = ptr<int>(1, 1, 1, 100);
  CHECK(a < a + 1);
  CHECK(a + 1 > a);
  CHECK((a <=> a) == std::strong_ordering::equal);
  CHECK(ptr<int>(1, 9, 1, 0) < ptr<int>(2, 0, 1, 0));
  CHECK(ptr<int>(1, 1, 1, 999) < ptr<int>(1, 2, 1, 0));
  std::map<global_ptr<int>, int> m{{ptr<int>(2, 0, 1, 0), 2}, {ptr<int>(1, 5, 1, 4), 1}, {nullptr, 0}};
  int expect = 0;
  for (const auto& [k, v] : m) CHECK(v == expect++);
}

TEST_CASE("pointer casts keep the address parts") {
  const auto p = ptr<int>(4, 5, 6, 0x100, 3);
  global_ptr<const int> c = p;
  CHECK(c.high_word() == p.high_word());
  CHECK(c.byte_offset() == 0x100);
  CHECK(dsm::const_pointer_cast<int>(c) == p);
  const auto bytes = dsm::reinterpret_pointer_cast<unsigned char>(p);
  CHECK(bytes.byte_offset() == 0x100);
  CHECK((bytes + 1).byte_offset() == 0x101);
  CHECK(bytes.policy_id() == 3);

  // static_pointer_cast applies the base-class adjustment static_cast would.
  const auto whole = ptr<both>(1, 1, 1, 0x200);
  both probe{};
  const auto right_delta = reinterpret_cast<unsigned char*>(static_cast<right_base*>(&probe)) -
                           reinterpret_cast<unsigned char*>(&probe);
  REQUIRE(right_delta > 0);
  CHECK(dsm::static_pointer_cast<left_base>(whole).byte_offset() == 0x200);
  CHECK(dsm::static_pointer_cast<right_base>(whole).byte_offset() == 0x200 + right_delta);
  CHECK(dsm::static_pointer_cast<right_base>(global_ptr<both>{}) == nullptr);
}

TEST_CASE("std::hash distinguishes every field") {
  std::unordered_set<global_ptr<int>> seen;
  for (std::uint32_t unit : {0u, 1u, 70000u})
    for (std::uint16_t seg : {0, 1, 512})
      for (std::uint8_t gen : {1, 2, 255})
        for (std::uint64_t off : {0ull, 4ull, 1ull << 40}) seen.insert(ptr<int>(unit, seg, gen, off));
  CHECK(seen.size() == 3 * 3 * 3 * 3);
  CHECK(std::hash<global_ptr<int>>{}(ptr<int>(1, 1, 1, 4)) == std::hash<global_ptr<int>>{}(ptr<int>(1, 1, 1, 4)));
}

TEST_CASE("fmt prints unit, segment, generation and offset") {
  CHECK(fmt::format("{}", ptr<double>(3, 2, 1, 0x40)) == "gptr<double>{unit 3, seg 2, gen 1, +0x40}");
  CHECK(fmt::format("{}", global_ptr<long>{}) == "gptr<long int>{null}");
  CHECK(fmt::format("{}", ptr<std::uint8_t>(0, 7, 9, 0, 2)) ==
        "gptr<unsigned char>{unit 0, seg 7, gen 9, policy 2, +0x0}");
}

TEST_CASE("constexpr use") {
  constexpr auto p = make_global_ptr<int>(global_address{1, 2, 3, 0, 8});
  static_assert((p + 2).byte_offset() == 16);
  static_assert((p + 2) - p == 2);
  static_assert(p.home_rank() == 1 && p.segment() == 2 && p.generation() == 3);
  CHECK(p.byte_offset() == 8);
}

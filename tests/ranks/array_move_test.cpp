// shared_array moved and swapped (issue 19.7): under every policy that is
// written, writes made before a move and released after it all arrive (the
// lost-write litmus of a move), a swap double-buffers a Jacobi sweep to the
// sequential result exactly, arrays live in a std::vector through its
// reallocations and erasures, and a moved-from array is refused clearly.
#include "check.hpp"

#include <cstddef>
#include <utility>
#include <vector>

namespace {

constexpr std::size_t elements = 96;  // several units a rank at 4 ranks

// Writes every rank's share: element i by rank i % n, so most writes go to
// another rank's elements and wait in a caching policy until a release.
template <class Array>
void write_spread(Array& a, long round) {
  const auto me = static_cast<std::size_t>(dsm::rank()), n = static_cast<std::size_t>(dsm::ranks());
  for (std::size_t i = me; i < a.size(); i += n) a[i] = round * 1000 + static_cast<long>(i);
}

template <class Array>
void check_spread(Array& a, long round, const char* where) {
  int wrong = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (long(a[i]) != round * 1000 + static_cast<long>(i)) {
      if (wrong++ < 3)
        dsm_test::report(false, where, __FILE__, __LINE__,
                         fmt::format("{}[{}] is {}, expected {}", a.describe(), i, long(a[i]), round * 1000 + long(i)));
    }
  CHECK_EQ(wrong, 0);
}

template <class Policy>
void moves_lose_no_write() {
  using array = dsm::shared_array<long, Policy>;
  // Move construction with writes pending: the barrier after it releases them.
  array a(elements, "a");
  write_spread(a, 1);
  array b(std::move(a));
  CHECK(!a.valid());
  CHECK(b.valid());
  dsm::barrier();
  check_spread(b, 1, "move construction");
  dsm::barrier();

  // Move assignment over a live array: its old array is destroyed
  // collectively (every rank assigns here) and the pending writes of the
  // one moved in arrive.
  array c(elements, "c");
  write_spread(c, 7);
  write_spread(b, 2);
  c = std::move(b);
  CHECK_EQ(c.name(), std::string("a"));
  dsm::barrier();
  check_spread(c, 2, "move assignment");
  dsm::barrier();

  // Assigning an array to itself keeps it.
  array& same = c;
  c = std::move(same);
  CHECK(c.valid());
  check_spread(c, 2, "self move assignment");
  dsm::barrier();

  // A moved-from array is given a new one and works as any other.
  a = std::move(c);
  write_spread(a, 3);
  dsm::barrier();
  check_spread(a, 3, "an array moved back into a moved-from one");
  dsm::barrier();
}

// Jacobi on a line with fixed ends, double-buffered by swapping the
// arrays: every rank's result equals the sequential sweep bit for bit
// (each point is the same two additions and one product).
template <class Policy>
void swap_double_buffers() {
  using array = dsm::shared_array<double, Policy>;
  constexpr int sweeps = 12;
  const auto initial = [](std::size_t i) { return i == 0 ? 1.0 : i == elements - 1 ? -2.0 : 0.25 * double(i % 7); };
  std::vector<double> expected(elements), next(elements);
  for (std::size_t i = 0; i < elements; ++i) expected[i] = initial(i);
  for (int s = 0; s < sweeps; ++s) {
    next = expected;
    for (std::size_t i = 1; i + 1 < elements; ++i) next[i] = (expected[i - 1] + expected[i + 1]) * 0.5;
    expected.swap(next);
  }

  array u(elements, "u"), v(elements, "v");
  for (const std::size_t i : u.local_indices()) u[i] = v[i] = initial(i);
  dsm::barrier();
  for (int s = 0; s < sweeps; ++s) {
    for (const std::size_t i : u.local_indices())
      if (i != 0 && i != elements - 1) v[i] = (double(u[i - 1]) + double(u[i + 1])) * 0.5;
    dsm::barrier();
    swap(u, v);  // the friend, found by argument-dependent lookup
  }
  // After an even number of sweeps the arrays are back in their places.
  CHECK_EQ(u.name(), std::string("u"));
  int wrong = 0;
  for (std::size_t i = 0; i < elements; ++i) wrong += double(u[i]) != expected[i];
  CHECK_EQ(wrong, 0);
  u.swap(v);
  CHECK_EQ(u.name(), std::string("v"));
  dsm::barrier();
}

// A vector of arrays through reallocations (each growth moves every
// array) and an erasure (move assignments down the vector, each
// destroying the array it overwrites collectively).
template <class Policy>
void arrays_in_a_vector() {
  using array = dsm::shared_array<long, Policy>;
  std::vector<array> arrays;
  for (long k = 0; k < 6; ++k) {
    arrays.emplace_back(elements, fmt::format("v{}", k));
    write_spread(arrays.back(), 10 + k);  // pending across the next growth
  }
  dsm::barrier();
  for (long k = 0; k < 6; ++k) check_spread(arrays[static_cast<std::size_t>(k)], 10 + k, "after the vector grew");
  dsm::barrier();
  arrays.erase(arrays.begin() + 1);
  CHECK_EQ(arrays.size(), std::size_t{5});
  for (std::size_t k = 0; k < arrays.size(); ++k) {
    const long round = 10 + static_cast<long>(k == 0 ? 0 : k + 1);
    CHECK_EQ(arrays[k].name(), fmt::format("v{}", round - 10));
    check_spread(arrays[k], round, "after an erasure");
  }
  dsm::barrier();
}

void moved_from_is_refused() {
  dsm::shared_array<int> a(elements, "gone");
  const dsm::global_ptr<int> last = a.pointer(elements - 1);
  if (a.owner(elements - 1) == static_cast<std::size_t>(dsm::rank())) a[elements - 1] = 42;
  dsm::shared_array<int> b = std::move(a);
  dsm::barrier();
  // A global pointer taken before the move reaches the same element.
  CHECK_EQ(dsm::rget(last).wait(), 42);

  CHECK(!a.valid());
  CHECK_EQ(a.size(), std::size_t{0});
  CHECK(a.empty());
  CHECK_EQ(a.local_size(), std::size_t{0});
  CHECK(a.local().empty());
  CHECK(a.describe().find("moved-from") != std::string::npos);
  int out = 0;
  const auto message = CHECK_ERROR(dsm::errc::invalid_argument, (void)int(a[0]));
  CHECK(message.find("operator[]") != std::string::npos && message.find("moved from") != std::string::npos);
  CHECK_ERROR(dsm::errc::invalid_argument, a.get(0, 0, &out));
  CHECK_ERROR(dsm::errc::invalid_argument, a.put(0, std::span<const int>{}));
  CHECK_ERROR(dsm::errc::invalid_argument, (void)a.pointer(0));
  CHECK_ERROR(dsm::errc::invalid_argument, (void)a.owner(0));
  CHECK_ERROR(dsm::errc::invalid_argument, (void)a.name());
  CHECK_ERROR(dsm::errc::invalid_argument, (void)a.team());
  CHECK_ERROR(dsm::errc::invalid_argument, (void)a.stats());
  CHECK_ERROR(dsm::errc::invalid_argument, a.prefetch(0, 0));

  dsm::shared_array<int, dsm::single_writer> cached(elements, "gone cached");
  dsm::shared_array<int, dsm::single_writer> keeper = std::move(cached);
  CHECK_ERROR(dsm::errc::invalid_argument, (void)int(cached[0]));  // a policy that checks indices itself
  CHECK_ERROR(dsm::errc::invalid_argument, (void)cached.read_span(0, 1));
  // Swapping with a moved-from array hands its array over.
  swap(cached, keeper);
  CHECK(cached.valid() && !keeper.valid());
  CHECK_EQ(cached.size(), elements);
  dsm::barrier();
}

}  // namespace

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [] {
    moves_lose_no_write<dsm::direct>();
    moves_lose_no_write<dsm::single_writer>();
    moves_lose_no_write<dsm::write_shared>();
    moves_lose_no_write<dsm::migratory>();
    swap_double_buffers<dsm::direct>();
    swap_double_buffers<dsm::single_writer>();
    swap_double_buffers<dsm::write_shared>();
    arrays_in_a_vector<dsm::direct>();
    arrays_in_a_vector<dsm::write_shared>();
    moved_from_is_refused();
  });
}

// Futures that compose, on values known now (no operation, no worker):
// then, when_all, make_ready_future, and how errors travel. The same over
// real operations on several ranks is tests/ranks/futures_test.cpp.
#include <dsm/transport/future.hpp>

#include <doctest/doctest.h>

#include <array>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace {
bool throws_invalid(auto&& f) {
  try {
    (void)f.wait();
  } catch (const dsm::error& e) {
    return e.category() == dsm::errc::invalid_argument;
  }
  return false;
}
}  // namespace

TEST_CASE("make_ready_future holds small and large values, and waits return them") {
  auto small = dsm::make_ready_future(42);
  static_assert(std::is_same_v<decltype(small), dsm::future<int>>);
  CHECK(small.done());
  CHECK(small.wait() == 42);
  CHECK(small.wait() == 42);  // an operation's value: returned again

  auto text = dsm::make_ready_future(std::string(100, 'x'));
  CHECK(text.done());
  CHECK(text.wait() == std::string(100, 'x'));
  CHECK(throws_invalid(text));  // moved out by the first wait

  std::array<double, 16> big{};  // 128 bytes: too big for an op_buffer
  big[15] = 2.5;
  CHECK(dsm::make_ready_future(big).wait()[15] == 2.5);

  auto none = dsm::make_ready_future();
  CHECK(none.done());
  none.wait();
}

TEST_CASE("an empty future<T> is refused by wait and then; an empty future<void> is done") {
  dsm::future<int> empty;
  CHECK_FALSE(empty.valid());
  CHECK(throws_invalid(empty));
  CHECK_THROWS_AS(empty.then([](int v) { return v; }), dsm::error);
  dsm::future<> nothing;
  CHECK(nothing.valid());
  CHECK(nothing.done());
}

TEST_CASE("then chains values, changes their type, flattens a returned future, and consumes its source") {
  auto source = dsm::make_ready_future(20);
  auto doubled = source.then([](int v) { return v * 2; });
  CHECK_FALSE(source.valid());  // consumed
  auto text = std::move(doubled).then([](int v) { return std::to_string(v + 2); });
  static_assert(std::is_same_v<decltype(text), dsm::future<std::string>>);
  CHECK(text.wait() == "42");

  auto flattened = dsm::make_ready_future(3).then([](int v) { return dsm::make_ready_future(std::vector<int>(v, 7)); });
  static_assert(std::is_same_v<decltype(flattened), dsm::future<std::vector<int>>>);
  CHECK(flattened.wait() == std::vector<int>{7, 7, 7});

  int ran = 0;
  auto after_void = dsm::make_ready_future().then([&] { ++ran; });
  static_assert(std::is_same_v<decltype(after_void), dsm::future<>>);
  after_void.wait();
  CHECK(ran == 1);

  // A callback taking a move-only value, and one returning void from a value.
  auto moved = dsm::make_ready_future(std::make_unique<int>(5)).then([](std::unique_ptr<int> p) { return *p + 1; });
  CHECK(moved.wait() == 6);
  int seen = 0;
  dsm::make_ready_future(9).then([&](int v) { seen = v; }).wait();
  CHECK(seen == 9);
}

TEST_CASE("an error thrown by a callback, or carried by the source, is the result's, not then()'s") {
  auto failing = dsm::make_ready_future(1).then([](int) -> int { throw std::runtime_error("callback failed"); });
  auto after = std::move(failing).then([](int v) { return v + 1; });  // skipped: the error passes through
  try {
    (void)after.wait();
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "callback failed");
  }

  auto dsm_error = dsm::make_ready_future(1).then(
      [](int) -> std::string { throw dsm::error(dsm::errc::peer_failure, "rank 3 left", 0); });
  try {
    (void)dsm_error.wait();
    FAIL("no error");
  } catch (const dsm::error& e) {
    CHECK(e.category() == dsm::errc::peer_failure);  // the type and the category travel intact
  }
}

TEST_CASE("when_all: a tuple of the non-void values in order, void for all-void, the first error") {
  auto all = dsm::when_all(dsm::make_ready_future(1), dsm::make_ready_future(), dsm::make_ready_future(std::string("b")),
                           dsm::make_ready_future(2.5));
  static_assert(std::is_same_v<decltype(all), dsm::future<std::tuple<int, std::string, double>>>);
  CHECK(all.done());
  const auto [i, s, d] = all.wait();
  CHECK(i == 1);
  CHECK(s == "b");
  CHECK(d == 2.5);

  auto voids = dsm::when_all(dsm::make_ready_future(), dsm::make_ready_future());
  static_assert(std::is_same_v<decltype(voids), dsm::future<>>);
  voids.wait();

  auto with_error = dsm::when_all(dsm::make_ready_future(1),
                                  dsm::make_ready_future(2).then([](int) -> int { throw std::logic_error("second"); }));
  CHECK_THROWS_AS(with_error.wait(), std::logic_error);

  std::vector<dsm::future<int>> many;
  for (int k = 0; k < 100; ++k) many.push_back(dsm::make_ready_future(k).then([](int v) { return v * v; }));
  auto squares = dsm::when_all(std::move(many));
  static_assert(std::is_same_v<decltype(squares), dsm::future<std::vector<int>>>);
  const std::vector<int> got = squares.wait();
  REQUIRE(got.size() == 100);
  for (int k = 0; k < 100; ++k) CHECK(got[k] == k * k);

  std::vector<dsm::future<>> no_values(3);
  dsm::when_all(std::move(no_values)).wait();
  CHECK(dsm::when_all(std::vector<dsm::future<int>>{}).wait().empty());
}

TEST_CASE("a future dropped unwaited still runs its callbacks") {
  int ran = 0;
  {
    auto f = dsm::make_ready_future(1);
    auto g = std::move(f).then([&](int) { ++ran; });
    (void)g;
  }
  CHECK(ran == 1);
}

#include <dsm/error.hpp>
#include <dsm/runtime/settings.hpp>
#include <dsm/transport/clock.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <string>

TEST_CASE("error names rank, category and cause") {
  const dsm::error e(dsm::errc::stale_pointer, "array 'x' index 7", 3);
  CHECK(e.category() == dsm::errc::stale_pointer);
  CHECK(e.rank() == 3);
  CHECK(e.message() == "array 'x' index 7");
  CHECK(std::string(e.what()) == "dsm: rank 3: stale pointer: array 'x' index 7");
}

TEST_CASE("error takes the calling rank by default, and says nothing of a rank before bootstrap") {
  dsm::detail::set_calling_rank(dsm::detail::no_rank);
  const dsm::error before(dsm::errc::invalid_argument, "bad");
  CHECK(before.rank() == dsm::detail::no_rank);
  CHECK(std::string(before.what()) == "dsm: invalid argument: bad");

  dsm::detail::set_calling_rank(5);
  const dsm::error after(dsm::errc::timeout, "barrier 2 after 30 s");
  CHECK(after.rank() == 5);
  CHECK(std::string(after.what()) == "dsm: rank 5: timeout: barrier 2 after 30 s");
  dsm::detail::set_calling_rank(dsm::detail::no_rank);
}

TEST_CASE("every category has a name") {
  for (int c = 0; c <= static_cast<int>(dsm::errc::rpc_exception); ++c)
    CHECK(dsm::to_string(static_cast<dsm::errc>(c)) != "unknown");
}

// Issue 15.8: DSM_TIMEOUT's meanings, and values that would overflow a
// deadline refused with the reason.
TEST_CASE("DSM_TIMEOUT: seconds, 0 or inf for no limit, anything else refused with the reason") {
  using dsm::detail::settings;
  CHECK(settings::parse_timeout("30") == 30.0);
  CHECK(settings::parse_timeout("0.5") == 0.5);
  CHECK(std::isinf(settings::parse_timeout("0")));
  CHECK(std::isinf(settings::parse_timeout("inf")));
  CHECK(std::isinf(settings::parse_timeout("infinity")));
  const auto refused = [](const char* text, const char* why) {
    try {
      (void)settings::parse_timeout(text);
    } catch (const dsm::error& e) {
      CHECK(e.category() == dsm::errc::invalid_argument);
      CHECK(e.message().find(why) != std::string::npos);
      CHECK(e.message().find("0 or inf to wait for ever") != std::string::npos);
      return;
    }
    FAIL("DSM_TIMEOUT='" << text << "' was accepted");
  };
  refused("1e10", "too long");
  refused("-1", "negative");
  refused("abc", "not a number");
  refused("nan", "not a number");
  refused("10s", "not a number");
  refused("", "not a number");
  // The longest accepted limit still makes a deadline in the future.
  const dsm::transport::deadline longest{std::chrono::duration<double>(settings::max_timeout_seconds)};
  CHECK(!longest.passed());
  const dsm::transport::deadline never{std::chrono::duration<double>(settings::parse_timeout("inf"))};
  CHECK(!never.passed());
}

#include <dsm/error.hpp>

#include <doctest/doctest.h>

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
  for (int c = 0; c <= static_cast<int>(dsm::errc::internal); ++c)
    CHECK(dsm::to_string(static_cast<dsm::errc>(c)) != "unknown");
}

#include <dsm/distribution.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace {

// Every index has exactly one (owner, local index), local indices of each
// owner are exactly 0 .. local_size-1, global_index inverts the mapping, and
// the runs tile any range in order.
void check_mapping(const dsm::distribution& d) {
  const std::size_t n = d.size(), p = d.ranks();
  std::vector<std::vector<int>> hits(p);
  std::size_t total = 0;
  for (std::size_t r = 0; r < p; ++r) {
    hits[r].assign(d.local_size(r), 0);
    total += d.local_size(r);
    CHECK(d.local_size(r) <= d.max_local_size());
  }
  CHECK(total == n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t o = d.owner(i), l = d.local_index(i);
    REQUIRE(o < p);
    REQUIRE(l < d.local_size(o));
    ++hits[o][l];
    CHECK(d.global_index(o, l) == i);
    const auto both = d.locate(i);  // the hit path's form
    REQUIRE((both.owner == o && both.local == l));
  }
  for (const auto& h : hits)
    for (int c : h) CHECK(c == 1);
  for (std::size_t first : {std::size_t{0}, n / 3, n > 0 ? n - 1 : 0}) {
    const std::size_t count = n - first;
    std::size_t next = first;
    d.for_each_run(first, count, [&](const dsm::distribution::run& r) {
      CHECK(r.first == next);
      CHECK(r.count > 0);
      for (std::size_t k = 0; k < r.count; ++k) {
        CHECK(d.owner(r.first + k) == r.owner);
        CHECK(d.local_index(r.first + k) == r.local_first + k);
      }
      next += r.count;
    });
    CHECK(next == first + count);
  }
}

}  // namespace

TEST_CASE("block, cyclic and block_cyclic cover every index exactly once") {
  for (std::size_t p : {1u, 2u, 3u, 4u, 7u}) {
    for (std::size_t n : {0u, 1u, 2u, 5u, 13u, 64u, 97u, 1000u}) {
      CAPTURE(p);
      CAPTURE(n);
      check_mapping(dsm::distribution(dsm::block, n, p));
      check_mapping(dsm::distribution(dsm::cyclic, n, p));
      for (std::size_t k : {1u, 2u, 3u, 8u, 64u}) {
        CAPTURE(k);
        check_mapping(dsm::distribution(dsm::block_cyclic(k), n, p));
      }
    }
  }
}

TEST_CASE("the layouts place elements as documented") {
  const dsm::distribution b(dsm::block, 10, 4);  // blocks of 3: 3, 3, 3, 1
  CHECK(b.block_size() == 3);
  CHECK(b.owner(0) == 0);
  CHECK(b.owner(9) == 3);
  CHECK(b.local_size(3) == 1);
  const dsm::distribution c(dsm::cyclic, 10, 4);  // 3, 3, 2, 2
  CHECK(c.owner(5) == 1);
  CHECK(c.local_index(5) == 1);
  CHECK(c.local_size(0) == 3);
  CHECK(c.local_size(3) == 2);
  const dsm::distribution bc(dsm::block_cyclic(4), 22, 3);  // blocks 0..5, last has 2
  CHECK(bc.owner(13) == 0);  // block 3
  CHECK(bc.local_index(13) == 5);
  CHECK(bc.local_size(0) == 8);
  CHECK(bc.local_size(1) == 8);
  CHECK(bc.local_size(2) == 6);
  int runs = 0;
  bc.for_each_run(2, 9, [&](const dsm::distribution::run&) { ++runs; });
  CHECK(runs == 3);  // 2..3, 4..7, 8..10
}

TEST_CASE("a distribution refuses a zero block size or zero ranks") {
  CHECK_THROWS_AS(dsm::distribution(dsm::block_cyclic(0), 10, 2), dsm::error);
  CHECK_THROWS_AS(dsm::distribution(dsm::block, 10, 0), dsm::error);
}

TEST_CASE("divisor: the multiply-and-shift quotient equals division for every divisor class and dividend range") {
  std::vector<std::uint64_t> divisors;
  for (std::uint64_t d = 1; d <= 1100; ++d) divisors.push_back(d);
  for (unsigned k = 11; k < 64; ++k) {
    const std::uint64_t two_k = std::uint64_t{1} << k;
    divisors.insert(divisors.end(), {two_k - 1, two_k, two_k + 1, two_k / 3 * 2 + 1});
  }
  divisors.push_back(~std::uint64_t{0});
  std::mt19937_64 gen(42);
  constexpr std::uint64_t limit = dsm::detail::divisor::dividend_limit;
  std::size_t wrong = 0, checked = 0;
  for (const std::uint64_t d : divisors) {
    const dsm::detail::divisor by(d);
    auto check = [&](std::uint64_t n) {
      ++checked;
      wrong += by.quotient(n) != n / d || by.remainder(n) != n % d;
    };
    for (std::uint64_t n : {std::uint64_t{0}, std::uint64_t{1}, d - 1, d, d + 1, limit - 1, limit - d, limit / d * d,
                            limit / d * d - 1})
      if (n < limit) check(n);
    for (int k = 0; k < 200; ++k) {
      check(gen() % limit);
      check(gen() % (d < limit / 1024 ? d * 1024 : limit));  // small quotients, where rounding shows first
    }
  }
  CHECK(wrong == 0);
  CHECK(checked > 400000);
  CHECK_THROWS_AS(dsm::distribution(dsm::cyclic, limit + 1, 2), dsm::error);
}

TEST_CASE("distribution: first_run_length is the length of the first run for_each_run reports") {
  std::size_t wrong = 0, checked = 0;
  for (std::size_t p : {1, 2, 3, 5})
    for (std::size_t n : {1, 7, 64, 100}) {
      const dsm::distribution layouts[] = {dsm::distribution(dsm::block, n, p), dsm::distribution(dsm::cyclic, n, p),
                                           dsm::distribution(dsm::block_cyclic(3), n, p)};
      for (const auto& d : layouts)
        for (std::size_t first = 0; first < n; ++first)
          for (std::size_t count = 1; first + count <= n; ++count) {
            std::size_t length = 0;
            bool seen = false;
            d.for_each_run(first, count, [&](const dsm::distribution::run& r) {
              if (!seen) length = r.count, seen = true;
            });
            ++checked;
            wrong += d.first_run_length(first, count) != length;
          }
    }
  CHECK(wrong == 0);
  CHECK(checked > 10000);
}

#include <dsm/runtime/peer_watch.hpp>
#include <dsm/runtime/settings.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <set>

using dsm::detail::watched_peers;

namespace {
// Every rank's watch list, and whether it is symmetric (a watches b iff b
// watches a: one connection serves both).
std::map<std::uint32_t, std::vector<std::uint32_t>> all_lists(const std::vector<std::uint64_t>& hosts) {
  std::map<std::uint32_t, std::vector<std::uint32_t>> lists;
  for (std::uint32_t r = 0; r < hosts.size(); ++r) lists[r] = watched_peers(r, hosts);
  for (const auto& [r, list] : lists)
    for (const std::uint32_t w : list) {
      CHECK(hosts[w] != hosts[r]);
      const auto& back = lists[w];
      CHECK(std::find(back.begin(), back.end(), r) != back.end());
    }
  return lists;
}
}  // namespace

TEST_CASE("one machine: nobody is watched") {
  for (const auto& list : all_lists({7, 7, 7, 7})) CHECK(list.second.empty());
}

TEST_CASE("2 machines x 2 ranks: each rank watches its counterpart") {
  const auto lists = all_lists({1, 1, 2, 2});
  CHECK(lists.at(0) == std::vector<std::uint32_t>{2});
  CHECK(lists.at(1) == std::vector<std::uint32_t>{3});
  CHECK(lists.at(2) == std::vector<std::uint32_t>{0});
  CHECK(lists.at(3) == std::vector<std::uint32_t>{1});
}

TEST_CASE("uneven machines, interleaved ranks: every machine watched by every rank of every other") {
  const std::vector<std::uint64_t> hosts{5, 9, 5, 3, 5, 9, 5};  // 4 ranks on 5, 2 on 9, 1 on 3
  const auto lists = all_lists(hosts);
  std::size_t connections = 0;
  for (const auto& [r, list] : lists) {
    std::set<std::uint64_t> machines;
    for (const std::uint32_t w : list) machines.insert(hosts[w]);
    CHECK(machines.size() == 2);  // both other machines, whichever rank there
    connections += list.size();
  }
  CHECK(connections / 2 <= hosts.size() * 2);  // about one per rank and other machine, not one per pair
}

TEST_CASE("DSM_HOST_TIMEOUT: seconds, 0 or inf for no watch, named in its errors") {
  using dsm::detail::settings;
  CHECK(settings::parse_timeout("1.5", "DSM_HOST_TIMEOUT") == 1.5);
  CHECK(std::isinf(settings::parse_timeout("0", "DSM_HOST_TIMEOUT")));
  try {
    (void)settings::parse_timeout("-2", "DSM_HOST_TIMEOUT");
    FAIL("DSM_HOST_TIMEOUT=-2 was accepted");
  } catch (const dsm::error& e) {
    CHECK(e.message().find("DSM_HOST_TIMEOUT='-2': negative") != std::string::npos);
  }
}

TEST_CASE("a disabled watch publishes no port and starts nothing") {
  dsm::detail::peer_watch w(std::numeric_limits<double>::infinity());
  CHECK(w.contact().port == 0);
  w.start(0, {1}, {{}, {}}, dsm::transport::deadline{std::chrono::seconds(1)}, [](std::uint32_t, std::string) {});
  w.leave(dsm::detail::peer_watch::said_finished);
}

TEST_CASE("two watches on loopback: a word on leaving is no loss, a silent close is") {
  // Loopback stands in for another machine's address.
  dsm::detail::peer_watch a(3.0), b(3.0);
  auto ca = a.contact(), cb = b.contact();
  ca.ipv4 = {htonl(INADDR_LOOPBACK)};
  cb.ipv4 = {htonl(INADDR_LOOPBACK)};
  std::vector<std::pair<std::uint32_t, std::string>> lost;
  std::mutex m;
  const auto note = [&](std::uint32_t r, std::string cause) {
    const std::lock_guard g{m};
    lost.emplace_back(r, std::move(cause));
  };
  const dsm::transport::deadline until{std::chrono::seconds(10)};
  a.start(0, {1}, {ca, cb}, until, note);  // connects (its backlog holds it until b accepts)
  b.start(1, {0}, {ca, cb}, until, note);
  a.leave(dsm::detail::peer_watch::said_finished);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  {
    const std::lock_guard g{m};
    CHECK(lost.empty());
  }

  auto c = std::make_unique<dsm::detail::peer_watch>(3.0);
  dsm::detail::peer_watch d(3.0);
  auto cc = c->contact(), cd = d.contact();
  cc.ipv4 = {htonl(INADDR_LOOPBACK)};
  cd.ipv4 = {htonl(INADDR_LOOPBACK)};
  c->start(0, {1}, {cc, cd}, until, note);
  d.start(1, {0}, {cc, cd}, until, note);
  c.reset();  // closes without a word, as a killed process's kernel does
  for (int i = 0; i < 100; ++i) {
    {
      const std::lock_guard g{m};
      if (!lost.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::lock_guard g{m};
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].first == 0);
  CHECK(lost[0].second.find("ended without leaving") != std::string::npos);
}

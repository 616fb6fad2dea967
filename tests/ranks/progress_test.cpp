// Asynchronous progress: while rank 1 computes without calling dsm, rank 0's
// get and atomic on rank 1's memory are served (by rank 1's progress thread
// over TCP, by shared memory directly). Run with "deferred" under
// DSM_PROGRESS=poll over TCP, the same get is served only when rank 1 calls
// dsm again, after it has marked its work done; that run shows the check
// can tell the two apart. Also: fence flushes only the peers written.
#include "check.hpp"

#include <chrono>
#include <cstdint>
#include <string_view>
#include <thread>

int main(int argc, char** argv) {
  const bool expect_served = !(argc > 1 && std::string_view(argv[1]) == "deferred");
  return dsm_test::run(argc, argv, [&] {
    const int me = dsm::rank(), n = dsm::ranks();
    const auto cells = dsm::allocate_collective<std::uint64_t>(2);

    // fence flushes exactly the peers written since the last one.
    auto& eps = dsm::detail::rt().endpoints();
    dsm::fence();
    CHECK_EQ(eps.peers_written(), std::size_t{0});
    if (n > 1) {
      dsm::rput(std::uint64_t{1}, cells[static_cast<std::size_t>((me + 1) % n)] + 1).wait();
      CHECK_EQ(eps.peers_written(), std::size_t{1});
      dsm::fence();
      CHECK_EQ(eps.peers_written(), std::size_t{0});
    }
    dsm::barrier();
    if (n < 2) return;

    const auto done_flag = cells[1];  // rank 1's word 0: set when its work is done
    if (me == 1) {
      // Compute for a while without entering dsm at all.
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
      volatile std::uint64_t spin = 0;
      while (std::chrono::steady_clock::now() < until) spin = spin + 1;
      done_flag.local()[0] = 1;
    }
    if (me == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // rank 1 is computing now
      const auto t0 = std::chrono::steady_clock::now();
      const std::uint64_t seen = dsm::rget(done_flag).wait();
      const std::uint64_t before = dsm::atomic_fetch_add(cells[1] + 1, std::uint64_t{5}).wait();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      fmt::print("get + atomic on a computing rank: {:.1f} ms, saw done flag {}\n", ms, seen);
      CHECK_EQ(seen, expect_served ? std::uint64_t{0} : std::uint64_t{1});
      CHECK_EQ(before, std::uint64_t{1});  // rank 0's fence-test put
    }
    dsm::barrier();
  });
}

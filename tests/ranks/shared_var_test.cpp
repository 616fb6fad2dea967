// dsm::shared_var (issue 19.7): one shared scalar under a policy: a
// counter under a lock, a result published with a flag, a reduction,
// a home on another rank, and the misuse refused.
#include "check.hpp"

#include <cstdint>
#include <mutex>

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [] {
    const int me = dsm::rank(), n = dsm::ranks();

    // A counter every rank increments under a lock: no increment lost.
    dsm::shared_var<long> counter("counter");
    dsm::lock l;
    for (int i = 0; i < 100; ++i) {
      std::scoped_lock g(l);
      *counter += 1;
    }
    dsm::barrier();
    CHECK_EQ(counter.get(), 100L * n);
    CHECK_EQ(counter.home_rank(), 0);
    CHECK_EQ(counter.pointer().home_rank(), 0u);
    dsm::barrier();

    // A result written by one rank, then a flag: every reader that sees the
    // flag sees the result (signal releases, wait_until acquires), under a
    // caching policy whose readers cached the old value first.
    dsm::shared_var<double, dsm::single_writer> result("result", n - 1);
    dsm::shared_var<std::uint64_t, dsm::direct> ready("ready", n - 1);
    CHECK_EQ(result.get(), 0.0);  // cached now on every rank
    dsm::barrier();
    for (std::uint64_t round = 1; round <= 5; ++round) {
      if (me == 0) {
        result = 2.5 * double(round);
        ready.signal(round);
      } else {
        ready.wait_until(dsm::cmp::ge, round);
        CHECK_EQ(double(result), 2.5 * double(round));
      }
      dsm::barrier();
    }
    CHECK_EQ(result.pointer().home_rank(), static_cast<std::uint32_t>(n - 1));

    // A sum of every rank's contribution.
    dsm::shared_var<long, dsm::reduction<dsm::sum>> total("total");
    *total += me + 1;
    dsm::barrier();
    CHECK_EQ(total.get(), long(n) * (n + 1) / 2);

    // A remote atomic on it, through its pointer.
    dsm::shared_var<std::uint64_t, dsm::direct> tickets("tickets");
    dsm::atomic_fetch_add(tickets.pointer(), std::uint64_t{3}).wait();
    dsm::barrier();
    CHECK_EQ(tickets.get(), std::uint64_t(3) * static_cast<std::uint64_t>(n));

    // A home outside the team is refused on every rank, before any collective step.
    CHECK_ERROR(dsm::errc::invalid_argument, (dsm::shared_var<int>("far", n)));
    CHECK_ERROR(dsm::errc::invalid_argument, (dsm::shared_var<int>("negative", -1)));
    dsm::barrier();
  });
}

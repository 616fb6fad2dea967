// hello: every rank says where it runs, then the ranks pass a token around
// a ring with one-sided puts, count themselves with a remote atomic, and
// agree on a sum. Run: dsmrun -n 2 build/examples/hello
#include <dsm/dsm.hpp>

#include <fmt/format.h>

#include <cstdint>

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  const int me = dsm::rank(), n = dsm::ranks();
  namespace arch = dsm::arch;
  fmt::print("rank {} of {}: dsm {} on {}, joined through {}, progress {}, cache line {} B, cache maintenance {}\n", me, n,
             DSM_VERSION, arch::to_string(arch::host_isa), rt.bootstrap_method(),
             dsm::transport::to_string(rt.progress()), arch::cache_line_bytes(),
             arch::cache_maintenance_enabled ? "on" : "off");

  // One inbox word per rank, homed on that rank.
  const auto inbox = dsm::allocate_collective<std::uint64_t>(1);
  const auto counter = dsm::allocate_collective<std::uint64_t>(1)[0];

  // Ring: each rank writes its neighbour's inbox, then everyone reads its own.
  dsm::rput(std::uint64_t(100 + me), inbox[static_cast<std::size_t>((me + 1) % n)]).wait();
  dsm::atomic_fetch_add(counter, std::uint64_t{1}).wait();
  dsm::barrier();
  const std::uint64_t got = *inbox[static_cast<std::size_t>(me)].local();
  const std::uint64_t expected = 100 + static_cast<std::uint64_t>((me + n - 1) % n);
  const auto total = dsm::allreduce(got);
  const auto count = dsm::atomic_load(counter).wait();
  fmt::print("rank {}: got {} from rank {} ({}); {} ranks counted; sum of all tokens {}\n", me, got, (me + n - 1) % n,
             got == expected ? "ok" : "WRONG", count, total);
  const bool ok = got == expected && count == static_cast<std::uint64_t>(n);
  return dsm::allreduce(ok ? 0 : 1) == 0 ? 0 : 1;
}

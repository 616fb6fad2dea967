// ep: NPB's Embarrassingly Parallel kernel on dsm (the numerics are in
// ep_kernel.hpp).
//
// Each rank takes a contiguous share of the batches (any rank count) and
// jumps its generator straight to its first batch. Its tallies are
// combined into a reduction<sum> array by default; under --policy
// read_only (the array is written once and read by everyone after the
// barrier), single_writer, write_shared or direct each rank writes its own
// slots and everybody adds them up.
//
//   dsmrun -n 2 build/examples/ep --class S
#include "ep_kernel.hpp"
#include "npb.hpp"

namespace {

constexpr std::size_t slots = 2 + ep::annuli;  // per rank: sx, sy, counts[0..9]

template <class Policy>
constexpr bool combining = requires { typename Policy::combiner; };

// The tallies of every rank, combined in rank order. Under a reduction
// every rank combines its tallies into one set of slots and the barrier
// adds them up at their homes; otherwise every rank writes its own set of
// slots and everybody reads them all and adds them up.
template <class Policy>
ep::tallies combined(dsm::shared_array<double, Policy>& tallies, const ep::tallies& t) {
  std::vector<double> mine(slots);
  mine[0] = t.sx;
  mine[1] = t.sy;
  for (std::size_t l = 0; l < ep::annuli; ++l) mine[2 + l] = t.counts[l];
  if constexpr (combining<Policy>) tallies.combine(0, mine);
  else tallies.put(slots * static_cast<std::size_t>(dsm::rank()), mine);
  dsm::barrier();
  std::vector<double> all(tallies.size());
  tallies.get(0, all);
  ep::tallies total;
  for (std::size_t set = 0; set < all.size(); set += slots) {
    total.sx += all[set];
    total.sy += all[set + 1];
    for (std::size_t l = 0; l < ep::annuli; ++l) total.counts[l] += all[set + 2 + l];
  }
  return total;
}

template <class Policy>
bool run(const npb::options& o, const ep::ep_class& c) {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t sets = combining<Policy> ? 1 : static_cast<std::size_t>(p);
  dsm::shared_array<double, Policy> tallies(slots * sets, dsm::block, "ep tallies");
  dsm::allreduce(0);  // a common start line that is not a barrier: the tallies are not written yet
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t batches = ep::batches(c), up = static_cast<std::uint64_t>(p), um = static_cast<std::uint64_t>(me);
  const ep::tallies total = combined(tallies, ep::run_batches(batches * um / up, batches * (um + 1) / up));
  const double seconds = dsm::allreduce(npb::seconds_since(t0), dsm::max{});
  bool verified = false;
  if (me == 0) {
    fmt::print(" NAS Parallel Benchmarks (dsm) - EP Benchmark\n\n Number of random numbers generated: {:>15}\n\n",
               std::uint64_t{1} << (c.m + 1));
    verified = ep::verify_and_print(c, total, seconds, o.perturb_reference);
  }
  verified = dsm::broadcast(verified, 0);
  npb::print(ep::report(c, seconds, Policy::name, verified));
  return verified;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* usage =
      "ep [--class S|W|A|B|C] [--policy reduction|read_only|single_writer|write_shared|direct]";
  return npb::main(argc, argv, usage, [](const npb::options& o) {
    const auto& c = npb::find_class(ep::classes, o.problem_class);
    return npb::with_policy<dsm::reduction<dsm::sum>, dsm::read_only, dsm::single_writer, dsm::write_shared, dsm::direct>(
        o, "ep", [&]<class P>() { return run<P>(o, c); });
  });
}

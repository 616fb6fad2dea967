// ep: NPB's Embarrassingly Parallel kernel on dsm (the numerics are in
// ep_kernel.hpp).
//
// Each rank takes a contiguous share of the batches (any rank count) and
// jumps its generator straight to its first batch. Its tallies go into its
// own slots of a shared array that is written once and read by everyone
// after the barrier: read_only by default (--policy single_writer,
// write_shared or direct to compare).
//
//   dsmrun -n 2 build/examples/ep --class S
#include "ep_kernel.hpp"
#include "npb.hpp"

namespace {

constexpr std::size_t slots = 2 + ep::annuli;  // per rank: sx, sy, counts[0..9]

template <class Policy>
bool run(const npb::options& o, const ep::ep_class& c) {
  const int me = dsm::rank(), p = dsm::ranks();
  dsm::shared_array<double, Policy> tallies(slots * static_cast<std::size_t>(p), dsm::block, "ep tallies");
  dsm::allreduce(0);  // a common start line that is not a barrier: the tallies are not written yet
  const auto t0 = std::chrono::steady_clock::now();

  const std::uint64_t batches = ep::batches(c), up = static_cast<std::uint64_t>(p), um = static_cast<std::uint64_t>(me);
  const ep::tallies t = ep::run_batches(batches * um / up, batches * (um + 1) / up);
  const std::size_t mine = slots * static_cast<std::size_t>(me);
  tallies[mine] = t.sx;
  tallies[mine + 1] = t.sy;
  for (std::size_t l = 0; l < ep::annuli; ++l) tallies[mine + 2 + l] = t.counts[l];
  dsm::barrier();

  // Every rank combines every rank's tallies, in rank order.
  std::vector<double> all(slots * static_cast<std::size_t>(p));
  tallies.get(0, all);
  ep::tallies total;
  for (int r = 0; r < p; ++r) {
    const double* from = all.data() + slots * static_cast<std::size_t>(r);
    total.sx += from[0];
    total.sy += from[1];
    for (std::size_t l = 0; l < ep::annuli; ++l) total.counts[l] += from[2 + l];
  }
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
      "ep [--class S|W|A|B] [--policy read_only|single_writer|write_shared|direct]";
  return npb::main(argc, argv, usage, [](const npb::options& o) {
    const auto& c = npb::find_class(ep::classes, o.problem_class);
    return npb::with_policy<dsm::read_only, dsm::single_writer, dsm::write_shared, dsm::direct>(
        o, "ep", [&]<class P>() { return run<P>(o, c); });
  });
}

// ep: NPB's Embarrassingly Parallel kernel on dsm. 2^(M+1) uniform
// pseudorandom numbers in batches of 2^17, turned into Gaussian pairs by
// the acceptance-rejection (Marsaglia polar) method and tallied in ten
// square annuli; the sums of the deviates verify against NPB's values.
//
// Each rank takes a contiguous share of the batches (any rank count) and
// jumps its generator straight to its first batch. Its tallies go into its
// own slots of a shared array that is written once and read by everyone
// after the barrier: read_only by default (--policy single_writer,
// write_shared or direct to compare).
//
//   dsmrun -n 2 build/examples/npb/ep --class S
#include "npb.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace {

struct ep_class {
  char name;
  int m;  // 2^m pairs
  double sx, sy;
};
constexpr std::array<ep_class, 4> classes{{{'S', 24, -3.247834652034740e3, -6.958407078382297e3},
                                           {'W', 25, -2.863319731645753e3, -6.320053679109499e3},
                                           {'A', 28, -4.295875165629892e3, -1.580732573678431e4},
                                           {'B', 30, 4.033815542441498e4, -2.660669192809235e4}}};
constexpr int batch_log2 = 16;  // NPB's MK: 2^16 pairs per batch
constexpr std::size_t annuli = 10;
constexpr double seed = 271828183.0, epsilon = 1.0e-8;
constexpr std::size_t slots = 2 + annuli;  // per rank: sx, sy, q[0..9]

template <class Policy>
bool run(const npb::options& o, const ep_class& c) {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::uint64_t batches = std::uint64_t{1} << (c.m - batch_log2), pairs = std::uint64_t{1} << batch_log2;
  const std::uint64_t a = npb::lcg::default_multiplier;
  const std::uint64_t batch_stride = npb::lcg::power(a, 2 * pairs);  // the generator's jump over one batch

  dsm::shared_array<double, Policy> tallies(slots * static_cast<std::size_t>(p), dsm::block, "ep tallies");
  dsm::allreduce(0);  // a common start line that is not a barrier: the tallies are not written yet
  const auto t0 = std::chrono::steady_clock::now();

  const std::uint64_t first = batches * static_cast<std::uint64_t>(me) / static_cast<std::uint64_t>(p);
  const std::uint64_t last = batches * static_cast<std::uint64_t>(me + 1) / static_cast<std::uint64_t>(p);
  std::vector<double> x(2 * pairs);
  double sx = 0, sy = 0;
  std::array<double, annuli> q{};
  for (std::uint64_t k = first; k < last; ++k) {
    npb::lcg g(static_cast<double>(npb::lcg::multiply(static_cast<std::uint64_t>(seed), npb::lcg::power(batch_stride, k))));
    g.fill(x.data(), x.size());
    for (std::uint64_t i = 0; i < pairs; ++i) {
      const double x1 = 2.0 * x[2 * i] - 1.0, x2 = 2.0 * x[2 * i + 1] - 1.0;
      const double t1 = x1 * x1 + x2 * x2;
      if (t1 > 1.0) continue;
      const double t2 = std::sqrt(-2.0 * std::log(t1) / t1);
      const double t3 = x1 * t2, t4 = x2 * t2;
      q[static_cast<std::size_t>(std::max(std::abs(t3), std::abs(t4)))] += 1.0;
      sx += t3;
      sy += t4;
    }
  }
  const std::size_t mine = slots * static_cast<std::size_t>(me);
  tallies[mine] = sx;
  tallies[mine + 1] = sy;
  for (std::size_t l = 0; l < annuli; ++l) tallies[mine + 2 + l] = q[l];
  dsm::barrier();

  // Every rank combines every rank's tallies, in rank order.
  std::vector<double> all(slots * static_cast<std::size_t>(p));
  tallies.get(0, all);
  double total_sx = 0, total_sy = 0, gaussian_pairs = 0;
  std::array<double, annuli> counts{};
  for (int r = 0; r < p; ++r) {
    const double* t = all.data() + slots * static_cast<std::size_t>(r);
    total_sx += t[0];
    total_sy += t[1];
    for (std::size_t l = 0; l < annuli; ++l) counts[l] += t[2 + l];
  }
  for (double n : counts) gaussian_pairs += n;
  const double seconds = dsm::allreduce(npb::seconds_since(t0), dsm::max{});

  const double scale = o.perturb_reference ? 1.01 : 1.0;
  const bool verified = npb::within(total_sx, c.sx * scale, epsilon) && npb::within(total_sy, c.sy * scale, epsilon);
  if (me == 0) {
    fmt::print(" NAS Parallel Benchmarks (dsm) - EP Benchmark\n\n Number of random numbers generated: {:>15}\n\n",
               std::uint64_t{1} << (c.m + 1));
    fmt::print("EP Benchmark Results:\n\nTime = {:10.4f}\nN = 2^{:5}\nNo. Gaussian Pairs = {:15.0f}\n", seconds, c.m,
               gaussian_pairs);
    fmt::print("Sums = {:25.15e} {:25.15e}\nCounts:\n", total_sx, total_sy);
    for (std::size_t l = 0; l < annuli; ++l) fmt::print("{:3} {:15.0f}\n", l, counts[l]);
    if (!verified)
      fmt::print("Reference sums: {:25.15e} {:25.15e}\n", c.sx * scale, c.sy * scale);
  }
  npb::print({"EP", c.name, std::to_string(std::uint64_t{1} << (c.m + 1)), 0, seconds,
              std::ldexp(1.0, c.m + 1) / seconds / 1e6, "Random numbers generated", Policy::name, verified});
  return verified;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* usage =
      "ep [--class S|W|A|B] [--policy read_only|single_writer|write_shared|direct]";
  return npb::main(argc, argv, usage, [](const npb::options& o) {
    const auto& c = npb::find_class(classes, o.problem_class);
    return npb::with_policy<dsm::read_only, dsm::single_writer, dsm::write_shared, dsm::direct>(
        o, "ep", [&]<class P>() { return run<P>(o, c); });
  });
}

// ft: NPB's 3-D FFT PDE kernel on dsm (the problem, the FFT and the solver
// are in ft_kernel.hpp).
//
// DSM shape: three block-distributed shared arrays of complex numbers.
// `planes` holds whole z-planes per rank (initial conditions, the x and y
// transforms, the checksum); `spectrum` and `evolved` hold whole y-rows of
// every plane per rank (the z transform, the evolution). The transposes go
// through the arrays in bulk, one transfer per pair of ranks: forward, each
// rank packs what another rank's columns need of its planes and puts it, a
// contiguous run of that rank's `spectrum` block; back, each rank gets from
// every other rank's `evolved` block the contiguous run that holds its own
// planes. Each array is written by its home through local() or by puts
// into disjoint runs, and read after a barrier: write_shared and
// single_writer (--policy) serve it as well as direct.
//
//   dsmrun -n 2 build/examples/ft --class S [--policy direct|write_shared|single_writer]
#include "ft_kernel.hpp"
#include "npb.hpp"

#include <span>
#include <vector>

namespace {

using ft::complex;

template <class Policy>
class shared_grids {
 public:
  explicit shared_grids(const ft::geometry& g)
      : g_(g),
        planes_(g.ranks * g.plane_block(), dsm::block, "ft planes"),
        spectrum_(g.ranks * g.column_block(), dsm::block, "ft spectrum"),
        evolved_(g.ranks * g.column_block(), dsm::block, "ft evolved"),
        me_(static_cast<std::size_t>(dsm::rank())) {}

  std::span<complex> planes() { return planes_.local(); }
  std::span<complex> spectrum() { return spectrum_.local(); }
  std::span<complex> evolved() { return evolved_.local(); }
  void send(std::size_t r, std::span<const complex> run) {
    spectrum_.put(r * g_.column_block() + g_.column_offset(g_.first_plane(me_), 0), run);
  }
  void fetch(std::size_t s, std::span<complex> run) {
    evolved_.get(s * g_.column_block() + g_.column_offset(g_.first_plane(me_), 0), run);
  }
  void barrier() { dsm::barrier(); }
  void sum(std::span<double> values) { dsm::allreduce(values); }

 private:
  const ft::geometry& g_;
  dsm::shared_array<complex, Policy> planes_, spectrum_, evolved_;
  std::size_t me_;
};

template <class Policy>
bool run(const npb::options& o, const ft::ft_class& c) {
  const auto me = static_cast<std::size_t>(dsm::rank()), p = static_cast<std::size_t>(dsm::ranks());
  const ft::geometry shape(c, p);
  shared_grids<Policy> grids(shape);
  ft::solver solver(c, grids, p, me);
  (void)solver.solve();  // NPB's untimed run: every page touched once
  dsm::allreduce(0);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<complex> sums = solver.solve();
  const double seconds = dsm::allreduce(npb::seconds_since(t0), dsm::max{});
  bool verified = true;
  if (me == 0) {
    fmt::print(" NAS Parallel Benchmarks (dsm) - FT Benchmark\n\n Size: {}x{}x{}  (class {})\n Iterations: {}\n",
               c.nx, c.ny, c.nz, c.name, c.iterations);
    verified = ft::verify_and_print(c, sums, o.perturb_reference);
  }
  verified = dsm::broadcast(verified ? 1 : 0, 0) == 1;
  npb::print(ft::report(c, seconds, Policy::name, verified));
  return verified;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* usage = "ft [--class S|W|A|B|C] [--policy direct|write_shared|single_writer]";
  return npb::main(argc, argv, usage, [](const npb::options& o) {
    const auto& c = npb::find_class(ft::classes, o.problem_class);
    return npb::with_policy<dsm::direct, dsm::write_shared, dsm::single_writer>(
        o, "ft", [&]<class P>() { return run<P>(o, c); });
  });
}

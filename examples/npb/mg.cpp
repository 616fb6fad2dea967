// mg: NPB's MultiGrid kernel on dsm (the numerics are in mg_kernel.hpp).
//
// DSM shape: every level of u and r, and v, is a shared array of planes,
// each rank owning a contiguous run of whole planes (block_cyclic with one
// block of ceil(n / ranks) planes per rank; on coarse levels some ranks own
// none). A rank computes its own planes in place through local(), and
// reads the planes just beyond its run, its neighbours' (or, periodically,
// the far end), through the shared array. Every plane is rewritten between
// two reads of it, so a cache would never hit: direct (one-sided gets) is
// the default; with single_writer or write_shared (--policy) the barrier
// drops stale copies and a read fetches the plane's units once; with
// producer_consumer the owners push each changed plane to the neighbours
// that read it after the last change, which read it in place. One
// barrier follows every operator whose output a neighbour reads next
// (resid and the operator after it run plane by plane together, the edge
// planes after the barrier: mg_kernel.hpp). The
// 20 extreme values of the random field are exchanged through a read_only
// array, and the norm is a reduction.
//
//   dsmrun -n 2 build/examples/mg --class S [--policy direct|producer_consumer|single_writer|write_shared]
#include "mg_kernel.hpp"
#include "npb.hpp"

#include <algorithm>
#include <bit>
#include <memory>
#include <type_traits>

namespace {

template <class Policy>
class shared_grids {
 public:
  struct grid {
    int n;
    std::size_t plane_size;
    int first, last;  // own planes
    std::unique_ptr<dsm::shared_array<double, Policy>> planes;
  };

  // A plane's units: the largest power of two within one plane (a read of a
  // neighbour's plane then moves little beyond it), within dsm's bounds.
  static dsm::unit_size unit_for(std::size_t plane_bytes) {
    return {std::clamp(std::bit_floor(plane_bytes), dsm::unit_size::min_bytes, dsm::unit_size::max_bytes)};
  }

  grid make_grid(int n, std::string name) {
    const int p = dsm::ranks(), me = dsm::rank();
    const int per_rank = (n + p - 1) / p;
    const std::size_t plane_size = mg::level{n}.plane_size();
    grid g{n, plane_size, std::min(me * per_rank, n), std::min((me + 1) * per_rank, n), nullptr};
    g.planes = std::make_unique<dsm::shared_array<double, Policy>>(
        static_cast<std::size_t>(n) * plane_size, dsm::block_cyclic(static_cast<std::size_t>(per_rank) * plane_size),
        unit_for(plane_size * sizeof(double)), std::move(name));
    return g;
  }

  std::pair<int, int> own_planes(const grid& g) const { return {g.first, g.last}; }

  double* plane(grid& g, int f) const {
    return g.planes->local().data() + static_cast<std::size_t>(f - g.first) * g.plane_size;
  }

  class window {
   public:
    const double* operator()(int stored) const { return planes_[static_cast<std::size_t>(stored - lo_)]; }

   private:
    friend class shared_grids;
    int lo_ = 0;
    std::vector<const double*> planes_;
  };

  // Stored planes lo..hi: own ones in place, others fetched (each once)
  // into buffers that live until the next read.
  window read(grid& g, int lo, int hi) {
    window w;
    w.lo_ = lo;
    std::vector<int> fetched;
    for (int s = lo; s <= hi; ++s) {
      const int f = ((s - 1) % g.n + g.n) % g.n;
      if (f >= g.first && f < g.last) {
        w.planes_.push_back(plane(g, f));
        continue;
      }
      if constexpr (std::is_same_v<Policy, dsm::producer_consumer>) {
        // The pushed copy itself, valid until the next barrier.
        w.planes_.push_back(g.planes->read_span(static_cast<std::size_t>(f) * g.plane_size, g.plane_size).data());
        continue;
      }
      const auto seen = std::find(fetched.begin(), fetched.end(), f);
      if (seen != fetched.end()) {
        w.planes_.push_back(buffers_[static_cast<std::size_t>(seen - fetched.begin())].data());
        continue;
      }
      if (buffers_.size() <= fetched.size()) buffers_.emplace_back();
      auto& buffer = buffers_[fetched.size()];
      buffer.resize(g.plane_size);
      g.planes->get(static_cast<std::size_t>(f) * g.plane_size, buffer);
      fetched.push_back(f);
      w.planes_.push_back(buffer.data());
    }
    return w;
  }

  void sync() { dsm::barrier(); }

  // Each rank's candidates in its own slots of a read_only array.
  std::vector<mg::extreme> gather(std::span<const mg::extreme> mine) {
    const auto p = static_cast<std::size_t>(dsm::ranks()), slots = std::size_t{20};
    if (mine.size() > slots) throw std::logic_error("mg: more than 20 candidates per rank");
    dsm::shared_array<mg::extreme, dsm::read_only> all(slots * p, dsm::block, "mg extremes");
    auto own = all.local();
    std::fill(own.begin(), own.end(), mg::extreme{0.5, -1, -1, -1, -1});  // no candidate
    std::copy(mine.begin(), mine.end(), own.begin());
    dsm::barrier();
    std::vector<mg::extreme> result(slots * p);
    all.get(0, result);
    std::erase_if(result, [](const mg::extreme& e) { return e.largest < 0; });
    return result;
  }

  double sum(double x) { return dsm::allreduce(x, dsm::sum{}); }
  double max(double x) { return dsm::allreduce(x, dsm::max{}); }

 private:
  std::vector<std::vector<double>> buffers_;
};

template <class Policy>
bool run(const npb::options& o, const mg::mg_class& c) {
  shared_grids<Policy> grids;
  mg::solver solver(grids, c);
  if (dsm::rank() == 0)
    fmt::print(" NAS Parallel Benchmarks (dsm) - MG Benchmark\n\n Size: {0:4}x{0:4}x{0:4}  (class {1})\n Iterations: {2:3}\n\n",
               c.n, c.name, c.iterations);
  const auto [norm, seconds] = solver.run([&](int it) {
    if (dsm::rank() == 0 && (it == 1 || it == c.iterations || it % 5 == 0)) fmt::print("  iter {:3}\n", it);
  });
  const double reference = c.l2_norm * (o.perturb_reference ? 1.0 + 1e-6 : 1.0);
  const bool verified = npb::within(norm, reference, mg::epsilon);
  if (dsm::rank() == 0) fmt::print("\n L2 Norm is  {:20.13e}\n Reference   {:20.13e}\n", norm, reference);
  npb::print({"MG", c.name, fmt::format("{0}x{0}x{0}", c.n), c.iterations, seconds, solver.mops(seconds),
              "floating point", Policy::name, verified});
  return verified;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* usage = "mg [--class S|W|A|B|C] [--policy direct|producer_consumer|single_writer|write_shared]";
  return npb::main(argc, argv, usage, [](const npb::options& o) {
    const auto& c = npb::find_class(mg::classes, o.problem_class);
    return npb::with_policy<dsm::direct, dsm::producer_consumer, dsm::single_writer, dsm::write_shared>(
        o, "mg", [&]<class P>() { return run<P>(o, c); });
  });
}

// cg_region: NPB's Conjugate Gradient (the numerics of cg_kernel.hpp) over
// plain pointers into a dsm::global_region: the search direction p and the
// per-rank partial sums are double* into the region, written with plain
// stores and read with plain loads; page faults and the policy keep them
// coherent across the barriers. The transparent face of the same protocol
// examples/npb/cg runs through shared_array (compare them with
// bench/npb/run.py --kernels cg,cg_region).
//
// p is one array of doubles from the region's start, homed in blocks of
// pages: a rank's rows are mostly its own pages, and the page where two
// ranks' rows meet is written by both (write_shared merges their diffs,
// single_writer moves the page).
//
//   dsmrun -n 2 build/examples/cg_region --class S [--policy write_shared|single_writer] [--prefetch]
#include "cg_kernel.hpp"
#include "npb.hpp"

#include <dsm/global_region.hpp>

#include <algorithm>
#include <span>

namespace {

template <class Policy>
class region_vectors {
 public:
  // p, n doubles from the region's start, then a page of partial sums.
  region_vectors(std::size_t n, bool prefetch)
      : n_(n),
        prefetch_(prefetch),
        ranks_(static_cast<std::size_t>(dsm::ranks())),
        per_rank_((n + ranks_ - 1) / ranks_),
        region_(sums_offset(n) + dsm::detail::page_bytes(), "cg"),
        p_(region_.template as<double>(0)),
        partial_(region_.template as<double>(sums_offset(n))) {}

  std::size_t first_row() const { return std::min(n_, per_rank_ * me_); }
  std::size_t rows() const { return std::min(n_, first_row() + per_rank_) - first_row(); }

  // This rank's rows stored into the region, a barrier, and the product
  // reads p through the region's pointer: plain loads, a fault per page
  // not read since the barrier (--prefetch: GMEM's willneed hint fetches
  // every page first, without a fault each).
  std::span<const double> whole(std::span<const double> mine) {
    std::copy(mine.begin(), mine.end(), p_ + first_row());
    dsm::barrier();
    if (prefetch_) region_.prefetch(p_, n_ * sizeof(double));
    return {p_, n_};
  }

  // Two sets of per-rank sums in one page, used alternately (a set is
  // rewritten only after a barrier every reader of it has passed); summed
  // in rank order, so every rank gets the same bits.
  std::pair<double, double> sums(double s1, double s2) {
    const std::size_t set = 2 * (reductions_++ % 2);
    partial_[4 * me_ + set] = s1;
    partial_[4 * me_ + set + 1] = s2;
    dsm::barrier();
    std::pair<double, double> total{0, 0};
    for (std::size_t r = 0; r < ranks_; ++r) total.first += partial_[4 * r + set], total.second += partial_[4 * r + set + 1];
    return total;
  }

  double max(double x) { return dsm::allreduce(x, dsm::max{}); }
  bool reports() const { return me_ == 0; }

 private:
  static std::size_t sums_offset(std::size_t n) {
    const std::size_t page = dsm::detail::page_bytes();
    return (n * sizeof(double) + page - 1) / page * page;
  }

  std::size_t n_;
  bool prefetch_;
  std::size_t ranks_, per_rank_;
  std::size_t me_ = static_cast<std::size_t>(dsm::rank());
  dsm::global_region<Policy> region_;
  double* p_;
  double* partial_;
  std::size_t reductions_ = 0;
};

template <class Policy>
bool run(const npb::options& o, const cg::cg_class& c, bool prefetch) {
  region_vectors<Policy> vectors(static_cast<std::size_t>(c.na), prefetch);
  const auto [zeta, seconds] = cg::solve(c, vectors, vectors.first_row(), vectors.rows());
  const bool verified = cg::verify(c, zeta, o.perturb_reference, dsm::rank() == 0);
  npb::print({"CG", c.name, std::to_string(c.na), c.niter, seconds, cg::mflops(c, seconds), "floating point",
              fmt::format("global_region {}{}", Policy::name, prefetch ? " prefetch" : ""), verified});
  return verified;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* usage = "cg_region [--class S|W|A|B|C] [--policy write_shared|single_writer] [--prefetch]";
  return npb::main(argc, argv, usage, [](npb::options o) {
    const auto& c = npb::find_class(cg::classes, o.problem_class);
    const bool prefetch = std::erase(o.rest, "--prefetch") > 0;
    return npb::with_policy<dsm::write_shared, dsm::single_writer>(o, "cg_region",
                                                                    [&]<class P>() { return run<P>(o, c, prefetch); });
  });
}

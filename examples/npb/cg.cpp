// cg: NPB's Conjugate Gradient kernel on dsm (the numerics are in
// cg_kernel.hpp).
//
// DSM shape: rows are block-distributed; x, z, r and q are only ever
// touched by the rank that owns the rows (plain local vectors), the search
// direction p is written by its owners into a shared array and read whole
// by everybody for the matrix-vector product, and the dot products go
// through a small shared array of per-rank partial sums, combined in rank
// order so every rank gets the same bits. Both arrays are rewritten before
// every read, so a cache would never hit: direct (one-sided gets) is the
// default; --policy reduction combines the partial sums in a
// reduction<sum> array (p direct); --policy producer_consumer pushes p and the partial sums to
// their readers at each barrier (the bulk get becomes a put before the
// barrier's synchronisation and a local copy after it), single_writer or
// write_shared show what caching costs
// (p then has 64 KiB units, so a read moves a rank's part in few misses).
//
//   dsmrun -n 2 build/examples/cg --class S [--policy direct|producer_consumer|reduction|single_writer|write_shared]
#include "cg_kernel.hpp"
#include "npb.hpp"

#include <array>
#include <type_traits>

namespace {

// The policy of each array: --policy names one for both, but reduction,
// which only the partial sums fit (p stays direct).
template <class Policy>
struct array_policies {
  using p = Policy;
  using sums = Policy;
};
template <>
struct array_policies<dsm::reduction<dsm::sum>> {
  using p = dsm::direct;
  using sums = dsm::reduction<dsm::sum>;
};

template <class Policy>
class shared_vectors {
  static constexpr bool reduced = std::is_same_v<Policy, dsm::reduction<dsm::sum>>;

 public:
  explicit shared_vectors(std::size_t n)
      : p_(n, dsm::block, dsm::unit_size{dsm::unit_size::max_bytes}, "cg p"),
        partial_(reduced ? 4 : 4 * static_cast<std::size_t>(dsm::ranks()), dsm::block, "cg partial sums"),
        all_p_(n) {}

  std::size_t first_row() const { return std::min(p_.distribution().global_index(me_, 0), p_.size()); }
  std::size_t rows() const { return p_.local_size(); }

  // Every product is followed by a reduction (a barrier) before p is
  // written again, so nobody overwrites it while another rank reads it.
  std::span<const double> whole(std::span<const double> mine) {
    std::copy(mine.begin(), mine.end(), p_.local().begin());
    dsm::barrier();
    p_.get(0, all_p_);
    return all_p_;
  }

  // Two sets of per-rank partial sums, used alternately: a set is written
  // again only two reductions later, after a barrier every reader of its
  // previous contents has passed, so one barrier per reduction suffices.
  std::pair<double, double> sums(double s1, double s2) {
    if constexpr (reduced) return combined_sums(s1, s2);
    const std::size_t set = 2 * (reductions_++ % 2);  // rank r's slots 4r .. 4r+3 are homed on r
    partial_[4 * me_ + set] = s1;
    partial_[4 * me_ + set + 1] = s2;
    dsm::barrier();
    std::vector<double> all(partial_.size());
    partial_.get(0, all);
    std::pair<double, double> total{0, 0};
    for (std::size_t k = 0; k < all.size(); k += 4) total.first += all[k + set], total.second += all[k + set + 1];
    return total;
  }

  double max(double x) { return dsm::allreduce(x, dsm::max{}); }
  bool reports() const { return me_ == 0; }

 private:
  // reduction<sum>: two sums per set, every rank combining into them; the
  // homes combine in rank order onto 0, the same bits as the direct
  // version's loop. A set's home starts it again two reductions after its
  // last read, past a barrier every reader of it has passed.
  std::pair<double, double> combined_sums(double s1, double s2) {
    const std::size_t set = 2 * (reductions_++ % 2);
    std::size_t l = 0;
    for (std::size_t g : partial_.local_indices()) {
      if (g == set || g == set + 1) partial_.local()[l] = 0.0;
      ++l;
    }
    const std::array<double, 2> mine{s1, s2};
    partial_.combine(set, mine);
    dsm::barrier();
    std::array<double, 2> total{};
    partial_.get(set, total);
    return {total[0], total[1]};
  }

  std::size_t me_ = static_cast<std::size_t>(dsm::rank());
  dsm::shared_array<double, typename array_policies<Policy>::p> p_;
  dsm::shared_array<double, typename array_policies<Policy>::sums> partial_;
  std::vector<double> all_p_;
  std::size_t reductions_ = 0;
};

template <class Policy>
bool run(const npb::options& o, const cg::cg_class& c) {
  shared_vectors<Policy> vectors(static_cast<std::size_t>(c.na));
  const auto [zeta, seconds] = cg::solve(c, vectors, vectors.first_row(), vectors.rows());
  const bool verified = cg::verify(c, zeta, o.perturb_reference, dsm::rank() == 0);
  npb::print({"CG", c.name, std::to_string(c.na), c.niter, seconds, cg::mflops(c, seconds), "floating point",
              Policy::name, verified});
  return verified;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* usage = "cg [--class S|W|A|B|C] [--policy direct|producer_consumer|reduction|single_writer|write_shared]";
  return npb::main(argc, argv, usage, [](const npb::options& o) {
    const auto& c = npb::find_class(cg::classes, o.problem_class);
    return npb::with_policy<dsm::direct, dsm::producer_consumer, dsm::reduction<dsm::sum>, dsm::single_writer,
                            dsm::write_shared>(o, "cg", [&]<class P>() { return run<P>(o, c); });
  });
}

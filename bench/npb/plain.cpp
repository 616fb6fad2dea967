// The NPB kernels as plain single-process programs, without dsm: the same
// generators, matrix, operators and arithmetic as examples/npb (the shared
// *_kernel.hpp headers), with every vector and grid in ordinary memory.
// bench/npb/run compares dsm's builds against these.
//
//   plain ep|is|cg|mg|ft [--class S|W|A|B|C]
#include "../../examples/npb/cg_kernel.hpp"
#include "../../examples/npb/ep_kernel.hpp"
#include "../../examples/npb/ft_kernel.hpp"
#include "../../examples/npb/is_kernel.hpp"
#include "../../examples/npb/mg_kernel.hpp"

#include <numeric>
#include <string_view>

namespace {

constexpr const char* policy = "plain";
constexpr const char* version = "plain";

bool run_ep(const npb::options& o) {
  const auto& c = npb::find_class(ep::classes, o.problem_class);
  const auto t0 = std::chrono::steady_clock::now();
  const ep::tallies t = ep::run_batches(0, ep::batches(c));
  const double seconds = npb::seconds_since(t0);
  const bool verified = ep::verify_and_print(c, t, seconds, o.perturb_reference);
  npb::print(ep::report(c, seconds, policy, verified), 1, version);
  return verified;
}

// NPB's bucket algorithm at one rank: every bucket is this rank's, so the
// keys ranked are its bucket-sorted keys, where they are.
bool run_is(const npb::options& o) {
  const auto& c = npb::find_class(is::classes, o.problem_class);
  const std::size_t n = std::size_t{1} << c.keys_log2, max_key = std::size_t{1} << c.max_key_log2;
  const int shift = c.max_key_log2 - is::buckets_log2;
  std::vector<is::key> keys(n), row(is::row_size), by_bucket, rank_of;
  is::generate_keys(keys, 0, max_key);
  int passed = 0;
  auto rank_keys = [&](int it) {
    is::mark_iteration(it, max_key, [&](std::size_t i, is::key k) { keys[i] = k; });
    is::sort_into_buckets(keys, shift, std::span(row).first(is::buckets), by_bucket);
    for (std::size_t i = 0; i < is::test_keys; ++i) row[is::buckets + i] = keys[static_cast<std::size_t>(c.test_index[i])];
    const is::bucket_plan plan(row, 1, n);
    const is::key_share share(plan, 0, shift);
    share.start_counting(rank_of);
    share.count(by_bucket, rank_of);
    share.finish_ranking(rank_of);
    passed += is::partial_checks(c, it, plan, share, rank_of, n, o.perturb_reference);
    return share;
  };
  rank_keys(1);  // NPB's untimed first iteration
  passed = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int it = 1; it < is::iterations; ++it) rank_keys(it);
  const is::key_share share = rank_keys(is::iterations);
  const double seconds = npb::seconds_since(t0);

  std::vector<is::key> sorted(n);
  passed += is::place_and_check(by_bucket, share, rank_of, sorted) == 0 ? 1 : 0;
  const int required = 5 * is::iterations + 1;
  fmt::print(" Verification checks passed: {} of {}\n", passed, required);
  npb::print(is::report(c, seconds, policy, passed == required), 1, version);
  return passed == required;
}

struct whole_vector {
  std::span<const double> whole(std::span<const double> v) const { return v; }
  std::pair<double, double> sums(double s1, double s2) const { return {s1, s2}; }
  double max(double x) const { return x; }
  bool reports() const { return true; }
};

bool run_cg(const npb::options& o) {
  const auto& c = npb::find_class(cg::classes, o.problem_class);
  whole_vector b;
  const auto [zeta, seconds] = cg::solve(c, b, 0, static_cast<std::size_t>(c.na));
  const bool verified = cg::verify(c, zeta, o.perturb_reference, true);
  npb::print({"CG", c.name, std::to_string(c.na), c.niter, seconds, cg::mflops(c, seconds), "floating point", policy,
              verified},
             1, version);
  return verified;
}

// Every plane of every grid in one vector.
struct local_grids {
  struct grid {
    int n;
    std::vector<double> values;
  };
  struct window {
    const grid* g;
    const double* operator()(int stored) const {
      const int f = ((stored - 1) % g->n + g->n) % g->n;
      return g->values.data() + static_cast<std::size_t>(f) * mg::level{g->n}.plane_size();
    }
  };
  grid make_grid(int n, const std::string&) {
    return {n, std::vector<double>(static_cast<std::size_t>(n) * mg::level{n}.plane_size())};
  }
  std::pair<int, int> own_planes(const grid& g) const { return {0, g.n}; }
  double* plane(grid& g, int f) const { return g.values.data() + static_cast<std::size_t>(f) * mg::level{g.n}.plane_size(); }
  window read(const grid& g, int, int) const { return {&g}; }
  void sync() const {}
  std::vector<mg::extreme> gather(std::span<const mg::extreme> mine) const { return {mine.begin(), mine.end()}; }
  double sum(double x) const { return x; }
  double max(double x) const { return x; }
};

bool run_mg(const npb::options& o) {
  const auto& c = npb::find_class(mg::classes, o.problem_class);
  local_grids grids;
  mg::solver solver(grids, c);
  const auto [norm, seconds] = solver.run();
  const double reference = c.l2_norm * (o.perturb_reference ? 1.0 + 1e-6 : 1.0);
  const bool verified = npb::within(norm, reference, mg::epsilon);
  fmt::print(" L2 Norm is  {:20.13e}\n Reference   {:20.13e}\n", norm, reference);
  npb::print({"MG", c.name, fmt::format("{0}x{0}x{0}", c.n), c.iterations, seconds, solver.mops(seconds),
              "floating point", policy, verified},
             1, version);
  return verified;
}

// One rank's slabs are the whole grid; no run ever moves.
struct local_slabs {
  std::vector<ft::complex> grid_values, spectrum_values;
  std::span<ft::complex> planes() { return grid_values; }
  std::span<ft::complex> spectrum() { return spectrum_values; }
  std::span<ft::complex> evolved() { return {}; }  // what would wait for other ranks: nothing
  void send(std::size_t, std::span<const ft::complex>) {}
  void fetch(std::size_t, std::span<ft::complex>) {}
  void barrier() {}
  void sum(std::span<double>) {}
};

bool run_ft(const npb::options& o) {
  const auto& c = npb::find_class(ft::classes, o.problem_class);
  const ft::geometry shape(c, 1);
  local_slabs slabs{std::vector<ft::complex>(shape.plane_block()), std::vector<ft::complex>(shape.column_block())};
  ft::solver solver(c, slabs, 1, 0);
  (void)solver.solve();
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<ft::complex> sums = solver.solve();
  const double seconds = npb::seconds_since(t0);
  const bool verified = ft::verify_and_print(c, sums, o.perturb_reference);
  npb::print(ft::report(c, seconds, policy, verified), 1, version);
  return verified;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr std::string_view usage = "plain ep|is|cg|mg|ft [--class S|W|A|B|C]";
  return npb::exit_code([&] {
    if (argc < 2) throw std::invalid_argument(fmt::format("usage: {}", usage));
    const std::string_view kernel = argv[1];
    const npb::options o = npb::parse(argc - 1, argv + 1, usage);
    if (!o.policy.empty() || !o.rest.empty()) throw std::invalid_argument(fmt::format("usage: {}", usage));
    if (kernel == "ep") return run_ep(o);
    if (kernel == "is") return run_is(o);
    if (kernel == "cg") return run_cg(o);
    if (kernel == "mg") return run_mg(o);
    if (kernel == "ft") return run_ft(o);
    throw std::invalid_argument(fmt::format("plain: no kernel {}\nusage: {}", kernel, usage));
  });
}

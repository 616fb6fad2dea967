// cg: NPB's Conjugate Gradient kernel on dsm: the inverse power method on
// NPB's random sparse symmetric matrix (makea), 25 CG iterations per outer
// iteration, verified against NPB's zeta (relative 1e-10).
//
// DSM shape: rows are block-distributed; x, z, r and q are only ever
// touched by the rank that owns the rows (plain local spans of shared
// arrays), the search direction p is written by its owners and read whole
// by everybody for the matrix-vector product (single_writer by default:
// each barrier drops the stale copies and a bulk read fetches every unit
// once), and the dot products go through a small shared array of per-rank
// partial sums, combined in rank order so every rank gets the same bits.
//
//   dsmrun -n 2 build/examples/npb/cg --class S [--policy single_writer|write_shared|direct]
#include "npb.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>

namespace {

struct cg_class {
  char name;
  int na, nonzer, niter;
  double shift, zeta;
};
constexpr std::array<cg_class, 4> classes{{{'S', 1400, 7, 15, 10.0, 8.5971775078648},
                                           {'W', 7000, 8, 15, 12.0, 10.362595087124},
                                           {'A', 14000, 11, 15, 20.0, 17.130235054029},
                                           {'B', 75000, 13, 75, 60.0, 22.712745482631}}};
constexpr double rcond = 0.1, epsilon = 1.0e-10;
constexpr int cg_iterations = 25;

// The rows [first, last) of NPB's matrix in compressed-row form, with
// global column indices. Every rank draws the whole sequence (it is one
// random stream) and keeps its rows.
struct sparse_rows {
  std::vector<std::size_t> start;  // last - first + 1 entries
  std::vector<int> column;
  std::vector<double> value;
};

sparse_rows make_matrix(const cg_class& c, std::size_t first, std::size_t last) {
  const int n = c.na, nonzer = c.nonzer;
  npb::lcg g(314159265.0);
  g.next();  // NPB draws one number (its initial zeta) before the matrix
  int nn1 = 1;
  do nn1 *= 2;
  while (nn1 < n);

  // Outer-product vectors: for each i, nonzer + 1 (position, value) pairs.
  std::vector<std::vector<std::pair<int, double>>> outer(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto& v = outer[static_cast<std::size_t>(i)];
    while (static_cast<int>(v.size()) < nonzer) {
      const double value = g.next();
      const int position = static_cast<int>(nn1 * g.next()) + 1;
      if (position > n) continue;
      if (std::any_of(v.begin(), v.end(), [&](const auto& e) { return e.first == position; })) continue;
      v.emplace_back(position, value);
    }
    bool set = false;  // the diagonal element 0.5
    for (auto& e : v)
      if (e.first == i + 1) e.second = 0.5, set = true;
    if (!set) v.emplace_back(i + 1, 0.5);
    for (auto& e : v) e.first -= 1;
  }

  // Sum the outer products, scaled down geometrically, row by row; keep
  // this rank's rows. Duplicates are summed in generation order, as NPB does.
  const double ratio = std::pow(rcond, 1.0 / static_cast<double>(n));
  std::vector<std::vector<std::pair<int, double>>> rows(last - first);
  double size = 1.0;
  for (int i = 0; i < n; ++i) {
    const auto& v = outer[static_cast<std::size_t>(i)];
    for (const auto& [j, aj] : v) {
      if (static_cast<std::size_t>(j) < first || static_cast<std::size_t>(j) >= last) continue;
      auto& row = rows[static_cast<std::size_t>(j) - first];
      const double scale = size * aj;
      for (const auto& [jcol, ajcol] : v) {
        double va = ajcol * scale;
        if (jcol == j && j == i) va += rcond - c.shift;
        auto at = std::lower_bound(row.begin(), row.end(), jcol, [](const auto& e, int col) { return e.first < col; });
        if (at != row.end() && at->first == jcol) at->second += va;
        else row.insert(at, {jcol, va});
      }
    }
    size *= ratio;
  }
  sparse_rows m;
  m.start.push_back(0);
  for (const auto& row : rows) {
    for (const auto& [col, val] : row) {
      m.column.push_back(col);
      m.value.push_back(val);
    }
    m.start.push_back(m.column.size());
  }
  return m;
}

template <class Policy>
bool run(const npb::options& o, const cg_class& c) {
  const int me = dsm::rank(), p = dsm::ranks();
  const auto n = static_cast<std::size_t>(c.na), up = static_cast<std::size_t>(p);

  dsm::shared_array<double, Policy> x(n, dsm::block, "cg x"), z(n, dsm::block, "cg z"), r(n, dsm::block, "cg r"),
      q(n, dsm::block, "cg q"), dir(n, dsm::block, "cg p");
  // Two sets of per-rank partial sums, used alternately: a set is written
  // again only two reductions later, after a barrier every reader of its
  // previous contents has passed, so one barrier per reduction suffices.
  dsm::shared_array<double, Policy> partial(4 * up, dsm::block, "cg partial sums");
  const std::size_t first = std::min(x.distribution().global_index(static_cast<std::size_t>(me), 0), n);
  const std::size_t rows = x.local_size();
  const sparse_rows a = make_matrix(c, first, first + rows);
  std::vector<double> all_p(n);
  std::size_t reductions = 0;

  // Two dot products over this rank's rows, summed over all ranks in rank
  // order through the shared partial sums.
  auto dots = [&](std::span<const double> a1, std::span<const double> b1, std::span<const double> a2,
                  std::span<const double> b2) {
    double s1 = 0, s2 = 0;
    for (std::size_t k = 0; k < a1.size(); ++k) s1 += a1[k] * b1[k];
    for (std::size_t k = 0; k < a2.size(); ++k) s2 += a2[k] * b2[k];
    const std::size_t set = 2 * (reductions++ % 2);  // rank r's slots 4r .. 4r+3 are homed on r
    partial[4 * static_cast<std::size_t>(me) + set] = s1;
    partial[4 * static_cast<std::size_t>(me) + set + 1] = s2;
    dsm::barrier();
    std::vector<double> all(4 * up);
    partial.get(0, all);
    std::pair<double, double> sums{0, 0};
    for (std::size_t k = 0; k < up; ++k) sums.first += all[4 * k + set], sums.second += all[4 * k + set + 1];
    return sums;
  };
  // out = A v for this rank's rows. Every multiplication is followed by a
  // reduction (a barrier) before p is written again, so nobody overwrites
  // it while another rank still reads it.
  auto multiply = [&](std::span<const double> vector_part, std::span<double> out) {
    std::copy(vector_part.begin(), vector_part.end(), dir.local().begin());
    dsm::barrier();
    dir.get(0, all_p);
    for (std::size_t k = 0; k < rows; ++k) {
      double s = 0;
      for (std::size_t e = a.start[k]; e < a.start[k + 1]; ++e) s += a.value[e] * all_p[static_cast<std::size_t>(a.column[e])];
      out[k] = s;
    }
  };

  auto xs = x.local(), zs = z.local(), rs = r.local(), qs = q.local();
  std::vector<double> ps(rows);
  std::fill(xs.begin(), xs.end(), 1.0);
  double zeta = 0, rnorm = 0;
  dsm::allreduce(0);
  const auto t0 = std::chrono::steady_clock::now();
  for (int it = 1; it <= c.niter; ++it) {
    // conj_grad
    std::fill(qs.begin(), qs.end(), 0.0);
    std::fill(zs.begin(), zs.end(), 0.0);
    std::copy(xs.begin(), xs.end(), rs.begin());
    std::copy(rs.begin(), rs.end(), ps.begin());
    double rho = dots(rs, rs, {}, {}).first;
    for (int cgit = 1; cgit <= cg_iterations; ++cgit) {
      const double rho0 = rho;
      multiply(ps, qs);
      const double d = dots(ps, qs, {}, {}).first;
      const double alpha = rho0 / d;
      for (std::size_t k = 0; k < rows; ++k) {
        zs[k] += alpha * ps[k];
        rs[k] -= alpha * qs[k];
      }
      rho = dots(rs, rs, {}, {}).first;
      const double beta = rho / rho0;
      for (std::size_t k = 0; k < rows; ++k) ps[k] = rs[k] + beta * ps[k];
    }
    multiply(zs, rs);  // r = A z
    double local_sum = 0;
    for (std::size_t k = 0; k < rows; ++k) local_sum += (xs[k] - rs[k]) * (xs[k] - rs[k]);
    const double one = 1.0;
    rnorm = std::sqrt(dots(std::span<const double>(&local_sum, 1), std::span<const double>(&one, 1), {}, {}).first);
    const auto [xz, zz] = dots(xs, zs, zs, zs);
    zeta = c.shift + 1.0 / xz;
    if (me == 0) {
      if (it == 1) fmt::print("\n   iteration           ||r||                 zeta\n");
      fmt::print("    {:5}       {:20.14e}{:20.13f}\n", it, rnorm, zeta);
    }
    const double norm = 1.0 / std::sqrt(zz);
    for (std::size_t k = 0; k < rows; ++k) xs[k] = norm * zs[k];
  }
  const double seconds = dsm::allreduce(npb::seconds_since(t0), dsm::max{});
  const double reference = c.zeta * (o.perturb_reference ? 1.0 + 1e-6 : 1.0);
  const bool verified = npb::within(zeta, reference, epsilon);
  if (me == 0) fmt::print(" Zeta is    {:20.13e}\n Reference  {:20.13e}\n", zeta, reference);
  const double nz = static_cast<double>(c.nonzer) * (c.nonzer + 1);
  const double mflops = 2.0 * c.niter * c.na * (3.0 + nz + 25.0 * (5.0 + nz) + 3.0) / seconds / 1e6;
  npb::print({"CG", c.name, std::to_string(c.na), c.niter, seconds, mflops, "floating point", Policy::name, verified});
  return verified;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* usage = "cg [--class S|W|A|B] [--policy single_writer|write_shared|direct]";
  return npb::main(argc, argv, usage, [](const npb::options& o) {
    const auto& c = npb::find_class(classes, o.problem_class);
    return npb::with_policy<dsm::single_writer, dsm::write_shared, dsm::direct>(
        o, "cg", [&]<class P>() { return run<P>(o, c); });
  });
}

// NPB's Conjugate Gradient kernel without dsm: the problem classes, NPB's
// random sparse symmetric matrix (makea) and the inverse power method with
// 25 CG iterations per outer iteration, verified against NPB's zeta
// (relative 1e-10). Written once over a backend, so the dsm build and the
// plain single-process build run the same arithmetic:
//
//   std::span<const double> whole(std::span<const double> mine)
//       the whole vector whose rows this rank holds as `mine`
//   std::pair<double, double> sums(double, double)
//       two partial sums over all ranks
//   double max(double)
//   bool reports()  whether this rank prints the iteration lines
#pragma once

#include "common.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace cg {

struct cg_class {
  char name;
  int na, nonzer, niter;
  double shift, zeta;
};
constexpr std::array<cg_class, 5> classes{{{'S', 1400, 7, 15, 10.0, 8.5971775078648},
                                           {'W', 7000, 8, 15, 12.0, 10.362595087124},
                                           {'A', 14000, 11, 15, 20.0, 17.130235054029},
                                           {'B', 75000, 13, 75, 60.0, 22.712745482631},
                                           {'C', 150000, 15, 75, 110.0, 28.973605592845}}};
constexpr double rcond = 0.1, epsilon = 1.0e-10;
constexpr int cg_iterations = 25;

// The rows [first, last) of NPB's matrix in compressed-row form, with
// global column indices. Every rank draws the whole sequence (it is one
// random stream) and keeps its rows.
struct sparse_rows {
  std::vector<std::size_t> start;  // last - first + 1 entries
  std::vector<int> column;
  std::vector<double> value;

  // out = these rows times the whole vector v. Each row is summed in two
  // interleaved partial sums (even and odd entries, added at the end): two
  // independent chains of additions instead of NPB's one, measured 9%
  // faster on class A; the bits differ from NPB's in the last places and
  // zeta still verifies (NPB's rules leave the order of summation free).
  // Through restrict-qualified pointers the loop bounds and bases stay in
  // registers (5-10% faster than through the vectors).
  void multiply(std::span<const double> v, std::span<double> out) const {
    const std::size_t* __restrict row_start = start.data();
    const int* __restrict col = column.data();
    const double* __restrict val = value.data();
    const double* __restrict x = v.data();
    double* __restrict y = out.data();
    const std::size_t rows = start.size() - 1;
    for (std::size_t k = 0; k < rows; ++k) {
      double s0 = 0, s1 = 0;
      std::size_t e = row_start[k];
      const std::size_t end = row_start[k + 1];
      for (; e + 1 < end; e += 2) {
        s0 += val[e] * x[static_cast<std::size_t>(col[e])];
        s1 += val[e + 1] * x[static_cast<std::size_t>(col[e + 1])];
      }
      if (e < end) s0 += val[e] * x[static_cast<std::size_t>(col[e])];
      y[k] = s0 + s1;
    }
  }
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

// Rows [first, first + rows) of the solution; returns zeta and seconds.
template <class Backend>
std::pair<double, double> solve(const cg_class& c, Backend& b, std::size_t first, std::size_t rows) {
  const sparse_rows a = make_matrix(c, first, first + rows);
  std::vector<double> x(rows, 1.0), z(rows), r(rows), q(rows), p(rows);

  auto dots = [&](std::span<const double> a1, std::span<const double> b1, std::span<const double> a2,
                  std::span<const double> b2) {
    double s1 = 0, s2 = 0;
    for (std::size_t k = 0; k < a1.size(); ++k) s1 += a1[k] * b1[k];
    for (std::size_t k = 0; k < a2.size(); ++k) s2 += a2[k] * b2[k];
    return b.sums(s1, s2);
  };
  auto dot = [&](std::span<const double> a1, std::span<const double> b1) { return dots(a1, b1, {}, {}).first; };
  // out = A v for this rank's rows
  auto multiply = [&](std::span<const double> v, std::span<double> out) { a.multiply(b.whole(v), out); };

  // One iteration of the inverse power method (NPB's conj_grad, then the
  // new x); returns zeta.
  auto power_step = [&](int it, bool report) {
    std::fill(q.begin(), q.end(), 0.0);
    std::fill(z.begin(), z.end(), 0.0);
    std::copy(x.begin(), x.end(), r.begin());
    std::copy(r.begin(), r.end(), p.begin());
    double rho = dot(r, r);
    for (int cgit = 1; cgit <= cg_iterations; ++cgit) {
      const double rho0 = rho;
      multiply(p, q);
      const double alpha = rho0 / dot(p, q);
      double rr = 0;  // r.r summed as the update goes (the order of NPB's separate loop)
      for (std::size_t k = 0; k < rows; ++k) {
        z[k] += alpha * p[k];
        r[k] -= alpha * q[k];
        rr += r[k] * r[k];
      }
      rho = b.sums(rr, 0.0).first;
      const double beta = rho / rho0;
      for (std::size_t k = 0; k < rows; ++k) p[k] = r[k] + beta * p[k];
    }
    multiply(z, r);  // r = A z
    double local_sum = 0;
    for (std::size_t k = 0; k < rows; ++k) local_sum += (x[k] - r[k]) * (x[k] - r[k]);
    const double rnorm = std::sqrt(b.sums(local_sum, 0.0).first);
    const auto [xz, zz] = dots(x, z, z, z);
    const double zeta = c.shift + 1.0 / xz;
    if (report) {
      if (it == 1) fmt::print("\n   iteration           ||r||                 zeta\n");
      fmt::print("    {:5}       {:20.14e}{:20.13f}\n", it, rnorm, zeta);
    }
    const double norm = 1.0 / std::sqrt(zz);
    for (std::size_t k = 0; k < rows; ++k) x[k] = norm * z[k];
    return zeta;
  };

  // NPB's untimed iteration (every page and cache line touched once), then
  // the start vector again.
  (void)power_step(0, false);
  std::fill(x.begin(), x.end(), 1.0);
  double zeta = 0;
  b.max(0.0);  // a common start line
  const auto t0 = std::chrono::steady_clock::now();
  for (int it = 1; it <= c.niter; ++it) zeta = power_step(it, b.reports());
  return {zeta, b.max(npb::seconds_since(t0))};
}

inline double mflops(const cg_class& c, double seconds) {
  const double nz = static_cast<double>(c.nonzer) * (c.nonzer + 1);
  return 2.0 * c.niter * c.na * (3.0 + nz + 25.0 * (5.0 + nz) + 3.0) / seconds / 1e6;
}

// Prints zeta against the reference; whether it verifies.
inline bool verify(const cg_class& c, double zeta, bool perturb_reference, bool print) {
  const double reference = c.zeta * (perturb_reference ? 1.0 + 1e-6 : 1.0);
  if (print) fmt::print(" Zeta is    {:20.13e}\n Reference  {:20.13e}\n", zeta, reference);
  return npb::within(zeta, reference, epsilon);
}

}  // namespace cg

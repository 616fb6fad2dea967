// NPB's MultiGrid kernel, written once over planes: V-cycles of a 3D
// Poisson-like problem on a periodic n^3 grid with log2(n) levels, verified
// by the L2 norm of the final residual (NPB's values, relative 1e-8).
//
// The numerics are NPB's operators (resid, psinv, rprj3, interp, norm2u3,
// zran3) in NPB's arithmetic order, each computing one output plane from
// pointers to its input planes. Every plane is stored with its own periodic
// ghost rows and columns ((n+2)^2 values); ghost planes are not stored: the
// plane before 1 and after n are found by wrapping. A `Grids` backend owns
// the storage, so one driver serves the dsm build (planes spread over
// ranks, neighbours' planes read through the shared arrays) and the plain
// single-process build the benchmark compares it with:
//
//   grid make_grid(int n, std::string name)  one level's n planes of (n+2)^2
//   std::pair<int, int> own_planes(grid&)    [first, last) of this rank
//   double* plane(grid&, int f)              own plane f (0-based), writable
//   window read(grid&, int lo, int hi)       planes lo..hi counted with the
//                                            ghost plane as 0 (wrapping), by
//                                            w(i): const double*
//   void sync()                              all writes before it are seen
//                                            by all reads after it
//   std::vector<extreme> gather(std::span<const extreme>)  everybody's
//   double sum(double), double max(double)   over ranks
#pragma once

#include "common.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mg {

struct mg_class {
  char name;
  int n, iterations;
  double l2_norm;
};
constexpr std::array<mg_class, 5> classes{{{'S', 32, 4, 0.5307707005734e-04},
                                           {'W', 128, 4, 0.6467329375339e-05},
                                           {'A', 256, 4, 0.2433365309069e-05},
                                           {'B', 256, 20, 0.1800564401355e-05},
                                           {'C', 512, 20, 0.5706732285740e-06}}};
constexpr double epsilon = 1.0e-8;

// The residual operator A and the smoother S(a) (classes S, W, A) or S(b) (B, C).
// NPB's loops leave out a[1] and c[3], which are zero.
struct coefficients {
  std::array<double, 4> a{-8.0 / 3.0, 0.0, 1.0 / 6.0, 1.0 / 12.0};
  std::array<double, 4> c;
  explicit coefficients(char problem_class)
      : c(problem_class == 'B' || problem_class == 'C' ? std::array<double, 4>{-3.0 / 17.0, 1.0 / 33.0, -1.0 / 61.0, 0.0}
                               : std::array<double, 4>{-3.0 / 8.0, 1.0 / 32.0, -1.0 / 64.0, 0.0}) {}
};

// One of the 10 largest or smallest values of zran3's random field, with
// its place (fixed-width fields: it crosses between ranks).
struct extreme {
  double value;
  std::int32_t x, y, z, largest;
};

// Plane operators. `m` is the stored row length n + 2; (i2, i1) are stored
// coordinates, the ghosts at 0 and m - 1.
namespace plane {

inline std::size_t at(int m, int i2, int i1) { return static_cast<std::size_t>(i2) * static_cast<std::size_t>(m) + static_cast<std::size_t>(i1); }

// comm3 within a plane: the periodic ghost columns, then the ghost rows
// (whole, ghost columns included), as NPB orders them.
inline void refresh_ghosts(double* p, int m) {
  for (int i2 = 1; i2 < m - 1; ++i2) {
    p[at(m, i2, 0)] = p[at(m, i2, m - 2)];
    p[at(m, i2, m - 1)] = p[at(m, i2, 1)];
  }
  std::copy_n(p + at(m, m - 2, 0), m, p + at(m, 0, 0));
  std::copy_n(p + at(m, 1, 0), m, p + at(m, m - 1, 0));
}

// The sums of the four edge neighbours (s1) and four corner neighbours
// (s2) of each point of row i2 in the plane's normal direction, in NPB's
// order; resid and psinv share them.
inline void neighbour_sums(const double* lo, const double* mid, const double* hi, int m, int i2, double* __restrict s1,
                           double* __restrict s2) {
  const double *__restrict mid_up = mid + at(m, i2 - 1, 0), *__restrict mid_down = mid + at(m, i2 + 1, 0);
  const double *__restrict lo_row = lo + at(m, i2, 0), *__restrict hi_row = hi + at(m, i2, 0);
  const double *__restrict lo_up = lo + at(m, i2 - 1, 0), *__restrict lo_down = lo + at(m, i2 + 1, 0);
  const double *__restrict hi_up = hi + at(m, i2 - 1, 0), *__restrict hi_down = hi + at(m, i2 + 1, 0);
  for (int i1 = 0; i1 < m; ++i1) {
    s1[i1] = mid_up[i1] + mid_down[i1] + lo_row[i1] + hi_row[i1];
    s2[i1] = lo_up[i1] + lo_down[i1] + hi_up[i1] + hi_down[i1];
  }
}

// r = v - A u on one plane. The planes never overlap except that v may be r
// itself (NPB's resid(u, r, r)); that case reads r in place, so that every
// pointer the loops see is restrict-qualified: the compiler then keeps the
// coefficients in registers and vectorises without overlap checks.
inline void resid(const double* u_lo, const double* u, const double* u_hi, const double* v, double* r, int m,
                  const std::array<double, 4>& a, std::vector<double>& scratch) {
  scratch.resize(2 * static_cast<std::size_t>(m));
  double *__restrict u1 = scratch.data(), *__restrict u2 = u1 + m;
  const double a0 = a[0], a2 = a[2], a3 = a[3];
  // x - A u at i1, for x read from v's row or (in place) from r's own.
  auto residual = [&](double x, const double* __restrict u_row, int i1) {
    return x - a0 * u_row[i1] - a2 * (u2[i1] + u1[i1 - 1] + u1[i1 + 1]) - a3 * (u2[i1 - 1] + u2[i1 + 1]);
  };
  auto rows = [&](const double* __restrict v_row, double* __restrict r_row, const double* __restrict u_row) {
    for (int i1 = 1; i1 < m - 1; ++i1) r_row[i1] = residual(v_row[i1], u_row, i1);
  };
  auto rows_in_place = [&](double* __restrict r_row, const double* __restrict u_row) {
    for (int i1 = 1; i1 < m - 1; ++i1) r_row[i1] = residual(r_row[i1], u_row, i1);
  };
  for (int i2 = 1; i2 < m - 1; ++i2) {
    neighbour_sums(u_lo, u, u_hi, m, i2, u1, u2);
    const std::size_t row = at(m, i2, 0);
    if (v == r)
      rows_in_place(r + row, u + row);
    else
      rows(v + row, r + row, u + row);
  }
  refresh_ghosts(r, m);
}

// u = u + C r on one plane.
inline void psinv(const double* r_lo, const double* r, const double* r_hi, double* u, int m,
                  const std::array<double, 4>& c, std::vector<double>& scratch) {
  scratch.resize(2 * static_cast<std::size_t>(m));
  double *__restrict r1 = scratch.data(), *__restrict r2 = r1 + m;
  const double c0 = c[0], c1 = c[1], c2 = c[2];
  for (int i2 = 1; i2 < m - 1; ++i2) {
    neighbour_sums(r_lo, r, r_hi, m, i2, r1, r2);
    const std::size_t row = at(m, i2, 0);
    double* __restrict u_row = u + row;
    const double* __restrict r_row = r + row;
    for (int i1 = 1; i1 < m - 1; ++i1)
      u_row[i1] = u_row[i1] + c0 * r_row[i1] + c1 * (r_row[i1 - 1] + r_row[i1 + 1] + r1[i1]) + c2 * (r2[i1] + r1[i1 - 1] + r1[i1 + 1]);
  }
  refresh_ghosts(u, m);
}

// rprj3: one coarse plane s (row length mc) from the fine planes f0, f1,
// f2 around it (row length 2 mc - 2), by trilinear projection.
inline void restrict_to(const double* __restrict f0, const double* __restrict f1, const double* __restrict f2, double* __restrict s, int mc,
                        std::vector<double>& scratch) {
  const int mf = 2 * mc - 2;
  scratch.resize(2 * static_cast<std::size_t>(mf));
  double *__restrict x1 = scratch.data(), *__restrict y1 = x1 + mf;
  for (int j2 = 1; j2 < mc - 1; ++j2) {
    const int i2 = 2 * j2 - 1;
    const std::size_t r0 = at(mf, i2, 0), r1 = at(mf, i2 + 1, 0), r2 = at(mf, i2 + 2, 0);
    for (int j1 = 1; j1 < mc; ++j1) {
      const int i1 = 2 * j1 - 1;
      x1[i1] = f1[r0 + i1] + f1[r2 + i1] + f0[r1 + i1] + f2[r1 + i1];
      y1[i1] = f0[r0 + i1] + f2[r0 + i1] + f0[r2 + i1] + f2[r2 + i1];
    }
    for (int j1 = 1; j1 < mc - 1; ++j1) {
      const int i1 = 2 * j1 - 1;
      const double y2 = f0[r0 + i1 + 1] + f2[r0 + i1 + 1] + f0[r2 + i1 + 1] + f2[r2 + i1 + 1];
      const double x2 = f1[r0 + i1 + 1] + f1[r2 + i1 + 1] + f0[r1 + i1 + 1] + f2[r1 + i1 + 1];
      s[at(mc, j2, j1)] = 0.5 * f1[r1 + i1 + 1] + 0.25 * (f1[r1 + i1] + f1[r1 + i1 + 2] + x2) +
                          0.125 * (x1[i1] + x1[i1 + 2] + y2) + 0.0625 * (y1[i1] + y1[i1 + 2]);
    }
  }
  refresh_ghosts(s, mc);
}

// interp: adds to the fine plane u (stored index i3f, row length 2 mc - 2)
// the trilinear interpolation of the coarse planes z0 = i3f / 2 and z1
// after it (row length mc). Even planes lie on z0; odd ones between.
inline void interpolate_to(const double* __restrict z0, const double* __restrict z1, double* __restrict u, int i3f, int mc,
                           std::vector<double>& scratch) {
  const int mf = 2 * mc - 2;
  scratch.resize(2 * static_cast<std::size_t>(mc));
  double *__restrict a = scratch.data(), *__restrict b = a + mc;
  const bool between = i3f % 2 == 1;
  for (int i2 = 0; i2 < mc - 1; ++i2) {
    const std::size_t c0 = at(mc, i2, 0), c1 = at(mc, i2 + 1, 0);
    // a, b: NPB's z1 (even planes) or z2, z3 (odd planes)
    for (int i1 = 0; i1 < mc; ++i1) {
      const double along = z0[c1 + i1] + z0[c0 + i1];
      if (between) {
        a[i1] = z1[c0 + i1] + z0[c0 + i1];
        b[i1] = z1[c1 + i1] + z1[c0 + i1] + along;
      } else {
        a[i1] = along;
      }
    }
    double *__restrict even = u + at(mf, 2 * i2, 0), *__restrict odd = u + at(mf, 2 * i2 + 1, 0);
    if (between) {
      for (int i1 = 0; i1 < mc - 1; ++i1) {
        even[2 * i1] = even[2 * i1] + 0.5 * a[i1];
        even[2 * i1 + 1] = even[2 * i1 + 1] + 0.25 * (a[i1] + a[i1 + 1]);
      }
      for (int i1 = 0; i1 < mc - 1; ++i1) {
        odd[2 * i1] = odd[2 * i1] + 0.25 * b[i1];
        odd[2 * i1 + 1] = odd[2 * i1 + 1] + 0.125 * (b[i1] + b[i1 + 1]);
      }
    } else {
      for (int i1 = 0; i1 < mc - 1; ++i1) {
        even[2 * i1] = even[2 * i1] + z0[c0 + i1];
        even[2 * i1 + 1] = even[2 * i1 + 1] + 0.5 * (z0[c0 + i1 + 1] + z0[c0 + i1]);
      }
      for (int i1 = 0; i1 < mc - 1; ++i1) {
        odd[2 * i1] = odd[2 * i1] + 0.5 * a[i1];
        odd[2 * i1 + 1] = odd[2 * i1 + 1] + 0.25 * (a[i1] + a[i1 + 1]);
      }
    }
  }
  refresh_ghosts(u, mf);
}

}  // namespace plane

// One level's size: n^3 interior points, planes of (n+2)^2 stored values.
struct level {
  int n;
  int row() const { return n + 2; }
  std::size_t plane_size() const { return static_cast<std::size_t>(row()) * static_cast<std::size_t>(row()); }
};

// The driver: NPB's main program over a Grids backend.
template <class Grids>
class solver {
 public:
  using grid = typename Grids::grid;

  solver(Grids& g, const mg_class& c) : g_(g), class_(c), k_(c.name) {
    top_ = std::countr_zero(static_cast<unsigned>(c.n));
    for (int k = 1; k <= top_; ++k) {
      const int n = c.n >> (top_ - k);
      u_.push_back(g_.make_grid(n, fmt::format("mg u (level {})", k)));
      r_.push_back(g_.make_grid(n, fmt::format("mg r (level {})", k)));
    }
    v_.emplace(g_.make_grid(c.n, "mg v"));
  }

  // NPB's initialisation (one untimed V-cycle, then the problem again),
  // the timed iterations; returns the final L2 norm and seconds.
  std::pair<double, double> run(const std::function<void(int)>& on_iteration = {}) {
    setup_problem();
    resid_and_cycle();
    resid(u(top_), *v_, r(top_));
    setup_problem();
    g_.max(0.0);  // a common start line
    const auto t0 = std::chrono::steady_clock::now();
    for (int it = 1; it <= class_.iterations; ++it) {  // NPB: resid, then (mg3P, resid) per iteration
      if (on_iteration) on_iteration(it);
      resid_and_cycle();
    }
    resid(u(top_), *v_, r(top_));
    const double norm = l2_norm(r(top_), class_.n);
    return {norm, g_.max(npb::seconds_since(t0))};
  }

  double mops(double seconds) const {
    const double points = std::pow(static_cast<double>(class_.n), 3);
    return 58.0 * class_.iterations * points * 1e-6 / seconds;
  }

 private:
  grid& u(int k) { return u_[static_cast<std::size_t>(k - 1)]; }
  grid& r(int k) { return r_[static_cast<std::size_t>(k - 1)]; }
  static level at_level(const grid& x) { return level{x.n}; }

  // zero3 u, zran3 v
  void setup_problem() {
    for (auto& x : u_) zero(x);
    random_charges(*v_);
    g_.sync();
  }

  void zero(grid& x) {
    const auto [first, last] = g_.own_planes(x);
    for (int f = first; f < last; ++f) std::fill_n(g_.plane(x, f), at_level(x).plane_size(), 0.0);
  }

  // NPB's resid on the finest level, then its V-cycle (mg3P): one sync
  // after every operator whose output a neighbour reads next.
  void resid_and_cycle() {
    resid_and_restrict(u(top_), *v_, r(top_), r(top_ - 1));
    for (int k = top_ - 1; k >= 2; --k) {
      restrict_residual(r(k), r(k - 1));
      g_.sync();
    }
    zero(u(1));
    smooth(r(1), u(1));
    for (int k = 2; k < top_; ++k) {
      zero(u(k));
      interpolate(u(k - 1), u(k));
      g_.sync();
      resid_and_smooth(u(k), r(k), r(k));
    }
    interpolate(u(top_ - 1), u(top_));
    g_.sync();
    resid_and_smooth(u(top_), *v_, r(top_));
  }

  // resid (r = v - A u), then the restriction of r to the coarser level
  // (rprj3), pipelined as resid_and_smooth is: a coarse plane is projected
  // once resid has written the three fine planes it reads, while they are
  // in cache, if they are this rank's; the others wait for the sync.
  void resid_and_restrict(grid& ux, grid& vx, grid& rx, grid& coarse) {
    const auto [first, last] = g_.own_planes(rx);
    const auto [coarse_first, coarse_last] = g_.own_planes(coarse);
    const int m = at_level(rx).row(), mc = at_level(coarse).row();
    int done_first = 0, done_last = 0;  // the coarse planes projected before the sync
    if (first < last) {
      const auto w = g_.read(ux, first, last + 1);
      for (int f = first; f < last; ++f) {
        plane::resid(w(f), w(f + 1), w(f + 2), g_.plane(vx, f), g_.plane(rx, f), m, k_.a, scratch_);
        const int j = (f - 2) / 2;  // coarse plane j reads fine planes 2j .. 2j + 2
        if (f % 2 == 0 && f >= 2 && j >= coarse_first && j < coarse_last && 2 * j >= first) {
          plane::restrict_to(g_.plane(rx, 2 * j), g_.plane(rx, 2 * j + 1), g_.plane(rx, 2 * j + 2), g_.plane(coarse, j), mc,
                             scratch_);
          if (done_first == done_last) done_first = j;
          done_last = j + 1;
        }
      }
    }
    g_.sync();
    if (coarse_first < coarse_last && (done_first != coarse_first || done_last != coarse_last)) {
      const auto w = g_.read(rx, 2 * coarse_first + 1, 2 * coarse_last + 1);
      for (int j = coarse_first; j < coarse_last; ++j)
        if (j < done_first || j >= done_last)
          plane::restrict_to(w(2 * j + 1), w(2 * j + 2), w(2 * j + 3), g_.plane(coarse, j), mc, scratch_);
    }
    g_.sync();
  }

  // resid (r = v - A u), then smooth (u = u + C r), pipelined plane by
  // plane: psinv of plane f - 1 follows resid of plane f, so it reads the
  // planes of r just written, from the cache, where two sweeps read them
  // back from memory; every point's arithmetic is NPB's. psinv of a
  // rank's first and last plane reads a neighbour's plane of r, and
  // changes a plane of u the neighbour's resid reads: those two wait for
  // the sync. Two syncs, as resid and smooth apart.
  void resid_and_smooth(grid& ux, grid& vx, grid& rx) {
    const auto [first, last] = g_.own_planes(rx);
    const int m = at_level(rx).row();
    if (first < last) {
      const auto w = g_.read(ux, first, last + 1);
      for (int f = first; f < last; ++f) {
        plane::resid(w(f), w(f + 1), w(f + 2), g_.plane(vx, f), g_.plane(rx, f), m, k_.a, scratch_);
        if (f - 1 > first)
          plane::psinv(g_.plane(rx, f - 2), g_.plane(rx, f - 1), g_.plane(rx, f), g_.plane(ux, f - 1), m, k_.c, scratch_);
      }
    }
    g_.sync();
    if (first < last) {
      const auto w = g_.read(rx, first, last + 1);
      plane::psinv(w(first), w(first + 1), w(first + 2), g_.plane(ux, first), m, k_.c, scratch_);
      if (last - 1 > first) plane::psinv(w(last - 1), w(last), w(last + 1), g_.plane(ux, last - 1), m, k_.c, scratch_);
    }
    g_.sync();
  }

  // r = v - A u, then a sync (v and r may be one grid).
  void resid(grid& ux, grid& vx, grid& rx) {
    const auto [first, last] = g_.own_planes(rx);
    if (first < last) {
      const int m = at_level(rx).row();
      const auto w = g_.read(ux, first, last + 1);
      for (int f = first; f < last; ++f)
        plane::resid(w(f), w(f + 1), w(f + 2), g_.plane(vx, f), g_.plane(rx, f), m, k_.a, scratch_);
    }
    g_.sync();
  }

  // u = u + C r, then a sync.
  void smooth(grid& rx, grid& ux) {
    const auto [first, last] = g_.own_planes(ux);
    if (first < last) {
      const int m = at_level(ux).row();
      const auto w = g_.read(rx, first, last + 1);
      for (int f = first; f < last; ++f) plane::psinv(w(f), w(f + 1), w(f + 2), g_.plane(ux, f), m, k_.c, scratch_);
    }
    g_.sync();
  }

  // Coarse plane j (stored j + 1) is projected from fine stored planes
  // 2j + 1 .. 2j + 3.
  void restrict_residual(grid& fine, grid& coarse) {
    const auto [first, last] = g_.own_planes(coarse);
    if (first >= last) return;
    const auto w = g_.read(fine, 2 * first + 1, 2 * last + 1);
    for (int j = first; j < last; ++j)
      plane::restrict_to(w(2 * j + 1), w(2 * j + 2), w(2 * j + 3), g_.plane(coarse, j), at_level(coarse).row(), scratch_);
  }

  // Fine plane f (stored f + 1) reads coarse stored planes (f + 1) / 2 and
  // the one after.
  void interpolate(grid& coarse, grid& fine) {
    const auto [first, last] = g_.own_planes(fine);
    if (first >= last) return;
    const auto w = g_.read(coarse, (first + 1) / 2, last / 2 + 1);
    for (int f = first; f < last; ++f)
      plane::interpolate_to(w((f + 1) / 2), w((f + 1) / 2 + 1), g_.plane(fine, f), f + 1, at_level(coarse).row(), scratch_);
  }

  double l2_norm(grid& x, int n) {
    const auto [first, last] = g_.own_planes(x);
    const int m = at_level(x).row();
    double s = 0;
    for (int f = first; f < last; ++f) {
      const double* p = g_.plane(x, f);
      for (int i2 = 1; i2 < m - 1; ++i2)
        for (int i1 = 1; i1 < m - 1; ++i1) s = s + p[plane::at(m, i2, i1)] * p[plane::at(m, i2, i1)];
    }
    return std::sqrt(g_.sum(s) / std::pow(static_cast<double>(n), 3));
  }

  // zran3: NPB's random field over the interior (point (i1, i2, i3) is the
  // number i1 + n (i2 + n i3) + 1 of the stream from 314159265), reduced
  // to +1 at its 10 largest values, -1 at its 10 smallest, 0 elsewhere.
  void random_charges(grid& z) {
    constexpr std::size_t count = 10;
    const int n = z.n, m = at_level(z).row();
    const auto [first, last] = g_.own_planes(z);
    const std::uint64_t a = npb::lcg::default_multiplier, un = static_cast<std::uint64_t>(n);
    const std::uint64_t row_jump = npb::lcg::power(a, un), plane_jump = npb::lcg::power(a, un * un);
    std::uint64_t x0 = npb::lcg::multiply(314159265, npb::lcg::power(plane_jump, static_cast<std::uint64_t>(first)));

    std::vector<extreme> largest, smallest;  // sorted, best first
    auto offer = [&](std::vector<extreme>& best, const extreme& e, auto better) {
      if (best.size() == count && !better(e.value, best.back().value)) return;
      best.insert(std::upper_bound(best.begin(), best.end(), e, [&](const extreme& l, const extreme& r) { return better(l.value, r.value); }), e);
      if (best.size() > count) best.pop_back();
    };
    std::vector<double> row(static_cast<std::size_t>(n));
    for (int i3 = first; i3 < last; ++i3, x0 = npb::lcg::multiply(x0, plane_jump)) {
      std::uint64_t x1 = x0;
      for (int i2 = 0; i2 < n; ++i2, x1 = npb::lcg::multiply(x1, row_jump)) {
        npb::lcg(static_cast<double>(x1)).fill(row.data(), row.size());
        for (int i1 = 0; i1 < n; ++i1) {
          offer(largest, {row[static_cast<std::size_t>(i1)], i1, i2, i3, 1}, std::greater<>{});
          offer(smallest, {row[static_cast<std::size_t>(i1)], i1, i2, i3, 0}, std::less<>{});
        }
      }
    }
    std::vector<extreme> mine(largest);
    mine.insert(mine.end(), smallest.begin(), smallest.end());
    const std::vector<extreme> all = g_.gather(mine);

    largest.clear();
    smallest.clear();
    for (const extreme& e : all) e.largest ? offer(largest, e, std::greater<>{}) : offer(smallest, e, std::less<>{});
    zero(z);
    auto charge = [&](const std::vector<extreme>& at, double value) {
      for (const extreme& e : at)
        if (e.z >= first && e.z < last) g_.plane(z, e.z)[plane::at(m, e.y + 1, e.x + 1)] = value;
    };
    charge(smallest, -1.0);
    charge(largest, +1.0);
    for (int f = first; f < last; ++f) plane::refresh_ghosts(g_.plane(z, f), m);
  }

  Grids& g_;
  mg_class class_;
  coefficients k_;
  int top_;
  std::vector<grid> u_, r_;
  std::optional<grid> v_;
  std::vector<double> scratch_;
};

}  // namespace mg

// NPB's 3-D FFT PDE kernel without dsm: the problem classes and their
// checksums, a batched 1-D FFT, and the passes over a rank's slab, shared by
// the dsm build and the plain single-process build.
//
// An nx x ny x nz complex grid drawn from NPB's generator is transformed
// forward once; then, every iteration, its spectrum is multiplied by
// exp(-4 alpha pi^2 |k|^2) (the heat equation's step, accumulated), the
// product is transformed back (unnormalised) and 1024 of its points are
// summed into the iteration's checksum, verified against NPB's to 1e-12.
//
// Two layouts of the grid, each split over the ranks in even blocks:
// planes [z][y][x], a rank holding whole z-planes (the x and y transforms
// are local), and columns, a rank holding whole y-rows of every plane,
// stored [z][y of its rows][x] (the z transform is local). Moving a rank's
// planes into the columns layout gives each other rank one contiguous run
// of its column block, and moving back takes one contiguous run of each
// other rank's column block.
#pragma once

#include "common.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace ft {

using complex = std::complex<double>;

struct ft_class {
  char name;
  std::size_t nx, ny, nz;
  int iterations;
  std::array<complex, 20> checksums;  // NPB's, per iteration
};
constexpr std::array<ft_class, 5> classes{{
    {'S', 64, 64, 64, 6,
     {{{5.546087004964e+02, 4.845363331978e+02}, {5.546385409189e+02, 4.865304269511e+02},
       {5.546148406171e+02, 4.883910722336e+02}, {5.545423607415e+02, 4.901273169046e+02},
       {5.544255039624e+02, 4.917475857993e+02}, {5.542683411902e+02, 4.932597244941e+02}}}},
    {'W', 128, 128, 32, 6,
     {{{5.673612178944e+02, 5.293246849175e+02}, {5.631436885271e+02, 5.282149986629e+02},
       {5.594024089970e+02, 5.270996558037e+02}, {5.560698047020e+02, 5.260027904925e+02},
       {5.530898991250e+02, 5.249400845633e+02}, {5.504159734538e+02, 5.239212247086e+02}}}},
    {'A', 256, 256, 128, 6,
     {{{5.046735008193e+02, 5.114047905510e+02}, {5.059412319734e+02, 5.098809666433e+02},
       {5.069376896287e+02, 5.098144042213e+02}, {5.077892868474e+02, 5.101336130759e+02},
       {5.085233095391e+02, 5.104914655194e+02}, {5.091487099959e+02, 5.107917842803e+02}}}},
    {'B', 512, 256, 256, 20,
     {{{5.177643571579e+02, 5.077803458597e+02}, {5.154521291263e+02, 5.088249431599e+02},
       {5.146409228649e+02, 5.096208912659e+02}, {5.142378756213e+02, 5.101023387619e+02},
       {5.139626667737e+02, 5.103976610617e+02}, {5.137423460082e+02, 5.105948019802e+02},
       {5.135547056878e+02, 5.107404165783e+02}, {5.133910925466e+02, 5.108576573661e+02},
       {5.132470705390e+02, 5.109577278523e+02}, {5.131197729984e+02, 5.110460304483e+02},
       {5.130070319283e+02, 5.111252433800e+02}, {5.129070537032e+02, 5.111968077718e+02},
       {5.128182883502e+02, 5.112616233064e+02}, {5.127393733383e+02, 5.113203605551e+02},
       {5.126691062020e+02, 5.113735928093e+02}, {5.126064276004e+02, 5.114218460548e+02},
       {5.125504076570e+02, 5.114656139760e+02}, {5.125002331720e+02, 5.115053595966e+02},
       {5.124551951846e+02, 5.115415130407e+02}, {5.124146770029e+02, 5.115744692211e+02}}}},
    {'C', 512, 512, 512, 20,
     {{{5.195078707457e+02, 5.149019699238e+02}, {5.155422171134e+02, 5.127578201997e+02},
       {5.144678022222e+02, 5.122251847514e+02}, {5.140150594328e+02, 5.121090289018e+02},
       {5.137550426810e+02, 5.121143685824e+02}, {5.135811056728e+02, 5.121496764568e+02},
       {5.134569343165e+02, 5.121870921893e+02}, {5.133651975661e+02, 5.122193250322e+02},
       {5.132955192805e+02, 5.122454735794e+02}, {5.132410471738e+02, 5.122663649603e+02},
       {5.131971141679e+02, 5.122830879827e+02}, {5.131605205716e+02, 5.122965869718e+02},
       {5.131290734194e+02, 5.123075927445e+02}, {5.131012720314e+02, 5.123166486553e+02},
       {5.130760908195e+02, 5.123241541685e+02}, {5.130528295923e+02, 5.123304037599e+02},
       {5.130310107773e+02, 5.123356167976e+02}, {5.130103090133e+02, 5.123399592211e+02},
       {5.129905029333e+02, 5.123435588985e+02}, {5.129714421109e+02, 5.123465164008e+02}}}},
}};
constexpr double seed = 314159265.0, alpha = 1.0e-6, epsilon = 1.0e-12;
constexpr std::size_t checksum_points = 1024;

// Columns transformed at once: the FFT's inner loops run across them, a
// compile-time trip count the vectoriser takes at -O2.
constexpr std::size_t batch = 16;

// 1-D complex FFTs of one power-of-two length on `batch` sequences at once,
// stored split (re[k * batch + b], im[k * batch + b]). Stockham
// autosorting: radix-4 passes (one radix-2 pass first for an odd log2), no
// bit reversal, ping-ponging between the data and a work buffer. Sign +1
// and -1 are the two directions, unnormalised.
class fft_1d {
 public:
  explicit fft_1d(std::size_t n) : n_(n) {
    if (n < 2 || (n & (n - 1)) != 0) throw std::invalid_argument(fmt::format("ft: FFT length {} is not a power of two", n));
    std::size_t log2 = 0;
    while ((std::size_t{1} << log2) < n) ++log2;
    for (std::size_t span = 1; span < n;) {
      const std::size_t radix = (span == 1 && log2 % 2 == 1) ? 2 : 4;
      stages_.push_back({radix, span, cos_.size()});
      for (std::size_t k = 0; k < span; ++k)
        for (std::size_t r = 1; r < radix; ++r) {
          const double angle = 2.0 * std::numbers::pi * static_cast<double>(k * r) / static_cast<double>(radix * span);
          cos_.push_back(std::cos(angle));
          sin_.push_back(std::sin(angle));
        }
      span *= radix;
    }
  }
  std::size_t size() const noexcept { return n_; }

  // Transforms the batch in (re, im), using (work_re, work_im) of the same
  // size; returns which pair holds the result: false the data, true the work.
  bool transform(int sign, double* re, double* im, double* work_re, double* work_im) const {
    const double s = sign > 0 ? 1.0 : -1.0;
    bool in_work = false;
    for (const stage& st : stages_) {
      double* from_re = in_work ? work_re : re;
      double* from_im = in_work ? work_im : im;
      double* to_re = in_work ? re : work_re;
      double* to_im = in_work ? im : work_im;
      if (st.radix == 2)
        radix2(st, s, from_re, from_im, to_re, to_im);
      else
        radix4(st, s, from_re, from_im, to_re, to_im);
      in_work = !in_work;
    }
    return in_work;
  }

 private:
  struct stage {
    std::size_t radix, span, twiddles;  // span: the length of the sub-transforms it combines
  };

  void radix2(const stage& st, double s, const double* __restrict fr, const double* __restrict fi,
              double* __restrict tr, double* __restrict ti) const {
    const std::size_t half = n_ / 2;
    for (std::size_t j = 0; j < half; ++j) {
      const std::size_t k = j & (st.span - 1), out = (j - k) * 2 + k;
      const double wr = cos_[st.twiddles + k], wi = s * sin_[st.twiddles + k];
      const double* ar = fr + j * batch;
      const double* ai = fi + j * batch;
      const double* br = fr + (j + half) * batch;
      const double* bi = fi + (j + half) * batch;
      double* y0r = tr + out * batch;
      double* y0i = ti + out * batch;
      double* y1r = tr + (out + st.span) * batch;
      double* y1i = ti + (out + st.span) * batch;
      for (std::size_t b = 0; b < batch; ++b) {
        const double xr = br[b] * wr - bi[b] * wi, xi = br[b] * wi + bi[b] * wr;
        y0r[b] = ar[b] + xr;
        y0i[b] = ai[b] + xi;
        y1r[b] = ar[b] - xr;
        y1i[b] = ai[b] - xi;
      }
    }
  }

  void radix4(const stage& st, double s, const double* __restrict fr, const double* __restrict fi,
              double* __restrict tr, double* __restrict ti) const {
    const std::size_t quarter = n_ / 4;
    for (std::size_t j = 0; j < quarter; ++j) {
      const std::size_t k = j & (st.span - 1), out = (j - k) * 4 + k;
      const std::size_t t = st.twiddles + 3 * k;
      const double w1r = cos_[t], w1i = s * sin_[t], w2r = cos_[t + 1], w2i = s * sin_[t + 1], w3r = cos_[t + 2],
                   w3i = s * sin_[t + 2];
      const double* v0r = fr + j * batch;
      const double* v0i = fi + j * batch;
      const double* v1r = fr + (j + quarter) * batch;
      const double* v1i = fi + (j + quarter) * batch;
      const double* v2r = fr + (j + 2 * quarter) * batch;
      const double* v2i = fi + (j + 2 * quarter) * batch;
      const double* v3r = fr + (j + 3 * quarter) * batch;
      const double* v3i = fi + (j + 3 * quarter) * batch;
      double* y0r = tr + out * batch;
      double* y0i = ti + out * batch;
      double* y1r = tr + (out + st.span) * batch;
      double* y1i = ti + (out + st.span) * batch;
      double* y2r = tr + (out + 2 * st.span) * batch;
      double* y2i = ti + (out + 2 * st.span) * batch;
      double* y3r = tr + (out + 3 * st.span) * batch;
      double* y3i = ti + (out + 3 * st.span) * batch;
      for (std::size_t b = 0; b < batch; ++b) {
        const double x1r = v1r[b] * w1r - v1i[b] * w1i, x1i = v1r[b] * w1i + v1i[b] * w1r;
        const double x2r = v2r[b] * w2r - v2i[b] * w2i, x2i = v2r[b] * w2i + v2i[b] * w2r;
        const double x3r = v3r[b] * w3r - v3i[b] * w3i, x3i = v3r[b] * w3i + v3i[b] * w3r;
        const double a0r = v0r[b] + x2r, a0i = v0i[b] + x2i, a1r = v0r[b] - x2r, a1i = v0i[b] - x2i;
        const double a2r = x1r + x3r, a2i = x1i + x3i;
        // (x1 - x3) times s*i, the fourth root of unity of this direction.
        const double a3r = -s * (x1i - x3i), a3i = s * (x1r - x3r);
        y0r[b] = a0r + a2r;
        y0i[b] = a0i + a2i;
        y2r[b] = a0r - a2r;
        y2i[b] = a0i - a2i;
        y1r[b] = a1r + a3r;
        y1i[b] = a1i + a3i;
        y3r[b] = a1r - a3r;
        y3i[b] = a1i - a3i;
      }
    }
  }

  std::size_t n_;
  std::vector<stage> stages_;
  std::vector<double> cos_, sin_;
};

// How the grid is split: ranks hold planes [first_plane(r), +planes(r)) in
// blocks of plane_block() elements, and y-rows [first_row(r), +rows(r)) of
// every plane in blocks of column_block() elements (each block sized for
// the largest share, so every rank's block is the same size).
struct geometry {
  std::size_t nx, ny, nz, ranks;
  std::size_t planes_per_rank, rows_per_rank;

  geometry(const ft_class& c, std::size_t ranks_)
      : nx(c.nx), ny(c.ny), nz(c.nz), ranks(ranks_),
        planes_per_rank((c.nz + ranks_ - 1) / ranks_), rows_per_rank((c.ny + ranks_ - 1) / ranks_) {}

  std::size_t first_plane(std::size_t r) const { return std::min(nz, r * planes_per_rank); }
  std::size_t planes(std::size_t r) const { return std::min(nz, first_plane(r) + planes_per_rank) - first_plane(r); }
  std::size_t first_row(std::size_t r) const { return std::min(ny, r * rows_per_rank); }
  std::size_t rows(std::size_t r) const { return std::min(ny, first_row(r) + rows_per_rank) - first_row(r); }
  std::size_t plane_block() const { return planes_per_rank * ny * nx; }
  std::size_t column_block() const { return nz * rows_per_rank * nx; }
  // Where plane z's x-line of row `row` (a row of rank r's columns) sits in r's column block.
  std::size_t column_offset(std::size_t z, std::size_t row) const { return (z * rows_per_rank + row) * nx; }
  std::size_t total() const { return nx * ny * nz; }
};

// NPB's initial grid for planes [first, first + count) into `slab`
// ([z][y][x]): element e of the whole grid (x fastest) is the complex pair
// of the generator's values 2e+1 and 2e+2 after the seed.
inline void initial_conditions(std::span<complex> slab, const geometry& g, std::size_t first, std::size_t count) {
  const std::size_t plane = g.nx * g.ny;
  for (std::size_t z = 0; z < count; ++z) {
    npb::lcg gen(static_cast<double>(npb::lcg::multiply(
        static_cast<std::uint64_t>(seed), npb::lcg::power(npb::lcg::default_multiplier, 2 * plane * (first + z)))));
    gen.fill(reinterpret_cast<double*>(slab.data() + z * plane), 2 * plane);
  }
}

// The step factor exp(-4 alpha pi^2 (kx^2 + ky^2 + kz^2)) of each element
// of rank r's column block, wave numbers folded to [-n/2, n/2). The sum of
// squares is a small integer (at most (nx/2)^2 + (ny/2)^2 + (nz/2)^2), so
// the factors come from one table of exp over those integers: the same
// bits as one exp per element, for a few thousand exps instead of the
// grid's size, and no grid-sized array of factors to stream every step.
class step_factors {
 public:
  step_factors(const geometry& g, std::size_t r)
      : x_(squares(g.nx, 0, g.nx)), row_(squares(g.ny, g.first_row(r), g.rows(r))), z_(squares(g.nz, 0, g.nz)) {
    const double ap = -4.0 * alpha * std::numbers::pi * std::numbers::pi;
    const std::size_t largest = (g.nx / 2) * (g.nx / 2) + (g.ny / 2) * (g.ny / 2) + (g.nz / 2) * (g.nz / 2);
    table_.resize(largest + 1);
    for (std::size_t d = 0; d <= largest; ++d) table_[d] = std::exp(ap * static_cast<double>(d));
  }
  double operator()(std::size_t z, std::size_t row, std::size_t x) const { return table_[x_[x] + row_[row] + z_[z]]; }

 private:
  // The folded squares of indices [first, first + count) along an axis of n.
  static std::vector<std::uint32_t> squares(std::size_t n, std::size_t first, std::size_t count) {
    std::vector<std::uint32_t> out(count);
    for (std::size_t i = 0; i < count; ++i) {
      const auto f = static_cast<std::int64_t>((first + i + n / 2) % n) - static_cast<std::int64_t>(n / 2);
      out[i] = static_cast<std::uint32_t>(f * f);
    }
    return out;
  }
  std::vector<std::uint32_t> x_, row_, z_;
  std::vector<double> table_;
};

// Scratch for one batch of sequences of the longest dimension.
class batch_buffers {
 public:
  explicit batch_buffers(std::size_t longest) : data_(4 * longest * batch) {}
  double* re() { return data_.data(); }
  double* im() { return data_.data() + data_.size() / 4; }
  double* work_re() { return data_.data() + data_.size() / 2; }
  double* work_im() { return data_.data() + 3 * data_.size() / 4; }

 private:
  std::vector<double> data_;
};

// Runs the FFT over sequences of `n` elements, batch by batch: `load(b0,
// re, im)` fills a batch starting at sequence b0, `store(b0, re, im)` takes
// the result.
template <class Load, class Store>
void transform_batches(const fft_1d& fft, int sign, std::size_t sequences, batch_buffers& buf, Load&& load,
                       Store&& store) {
  for (std::size_t b0 = 0; b0 < sequences; b0 += batch) {
    load(b0, buf.re(), buf.im());
    const bool in_work = fft.transform(sign, buf.re(), buf.im(), buf.work_re(), buf.work_im());
    store(b0, in_work ? buf.work_re() : buf.re(), in_work ? buf.work_im() : buf.im());
  }
}

// Copies sequence values in and out of a batch: `at(b, k)` is element k of
// sequence b0 + b; sequences past `count` are zeros in and dropped out.
template <class At>
void load_batch(std::size_t n, std::size_t valid, double* re, double* im, At&& at) {
  for (std::size_t k = 0; k < n; ++k)
    for (std::size_t b = 0; b < batch; ++b) {
      const complex v = b < valid ? at(b, k) : complex{};
      re[k * batch + b] = v.real();
      im[k * batch + b] = v.imag();
    }
}
template <class At>
void store_batch(std::size_t n, std::size_t valid, const double* re, const double* im, At&& at) {
  for (std::size_t k = 0; k < n; ++k)
    for (std::size_t b = 0; b < valid; ++b) at(b, k) = complex{re[k * batch + b], im[k * batch + b]};
}

// The transforms along one axis of `count` planes ([z][y][x]) in place:
// along x (each row a sequence) or along y (each column one).
enum class plane_axis { x, y };
inline void transform_planes(plane_axis axis, std::span<complex> slab, const geometry& g, std::size_t count,
                             const fft_1d& fft, int sign, batch_buffers& buf) {
  const bool along_x = axis == plane_axis::x;
  const std::size_t length = along_x ? g.nx : g.ny, sequences = along_x ? g.ny : g.nx;
  // Element k of sequence s sits at s * sequence_stride + k * element_stride.
  const std::size_t sequence_stride = along_x ? g.nx : 1, element_stride = along_x ? 1 : g.nx;
  for (std::size_t z = 0; z < count; ++z) {
    complex* plane = slab.data() + z * g.nx * g.ny;
    auto at = [&](std::size_t b0) {
      return [=](std::size_t b, std::size_t k) -> complex& { return plane[(b0 + b) * sequence_stride + k * element_stride]; };
    };
    transform_batches(
        fft, sign, sequences, buf,
        [&](std::size_t b0, double* re, double* im) { load_batch(length, std::min(batch, sequences - b0), re, im, at(b0)); },
        [&](std::size_t b0, const double* re, const double* im) {
          store_batch(length, std::min(batch, sequences - b0), re, im, at(b0));
        });
  }
}

// The z transforms of rank r's column block: every (row, x) sequence along
// z. `load(z, row, x)` and `store(z, row, x)` give the element a batch
// reads and where its result goes (the caller evolves on the way in and
// scatters on the way out).
template <class Load, class Store>
void transform_columns(const geometry& g, std::size_t r, const fft_1d& fft, int sign, batch_buffers& buf, Load&& load,
                       Store&& store) {
  const std::size_t sequences = g.rows(r) * g.nx;  // sequence s: row s / nx, x s % nx (batches never straddle rows)
  transform_batches(
      fft, sign, sequences, buf,
      [&](std::size_t b0, double* re, double* im) {
        const std::size_t row = b0 / g.nx, x0 = b0 % g.nx;
        load_batch(g.nz, std::min(batch, g.nx - x0), re, im, [&](std::size_t b, std::size_t z) { return load(z, row, x0 + b); });
      },
      [&](std::size_t b0, const double* re, const double* im) {
        const std::size_t row = b0 / g.nx, x0 = b0 % g.nx;
        store_batch(g.nz, std::min(batch, g.nx - x0), re, im, [&](std::size_t b, std::size_t z) -> complex& { return store(z, row, x0 + b); });
      });
}

// This slab's share of an iteration's checksum: the sum of NPB's points
// (x, y, z) = (j mod nx, 3j mod ny, 5j mod nz), j = 1..1024, that lie in
// planes [first, first + count); the total is divided by the grid's size.
inline complex checksum_share(std::span<const complex> slab, const geometry& g, std::size_t first, std::size_t count) {
  complex sum{};
  for (std::size_t j = 1; j <= checksum_points; ++j) {
    const std::size_t x = j % g.nx, y = (3 * j) % g.ny, z = (5 * j) % g.nz;
    if (z >= first && z < first + count) sum += slab[((z - first) * g.ny + y) * g.nx + x];
  }
  return sum;
}

// NPB's timed part on one rank's share of the grid: set-up, the forward
// transform, then every iteration evolve, transform back and take the
// checksum. The transposes move one contiguous run per pair of ranks; a
// rank's own share never leaves it (packed or scattered in place), so at
// one rank nothing moves. The evolution is fused into the z transform's
// loads and the rank's own share of the way back into its stores.
//
// Grids holds the three slabs and moves the runs: planes() (this rank's
// planes, [z][y][x]), spectrum() and evolved() (its column blocks);
// send(r, run) puts a run into rank r's spectrum block where this rank's
// planes go; fetch(s, run) gets from rank s's evolved block the run holding
// this rank's planes; barrier(); sum(values) adds a span up over the ranks.
template <class Grids>
class solver {
 public:
  solver(const ft_class& c, Grids& grids, std::size_t ranks, std::size_t me)
      : c_(c), g_(c, ranks), me_(me), grids_(grids), fft_x_(g_.nx), fft_y_(g_.ny), fft_z_(g_.nz),
        buffers_(std::max({g_.nx, g_.ny, g_.nz})), run_(g_.planes(me) * g_.rows_per_rank * g_.nx) {}

  std::vector<complex> solve() {
    factors_.emplace(g_, me_);
    initial_conditions(grids_.planes(), g_, g_.first_plane(me_), g_.planes(me_));
    forward();
    std::vector<complex> sums;
    for (int it = 1; it <= c_.iterations; ++it) {
      evolve_and_back();
      const complex share = checksum_share(grids_.planes(), g_, g_.first_plane(me_), g_.planes(me_));
      std::array<double, 2> sum{share.real(), share.imag()};
      grids_.sum(std::span<double>(sum));  // also: every rank's fetches from `evolved` are over
      sums.push_back(complex{sum[0], sum[1]} / static_cast<double>(g_.total()));
    }
    return sums;
  }

 private:
  std::size_t row_run() const { return g_.rows_per_rank * g_.nx; }

  void forward() {
    const auto slab = grids_.planes();
    const std::size_t first = g_.first_plane(me_), planes = g_.planes(me_);
    transform_planes(plane_axis::x, slab, g_, planes, fft_x_, 1, buffers_);
    transform_planes(plane_axis::y, slab, g_, planes, fft_y_, 1, buffers_);
    grids_.barrier();  // no rank still reads its spectrum (a previous solve)
    for (std::size_t r = 0; r < g_.ranks && planes != 0; ++r) {
      if (g_.rows(r) == 0) continue;
      // Rank r's rows of this rank's planes, as r's columns keep them.
      const bool own = r == me_;
      complex* out = own ? grids_.spectrum().data() + g_.column_offset(first, 0) : run_.data();
      for (std::size_t z = 0; z < planes; ++z)
        std::copy_n(slab.data() + (z * g_.ny + g_.first_row(r)) * g_.nx, g_.rows(r) * g_.nx, out + z * row_run());
      if (!own) grids_.send(r, std::span<const complex>(run_.data(), planes * row_run()));
    }
    grids_.barrier();
    const auto columns = grids_.spectrum();
    auto at = [&](std::size_t z, std::size_t row, std::size_t x) -> complex& { return columns[g_.column_offset(z, row) + x]; };
    transform_columns(g_, me_, fft_z_, 1, buffers_, at, at);
  }

  void evolve_and_back() {
    const auto columns = grids_.spectrum(), out = grids_.evolved(), slab = grids_.planes();
    const std::size_t first = g_.first_plane(me_), planes = g_.planes(me_), my_row = g_.first_row(me_);
    // The spectrum takes one more step as the z transform reads it; results
    // in this rank's planes go straight there, the rest wait in `evolved`.
    transform_columns(
        g_, me_, fft_z_, -1, buffers_,
        [&](std::size_t z, std::size_t row, std::size_t x) {
          return columns[g_.column_offset(z, row) + x] *= (*factors_)(z, row, x);
        },
        [&](std::size_t z, std::size_t row, std::size_t x) -> complex& {
          if (z >= first && z < first + planes) return slab[((z - first) * g_.ny + my_row + row) * g_.nx + x];
          return out[g_.column_offset(z, row) + x];
        });
    grids_.barrier();  // every rank's evolved block is complete
    for (std::size_t s = 0; s < g_.ranks && planes != 0; ++s) {
      if (s == me_ || g_.rows(s) == 0) continue;
      const std::span<complex> run(run_.data(), planes * row_run());
      grids_.fetch(s, run);
      for (std::size_t z = 0; z < planes; ++z)
        std::copy_n(run.data() + z * row_run(), g_.rows(s) * g_.nx, slab.data() + (z * g_.ny + g_.first_row(s)) * g_.nx);
    }
    transform_planes(plane_axis::y, slab, g_, planes, fft_y_, -1, buffers_);
    transform_planes(plane_axis::x, slab, g_, planes, fft_x_, -1, buffers_);
  }

  const ft_class& c_;
  geometry g_;
  std::size_t me_;
  Grids& grids_;
  fft_1d fft_x_, fft_y_, fft_z_;
  batch_buffers buffers_;
  std::vector<complex> run_;  // one pair's share of a transpose
  std::optional<step_factors> factors_;
};

// NPB's per-iteration lines and the verification against its checksums.
inline bool verify_and_print(const ft_class& c, std::span<const complex> sums, bool perturb_reference) {
  bool verified = static_cast<int>(sums.size()) == c.iterations;
  for (std::size_t i = 0; i < sums.size(); ++i) {
    const complex reference = c.checksums[i] * (perturb_reference ? 1.0 + 1e-9 : 1.0);
    const double error = std::abs((sums[i] - reference) / reference);
    fmt::print(" T = {:4}     Checksum = {:22.12e} {:22.12e}{}\n", i + 1, sums[i].real(), sums[i].imag(),
               error <= epsilon ? "" : fmt::format("   reference {:.12e} {:.12e}", reference.real(), reference.imag()));
    verified = verified && error <= epsilon;
  }
  fmt::print(" Result verification {}\n", verified ? "successful" : "failed");
  return verified;
}

inline npb::report report(const ft_class& c, double seconds, std::string policy, bool verified) {
  const auto total = static_cast<double>(c.nx * c.ny * c.nz);
  const double flops = total * (14.8157 + 7.19641 * std::log(total) +
                                (5.23518 + 7.21113 * std::log(total)) * static_cast<double>(c.iterations));
  return {"FT", c.name, fmt::format("{}x{}x{}", c.nx, c.ny, c.nz), c.iterations, seconds, flops / seconds / 1e6,
          "floating point", std::move(policy), verified};
}

}  // namespace ft

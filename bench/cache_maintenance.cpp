// Cost of clean and clean_invalidate against the size of the range (64 B to
// 64 MiB) and against the number of pages a fixed number of bytes is spread
// over, as CSV. Each figure is the median of --reps runs over freshly dirtied
// lines; fill_median_ns is a memset of the same bytes on the same machine,
// the baseline the ratio is taken against.
//
//   cache_maintenance [--min-bytes N] [--max-bytes N] [--spread-bytes N]
//                     [--reps N] [--out FILE]
#include "timing.hpp"

#include <dsm/arch.hpp>

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct options {
  std::size_t min_bytes = 64;
  std::size_t max_bytes = std::size_t{64} << 20;
  std::size_t spread_bytes = std::size_t{1} << 20;
  int reps = 9;
  std::string out;
};

[[noreturn]] void usage(std::string_view why) {
  fmt::print(stderr, "cache_maintenance: {}\nusage: cache_maintenance [--min-bytes N] [--max-bytes N] "
                     "[--spread-bytes N] [--reps N] [--out FILE]\n", why);
  std::exit(2);
}

std::size_t parse_size(std::string_view flag, const char* text) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || v == 0) usage(fmt::format("{} needs a positive whole number, not '{}'", flag, text));
  return static_cast<std::size_t>(v);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) usage(fmt::format("{} needs a value", a));
    const char* v = argv[++i];
    if (a == "--min-bytes") o.min_bytes = parse_size(a, v);
    else if (a == "--max-bytes") o.max_bytes = parse_size(a, v);
    else if (a == "--spread-bytes") o.spread_bytes = parse_size(a, v);
    else if (a == "--reps") o.reps = static_cast<int>(parse_size(a, v));
    else if (a == "--out") o.out = v;
    else usage(fmt::format("unknown option {}", a));
  }
  if (o.min_bytes > o.max_bytes) usage("--min-bytes exceeds --max-bytes");
  return o;
}

using dsm_bench::median;
using dsm_bench::time_ns;

// A range made of `chunks` equal pieces, each starting on its own page.
struct spread_range {
  std::uint8_t* base;
  std::size_t chunks;
  std::size_t chunk_bytes;
  std::size_t stride;
};

void fill(const spread_range& r, int round) {
  for (std::size_t c = 0; c < r.chunks; ++c) std::memset(r.base + c * r.stride, round, r.chunk_bytes);
}

template <class Op>
void apply(const spread_range& r, Op op) {
  for (std::size_t c = 0; c < r.chunks; ++c) op(r.base + c * r.stride, r.chunk_bytes);
}

struct measurement {
  double op_ns;
  double fill_ns;
};

template <class Op>
measurement measure(const spread_range& r, int reps, Op op) {
  std::vector<double> op_ns, fill_ns;
  for (int i = 0; i < reps; ++i) {
    fill_ns.push_back(time_ns([&] { fill(r, i); }));  // also leaves every line dirty
    op_ns.push_back(time_ns([&] { apply(r, op); }));
  }
  return {median(op_ns), median(fill_ns)};
}

std::size_t pages_touched(const spread_range& r, std::size_t page) {
  std::size_t pages = 0;
  for (std::size_t c = 0; c < r.chunks; ++c) {
    const auto first = reinterpret_cast<std::uintptr_t>(r.base + c * r.stride) / page;
    const auto last = (reinterpret_cast<std::uintptr_t>(r.base + c * r.stride) + r.chunk_bytes - 1) / page;
    pages += last - first + 1;
  }
  return pages;
}

struct row_writer {
  std::FILE* out;
  std::size_t page;
  std::size_t line;
  int reps;

  void header() const {
    fmt::print(out, "sweep,op,bytes,pages,lines,median_ns,ns_per_line,fill_median_ns,ratio_to_fill\n");
  }
  void rows(const char* sweep, const spread_range& r) const {
    const std::size_t bytes = r.chunks * r.chunk_bytes;
    std::size_t lines = 0;
    apply(r, [&](const void* p, std::size_t n) { lines += dsm::arch::lines_touching(p, n).line_count; });
    const auto clean = measure(r, reps, [](const void* p, std::size_t n) { dsm::arch::clean(p, n); });
    const auto civac = measure(r, reps, [](void* p, std::size_t n) { dsm::arch::clean_invalidate(p, n); });
    for (auto [name, m] : {std::pair{"clean", clean}, std::pair{"clean_invalidate", civac}})
      fmt::print(out, "{},{},{},{},{},{:.0f},{:.3f},{:.0f},{:.3f}\n", sweep, name, bytes, pages_touched(r, page), lines,
                 m.op_ns, m.op_ns / static_cast<double>(lines), m.fill_ns, m.op_ns / m.fill_ns);
    std::fflush(out);
  }
};

}  // namespace

int main(int argc, char** argv) {
  const options opt = parse(argc, argv);
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t line = dsm::arch::cache_line_bytes();
  if (opt.spread_bytes < page) usage(fmt::format("--spread-bytes must be at least one page ({} B)", page));

  std::FILE* out = stdout;
  if (!opt.out.empty() && !(out = std::fopen(opt.out.c_str(), "w"))) usage(fmt::format("cannot write {}", opt.out));
  fmt::print(stderr, "# cache_maintenance: {} , cache line {} B, page {} B, maintenance {}, {} reps\n",
             dsm::arch::to_string(dsm::arch::host_isa), line, page,
             dsm::arch::cache_maintenance_enabled ? "on" : "off", opt.reps);

  // One page-aligned arena serves both sweeps.
  const std::size_t spread_max_pages = opt.spread_bytes / line;
  const std::size_t arena_bytes = std::max(opt.max_bytes, spread_max_pages * page);
  std::unique_ptr<std::uint8_t, decltype(&std::free)> arena(
      static_cast<std::uint8_t*>(std::aligned_alloc(page, (arena_bytes + page - 1) / page * page)), &std::free);
  if (!arena) usage("cannot allocate the arena");

  const row_writer w{out, page, line, opt.reps};
  w.header();
  // Sweep 1: one contiguous range, 64 B .. max.
  for (std::size_t bytes = opt.min_bytes; bytes <= opt.max_bytes; bytes *= 2)
    w.rows("size", {arena.get(), 1, bytes, bytes});
  // Sweep 2: spread_bytes over more and more pages, from contiguous (fewest
  // pages) to one cache line per page.
  for (std::size_t chunks = opt.spread_bytes / page; chunks <= spread_max_pages; chunks *= 2)
    w.rows("pages", {arena.get(), chunks, opt.spread_bytes / chunks, page});
  if (out != stdout) std::fclose(out);
}

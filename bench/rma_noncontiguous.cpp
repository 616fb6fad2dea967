// Strided gets and puts through dsm against raw UCP on the same worker,
// endpoint and rkey, in one run: `elements` 8-byte elements at a stride of
// 1 to --max-stride elements (doubling), each way dsm can move them:
//
//   get  runs       one get per run of adjacent elements, one flush
//   get  covering   one get of the whole span, the elements picked out
//   get  automatic  what rget_strided chooses (detail::covers)
//   put  runs       one put per run, one flush
//   put  packed     the runs in one message the target copies out, answered
//   put  automatic  what rput_strided chooses (detail::packs)
//
// raw is the per-element way without dsm: one ucp_get_nbx/ucp_put_nbx per
// element, then an endpoint flush; contiguous is raw UCP moving the same
// payload as one block, the floor no strategy can beat. Run on 2 ranks:
// rank 0 moves to and from rank 1's memory. CSV on stdout:
//
//   transport,progress,op,strategy,stride,elements,span_bytes,dsm_us,raw_us,contiguous_us,ratio
//
// times per call in microseconds (medians); ratio = dsm_us / raw_us (lower
// is better). Where covering beats runs says what detail::covers's
// covering_bytes_per_run should be: bench/run_rma.sh prints the crossover.
//
//   dsmrun --transport shm -n 2 build/bench/rma_noncontiguous [--elements N] [--max-stride N] [--reps N]
#include "raw_ucp.hpp"
#include "timing.hpp"

#include <dsm/dsm.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct options {
  std::size_t elements = 512;
  std::size_t max_stride = 4096;
  int reps = 7;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view a = argv[i];
    if (a == "--elements") o.elements = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--max-stride") o.max_stride = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--reps") o.reps = std::atoi(argv[i + 1]);
    else throw dsm::error(dsm::errc::invalid_argument, fmt::format("rma_noncontiguous bench: unknown option {}", a));
  }
  // The span is elements * max_stride * 8 bytes on each rank: keep it to 64 MiB.
  if (o.elements < 2 || o.max_stride < 1 || o.reps < 1 || o.elements * o.max_stride > (std::size_t{8} << 20))
    throw dsm::error(dsm::errc::invalid_argument,
                     "rma_noncontiguous bench: need --elements >= 2, --max-stride >= 1, --reps >= 1 and "
                     "elements * max-stride <= 8Mi");
  return o;
}

// Raw UCP: one operation per element, then one flush of the endpoint.
template <class Post>
void each_then_flush(dsm_bench::raw_ucp& raw, std::size_t n, Post&& post) {
  for (std::size_t i = 0; i < n; ++i) raw.release(post(i));
  raw.flush();
}

}  // namespace

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  const options opt = parse(argc, argv);
  if (dsm::ranks() != 2) {
    if (dsm::rank() == 0) fmt::print(stderr, "rma_noncontiguous bench: run on 2 ranks (dsmrun -n 2 ...)\n");
    return 2;
  }
  const std::size_t span_elements = (opt.elements - 1) * opt.max_stride + 1;
  const auto blocks = dsm::allocate_collective<std::uint64_t>(span_elements);
  const int me = dsm::rank(), peer = 1 - me;
  auto& state = dsm::detail::rt();
  const auto target = blocks[static_cast<std::size_t>(peer)];
  dsm_bench::raw_ucp raw{state.worker(), state.endpoints()[static_cast<std::size_t>(peer)],
              state.with_remote(static_cast<std::uint32_t>(peer), target.segment(), target.generation(), 0,
                                span_elements * sizeof(std::uint64_t), "bench",
                                [](const dsm::transport::remote_address& a) { return a; })};
  std::vector<std::uint64_t> local(opt.elements, 7);
  const std::string tls = dsm_bench::transport_name(), progress(dsm::transport::to_string(rt.progress()));
  if (me == 0) fmt::print("transport,progress,op,strategy,stride,elements,span_bytes,dsm_us,raw_us,contiguous_us,ratio\n");

  if (me == 0) {
    const auto us = [&](auto&& call) { return dsm_bench::median_ns(opt.reps, call) * 1e-3; };
    const std::size_t n = opt.elements, payload = n * sizeof(std::uint64_t);
    const double contiguous_get = us([&] { each_then_flush(raw, 1, [&](std::size_t) { return raw.get(local.data(), payload); }); });
    const double contiguous_put = us([&] { each_then_flush(raw, 1, [&](std::size_t) { return raw.put(local.data(), payload); }); });
    for (std::size_t stride = 1; stride <= opt.max_stride; stride *= 2) {
      const std::size_t span_bytes = ((n - 1) * stride + 1) * sizeof(std::uint64_t);
      const auto offset = [&](std::size_t i) { return i * stride * sizeof(std::uint64_t); };
      const double raw_get = us([&] {
        each_then_flush(raw, n, [&](std::size_t i) { return raw.get(&local[i], sizeof(std::uint64_t), offset(i)); });
      });
      const double raw_put = us([&] {
        each_then_flush(raw, n, [&](std::size_t i) { return raw.put(&local[i], sizeof(std::uint64_t), offset(i)); });
      });
      const auto row = [&](const char* op, const char* strategy, double dsm_us, double raw_us, double contiguous_us) {
        fmt::print("{},{},{},{},{},{},{},{:.3f},{:.3f},{:.3f},{:.3f}\n", tls, progress, op, strategy, stride, n, span_bytes,
                   dsm_us, raw_us, contiguous_us, dsm_us / raw_us);
        std::fflush(stdout);
      };
      using dsm::detail::get_strategy;
      const std::pair<const char*, get_strategy> strategies[] = {
          {"runs", get_strategy::runs}, {"covering", get_strategy::covering}, {"automatic", get_strategy::automatic}};
      for (const auto& [name, strategy] : strategies) {
        const double t = us([&] {
          dsm::detail::get_pattern(target, local.data(), dsm::detail::strided_pattern{n, stride, 1}, "bench", strategy).wait();
        });
        row("get", name, t, raw_get, contiguous_get);
      }
      using dsm::detail::put_strategy;
      const std::pair<const char*, put_strategy> put_strategies[] = {
          {"runs", put_strategy::runs}, {"packed", put_strategy::packed}, {"automatic", put_strategy::automatic}};
      for (const auto& [name, strategy] : put_strategies) {
        const double t = us([&] {
          dsm::detail::put_pattern(local.data(), target, dsm::detail::strided_pattern{n, stride, 1}, "bench", strategy)
              .wait();
        });
        row("put", name, t, raw_put, contiguous_put);
      }
    }
  }
  dsm::barrier();
  return 0;
}

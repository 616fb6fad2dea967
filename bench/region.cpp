// What a global_region's page faults cost, as ratios to baselines measured
// in the same run on the same machine. CSV on stdout:
//
//   measure,unit_bytes,x,median_ns,baseline,baseline_ns,ratio
//
// The fault mechanism alone (rank 0, no transfer), ns per page:
//   sigsegv_fault     a touch of a protected page, served by dsm's SIGSEGV
//                     dispatch with one mprotect   vs the kernel's own minor
//                                                     fault (a page of the file
//                                                     mapped at first touch)
//   uffd_minor_fault  the same page made present by a userfaultfd thread
//                     (UFFDIO_CONTINUE)            vs the same
//   sigsegv_rearm     mprotect(PROT_NONE) of one page   vs uffd_rearm: madvise
//                     (MADV_DONTNEED) of one page, the uffd way to make it
//                     fault again
// Faults on pages homed on rank 1 (2 ranks), ns per page, x = pages:
//   read_fault_<policy>   fetch of the page, protections     vs one rget of the page
//   write_fault_<policy>  single_writer: ownership with the data from the
//                     home; write_shared: fetch and twin   vs one rget of the page
//   read_fault_vs_two_round_trips  the read fault    vs ArgoDSM's published miss:
//                     a remote atomic on the directory, then a get of the
//                     page (two round trips, no home handler), timed here
//   read_miss_array   a shared_array<single_writer> miss on a unit of one
//                     page: the protocol without the fault   vs one rget
//
//   dsmrun --transport shm -n 2 build/bench/region [--pages N] [--reps N] [--only mechanism|remote]
#include "timing.hpp"

#include <dsm/dsm.hpp>

#include <fmt/format.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using dsm_bench::median_ns;

volatile std::uint64_t sink;

struct options {
  std::size_t pages = 256;
  int reps = 5;
  std::string_view only;
  bool runs(std::string_view group) const { return only.empty() || only == group; }
};

std::size_t page_bytes() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

void row(const char* measure, std::size_t unit_bytes, std::size_t x, double ns, const char* baseline, double baseline_ns) {
  fmt::print("{},{},{},{:.1f},{},{:.1f},{:.2f}\n", measure, unit_bytes, x, ns, baseline, baseline_ns, ns / baseline_ns);
  std::fflush(stdout);
}

// -- the mechanism alone -----------------------------------------------------

// A memory file of `pages` pages, filled, and a view of it (a region's
// program view, without the region).
struct file_pages {
  std::size_t bytes;
  int fd;
  std::byte* view;
  explicit file_pages(std::size_t pages) : bytes(pages * page_bytes()), fd(::memfd_create("bench", MFD_CLOEXEC)) {
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) throw std::runtime_error("memfd");
    void* v = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (v == MAP_FAILED) throw std::runtime_error("mmap");
    view = static_cast<std::byte*>(v);
    std::memset(view, 1, bytes);  // in the file: later touches are minor faults
  }
  file_pages(const file_pages&) = delete;
  file_pages& operator=(const file_pages&) = delete;
  ~file_pages() {
    ::munmap(view, bytes);
    ::close(fd);
  }
};

// Opens the faulting page for reading: dsm's dispatch with the least a
// target can do.
struct opening_target final : dsm::detail::fault_target {
  std::size_t page;
  explicit opening_target(std::size_t p) : page(p) {}
  void on_fault(std::byte* address, dsm::detail::fault_access) noexcept override {
    auto* start = reinterpret_cast<std::byte*>(reinterpret_cast<std::uintptr_t>(address) & ~(page - 1));
    ::mprotect(start, page, PROT_READ);
  }
};

[[gnu::noinline]] std::uint64_t touch_pages(const std::byte* view, std::size_t pages, std::size_t page) {
  std::uint64_t s = 0;
  for (std::size_t p = 0; p < pages; ++p) s += static_cast<std::uint64_t>(*reinterpret_cast<const volatile std::byte*>(view + p * page));
  return s;
}

// A userfaultfd in minor-fault mode over the view, served by a thread;
// none where the kernel or the privileges refuse it.
struct uffd_server {
  int fd = -1;
  std::atomic<bool> stop{false};
  std::thread server;
  std::size_t page;
  uffd_server(std::byte* view, std::size_t bytes, std::size_t p) : page(p) {
    fd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    if (fd < 0) return;
    uffdio_api api{};
    api.api = UFFD_API;
    api.features = UFFD_FEATURE_MINOR_SHMEM;
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<std::uint64_t>(view);
    reg.range.len = bytes;
    reg.mode = UFFDIO_REGISTER_MODE_MINOR;
    if (::ioctl(fd, UFFDIO_API, &api) != 0 || ::ioctl(fd, UFFDIO_REGISTER, &reg) != 0) {
      ::close(fd);
      fd = -1;
      return;
    }
    server = std::thread([this] { serve(); });
  }
  ~uffd_server() {
    stop = true;
    if (server.joinable()) server.join();
    if (fd >= 0) ::close(fd);
  }
  bool works() const { return fd >= 0; }
  void serve() {
    pollfd p{fd, POLLIN, 0};
    while (!stop.load(std::memory_order_relaxed)) {
      if (::poll(&p, 1, 10) <= 0) continue;
      uffd_msg m{};
      if (::read(fd, &m, sizeof m) != sizeof m || m.event != UFFD_EVENT_PAGEFAULT) continue;
      uffdio_continue c{};
      c.range.start = m.arg.pagefault.address & ~(std::uint64_t{page} - 1);
      c.range.len = page;
      ::ioctl(fd, UFFDIO_CONTINUE, &c);
    }
  }
};

void mechanism(const options& o) {
  const std::size_t page = page_bytes(), n = o.pages;
  // Baseline: the kernel maps a page-cache page at first touch.
  file_pages plain(n);
  const double minor = median_ns(o.reps, [&] {
    ::madvise(plain.view, plain.bytes, MADV_DONTNEED);
    sink = touch_pages(plain.view, n, page);
  }) / static_cast<double>(n);

  file_pages guarded(n);
  opening_target target(page);
  dsm::detail::fault_dispatch::add(guarded.view, guarded.view + guarded.bytes, &target);
  const double segv = median_ns(o.reps, [&] {
    ::mprotect(guarded.view, guarded.bytes, PROT_NONE);
    sink = touch_pages(guarded.view, n, page);
  }) / static_cast<double>(n);
  const double rearm_segv = median_ns(o.reps, [&] {
    for (std::size_t p = 0; p < n; ++p) ::mprotect(guarded.view + p * page, page, p % 2 ? PROT_NONE : PROT_READ);
  }) / static_cast<double>(n);
  dsm::detail::fault_dispatch::remove(&target);
  row("sigsegv_fault", page, n, segv, "kernel_minor_fault", minor);

  file_pages served(n);
  uffd_server uffd(served.view, served.bytes, page);
  const double rearm_uffd = median_ns(o.reps, [&] {
    for (std::size_t p = 0; p < n; p += 2) ::madvise(served.view + p * page, page, MADV_DONTNEED);
  }) / static_cast<double>(n) * 2;
  if (uffd.works()) {
    const double minor_uffd = median_ns(o.reps, [&] {
      ::madvise(served.view, served.bytes, MADV_DONTNEED);
      sink = touch_pages(served.view, n, page);
    }) / static_cast<double>(n);
    row("uffd_minor_fault", page, n, minor_uffd, "kernel_minor_fault", minor);
  } else {
    fmt::print(stderr, "bench/region: userfaultfd minor faults on shared memory are not available here: {}\n",
               std::strerror(errno));
  }
  // Alternate pages: each call changes one page alone (neighbours differ),
  // as a coherence action on one unit does.
  row("sigsegv_rearm", page, n, rearm_segv * 2, "uffd_rearm", rearm_uffd);
}

// -- remote faults -----------------------------------------------------------

template <class Policy>
void remote_faults(const options& o) {
  const std::size_t page = page_bytes(), n = o.pages;
  dsm::global_region<Policy> r(2 * n * page, "bench");
  const std::size_t first = r.home_bytes();  // rank 1's pages
  auto* words = r.base();
  if (dsm::rank() == 1) std::memset(words + first, 1, n * page);
  dsm::barrier();
  if (dsm::rank() == 0) {
    // Warm: keys and mappings of the home's memory are once-per-region costs.
    sink = touch_pages(words + first, 1, page);
    r.advise(words + first, page, dsm::advice::dontneed);
  }
  double read = 0, write = 0;
  if (dsm::rank() == 0) {
    std::vector<double> t;
    for (int k = 0; k < o.reps; ++k) {
      r.advise(words + first, n * page, dsm::advice::dontneed);
      t.push_back(dsm_bench::time_ns([&] { sink = touch_pages(words + first, n, page); }));
    }
    read = dsm_bench::median(t) / static_cast<double>(n);
  }
  dsm::barrier();
  std::vector<double> tw;
  for (int k = 0; k < o.reps; ++k) {
    if (dsm::rank() == 0)
      tw.push_back(dsm_bench::time_ns([&] {
        for (std::size_t p = 0; p < n; ++p) *reinterpret_cast<volatile std::byte*>(words + first + p * page) = std::byte{2};
      }));
    dsm::barrier();  // changes home, copies and ownership dropped: the next round faults again
  }
  if (dsm::rank() == 0) write = dsm_bench::median(tw) / static_cast<double>(n);

  // Baselines on plain registered memory homed on rank 1.
  auto blocks = dsm::allocate_collective<std::uint64_t>(n * page / 8);
  std::vector<std::uint64_t> buffer(page / 8);
  auto directory = dsm::allocate_collective<std::uint64_t>(n);
  double get = 0, two_trips = 0;
  if (dsm::rank() == 0) {
    get = median_ns(o.reps, [&] {
      for (std::size_t p = 0; p < n; ++p) dsm::rget(blocks[1] + static_cast<std::ptrdiff_t>(p * page / 8), page / 8, buffer.data()).wait();
    }) / static_cast<double>(n);
    two_trips = median_ns(o.reps, [&] {
      for (std::size_t p = 0; p < n; ++p) {
        (void)dsm::atomic_fetch_or(directory[1] + static_cast<std::ptrdiff_t>(p), std::uint64_t{1}).wait();
        dsm::rget(blocks[1] + static_cast<std::ptrdiff_t>(p * page / 8), page / 8, buffer.data()).wait();
      }
    }) / static_cast<double>(n);
    const std::string read_name = fmt::format("read_fault_{}", Policy::name);
    row(read_name.c_str(), page, n, read, "rget_page", get);
    if constexpr (std::same_as<Policy, dsm::single_writer>)
      row("read_fault_vs_two_round_trips", page, n, read, "atomic_then_rget", two_trips);
    if constexpr (!std::same_as<Policy, dsm::read_only>) {
      const std::string write_name = fmt::format("write_fault_{}", Policy::name);
      row(write_name.c_str(), page, n, write, "rget_page", get);
    }
  }
  dsm::barrier();
  dsm::deallocate(blocks[static_cast<std::size_t>(dsm::rank())]);
  dsm::deallocate(directory[static_cast<std::size_t>(dsm::rank())]);
  dsm::barrier();
}

// The same protocol behind an array's software check: what the fault adds.
void array_miss(const options& o) {
  const std::size_t page = page_bytes(), n = o.pages, per = page / 8;
  dsm::shared_array<std::uint64_t, dsm::single_writer> a(2 * n * per, dsm::block, dsm::unit_size{page}, "bench");
  for (auto& v : a.local()) v = 1;
  dsm::barrier();
  auto blocks = dsm::allocate_collective<std::uint64_t>(n * per);
  std::vector<std::uint64_t> buffer(per);
  if (dsm::rank() == 0) {
    std::vector<double> t;
    for (int k = 0; k < o.reps; ++k) {
      a.advise(n * per, n * per, dsm::advice::dontneed);
      t.push_back(dsm_bench::time_ns([&] {
        std::uint64_t s = 0;
        for (std::size_t p = 0; p < n; ++p) s += a[n * per + p * per];
        sink = s;
      }));
    }
    const double miss = dsm_bench::median(t) / static_cast<double>(n);
    const double get = median_ns(o.reps, [&] {
      for (std::size_t p = 0; p < n; ++p) dsm::rget(blocks[1] + static_cast<std::ptrdiff_t>(p * per), per, buffer.data()).wait();
    }) / static_cast<double>(n);
    row("read_miss_array", page, n, miss, "rget_page", get);
  }
  dsm::barrier();
  dsm::deallocate(blocks[static_cast<std::size_t>(dsm::rank())]);
  dsm::barrier();
}

}  // namespace

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  options o;
  const bool parsed = dsm_bench::parse_pairs(
      argc, argv, "[--pages N] [--reps N] [--only mechanism|remote]", [&](std::string_view flag, std::string_view value) {
        const auto number = std::strtoull(std::string(value).c_str(), nullptr, 10);
        if (flag == "--pages" && number > 0) return o.pages = number, true;
        if (flag == "--reps" && number > 0) return o.reps = static_cast<int>(number), true;
        if (flag == "--only" && (value == "mechanism" || value == "remote")) return o.only = value, true;
        return false;
      });
  if (!parsed) return 2;
  if (dsm::ranks() != 2) {
    if (dsm::rank() == 0) fmt::print(stderr, "bench/region runs on 2 ranks (dsmrun -n 2)\n");
    return 2;
  }
  if (dsm::rank() == 0) fmt::print("measure,unit_bytes,x,median_ns,baseline,baseline_ns,ratio\n");
  if (o.runs("mechanism") && dsm::rank() == 0) mechanism(o);
  dsm::barrier();
  if (o.runs("remote")) {
    remote_faults<dsm::single_writer>(o);
    remote_faults<dsm::write_shared>(o);
    array_miss(o);
  }
}

// A global region's pages: one memory file (memfd), mapped twice. The
// program's view is at the address every rank agreed on, in the region's
// own byte order, its pages' protections following the coherence states;
// the system view is where dsm (and UCX) read and write, always readable
// and writable, in the coherence engine's order (rank r's pages in its
// slot, mirror_space.hpp). Both views share the pages, so what a transfer
// puts into the system view is what the program then reads.
#pragma once

#include <dsm/error.hpp>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace dsm::detail {

class region_mapping {
 public:
  // `file_bytes` of file (no page is allocated before it is touched); the
  // system view mapped at once.
  region_mapping(std::size_t file_bytes, const std::string& object) : bytes_(file_bytes), object_(object) {
    fd_ = ::memfd_create("dsm-global-region", MFD_CLOEXEC);
    if (fd_ < 0) fail("creating its memory file", errno);
    if (::ftruncate(fd_, static_cast<off_t>(file_bytes)) != 0) {
      const int e = errno;
      ::close(fd_);
      fail(fmt::format("sizing its memory file to {} B", file_bytes), e);
    }
    // Reserved with room to spare after it: UCX may round a home block it
    // maps into this view up to a huge page.
    void* r = ::mmap(nullptr, file_bytes + slack_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    void* p = r == MAP_FAILED ? r : ::mmap(r, file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd_, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      if (r != MAP_FAILED) ::munmap(r, file_bytes + slack_bytes);
      ::close(fd_);
      fail(fmt::format("mapping {} B of address space for dsm's view", file_bytes), e);
    }
    system_ = static_cast<std::byte*>(p);
  }
  region_mapping(const region_mapping&) = delete;
  region_mapping& operator=(const region_mapping&) = delete;
  ~region_mapping() {
    unmap_program_view();
    ::munmap(system_, bytes_ + slack_bytes);
    ::close(fd_);
  }

  std::byte* system_view() const noexcept { return system_; }
  std::byte* program_view() const noexcept { return program_; }
  std::size_t bytes() const noexcept { return bytes_; }

  // Maps the program's view at exactly `at` (nothing there may move), no
  // access yet; false if something is mapped there already. `file_offset`
  // gives, for each run of `unit_bytes` of the view, where in the file it
  // is: identity for a region homed in blocks (one mapping), a permutation
  // for one homed cyclically (one mapping per unit).
  template <class FileOffset>
  bool map_program_view(std::byte* at, std::size_t unit_bytes, bool identity, FileOffset&& file_offset) {
    if (identity) {
      void* p = ::mmap(at, bytes_, PROT_NONE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
      if (p == MAP_FAILED) return false;
      if (p != at) {  // a hint only: taken elsewhere
        ::munmap(p, bytes_);
        return false;
      }
      program_ = at;
      return true;
    }
    void* p = ::mmap(at, bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return false;
    if (p != at) {
      ::munmap(p, bytes_);
      return false;
    }
    program_ = at;
    for (std::size_t off = 0; off < bytes_; off += unit_bytes) {
      void* q = ::mmap(at + off, unit_bytes, PROT_NONE, MAP_SHARED | MAP_FIXED, fd_,
                       static_cast<off_t>(file_offset(off)));
      if (q == MAP_FAILED) {
        const int e = errno;
        unmap_program_view();
        fail(fmt::format("mapping unit {} of its view ({} mappings; vm.max_map_count bounds them)", off / unit_bytes,
                         bytes_ / unit_bytes),
             e);
      }
    }
    return true;
  }
  void unmap_program_view() noexcept {
    if (program_ != nullptr) ::munmap(program_, bytes_);
    program_ = nullptr;
  }

  // Shows the shared mapping at `source` (n bytes: a home block UCX mapped
  // into the system view) at [offset, offset + n) of the program's view
  // too, instead of the file's pages.
  // The system call itself: UCX's memory hooks replace mremap() with one
  // that drops the new address.
  void alias_program_view(std::size_t offset, std::byte* source, std::size_t n) {
    const long p = ::syscall(SYS_mremap, source, 0, n, MREMAP_MAYMOVE | MREMAP_FIXED, program_ + offset);
    if (p == -1 || reinterpret_cast<std::byte*>(p) != program_ + offset)
      fail(fmt::format("showing its home pages at offset {} of its view ({} B)", offset, n), p == -1 ? errno : EFAULT);
  }

  // The program's access to [offset, offset + n) of its view.
  void protect(std::size_t offset, std::size_t n, int prot) const noexcept {
    if (::mprotect(program_ + offset, n, prot) != 0) protect_failed(offset, n, prot, errno);
  }
  // Gives the pages of [file_offset, +n) back to the machine (a dropped
  // copy's memory); they read as zeros until written again.
  void release_pages(std::size_t file_offset, std::size_t n) const noexcept {
    (void)::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(file_offset),
                      static_cast<off_t>(n));
  }

 private:
  [[noreturn]] void fail(const std::string& what, int e) const {
    throw error(e == ENOMEM ? errc::out_of_memory : errc::invalid_argument,
                fmt::format("{}: {} failed: {}", object_, what, std::strerror(e)));
  }
  // A protection the coherence state needs but the kernel refused (its
  // mappings are counted: vm.max_map_count): continuing would let the
  // program read stale data or lose a write, so the process ends here.
  [[noreturn]] void protect_failed(std::size_t offset, std::size_t n, int prot, int e) const noexcept {
    std::fprintf(stderr,
                 "dsm: %s: setting the protection of bytes [%zu, %zu) to %d failed: %s%s; ending the process (its "
                 "coherence cannot be kept)\n",
                 object_.c_str(), offset, offset + n, prot, std::strerror(e),
                 e == ENOMEM ? " (too many mappings: raise vm.max_map_count or use larger units)" : "");
    std::fflush(stderr);
    std::abort();
  }

  static constexpr std::size_t slack_bytes = std::size_t{2} << 20;

  std::size_t bytes_;
  std::string object_;
  int fd_ = -1;
  std::byte* system_ = nullptr;
  std::byte* program_ = nullptr;
};

}  // namespace dsm::detail

// Registered memory: a region UCX allocates and maps (so that shared-memory
// transports can reach it directly), its packed rkey for peers, and a peer's
// unpacked rkey.
#pragma once

#include <dsm/transport/status.hpp>
#include <dsm/transport/worker.hpp>

#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucp/api/ucp.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace dsm::transport {

class memory_region {
 public:
  memory_region() = default;
  // `bytes` of fresh zeroed memory, registered for RMA and atomics; mapped
  // at `at` (page-aligned, address space the caller reserved and gives up)
  // unless that is null.
  memory_region(worker& w, std::size_t bytes, std::byte* at = nullptr) : worker_(&w), bytes_(bytes) {
    ucp_mem_map_params_t params{};
    params.field_mask = UCP_MEM_MAP_PARAM_FIELD_LENGTH | UCP_MEM_MAP_PARAM_FIELD_FLAGS;
    params.length = bytes == 0 ? 1 : bytes;  // UCX maps nothing of length 0
    params.flags = UCP_MEM_MAP_ALLOCATE;
    if (at != nullptr) {
      params.field_mask |= UCP_MEM_MAP_PARAM_FIELD_ADDRESS;
      params.address = at;
      params.flags |= UCP_MEM_MAP_FIXED;
    }
    map(w, params, bytes);
  }
  // Memory the caller mapped (page-aligned, `bytes` long), registered as it
  // is: the caller keeps the mapping until this region is gone. Over shared
  // memory UCX reaches it through cross-memory attach, not its own segments.
  struct caller_mapped_t {};
  static constexpr caller_mapped_t caller_mapped{};
  memory_region(worker& w, std::byte* existing, std::size_t bytes, caller_mapped_t) : worker_(&w), bytes_(bytes) {
    ucp_mem_map_params_t params{};
    params.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH | UCP_MEM_MAP_PARAM_FIELD_FLAGS;
    params.address = existing;
    params.length = bytes == 0 ? 1 : bytes;
    params.flags = 0;
    map(w, params, bytes);
  }

 private:
  void map(worker& w, const ucp_mem_map_params_t& params, std::size_t bytes) {
    const auto g = w.lock();
    check(ucp_mem_map(w.context(), &params, &memh_), fmt::format("mem_map of {} bytes", bytes));
    ucp_mem_attr_t attr{};
    attr.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH;
    if (const ucs_status_t s = ucp_mem_query(memh_, &attr); s != UCS_OK) {
      ucp_mem_unmap(w.context(), memh_);
      throw_status(s, "mem_query");
    }
    base_ = static_cast<std::byte*>(attr.address);
    mapped_bytes_ = attr.length;
    void* packed = nullptr;
    std::size_t packed_size = 0;
    if (const ucs_status_t s = ucp_rkey_pack(w.context(), memh_, &packed, &packed_size); s != UCS_OK) {
      ucp_mem_unmap(w.context(), memh_);
      throw_status(s, "rkey_pack");
    }
    packed_rkey_.assign(static_cast<std::byte*>(packed), static_cast<std::byte*>(packed) + packed_size);
    ucp_rkey_buffer_release(packed);
  }

 public:
  memory_region(memory_region&& o) noexcept
      : worker_(std::exchange(o.worker_, nullptr)), memh_(std::exchange(o.memh_, nullptr)),
        base_(std::exchange(o.base_, nullptr)), bytes_(std::exchange(o.bytes_, 0)),
        mapped_bytes_(std::exchange(o.mapped_bytes_, 0)), packed_rkey_(std::move(o.packed_rkey_)) {}
  memory_region& operator=(memory_region&& o) noexcept {
    if (this != &o) {
      unmap();
      worker_ = std::exchange(o.worker_, nullptr);
      memh_ = std::exchange(o.memh_, nullptr);
      base_ = std::exchange(o.base_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
      mapped_bytes_ = std::exchange(o.mapped_bytes_, 0);
      packed_rkey_ = std::move(o.packed_rkey_);
    }
    return *this;
  }
  ~memory_region() { unmap(); }

  std::byte* base() const noexcept { return base_; }
  std::size_t bytes() const noexcept { return bytes_; }
  // What UCX mapped: at least bytes(), rounded up to its pages.
  std::size_t mapped_bytes() const noexcept { return mapped_bytes_; }
  std::span<const std::byte> packed_rkey() const noexcept { return packed_rkey_; }

 private:
  void unmap() noexcept {
    if (memh_) {
      const auto g = worker_->lock();
      ucp_mem_unmap(worker_->context(), memh_);
      memh_ = nullptr;
    }
  }

  worker* worker_ = nullptr;
  ucp_mem_h memh_ = nullptr;
  std::byte* base_ = nullptr;
  std::size_t bytes_ = 0, mapped_bytes_ = 0;
  std::vector<std::byte> packed_rkey_;
};

// Whether the memory UCX allocates for this worker's registrations is a
// shared mapping (its shared-memory transports' segments), which a second
// mapping can alias (mremap with old size 0): a global_region then shows
// its home pages to the program through such an alias, and peers reach them
// with UCX's direct shared-memory copies. Over TCP UCX allocates private
// memory: the region registers its own pages instead. Probed once.
inline bool allocations_are_shared(worker& w) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  memory_region probe(w, page);
  // The system call itself: UCX's memory hooks replace mremap().
  const long alias = ::syscall(SYS_mremap, probe.base(), 0, page, MREMAP_MAYMOVE);
  if (alias == -1 || alias == 0) return false;
  ::munmap(reinterpret_cast<void*>(alias), page);
  return true;
}

class remote_key {
 public:
  remote_key() = default;
  remote_key(worker& w, ucp_ep_h ep, std::span<const std::byte> packed, int peer) : worker_(&w) {
    const auto g = w.lock();
    check(ucp_ep_rkey_unpack(ep, packed.data(), &rkey_), "rkey_unpack", peer);
  }
  remote_key(remote_key&& o) noexcept : worker_(o.worker_), rkey_(std::exchange(o.rkey_, nullptr)) {}
  remote_key& operator=(remote_key&& o) noexcept {
    if (this != &o) {
      destroy();
      worker_ = o.worker_;
      rkey_ = std::exchange(o.rkey_, nullptr);
    }
    return *this;
  }
  ~remote_key() { destroy(); }

  ucp_rkey_h handle() const noexcept { return rkey_; }

 private:
  void destroy() noexcept {
    if (rkey_) {
      const auto g = worker_->lock();
      ucp_rkey_destroy(rkey_);
      rkey_ = nullptr;
    }
  }
  worker* worker_ = nullptr;
  ucp_rkey_h rkey_ = nullptr;
};

}  // namespace dsm::transport

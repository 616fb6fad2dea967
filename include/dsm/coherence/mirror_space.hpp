// The address space a caching array's copies live in: one slot of
// `slot_bytes` per rank, back to back, so that rank r's local element k is
// at base + (r * slot elements + k) elements whoever's block it is (a slot
// holds the largest block rounded up to whole units: unit_map). This rank's
// slot is its own block: the runtime maps the registered memory there
// (UCP_MEM_MAP_FIXED), so the hit path addresses every element from one
// base, with no select between own block and mirror. Other slots are
// reserved only (pages appear when a unit is first fetched).
//
// Reserved before the block is allocated; the block's mapping, once made,
// belongs to the runtime (it unmaps it when the segment is freed, possibly
// after this object is gone), so only the reservation around it is
// unmapped here.
#pragma once

#include <dsm/error.hpp>

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace dsm::coherence {

class mirror_space {
 public:
  mirror_space(std::size_t ranks, std::size_t me, std::size_t slot_bytes, std::string_view object)
      : slot_bytes_(slot_bytes), me_(me) {
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    // The own slot starts on a page (a fixed mapping must); the others
    // follow at slot_bytes steps, so the reservation starts up to a page
    // before slot 0 and ends past the last slot with room to spare for an
    // allocator that rounds the block's mapping up to a huge page.
    const std::size_t before = me * slot_bytes, after = (ranks - me) * slot_bytes;
    const std::size_t lead = round_up(before, page), tail = round_up(std::max<std::size_t>(after, 1), page);
    reserved_bytes_ = lead + tail + huge_page_slack;
    void* p = ::mmap(nullptr, reserved_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      throw error(errc::invalid_argument, fmt::format("{}: reserving {} B of address space for the copies failed: {}",
                                                      object, reserved_bytes_, std::strerror(errno)));
    reserved_ = static_cast<std::byte*>(p);
    own_slot_ = reserved_ + lead;
    base_ = reinterpret_cast<std::uintptr_t>(own_slot_) - before;
  }
  // Over a mapping the caller owns, slot 0 at `slot0` (a global_region's
  // file-backed view of every rank's pages, this rank's block in its own
  // slot): nothing is reserved or unmapped here.
  struct over_mapping_t {};
  static constexpr over_mapping_t over_mapping{};
  mirror_space(over_mapping_t, std::byte* slot0, std::size_t me, std::size_t slot_bytes)
      : slot_bytes_(slot_bytes), me_(me), own_slot_(slot0 + me * slot_bytes), own_bytes_(slot_bytes),
        base_(reinterpret_cast<std::uintptr_t>(slot0)) {}
  mirror_space(const mirror_space&) = delete;
  mirror_space& operator=(const mirror_space&) = delete;
  // Only around the block's mapping, which the runtime unmaps itself. Not
  // adopted (the allocation failed, perhaps after the block was mapped into
  // the slot), the slot and all after it stay reserved: address space only,
  // never unmapped under the runtime's feet.
  ~mirror_space() {
    if (reserved_ == nullptr) return;  // over the caller's mapping
    if (own_slot_ > reserved_) ::munmap(reserved_, static_cast<std::size_t>(own_slot_ - reserved_));
    if (own_bytes_ == 0) return;
    std::byte* const own_end = own_slot_ + own_bytes_;
    if (std::byte* const end = reserved_ + reserved_bytes_; own_end < end)
      ::munmap(own_end, static_cast<std::size_t>(end - own_end));
  }

  // Where this rank's block must be mapped.
  std::byte* own_slot() const noexcept { return own_slot_; }
  // The block is mapped at `address` (must be own_slot()), `mapped_bytes`
  // long as the runtime mapped it (page-rounded, at least slot_bytes).
  void adopt_own_block(const std::byte* address, std::size_t mapped_bytes, std::string_view object) {
    if (address != own_slot_ || mapped_bytes < slot_bytes_ ||
        own_slot_ + mapped_bytes > reserved_ + reserved_bytes_)
      throw error(errc::internal, fmt::format("{}: rank {}'s block was mapped at {} ({} B), not in its slot at {} ({} B)",
                                              object, me_, static_cast<const void*>(address), mapped_bytes,
                                              static_cast<const void*>(own_slot_), slot_bytes_));
    own_bytes_ = mapped_bytes;
  }

  // Rank r's element k of `element_bytes` is at base() + (r * slot + k * eb);
  // slot 0's address, inside the reservation.
  std::uintptr_t base() const noexcept { return base_; }
  std::byte* slot(std::size_t rank) const noexcept { return reinterpret_cast<std::byte*>(base_ + rank * slot_bytes_); }

 private:
  static constexpr std::size_t huge_page_slack = std::size_t{2} << 20;
  static std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

  std::size_t slot_bytes_, me_;
  std::byte* reserved_ = nullptr;
  std::size_t reserved_bytes_ = 0;
  std::byte* own_slot_ = nullptr;
  std::size_t own_bytes_ = 0;
  std::uintptr_t base_ = 0;
};

}  // namespace dsm::coherence

// dsm::global_region<Policy>: bytes at the same virtual address on every
// rank, so that plain pointers (and pointers stored inside the region)
// mean the same everywhere. Its pages are homed over the ranks in blocks
// or cyclically, in coherence units of one or more pages; plain loads and
// stores are kept coherent by the policy, driven by page faults: a unit
// this rank holds no valid copy of is inaccessible, a read copy read-only,
// and the fault on touching it is the array path's miss (a get from the
// home, an ownership request, a twin). Releases and acquires are the
// arrays': dsm::barrier(), dsm::lock, dsm::fence(), and flush() here.
//
// Pages move through a second mapping of the same memory that is never
// protected (region_mapping.hpp): dsm and UCX never fault on region pages.
//
// Chosen: mprotect + SIGSEGV (docs/guide/regions.md has the measurements
// against userfaultfd): it runs unprivileged, under qemu-user, on both
// ISAs, and tells read from write faults where userfaultfd's minor-fault
// mode (needed for pages that are present but stale) does not.
#pragma once

#include <dsm/allocate.hpp>
#include <dsm/coherence/advice.hpp>
#include <dsm/coherence/array_layout.hpp>
#include <dsm/coherence/page_protection.hpp>
#include <dsm/coherence/read_only.hpp>
#include <dsm/coherence/single_writer.hpp>
#include <dsm/coherence/unit_map.hpp>
#include <dsm/coherence/write_shared.hpp>
#include <dsm/detail/region_heap.hpp>
#include <dsm/detail/region_mapping.hpp>
#include <dsm/detail/rpc_registry.hpp>
#include <dsm/detail/type_name.hpp>
#include <dsm/distribution.hpp>
#include <dsm/lock.hpp>
#include <dsm/runtime/fault_dispatch.hpp>
#include <dsm/runtime/runtime.hpp>
#include <dsm/team.hpp>

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace dsm {

// The policies a page fault can drive: their contracts are about units
// read and written, which a fault sees. The others' are about how values
// are combined or handed over (reduction, producer_consumer, migratory),
// which a load or store does not say.
template <class P>
concept region_policy = std::same_as<P, single_writer> || std::same_as<P, write_shared> || std::same_as<P, read_only>;

template <class D>
concept region_homing = std::same_as<D, block_t> || std::same_as<D, cyclic_t>;

// This rank's fault counts for a region, and its coherence counters.
struct region_counters {
  std::uint64_t read_faults = 0, write_faults = 0;
  array_counters coherence;
};

namespace detail {
inline std::size_t page_bytes() noexcept { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }
// Address space the program views of all regions may take, per region:
// both views are mapped, and the common address is looked for in a zone
// every rank's address space has (below 2^47 on x86-64 and arm64 alike).
inline constexpr std::uintptr_t region_zone_begin = std::uintptr_t{0x1000} << 32;  // 16 TiB
inline constexpr std::uintptr_t region_zone_end = std::uintptr_t{0x6000} << 32;    // 96 TiB
inline constexpr std::size_t max_region_bytes = std::size_t{1} << 44;              // 16 TiB
}  // namespace detail

template <class Policy = single_writer>
class global_region {
  static_assert(region_policy<Policy>,
                "dsm::global_region<Policy>: page faults drive single_writer, write_shared and read_only; the "
                "contracts of reduction, producer_consumer and migratory are about how values combine or move, "
                "which a plain load or store does not say: use a shared_array for those");

 public:
  using policy_type = Policy;
  static constexpr std::size_t critical_locks = 8;

  // Collective: `bytes` (at least; rounded up to whole units on every
  // rank), homed in blocks of pages, one page per coherence unit.
  explicit global_region(std::size_t bytes, std::string name = {})
      : global_region(bytes, block, unit_size{detail::page_bytes()}, std::move(name)) {}
  template <region_homing D>
  global_region(std::size_t bytes, D homing, std::string name = {})
      : global_region(bytes, homing, unit_size{detail::page_bytes()}, std::move(name)) {}
  // `unit`: bytes per coherence unit, a multiple of the page size.
  // cyclic: unit k is homed on rank k % ranks().
  template <region_homing D>
  global_region(std::size_t bytes, D, unit_size unit, std::string name = {})
      : body_(std::make_unique<body>(bytes, std::same_as<D, cyclic_t>, unit.bytes, std::move(name))) {}

  global_region(const global_region&) = delete;
  global_region& operator=(const global_region&) = delete;
  global_region(global_region&&) noexcept = default;
  global_region& operator=(global_region&& other) noexcept {
    if (this != &other) {
      body_.reset();
      body_ = std::move(other.body_);
    }
    return *this;
  }
  // Collective, as construction.
  ~global_region() = default;

  bool valid() const noexcept { return body_ != nullptr; }
  // The same address on every rank.
  std::byte* base() const { return live("base").mapping->program_view(); }
  std::size_t size() const noexcept { return body_ ? body_->total : 0; }
  std::size_t unit_bytes() const noexcept { return body_ ? body_->unit_bytes : 0; }
  const std::string& name() const { return live("name").layout.name; }

  // The region's bytes from `offset` as T (aligned for T, inside the region).
  template <class T>
  T* as(std::size_t offset = 0) const {
    const auto& b = live("as");
    if (offset % alignof(T) != 0 || offset > b.total || sizeof(T) > b.total - offset)
      throw error(errc::out_of_range, fmt::format("{}: as<{}>({}): {} B at offset {} {}", describe(), detail::type_name<T>(),
                                                  offset, sizeof(T), offset,
                                                  offset % alignof(T) != 0 ? "is misaligned" : "run past its end"));
    return reinterpret_cast<T*>(b.mapping->program_view() + offset);
  }
  bool contains(const void* p, std::size_t bytes = 1) const noexcept {
    if (!body_) return false;
    const auto* b = body_->mapping->program_view();
    const auto* q = static_cast<const std::byte*>(p);
    return q >= b && q < b + body_->total && bytes <= static_cast<std::size_t>(b + body_->total - q);
  }
  // The rank whose memory holds the unit `p` is in.
  std::size_t home_of(const void* p) const {
    const auto& b = live("home_of");
    return b.units->home_of(b.protection->unit_at(b.offset_of(p, 1, "home_of")));
  }
  // This rank's home bytes (its arena for region_allocator): in block
  // homing, where they are in the region; cyclic homing spreads them.
  std::size_t home_offset() const { return live("home_offset").arena_offset(); }
  std::size_t home_bytes() const { return live("home_bytes").slot_bytes; }

  // GMEM's hints: willneed fetches the range's missing units now without
  // waiting; dontneed drops its read copies and gives their memory back
  // (the units this rank writes stay until its release sends them).
  void advise(const void* p, std::size_t bytes, advice a) {
    const detail::rank_entry entry;
    auto& b = live("advise");
    if (a != advice::willneed && a != advice::dontneed)
      throw error(errc::invalid_argument,
                  fmt::format("{}: advise with advice {}: expected willneed or dontneed", describe(), static_cast<int>(a)));
    if (bytes == 0) return;
    const std::size_t first = b.offset_of(p, bytes, "advise");
    b.advise(first, bytes, a);
  }
  void prefetch(const void* p, std::size_t bytes) { advise(p, bytes, advice::willneed); }

  // LOCO's mapping of OpenMP's primitives onto release consistency:
  // flush() is a release and an acquire of everything this rank shares;
  // critical(name, f) runs f under a lock named by `name` (names share
  // critical_locks locks: two names may exclude each other, never fail to);
  // atomic_* update one region word under the lock its address picks, so
  // every atomic on a word is ordered, and each is a release: its value is
  // at the home when it returns. A word updated with atomics is read with
  // atomic_load (or after a barrier), as OpenMP asks.
  void flush() {
    live("flush");
    detail::rt().release();
    detail::rt().acquire();
  }
  template <std::invocable F>
  decltype(auto) critical(std::string_view name, F&& f) {
    auto& b = live("critical");
    // FNV-1a, not std::hash: every rank, whatever its ISA or library, must
    // pick the same lock for a name.
    const std::scoped_lock g(*b.locks[detail::fnv1a(name) % critical_locks]);
    return std::invoke(std::forward<F>(f));
  }
  template <class T>
  T atomic_fetch_add(T* word, std::type_identity_t<T> value) {
    return atomic_update(word, "atomic_fetch_add", [&](T old) { return static_cast<T>(old + value); });
  }
  template <class T>
  T atomic_exchange(T* word, std::type_identity_t<T> value) {
    return atomic_update(word, "atomic_exchange", [&](T) { return value; });
  }
  template <class T>
  bool atomic_compare_exchange(T* word, T& expected, std::type_identity_t<T> desired) {
    bool swapped = false;
    const T seen = atomic_update(word, "atomic_compare_exchange", [&](T old) {
      swapped = old == expected;
      return swapped ? desired : old;
    });
    if (!swapped) expected = seen;
    return swapped;
  }
  template <class T>
  T atomic_load(const T* word) {
    return atomic_update(const_cast<T*>(word), "atomic_load", [](T old) { return old; });
  }

  region_counters stats() const {
    const auto& b = live("stats");
    return {b.read_faults, b.write_faults, const_cast<body&>(b).policy_stats().snapshot()};
  }

  std::string describe() const {
    if (!body_) return fmt::format("a moved-from global_region<{}>", Policy::name);
    return body_->layout.description;
  }

 private:
  template <class T, class Update>
  T atomic_update(T* word, const char* operation, Update&& update) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8 && std::equality_comparable<T>,
                  "dsm::global_region atomics: a word of at most 8 bytes, trivially copyable and comparable");
    auto& b = live(operation);
    (void)b.offset_of(word, sizeof(T), operation);
    if (reinterpret_cast<std::uintptr_t>(word) % alignof(T) != 0)
      throw error(errc::invalid_argument, fmt::format("{}: {} on a misaligned word at {}", describe(), operation,
                                                      static_cast<const void*>(word)));
    const std::scoped_lock g(*b.locks[(reinterpret_cast<std::uintptr_t>(word) / sizeof(T)) % critical_locks]);
    const T old = *word;
    if (const T now = update(old); !(now == old)) {
      if constexpr (std::same_as<Policy, read_only>)
        throw error(errc::read_only_violation, fmt::format("{}: {} would write a read_only region", describe(), operation));
      else *word = now;
    }
    return old;
  }

  // What a region is, on the heap so that moving the region moves nothing:
  // the fault dispatcher, the barriers and the protections refer to it.
  struct body final : detail::fault_target {
    coherence::array_layout<std::byte> layout;
    std::size_t me = 0, ranks = 0, unit_bytes = 0, total = 0, slot_bytes = 0;
    bool cyclic = false;
    bool alias_home = false;  // the home block is UCX's shared segment, aliased into the program view
    std::size_t home_mapped_bytes = 0;
    std::unique_ptr<detail::region_mapping> mapping;
    std::optional<coherence::unit_map> units;  // the engine's unit numbering, for home_of
    std::optional<typename Policy::template state<std::byte>> state;
    std::optional<coherence::page_protection> protection;
    std::vector<std::unique_ptr<queue_lock>> locks;  // collective: made with the region
    std::optional<detail::region_arena> arena;  // region_allocator's
    coherence::sync_hooks<body> sync{this};
    bool dispatched = false, serving = false;
    std::uint64_t read_faults = 0, write_faults = 0;
    std::byte* last_fault = nullptr;
    unsigned repeats = 0;
    int uncaught_at_construction = std::uncaught_exceptions();
    std::uint64_t runtime_number = detail::current_runtime_number();

    body(std::size_t bytes, bool cyclic_homing, std::size_t unit, std::string name)
        : layout{dsm::distribution(block, 1, 1), {}, std::move(name), {}, 0, unit_size{unit}, {}, world()},
          cyclic(cyclic_homing) {
      const detail::rank_entry entry;
      auto& rt = detail::rt();
      me = rt.rank();
      ranks = rt.ranks();
      unit_bytes = unit;
      layout.description = fmt::format("global_region<{}>{}", Policy::name,
                                       layout.name.empty() ? std::string() : fmt::format(" '{}'", layout.name));
      const detail::runtime_state::operation_scope scope(
          rt, fmt::format("{} of {} B ({} homing, unit {} B)", layout.description, bytes, cyclic ? "cyclic" : "block", unit));
      check_sizes(bytes);
      layout.distribution = cyclic ? dsm::distribution(block_cyclic(unit_bytes), total, ranks)
                                   : dsm::distribution(block, total, ranks);
      layout.object_id = rt.next_object_id(world().state());
      rt.check_collective_bytes(world().state(), slot_bytes, layout.description);
      mapping = std::make_unique<detail::region_mapping>(total, layout.description);
      layout.mirror = std::make_unique<coherence::mirror_space>(coherence::mirror_space::over_mapping,
                                                                mapping->system_view(), me, slot_bytes);
      // Over shared memory UCX maps the home block (its own segment, which
      // peers copy from directly) into the system view, and the program
      // view aliases it; otherwise UCX registers the file's pages.
      alias_home = rt.fresh_segments_aliasable();
      auto blocks = detail::allocate_collective_of<std::byte>(
          world(), slot_bytes, layout.description, layout.mirror->own_slot(),
          alias_home ? detail::segment_memory::fresh : detail::segment_memory::caller_mapped);
      home_mapped_bytes = alias_home ? rt.mapped_bytes_of(detail::address_of(blocks[me]).segment) : slot_bytes;
      // From here on the pages are registered: should anything below fail,
      // a peer may still read them, so they stay mapped (leaked) rather
      // than go under the runtime's feet.
      try {
        adopt(blocks);
      } catch (...) {
        if (dispatched) detail::fault_dispatch::remove(this);
        if (arena) detail::region_arenas::remove(&*arena);
        unwatch();
        std::exchange(mapping, nullptr).release();
        throw;
      }
    }
    void adopt(std::vector<global_ptr<std::byte>>& blocks) {
      auto& rt = detail::rt();
      for (auto& block_ptr : blocks)
        layout.blocks.push_back(detail::make_global_ptr<std::byte>([&] {
          auto a = detail::address_of(block_ptr);
          a.policy_id = Policy::id;
          return a;
        }()));
      units.emplace(layout.distribution, 1, layout.unit, layout.description);
      state.emplace(layout);
      map_at_common_address();
      protection.emplace(replica(), *mapping, unit_bytes, ranks, units->units_per_rank(), cyclic);
      if (alias_home) show_home_block();
      {
        const auto g = rt.worker().lock();  // handlers change states under it
        if constexpr (std::same_as<Policy, read_only>) protection->set_home_writable(true);
        replica().watch(&*protection);
        protection->states_reset();
      }
      for (std::size_t k = 0; k < critical_locks; ++k) locks.push_back(std::make_unique<queue_lock>());
      if (!detail::fault_dispatch::add(mapping->program_view(), mapping->program_view() + total, this))
        throw error(errc::invalid_argument, fmt::format("{}: more than {} global regions at once", layout.description,
                                                        detail::fault_dispatch::max_ranges));
      dispatched = true;
      arena.emplace(detail::region_arena{mapping->program_view(), slot_bytes, me,
                                         detail::region_heap(arena_offset(), arena_offset() + slot_bytes,
                                                             layout.description)});
      detail::region_arenas::add(&*arena);
      rt.join_sync(&sync, world().state());
    }
    body(const body&) = delete;
    body& operator=(const body&) = delete;

    // Collective, as shared_array's: every rank's changes are home and
    // every access is over before the pages go. Destroyed while an
    // exception unwinds or in a failed job, it takes no collective step and
    // leaves its memory mapped (a peer may still read it) until the process
    // ends.
    // Runs only for a body constructed in full (a construction that threw
    // undid itself in adopt()).
    ~body() {
      detail::fault_dispatch::remove(this);
      detail::region_arenas::remove(&*arena);
      if (detail::current_runtime_number() != runtime_number) [[unlikely]] detail::outlived_its_runtime(layout.description);
      const detail::rank_entry entry;
      const bool ended = coherence::end_collectively(sync, layout.team, layout.description, uncaught_at_construction,
                                                     [&] { state->arrive(); }, [&] {
                                                       locks.clear();
                                                       deallocate(layout.blocks[me]);
                                                     });
      unwatch();
      if (!ended) {
        std::exchange(mapping, nullptr).release();  // registered still: a peer may read it
        return;
      }
      state.reset();
    }

    // -- sizes and addresses

    void check_sizes(std::size_t bytes) {
      const std::size_t page = detail::page_bytes();
      if (bytes == 0)
        throw error(errc::invalid_argument, fmt::format("{}: a region of 0 bytes", layout.description));
      if (unit_bytes % page != 0 || unit_bytes < page || unit_bytes > unit_size::max_bytes)
        throw error(errc::invalid_argument,
                    fmt::format("{}: a unit of {} B: a region's unit is a whole number of pages ({} B) up to {} B",
                                layout.description, unit_bytes, page, unit_size::max_bytes));
      const std::size_t step = ranks * unit_bytes;
      if (bytes > detail::max_region_bytes - step)
        throw error(errc::out_of_memory,
                    fmt::format("{}: {} B asked; a region spans at most {} B of address space (it is mapped twice on "
                                "every rank)",
                                layout.description, bytes, detail::max_region_bytes));
      total = (bytes + step - 1) / step * step;
      slot_bytes = total / ranks;
    }

    // Every rank maps the program view at one candidate address after
    // another (the same sequence everywhere, in a zone no loader uses)
    // until all have it free.
    void map_at_common_address() {
      auto& rt = detail::rt();
      const std::size_t stride = (total + (std::size_t{1} << 30) - 1) >> 30 << 30;
      const std::size_t candidates = (detail::region_zone_end - detail::region_zone_begin) / stride;
      const std::size_t seed = static_cast<std::size_t>(layout.object_id) * 2654435761u;
      constexpr int attempts = 16;
      for (int k = 0; k < attempts; ++k) {
        auto* at = reinterpret_cast<std::byte*>(detail::region_zone_begin + (seed + k * 7919u) % candidates * stride);
        const bool mine = mapping->map_program_view(at, unit_bytes, !cyclic, [&](std::size_t off) {
          return file_offset_of_view(off);
        });
        const std::byte ok[1] = {std::byte{mine}};
        const auto all = rt.allgather(world().state(), ok);
        bool everywhere = true;
        for (const auto& v : all) everywhere = everywhere && v.size() == 1 && v[0] == std::byte{1};
        if (everywhere) return;
        if (mine) mapping->unmap_program_view();
      }
      throw error(errc::out_of_memory,
                  fmt::format("{}: no address range of {} B was free on every rank after {} tries", layout.description,
                              total, attempts));
    }
    // The units UCX mapped (this rank's block and whatever it rounded up
    // over, in the system view) appear in the program view through
    // aliases; each run of units adjacent in both views in one call.
    void show_home_block() {
      const std::size_t first = me * units->units_per_rank();
      const std::size_t last = std::min(units->units(), first + home_mapped_bytes / unit_bytes);
      for (std::size_t u = first; u < last;) {
        std::size_t end = u + 1;
        while (end < last && protection->view_offset(end) == protection->view_offset(u) + (end - u) * unit_bytes) ++end;
        mapping->alias_program_view(protection->view_offset(u), mapping->system_view() + u * unit_bytes,
                                    (end - u) * unit_bytes);
        u = end;
      }
    }
    // Where the program view's byte `off` is in the memory file (the
    // engine's order: every rank's units in its slot).
    std::size_t file_offset_of_view(std::size_t off) const noexcept {
      if (!cyclic) return off;
      const std::size_t g = off / unit_bytes;
      return ((g % ranks) * (slot_bytes / unit_bytes) + g / ranks) * unit_bytes + off % unit_bytes;
    }
    std::size_t offset_of(const void* p, std::size_t bytes, const char* operation) const {
      const auto* base = mapping->program_view();
      const auto* q = static_cast<const std::byte*>(p);
      if (q < base || q >= base + total || bytes > static_cast<std::size_t>(base + total - q))
        throw error(errc::out_of_range, fmt::format("{}: {} of {} B at {}: outside the region [{}, +{} B)",
                                                    layout.description, operation, bytes, p,
                                                    static_cast<const void*>(base), total));
      return static_cast<std::size_t>(q - base);
    }
    // This rank's arena: the view bytes of its slot in block homing; in
    // cyclic homing the same range of the view (homed all over, which
    // allocation does not mind).
    std::size_t arena_offset() const noexcept { return me * slot_bytes; }

    coherence::replica& replica() {
      if constexpr (std::same_as<Policy, read_only>) return state->copies();
      else return state->elements().protocol_engine().copies();
    }
    coherence::array_stats& policy_stats() { return state->stats(); }
    void unwatch() noexcept {
      if (!protection || !state) return;
      try {
        const auto g = detail::rt().worker().lock();
        replica().watch(nullptr);
      } catch (...) {
        replica().watch(nullptr);
      }
    }

    // -- synchronisation

    void after_barrier() {
      state->barrier();
      if constexpr (std::same_as<Policy, read_only>) protection->set_home_writable(false);
    }

    // -- hints

    void advise(std::size_t first, std::size_t bytes, advice a) {
      std::vector<std::size_t> wanted;
      for (std::size_t off = first / unit_bytes * unit_bytes; off < first + bytes; off += unit_bytes)
        wanted.push_back(protection->unit_at(off));
      auto& copies = replica();
      if (a == advice::willneed) {
        if constexpr (std::same_as<Policy, read_only>) {
          if (state->published()) state->prefetch_units(wanted);
        } else {
          state->elements().protocol_engine().prefetch(wanted);
        }
        return;
      }
      if constexpr (std::same_as<Policy, read_only>) state->drop_units(wanted);
      else state->elements().protocol_engine().drop(wanted);
      // A dropped copy's memory goes back to the machine (GMEM's dontneed).
      for (std::size_t u : wanted)
        if (!copies.is_home(u) && copies.state(u) == coherence::invalid)
          mapping->release_pages(file_offset_of_view(protection->view_offset(u)), unit_bytes);
    }

    // -- faults

    void on_fault(std::byte* address, detail::fault_access access) noexcept override {
      if (detail::current_runtime_number() != runtime_number)
        fatal(address, "touched after the dsm::runtime it was made under ended (its pages went with it)", false);
      if (!detail::multithreaded && !detail::on_runtime_thread)
        fatal(address,
              "touched by a thread other than the one that constructed dsm::runtime (threads::single: one thread per "
              "rank touches shared memory; see docs/guide/runtime.md: Threads)",
              true);
      const detail::rank_entry entry;  // threads::multiple: one fault served at a time
      if (serving) fatal(address, "touched while one of its faults was being served", true);
      serving = true;
      const std::size_t offset = static_cast<std::size_t>(address - mapping->program_view());
      const std::size_t unit = protection->unit_at(offset);
      try {
        auto& copies = replica();
        const std::uint8_t s = copies.state(unit);
        const bool readable = s == coherence::shared || s == coherence::updated || s == coherence::exclusive;
        const bool write = access == detail::fault_access::write ||
                           (access == detail::fault_access::unknown && readable);  // a readable page faults on stores only
        // The same access faulting again and again: the state allows it but
        // the protection lags (or the copy keeps being taken away): set it
        // anew, and give up rather than spin for ever.
        repeats = address == last_fault ? repeats + 1 : 0;
        last_fault = address;
        if (repeats > 100000) fatal(address, "faulted 100000 times in a row at one address", true);
        if (write) {
          ++write_faults;
          serve_write(unit, address);
        } else {
          ++read_faults;
          serve_read(unit, address);
        }
        if (copies.state(unit) == s && (write ? s == coherence::exclusive : readable)) protection->refresh(unit);
      } catch (const std::exception& e) {
        fatal(address, fmt::format("a {} fault could not be served: {}", write_text(access), e.what()), true);
      }
      serving = false;
    }
    static const char* write_text(detail::fault_access a) noexcept {
      return a == detail::fault_access::write ? "write" : a == detail::fault_access::read ? "read" : "";
    }

    void serve_read(std::size_t unit, std::byte* address) {
      if constexpr (std::same_as<Policy, read_only>) {
        if (!state->published())
          fatal(address,
                fmt::format("read rank {}'s unit before publication: read_only pages are each written by their home "
                            "rank and read by others only after the first barrier",
                            units->home_of(unit)),
                true);
        state->fetch_units(std::span<const std::size_t>(&unit, 1));
      } else {
        state->elements().protocol_engine().fetch(unit);
      }
    }
    void serve_write(std::size_t unit, std::byte* address) {
      auto& copies = replica();
      if constexpr (std::same_as<Policy, read_only>) {
        if (state->published())
          fatal(address, "written after publication (read_only data is written only before the first barrier)", true);
        fatal(address,
              fmt::format("wrote rank {}'s unit before publication: each rank writes its own pages of a read_only "
                          "region",
                          units->home_of(unit)),
              true);
      } else if constexpr (std::same_as<Policy, single_writer>) {
        auto& e = state->elements().protocol_engine();
        // Granted and confirmed at once: the store retried next cannot be
        // lost (a recall makes the page read-only before it copies it out,
        // so a store after that faults and asks again).
        if (copies.state(unit) != coherence::exclusive && !(copies.is_home(unit) && e.claim_home_unit(unit)))
          e.obtain_exclusive(std::span<const std::size_t>(&unit, 1));
      } else {
        // Twinned already (another thread's fault, served while this one
        // waited for the rank lock): a second twin would take that
        // thread's stores for the unit's old contents, and lose them.
        if (copies.state(unit) == coherence::exclusive) return;
        auto& e = state->elements().protocol_engine();
        if (copies.state(unit) < coherence::shared) e.fetch(unit);
        e.make_twin(unit);
      }
      (void)address;
    }

    // A fault that cannot be served ends the process: the access cannot
    // be skipped, and an exception cannot leave a signal handler through
    // code built without unwind tables for every instruction.
    [[noreturn]] void fatal(std::byte* address, const std::string& why, bool runtime_alive) noexcept {
      const std::string text = fmt::format("{}: address {} (offset {}) on rank {} {}", layout.description,
                                           static_cast<const void*>(address),
                                           static_cast<std::size_t>(address - mapping->program_view()), me, why);
      std::fprintf(stderr, "dsm: %s; ending the process\n", text.c_str());
      std::fflush(stderr);
      if (runtime_alive)
        if (detail::runtime_state* r = detail::current_runtime()) r->leave(detail::leaving_failed, text);
      std::abort();
    }
  };

  const body& live(const char* operation) const {
    if (!body_) [[unlikely]]
      throw error(errc::invalid_argument,
                  fmt::format("a moved-from global_region<{}>: {} (it holds nothing until one is move-assigned to it)",
                              Policy::name, operation));
    return *body_;
  }
  body& live(const char* operation) { return const_cast<body&>(std::as_const(*this).live(operation)); }

  std::unique_ptr<body> body_;
};

}  // namespace dsm

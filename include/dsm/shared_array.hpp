// dsm::shared_array<T, Policy>: n elements of T spread over all ranks (or
// a team's) by a distribution (block by default, cyclic, block_cyclic(k)),
// each element homed on its owner, accessed through a coherence policy
// chosen at compile time. Construction and destruction are collective over
// the team. Every dsm::barrier(), and every barrier of its team, calls the
// policy's release and, once all members are through, its barrier hook;
// every dsm::lock calls acquire after lock() and release before unlock().
#pragma once

#include <dsm/allocate.hpp>
#include <dsm/coherence/advice.hpp>
#include <dsm/coherence/array_layout.hpp>
#include <dsm/coherence/direct.hpp>
#include <dsm/coherence/migratory.hpp>
#include <dsm/coherence/policy.hpp>
#include <dsm/coherence/producer_consumer.hpp>
#include <dsm/coherence/read_only.hpp>
#include <dsm/coherence/reduction.hpp>
#include <dsm/coherence/single_writer.hpp>
#include <dsm/coherence/unit_map.hpp>
#include <dsm/coherence/write_shared.hpp>
#include <dsm/distribution.hpp>
#include <dsm/global_ref.hpp>
#include <dsm/runtime/runtime.hpp>
#include <dsm/signal.hpp>

#include <fmt/format.h>
#include <range/v3/view/iota.hpp>
#include <range/v3/view/transform.hpp>

#include <concepts>
#include <exception>
#include <optional>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace dsm {

template <class D>
concept distribution_spec = std::same_as<D, block_t> || std::same_as<D, cyclic_t> || std::same_as<D, block_cyclic>;

// Coherent caching for any properly synchronised program.
using default_policy = single_writer;

template <class T, class Policy = default_policy>
class shared_array {
  static_assert(std::is_trivially_copyable_v<T>,
                "dsm::shared_array<T>: T must be trivially copyable: elements are copied between ranks as bytes");
  static_assert(!std::is_const_v<T> && !std::is_volatile_v<T>, "dsm::shared_array<T>: T must not be cv-qualified");
  static_assert(coherence::policy<Policy, T>,
                "dsm::shared_array<T, Policy>: Policy does not implement the coherence hook set (see coherence/policy.hpp)");

 public:
  using value_type = T;
  using policy_type = Policy;
  using reference = global_ref<T, Policy>;
  using size_type = std::size_t;

  explicit shared_array(std::size_t n, std::string name = {}) : shared_array(world(), n, std::move(name)) {}
  template <distribution_spec D>
  shared_array(std::size_t n, D layout, std::string name = {}) : shared_array(world(), n, layout, std::move(name)) {}
  template <distribution_spec D>
  shared_array(std::size_t n, D layout, unit_size unit, std::string name = {})
      : shared_array(world(), n, layout, unit, std::move(name)) {}

  // Over team t: the elements are spread over its members only, and the
  // construction, the destruction and the policy's barrier actions are
  // collective over t (dsm::barrier(t), or any dsm::barrier()). owner(i),
  // local_size() and the rest speak in ranks of t.
  shared_array(const dsm::team& t, std::size_t n, std::string name = {}) : shared_array(t, n, block, std::move(name)) {}
  template <distribution_spec D>
  shared_array(const dsm::team& t, std::size_t n, D layout, std::string name = {})
      : shared_array(t, n, layout, unit_size{}, std::move(name)) {}

  // `unit`: the coherence unit of a caching policy (see dsm::unit_size).
  template <distribution_spec D>
  shared_array(const dsm::team& t, std::size_t n, D layout, unit_size unit, std::string name = {})
      : body_(std::make_unique<body>(dsm::distribution(layout, n, static_cast<std::size_t>(t.size())), std::move(name),
                                     unit, t)) {
    const detail::rank_entry entry;  // threads::multiple: the construction holds the rank
    auto& b = *body_;
    b.layout.description = describe();
    // Every collective of the construction names the array, its size, layout and unit.
    const detail::runtime_state::operation_scope scope(
        detail::rt(), fmt::format("{} of {} elements ({} of {}, unit {} B)", b.layout.description, n,
                                  b.layout.distribution.layout() == dsm::distribution::kind::block ? "blocks" : "block_cyclic",
                                  b.layout.distribution.block_size(), unit.bytes));
    b.layout.object_id = detail::rt().next_object_id(t.state());  // the same on every member
    b.me = static_cast<std::size_t>(t.rank());
    // Caching policies' blocks hold whole units (unit_map::slot_elements_of),
    // so that every rank's copies sit in equal slots of one mirror.
    const std::size_t block_elements =
        coherence::keeps_copies<Policy>
            ? coherence::unit_map::slot_elements_of(b.layout.distribution, sizeof(T), unit, b.layout.description)
            : b.layout.distribution.max_local_size();
    if constexpr (coherence::keeps_copies<Policy>) {
      const auto slot_bytes = detail::element_bytes<T>(block_elements, "allocate_collective");
      detail::rt().check_collective_bytes(t.state(), slot_bytes, b.layout.description);  // before reserving address space for every member's
      b.layout.mirror = std::make_unique<coherence::mirror_space>(static_cast<std::size_t>(t.size()), b.me, slot_bytes,
                                                                  b.layout.description);
    }
    auto blocks = detail::allocate_collective_of<T>(t, block_elements, b.layout.description,
                                                    b.layout.mirror ? b.layout.mirror->own_slot() : nullptr);
    if (b.layout.mirror)
      b.layout.mirror->adopt_own_block(reinterpret_cast<const std::byte*>(blocks[b.me].local()),
                                       detail::rt().mapped_bytes_of(detail::address_of(blocks[b.me]).segment),
                                       b.layout.description);
    for (auto& block : blocks)
      b.layout.blocks.push_back(detail::make_global_ptr<T>([&] {
        auto a = detail::address_of(block);
        a.policy_id = Policy::id;
        return a;
      }()));
    b.state.emplace(b.layout);
    detail::rt().join_sync(&b.sync, t.state());
    b.joined = true;
  }

  shared_array(const shared_array&) = delete;
  shared_array& operator=(const shared_array&) = delete;

  // Moving hands over the array (its elements, copies and place in the
  // barriers) without any traffic: the source is left moved-from, of size
  // 0, and anything else on it is errc::invalid_argument. Move assignment
  // first destroys what the target held (collectively, as the destructor
  // does: every member must assign at the same point). Global pointers
  // into the array stay valid.
  shared_array(shared_array&& other) noexcept = default;
  shared_array& operator=(shared_array&& other) noexcept {
    if (this != &other) {
      body_.reset();
      body_ = std::move(other.body_);
    }
    return *this;
  }
  // Exchanges two arrays of one type (double buffering): local, no traffic;
  // every member swaps the same pair, or their names part ways.
  void swap(shared_array& other) noexcept { body_.swap(other.body_); }
  friend void swap(shared_array& a, shared_array& b) noexcept { a.swap(b); }

  // Whether it holds an array (not moved from).
  bool valid() const noexcept { return body_ != nullptr; }

  // Collective (see body::~body). A moved-from array takes no step.
  ~shared_array() = default;

  std::size_t size() const noexcept { return body_ ? body_->layout.distribution.size() : 0; }
  // The ranks the elements are spread over (world() unless built over a team).
  const dsm::team& team() const { return live("team").layout.team; }
  bool empty() const noexcept { return size() == 0; }
  const std::string& name() const { return live("name").layout.name; }
  const dsm::distribution& distribution() const { return live("distribution").layout.distribution; }

  std::size_t owner(std::size_t i) const {
    check_index(i, "owner");
    return body_->layout.distribution.owner(i);
  }
  std::size_t local_size() const noexcept { return body_ ? body_->layout.distribution.local_size(body_->me) : 0; }

  // This rank's elements as plain memory: no checks, no remote traffic.
  std::span<T> local() const noexcept {
    const std::size_t n = local_size();
    return n == 0 ? std::span<T>{} : std::span<T>(body_->layout.blocks[body_->me].local(), n);
  }
  // Global index of each local element, in local order.
  auto local_indices() const {
    const auto& b = live("local_indices");
    const dsm::distribution& d = b.layout.distribution;
    const std::size_t me = b.me;
    return ranges::views::iota(std::size_t{0}, local_size()) |
           ranges::views::transform([&d, me](std::size_t l) { return d.global_index(me, l); });
  }

  global_ptr<T> pointer(std::size_t i) const {
    check_index(i, "pointer");
    return body_->layout.pointer(i);
  }

  // Reading or writing through the reference throws errc::out_of_range for
  // i >= size(); the policy may check there rather than here.
  [[gnu::always_inline]] reference operator[](std::size_t i) {
    if constexpr (!coherence::checks_indices<Policy>) check_index(i, "operator[]");
    else if (!body_) [[unlikely]] throw_moved_from("operator[]");
    return reference(*this, i);
  }

  // Bulk: elements [first, first + count), one transfer per owner, all in
  // flight together.
  void get(std::size_t first, std::size_t count, T* out) {
    const detail::rank_entry entry;
    check_range(first, count, "get");
    body_->state->get(first, count, out);
  }
  void get(std::size_t first, std::span<T> out) { get(first, out.size(), out.data()); }
  void put(std::size_t first, std::span<const T> in) {
    const detail::rank_entry entry;
    check_range(first, in.size(), "put");
    body_->state->put(first, in.data(), in.size());
  }

  // A reduction array: in[k] joins element first + k's contributions, as
  // (*this)[first + k].combine(in[k]) would, one owner's run at a time.
  void combine(std::size_t first, std::span<const T> in) {
    const detail::rank_entry entry;
    static_assert(requires { body_->state->combine(first, in.data(), in.size()); },
                  "dsm::shared_array::combine: only a reduction<Op> array is combined into");
    check_range(first, in.size(), "combine");
    body_->state->combine(first, in.data(), in.size());
  }

  // A reduction array: this rank's contributions to [first, first + count)
  // as plain memory, each element what this rank contributed to it so far
  // in the interval (Op's identity at first); whatever the program leaves
  // there is what the next barrier combines at the home. The range lies in
  // one owner's storage, or anywhere in a block layout whose units tile
  // the blocks (contributions_tiled()). Valid until the next barrier.
  std::span<T> contribution_span(std::size_t first, std::size_t count) {
    const detail::rank_entry entry;
    static_assert(requires { body_->state->contribution_span(first, count); },
                  "dsm::shared_array::contribution_span: only a reduction<Op> array takes contributions");
    if (count == 0) return {};
    if (live("contribution_span").state->contributions_tiled()) check_range(first, count, "contribution_span");
    else check_span(first, count, "contribution_span");
    return {body_->state->contribution_span(first, count), count};
  }
  bool contributions_tiled() const {
    static_assert(requires { body_->state->contributions_tiled(); },
                  "dsm::shared_array::contributions_tiled: only a reduction<Op> array takes contributions");
    return live("contributions_tiled").state->contributions_tiled();
  }

  // Elements [first, first + count) as plain memory this rank's compiler
  // can vectorise over: the cached copy (fetched now where missing), or the
  // home's memory for its own elements. The range must lie in one owner's
  // storage (within one block of a block layout, one block of a
  // block_cyclic one, one element of a cyclic one). A read span stays
  // valid until this rank's next acquire (lock(), barrier()); a write span
  // (write_shared: its units are twinned now and their changes sent at the
  // release) until its next release or acquire.
  std::span<const T> read_span(std::size_t first, std::size_t count) {
    const detail::rank_entry entry;
    static_assert(requires { body_->state->read_span(first, count); },
                  "dsm::shared_array::read_span: this policy keeps no copies to read (direct): use get() into a buffer");
    if (count == 0) return {};
    check_span(first, count, "read_span");
    return {body_->state->read_span(first, count), count};
  }
  std::span<T> write_span(std::size_t first, std::size_t count) {
    const detail::rank_entry entry;
    static_assert(requires { body_->state->write_span(first, count); },
                  "dsm::shared_array::write_span: only write_shared hands out writable copies (single_writer's recalls "
                  "may take a unit while it is written; read_only is not written): use put(), element writes or local()");
    if (count == 0) return {};
    check_span(first, count, "write_span");
    return {body_->state->write_span(first, count), count};
  }

  // Caching policies: the missing units of [first, first + count) are
  // fetched from now on, without waiting (a later read finds them there or
  // on their way); a no-op for direct, which keeps no copies.
  void prefetch(std::size_t first, std::size_t count) {
    const detail::rank_entry entry;
    check_range(first, count, "prefetch");
    if constexpr (requires { body_->state->prefetch(first, count); }) body_->state->prefetch(first, count);
  }
  // advice::willneed is prefetch; advice::dontneed drops the range's read
  // copies (the units this rank writes stay until its release sends them).
  void advise(std::size_t first, std::size_t count, advice a) {
    const detail::rank_entry entry;
    check_range(first, count, "advise");
    if (a != advice::willneed && a != advice::dontneed)
      throw error(errc::invalid_argument, fmt::format("{}: advise with advice {}: expected willneed or dontneed", describe(),
                                                      static_cast<int>(a)));
    if constexpr (requires { body_->state->advise(first, count, a); }) body_->state->advise(first, count, a);
  }

  // A flag element, as OpenSHMEM's signals, under any policy. signal(i, v)
  // is a release (this rank's writes to every array go home, as unlock
  // sends them) and then sets (or adds v to) element i at its home;
  // wait_until(i, c, v) reads the home's element, never a cached copy,
  // until `element c v` holds, then acquires (as lock does): what the
  // signalling rank wrote before its signal is visible after. A flag is
  // written only by signal() (a policy's write could wait in a cache for
  // the next release) and read with wait_until() or test().
  void wait_until(std::size_t i, cmp c, std::type_identity_t<T> value) {
    const detail::rank_entry entry;
    static_assert(transport::atomic_word<T>, "dsm::shared_array::wait_until: a flag is a 32- or 64-bit integer");
    check_index(i, "wait_until");
    (void)detail::await_word(body_->layout.pointer(i), c, value, [&] { return fmt::format("{}[{}]", describe(), i); });
    detail::rt().acquire();
  }
  bool test(std::size_t i, cmp c, std::type_identity_t<T> value) {
    const detail::rank_entry entry;
    static_assert(transport::atomic_word<T>, "dsm::shared_array::test: a flag is a 32- or 64-bit integer");
    check_index(i, "test");
    const global_ptr<T> p = body_->layout.pointer(i);
    T now;
    if (p.is_local()) {
      detail::rt().worker().progress();
      now = detail::own_word(p, "test").load(std::memory_order_acquire);
    } else {
      now = atomic_load(p).wait();
    }
    if (!holds(now, c, value)) return false;
    detail::rt().acquire();
    return true;
  }
  void signal(std::size_t i, std::type_identity_t<T> value, signal_op op = signal_op::set) {
    const detail::rank_entry entry;
    static_assert(transport::atomic_word<T>, "dsm::shared_array::signal: a flag is a 32- or 64-bit integer");
    static_assert(!std::same_as<Policy, read_only> && !coherence::is_reduction<Policy>,
                  "dsm::shared_array::signal: read_only and reduction arrays take no plain writes; keep flags in "
                  "another policy's array");
    check_index(i, "signal");
    detail::rt().release();
    const global_ptr<T> p = body_->layout.pointer(i);
    if (p.is_local()) {
      auto word = detail::own_word(p, "signal");
      if (op == signal_op::set) word.store(value, std::memory_order_release);
      else word.fetch_add(value, std::memory_order_release);
      return;
    }
    (void)(op == signal_op::set ? atomic_exchange(p, value) : atomic_fetch_add(p, value)).wait();
  }

  typename Policy::template state<T>& policy_state() noexcept { return *body_->state; }  // valid() arrays only

  // This rank's coherence counters for the array, now (all zero under
  // direct, which caches nothing: its transfers count in dsm::stats()).
  array_counters stats() const {
    auto& s = const_cast<typename Policy::template state<T>&>(*live("stats").state);  // only read
    if constexpr (requires { s.stats(); }) return s.stats().snapshot();
    else return {};
  }
  const coherence::array_layout<T>& layout() const { return live("layout").layout; }

  // "shared_array<double, direct> 'x'" for messages, and "over team ..."
  // when not over every rank.
  std::string describe() const {
    if (!body_) return fmt::format("a moved-from shared_array<{}, {}>", detail::type_name<T>(), Policy::name);
    return describe(body_->layout);
  }

 private:
  void check_index(std::size_t i, const char* operation) const {
    if (i >= size()) [[unlikely]] throw_index_out_of_range(i, operation);
  }
  [[noreturn, gnu::cold, gnu::noinline]] void throw_index_out_of_range(std::size_t i, const char* operation) const {
    if (!body_) throw_moved_from(operation);
    throw error(errc::out_of_range,
                fmt::format("{}: {} index {} out of range (size {})", describe(), operation, i, size()));
  }
  void check_range(std::size_t first, std::size_t count, const char* operation) const {
    if (!body_) [[unlikely]] throw_moved_from(operation);
    if (first > size() || count > size() - first)
      throw error(errc::out_of_range, fmt::format("{}: {} of {} elements from index {} out of range (size {})",
                                                  describe(), operation, count, first, size()));
  }

  // A span needs one run of one owner's storage.
  void check_span(std::size_t first, std::size_t count, const char* operation) const {
    check_range(first, count, operation);
    const std::size_t covered = count == 0 ? 0 : body_->layout.distribution.first_run_length(first, count);
    const std::size_t owner = count == 0 ? 0 : body_->layout.distribution.owner(first), end = first + covered;
    if (count == 0 || covered != count)
      throw error(errc::invalid_argument,
                  fmt::format("{}: {} of {} elements from index {} crosses from rank {}'s storage at index {}: a span "
                              "covers one owner's consecutive elements",
                              describe(), operation, count, first, owner, end));
  }

  static std::string describe(const coherence::array_layout<T>& l) {
    return fmt::format("shared_array<{}, {}>{}{}", detail::type_name<T>(), Policy::name,
                       l.name.empty() ? std::string() : fmt::format(" '{}'", l.name),
                       l.team.state().id == 0 ? std::string() : " over " + l.team.name());
  }

  // What an array is, on the heap so that moving the array moves nothing:
  // the policy's state refers to the layout, the barriers to the hooks.
  struct body {
    coherence::array_layout<T> layout;
    std::size_t me = 0;
    std::optional<typename Policy::template state<T>> state;
    coherence::sync_hooks<body> sync{this};  // barriers and locks reach the policy through it
    bool joined = false;  // constructed in full: its destruction is collective
    int uncaught_at_construction = std::uncaught_exceptions();
    std::uint64_t runtime_number = detail::current_runtime_number();  // the runtime it lives in

    body(dsm::distribution d, std::string name, unit_size unit, const dsm::team& t)
        : layout{std::move(d), {}, std::move(name), {}, 0, unit, {}, t} {}
    body(const body&) = delete;
    body& operator=(const body&) = delete;

    void after_barrier() { state->barrier(); }

    // Collective: every rank's accesses are complete before the memory
    // goes, and when it returns every rank has dropped the keys of every
    // block, so a pointer kept from the array is stale everywhere.
    // Destroyed while an exception unwinds, it takes no collective step (it
    // would pair with whatever collective the other ranks are in, a
    // barrier of theirs, say): it leaves the runtime's barriers and its
    // block stays mapped until the runtime ends. So too in a failed job (a
    // peer died, a wait timed out), where every collective would fail at
    // once. A construction that threw part way left nothing to undo here.
    ~body() {
      if (!joined) return;
      if (detail::current_runtime_number() != runtime_number) [[unlikely]] detail::outlived_its_runtime(layout.description);
      const detail::rank_entry entry;
      (void)coherence::end_collectively(sync, layout.team, layout.description, uncaught_at_construction,
                                        [&] { state->arrive(); }, [&] {
                                          if constexpr (requires { state->retire(); }) state->retire();  // a policy's own registered memory
                                          deallocate(layout.blocks[me]);
                                        });
    }
  };

  const body& live(const char* operation) const {
    if (!body_) [[unlikely]] throw_moved_from(operation);
    return *body_;
  }
  [[noreturn, gnu::cold, gnu::noinline]] void throw_moved_from(const char* operation) const {
    throw error(errc::invalid_argument, fmt::format("{}: {} on an array that was moved from (it holds nothing until "
                                                    "one is move-assigned to it)", describe(), operation));
  }

  std::unique_ptr<body> body_;
};

}  // namespace dsm

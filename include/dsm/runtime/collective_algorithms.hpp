// The algorithms of the collectives, each a collective_task over the team
// ranks of one call (see collective_task.hpp). Reductions combine in one
// fixed tree over the ranks in order, whatever the algorithm: pairs of
// neighbours (0 1)(2 3)..., then pairs of pairs, the lower ranks' values
// always on the left. So every rank gets the same bits, run after run,
// floating point included, and an associative operator need not commute.
// A team of n ranks that is not a power of two first folds ranks 2i+1 into
// 2i for i < n - 2^floor(log2 n), which keeps the order.
#pragma once

#include <dsm/error.hpp>
#include <dsm/runtime/collective_task.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

namespace dsm::detail {

template <class T>
std::span<const std::byte> bytes_of(std::span<const T> s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size_bytes()};
}

[[noreturn, gnu::cold]] inline void throw_wrong_size(const collective_call& c, std::uint32_t from, std::size_t got,
                                                     std::size_t expected) {
  throw error(errc::collective_mismatch,
              fmt::format("{} ({} {}): rank {} sent {} bytes where this rank expects {}", c.signature, to_string(c.kind),
                          c.seq, c.via->world_rank_of(c, from), got, expected));
}

// A peer's bytes into `to`, which they must fill exactly.
template <class T>
void copy_into(const collective_call& c, std::uint32_t from, const std::vector<std::byte>& got, std::span<T> to) {
  if (got.size() != to.size_bytes()) throw_wrong_size(c, from, got.size(), to.size_bytes());
  if (!got.empty()) std::memcpy(static_cast<void*>(to.data()), got.data(), got.size());
}
// A peer's bytes as elements (any count).
template <class T>
std::vector<T> elements_of(const collective_call& c, std::uint32_t from, const std::vector<std::byte>& got) {
  if (got.size() % sizeof(T) != 0) throw_wrong_size(c, from, got.size(), got.size() / sizeof(T) * sizeof(T));
  std::vector<T> out(got.size() / sizeof(T));
  if (!got.empty()) std::memcpy(static_cast<void*>(out.data()), got.data(), got.size());
  return out;
}

// ---- synchronisation and data movement --------------------------------

// Dissemination: ceil(log2 n) rounds of one message each.
inline collective_task barrier_task(collective_call c) {
  for (std::uint32_t round = 0, distance = 1; distance < c.size; ++round, distance <<= 1) {
    c.post((c.rank + distance) % c.size, round);
    (void)co_await c.receive((c.rank + c.size - distance) % c.size, round);
  }
}

// Binomial tree from the root: ceil(log2 n) rounds. `data` is the root's
// input and every rank's output (its size comes from the root).
template <class T>
collective_task broadcast_task(collective_call c, std::uint32_t root, std::vector<T>* data) {
  const std::uint32_t n = c.size, me = (c.rank + n - root) % n;
  const auto real = [&](std::uint32_t v) { return (v + root) % n; };
  std::uint32_t mask = 1;
  for (; mask < n; mask <<= 1)
    if (me & mask) {
      *data = elements_of<T>(c, real(me - mask), co_await c.receive(real(me - mask), 0));
      break;
    }
  for (mask >>= 1; mask > 0; mask >>= 1)
    if (me + mask < n) c.post(real(me + mask), 0, bytes_of(std::span<const T>(*data)));
}

// Every rank's elements, in rank order (counts may differ: allgatherv).
template <class T>
collective_task allgather_task(collective_call c, std::vector<T> mine, std::vector<std::vector<T>>* all) {
  for (std::uint32_t r = 0; r < c.size; ++r)
    if (r != c.rank) c.post(r, 0, bytes_of(std::span<const T>(mine)));
  all->assign(c.size, {});
  for (std::uint32_t k = 1; k < c.size; ++k) {
    const std::uint32_t r = (c.rank + k) % c.size;
    (*all)[r] = elements_of<T>(c, r, co_await c.receive(r, 0));
  }
  (*all)[c.rank] = std::move(mine);
}

// to_each[r] goes to rank r; from[r] is what rank r sent this one.
template <class T>
collective_task alltoall_task(collective_call c, std::vector<std::vector<T>> to_each, std::vector<std::vector<T>>* from) {
  for (std::uint32_t r = 0; r < c.size; ++r)
    if (r != c.rank) c.post(r, 0, bytes_of(std::span<const T>(to_each[r])));
  from->assign(c.size, {});
  for (std::uint32_t k = 1; k < c.size; ++k) {
    const std::uint32_t r = (c.rank + k) % c.size;
    (*from)[r] = elements_of<T>(c, r, co_await c.receive(r, 0));
  }
  (*from)[c.rank] = std::move(to_each[c.rank]);
}

// The root gets every rank's elements in rank order; the others nothing.
template <class T>
collective_task gather_task(collective_call c, std::uint32_t root, std::vector<T> mine, std::vector<std::vector<T>>* all) {
  if (c.rank != root) {
    c.post(root, 0, bytes_of(std::span<const T>(mine)));
    co_return;
  }
  all->assign(c.size, {});
  for (std::uint32_t k = 1; k < c.size; ++k) {
    const std::uint32_t r = (root + k) % c.size;
    (*all)[r] = elements_of<T>(c, r, co_await c.receive(r, 0));
  }
  (*all)[root] = std::move(mine);
}

// parts[r] (the root's) goes to rank r.
template <class T>
collective_task scatter_task(collective_call c, std::uint32_t root, std::vector<std::vector<T>> parts, std::vector<T>* mine) {
  if (c.rank == root) {
    for (std::uint32_t r = 0; r < c.size; ++r)
      if (r != root) c.post(r, 0, bytes_of(std::span<const T>(parts[r])));
    *mine = std::move(parts[root]);
    co_return;
  }
  *mine = elements_of<T>(c, root, co_await c.receive(root, 0));
}

// ---- reductions -------------------------------------------------------

// a[i] = op(a[i], b[i]) (b from higher ranks) or op(b[i], a[i]) (lower).
template <class T, class Op>
void combine(std::span<T> a, std::span<const T> b, Op& op, bool b_is_lower) {
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = b_is_lower ? op(b[i], a[i]) : op(a[i], b[i]);
}

// The fold onto a power of two: rank 2i+1 (i < excess) hands its values to
// 2i and waits for the result; everyone else gets a place in the
// power-of-two tree. Rounds: 0 the fold, reduction_last_round the unfold.
inline constexpr std::uint32_t reduction_last_round = 1000;
struct folded_tree {
  std::uint32_t size;    // a power of two
  std::uint32_t excess;  // ranks folded away
  std::uint32_t real(std::uint32_t v) const noexcept { return v < excess ? 2 * v : v + excess; }
  std::uint32_t virtual_of(std::uint32_t r) const noexcept { return r < 2 * excess ? r / 2 : r - excess; }
  bool folded_away(std::uint32_t r) const noexcept { return r < 2 * excess && r % 2 == 1; }
  bool takes_fold(std::uint32_t r) const noexcept { return r < 2 * excess && r % 2 == 0; }
  static folded_tree of(std::uint32_t n) noexcept {
    const std::uint32_t q = std::bit_floor(n);
    return {q, n - q};
  }
};

// Up to this many bytes, allreduce exchanges whole vectors (log2 n rounds);
// beyond, it reduce-scatters and allgathers halves (2 log2 n rounds, about
// 2 n bytes per rank in all). Both combine in the same tree.
inline constexpr std::size_t allreduce_doubling_bytes = 4096;

template <class T, class Op>
collective_task allreduce_task(collective_call c, std::span<T> values, Op op) {
  const folded_tree tree = folded_tree::of(c.size);
  const std::uint32_t me = c.rank;
  std::vector<T> theirs(values.size());
  if (tree.folded_away(me)) {
    c.post(me - 1, 0, bytes_of(std::span<const T>(values)));
    copy_into(c, me - 1, co_await c.receive(me - 1, reduction_last_round), values);
    co_return;
  }
  if (tree.takes_fold(me)) {
    copy_into(c, me + 1, co_await c.receive(me + 1, 0), std::span<T>(theirs));
    combine(values, std::span<const T>(theirs), op, false);
  }
  const std::uint32_t v = tree.virtual_of(me);
  std::uint32_t round = 1;
  if (values.size_bytes() <= allreduce_doubling_bytes || values.size() < tree.size) {
    for (std::uint32_t mask = 1; mask < tree.size; mask <<= 1, ++round) {
      const std::uint32_t partner = tree.real(v ^ mask);
      c.post(partner, round, bytes_of(std::span<const T>(values)));
      copy_into(c, partner, co_await c.receive(partner, round), std::span<T>(theirs));
      combine(values, std::span<const T>(theirs), op, (v ^ mask) < v);
    }
  } else {
    // Reduce-scatter by recursive halving, low bits first (so that each
    // partial covers an aligned run of ranks), then the halves back.
    struct split { std::size_t lo, mid, hi; bool kept_low; };
    std::vector<split> splits;
    std::size_t lo = 0, hi = values.size();
    for (std::uint32_t mask = 1; mask < tree.size; mask <<= 1, ++round) {
      const std::uint32_t pv = v ^ mask, partner = tree.real(pv);
      const std::size_t mid = lo + (hi - lo) / 2;
      const bool keep_low = (v & mask) == 0;
      const std::size_t send_lo = keep_low ? mid : lo, send_hi = keep_low ? hi : mid;
      c.post(partner, round, bytes_of(std::span<const T>(values.subspan(send_lo, send_hi - send_lo))));
      const std::size_t keep_lo = keep_low ? lo : mid, keep_hi = keep_low ? mid : hi;
      const auto kept = values.subspan(keep_lo, keep_hi - keep_lo);
      copy_into(c, partner, co_await c.receive(partner, round), std::span<T>(theirs.data(), kept.size()));
      combine(kept, std::span<const T>(theirs.data(), kept.size()), op, pv < v);
      splits.push_back({lo, mid, hi, keep_low});
      lo = keep_lo;
      hi = keep_hi;
    }
    for (std::uint32_t mask = tree.size >> 1; mask > 0; mask >>= 1, ++round) {
      const split s = splits.back();
      splits.pop_back();
      const std::uint32_t partner = tree.real(v ^ mask);
      c.post(partner, round, bytes_of(std::span<const T>(values.subspan(lo, hi - lo))));
      const std::size_t other_lo = s.kept_low ? s.mid : s.lo, other_hi = s.kept_low ? s.hi : s.mid;
      copy_into(c, partner, co_await c.receive(partner, round), values.subspan(other_lo, other_hi - other_lo));
      lo = s.lo;
      hi = s.hi;
    }
  }
  if (tree.takes_fold(me)) c.post(me + 1, reduction_last_round, bytes_of(std::span<const T>(values)));
}

// To the root only (the same tree as allreduce, so the same bits): a
// binomial tree onto rank 0, which hands the result to the root.
template <class T, class Op>
collective_task reduce_task(collective_call c, std::uint32_t root, std::span<T> values, Op op) {
  const folded_tree tree = folded_tree::of(c.size);
  const std::uint32_t me = c.rank;
  std::vector<T> acc(values.begin(), values.end()), theirs(values.size());
  if (tree.folded_away(me)) {
    c.post(me - 1, 0, bytes_of(std::span<const T>(acc)));
  } else {
    if (tree.takes_fold(me)) {
      copy_into(c, me + 1, co_await c.receive(me + 1, 0), std::span<T>(theirs));
      combine(std::span<T>(acc), std::span<const T>(theirs), op, false);
    }
    const std::uint32_t v = tree.virtual_of(me);
    std::uint32_t round = 1;
    for (std::uint32_t mask = 1; mask < tree.size; mask <<= 1, ++round) {
      if (v & mask) {
        c.post(tree.real(v ^ mask), round, bytes_of(std::span<const T>(acc)));
        break;
      }
      const std::uint32_t partner = tree.real(v | mask);
      copy_into(c, partner, co_await c.receive(partner, round), std::span<T>(theirs));
      combine(std::span<T>(acc), std::span<const T>(theirs), op, false);
    }
    if (me == 0 && root != 0) c.post(root, reduction_last_round, bytes_of(std::span<const T>(acc)));
  }
  if (me == root) {
    if (root != 0) copy_into(c, 0, co_await c.receive(0, reduction_last_round), std::span<T>(acc));
    std::copy(acc.begin(), acc.end(), values.begin());
  }
}

// Inclusive prefix (rank r: ranks 0..r combined, in order), and with
// `exclusive` non-null the exclusive one (ranks 0..r-1; rank 0 keeps
// what `exclusive` holds): ceil(log2 n) rounds, n elements each.
template <class T, class Op>
collective_task scan_task(collective_call c, std::span<T> values, Op op, std::span<T> exclusive) {
  std::vector<T> theirs(values.size());
  bool have_exclusive = false;
  for (std::uint32_t round = 0, distance = 1; distance < c.size; ++round, distance <<= 1) {
    if (c.rank + distance < c.size) c.post(c.rank + distance, round, bytes_of(std::span<const T>(values)));
    if (c.rank >= distance) {
      copy_into(c, c.rank - distance, co_await c.receive(c.rank - distance, round), std::span<T>(theirs));
      if (!exclusive.empty()) {
        if (have_exclusive) combine(exclusive, std::span<const T>(theirs), op, true);
        else std::copy(theirs.begin(), theirs.end(), exclusive.begin());
        have_exclusive = true;
      }
      combine(values, std::span<const T>(theirs), op, true);
    }
  }
}

}  // namespace dsm::detail

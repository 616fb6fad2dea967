// How a shared array's n elements are spread over the ranks: block (one
// contiguous block per rank), cyclic (element i on rank i mod p) and
// block_cyclic(k) (blocks of k dealt round-robin). Pure arithmetic on
// global index <-> (owner, local index), and the runs of consecutive global
// indices that are also consecutive in one owner's storage, which bulk
// transfers and views move in one piece.
#pragma once

#include <dsm/detail/divisor.hpp>
#include <dsm/error.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace dsm {

struct block_t {};
struct cyclic_t {};
inline constexpr block_t block{};
inline constexpr cyclic_t cyclic{};

struct block_cyclic {
  std::size_t block_size;
  explicit constexpr block_cyclic(std::size_t k) : block_size(k) {}
};

class distribution {
 public:
  enum class kind { block, block_cyclic };

  distribution(block_t, std::size_t n, std::size_t ranks)
      : kind_(kind::block), n_(checked_size(n)), ranks_(checked_ranks(ranks)),
        block_(std::max<std::size_t>(1, (n + ranks - 1) / ranks)), by_block_(block_), by_ranks_(ranks_) {}
  distribution(cyclic_t, std::size_t n, std::size_t ranks) : distribution(block_cyclic(1), n, ranks) {}
  distribution(block_cyclic bc, std::size_t n, std::size_t ranks)
      : kind_(kind::block_cyclic), n_(checked_size(n)), ranks_(checked_ranks(ranks)), block_(checked_block(bc.block_size)),
        by_block_(block_), by_ranks_(ranks_) {}

  kind layout() const noexcept { return kind_; }
  std::size_t size() const noexcept { return n_; }
  std::size_t ranks() const noexcept { return ranks_; }
  // Elements per block: ceil(n / ranks) for block, k for block_cyclic(k).
  std::size_t block_size() const noexcept { return block_; }

  std::size_t owner(std::size_t i) const noexcept { return locate(i).owner; }
  std::size_t local_index(std::size_t i) const noexcept { return locate(i).local; }
  struct place {
    std::size_t owner;
    std::size_t local;
  };
  // Both at once: divisions by the block size and the rank count, each a
  // multiply (detail::divisor). One formula for every layout, without a
  // branch: a block layout's block index is below the rank count (round 0),
  // a cyclic one's block size is 1 (the division by it passes i through).
  // (The caching hit path folds the same arithmetic into a mirror place:
  // coherence::unit_map::place_of.)
  place locate(std::size_t i) const noexcept {
    const std::size_t blk = by_block_.quotient(i), offset = i - blk * block_;
    const std::size_t round = by_ranks_.quotient(blk);
    return {blk - round * ranks_, round * block_ + offset};
  }
  std::size_t global_index(std::size_t rank, std::size_t local) const noexcept {
    if (kind_ == kind::block) return rank * block_ + local;
    const std::size_t blk = by_block_.quotient(local);
    return (blk * ranks_ + rank) * block_ + (local - blk * block_);
  }

  std::size_t local_size(std::size_t rank) const noexcept {
    if (kind_ == kind::block) {
      const std::size_t first = rank * block_;
      return first >= n_ ? 0 : std::min(block_, n_ - first);
    }
    const std::size_t blocks = (n_ + block_ - 1) / block_;
    if (rank >= blocks) return 0;
    const std::size_t mine = (blocks - rank + ranks_ - 1) / ranks_;  // blocks j < blocks with j % p == rank
    std::size_t elements = mine * block_;
    if ((blocks - 1) % ranks_ == rank) elements -= blocks * block_ - n_;  // the last block may be short
    return elements;
  }
  std::size_t max_local_size() const noexcept {
    std::size_t m = 0;
    for (std::size_t r = 0; r < ranks_; ++r) m = std::max(m, local_size(r));
    return m;
  }

  // Consecutive global indices [first, first + count) with one owner and
  // consecutive local indices.
  struct run {
    std::size_t first;
    std::size_t count;
    std::size_t owner;
    std::size_t local_first;
  };

  // How many of [first, first + count) the run starting at `first` covers
  // (one owner's consecutive elements): count when the range is one run.
  std::size_t first_run_length(std::size_t first, std::size_t count) const noexcept {
    return std::min(block_ - by_block_.remainder(first), count);
  }

  // Calls f(run) for the runs covering [first, first + count), in order.
  // The owner and local position advance block by block without a
  // division per run: cyclic runs are single elements, so this loop is the
  // cost of every cyclic bulk transfer.
  template <class F>
  void for_each_run(std::size_t first, std::size_t count, F&& f) const {
    if (count == 0) return;
    const std::size_t end = first + count;
    std::size_t i = first;
    std::size_t blk = i / block_;
    std::size_t offset = i - blk * block_;
    if (kind_ == kind::block) {
      for (std::size_t owner = blk; i < end; ++owner, offset = 0) {
        const std::size_t len = std::min(block_ - offset, end - i);
        f(run{i, len, owner, offset});
        i += len;
      }
      return;
    }
    std::size_t owner = blk % ranks_, round = blk / ranks_;
    while (i < end) {
      const std::size_t len = std::min(block_ - offset, end - i);
      f(run{i, len, owner, round * block_ + offset});
      i += len;
      offset = 0;
      if (++owner == ranks_) owner = 0, ++round;
    }
  }

 private:
  static std::size_t checked_ranks(std::size_t ranks) {
    if (ranks == 0) throw error(errc::invalid_argument, "a distribution over 0 ranks");
    return ranks;
  }
  // Indices stay within what detail::divisor divides exactly.
  static std::size_t checked_size(std::size_t n) {
    if (n > detail::divisor::dividend_limit)
      throw error(errc::invalid_argument, fmt::format("a distribution of {} elements: at most 2^63", n));
    return n;
  }
  static std::size_t checked_block(std::size_t k) {
    if (k == 0) throw error(errc::invalid_argument, "block_cyclic(0): the block size must be positive");
    return k;
  }

  kind kind_;
  std::size_t n_;
  std::size_t ranks_;
  std::size_t block_;
  detail::divisor by_block_, by_ranks_;
};

}  // namespace dsm

// Strided and indexed transfers (issue 19.4) between real processes, to
// this rank's own memory and to the next rank's: every element lands where
// it belongs and nothing lands in the gaps (a put that wrote a span would
// destroy a neighbour's data there), for each way a get travels (run by
// run, the covering span, the automatic choice) and a put (run by run,
// packed into one message, the automatic choice); bad strides, spans past
// the segment and null pointers are refused naming the operation, and
// malformed packed puts by the target.
#include "check.hpp"

#include <dsm/rma_noncontiguous.hpp>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace {
using word = std::uint64_t;
constexpr word gap = 0xdeadbeefcafef00dull;

word value_at(int rank, std::size_t i) { return (word(rank) << 40) | (i * 7 + 3); }

struct shape {
  std::size_t count, remote_stride, local_stride;
};
// Strides from contiguous to sparse, local and remote, counts past the
// transport's progress batch, and a put packed into two messages (3000
// runs of 8 B and their 16 B entries: 72000 B).
const shape shapes[] = {{1, 1, 1},   {17, 1, 1},  {64, 2, 1},   {50, 3, 2},  {40, 1, 3},
                        {9, 1000, 1}, {700, 5, 1}, {150, 64, 4}, {2000, 2, 1}, {3000, 2, 1}};
constexpr std::size_t width = 12000;  // elements per rank: the largest span above, with room

void strided_gets(const std::vector<dsm::global_ptr<word>>& blocks, int target) {
  using dsm::detail::get_strategy;
  for (const shape& s : shapes)
    for (const get_strategy how : {get_strategy::automatic, get_strategy::runs, get_strategy::covering}) {
      std::vector<word> out(s.count * s.local_stride, gap);
      const std::size_t first = 5;
      dsm::detail::get_pattern(blocks[target] + first, out.data(),
                               dsm::detail::strided_pattern{s.count, s.remote_stride, s.local_stride}, "rget_strided", how)
          .wait();
      std::size_t wrong = 0;
      for (std::size_t i = 0; i < out.size(); ++i) {
        const bool element = i % s.local_stride == 0;
        const word want = element ? value_at(target, first + (i / s.local_stride) * s.remote_stride) : gap;
        if (out[i] != want) ++wrong;
      }
      CHECK_EQ(wrong, 0u);
    }
  // The public call agrees, with a const source.
  std::vector<word> out(100);
  dsm::rget_strided(dsm::global_ptr<const word>(blocks[target]), 3, out.data(), 1, 100).wait();
  for (std::size_t i = 0; i < out.size(); ++i) CHECK_EQ(out[i], value_at(target, 3 * i));
}

// Each rank writes its values at a stride into the next rank's block,
// which starts all gaps; the owner checks every element and every gap.
using dsm::detail::put_strategy;
constexpr put_strategy put_strategies[] = {put_strategy::automatic, put_strategy::runs, put_strategy::packed};

void strided_puts(const std::vector<dsm::global_ptr<word>>& blocks, int me, int n) {
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  for (const put_strategy how : put_strategies)
  for (const shape& s : shapes) {
    word* mine = blocks[me].local();
    std::fill(mine, mine + width, gap);
    dsm::barrier();
    std::vector<word> src(s.count * s.local_stride);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = value_at(me, i);
    // Not waited for before the barrier: its fence completes every put,
    // packed ones included, at the target.
    dsm::future<> put =
        how == put_strategy::automatic
            ? dsm::rput_strided(src.data(), s.local_stride, blocks[next] + 1, s.remote_stride, s.count)
            : dsm::detail::put_pattern(src.data(), blocks[next] + 1,
                                       dsm::detail::strided_pattern{s.count, s.remote_stride, s.local_stride},
                                       "rput_strided", how);
    dsm::barrier();
    put.wait();
    std::size_t wrong = 0;
    for (std::size_t k = 0; k < width; ++k) {
      const bool element = k >= 1 && (k - 1) % s.remote_stride == 0 && (k - 1) / s.remote_stride < s.count;
      const word want = element ? value_at(prev, ((k - 1) / s.remote_stride) * s.local_stride) : gap;
      if (mine[k] != want) ++wrong;
    }
    CHECK_EQ(wrong, 0u);
    dsm::barrier();
  }
}

// A scatter of a shuffled permutation into the next rank's block and a
// gather with repeats from it; runs of adjacent offsets travel together.
void indexed(const std::vector<dsm::global_ptr<word>>& blocks, int me, int n) {
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  std::mt19937_64 random(42 + static_cast<unsigned>(me));
  std::vector<std::size_t> offsets(3000);
  std::iota(offsets.begin(), offsets.end(), std::size_t{0});
  std::shuffle(offsets.begin(), offsets.begin() + 2000, random);  // the last 1000 stay in order: one run
  word* mine = blocks[me].local();
  std::vector<word> src(offsets.size());
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = value_at(me, i);
  std::vector<std::size_t> spaced(offsets.size());
  std::transform(offsets.begin(), offsets.end(), spaced.begin(), [](std::size_t o) { return 2 * o + 1; });
  for (const put_strategy how : put_strategies) {
  std::fill(mine, mine + width, gap);
  dsm::barrier();
  if (how == put_strategy::automatic)
    dsm::rput_indexed(src.data(), blocks[next], spaced).wait();
  else
    dsm::detail::put_pattern(src.data(), blocks[next], dsm::detail::indexed_pattern{spaced, spaced.size()}, "rput_indexed",
                             how)
        .wait();
  dsm::barrier();
  // What prev scattered here: its src[i] at 2 * offsets_prev[i] + 1; gaps at even places.
  std::mt19937_64 theirs(42 + static_cast<unsigned>(prev));
  std::vector<std::size_t> prev_offsets(3000);
  std::iota(prev_offsets.begin(), prev_offsets.end(), std::size_t{0});
  std::shuffle(prev_offsets.begin(), prev_offsets.begin() + 2000, theirs);
  std::vector<word> want(width, gap);
  for (std::size_t i = 0; i < prev_offsets.size(); ++i) want[2 * prev_offsets[i] + 1] = value_at(prev, i);
  std::size_t wrong = 0;
  for (std::size_t k = 0; k < width; ++k) wrong += mine[k] != want[k];
  CHECK_EQ(wrong, 0u);
  dsm::barrier();
  }
  std::size_t wrong = 0;

  // A gather with repeats and out-of-order offsets, from a fresh pattern.
  for (std::size_t k = 0; k < width; ++k) mine[k] = value_at(me, k);
  dsm::barrier();
  std::vector<std::size_t> picks(5000);
  for (auto& p : picks) p = random() % width;
  for (const auto how : {dsm::detail::get_strategy::automatic, dsm::detail::get_strategy::runs,
                         dsm::detail::get_strategy::covering}) {
    std::vector<word> got(picks.size(), gap);
    dsm::detail::get_pattern(blocks[next], got.data(), dsm::detail::indexed_pattern{picks, picks.size()}, "rget_indexed", how)
        .wait();
    wrong = 0;
    for (std::size_t i = 0; i < picks.size(); ++i) wrong += got[i] != value_at(next, picks[i]);
    CHECK_EQ(wrong, 0u);
  }
  std::vector<word> got(picks.size());
  dsm::rget_indexed(blocks[next], picks, got.data()).wait();
  CHECK(std::equal(got.begin(), got.end(), picks.begin(), [&](word v, std::size_t p) { return v == value_at(next, p); }));
  dsm::barrier();
}

void refused(const std::vector<dsm::global_ptr<word>>& blocks, int target) {
  std::vector<word> buffer(width);
  std::string m = CHECK_ERROR(dsm::errc::invalid_argument, dsm::rget_strided(blocks[target], 0, buffer.data(), 1, 4).wait());
  CHECK(m.find("rget_strided: a stride of 0") != std::string::npos);
  CHECK_ERROR(dsm::errc::invalid_argument, dsm::rput_strided(buffer.data(), 0, blocks[target], 2, 4).wait());
  // The span past the block: the last element lands one past its end.
  m = CHECK_ERROR(dsm::errc::out_of_range, dsm::rput_strided(buffer.data(), 1, blocks[target], 4, width / 4 + 1).wait());
  CHECK(m.find("rput_strided") != std::string::npos);
  const std::vector<std::size_t> past{0, width};
  m = CHECK_ERROR(dsm::errc::out_of_range, dsm::rget_indexed(blocks[target], past, buffer.data()).wait());
  CHECK(m.find("rget_indexed") != std::string::npos);
  CHECK_ERROR(dsm::errc::invalid_argument, dsm::rget_strided(blocks[target], std::size_t(1) << 62, buffer.data(), 1, 8).wait());
  const std::vector<std::size_t> huge{~std::size_t{0}};
  CHECK_ERROR(dsm::errc::invalid_argument, dsm::rput_indexed(buffer.data(), blocks[target], huge).wait());
  CHECK_ERROR(dsm::errc::invalid_argument, dsm::rget_strided(dsm::global_ptr<word>{}, 1, buffer.data(), 1, 1).wait());
  // Nothing to move is done at once, whatever the target.
  CHECK(dsm::rput_strided(buffer.data(), 1, blocks[target] + width, 1, 0).ready());
  CHECK(dsm::rget_indexed(blocks[target], {}, buffer.data()).ready());
}

// One call is one put or get in the counters, with the bytes it moved.
void counted(const std::vector<dsm::global_ptr<word>>& blocks, int target) {
  std::vector<word> buffer(100);
  const auto before = dsm::stats();
  dsm::rget_strided(blocks[target], 10, buffer.data(), 1, 100).wait();
  dsm::rput_strided(buffer.data(), 1, blocks[target] + 1, 10, 50).wait();
  const auto after = dsm::stats();
  CHECK_EQ(after.gets - before.gets, 1u);
  CHECK_EQ(after.bytes_got - before.bytes_got, 800u);
  CHECK_EQ(after.puts - before.puts, 1u);
  CHECK_EQ(after.bytes_put - before.bytes_put, 400u);
}

// Packed puts no honest rank sends: runs claiming more or fewer bytes than
// the message has, a run of no bytes, a run past the segment. The target
// refuses each (counted), writes nothing, and the answer names the cause.
void forged_packed_puts(const std::vector<dsm::global_ptr<word>>& blocks, int me, int n) {
  if (n < 2) return;
  const int next = (me + 1) % n;
  auto& rt = dsm::detail::rt();
  word* mine = blocks[me].local();
  std::fill(mine, mine + width, gap);
  const auto rejected_before = dsm::stats().messages_rejected;
  dsm::barrier();
  const auto target = blocks[next];
  const auto run_table = [](std::initializer_list<std::uint64_t> words, std::size_t data_bytes) {
    std::vector<std::byte> payload(words.size() * 8 + data_bytes, std::byte{0x11});
    std::memcpy(payload.data(), std::data(words), words.size() * 8);
    return payload;
  };
  struct forged {
    std::uint64_t runs;
    std::vector<std::byte> payload;
    dsm::errc category;
    const char* reason;
  };
  const std::vector<forged> cases{
      {1, run_table({0, 16}, 8), dsm::errc::protocol, "a run of 16 bytes"},
      {1, run_table({0, 8}, 16), dsm::errc::protocol, "8 bytes beyond its runs"},
      {2, run_table({0, 8, 8, 0}, 8), dsm::errc::protocol, "a run of 0 bytes"},
      {3, run_table({0, 8}, 8), dsm::errc::protocol, "a packed put of 3 runs"},
      {1, run_table({width * 8, 8}, 8), dsm::errc::out_of_range, "packed put"},
  };
  for (const forged& f : cases) {
    const std::uint64_t id = rt.rpc().expect_reply(target.home_rank());
    rt.post_packed_put(target.home_rank(), id, target.segment(), target.generation(), f.runs, f.payload);
    const std::string text =
        CHECK_ERROR(f.category, dsm::detail::reply_future<void>(rt, id, next, "forged packed put").wait());
    CHECK(text.find(f.reason) != std::string::npos);
  }
  // A segment of another generation: stale, not malformed.
  const std::uint64_t id = rt.rpc().expect_reply(target.home_rank());
  rt.post_packed_put(target.home_rank(), id, target.segment(), std::uint8_t(target.generation() + 1), 1,
                     run_table({0, 8}, 8));
  CHECK_ERROR(dsm::errc::stale_pointer, dsm::detail::reply_future<void>(rt, id, next, "stale packed put").wait());
  dsm::barrier();
  CHECK_EQ(dsm::stats().messages_rejected - rejected_before, cases.size());
  CHECK(std::all_of(mine, mine + width, [](word w) { return w == gap; }));  // nothing written
  dsm::barrier();
}

// The automatic choice: the span when it is dense enough for the way the
// peer is reached, never for one run, never past the buffer limit; a put
// packed only over the network, from packed_put_min_runs runs.
void choice() {
  using dsm::detail::packs;
  const std::size_t longest = dsm::detail::packed_message_bytes - dsm::detail::packed_run_bytes;
  CHECK(!packs(1000, 8, true));
  CHECK(packs(dsm::detail::packed_put_min_runs, 64, false));
  CHECK(packs(100000, longest, false));  // many messages
  CHECK(!packs(100, longest + 1, false));  // a run longer than a message
  CHECK(!packs(1, 8, false));
  using dsm::detail::covers;
  const std::uint64_t shm_run = dsm::detail::covering_bytes_per_run_shared_memory,
                      net_run = dsm::detail::covering_bytes_per_run_network;
  CHECK(covers(512 * shm_run, 512, true));
  CHECK(!covers(512 * shm_run + 512, 512, true));
  CHECK(covers(512 * net_run, 512, false));
  CHECK(!covers(512 * net_run + 512, 512, false));
  CHECK(shm_run < net_run);
  CHECK(!covers(8, 1, true));  // one run is one get already
  CHECK(!covers(dsm::detail::covering_limit_bytes + 8, (dsm::detail::covering_limit_bytes + 8) / 8, true));
}
}  // namespace

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [] {
    const int me = dsm::rank(), n = dsm::ranks(), next = (me + 1) % n;
    const auto blocks = dsm::allocate_collective<word>(width);
    word* mine = blocks[me].local();
    for (std::size_t k = 0; k < width; ++k) mine[k] = value_at(me, k);
    dsm::barrier();
    choice();
    strided_gets(blocks, me);
    strided_gets(blocks, next);
    dsm::barrier();  // counted() writes where the gets read
    counted(blocks, me == 0 ? next : me);  // one remote target, where one exists
    refused(blocks, me);
    refused(blocks, next);
    dsm::barrier();
    strided_puts(blocks, me, n);
    indexed(blocks, me, n);
    forged_packed_puts(blocks, me, n);
  });
}

// Bulk transfers between a contiguous range of global indices and local
// memory, one transfer per owner, all in flight at once. Within any
// contiguous global range, the elements one owner holds are one contiguous
// interval of its local storage (for block, cyclic and block_cyclic alike),
// so each owner's part moves in one piece; where the layout interleaves
// owners, it is staged and scattered (or gathered) locally.
#pragma once

#include <dsm/coherence/array_layout.hpp>
#include <dsm/rma.hpp>

#include <cstddef>
#include <cstring>
#include <limits>
#include <vector>

namespace dsm::coherence {

namespace detail {

struct owner_interval {
  std::size_t local_first = std::numeric_limits<std::size_t>::max();
  std::size_t local_end = 0;
  bool empty() const noexcept { return local_end <= local_first; }
  std::size_t size() const noexcept { return empty() ? 0 : local_end - local_first; }
};

inline std::vector<owner_interval> owner_intervals(const dsm::distribution& d, std::size_t first, std::size_t count) {
  std::vector<owner_interval> spans(d.ranks());
  d.for_each_run(first, count, [&](const dsm::distribution::run& r) {
    auto& s = spans[r.owner];
    s.local_first = std::min(s.local_first, r.local_first);
    s.local_end = std::max(s.local_end, r.local_first + r.count);
  });
  return spans;
}

// Single elements (every cyclic run) by assignment, not a memcpy call.
template <class T>
void copy_elements(T* to, const T* from, std::size_t count) noexcept {
  if (count == 1) *to = *from;
  else std::memcpy(to, from, count * sizeof(T));
}

}  // namespace detail

template <class T>
void bulk_get(const array_layout<T>& a, std::size_t first, std::size_t count, T* out) {
  if (count == 0) return;
  const auto& d = a.distribution;
  if (d.layout() == dsm::distribution::kind::block) {  // runs are whole owner intervals
    std::vector<future<>> pending;
    d.for_each_run(first, count, [&](const dsm::distribution::run& r) {
      pending.push_back(rget(a.local_pointer(r.owner, r.local_first), r.count, out + (r.first - first)));
    });
    for (auto& f : pending) f.wait();
    return;
  }
  const auto spans = detail::owner_intervals(d, first, count);
  std::vector<std::vector<T>> staged(spans.size());
  std::vector<future<>> pending;
  for (std::size_t r = 0; r < spans.size(); ++r) {
    if (spans[r].empty()) continue;
    staged[r].resize(spans[r].size());
    pending.push_back(rget(a.local_pointer(r, spans[r].local_first), spans[r].size(), staged[r].data()));
  }
  for (auto& f : pending) f.wait();
  d.for_each_run(first, count, [&](const dsm::distribution::run& r) {
    detail::copy_elements(out + (r.first - first), staged[r.owner].data() + (r.local_first - spans[r.owner].local_first),
                  r.count);
  });
}

template <class T>
void bulk_put(const array_layout<T>& a, std::size_t first, const T* in, std::size_t count) {
  if (count == 0) return;
  const auto& d = a.distribution;
  std::vector<future<>> pending;
  if (d.layout() == dsm::distribution::kind::block) {
    d.for_each_run(first, count, [&](const dsm::distribution::run& r) {
      pending.push_back(rput(in + (r.first - first), r.count, a.local_pointer(r.owner, r.local_first)));
    });
    for (auto& f : pending) f.wait();
    return;
  }
  const auto spans = detail::owner_intervals(d, first, count);
  std::vector<std::vector<T>> staged(spans.size());
  for (std::size_t r = 0; r < spans.size(); ++r) staged[r].resize(spans[r].size());
  d.for_each_run(first, count, [&](const dsm::distribution::run& r) {
    detail::copy_elements(staged[r.owner].data() + (r.local_first - spans[r.owner].local_first), in + (r.first - first),
                  r.count);
  });
  for (std::size_t r = 0; r < spans.size(); ++r)
    if (!spans[r].empty())
      pending.push_back(rput(staged[r].data(), spans[r].size(), a.local_pointer(r, spans[r].local_first)));
  for (auto& f : pending) f.wait();  // staged buffers live until every put has read them
}

}  // namespace dsm::coherence

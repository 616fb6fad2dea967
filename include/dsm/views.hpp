// range-v3 views over shared arrays.
//   dsm::views::local(a)            this rank's elements, plain memory
//   dsm::views::global(a[, chunk])  every element in index order, fetched
//                                   chunk by chunk with bulk gets (one
//                                   transfer per owner per chunk), never
//                                   element by element
#pragma once

#include <dsm/shared_array.hpp>

#include <range/v3/view/iota.hpp>
#include <range/v3/view/join.hpp>
#include <range/v3/view/subrange.hpp>
#include <range/v3/view/transform.hpp>

#include <algorithm>
#include <cstddef>
#include <vector>

namespace dsm::views {

template <class T, class Policy>
auto local(const shared_array<T, Policy>& a) {
  const auto s = a.local();
  return ranges::make_subrange(s.data(), s.data() + s.size());
}

inline constexpr std::size_t default_chunk_elements = 4096;

template <class T, class Policy>
auto global(shared_array<T, Policy>& a, std::size_t chunk_elements = default_chunk_elements) {
  if (chunk_elements == 0) throw error(errc::invalid_argument, "views::global: chunk of 0 elements");
  const std::size_t n = a.size();
  const std::size_t chunks = (n + chunk_elements - 1) / chunk_elements;
  return ranges::views::iota(std::size_t{0}, chunks) |
         ranges::views::transform([&a, n, chunk_elements](std::size_t c) {
           const std::size_t first = c * chunk_elements;
           std::vector<T> values(std::min(chunk_elements, n - first));
           a.get(first, values.size(), values.data());
           return values;
         }) |
         ranges::views::join;
}

}  // namespace dsm::views

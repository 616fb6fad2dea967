// n elements of T in bytes, refusing counts whose size overflows.
#pragma once

#include <dsm/detail/type_name.hpp>
#include <dsm/error.hpp>

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <limits>

namespace dsm::detail {

template <class T>
[[noreturn, gnu::noinline, gnu::cold]] void throw_size_overflow(std::size_t n, const char* operation) {
  throw error(errc::invalid_argument,
              fmt::format("{}: {} elements of {} overflow a 64-bit size", operation, n, type_name<T>()));
}

// Inlined into every transfer; the message is formatted out of line.
template <class T>
std::uint64_t element_bytes(std::size_t n, const char* operation) {
  if (n > std::numeric_limits<std::uint64_t>::max() / sizeof(T)) [[unlikely]] throw_size_overflow<T>(n, operation);
  return std::uint64_t{n} * sizeof(T);
}

}  // namespace dsm::detail

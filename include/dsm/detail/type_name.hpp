// The spelling of a type, for messages and for global_ptr's formatter.
#pragma once

#include <string_view>

namespace dsm::detail {

// Cut out of __PRETTY_FUNCTION__ ("... [with T = double; ...]" on g++,
// "... [T = double]" on clang); compile-time, no RTTI, no demangler.
template <class T>
constexpr std::string_view type_name() noexcept {
  std::string_view f = __PRETTY_FUNCTION__;
  const auto start = f.find("T = ");
  if (start == std::string_view::npos) return "?";
  f.remove_prefix(start + 4);
  return f.substr(0, f.find_first_of(";]"));
}

}  // namespace dsm::detail

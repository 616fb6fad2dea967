// UCX_TLS as UCX reads it, for the three decisions that depend on it: the
// progress mode, whether /dev/shm bounds segments, whether shared-memory
// error handling is worth asking for. Unset, empty, or an exclusion list
// ("^tcp") leaves UCX free to pick any transport.
#pragma once

#include <cstdlib>
#include <initializer_list>
#include <string_view>

namespace dsm::transport {

class transport_list {
 public:
  explicit transport_list(const char* tls) : names_(tls == nullptr ? "" : tls) {}
  // UCX_TLS of this process.
  static transport_list from_environment() { return transport_list(std::getenv("UCX_TLS")); }

  // No restriction: UCX may use any transport it finds.
  bool unrestricted() const noexcept { return names_.empty() || names_.front() == '^'; }
  // The list names one of `names` (an alias such as "sm" counts as itself).
  bool names_any(std::initializer_list<std::string_view> names) const noexcept {
    bool found = false;
    for_each_name([&](std::string_view n) { found = found || contains(names, n); });
    return found;
  }
  // UCX may use a shared-memory transport.
  bool allows_shared_memory() const noexcept {
    return unrestricted() || names_any({"posix", "sysv", "sm", "shm", "mm", "all"});
  }
  // A restricted list whose every name is one of `names`.
  bool names_only(std::initializer_list<std::string_view> names) const noexcept {
    if (unrestricted()) return false;
    bool only = true;
    for_each_name([&](std::string_view n) { only = only && contains(names, n); });
    return only;
  }

 private:
  static bool contains(std::initializer_list<std::string_view> names, std::string_view n) noexcept {
    for (std::string_view m : names)
      if (m == n) return true;
    return false;
  }
  template <class F>
  void for_each_name(F&& f) const {
    std::string_view rest = names_;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      f(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }

  std::string_view names_;
};

}  // namespace dsm::transport

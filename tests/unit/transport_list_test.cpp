#include <dsm/runtime/settings.hpp>
#include <dsm/transport/transport_list.hpp>

#include <doctest/doctest.h>

using dsm::transport::transport_list;

TEST_CASE("UCX_TLS unset, empty or an exclusion list leaves UCX every transport") {
  for (const char* tls : {static_cast<const char*>(nullptr), "", "^tcp", "^posix,sysv"}) {
    const transport_list l(tls);
    CHECK(l.unrestricted());
    CHECK_FALSE(l.names_only({"posix", "tcp"}));
    CHECK_FALSE(dsm::detail::settings::shared_memory_only(tls));
  }
}

TEST_CASE("transport names are matched whole, in any position") {
  const transport_list l("tcp,posix,self");
  CHECK_FALSE(l.unrestricted());
  CHECK(l.names_any({"posix"}));
  CHECK(l.names_any({"self"}));
  CHECK_FALSE(l.names_any({"pos", "tc", "sm"}));
  CHECK(l.names_only({"tcp", "posix", "self"}));
  CHECK_FALSE(l.names_only({"posix", "self"}));
}

TEST_CASE("the progress mode's choice: shared memory only means every name is a shared-memory transport") {
  CHECK(dsm::detail::settings::shared_memory_only("posix,self,cma"));
  CHECK(dsm::detail::settings::shared_memory_only("sm"));
  CHECK_FALSE(dsm::detail::settings::shared_memory_only("sm,tcp"));
  CHECK_FALSE(dsm::detail::settings::shared_memory_only("tcp"));
  CHECK_FALSE(dsm::detail::settings::shared_memory_only("posix,,tcp"));
}

TEST_CASE("shared memory is allowed unless UCX_TLS names transports and none of them shares memory") {
  for (const char* tls : {static_cast<const char*>(nullptr), "", "^tcp", "posix,self", "tcp,sysv", "sm", "all"})
    CHECK(transport_list(tls).allows_shared_memory());
  for (const char* tls : {"tcp", "tcp,self", "self", "cma,tcp"}) CHECK_FALSE(transport_list(tls).allows_shared_memory());
}

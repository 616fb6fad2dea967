// Joining a job started by mpirun or srun: PMIx gives the rank and the job
// size; every rank puts its worker address, a fence collects them all.
#pragma once

#include <dsm/error.hpp>

#include <fmt/format.h>
#include <pmix.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace dsm::detail {

struct membership;

inline constexpr const char* pmix_address_key = "dsm.worker_address";

[[noreturn]] inline void pmix_fail(const char* call, pmix_status_t rc) {
  throw error(errc::bootstrap, fmt::format("{} failed: {}", call, PMIx_Error_string(rc)));
}

inline pmix_proc_t pmix_process(const pmix_nspace_t nspace, pmix_rank_t rank) {
  pmix_proc_t p;
  PMIX_PROC_CONSTRUCT(&p);
  PMIX_LOAD_PROCID(&p, nspace, rank);
  return p;
}

struct pmix_job {
  std::uint32_t rank;
  std::uint32_t ranks;
  std::vector<std::vector<std::byte>> addresses;
};

inline pmix_job pmix_exchange(std::span<const std::byte> address) {
  pmix_proc_t me;
  if (const pmix_status_t rc = PMIx_Init(&me, nullptr, 0); rc != PMIX_SUCCESS) pmix_fail("PMIx_Init", rc);
  try {
    pmix_proc_t everyone = pmix_process(me.nspace, PMIX_RANK_WILDCARD);
    pmix_value_t* size = nullptr;
    if (const pmix_status_t rc = PMIx_Get(&everyone, PMIX_JOB_SIZE, nullptr, 0, &size); rc != PMIX_SUCCESS)
      pmix_fail("PMIx_Get(job size)", rc);
    const std::uint32_t ranks = size->data.uint32;
    PMIX_VALUE_RELEASE(size);
    if (me.rank >= ranks) throw error(errc::bootstrap, fmt::format("PMIx rank {} of a {}-rank job", me.rank, ranks));

    pmix_value_t mine;
    PMIX_VALUE_CONSTRUCT(&mine);
    mine.type = PMIX_BYTE_OBJECT;
    mine.data.bo.bytes = const_cast<char*>(reinterpret_cast<const char*>(address.data()));
    mine.data.bo.size = address.size();
    if (const pmix_status_t rc = PMIx_Put(PMIX_GLOBAL, pmix_address_key, &mine); rc != PMIX_SUCCESS) pmix_fail("PMIx_Put", rc);
    if (const pmix_status_t rc = PMIx_Commit(); rc != PMIX_SUCCESS) pmix_fail("PMIx_Commit", rc);
    pmix_info_t collect;
    PMIX_INFO_CONSTRUCT(&collect);
    bool yes = true;
    PMIX_INFO_LOAD(&collect, PMIX_COLLECT_DATA, &yes, PMIX_BOOL);
    if (const pmix_status_t rc = PMIx_Fence(&everyone, 1, &collect, 1); rc != PMIX_SUCCESS) pmix_fail("PMIx_Fence", rc);

    pmix_job job{me.rank, ranks, {}};
    for (std::uint32_t r = 0; r < ranks; ++r) {
      pmix_proc_t peer = pmix_process(me.nspace, r);
      pmix_value_t* value = nullptr;
      if (const pmix_status_t rc = PMIx_Get(&peer, pmix_address_key, nullptr, 0, &value); rc != PMIX_SUCCESS)
        pmix_fail("PMIx_Get(worker address)", rc);
      if (value->type != PMIX_BYTE_OBJECT) {
        PMIX_VALUE_RELEASE(value);
        throw error(errc::bootstrap, fmt::format("rank {} published its address with PMIx type {}", r, value->type));
      }
      const auto* bytes = reinterpret_cast<const std::byte*>(value->data.bo.bytes);
      job.addresses.emplace_back(bytes, bytes + value->data.bo.size);
      PMIX_VALUE_RELEASE(value);
    }
    return job;
  } catch (...) {
    PMIx_Finalize(nullptr, 0);
    throw;
  }
}

inline void pmix_leave() noexcept { PMIx_Finalize(nullptr, 0); }

}  // namespace dsm::detail

// The direct policy: no caching. Every element access is a remote operation
// on the element's home (a plain load or store when it is homed here). The
// baseline the caching policies are measured against, and the right choice
// for sparse, fine-grained access where moving a whole unit loses.
// Release makes this rank's writes complete at their homes; acquire (and
// the barrier hook) has nothing to drop.
#pragma once

#include <dsm/coherence/array_layout.hpp>
#include <dsm/coherence/bulk.hpp>
#include <dsm/coherence/policy.hpp>
#include <dsm/rma.hpp>
#include <dsm/runtime/runtime.hpp>

#include <cstddef>
#include <cstdint>

namespace dsm {

struct direct {
  static constexpr std::uint8_t id = 1;
  static constexpr const char* name = "direct";

  template <class T>
  class state {
   public:
    explicit state(const coherence::array_layout<T>& layout) : layout_(layout) {}

    T read(std::size_t i) {
      T value;
      rget(layout_.pointer(i), 1, &value).wait();
      return value;
    }
    void write(std::size_t i, const T& v) { rput(v, layout_.pointer(i)).wait(); }
    void get(std::size_t first, std::size_t count, T* out) { coherence::bulk_get(layout_, first, count, out); }
    void put(std::size_t first, const T* in, std::size_t count) { coherence::bulk_put(layout_, first, in, count); }
    void acquire() {}
    void release() { fence(); }
    void arrive() { release(); }
    void barrier() { acquire(); }

   private:
    const coherence::array_layout<T>& layout_;
  };
};

static_assert(coherence::policy<direct>);

}  // namespace dsm

// A policy is one self-contained type: this test defines its own, which
// counts its hooks, and checks that element and bulk access reach it, and
// that barriers drive its arrive and barrier hooks and locks its acquire
// and release.
#include "check.hpp"

#include <cstdint>
#include <vector>

namespace {

struct hook_counts {
  int reads = 0, writes = 0, gets = 0, puts = 0, acquires = 0, releases = 0, arrivals = 0, barriers = 0;
};
hook_counts counts;

// Behaves like direct, and counts.
struct counting {
  static constexpr std::uint8_t id = 15;
  static constexpr const char* name = "counting";
  template <class T>
  class state {
   public:
    explicit state(const dsm::coherence::array_layout<T>& l) : inner_(l) {}
    T read(std::size_t i) { return ++counts.reads, inner_.read(i); }
    void write(std::size_t i, const T& v) { ++counts.writes, inner_.write(i, v); }
    void get(std::size_t f, std::size_t n, T* out) { ++counts.gets, inner_.get(f, n, out); }
    void put(std::size_t f, const T* in, std::size_t n) { ++counts.puts, inner_.put(f, in, n); }
    void acquire() { ++counts.acquires, inner_.acquire(); }
    void release() { ++counts.releases, inner_.release(); }
    void arrive() { ++counts.arrivals, inner_.arrive(); }
    void barrier() { ++counts.barriers, inner_.barrier(); }

   private:
    dsm::direct::state<T> inner_;
  };
};
static_assert(dsm::coherence::policy<counting, long>);

}  // namespace

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [] {
    const int me = dsm::rank(), n = dsm::ranks();
    dsm::lock l;
    {
      dsm::shared_array<long, counting> a(static_cast<std::size_t>(4 * n), dsm::cyclic, "counted");
      CHECK_EQ(a.pointer(0).policy_id(), 15);
      const hook_counts start = counts;
      a[static_cast<std::size_t>(me)] = me;
      const long v = a[static_cast<std::size_t>(me)];
      CHECK_EQ(v, long(me));
      std::vector<long> buf(4);
      a.get(0, buf);
      a.put(0, std::span<const long>(buf));
      CHECK_EQ(counts.writes - start.writes, 1);
      CHECK_EQ(counts.reads - start.reads, 1);
      CHECK_EQ(counts.gets - start.gets, 1);
      CHECK_EQ(counts.puts - start.puts, 1);

      const hook_counts before_barrier = counts;
      dsm::barrier();
      CHECK_EQ(counts.arrivals - before_barrier.arrivals, 1);
      CHECK_EQ(counts.releases - before_barrier.releases, 0);  // a barrier's release half is arrive()
      CHECK_EQ(counts.barriers - before_barrier.barriers, 1);
      CHECK_EQ(counts.acquires - before_barrier.acquires, 0);  // a barrier is not a lock acquire

      const hook_counts before_lock = counts;
      l.lock();
      CHECK_EQ(counts.acquires - before_lock.acquires, 1);
      l.unlock();
      CHECK_EQ(counts.releases - before_lock.releases, 1);
      CHECK_EQ(counts.barriers - before_lock.barriers, 0);
      CHECK_EQ(counts.arrivals - before_lock.arrivals, 0);
      dsm::barrier();
    }
    // A destroyed array is no longer driven by barriers.
    const hook_counts after = counts;
    dsm::barrier();
    CHECK_EQ(counts.acquires, after.acquires);
    CHECK_EQ(counts.releases, after.releases);
    CHECK_EQ(counts.arrivals, after.arrivals);
    CHECK_EQ(counts.barriers, after.barriers);
  });
}

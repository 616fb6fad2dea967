// An array destroyed after its runtime ended (issue 19.7): a clear message
// naming the array and the end of the process, never a touch of freed
// state (the test expects that message and a non-zero end).
#include <dsm/dsm.hpp>

#include <cstdio>
#include <memory>

int main(int argc, char** argv) {
  std::unique_ptr<dsm::shared_array<double, dsm::write_shared>> late;
  {
    dsm::runtime rt{argc, argv};
    late = std::make_unique<dsm::shared_array<double, dsm::write_shared>>(1000, "late");
    (*late)[0] = 1.0;
    dsm::barrier();
  }
  std::printf("the runtime has ended\n");
  std::fflush(stdout);
  late.reset();  // must not return
  std::printf("the array was destroyed after its runtime without a word\n");
  return 0;
}

// Must not compile: a lambda's captures are this rank's values, and the
// target runs its own copy of the code; they must travel as arguments.
#include <dsm/dsm.hpp>

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  int x = 3;
  return dsm::rpc(0, [x] { return x; }).wait();
}

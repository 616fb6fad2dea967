// Must not compile: a pointer into this rank's memory means nothing on
// another rank.
#include <dsm/dsm.hpp>

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  int x = 3;
  return dsm::rpc(0, [](int* p) { return *p; }, &x).wait();
}

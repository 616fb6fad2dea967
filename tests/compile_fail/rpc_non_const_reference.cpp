// Must not compile: the target's function receives each value as an
// rvalue it owns; a non-const reference parameter cannot bind to it.
#include <dsm/dsm.hpp>

#include <string>

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  dsm::rpc(0, [](std::string& s) { s += "!"; }, std::string("x")).wait();
}

// Must not compile: a std::string has a copy constructor, so its bytes cannot
// be moved between ranks.
#include <dsm/global_ptr.hpp>

#include <string>

int main() {
  dsm::global_ptr<std::string> p;
  return p.is_null() ? 0 : 1;
}

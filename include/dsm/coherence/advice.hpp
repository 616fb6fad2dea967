// What a program can tell a caching array about a range it is about to
// use or is done with (after GMEM's hmadvise): shared_array::advise.
#pragma once

namespace dsm {

enum class advice {
  willneed,  // fetch the range's missing units now, without waiting (as prefetch)
  dontneed,  // drop the range's read copies; a later read fetches them again
};

}  // namespace dsm

// UCX's own signal handling, where dsm needs a signal for itself.
#pragma once

#include <signal.h>
#include <ucs/debug/debug.h>

namespace dsm::transport {

// UCX catches SIGSEGV to print a backtrace (UCX_HANDLE_ERRORS); a
// global_region serves page faults with it. UCX hands the signal back to
// the handler it found (by default the program's own crash).
inline void take_back_segv_from_ucx() noexcept { ucs_debug_disable_signal(SIGSEGV); }

}  // namespace dsm::transport

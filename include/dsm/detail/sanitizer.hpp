// Telling ThreadSanitizer about the one handshake outside its model: the
// single_writer recall (see engine::on_recall), where the handler reads a
// unit the program's thread may be storing into, ordered only by a pair of
// seq_cst fences (Dekker) that TSan does not model. A store that loses the
// race is redone by the program, so what the handler read then does not
// matter; TSan is told to ignore those reads, nothing else.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define DSM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DSM_TSAN 1
#endif
#endif

#if DSM_TSAN
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#endif

namespace dsm::detail {

// Reads in this scope are not checked by ThreadSanitizer (a no-op in
// other builds).
class tsan_ignore_reads {
 public:
#if DSM_TSAN
  tsan_ignore_reads() noexcept { AnnotateIgnoreReadsBegin(__FILE__, __LINE__); }
  ~tsan_ignore_reads() { AnnotateIgnoreReadsEnd(__FILE__, __LINE__); }
#else
  // Not trivial, so that a scope's guard is not an unused variable.
  tsan_ignore_reads() noexcept {}
  ~tsan_ignore_reads() {}
#endif
  tsan_ignore_reads(const tsan_ignore_reads&) = delete;
  tsan_ignore_reads& operator=(const tsan_ignore_reads&) = delete;
};

}  // namespace dsm::detail

#pragma once
// PipePool: per-worker pool of pipe pairs for splice(2). A pipe is held by a connection only while
// bytes sit in it, so idle connections hold none.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ugate {

struct Pipe {
  int r{-1};
  int w{-1};
  bool valid() const { return r >= 0; }
};

class PipePool {
 public:
  PipePool(size_t pipeBytes, size_t maxPooled) : pipeBytes_(pipeBytes), maxPooled_(maxPooled) {}
  ~PipePool();
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  /** acquire returns an empty pipe, or an invalid one when pipe2() fails (e.g. EMFILE). */
  Pipe acquire();
  /** release returns an empty pipe to the pool. */
  void release(Pipe p);
  /** discard closes a pipe that may still hold bytes. */
  static void discard(Pipe p);

  size_t pooled() const { return free_.size(); }
  uint64_t created() const { return created_; }

 private:
  size_t pipeBytes_;
  size_t maxPooled_;
  std::vector<Pipe> free_;
  uint64_t created_{0};
};

}  // namespace ugate

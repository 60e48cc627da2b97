#include <ugate/pipe_pool.h>

#include <fcntl.h>
#include <unistd.h>

namespace ugate {

PipePool::~PipePool() {
  for (auto p : free_) discard(p);
}

Pipe PipePool::acquire() {
  if (!free_.empty()) {
    Pipe p = free_.back();
    free_.pop_back();
    return p;
  }
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return Pipe{};
  // Best effort: a larger pipe means fewer splice calls per megabyte; the kernel may cap it.
  fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(pipeBytes_));
  ++created_;
  return Pipe{fds[0], fds[1]};
}

void PipePool::release(Pipe p) {
  if (!p.valid()) return;
  if (free_.size() < maxPooled_) {
    free_.push_back(p);
  } else {
    discard(p);
  }
}

void PipePool::discard(Pipe p) {
  if (p.r >= 0) close(p.r);
  if (p.w >= 0) close(p.w);
}

}  // namespace ugate

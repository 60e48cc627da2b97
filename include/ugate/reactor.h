#pragma once
// The Reactor: one per worker thread. epoll (edge-triggered), a timer queue with a cached `now`,
// posted cross-thread tasks and deferred deletion. Everything except post() and exit() must be called
// on the reactor's own thread.
#include <cstdint>
#include <functional>
#include <memory>

#include <ugate/time.h>

namespace ugate {

/** IoWatcher: receives readiness for one fd. Non-owning; must outlive its registration. */
class IoWatcher {
 public:
  virtual ~IoWatcher() = default;
  /** onIoEvent is called with the EPOLL* bits that became ready (edge-triggered). */
  virtual void onIoEvent(uint32_t events) = 0;
};

/** DeferredDeletable: objects freed at the end of the current loop turn. */
class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};
using DeferredDeletablePtr = std::unique_ptr<DeferredDeletable>;

/** Timer: a one-shot timer owned by its creator. Destroying it cancels it. */
class Timer {
 public:
  virtual ~Timer() = default;
  /** enable (re)arms the timer to fire after d, relative to the reactor's cached now. */
  virtual void enable(Duration d) = 0;
  /** enableAt arms the timer for an absolute time. */
  virtual void enableAt(MonotonicTime t) = 0;
  virtual void disable() = 0;
  virtual bool enabled() const = 0;
};
using TimerPtr = std::unique_ptr<Timer>;
using TimerCb = std::function<void()>;

class Reactor {
 public:
  virtual ~Reactor() = default;

  /** addFd registers fd for edge-triggered events (EPOLLIN|EPOLLOUT|EPOLLRDHUP by default). */
  virtual bool addFd(int fd, IoWatcher* w, uint32_t events) = 0;
  virtual bool modFd(int fd, IoWatcher* w, uint32_t events) = 0;
  /** removeFd unregisters fd; events for w still pending in the current turn are dropped. */
  virtual void removeFd(int fd, IoWatcher* w) = 0;
  /**
   * forgetFd drops events for w still pending in this turn, without an epoll_ctl: for an fd about
   * to be closed (closing the last reference removes it from epoll by itself). Saves a syscall per
   * socket; only valid for fds that are never dup()ed.
   */
  virtual void forgetFd(IoWatcher* w) = 0;

  /** createTimer returns a disabled timer that runs cb on this reactor's thread. */
  virtual TimerPtr createTimer(TimerCb cb) = 0;

  /** post queues fn to run on this reactor's thread. Thread-safe; wakes the loop. */
  virtual void post(std::function<void()> fn) = 0;
  /** defer runs fn later in this loop turn, after ready fds (same thread only). */
  virtual void defer(std::function<void()> fn) = 0;
  /** deferredDelete frees p at the end of the current loop turn. */
  virtual void deferredDelete(DeferredDeletablePtr p) = 0;

  /** now is the time cached at the start of this loop turn. */
  virtual MonotonicTime now() const = 0;
  /** updateNow refreshes the cached time (rarely needed). */
  virtual MonotonicTime updateNow() = 0;

  /** run loops until exit() is called. */
  virtual void run() = 0;
  /** exit makes run() return after the current turn. Thread-safe. */
  virtual void exit() = 0;
  /** index of this reactor (worker number; the main thread's reactor is -1). */
  virtual int index() const = 0;
  /** isThisThread tells whether the caller runs on this reactor's thread. */
  virtual bool isThisThread() const = 0;
};
using ReactorPtr = std::unique_ptr<Reactor>;

/**
 * deleteLater frees p at the end of the current loop turn: for an object whose own callback is on
 * the stack (a stream that failed inside its connect callback, a bridge that finished).
 */
template <class T>
void deleteLater(Reactor& r, std::unique_ptr<T> p) {
  struct Holder final : DeferredDeletable {
    explicit Holder(std::unique_ptr<T> q) : v(std::move(q)) {}
    std::unique_ptr<T> v;
  };
  if (p) r.deferredDelete(std::make_unique<Holder>(std::move(p)));
}

/** newReactor creates an epoll reactor using ts as its clock. */
ReactorPtr newReactor(TimeSource& ts, int index);

}  // namespace ugate

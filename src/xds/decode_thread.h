#pragma once
// DecodeThread: the xds module's thread for the ADS client's expensive, stateless work (decoding and
// converting a big response: issue 19 §5), so that worker 0's loop does not stall on it. Jobs run
// one at a time, in the order given; a job posts its result back to the reactor it came from
// (through a ReactorLink, which the owner cuts before it goes). Started at the first job; stopped and
// joined by its destructor (the module's, on the main thread: never a reactor's); jobs not run by
// then are dropped.
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include <ugate/reactor.h>

namespace ugate::xds {

/**
 * ReactorLink: a reactor another thread may post to until cut() (its owner's destructor, on that
 * reactor's thread): post() after that drops the task.
 */
class ReactorLink {
 public:
  explicit ReactorLink(Reactor& r) : r_(&r) {}
  /** post: fn to the reactor (false, fn dropped, once cut). Thread-safe. */
  bool post(std::function<void()> fn);
  void cut();
  /** alive: not cut yet. */
  bool alive();

 private:
  std::mutex mu_;  // mu_ guards r_
  Reactor* r_;
};

class DecodeThread {
 public:
  DecodeThread() = default;
  ~DecodeThread();
  DecodeThread(const DecodeThread&) = delete;
  DecodeThread& operator=(const DecodeThread&) = delete;

  /** run: job on the thread, after those given before. Thread-safe; never blocks for a job. */
  void run(std::function<void()> job);

 private:
  void loop();

  std::mutex mu_;  // mu_ guards queue_, stopping_ and thread_'s start
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_{false};
  std::thread thread_;
};

}  // namespace ugate::xds

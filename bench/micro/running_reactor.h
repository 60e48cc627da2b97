#pragma once
// RunningReactor: a reactor running on its own thread for the length of one micro-benchmark.
#include <future>
#include <thread>

#include <ugate/reactor.h>

namespace ugate::bench {

struct RunningReactor {
  ReactorPtr r = newReactor(realTimeSource(), 0);
  std::thread loop{[this] { r->run(); }};
  ~RunningReactor() {
    r->exit();
    loop.join();
  }
  /** onThread runs fn on the reactor's thread and waits for it. */
  template <typename F>
  void onThread(F&& fn) {
    std::promise<void> p;
    r->post([&] {
      fn();
      p.set_value();
    });
    p.get_future().wait();
  }
};

}  // namespace ugate::bench

#include "test_common/reactor_sync.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

namespace ugate::test {

void runOn(Reactor& r, const std::function<void()>& fn) {
  auto done = std::make_shared<std::promise<void>>();
  auto f = done->get_future();
  r.post([&fn, done] {
    fn();
    done->set_value();
  });
  if (f.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    ADD_FAILURE() << "reactor stuck";
    f.wait();
  }
}

bool waitOn(Reactor& r, const std::function<bool()>& pred, int timeoutMs) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    bool ok = false;
    runOn(r, [&] { ok = pred(); });
    if (ok) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace ugate::test

#pragma once
// Driving a reactor that runs on its own thread from a test's thread.
#include <ugate/reactor.h>

#include <functional>

namespace ugate::test {

/** runOn executes fn on r's thread and waits for it (a test failure if it takes over 20 s). */
void runOn(Reactor& r, const std::function<void()>& fn);
/** waitOn evaluates pred on r's thread every 2 ms until it holds; false after timeoutMs. */
bool waitOn(Reactor& r, const std::function<bool()>& pred, int timeoutMs);

}  // namespace ugate::test

// The reactor's own costs, without the kernel's TCP work: what one loop turn, a deferred call, a
// cross-thread post and a timer re-arm cost, and an fd event round trip (a socketpair ping-pong
// between two TcpStreams on one reactor: read, write, epoll_wait).
//   build/bench/micro/reactor_bench
#include <benchmark/benchmark.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <ugate/reactor.h>

#include <ugate/tcp_stream.h>
#include "running_reactor.h"

namespace {

using namespace ugate;

using Running = bench::RunningReactor;

void spinUntil(const std::atomic<bool>& flag) {
  while (!flag.load(std::memory_order_acquire)) {
  }
}

// defer: one post, then 1000 callbacks deferred from the reactor thread and run in the same turn.
void BM_Defer(benchmark::State& state) {
  Running rt;
  std::atomic<bool> done{false};
  int left = 0;
  for (auto _ : state) {
    done.store(false, std::memory_order_relaxed);
    rt.r->post([&] {
      left = 1000;
      for (int i = 0; i < 1000; ++i) {
        rt.r->defer([&] {
          if (--left == 0) done.store(true, std::memory_order_release);
        });
      }
    });
    spinUntil(done);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_Defer);

// post: another thread hands callbacks to a running reactor (the cross-worker path), 1000 per batch.
void BM_PostFromAnotherThread(benchmark::State& state) {
  Running rt;
  std::atomic<int> done{0};
  for (auto _ : state) {
    done.store(0, std::memory_order_relaxed);
    for (int i = 0; i < 1000; ++i) rt.r->post([&] { done.fetch_add(1, std::memory_order_relaxed); });
    while (done.load(std::memory_order_relaxed) < 1000) {
    }
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_PostFromAnotherThread);

// Timer re-arm: what an idle timeout costs per I/O event (enable moves the deadline).
void BM_TimerRearm(benchmark::State& state) {
  ReactorPtr r = newReactor(realTimeSource(), 0);
  std::vector<TimerPtr> timers;
  for (int i = 0; i < 10000; ++i) {
    timers.push_back(r->createTimer([] {}));
    timers.back()->enable(Duration(60000 + i));
  }
  size_t i = 0;
  for (auto _ : state) {
    timers[i]->enable(Duration(60000 + static_cast<int64_t>(i)));
    i = (i + 7919) % timers.size();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TimerRearm);

// Ping-pong: two TcpStreams over a socketpair on one reactor bounce a 64-byte message; each
// iteration is one message each way (two sends, two recvs, one or two epoll_wait turns).
struct PingPong : StreamCallbacks {
  TcpStream* a{nullptr};
  TcpStream* b{nullptr};
  int64_t left{0};
  std::atomic<bool> done{false};
  uint8_t buf[64]{};
  void onStreamReadable(Stream& s) override {
    for (;;) {
      IoResult n = s.read(buf, sizeof(buf));
      if (!n.ok() || n.value <= 0) return;
      if (&s == b) {
        b->write(buf, static_cast<size_t>(n.value));  // echo
      } else if (--left <= 0) {
        done.store(true, std::memory_order_release);
        return;
      } else {
        a->write(buf, sizeof(buf));
      }
    }
  }
  void onStreamWritable(Stream&) override {}
};

void BM_SocketPairPingPong(benchmark::State& state) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    state.SkipWithError("socketpair");
    return;
  }
  Running rt;
  std::unique_ptr<TcpStream> a, b;
  PingPong pp;
  std::atomic<bool> ready{false};
  rt.r->post([&] {
    a = std::make_unique<TcpStream>(*rt.r, sv[0]);
    b = std::make_unique<TcpStream>(*rt.r, sv[1]);
    pp.a = a.get();
    pp.b = b.get();
    a->setCallbacks(&pp);
    b->setCallbacks(&pp);
    ready.store(true, std::memory_order_release);
  });
  spinUntil(ready);
  constexpr int64_t kRounds = 10000;
  for (auto _ : state) {
    pp.done.store(false, std::memory_order_relaxed);
    rt.r->post([&] {
      pp.left = kRounds;
      a->write(pp.buf, sizeof(pp.buf));
    });
    spinUntil(pp.done);
  }
  state.SetItemsProcessed(state.iterations() * kRounds);
  std::atomic<bool> closed{false};
  rt.r->post([&] {
    a.reset();
    b.reset();
    closed.store(true, std::memory_order_release);
  });
  spinUntil(closed);
}
BENCHMARK(BM_SocketPairPingPong)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

// The cross-worker StreamBridge (src/core/stream_bridge.cc) alone, two reactors on two threads:
// bulk throughput (the producer writes 16 KiB at a time, as a splice does, the consumer reads until
// EAGAIN) and a 64-byte ping-pong across the threads (two bridge writes, two reads and two
// cross-thread wake-ups per round trip).
//   build/bench/micro/bridge_bench
#include <benchmark/benchmark.h>

#include <atomic>
#include <future>
#include <memory>
#include <utility>
#include <vector>

#include <ugate/reactor.h>

#include <ugate/stream_bridge.h>
#include "running_reactor.h"

namespace {

using namespace ugate;

// Bridged: two reactors on their threads and a bridge between them (default capacity). attach sets
// each end's callbacks and has each read once, so a reader finds its ring empty and asks for a
// wake-up. The ends are destroyed on their own threads.
struct Bridged {
  bench::RunningReactor a, b;
  std::pair<StreamPtr, StreamPtr> ends = makeStreamBridge(*a.r, *b.r);
  void attach(StreamCallbacks& ca, StreamCallbacks& cb) {
    a.onThread([&] {
      ends.first->setCallbacks(&ca);
      ca.onStreamReadable(*ends.first);
    });
    b.onThread([&] {
      ends.second->setCallbacks(&cb);
      cb.onStreamReadable(*ends.second);
    });
  }
  ~Bridged() {
    a.onThread([&] { ends.first.reset(); });
    b.onThread([&] { ends.second.reset(); });
  }
};

// Sender writes until `target` bytes went out (a 16 KiB chunk per write, like a splice).
struct Sender : StreamCallbacks {
  Stream* s = nullptr;
  uint64_t target = 0, sent = 0;
  std::vector<uint8_t> buf = std::vector<uint8_t>(16 * 1024, 0x5a);
  void onStreamReadable(Stream&) override {}
  void onStreamWritable(Stream&) override {
    while (sent < target) {
      IoResult w = s->write(buf.data(), std::min<uint64_t>(buf.size(), target - sent));
      if (!w.ok() || w.value <= 0) break;
      sent += static_cast<uint64_t>(w.value);
    }
  }
};

// Receiver reads until EAGAIN and fulfils `done` when `goal` bytes arrived.
struct Receiver : StreamCallbacks {
  Stream* s = nullptr;
  uint64_t received = 0, goal = 0;
  std::promise<void> done;
  bool waiting = false;
  std::vector<uint8_t> buf = std::vector<uint8_t>(16 * 1024);
  void onStreamWritable(Stream&) override {}
  void onStreamReadable(Stream&) override {
    for (;;) {
      IoResult r = s->read(buf.data(), buf.size());
      if (!r.ok() || r.value <= 0) break;
      received += static_cast<uint64_t>(r.value);
    }
    if (waiting && received >= goal) {
      waiting = false;
      done.set_value();
    }
  }
};

void BM_BridgeBulk(benchmark::State& state) {
  Sender snd;  // callbacks outlive the bridge
  Receiver rcv;
  Bridged br;
  snd.s = br.ends.first.get();
  rcv.s = br.ends.second.get();
  br.attach(snd, rcv);
  const uint64_t kPerIteration = 4u << 20;
  for (auto _ : state) {
    std::future<void> f;
    br.b.onThread([&] {
      rcv.done = std::promise<void>();
      f = rcv.done.get_future();
      rcv.goal += kPerIteration;
      rcv.waiting = true;
    });
    br.a.r->post([&] {
      snd.target += kPerIteration;
      snd.onStreamWritable(*snd.s);
    });
    f.wait();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kPerIteration));
}
BENCHMARK(BM_BridgeBulk)->UseRealTime();

// Echo: reads 64 bytes and writes them back (on the far side).
struct Echo : StreamCallbacks {
  Stream* s = nullptr;
  uint8_t buf[64];
  void onStreamWritable(Stream&) override {}
  void onStreamReadable(Stream&) override {
    for (;;) {
      IoResult r = s->read(buf, sizeof(buf));
      if (!r.ok() || r.value <= 0) break;
      s->write(buf, static_cast<size_t>(r.value));  // 64 B always fit the ring in a ping-pong
    }
  }
};

// Pinger: writes 64 bytes, waits for them back, `left` times.
struct Pinger : StreamCallbacks {
  Stream* s = nullptr;
  int left = 0;
  size_t got = 0;
  uint8_t buf[64] = {};
  std::promise<void> done;
  void onStreamWritable(Stream&) override {}
  void onStreamReadable(Stream&) override {
    for (;;) {
      IoResult r = s->read(buf, sizeof(buf));
      if (!r.ok() || r.value <= 0) break;
      got += static_cast<size_t>(r.value);
      if (got == sizeof(buf)) {
        got = 0;
        if (--left == 0) {
          done.set_value();  // and read on: the EAGAIN below asks for the next wake-up
        } else {
          s->write(buf, sizeof(buf));
        }
      }
    }
  }
};

void BM_BridgePingPong64(benchmark::State& state) {
  Pinger ping;
  Echo echo;
  Bridged br;
  ping.s = br.ends.first.get();
  echo.s = br.ends.second.get();
  br.attach(ping, echo);
  const int kRounds = 1000;
  for (auto _ : state) {
    std::future<void> f;
    br.a.onThread([&] {
      ping.done = std::promise<void>();
      f = ping.done.get_future();
      ping.left = kRounds;
      ping.s->write(ping.buf, sizeof(ping.buf));
    });
    f.wait();
  }
  state.SetItemsProcessed(state.iterations() * kRounds);
}
BENCHMARK(BM_BridgePingPong64)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

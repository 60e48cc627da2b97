// Throughput of one HTTP/2 stream (H2Connection client -> server) over an AF_UNIX socketpair on
// one reactor thread, against the same bytes over the bare socketpair (TcpStream to TcpStream).
// Both ends run on the same core, so the number is the cost of both sides together.
//   build/bench/micro/h2_bench --benchmark_min_time=2
#include <benchmark/benchmark.h>
#include <sys/socket.h>

#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <thread>

#include <ugate/reactor.h>

#include <ugate/tcp_stream.h>
#include "http/h2_connection.h"

namespace {

using namespace ugate;
using namespace ugate::http;

constexpr size_t kBytesPerIteration = 64u << 20;

// Writer: writes `left` bytes from a fixed buffer, as fast as the stream takes them.
struct Writer : StreamCallbacks {
  Stream* s{nullptr};
  size_t left{0};
  size_t chunk{0};
  const uint8_t* buf{nullptr};
  void pump() {
    while (left > 0) {
      IoResult r = s->write(buf, std::min(left, chunk));
      if (!r.ok() || r.value <= 0) return;
      left -= static_cast<size_t>(r.value);
    }
  }
  void onStreamReadable(Stream&) override {}
  void onStreamWritable(Stream&) override { pump(); }
};

// Reader: reads until `want` bytes arrived, then fulfils `done`.
struct Reader : StreamCallbacks {
  Stream* s{nullptr};
  size_t got{0};
  size_t want{0};
  uint8_t buf[64 * 1024];
  std::promise<void>* done{nullptr};
  void pump() {
    while (got < want) {
      IoResult r = s->read(buf, sizeof(buf));
      if (!r.ok() || r.value <= 0) return;
      got += static_cast<size_t>(r.value);
    }
    if (done != nullptr && got >= want) {
      done->set_value();
      done = nullptr;
    }
  }
  void onStreamReadable(Stream&) override { pump(); }
  void onStreamWritable(Stream&) override {}
};

class Loop {
 public:
  Loop() : r_(newReactor(realTimeSource(), 0)) { t_ = std::thread([this] { r_->run(); }); }
  ~Loop() {
    r_->exit();
    t_.join();
  }
  Reactor& r() { return *r_; }
  void run(std::function<void()> fn) {
    std::promise<void> p;
    r_->post([&] {
      fn();
      p.set_value();
    });
    p.get_future().wait();
  }

 private:
  ReactorPtr r_;
  std::thread t_;
};

struct NoCallbacks : H2ConnectionCallbacks {
  H2StreamPtr accepted;
  void onRequest(H2Connection&, H2StreamPtr s) override {
    s->respond(200);
    accepted = std::move(s);
  }
  void onConnectionClosed(H2Connection&, Errc, const std::string&) override {}
};

// transfer: one iteration: kBytesPerIteration from w to rd.
void transfer(benchmark::State& state, Loop& loop, Writer& w, Reader& rd) {
  size_t total = 0;
  for (auto _ : state) {
    std::promise<void> done;
    auto f = done.get_future();
    loop.run([&] {
      rd.want += kBytesPerIteration;
      rd.done = &done;
      w.left += kBytesPerIteration;
      w.pump();
      rd.pump();
    });
    f.wait();
    total += kBytesPerIteration;
  }
  state.SetBytesProcessed(static_cast<int64_t>(total));
}

void BM_H2OneStream(benchmark::State& state) {
  const size_t chunk = static_cast<size_t>(state.range(0));
  std::unique_ptr<uint8_t[]> data(new uint8_t[chunk]);
  memset(data.get(), 'x', chunk);
  Loop loop;
  NoCallbacks cbs;
  H2ConnectionPtr client, server;
  H2StreamPtr cs;
  Writer w;
  Reader rd;
  int fds[2];
  socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
  loop.run([&] {
    H2Options o;
    o.pingInterval = Duration{0};
    client = H2Connection::create(loop.r(), std::make_unique<TcpStream>(loop.r(), fds[0]),
                                  H2Connection::Role::Client, o, cbs);
    server = H2Connection::create(loop.r(), std::make_unique<TcpStream>(loop.r(), fds[1]),
                                  H2Connection::Role::Server, o, cbs);
    server->start();
    client->start();
    cs = client->connect("bench:1", {}, nullptr);
  });
  while (true) {
    bool ready = false;
    loop.run([&] { ready = cbs.accepted != nullptr; });
    if (ready) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  loop.run([&] {
    w.s = cs.get();
    w.chunk = chunk;
    w.buf = data.get();
    cs->setCallbacks(&w);
    rd.s = cbs.accepted.get();
    cbs.accepted->setCallbacks(&rd);
  });
  transfer(state, loop, w, rd);
  loop.run([&] {
    cs.reset();
    cbs.accepted.reset();
    client.reset();
    server.reset();
  });
}
BENCHMARK(BM_H2OneStream)->Arg(16 << 10)->Arg(64 << 10)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_SocketpairBaseline(benchmark::State& state) {
  const size_t chunk = static_cast<size_t>(state.range(0));
  std::unique_ptr<uint8_t[]> data(new uint8_t[chunk]);
  memset(data.get(), 'x', chunk);
  Loop loop;
  std::unique_ptr<TcpStream> a, b;
  Writer w;
  Reader rd;
  int fds[2];
  socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
  loop.run([&] {
    a = std::make_unique<TcpStream>(loop.r(), fds[0]);
    b = std::make_unique<TcpStream>(loop.r(), fds[1]);
    w.s = a.get();
    w.chunk = chunk;
    w.buf = data.get();
    a->setCallbacks(&w);
    rd.s = b.get();
    b->setCallbacks(&rd);
  });
  transfer(state, loop, w, rd);
  loop.run([&] {
    a.reset();
    b.reset();
  });
}
BENCHMARK(BM_SocketpairBaseline)->Arg(16 << 10)->Arg(64 << 10)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

// libFuzzer target for the HTTP/2 server side (H2Connection over nghttp2): arbitrary bytes are the
// client's half of a connection, fed through an in-memory transport on a simulated reactor (time
// is advanced by hand, so keepalive and linger timers fire too).
//
// Byte 0 (control): bits 0-3 the read split size (1 + n*97 bytes), bit 4 the transport takes
// writes only in small bites (backpressure), bit 5 the app resets every other stream, bit 6 the
// input ends with EOF, bit 7 the connection is destroyed before the streams (else after).
// The server answers CONNECT with 200 and echoes, anything else with 404 and a body.
// Invariants: nothing crashes or leaks (ASan), a closed connection stays closed and accepts no
// stream, streams of a dead connection read an error or EOF, never hang in EAGAIN with data.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <ugate/reactor.h>

#include "http/h2_connection.h"
#include "sim_h2.h"

namespace {

using namespace ugate;
using namespace ugate::http;
using ugate::fuzz::feedInput;
using ugate::fuzz::MemTransport;
using ugate::fuzz::readStep;
using ugate::fuzz::SimReactor;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Echo: what a tunnel does with a stream: read everything, write it back, end when the peer ends.
struct Echo : StreamCallbacks {
  H2StreamPtr s;
  std::string pending;
  bool eof{false};
  int err{0};
  void pump() {
    for (int guard = 0; guard < 64 && s; ++guard) {
      if (!pending.empty()) {
        IoResult w = s->write(reinterpret_cast<const uint8_t*>(pending.data()), pending.size());
        if (w.ok() && w.value > 0) pending.erase(0, static_cast<size_t>(w.value));
        if (!w.ok() && !w.wouldBlock()) err = w.err;
      }
      if (eof || err != 0 || pending.size() > 65536) return;
      uint8_t buf[4096];
      IoResult r = s->read(buf, sizeof(buf));
      if (r.wouldBlock()) return;
      if (!r.ok()) {
        err = r.err;
        return;
      }
      if (r.value == 0) {
        eof = true;
        s->shutdownWrite();
        return;
      }
      pending.append(reinterpret_cast<char*>(buf), static_cast<size_t>(r.value));
    }
  }
  void onStreamReadable(Stream&) override { pump(); }
  void onStreamWritable(Stream&) override { pump(); }
};

struct App : H2ConnectionCallbacks {
  bool resetSome{false};
  int n{0};
  bool closed{false};
  std::vector<std::unique_ptr<Echo>> echoes;
  void onRequest(H2Connection&, H2StreamPtr s) override {
    check(s != nullptr && s->id() > 0 && (s->id() & 1) == 1);  // client-initiated ids are odd
    ++n;
    if (s->method() != "CONNECT") {
      s->respond(404, {{"x-why", "fuzz"}}, "not here");
      return;  // dropped: the connection finishes the answer
    }
    if (resetSome && n % 2 == 0) {
      s->close(true);
      return;
    }
    s->respond(200, {{"x-tunnel", "1"}});
    auto e = std::make_unique<Echo>();
    e->s = std::move(s);
    e->s->setCallbacks(e.get());
    e->pump();
    echoes.push_back(std::move(e));
  }
  void onConnectionClosed(H2Connection& c, Errc, const std::string&) override {
    check(c.closed());
    closed = true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // connection errors are logged at info: not per input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t ctl = data[0];
  const size_t step = readStep(ctl);
  const bool smallWrites = ctl & 16;
  App app;
  app.resetSome = ctl & 32;
  const bool eofAtEnd = ctl & 64;
  const bool connFirst = ctl & 128;
  SimReactor r;
  H2Options o;
  o.pingInterval = Duration{1000};
  o.pingTimeout = Duration{500};
  o.streamWindow = 65535;
  o.connectionWindow = 1 << 20;
  o.streamWriteCap = 16384;
  o.maxConcurrentStreams = 32;
  o.maxHeaderListBytes = 4096;
  auto t = std::make_unique<MemTransport>(smallWrites);
  MemTransport* tp = t.get();
  H2ConnectionPtr c = H2Connection::create(r, std::move(t), H2Connection::Role::Server, o, app);
  c->start();
  feedInput(r, *tp, data, size, step, eofAtEnd, smallWrites, [&] { return c->closed(); });
  if (eofAtEnd && size == 1) tp->feed(data, 0, true);
  // Let the keepalive run its course: a PING, then its timeout (nobody answers).
  for (int i = 0; i < 6; ++i) {
    if (smallWrites) tp->writable();
    r.turn(Duration{400});
  }
  check(c->closed());  // the client never acknowledges our PING
  check(app.closed);
  check(!c->canOpenStream());
  for (auto& e : app.echoes) {
    if (e->s == nullptr) continue;
    uint8_t b[64];
    IoResult rr = e->s->read(b, sizeof(b));
    // A dead connection's streams end: data left over, EOF or an error, never "try later".
    check(!rr.wouldBlock());
  }
  if (connFirst) {
    c.reset();
    app.echoes.clear();
  } else {
    app.echoes.clear();
    c.reset();
  }
  r.turn(Duration{1});
  return 0;
}

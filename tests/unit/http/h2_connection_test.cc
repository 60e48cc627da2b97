// H2Connection client <-> server over a socketpair on one reactor: CONNECT with headers both
// ways, 100 parallel echo streams verified byte by byte, half-close, backpressure, resets,
// connection death, the peer's stream limit, GOAWAY, and lifetimes in every order.
// Every H2 object is created, used and destroyed on the reactor thread (p.rt.run).
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include <ugate/tcp_stream.h>
#include "http/h2_connection.h"
#include "test_common/test_util.h"
#include "unit/http/h2_test_util.h"

namespace ugate::http {
namespace {

using test::H2Pair;
using test::Pump;

constexpr uint32_t kCancel = 8;  // RFC 9113 error code CANCEL

const uint8_t* bytes(const char* s) { return reinterpret_cast<const uint8_t*>(s); }

// Echo servers: every request answered 200 and echoed by a Pump the pair owns.
void echoServer(H2Pair& p) {
  p.onReq = [&p](H2StreamPtr& s) {
    s->respond(200);
    Pump& e = p.newPump();
    e.echo = true;
    e.attach(*s);
  };
}

TEST(H2ConnectionTest, ConnectCarriesStatusAndHeadersBothWays) {
  H2Pair p;
  std::string method, authority, baggage, traceparent;
  p.onReq = [&](H2StreamPtr& s) {
    method = s->method();
    authority = s->authority();
    baggage = s->header("baggage");
    traceparent = s->header("traceparent");
    s->respond(200, {{"X-Hop", "gw-1"}, {"baggage", "from=server"}});
  };
  int status = 0;
  H2Stream* c = p.connect("db.internal:5432",
                          {{"baggage", "k1=v1,k2=v2"},
                           {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
                          &status);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(p.rt.waitFor([&] { return status != 0; }));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(method, "CONNECT");
  EXPECT_EQ(authority, "db.internal:5432");
  EXPECT_EQ(baggage, "k1=v1,k2=v2");
  EXPECT_EQ(traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  p.rt.run([&] {
    EXPECT_EQ(c->status(), 200);
    EXPECT_EQ(c->header("x-hop"), "gw-1");  // names arrive lower-cased
    EXPECT_EQ(c->header("baggage"), "from=server");
    EXPECT_EQ(c->connection(), p.client.get());
    EXPECT_EQ(p.client->activeStreams(), 1u);
    EXPECT_EQ(p.server->activeStreams(), 1u);
  });

  // Bytes flow both ways on the tunnel.
  Pump& cp = p.newPump();
  Pump& sp = p.newPump();
  cp.keepIn = sp.keepIn = true;
  p.rt.run([&] {
    ASSERT_EQ(p.requests.size(), 1u);
    sp.attach(*p.requests[0]);
    cp.attach(*c);
    cp.send("ping");
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return sp.in == "ping"; }));
  p.rt.run([&] { sp.send("pong"); });
  ASSERT_TRUE(p.rt.waitFor([&] { return cp.in == "pong"; }));
  p.rt.run([&] {
    EXPECT_EQ(p.clientStats.streamsOpened.value(), 1u);
    EXPECT_EQ(p.serverStats.streamsAccepted.value(), 1u);
    EXPECT_EQ(p.clientStats.bytesOut.value(), 4u);
    EXPECT_EQ(p.clientStats.bytesIn.value(), 4u);
  });
}

// Every stream echoes a distinct pattern of 256 KiB .. 1 MiB; every byte is compared.
TEST(H2ConnectionTest, HundredParallelEchoStreamsEveryByteVerified) {
  H2Pair p;
  echoServer(p);
  constexpr int kStreams = 100;
  std::vector<std::string> patterns(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    patterns[i] = ugate::test::pattern((256u << 10) + static_cast<size_t>(i) * 7943u, 1000 + i);
  }
  std::vector<Pump*> clients = p.sendPatterns(patterns, "echo:7");
  ASSERT_TRUE(p.waitAllEnded(clients, 120000));
  p.rt.run([&] {
    uint64_t total = 0;
    for (int i = 0; i < kStreams; ++i) {
      EXPECT_EQ(clients[i]->readErr, 0) << i;
      EXPECT_EQ(clients[i]->writeErr, 0) << i;
      EXPECT_FALSE(clients[i]->mismatch) << i;
      EXPECT_EQ(clients[i]->received, patterns[i].size()) << i;
      total += patterns[i].size();
    }
    EXPECT_EQ(p.serverStats.bytesIn.value(), total);
    EXPECT_EQ(p.clientStats.bytesIn.value(), total);
    EXPECT_EQ(p.client->activeStreams(), 0u);  // END_STREAM both ways closed every stream
    EXPECT_EQ(p.server->activeStreams(), 0u);
  });
}

// END_STREAM <-> EOF per direction, while the other direction keeps flowing.
TEST(H2ConnectionTest, HalfCloseEachDirectionWhileTheOtherFlows) {
  H2Pair p;
  p.onReq = [](H2StreamPtr& s) { s->respond(200); };
  H2Stream* a = p.connect("x:1");
  H2Stream* b = p.connect("x:2");
  ASSERT_TRUE(p.rt.waitFor([&] { return p.requests.size() == 2; }));
  Pump& ca = p.newPump();
  Pump& cb = p.newPump();
  Pump& sa = p.newPump();
  Pump& sb = p.newPump();
  for (Pump* x : {&ca, &cb, &sa, &sb}) x->keepIn = true;
  const std::string big = ugate::test::pattern(300 * 1024, 7);
  p.rt.run([&] {
    ca.attach(*a);
    cb.attach(*b);
    H2Stream* s1 = p.requests[0]->id() == a->id() ? p.requests[0].get() : p.requests[1].get();
    H2Stream* s2 = s1 == p.requests[0].get() ? p.requests[1].get() : p.requests[0].get();
    sa.attach(*s1);
    sb.attach(*s2);
    // Stream a: the client finishes first.
    ca.shutdownWhenSent = true;
    ca.send("request-a");
    // Stream b: the server finishes first.
    sb.shutdownWhenSent = true;
    sb.send(big);
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return sa.eof && cb.eof; }));
  p.rt.run([&] {
    EXPECT_EQ(sa.in, "request-a");
    EXPECT_EQ(cb.in, big);
    // The closed directions stay closed; the open ones still carry bytes.
    EXPECT_EQ(a->write(bytes("x"), 1).err, EPIPE);
    sa.send(big);
    cb.send("late-b");
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return ca.in.size() == big.size() && sb.in == "late-b"; }));
  p.rt.run([&] {
    EXPECT_EQ(ca.in, big);
    EXPECT_FALSE(ca.eof);
    EXPECT_FALSE(sb.eof);
    EXPECT_EQ(p.client->activeStreams(), 2u);
    sa.shutdownWhenSent = true;
    cb.shutdownWhenSent = true;
    sa.pump();
    cb.pump();
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return ca.eof && sb.eof; }));
  ASSERT_TRUE(p.rt.waitFor([&] { return p.client->activeStreams() == 0 && p.server->activeStreams() == 0; }));
  p.rt.run([&] {
    // Still readable at EOF after the stream closed.
    uint8_t c;
    IoResult r = a->read(&c, 1);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.value, 0);
  });
}

// A reader that stops reading: the writer sees EAGAIN after about window + cap bytes, nothing is
// lost, and writing resumes when the reader reads again.
TEST(H2ConnectionTest, BackpressureStopsTheWriterAndResumes) {
  H2Options co, so;
  co.streamWriteCap = 64 * 1024;
  so.streamWindow = 64 * 1024;
  H2Pair p(co, so);
  H2Stream* c = p.tunnel("sink:9");
  ASSERT_EQ(p.requests.size(), 1u);
  const std::string data = ugate::test::pattern(2 << 20, 42);
  Pump& writer = p.newPump();
  writer.out = data;
  writer.shutdownWhenSent = true;
  p.rt.run([&] { writer.attach(*c); });
  // The server does not read: wait until its window is full and the writer is stuck.
  size_t stuckAt = 0;
  ASSERT_TRUE(p.rt.waitFor([&] {
    if (writer.eagains == 0) return false;
    int before = writer.eagains;
    writer.pump();
    stuckAt = writer.sent;
    return writer.eagains > before && p.serverStats.bytesIn.value() >= so.streamWindow;
  }));
  p.rt.run([&] {
    EXPECT_FALSE(c->writeReady());
    EXPECT_EQ(p.serverStats.bytesIn.value(), so.streamWindow);  // exactly the window, no more
    EXPECT_GE(stuckAt, so.streamWindow + co.streamWriteCap - 16 * 1024);
    EXPECT_LE(stuckAt, so.streamWindow + co.streamWriteCap + 16 * 1024);
  });
  Pump& reader = p.newPump();
  reader.expect = &data;
  p.rt.run([&] { reader.attach(*p.requests[0]); });
  ASSERT_TRUE(p.rt.waitFor([&] { return reader.eof; }));
  p.rt.run([&] {
    EXPECT_EQ(reader.received, data.size());
    EXPECT_FALSE(reader.mismatch);
    EXPECT_GT(writer.writable, 0);  // resumed by onStreamWritable
  });
}

TEST(H2ConnectionTest, ResetFromClientReachesServer) {
  H2Pair p;
  H2Stream* c = p.tunnel("r:1");
  Pump& sp = p.newPump();
  p.rt.run([&] {
    sp.attach(*p.requests[0]);
    c->close(true);
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return sp.readErr != 0; }));
  p.rt.run([&] {
    EXPECT_EQ(sp.readErr, ECONNRESET);
    EXPECT_EQ(p.requests[0]->resetCode(), kCancel);
    EXPECT_EQ(p.requests[0]->write(bytes("x"), 1).err, ECONNRESET);
    EXPECT_EQ(c->read(nullptr, 0).err, EBADF);  // closed by us
    EXPECT_EQ(p.serverStats.resetsReceived.value(), 1u);
    EXPECT_EQ(p.clientStats.resetsSent.value(), 1u);
  });
}

TEST(H2ConnectionTest, ResetFromServerReachesClient) {
  H2Pair p;
  H2Stream* c = p.tunnel("r:2");
  Pump& cp = p.newPump();
  p.rt.run([&] {
    cp.attach(*c);
    p.requests[0]->close(true);
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return cp.readErr != 0; }));
  p.rt.run([&] {
    EXPECT_EQ(cp.readErr, ECONNRESET);
    EXPECT_EQ(c->resetCode(), kCancel);
    EXPECT_EQ(c->write(bytes("x"), 1).err, ECONNRESET);
  });
}

TEST(H2ConnectionTest, DroppingAnOpenStreamResetsItAndTheConnectionLivesOn) {
  H2Pair p;
  H2Stream* c = p.tunnel("r:3");
  Pump& sp = p.newPump();
  p.rt.run([&] {
    sp.attach(*p.requests[0]);
    p.drop(c);  // no shutdownWrite: RST_STREAM(CANCEL)
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return sp.readErr == ECONNRESET; }));
  ASSERT_TRUE(p.rt.waitFor([&] { return p.client->activeStreams() == 0; }));
  // The connection still opens streams.
  p.tunnel("r:4");
}

TEST(H2ConnectionTest, DroppingAStreamBeforeItsHeadersLeaveCancelsIt) {
  H2Pair p;
  p.onReq = [](H2StreamPtr& s) { s->respond(200); };
  p.rt.run([&] {
    H2StreamPtr s = p.client->connect("gone:1", {}, nullptr);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(p.client->activeStreams(), 1u);
    s.reset();  // same loop turn: its HEADERS were never written
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return p.client->activeStreams() == 0; }));
  p.tunnel("next:1");
  p.rt.run([&] { EXPECT_EQ(p.server->activeStreams(), 1u); });
}

// The usual way a session ends: it destroys the stream from the stream's own callback.
TEST(H2ConnectionTest, StreamDestroyedInsideItsOwnCallback) {
  H2Pair p;
  p.onReq = [](H2StreamPtr& s) {
    s->respond(200, {}, "bye");
    s->shutdownWrite();
  };
  int status = 0;
  H2Stream* c = p.connect("self:1", {}, &status);
  ASSERT_TRUE(p.rt.waitFor([&] { return status == 200; }));
  struct Dropper : StreamCallbacks {
    H2Pair* p;
    H2Stream* s;
    std::string got;
    bool done{false};
    void onStreamReadable(Stream&) override {
      uint8_t b[64];
      for (;;) {
        IoResult r = s->read(b, sizeof(b));
        if (r.value > 0) {
          got.append(reinterpret_cast<char*>(b), static_cast<size_t>(r.value));
          continue;
        }
        if (r.ok()) {  // EOF: the session ends and drops its stream right here
          p->drop(s);
          done = true;
        }
        return;
      }
    }
    void onStreamWritable(Stream&) override {}
  } d;
  d.p = &p;
  d.s = c;
  p.rt.run([&] {
    c->setCallbacks(&d);
    if (c->readReady()) d.onStreamReadable(*c);
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return d.done; }));
  EXPECT_EQ(d.got, "bye");
  ASSERT_TRUE(p.rt.waitFor([&] { return p.client->activeStreams() == 0 && p.server->activeStreams() == 0; }));
}

// A server that answers and drops the stream at once: the answer is delivered whole.
TEST(H2ConnectionTest, ErrorResponseWithBodySurvivesDroppingTheStream) {
  H2Pair p;
  p.onReq = [](H2StreamPtr& s) {
    s->respond(403, {{"x-reason", "denied"}}, "not allowed here\n");
    s.reset();
  };
  int status = 0;
  H2Stream* c = p.connect("no:1", {}, &status);
  ASSERT_TRUE(p.rt.waitFor([&] { return status != 0; }));
  Pump& cp = p.newPump();
  cp.keepIn = true;
  p.rt.run([&] {
    EXPECT_EQ(status, 403);
    EXPECT_EQ(c->header("x-reason"), "denied");
    cp.attach(*c);
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return cp.eof; }));
  p.rt.run([&] {
    EXPECT_EQ(cp.in, "not allowed here\n");
    cp.detach();
    p.drop(c);
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return p.server->activeStreams() == 0 && p.client->activeStreams() == 0; }));
}

// request(): a request other than CONNECT carries its method, scheme, path and headers; the
// client sees them on its own stream too. CONNECT and an empty path are refused.
TEST(H2ConnectionTest, RequestCarriesMethodAndPath) {
  H2Pair p;
  std::string method, path, scheme;
  p.onReq = [&](H2StreamPtr& s) {
    method = s->method();
    path = s->path();
    scheme = s->header(":scheme");  // pseudo-headers are not among the headers
    EXPECT_EQ(s->header("x-call"), "7");
    s->respond(204);
  };
  int status = 0;
  H2StreamPtr c;
  p.rt.run([&] {
    EXPECT_EQ(p.client->request("CONNECT", "http", "a", "/", {}, nullptr), nullptr);
    EXPECT_EQ(p.client->request("POST", "http", "a", "", {}, nullptr), nullptr);
    c = p.client->request("POST", "http", "svc.test", "/pkg.S/M", {{"x-call", "7"}},
                          [&](H2Stream& st) { status = st.status(); });
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->method(), "POST");
    EXPECT_EQ(c->path(), "/pkg.S/M");
    c->shutdownWrite();
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return status != 0; }));
  EXPECT_EQ(status, 204);
  EXPECT_EQ(method, "POST");
  EXPECT_EQ(path, "/pkg.S/M");
  EXPECT_EQ(scheme, "");
  p.rt.run([&] { c.reset(); });
}

// readResponse opens a stream to `authority` and reads the response body to EOF into the
// returned Pump (keepIn); `status` receives the response status.
Pump& readResponse(H2Pair& p, const std::string& authority, H2Stream*& c, int& status) {
  c = p.connect(authority, {}, &status);
  EXPECT_TRUE(p.rt.waitFor([&] { return status != 0; }));
  Pump& cp = p.newPump();
  cp.keepIn = true;
  p.rt.run([&] { cp.attach(*c); });
  EXPECT_TRUE(p.rt.waitFor([&] { return cp.eof; }));
  return cp;
}

// A response ended by a trailer block (gRPC's grpc-status) instead of END_STREAM on DATA: the
// bytes written before it arrive first, then EOF, and the client sees the trailers; a trailer
// block right after the response headers (a gRPC error answer) carries no DATA at all.
TEST(H2ConnectionTest, TrailersEndTheResponse) {
  H2Pair p;
  p.onReq = [](H2StreamPtr& s) {
    s->sendTrailers({{"grpc-status", "12"}});  // before respond(): ignored
    s->respond(200, {{"content-type", "application/grpc"}});
    if (s->authority() == "grpc:2") {
      s->sendTrailers({{"grpc-status", "12"}, {"grpc-message", "unknown method"}});
      return;
    }
    const std::string body = "0123456789";
    ASSERT_EQ(s->write(bytes(body.c_str()), body.size()).value, 10);
    s->sendTrailers({{"Grpc-Status", "0"}, {"grpc-message", "fine%20here"}, {":bad", "x"}});
    EXPECT_EQ(s->write(bytes("late"), 4).err, EPIPE);
    s->sendTrailers({{"grpc-status", "13"}});  // only the first end counts
  };
  H2Stream* c = nullptr;
  int status = 0;
  Pump& withData = readResponse(p, "grpc:1", c, status);
  p.rt.run([&] {
    EXPECT_EQ(status, 200);
    EXPECT_EQ(withData.in, "0123456789");
    EXPECT_EQ(c->trailers(), (Headers{{"grpc-status", "0"}, {"grpc-message", "fine%20here"}}));
    EXPECT_EQ(c->header("grpc-status"), "");  // not among the headers
    EXPECT_EQ(p.clientStats.bytesIn.value(), 10u);
    withData.detach();
    p.drop(c);
  });
  int status2 = 0;
  Pump& noData = readResponse(p, "grpc:2", c, status2);
  p.rt.run([&] {
    EXPECT_EQ(noData.in, "");
    EXPECT_EQ(c->trailers(), (Headers{{"grpc-status", "12"}, {"grpc-message", "unknown method"}}));
    EXPECT_EQ(p.clientStats.bytesIn.value(), 10u);
    noData.detach();
    p.drop(c);
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return p.server->activeStreams() == 0 && p.client->activeStreams() == 0; }));
}

TEST(H2ConnectionTest, RequestHeadersOverTheCapGet431) {
  H2Options so;
  so.maxHeaderListBytes = 4096;
  H2Pair p({}, so);
  int status = 0;
  p.connect("big:1", {{"x-big", std::string(8000, 'a')}}, &status);
  ASSERT_TRUE(p.rt.waitFor([&] { return status != 0; }));
  p.rt.run([&] {
    EXPECT_EQ(status, 431);
    EXPECT_EQ(p.requestsSeen, 0);  // never delivered
    EXPECT_EQ(p.serverStats.headersTooLarge.value(), 1u);
  });
  // A normal request still works on the same connection.
  int status2 = 0;
  p.rt.run([&] { p.onReq = [](H2StreamPtr& s) { s->respond(200); }; });
  p.connect("small:1", {{"x-small", "a"}}, &status2);
  ASSERT_TRUE(p.rt.waitFor([&] { return status2 != 0; }));
  EXPECT_EQ(status2, 200);
}

// The transport dies under streams in flight: every stream sees ECONNRESET and a callback.
TEST(H2ConnectionTest, ConnectionDeathResetsEveryStream) {
  H2Pair p;
  std::vector<Pump*> echoes;
  p.onReq = [&](H2StreamPtr& s) {
    s->respond(200);
    Pump& e = p.newPump();
    e.echo = true;
    e.attach(*s);
    echoes.push_back(&e);
  };
  constexpr int kN = 5;
  std::vector<Pump*> pumps(kN);
  for (auto& x : pumps) x = &p.newPump();
  int pending = 0;
  p.rt.run([&] {
    for (int i = 0; i < kN; ++i) {
      pumps[i]->attach(*p.own(p.client->connect("d:1", {}, nullptr)));
      pumps[i]->send(ugate::test::pattern(64 * 1024, i));
    }
  });
  ASSERT_TRUE(p.rt.waitFor([&] {
    for (Pump* x : pumps) {
      if (x->received < 64 * 1024) return false;
    }
    return true;
  }));
  p.rt.run([&] {
    // One more stream whose response has not arrived yet when the transport dies.
    p.own(p.client->connect("late:1", {}, [&pending](H2Stream& s) { pending = s.status() == 0 ? -1 : 1; }));
    // Kill the client's socket under it (no GOAWAY): both sides see the transport end.
    auto& t = static_cast<TcpStream&>(p.client->transport());
    ::shutdown(t.fd(), SHUT_RDWR);
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return p.clientClosed.happened && p.serverClosed.happened; }));
  ASSERT_TRUE(p.rt.waitFor([&] {
    for (Pump* x : pumps) {
      if (x->readErr == 0) return false;
    }
    return pending != 0;
  }));
  p.rt.run([&] {
    EXPECT_EQ(p.clientClosed.reason, Errc::Reset) << p.clientClosed.detail;
    EXPECT_EQ(p.serverClosed.reason, Errc::Reset) << p.serverClosed.detail;
    for (Pump* x : pumps) {
      EXPECT_EQ(x->readErr, ECONNRESET);
      EXPECT_GT(x->readable, 0);
    }
    EXPECT_EQ(pending, -1);  // onResponse with status 0
    EXPECT_TRUE(p.client->closed());
    EXPECT_FALSE(p.client->canOpenStream());
    EXPECT_EQ(p.client->connect("x:1", {}, nullptr), nullptr);
    ASSERT_EQ(echoes.size(), static_cast<size_t>(kN));
    for (Pump* e : echoes) EXPECT_EQ(e->readErr, ECONNRESET);
  });
}

TEST(H2ConnectionTest, PeerStreamLimitIsHonoured) {
  H2Options so;
  so.maxConcurrentStreams = 3;
  H2Pair p({}, so);
  p.onReq = [](H2StreamPtr& s) { s->respond(200); };
  int status = 0;
  std::vector<H2Stream*> open;
  open.push_back(p.connect("l:0", {}, &status));
  ASSERT_TRUE(p.rt.waitFor([&] { return status == 200; }));  // the server's SETTINGS arrived first
  p.rt.run([&] {
    while (p.client->canOpenStream()) open.push_back(p.own(p.client->connect("l:n", {}, nullptr)));
    EXPECT_EQ(open.size(), 3u);
    EXPECT_EQ(p.client->activeStreams(), 3u);
    EXPECT_EQ(p.client->connect("l:x", {}, nullptr), nullptr);
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return p.requests.size() == 3; }));
  // One stream ends both ways: a slot opens again.
  p.rt.run([&] {
    open[0]->shutdownWrite();
    for (auto& s : p.requests) {
      if (s->id() == open[0]->id()) s->shutdownWrite();
    }
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return p.client->canOpenStream(); }));
  p.rt.run([&] {
    EXPECT_EQ(p.client->activeStreams(), 2u);
    EXPECT_NE(p.own(p.client->connect("l:y", {}, nullptr)), nullptr);
    EXPECT_FALSE(p.client->canOpenStream());
    EXPECT_LE(p.server->activeStreams(), 3u);
  });
}

TEST(H2ConnectionTest, ServerGoAwayLetsOpenStreamsFinishThenCloses) {
  H2Pair p;
  echoServer(p);
  H2Stream* c = p.tunnel("g:1");
  p.rt.run([&] { p.server->goAway(); });
  ASSERT_TRUE(p.rt.waitFor([&] { return !p.client->canOpenStream(); }));
  const std::string data = ugate::test::pattern(100000, 3);
  Pump& cp = p.newPump();
  cp.expect = &data;
  cp.out = data;
  cp.shutdownWhenSent = true;
  p.rt.run([&] {
    EXPECT_FALSE(p.clientClosed.happened);
    EXPECT_EQ(p.client->connect("g:2", {}, nullptr), nullptr);
    cp.attach(*c);
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return cp.eof; }));
  ASSERT_TRUE(p.rt.waitFor([&] { return p.clientClosed.happened && p.serverClosed.happened; }));
  p.rt.run([&] {
    EXPECT_EQ(cp.received, data.size());
    EXPECT_FALSE(cp.mismatch);
    EXPECT_EQ(p.serverClosed.reason, Errc::Ok) << p.serverClosed.detail;
    EXPECT_EQ(p.clientClosed.reason, Errc::Shutdown) << p.clientClosed.detail;
    EXPECT_EQ(p.clientStats.goawaysReceived.value(), 1u);
    // The stream finished cleanly before the connection closed: still EOF, not a reset.
    uint8_t b;
    EXPECT_EQ(c->read(&b, 1).err, 0);
  });
}

TEST(H2ConnectionTest, ClientGoAwayStopsNewStreamsOnly) {
  H2Pair p;
  H2Stream* c = p.tunnel("g:1");
  Pump& cp = p.newPump();
  Pump& sp = p.newPump();
  cp.keepIn = sp.keepIn = true;
  p.rt.run([&] {
    p.client->goAway();
    EXPECT_FALSE(p.client->canOpenStream());
    cp.attach(*c);
    sp.attach(*p.requests[0]);
    cp.out = "after goaway";
    cp.shutdownWhenSent = true;
    cp.pump();
    sp.out = "reply";
    sp.shutdownWhenSent = true;
    sp.pump();
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return cp.eof && sp.eof; }));
  ASSERT_TRUE(p.rt.waitFor([&] { return p.clientClosed.happened && p.serverClosed.happened; }));
  p.rt.run([&] {
    EXPECT_EQ(sp.in, "after goaway");
    EXPECT_EQ(cp.in, "reply");
    EXPECT_EQ(p.clientClosed.reason, Errc::Ok) << p.clientClosed.detail;
    EXPECT_EQ(p.serverClosed.reason, Errc::Shutdown) << p.serverClosed.detail;
  });
}

TEST(H2ConnectionTest, CloseResetsStreamsWithoutCallingBack) {
  H2Pair p;
  H2Stream* c = p.tunnel("c:1");
  Pump& cp = p.newPump();
  p.rt.run([&] {
    cp.attach(*c);
    p.client->close();
    EXPECT_TRUE(p.client->closed());
    EXPECT_EQ(cp.readable, 0);  // not from inside close()
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return cp.readErr == ECONNRESET && p.serverClosed.happened; }));
  p.rt.run([&] {
    EXPECT_FALSE(p.clientClosed.happened);
    EXPECT_EQ(p.serverClosed.reason, Errc::Reset) << p.serverClosed.detail;  // GOAWAY, then EOF
  });
}

// Streams and connections destroyed in every order; the connection deleted from its own callback.
TEST(H2ConnectionTest, LifetimesInAnyOrder) {
  H2Pair p;
  H2Stream* c1 = p.tunnel("a:1");
  H2Stream* c2 = p.tunnel("a:2");
  ASSERT_EQ(p.requests.size(), 2u);
  Pump& cp = p.newPump();
  H2Stream* s1 = nullptr;
  p.rt.run([&] {
    cp.attach(*c1);
    s1 = p.requests[0].get();
    // The client connection goes first: its streams learn it synchronously, stay usable as objects.
    p.client.reset();
    EXPECT_EQ(cp.readErr, ECONNRESET);
    EXPECT_GT(cp.readable, 0);
    EXPECT_EQ(c1->connection(), nullptr);
    EXPECT_EQ(c2->write(bytes("x"), 1).err, ECONNRESET);
    cp.detach();
    p.drop(c1);
    p.drop(c2);
  });
  ASSERT_TRUE(p.rt.waitFor([&] { return p.serverClosed.happened; }));
  // A stream outliving its (closed) server connection, then the connection deleted first.
  p.rt.run([&] {
    EXPECT_EQ(s1->read(nullptr, 0).err, ECONNRESET);
    p.server.reset();
    EXPECT_EQ(s1->connection(), nullptr);
    p.drop(s1);
  });
  // Deferred deletion from inside onConnectionClosed.
  struct Deleter : H2ConnectionCallbacks {
    Reactor* r{nullptr};
    H2ConnectionPtr conn;
    bool deleted{false};
    void onRequest(H2Connection&, H2StreamPtr) override {}
    void onConnectionClosed(H2Connection&, Errc, const std::string&) override {
      r->deferredDelete(std::move(conn));
      deleted = true;
    }
  };
  int fds[2];
  test::socketPair(fds);
  auto d = std::make_shared<Deleter>();
  d->r = &p.rt.reactor();
  p.rt.run([&] {
    d->conn = H2Connection::create(p.rt.reactor(), std::make_unique<TcpStream>(p.rt.reactor(), fds[0]),
                                   H2Connection::Role::Server, {}, *d);
    d->conn->start();
  });
  ::close(fds[1]);
  ASSERT_TRUE(p.rt.waitFor([&] { return d->deleted && d->conn == nullptr; }));
}

}  // namespace
}  // namespace ugate::http

// ProxySession through each of its phases with a fake worker (FakeWorkerContext: a real reactor on
// a simulated clock, scripted resolver, router, TLS and tunnels) and an in-memory client; upstreams
// are real loopback sockets. Each test checks the phase the session is in and, once it closed, the
// phase it closed in, the reason, the access-log line and the counters.
#include "core/cluster_lb.h"
#include "core/proxy_session.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <ugate/socket_util.h>
#include "test_common/fake_worker_context.h"
#include "test_common/test_util.h"

namespace ugate {
namespace {

using Phase = ProxySession::Phase;
using test::FakeTlsProvider;
using test::FakeWorkerContext;
using test::MemoryPipePtr;
using test::MemoryStream;
using test::TcpServer;

constexpr ProxySession::Timeouts kTimeouts{Duration(5000), Duration(60'000), Duration(3000)};

/** Probe: what the test front door saw (shared with the test, outlives the session). */
struct Probe {
  ServiceContext* service{nullptr};  // set by serve(); valid while the session is open
  int results{0};                    // onUpstreamResult calls
};

/**
 * LineFrontDoor: a line protocol. "HELLO" -> reply "HI"; "CONNECT host:port" -> route (the rest
 * goes upstream); "SERVE" -> serve the connection; anything else -> close with "ERR". At most 64
 * bytes.
 */
class LineFrontDoor final : public FrontDoor {
 public:
  explicit LineFrontDoor(std::shared_ptr<Probe> p) : probe_(std::move(p)) {}
  FrontDoorResult onClientBytes(std::span<const uint8_t> data, StreamMeta& meta) override {
    std::string_view s(reinterpret_cast<const char*>(data.data()), data.size());
    size_t nl = s.find('\n');
    if (nl == std::string_view::npos) return FrontDoorResult::needMore();
    std::string_view line = s.substr(0, nl);
    if (line == "HELLO") return FrontDoorResult::replyAndRead(nl + 1, "HI\n");
    if (line == "SERVE") return FrontDoorResult::serve(nl + 1);
    if (line.starts_with("CONNECT ")) {
      auto hp = HostPort::parse(line.substr(8));
      if (hp) {
        meta.host = hp->host;
        meta.port = hp->port;
        return FrontDoorResult::route(nl + 1);
      }
    }
    return FrontDoorResult::close(Errc::ProtocolError, "bad line", "ERR\n");
  }
  std::string onUpstreamResult(const StreamMeta&, Errc r) override {
    ++probe_->results;
    return r == Errc::Ok ? "OK\n" : "FAIL " + std::string(errcReason(r)) + "\n";
  }
  size_t maxSniffBytes() const override { return 64; }
  Result<LocalServicePtr> serve(ServiceContext& ctx, std::string& reply) override {
    probe_->service = &ctx;
    reply = "SERVING\n";
    return LocalServicePtr(std::make_unique<LocalService>());
  }

 private:
  std::shared_ptr<Probe> probe_;
};

#if defined(__SANITIZE_ADDRESS__)
// UBSan's vptr check probes memory through a pipe (sanitizer_common IsAccessibleMemoryRange); in a
// process out of descriptors pipe2 fails and it reports a valid object as "invalid vptr".
#define SKIP_UNDER_SANITIZERS() \
  GTEST_SKIP() << "ASan+UBSan build: UBSan's vptr check needs free descriptors"
#else
#define SKIP_UNDER_SANITIZERS() (void)0
#endif

/**
 * FdHog: uses up the process's descriptors under a lowered soft limit, so the next socket() fails
 * with EMFILE; free(n) gives n back; the destructor closes the rest and restores the limit.
 */
class FdHog {
 public:
  FdHog() {
    getrlimit(RLIMIT_NOFILE, &old_);
    rlimit low = old_;
    low.rlim_cur = std::min<rlim_t>(old_.rlim_cur, 256);
    EXPECT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    for (;;) {
      int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (f < 0) break;
      fds_.push_back(f);
    }
  }
  ~FdHog() {
    for (int f : fds_) close(f);
    setrlimit(RLIMIT_NOFILE, &old_);
  }
  void free(size_t n) {
    for (; n > 0 && !fds_.empty(); --n) {
      close(fds_.back());
      fds_.pop_back();
    }
  }

 private:
  rlimit old_{};
  std::vector<int> fds_;
};

class ProxySessionTest : public testing::Test {
 protected:
  explicit ProxySessionTest(std::shared_ptr<Config> cfg = nullptr)
      : ctx_(std::make_unique<FakeWorkerContext>(std::move(cfg))) {}

  FrontDoorPtr frontDoor() { return std::make_unique<LineFrontDoor>(probe_); }
  /** start: a session with the line front door (or none) and an in-memory client. */
  MemoryPipePtr start(bool withFrontDoor, ProxySession::Timeouts t = kTimeouts,
                      bool proxyHeader = false) {
    return ctx_->startMemorySession(withFrontDoor ? frontDoor() : nullptr, t, proxyHeader,
                                    &session_);
  }
  Phase phase() {
    Phase p = Phase::Closed;
    ctx_->run([&] {
      if (ctx_->open.count(session_)) p = session_->phase();
    });
    return p;
  }
  void push(const MemoryPipePtr& p, std::string bytes) {
    ctx_->run([&] { p->push(bytes); });
  }
  void pushEof(const MemoryPipePtr& p) {
    ctx_->run([&] { p->pushEof(); });
  }
  std::string written(const MemoryPipePtr& p) {
    std::string w;
    ctx_->run([&] { w = p->written; });
    return w;
  }
  bool waitWritten(const MemoryPipePtr& p, const std::string& want) {
    return ctx_->waitFor([&] { return p->written == want; });
  }
  bool waitPhase(Phase want) {
    return ctx_->waitFor([&] { return ctx_->open.count(session_) && session_->phase() == want; });
  }
  /**
   * expectClosed waits for the nth session (from 0, in the order they closed) to close and checks
   * the phase it closed in and why; returns what the worker saw.
   */
  FakeWorkerContext::Closed expectClosed(Phase in, Errc reason, size_t nth = 0) {
    EXPECT_TRUE(ctx_->waitFor([&] { return ctx_->closed.size() > nth; }))
        << "session still open in " << ProxySession::phaseName(phase());
    FakeWorkerContext::Closed c;
    ctx_->run([&] {
      if (ctx_->closed.size() > nth) c = ctx_->closed[nth];
    });
    EXPECT_EQ(c.in, in);
    EXPECT_EQ(c.reason, reason);
    return c;
  }
  /** checkClosedOnce: one access-log line and one close counted, with this reason; nothing active.
   */
  void checkClosedOnce(Errc reason) {
    ctx_->run([&] {
      ASSERT_EQ(ctx_->accessLogFake.lines.size(), 1u);
      EXPECT_EQ(ctx_->accessLogFake.lines[0].reason, reason);
      EXPECT_EQ(ctx_->closed.size(), 1u);
      EXPECT_TRUE(ctx_->open.empty());
      ListenerStats& st = ctx_->stats("t");
      EXPECT_EQ(st.accepted.value(), 1u);
      EXPECT_EQ(st.active.value(), 0);
      EXPECT_EQ(st.closes[static_cast<size_t>(reason)].value(), 1u);
    });
  }
  /** dialWithUpstreamTls: routes to host at the echo server's port with upstreamTls, handshakes per
   * mode. */
  std::shared_ptr<FakeTlsProvider> dialWithUpstreamTls(FakeTlsProvider::Mode mode,
                                                       const std::string& host) {
    auto tls = std::make_shared<FakeTlsProvider>();
    tls->clientMode = mode;
    ctx_->setTls(tls);
    ctx_->routerFake.dial(host, echo_.port());
    ctx_->routerFake.decision.upstreamTls = std::make_shared<UpstreamTlsConfig>();
    return tls;
  }
  int routeCalls() {
    int n = 0;
    ctx_->run([&] { n = ctx_->routerFake.calls; });
    return n;
  }

  // Servers first: the context (and the sessions' upstream sockets) goes before them.
  TcpServer echo_;
  std::unique_ptr<TcpServer> server_;
  std::shared_ptr<Probe> probe_ = std::make_shared<Probe>();
  std::unique_ptr<FakeWorkerContext> ctx_;
  ProxySession* session_{nullptr};  // valid while open; read it inside ctx_->run()
};

// ---------------------------------------------------------------------------------------------
// Sniff: the front door's handshake.

TEST_F(ProxySessionTest, SniffNeedMoreReplyThenRouteResolveConnectSplice) {
  ctx_->resolverFake.answer("up.example", {*SocketAddress::fromIp("127.0.0.1", 0)});
  ctx_->resolverFake.hold = true;
  ctx_->routerFake.dial("up.example", echo_.port());
  auto c = start(true);
  EXPECT_EQ(phase(), Phase::Sniff);
  push(c, "HEL");
  EXPECT_EQ(phase(), Phase::Sniff);  // NeedMore
  EXPECT_EQ(written(c), "");
  push(c, "LO\nHELLO\nCONN");  // a Reply, a pipelined second one, the start of the request
  EXPECT_EQ(written(c), "HI\nHI\n");
  EXPECT_EQ(phase(), Phase::Sniff);
  EXPECT_EQ(routeCalls(), 0);
  push(c, "ECT up.example:1\nearly");  // the front door's port is not the route's target
  EXPECT_EQ(routeCalls(), 1);
  EXPECT_EQ(phase(), Phase::Resolve);
  ctx_->run([&] {
    EXPECT_EQ(session_->meta().host, "up.example");
    EXPECT_EQ(ctx_->resolverFake.release(), 1u);
  });
  // Connected: the front door's reply goes first, then the bytes read with the request, echoed.
  ASSERT_TRUE(waitWritten(c, "HI\nHI\nOK\nearly"));
  EXPECT_EQ(phase(), Phase::Splice);
  push(c, " more");
  ASSERT_TRUE(waitWritten(c, "HI\nHI\nOK\nearly more"));
  pushEof(c);  // the echo server half-closes after our EOF: both directions end
  expectClosed(Phase::Splice, Errc::Ok);
  checkClosedOnce(Errc::Ok);
  ctx_->run([&] {
    EXPECT_TRUE(c->shutWrite);
    EXPECT_FALSE(c->aborted);
    EXPECT_EQ(ctx_->accessLogFake.lines[0].bytesFromClient, 10u);  // "early more"
    EXPECT_EQ(ctx_->accessLogFake.lines[0].upstream, "up.example:" + std::to_string(echo_.port()));
  });
}

// Latency histograms: connect time from the route decision to the splice, duration from accept to
// close, per listener and per route (simulated time: exact buckets).
TEST_F(ProxySessionTest, ConnectTimeAndDurationGoToTheListenerAndRouteHistograms) {
  ctx_->resolverFake.answer("up.example", {*SocketAddress::fromIp("127.0.0.1", 0)});
  ctx_->resolverFake.hold = true;
  ctx_->routerFake.dial("up.example", echo_.port());
  auto c = start(false);
  EXPECT_EQ(phase(), Phase::Resolve);
  ctx_->advance(Duration(30));
  ctx_->run([&] { EXPECT_EQ(ctx_->resolverFake.release(), 1u); });
  push(c, "x");
  ASSERT_TRUE(waitWritten(c, "x"));
  ctx_->advance(Duration(2000));
  pushEof(c);
  expectClosed(Phase::Splice, Errc::Ok);
  ctx_->run([&] {
    ListenerStats& st = ctx_->stats("t");
    HistogramValues connect, duration;
    connect.add(st.connectTime);
    duration.add(st.duration);
    EXPECT_EQ(connect.buckets[6], 1u) << "30 ms: le 0.05";
    EXPECT_EQ(connect.sumUs, 30'000u);
    EXPECT_EQ(duration.buckets[11], 1u) << "2.03 s: le 2.5";
    EXPECT_EQ(duration.sumUs, 2'030'000u);
    ASSERT_EQ(st.routes.size(), 1u);
    EXPECT_EQ(st.routes.begin()->first, "listener:t");
    EXPECT_EQ(st.routes.begin()->second->connect.bucket(6), 1u);
    EXPECT_EQ(st.routes.begin()->second->duration.bucket(11), 1u);
  });
}

TEST_F(ProxySessionTest, SniffCloseSendsTheFrontDoorsReply) {
  auto c = start(true);
  push(c, "NONSENSE\n");
  auto cl = expectClosed(Phase::Sniff, Errc::ProtocolError);
  EXPECT_EQ(cl.detail, "bad line");
  EXPECT_EQ(written(c), "ERR\n");
  ctx_->run([&] { EXPECT_FALSE(c->aborted); });  // a reply: closed cleanly so it arrives
  EXPECT_EQ(routeCalls(), 0);
  checkClosedOnce(Errc::ProtocolError);
}

TEST_F(ProxySessionTest, SniffOverMaxBytesResets) {
  auto c = start(true);
  push(c, std::string(65, 'x'));
  expectClosed(Phase::Sniff, Errc::TooLarge);
  ctx_->run([&] { EXPECT_TRUE(c->aborted); });
  checkClosedOnce(Errc::TooLarge);
}

TEST_F(ProxySessionTest, SniffClientEofAndError) {
  auto c = start(true);
  push(c, "HELLO\nCONN");
  pushEof(c);
  auto cl = expectClosed(Phase::Sniff, Errc::ProtocolError);
  EXPECT_EQ(cl.detail, "client closed during the handshake");

  auto d = start(true);
  ctx_->run([&] { d->pushError(ECONNRESET); });
  expectClosed(Phase::Sniff, errcFromErrno(ECONNRESET), 1);
  ctx_->run([&] { EXPECT_TRUE(d->aborted); });
}

TEST_F(ProxySessionTest, SniffTimeout) {
  auto c = start(true);
  push(c, "HELLO\nCONN");
  ctx_->advance(kTimeouts.sniff - Duration(1));
  EXPECT_EQ(phase(), Phase::Sniff);
  ctx_->advance(Duration(1));
  auto cl = expectClosed(Phase::Sniff, Errc::HandshakeTimeout);
  EXPECT_EQ(cl.detail, "no complete handshake within 3000 ms");
  ctx_->run([&] { EXPECT_TRUE(c->aborted); });
  checkClosedOnce(Errc::HandshakeTimeout);
}

// ---------------------------------------------------------------------------------------------
// PROXY header.

TEST_F(ProxySessionTest, ProxyHeaderThenPlainForward) {
  ctx_->routerFake.dial("127.0.0.1", echo_.port());
  SocketAddress seenSource;
  ctx_->routerFake.onRoute = [&](const StreamMeta& m) { seenSource = m.source; };
  auto c = start(false, kTimeouts, /*proxyHeader=*/true);
  EXPECT_EQ(phase(), Phase::ProxyHeader);
  push(c, "PROXY TCP4 192.0.2.7 198.51.100.1 1111 2222\r");
  EXPECT_EQ(phase(), Phase::ProxyHeader);
  push(c, "\nping");  // the bytes after the header go upstream first
  ASSERT_TRUE(waitWritten(c, "ping"));
  EXPECT_EQ(phase(), Phase::Splice);
  ctx_->run([&] {
    EXPECT_EQ(seenSource.str(), "192.0.2.7:1111");
    EXPECT_EQ(session_->meta().originalDst.str(), "198.51.100.1:2222");
  });
}

TEST_F(ProxySessionTest, ProxyHeaderThenFrontDoorInOneRead) {
  ctx_->routerFake.dial("127.0.0.1", echo_.port());
  auto c = start(true, kTimeouts, true);
  push(c, "PROXY TCP4 192.0.2.7 198.51.100.1 1111 2222\r\nHELLO\nCONNECT x:1\nhi");
  ASSERT_TRUE(waitWritten(c, "HI\nOK\nhi"));
  EXPECT_EQ(phase(), Phase::Splice);
}

TEST_F(ProxySessionTest, ProxyHeaderTimeoutAndError) {
  auto c = start(false, kTimeouts, true);
  push(c, "PROXY TCP4 ");
  ctx_->advance(kTimeouts.sniff);
  expectClosed(Phase::ProxyHeader, Errc::HandshakeTimeout);

  auto d = start(false, kTimeouts, true);
  push(d, "GET / HTTP/1.1\r\n\r\n");
  auto cl2 = expectClosed(Phase::ProxyHeader, Errc::ProtocolError, 1);
  EXPECT_TRUE(cl2.detail.starts_with("PROXY header: ")) << cl2.detail;
  EXPECT_EQ(routeCalls(), 0);
}

// ---------------------------------------------------------------------------------------------
// Route.

TEST_F(ProxySessionTest, RouteRejectAnswersTheClient) {
  ctx_->routerFake.reject("deny-all");
  auto c = start(true);
  push(c, "CONNECT x:1\n");
  auto cl = expectClosed(Phase::Route, Errc::RouteRejected);
  EXPECT_NE(cl.detail.find("deny-all"), std::string::npos) << cl.detail;
  EXPECT_EQ(written(c), "FAIL route_rejected\n");
  checkClosedOnce(Errc::RouteRejected);
  ctx_->run([&] { EXPECT_EQ(ctx_->accessLogFake.lines[0].route, "deny-all"); });
}

TEST_F(ProxySessionTest, NoRouteWithoutFrontDoorResets) {
  ctx_->routerFake.noRoute();
  auto c = start(false);
  expectClosed(Phase::Route, Errc::NoRoute);
  ctx_->run([&] { EXPECT_TRUE(c->aborted); });
  checkClosedOnce(Errc::NoRoute);
}

TEST_F(ProxySessionTest, DialOriginalDestination) {
  ctx_->routerFake.dialOriginal();
  auto [stream, c] = MemoryStream::make();
  StreamMeta meta;
  meta.originalDst = *SocketAddress::fromIp("127.0.0.1", echo_.port());
  session_ = ctx_->startSession(std::move(stream), std::move(meta), nullptr, kTimeouts);
  push(c, "to the original");
  ASSERT_TRUE(waitWritten(c, "to the original"));
  ctx_->run(
      [&] { EXPECT_EQ(session_->meta().upstream, "127.0.0.1:" + std::to_string(echo_.port())); });
}

// ---------------------------------------------------------------------------------------------
// Resolve and connect.

TEST_F(ProxySessionTest, ResolveFailure) {
  ctx_->routerFake.dial("nowhere.example", 80);
  auto c = start(true);
  push(c, "CONNECT x:1\n");
  expectClosed(Phase::Resolve, Errc::DnsFailure);
  EXPECT_EQ(written(c), "FAIL dns_failure\n");
  checkClosedOnce(Errc::DnsFailure);
}

TEST_F(ProxySessionTest, ResolveTimeoutCancelsTheQuery) {
  ctx_->resolverFake.hold = true;
  ctx_->routerFake.dial("slow.example", 80);
  auto c = start(false);
  EXPECT_EQ(phase(), Phase::Resolve);
  ctx_->advance(kTimeouts.connect - Duration(1));
  EXPECT_EQ(phase(), Phase::Resolve);
  ctx_->advance(Duration(1));
  auto cl = expectClosed(Phase::Resolve, Errc::ConnectTimeout);
  EXPECT_EQ(cl.detail, "connect slow.example:80: no answer within 5000 ms");
  ctx_->run([&] { EXPECT_EQ(ctx_->resolverFake.pending(), 0u); });
}

TEST_F(ProxySessionTest, ConnectRefusedTriesTheNextAddress) {
  // The echo server listens on 127.0.0.1 only: 127.0.0.2 at its port refuses.
  ctx_->resolverFake.answer("two.example", {*SocketAddress::fromIp("127.0.0.2", 0),
                                            *SocketAddress::fromIp("127.0.0.1", 0)});
  ctx_->routerFake.dial("two.example", echo_.port());
  auto c = start(false);
  push(c, "x");
  ASSERT_TRUE(waitWritten(c, "x"));
  ctx_->run([&] {
    EXPECT_EQ(session_->meta().upstreamAddr.str(), "127.0.0.1:" + std::to_string(echo_.port()));
  });
  EXPECT_EQ(phase(), Phase::Splice);
}

TEST_F(ProxySessionTest, ConnectAllAddressesRefused) {
  ctx_->resolverFake.answer("none.example", {*SocketAddress::fromIp("127.0.0.2", 0),
                                             *SocketAddress::fromIp("127.0.0.3", 0)});
  ctx_->routerFake.dial("none.example", echo_.port());
  auto c = start(true);
  push(c, "CONNECT x:1\n");
  auto cl = expectClosed(Phase::Connect, Errc::ConnectRefused);
  EXPECT_NE(cl.detail.find("127.0.0.3"), std::string::npos) << cl.detail;  // the last one tried
  EXPECT_EQ(written(c), "FAIL connect_refused\n");
  checkClosedOnce(Errc::ConnectRefused);
}

// HangingListener: a listener that never accepts, its queue full: further SYNs are dropped, so
// connects to it hang.
class HangingListener {
 public:
  HangingListener() {
    lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(lfd_, 0), 0);
    socklen_t len = sizeof(a);
    getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    for (int i = 0; i < 8; ++i) {
      int f = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      fillers_.push_back(f);
      connect(f, reinterpret_cast<sockaddr*>(&a), sizeof(a));
      pollfd p{f, POLLOUT, 0};
      if (poll(&p, 1, 200) == 0) break;  // this one hangs: the queue is full
    }
  }
  ~HangingListener() {
    for (int f : fillers_) close(f);
    close(lfd_);
  }
  uint16_t port() const { return port_; }

 private:
  int lfd_{-1};
  uint16_t port_{0};
  std::vector<int> fillers_;
};

TEST_F(ProxySessionTest, ConnectTimeout) {
  HangingListener hang;
  ctx_->routerFake.dial("127.0.0.1", hang.port());
  auto c = start(false);
  EXPECT_EQ(phase(), Phase::Connect);
  ctx_->advance(kTimeouts.connect);
  expectClosed(Phase::Connect, Errc::ConnectTimeout);
  checkClosedOnce(Errc::ConnectTimeout);
}

// clusterOf: a one-worker snapshot of cluster "c" over these ports of 127.0.0.1, round robin.
ClusterSetPtr clusterOf(std::vector<uint16_t> ports, uint32_t retries) {
  auto c = std::make_shared<Cluster>();
  c->name = "c";
  c->connectRetries = retries;
  c->stats = std::make_shared<ClusterStats>(1);
  for (uint16_t p : ports) {
    ClusterEndpoint e;
    e.address = *SocketAddress::fromIp("127.0.0.1", p);
    e.name = e.address.str();
    e.stats = std::make_shared<EndpointStats>(1);
    c->endpoints.push_back(std::move(e));
  }
  auto s = std::make_shared<ClusterSet>();
  s->generation = 1;
  s->clusters["c"] = std::move(c);
  return s;
}

TEST_F(ProxySessionTest, ClusterEndpointWithoutAnswerIsRetriedOnTheNextAtItsDeadline) {
  HangingListener hang;
  WorkerClusters wc(0, nullptr);
  wc.setSet(clusterOf({hang.port(), echo_.port()}, 2));
  ctx_->setClusters(&wc);
  ctx_->routerFake.dialCluster("c");
  auto c = start(true);
  push(c, "CONNECT x:1\n");
  ASSERT_TRUE(waitPhase(Phase::Connect));  // round robin starts with the first: it hangs
  ctx_->advance(kTimeouts.connect);         // that attempt's deadline: the next endpoint, a new deadline
  push(c, "x");
  ASSERT_TRUE(waitWritten(c, "OK\nx"));     // the client saw only success
  EXPECT_EQ(phase(), Phase::Splice);
  ClusterPtr k = wc.find("c");
  ctx_->run([&] {
    EXPECT_EQ(k->stats->retriesTotal(), 1u);
    EXPECT_EQ(k->endpoints[0].stats->connectFailures(), 1u);
    EXPECT_EQ(k->endpoints[0].stats->active(), 0);
    EXPECT_EQ(k->endpoints[1].stats->connections(), 1u);
    EXPECT_EQ(k->endpoints[1].stats->active(), 1);  // leased until the session closes
  });
  pushEof(c);  // the echo answers with its own EOF: the session ends and releases the endpoint
  ASSERT_TRUE(ctx_->waitFor([&] { return !ctx_->closed.empty(); }));
  ctx_->run([&] { EXPECT_EQ(k->endpoints[1].stats->active(), 0); });
}

TEST_F(ProxySessionTest, ClusterRetriesSpentAnswerTheLastError) {
  WorkerClusters wc(0, nullptr);
  const uint16_t refused = test::freePort();
  wc.setSet(clusterOf({refused}, 1));
  ctx_->setClusters(&wc);
  ctx_->routerFake.dialCluster("c");
  auto c = start(true);
  push(c, "CONNECT x:1\n");
  auto cl = expectClosed(Phase::Connect, Errc::ConnectRefused);
  EXPECT_NE(cl.detail.find("2 endpoint(s) tried"), std::string::npos) << cl.detail;
  EXPECT_EQ(written(c), "FAIL connect_refused\n");
  EXPECT_EQ(wc.find("c")->endpoints[0].stats->connectFailures(), 2u);  // one endpoint, tried again
}

TEST_F(ProxySessionTest, ClusterNotLoadedHasNoRoute) {
  ctx_->routerFake.dialCluster("c");  // no clusters on this worker at all
  auto c = start(true);
  push(c, "CONNECT x:1\n");
  expectClosed(Phase::Route, Errc::NoRoute);
  EXPECT_EQ(written(c), "FAIL no_route\n");
}

TEST_F(ProxySessionTest, OutOfDescriptorsWaitsThenConnects) {
  SKIP_UNDER_SANITIZERS();
  ctx_->routerFake.dial("127.0.0.1", echo_.port());
  // Use up the descriptors under a low limit, so the session's upstream socket fails with EMFILE.
  auto hog = std::make_unique<FdHog>();
  auto c = start(false);
  EXPECT_EQ(phase(), Phase::WaitFd);
  ctx_->run([&] {
    EXPECT_EQ(ctx_->fdWaiters, 1);
    EXPECT_EQ(ctx_->pauses, 1);
    EXPECT_NE(ctx_->lastPauseWhy.find("upstream"), std::string::npos) << ctx_->lastPauseWhy;
  });
  ctx_->advance(Duration(100));  // still none free: waits again
  EXPECT_EQ(phase(), Phase::WaitFd);
  ctx_->run([&] { EXPECT_EQ(ctx_->fdWaiters, 1); });
  hog->free(4);
  ctx_->advance(Duration(100));
  hog.reset();
  push(c, "after the wait");
  ASSERT_TRUE(waitWritten(c, "after the wait"));
  EXPECT_EQ(phase(), Phase::Splice);
  ctx_->run([&] { EXPECT_EQ(ctx_->fdWaiters, 0); });
}

TEST_F(ProxySessionTest, OutOfDescriptorsGivesUpAfterTheConnectTimeout) {
  SKIP_UNDER_SANITIZERS();
  ctx_->routerFake.dial("127.0.0.1", echo_.port());
  auto hog = std::make_unique<FdHog>();
  auto c = start(true, {Duration(300), kTimeouts.idle, kTimeouts.sniff});
  push(c, "CONNECT x:1\n");
  EXPECT_EQ(phase(), Phase::WaitFd);
  for (int i = 0; i < 3; ++i) ctx_->advance(Duration(100));
  expectClosed(Phase::Connect, Errc::ResourceExhausted);
  hog.reset();
  EXPECT_EQ(written(c), "FAIL resource_exhausted\n");
  ctx_->run([&] { EXPECT_EQ(ctx_->fdWaiters, 0); });
}

TEST_F(ProxySessionTest, OutOfDescriptorsForcedCloseEndsTheWait) {
  SKIP_UNDER_SANITIZERS();
  ctx_->routerFake.dial("127.0.0.1", echo_.port());
  auto hog = std::make_unique<FdHog>();
  start(false);
  Phase p = phase();
  ctx_->run([&] { session_->close(Errc::Shutdown, "forced close", true); });  // as a drain does
  hog.reset();
  EXPECT_EQ(p, Phase::WaitFd);
  expectClosed(Phase::WaitFd, Errc::Shutdown);
  ctx_->run([&] { EXPECT_EQ(ctx_->fdWaiters, 0); });  // the listeners may accept again
  checkClosedOnce(Errc::Shutdown);
}

// ---------------------------------------------------------------------------------------------
// Splice, half-close, idle.

TEST_F(ProxySessionTest, SpliceHalfCloseBothWays) {
  // The upstream reads to EOF, then answers and closes: our EOF must not end its direction.
  auto got = std::make_shared<std::string>();
  server_ = std::make_unique<TcpServer>([got](int fd) {
    *got = test::readAll(fd);
    test::writeAll(fd, "late answer", 11);  // the server closes fd after this returns
  });
  ctx_->routerFake.dial("127.0.0.1", server_->port());
  auto c = start(false);
  push(c, "question");
  pushEof(c);
  ASSERT_TRUE(waitWritten(c, "late answer"));
  expectClosed(Phase::Splice, Errc::Ok);
  ctx_->run([&] {
    EXPECT_TRUE(c->shutWrite);
    ASSERT_EQ(ctx_->accessLogFake.lines.size(), 1u);
    EXPECT_EQ(ctx_->accessLogFake.lines[0].bytesFromClient, 8u);
    EXPECT_EQ(ctx_->accessLogFake.lines[0].bytesToClient, 11u);
    EXPECT_EQ(ctx_->stats("t").bytesIn.value(), 8u);
    EXPECT_EQ(ctx_->stats("t").bytesOut.value(), 11u);
  });
  checkClosedOnce(Errc::Ok);
  server_.reset();
  EXPECT_EQ(*got, "question");
}

TEST_F(ProxySessionTest, SpliceClientResetResetsBoth) {
  ctx_->routerFake.dial("127.0.0.1", echo_.port());
  auto c = start(false);
  push(c, "x");
  ASSERT_TRUE(waitWritten(c, "x"));
  ctx_->run([&] { c->pushError(ECONNRESET); });
  auto cl = expectClosed(Phase::Splice, errcFromErrno(ECONNRESET));
  EXPECT_EQ(cl.detail, "client side");
  ctx_->run([&] { EXPECT_TRUE(c->aborted); });
}

TEST_F(ProxySessionTest, IdleTimeoutCountsFromTheLastByte) {
  ctx_->routerFake.dial("127.0.0.1", echo_.port());
  auto c = start(false);
  push(c, "a");
  ASSERT_TRUE(waitWritten(c, "a"));
  ctx_->advance(Duration(40'000));
  push(c, "b");  // activity at 40 s: the deadline moves to 100 s, without re-arming per byte
  ASSERT_TRUE(waitWritten(c, "ab"));
  ctx_->advance(Duration(20'000));  // 60 s: the first deadline passes, the timer re-arms
  EXPECT_EQ(phase(), Phase::Splice);
  ctx_->advance(Duration(39'999));
  EXPECT_EQ(phase(), Phase::Splice);
  ctx_->advance(Duration(1));
  auto cl = expectClosed(Phase::Splice, Errc::IdleTimeout);
  EXPECT_EQ(cl.detail, "no bytes for 60000 ms");
  ctx_->run([&] { EXPECT_FALSE(c->aborted); });  // idle closes cleanly
  checkClosedOnce(Errc::IdleTimeout);
}

// ---------------------------------------------------------------------------------------------
// Tunnel (the mesh's dialer).

TEST_F(ProxySessionTest, TunnelOpensThenSplices) {
  ctx_->enableTunnels();
  ctx_->routerFake.dial("node1.mesh", 8080);
  auto c = start(true);
  push(c, "CONNECT x:1\nfirst");
  EXPECT_EQ(phase(), Phase::Tunnel);
  auto [up, upPipe] = MemoryStream::make();
  ctx_->run([&] {
    EXPECT_EQ(ctx_->tunnelFake.lastTarget.str(), "node1.mesh:8080");
    EXPECT_TRUE(ctx_->tunnelFake.complete(std::move(up)));
  });
  EXPECT_EQ(phase(), Phase::Splice);
  ASSERT_TRUE(waitWritten(c, "OK\n"));
  ASSERT_TRUE(ctx_->waitFor([&] { return upPipe->written == "first"; }));
  ctx_->run([&] { upPipe->push("back"); });
  ASSERT_TRUE(waitWritten(c, "OK\nback"));
  ctx_->run([&] {
    c->pushEof();
    upPipe->pushEof();
  });
  expectClosed(Phase::Splice, Errc::Ok);
  ctx_->run([&] { EXPECT_TRUE(upPipe->shutWrite); });
}

TEST_F(ProxySessionTest, TunnelFailureAndTimeout) {
  ctx_->enableTunnels();
  ctx_->routerFake.dial("node1.mesh", 8080);
  auto c = start(true);
  push(c, "CONNECT x:1\n");
  ctx_->run([&] {
    ctx_->tunnelFake.complete(makeError(Errc::HostUnreachable, "node1: no association"));
  });
  expectClosed(Phase::Tunnel, Errc::HostUnreachable);
  EXPECT_EQ(written(c), "FAIL host_unreachable\n");

  auto d = start(false);
  EXPECT_EQ(phase(), Phase::Tunnel);
  ctx_->advance(kTimeouts.connect);
  expectClosed(Phase::Tunnel, Errc::ConnectTimeout, 1);
  ctx_->run([&] { EXPECT_EQ(ctx_->tunnelFake.pending(), 0u); });  // the open was cancelled
}

TEST_F(ProxySessionTest, TunnelRefusesUpstreamTls) {
  ctx_->enableTunnels();
  ctx_->routerFake.dial("node1.mesh", 8080);
  ctx_->routerFake.decision.upstreamTls = std::make_shared<UpstreamTlsConfig>();
  auto c = start(false);
  expectClosed(Phase::Route, Errc::InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Upstream TLS: under the connect deadline.

TEST_F(ProxySessionTest, UpstreamTlsThenSplice) {
  ctx_->resolverFake.answer("up.example", {*SocketAddress::fromIp("127.0.0.1", 0)});
  auto tls = dialWithUpstreamTls(FakeTlsProvider::Mode::Succeed, "up.example");
  auto c = start(false);
  push(c, "through tls");
  ASSERT_TRUE(waitWritten(c, "through tls"));
  EXPECT_EQ(phase(), Phase::Splice);
  ctx_->run([&] {
    EXPECT_EQ(tls->clients, 1);
    EXPECT_EQ(tls->lastSni, "up.example");  // the dialled name
  });
}

TEST_F(ProxySessionTest, UpstreamTlsHandshakeTimesOutOnTheConnectDeadline) {
  dialWithUpstreamTls(FakeTlsProvider::Mode::Hang, "127.0.0.1");
  auto c = start(true);
  push(c, "CONNECT x:1\n");
  ASSERT_TRUE(waitPhase(Phase::UpstreamTls));
  ctx_->advance(kTimeouts.connect);  // before the handshake's own 10 s
  expectClosed(Phase::UpstreamTls, Errc::ConnectTimeout);
  EXPECT_EQ(written(c), "FAIL connect_timeout\n");
}

TEST_F(ProxySessionTest, UpstreamTlsFailureAndNoCredentials) {
  dialWithUpstreamTls(FakeTlsProvider::Mode::Fail, "127.0.0.1");
  start(false);
  auto cl = expectClosed(Phase::UpstreamTls, Errc::AuthFailed);
  EXPECT_NE(cl.detail.find("bad_certificate"), std::string::npos) << cl.detail;

  ctx_->run([&] { ctx_->setTls(nullptr); });
  start(false);
  expectClosed(Phase::UpstreamTls, Errc::AuthFailed, 1);
}

// ---------------------------------------------------------------------------------------------
// Server TLS: the listener terminates TLS; the TLS stream keeps its own deadline.

std::shared_ptr<Config> tlsListenerConfig() {
  auto cfg = std::make_shared<Config>();
  ListenerConfig l;
  l.name = "t";
  l.kind = "tcp";
  l.tls = std::make_shared<ListenerTlsConfig>();
  cfg->listeners.push_back(std::move(l));
  cfg->tls.handshakeTimeout = Duration(7000);
  return cfg;
}

class ServerTlsTest : public ProxySessionTest {
 protected:
  ServerTlsTest() : ProxySessionTest(tlsListenerConfig()) {}
};

TEST_F(ServerTlsTest, HandshakeThenFrontDoorInsideTls) {
  auto tls = std::make_shared<FakeTlsProvider>();
  ctx_->setTls(tls);
  ctx_->routerFake.dial("127.0.0.1", echo_.port());
  auto c = start(true);
  EXPECT_EQ(phase(), Phase::Sniff);  // the fake's handshake completed within start()
  push(c, "CONNECT x:1\nsecret");
  ASSERT_TRUE(waitWritten(c, "OK\nsecret"));
  ctx_->run([&] {
    EXPECT_EQ(tls->servers, 1);
    EXPECT_EQ(session_->meta().kind, StreamKind::Tls);
    ASSERT_TRUE(session_->meta().peer);
    EXPECT_EQ(session_->meta().peer->nodeId, "PEER");
  });
}

TEST_F(ServerTlsTest, HandshakeTimeoutIsTheTlsStreams) {
  auto tls = std::make_shared<FakeTlsProvider>();
  tls->serverMode = FakeTlsProvider::Mode::Hang;
  ctx_->setTls(tls);
  start(true);
  EXPECT_EQ(phase(), Phase::ServerTls);
  ctx_->advance(kTimeouts.sniff);  // the sniff deadline does not apply during the TLS handshake
  EXPECT_EQ(phase(), Phase::ServerTls);
  ctx_->advance(Duration(7000) - kTimeouts.sniff);
  expectClosed(Phase::ServerTls, Errc::HandshakeTimeout);
  ctx_->run([&] { EXPECT_EQ(tls->lastTimeout, Duration(7000)); });  // tls.handshakeTimeout
  checkClosedOnce(Errc::HandshakeTimeout);
}

TEST_F(ServerTlsTest, HandshakeFailureAndNoCredentials) {
  auto tls = std::make_shared<FakeTlsProvider>();
  tls->serverMode = FakeTlsProvider::Mode::Fail;
  ctx_->setTls(tls);
  start(false);
  expectClosed(Phase::ServerTls, Errc::AuthFailed);
  EXPECT_EQ(routeCalls(), 0);

  ctx_->run([&] { ctx_->setTls(nullptr); });
  start(false);
  auto cl2 = expectClosed(Phase::ServerTls, Errc::AuthFailed, 1);
  EXPECT_NE(cl2.detail.find("no credentials"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Service: the front door serves the connection itself.

TEST_F(ProxySessionTest, ServiceIdleTimeoutCountsDatagrams) {
  auto c = start(true);
  push(c, "SERVE\nignored");
  EXPECT_EQ(phase(), Phase::Service);
  EXPECT_EQ(written(c), "SERVING\n");
  EXPECT_EQ(routeCalls(), 0);
  push(c, "more ignored");  // the control connection's bytes are discarded
  ctx_->advance(Duration(30'000));
  ctx_->run([&] { probe_->service->datagram(true, 100); });
  ctx_->advance(Duration(59'999));  // 30 s + 59.999 s: the datagram at 30 s keeps it open
  EXPECT_EQ(phase(), Phase::Service);
  ctx_->advance(Duration(1));
  expectClosed(Phase::Service, Errc::IdleTimeout);
  ctx_->run([&] {
    EXPECT_EQ(ctx_->stats("t").packetsIn.value(), 1u);
    EXPECT_EQ(ctx_->accessLogFake.lines[0].bytesFromClient, 100u);
  });
  checkClosedOnce(Errc::IdleTimeout);
}

TEST_F(ProxySessionTest, ServiceEndsWithTheClient) {
  auto c = start(true);
  push(c, "SERVE\n");
  EXPECT_EQ(phase(), Phase::Service);
  pushEof(c);
  auto cl = expectClosed(Phase::Service, Errc::Ok);
  EXPECT_EQ(cl.detail, "client closed the control connection");
}

// ---------------------------------------------------------------------------------------------
// Close and teardown.

TEST_F(ProxySessionTest, CloseIsLoggedAndCountedOnce) {
  ctx_->resolverFake.hold = true;
  ctx_->routerFake.dial("slow.example", 80);
  start(false);
  ctx_->run([&] {
    session_->close(Errc::Shutdown, "forced close", true);
    session_->close(Errc::Io, "again", true);  // a second close does nothing
  });
  expectClosed(Phase::Resolve, Errc::Shutdown);
  checkClosedOnce(Errc::Shutdown);
}

TEST_F(ProxySessionTest, TeardownWithOpenSessionsAccountsForThem) {
  auto c = start(true);
  EXPECT_EQ(phase(), Phase::Sniff);
  ctx_.reset();  // a worker going away deletes what is still open
  EXPECT_TRUE(c->destroyed);
}

}  // namespace
}  // namespace ugate

#pragma once
// Fakes for unit tests of sessions and modules: FakeWorkerContext is a WorkerContext whose reactor
// runs on its own thread on a simulated clock, with a scripted resolver, router, TLS provider and
// tunnel dialer, a recording access log, and MemoryStream, an in-memory Stream the test feeds.
//
// Threading: everything a session touches lives on the reactor's thread. The test reads and
// changes the fakes inside run() (or in a waitFor() predicate), which run there; configure them
// before the first session starts.
#include <ugate/dns.h>
#include <ugate/front_door.h>
#include <ugate/reactor.h>
#include <ugate/router.h>
#include <ugate/worker_context.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <ugate/config.h>
#include <ugate/listener_stats.h>
#include <ugate/pipe_pool.h>
#include "core/proxy_session.h"
#include <ugate/splicer.h>
#include <ugate/tls_provider.h>
#include <ugate/tunnel.h>
#include "test_common/simulated_time.h"

namespace ugate::test {

/**
 * MemoryPipe: the test's end of a MemoryStream (shared with it, so it outlives the stream). Used
 * on the reactor's thread only. push()/pushEof()/pushError() make the stream readable and notify
 * its callbacks at once; what the stream's owner writes collects in `written`.
 */
class MemoryPipe {
 public:
  /** push queues bytes for the stream's reader. */
  void push(std::string_view bytes);
  /** pushEof: after the queued bytes, read() reports EOF. */
  void pushEof();
  /** pushError: after the queued bytes, read() fails with err (ECONNRESET, ...). */
  void pushError(int err);

  std::string written;    // written: every byte the owner wrote
  bool shutWrite{false};  // shutWrite: the owner called shutdownWrite()
  bool closed{false};     // closed: the owner called close()
  bool aborted{false};    // aborted: ... with abort (a reset)
  bool destroyed{false};  // destroyed: the stream was destroyed
  size_t readCalls{0};    // readCalls: read() calls that returned bytes

 private:
  friend class MemoryStream;
  void notify();
  std::string in_;
  bool eof_{false};
  int err_{0};
  class MemoryStream* stream_{nullptr};
};
using MemoryPipePtr = std::shared_ptr<MemoryPipe>;

/** MemoryStream: an in-memory Stream (no fd: spliceFd() is -1, so splicers copy). Always writable.
 */
class MemoryStream final : public Stream {
 public:
  /** make returns the stream and the test's end of it. */
  static std::pair<StreamPtr, MemoryPipePtr> make();
  explicit MemoryStream(MemoryPipePtr p);
  ~MemoryStream() override;

  // ugate::Stream
  void setCallbacks(StreamCallbacks* cb) override { cb_ = cb; }
  IoResult read(uint8_t* buf, size_t len) override;
  IoResult write(const uint8_t* buf, size_t len) override;
  void shutdownWrite() override { pipe_->shutWrite = true; }
  void close(bool abort) override;

 private:
  friend class MemoryPipe;
  MemoryPipePtr pipe_;
  StreamCallbacks* cb_{nullptr};
};

/**
 * FakeResolver: literal IPs answer inline; names answer what answer() set (inline, or held until
 * release() when `hold`); other names fail with DnsFailure.
 */
class FakeResolver final : public Resolver {
 public:
  void answer(const std::string& host, std::vector<SocketAddress> addrs) {
    answers_[host] = std::move(addrs);
  }
  /** release completes the held queries that were not cancelled; returns how many. */
  size_t release();
  /** pending: held queries not cancelled. */
  size_t pending() const;

  // ugate::Resolver
  DnsQueryPtr resolve(const std::string& host, uint16_t port, DnsCallback cb) override;

  bool hold{false};
  int queries{0};

 private:
  struct Held;
  Result<std::vector<SocketAddress>> lookup(const std::string& host, uint16_t port) const;
  std::map<std::string, std::vector<SocketAddress>> answers_;
  std::vector<std::shared_ptr<Held>> held_;
};

/** FakeRouter: answers `decision` (named routeName) and records what it was asked. */
class FakeRouter final : public Router {
 public:
  void dial(std::string host, uint16_t port);
  /** dialCluster: the decision names cluster `name` (kept here: the decision holds a view). */
  void dialCluster(std::string name);
  void dialOriginal();
  void reject(std::string name);
  void noRoute();

  // ugate::Router
  RouteDecision route(const StreamMeta& meta) const override;

  RouteDecision decision;
  std::string routeName;
  std::string via;
  /** onRoute: called with the metadata of each decision (e.g. to copy what a front door filled). */
  std::function<void(const StreamMeta&)> onRoute;
  mutable int calls{0};
  std::string clusterName;
};

/** FakeTlsProvider: handshakes that succeed or fail at once, or hang until their timeout. */
class FakeTlsProvider final : public TlsProvider {
 public:
  enum class Mode : uint8_t { Succeed, Fail, Hang };

  // ugate::TlsProvider
  HandshakingStreamPtr server(const ListenerTlsConfig& cfg, StreamPtr inner, Reactor& r,
                              Duration timeout, Done done) const override;
  HandshakingStreamPtr client(const UpstreamTlsConfig& cfg, std::string_view sni,
                              std::string_view sessionKey, StreamPtr inner, Reactor& r,
                              Duration timeout, Done done) const override;
  /** No QUIC in the fake: sessions for transports that drive TLS themselves are not made. */
  TlsSessionPtr serverSession(const ListenerTlsConfig&) const override { return nullptr; }
  TlsSessionPtr clientSession(const UpstreamTlsConfig&, std::string_view, std::string_view) const override {
    return nullptr;
  }
  const std::string& nodeId() const override { return nodeId_; }

  Mode serverMode{Mode::Succeed};
  Mode clientMode{Mode::Succeed};
  mutable int servers{0};
  mutable int clients{0};
  mutable Duration lastTimeout{0};
  mutable std::string lastSni;

 private:
  std::string nodeId_{"FAKE"};
};

/** FakeTunnelDialer: handles targets under ".mesh" and any `via`; opens wait for complete(). */
class FakeTunnelDialer final : public TunnelDialer {
 public:
  // ugate::TunnelDialer
  bool handles(const HostPort& target, const std::string& via) const override;
  TunnelRequestPtr open(const StreamMeta& meta, const HostPort& target, const std::string& via,
                        Done done) override;

  /** complete answers the oldest open still wanted; false when there is none. */
  bool complete(Result<StreamPtr> r);
  size_t pending() const;
  HostPort lastTarget;
  std::string lastVia;

 private:
  struct Open;
  std::vector<std::shared_ptr<Open>> opens_;
};

/** RecordingAccessLog: keeps what each access-log line would say. */
class RecordingAccessLog final : public AccessLogSink {
 public:
  struct Line {
    uint64_t id{0};
    Errc reason{Errc::Ok};
    std::string detail;
    std::string route;
    std::string upstream;
    uint64_t bytesFromClient{0};
    uint64_t bytesToClient{0};
  };
  void log(const StreamMeta& meta) override;
  std::vector<Line> lines;
};

/** FakeWorkerContext: see the top of this file. */
class FakeWorkerContext final : public WorkerContext {
 public:
  /** cfg: what config() returns; by default one plain `tcp` listener named "t". */
  explicit FakeWorkerContext(std::shared_ptr<Config> cfg = nullptr);
  /** Stops the reactor, then destroys the sessions still open (as a worker does). */
  ~FakeWorkerContext() override;

  // ugate::WorkerContext
  int index() const override { return 0; }
  ModuleWorker* moduleWorker(const Module&) const override { return nullptr; }
  Reactor& reactor() override { return *reactor_; }
  Resolver& resolver() override { return resolverFake; }
  const Router& router() const override { return routerFake; }
  const Config& config() const override { return *cfg_; }
  const std::shared_ptr<const TlsProvider>& tls() const override { return tlsProvider_; }
  TunnelDialer* tunnels() const override { return tunnels_; }
  ClusterDialer* clusters() override { return clusters_; }
  SpliceContext& spliceContext() override { return *spliceCtx_; }
  AccessLogSink& accessLog() override { return accessLogFake; }
  ListenerStats& stats(const std::string& listener) override;
  uint64_t nextStreamId() override { return ++streamSeq_; }
  bool logBudget() override { return true; }
  void pauseAccepting(const std::string& why) override;
  void addFdWaiter(int delta) override { fdWaiters += delta; }
  void startSession(StreamPtr client, StreamMeta meta, SessionStart s) override;
  void addSession(std::unique_ptr<ProxySession> s) override;
  void removeSession(ProxySession* s) override;

  // --- the test's side ---
  /** run executes fn on the reactor's thread and waits for it. */
  void run(const std::function<void()>& fn);
  /** waitFor evaluates pred on the reactor's thread every 2 ms until it holds (false after
   * timeoutMs). */
  bool waitFor(const std::function<bool()>& pred, int timeoutMs = 10000);
  /** advance moves the simulated clock by d and waits for a loop turn (its timers) to run. */
  void advance(Duration d);
  /** setTls installs (or, with null, removes) the TLS provider. Call before sessions start. */
  void setTls(std::shared_ptr<const TlsProvider> t) { tlsProvider_ = std::move(t); }
  /** enableTunnels: tunnels() returns tunnelFake (null until then, as without the mesh). */
  void enableTunnels() { tunnels_ = &tunnelFake; }
  /** setClusters: what clusters() returns (null until then). Call before sessions start. */
  void setClusters(ClusterDialer* c) { clusters_ = c; }

  /**
   * startSession creates, registers and starts a ProxySession on the reactor's thread, with meta
   * (id, listener "t", start time filled when empty) and client. The pointer is valid until the
   * session closes (read it inside run()). before: runs between construction and start().
   */
  ProxySession* startSession(StreamPtr client, StreamMeta meta, FrontDoorPtr frontDoor,
                             ProxySession::Timeouts t, bool acceptProxyProtocol = false,
                             const std::function<void(ProxySession&)>& before = nullptr);
  /**
   * startMemorySession: startSession with a MemoryStream client from 127.0.0.1:40000 to
   * 127.0.0.1:1080; returns the client's pipe (and the session in *session when given).
   */
  MemoryPipePtr startMemorySession(FrontDoorPtr frontDoor, ProxySession::Timeouts t,
                                   bool acceptProxyProtocol = false,
                                   ProxySession** session = nullptr);

  /** Closed: what removeSession saw of a session that closed. */
  struct Closed {
    uint64_t id{0};
    ProxySession::Phase in{ProxySession::Phase::Accepted};
    Errc reason{Errc::Ok};
    std::string detail;
  };
  std::vector<Closed> closed;
  std::set<ProxySession*> open;
  FakeResolver resolverFake;
  FakeRouter routerFake;
  FakeTunnelDialer tunnelFake;
  RecordingAccessLog accessLogFake;
  int fdWaiters{0};
  int pauses{0};
  std::string lastPauseWhy;

 private:
  SimulatedTime time_;
  std::shared_ptr<Config> cfg_;
  ReactorPtr reactor_;
  PipePool pipes_;
  std::unique_ptr<uint8_t[]> scratch_;
  std::unique_ptr<SpliceContext> spliceCtx_;
  std::shared_ptr<const TlsProvider> tlsProvider_;
  TunnelDialer* tunnels_{nullptr};
  ClusterDialer* clusters_{nullptr};
  std::map<std::string, std::unique_ptr<ListenerStats>> stats_;
  uint64_t streamSeq_{0};
  std::thread thread_;
};

}  // namespace ugate::test

namespace ugate {
/** PrintTo: phases by name in gtest messages. */
inline void PrintTo(ProxySession::Phase p, std::ostream* os) { *os << ProxySession::phaseName(p); }
}  // namespace ugate

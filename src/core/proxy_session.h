#pragma once
// ProxySession: one accepted connection from accept to close, through explicit phases:
// [PROXY header] -> [server TLS] -> [front door sniff -> (service)] -> route -> resolve or
// tunnel -> connect -> [upstream TLS] -> splice -> closed. Its worker is a WorkerContext, so it is
// unit-tested with a fake one (tests/test_common/fake_worker_context.h).
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <ugate/cluster.h>
#include <ugate/dns.h>
#include <ugate/front_door.h>
#include <ugate/reactor.h>
#include <ugate/stream.h>
#include <ugate/worker_context.h>

#include <ugate/listener_stats.h>
#include <ugate/splicer.h>
#include <ugate/tcp_stream.h>
#include <ugate/tls_provider.h>
#include <ugate/tunnel.h>

namespace ugate {

struct ListenerConfig;
namespace handover {
struct SessionRecord;
}

class ProxySession final : public DeferredDeletable,
                           private SplicerCallbacks,
                           private StreamCallbacks,
                           private ServiceContext {
 public:
  struct Timeouts {
    Duration connect;
    Duration idle;
    Duration sniff;
  };
  /**
   * Phase: where the session is; set at each transition, and what the timer acts on. The deadline
   * that applies is named for each.
   */
  enum class Phase : uint8_t {
    Accepted,     // constructed; start() not called yet
    ProxyHeader,  // reading the client's PROXY v1/v2 header (sniff deadline)
    ServerTls,    // TLS handshake with the client (its own deadline: tls.handshakeTimeout)
    Sniff,        // the front door reads the client's handshake (sniff deadline)
    Service,      // the front door's LocalService serves the client (idle deadline: its datagrams)
    Route,        // asking the router (synchronous: a close here is a reject or no route)
    Resolve,      // waiting for DNS (connect deadline)
    Tunnel,       // waiting for the mesh dialer's stream (connect deadline)
    Connect,      // TCP connect to the resolved addresses in turn (connect deadline)
    WaitFd,       // out of descriptors: the upstream socket is retried every 100 ms (connect)
    UpstreamTls,  // TLS handshake with the upstream (the connect deadline still runs)
    Splice,       // bytes flow both ways (idle deadline)
    Closed,       // closed: logged, counted, deleted at the end of the loop turn
  };
  static const char* phaseName(Phase p);
  /**
   * frontDoor may be null (plain forward: route at once). acceptProxyProtocol: the client (a load
   * balancer) sends a PROXY v1/v2 header first; it is read and applied before anything else.
   */
  ProxySession(WorkerContext& w, ListenerStats& stats, StreamPtr client, StreamMeta meta,
               FrontDoorPtr frontDoor, Timeouts t, bool acceptProxyProtocol = false,
               bool countAccepted = true);
  ~ProxySession() override;

  /**
   * ResultHook: for clients that are not byte streams with a front door (an HTTP/2 CONNECT stream):
   * called once with the outcome of routing and dialling (Errc::Ok when the upstream is ready,
   * before any byte is spliced), so the caller can answer in its own protocol (a :status).
   */
  using ResultHook = std::function<void(Errc, const StreamMeta&)>;
  void setResultHook(ResultHook h) { resultHook_ = std::move(h); }
  /**
   * setForcedTarget: dial this target without consulting the routes (a CONNECT our own gateway
   * sends over our association to one of our loopback ports: the gateway authorized it).
   */
  void setForcedTarget(HostPort t) { forced_ = std::move(t); }
  /**
   * handOver: an upgrade carries this connection to the new process. Only a session splicing two
   * plain TCP sockets can go (no TLS or HTTP/2 state, parked bytes within the record's limit);
   * then its sockets and pipes are released into `fds` (handover::SessionRecord's order), its
   * state into `rec`, and the session ends here without an access-log line (the new process
   * writes it when the connection closes). Returns false, untouched, for any other session.
   */
  bool handOver(handover::SessionRecord& rec, std::vector<int>& fds);
  /**
   * adopt: the new process's side of handOver: a session in the splice phase over the sockets and
   * pipes of `rec` (fds in its order, all taken), counted as active but not as accepted again.
   */
  static void adopt(WorkerContext& w, ListenerStats& stats, Timeouts t, handover::SessionRecord&& rec,
                    std::vector<int>&& fds);
  /** start routes the stream and dials the upstream. */
  void start();
  /** close ends the session: logs, counts and hands itself to deferred deletion. */
  void close(Errc reason, std::string detail, bool abort);
  // ugate::ServiceContext (public: the worker and tests read it too)
  const StreamMeta& meta() const override { return meta_; }
  bool closed() const { return phase_ == Phase::Closed; }
  Phase phase() const { return phase_; }
  /** closedIn: the phase the session was in when it closed (Accepted while it is open). */
  Phase closedIn() const { return closedIn_; }

  // Intrusive list of a worker's live sessions (for drain and force-close).
  ProxySession* prev{nullptr};
  ProxySession* next{nullptr};

 private:
  // ugate::SplicerCallbacks
  void onSpliceDone() override;
  void onSpliceError(Errc reason, bool clientSide) override;

  // ugate::StreamCallbacks (client, while the front door reads its handshake or a service runs)
  void onStreamReadable(Stream& s) override;
  void onStreamWritable(Stream&) override {}

  // ugate::ServiceContext (while a front door's service serves the connection)
  Reactor& reactor() override;
  Resolver& resolver() override;
  const Router& router() override;
  void datagram(bool fromClient, size_t bytes) override;
  void dropped(Errc reason, uint64_t count) override;
  void close(Errc reason, std::string detail) override { close(reason, std::move(detail), false); }

  /** startService: FrontDoorResult::Action::Serve. */
  void startService();
  /** readControl discards client bytes while a service runs; EOF ends the session. */
  void readControl();
  /** serviceTimer: the idle timeout while a service runs. */
  void serviceTimer();
  /** routeAndDial asks the router, unless the front door chose the destination (forced). */
  void routeAndDial(const HostPort* forced = nullptr);
  /** readHandshake reads client bytes into sniffed_ and hands them to the current phase. */
  void readHandshake();
  /**
   * proxyHeaderPhase: the PROXY header; once it is complete, on to server TLS, routing or the
   * front door (Sniff). Returns false when the session left the handshake loop (closed, TLS,
   * routed).
   */
  bool proxyHeaderPhase();
  /** frontDoorPhase runs the front door over sniffed_; returns true when it wants more bytes. */
  bool frontDoorPhase();
  /** handshakeDone: no more client bytes are needed before routing. */
  void handshakeDone(const HostPort* forced = nullptr);
  /** fail ends the session; with a front door its error reply goes to the client first. */
  void fail(Errc reason, std::string detail);
  bool sendToClient(const std::string& bytes);
  void dial(const HostPort& hp);
  /**
   * dialCluster picks an endpoint of cluster_ (not one tried already when another is available)
   * and connects to it; the connect deadline applies to each attempt.
   */
  /**
   * ambientRedirect: a captured connection whose original destination the Istio ambient state
   * knows: `d` becomes a Dial of the chosen workload (via_ its HBONE hop), or the session fails
   * (no endpoint). @return false when ambient has nothing to say (dial the original destination).
   */
  bool ambientRedirect(RouteDecision& d);
  void dialCluster();
  /**
   * clusterAttemptFailed: the connect to the current endpoint failed (reason in lastConnectError_):
   * counted; the next endpoint is tried while connectRetries allow, else the session fails.
   */
  void clusterAttemptFailed();
  /** onTunnel: the mesh dialer's answer (a stream to the node, or why not). */
  void onTunnel(Result<StreamPtr> r);
  void connectNext();
  /**
   * waitForFd: the upstream socket could not be created for lack of descriptors. Keeps the client,
   * pauses the worker's listeners and retries every 100 ms within the connect timeout; false when
   * that time is used up.
   */
  bool waitForFd(const Error& e);
  void onConnected(int err);
  /** startServerTls wraps the client in TLS (listener "tls"); bytes read so far go first. */
  void startServerTls();
  void onServerTls(TlsOutcome&& o);
  /** startClientTls wraps the connected upstream in mTLS (route or listener "upstreamTls"). */
  void startClientTls();
  void onClientTls(TlsOutcome&& o);
  /** startSplice: the upstream is ready; send the front door's reply and prefixes, then splice. */
  void startSplice();
  void onTimer();
  void syncBytes();
  /** microsSince: microseconds from t to the reactor's cached now (0 if t is later). */
  uint64_t microsSince(MonotonicTime t) const;

  WorkerContext& worker_;
  ListenerStats& stats_;
  StreamPtr client_;
  StreamPtr upstream_;
  StreamMeta meta_;
  std::unique_ptr<Splicer> splicer_;
  TimerPtr timer_;
  DnsQueryPtr dns_;
  std::vector<SocketAddress> candidates_;  // resolved addresses still to try
  size_t nextCandidate_{0};
  Error lastConnectError_;
  FrontDoorPtr frontDoor_;
  LocalServicePtr service_;         // service_: serves the connection in place of an upstream
  MonotonicTime serviceActivity_{};  // serviceActivity_: last datagram of the service
  std::string sniffed_;  // sniffed_: client bytes read before routing (front doors only)
  Timeouts timeouts_;
  Phase phase_{Phase::Accepted};
  Phase closedIn_{Phase::Accepted};  // closedIn_: phase_ when close() ran
  const bool acceptProxyProtocol_;   // acceptProxyProtocol_: the client sends a PROXY header first
  uint8_t sendProxyHeader_{0};       // sendProxyHeader_: PROXY version to send upstream (0 = none)
  std::shared_ptr<const ListenerTlsConfig> serverTls_;    // terminate TLS before the front door
  std::shared_ptr<const UpstreamTlsConfig> upstreamTls_;  // originate TLS after connecting
  std::string dialHost_;  // dialHost_: the host name dialled (the upstream TLS server name)
  std::string via_;       // via_: the route's gateway (mesh), "" = none
  TunnelRequestPtr tunnel_;  // tunnel_: a mesh open in progress
  ResultHook resultHook_;
  std::optional<HostPort> forced_;
  uint16_t fdRetries_{0};
  // A `cluster:NAME` target: the snapshot of the cluster this stream uses, the endpoints tried,
  // and the endpoint being dialled or spliced (counted in its active streams until close).
  ClusterPtr cluster_;
  std::vector<SocketAddress> tried_;
  int endpoint_{-1};
  EndpointLease lease_;
  MonotonicTime dialStart_{};            // dialStart_: when the route was decided (connect latency)
  RouteLatency* routeLatency_{nullptr};  // routeLatency_: the route's histograms in stats_, or null
};

/**
 * startModuleSession: WorkerContext::startSession's implementation for every worker (a ProxySession
 * without a front door, handed to w).
 */
void startModuleSession(WorkerContext& w, StreamPtr client, StreamMeta meta, SessionStart s);

}  // namespace ugate

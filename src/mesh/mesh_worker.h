#pragma once
// MeshWorker: one worker's share of the mesh. It is the worker's TunnelDialer (streams to
// `<node>.<meshSuffix>:port` and routes `via` a gateway), serves the mesh listener's connections
// (mutual TLS, then HTTP/2: CONNECT tunnels with ALPN h2, reverse-accept registrations with h2r),
// keeps pooled outbound HTTP/2 connections per gateway, and holds its share of this node's
// associations to its upstream gateways (dialled with h2r; the roles then flip and we serve
// CONNECTs). Everything here runs on the worker's thread; other workers reach an association held
// here through openForPeer() (posted) and a StreamBridge.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <ugate/module.h>
#include <ugate/reactor.h>
#include <ugate/worker_context.h>

#include <ugate/config.h>
#include <ugate/log_throttle.h>
#include "mesh/mesh_associations.h"
#include "mesh/mesh_config.h"
#include <ugate/tunnel.h>
#include "http/h2_connection.h"
#include "mesh/node_table.h"

namespace ugate::mesh {

struct MeshShared;

class MeshWorker final : public ModuleWorker, public TunnelDialer {
 public:
  /** h2Stats: this worker's HTTP/2 counters, owned by the module (they outlive the worker). */
  MeshWorker(WorkerContext& w, MeshShared& shared, http::H2Stats& h2Stats);
  ~MeshWorker() override;

  // ugate::ModuleWorker
  /** configApplied: (re)start the upstream associations this worker holds. */
  void configApplied(const Config& cfg) override;
  /** drain: GOAWAY on every connection (shutdown). */
  void drain() override;
  TunnelDialer* tunnelDialer() override { return this; }

  // ugate::TunnelDialer
  bool handles(const HostPort& target, const std::string& via) const override;
  TunnelRequestPtr open(const StreamMeta& meta, const HostPort& target, const std::string& via,
                        Done done) override;

  /** accept: a connection on a mesh listener (owns fd). */
  void accept(const ListenerConfig& l, int fd, StreamMeta meta);

  /**
   * openForPeer (posted from another worker): open a CONNECT on association `handle` held here and
   * splice it to `far` (a bridge end belonging to this worker). `reply` is posted back to the
   * requesting worker with the outcome.
   */
  void openForPeer(uint64_t handle, std::string authority, http::Headers headers, StreamPtr far,
                   std::function<void(Errc, std::string)> reply);
  /** goAwayAssociation: an association replaced by a newer one of the same node drains. */
  void goAwayAssociation(uint64_t handle);

  // The worker's mesh connections, for its roles (dialer, server side, associations).
  WorkerContext& worker() { return worker_; }
  MeshShared& shared() { return shared_; }
  const Config& cfg() const;
  /** findConn: the connection with this handle, or null. */
  struct Conn;
  Conn* findConn(uint64_t handle);
  /** addConn puts c in the table (by its handle). */
  Conn& addConn(std::unique_ptr<Conn> c);
  /** dialConn: resolve, connect, mutual TLS to c.target; then onConnReady or failConn. */
  void dialConn(Conn& c);

  struct Pending;
  struct Bridged;

 private:
  friend struct Conn;
  friend struct Pending;
  std::string selfId() const;
  bool isSelf(const std::string& node) const;
  http::H2Options h2Options() const;
  http::Headers tunnelHeaders(const StreamMeta& meta) const;

  // outbound
  void openLocal(Pending& p, uint16_t port);
  void openOnConn(Pending& p, Conn& c);
  void openViaGateway(Pending& p, const HostPort& gw, const std::string& pinnedId);
  void completePending(uint64_t id, Result<StreamPtr> r);
  Conn* poolConnection(const HostPort& gw, const std::string& pinnedId);
  void onConnTcp(Conn& c, int err);
  void startClientTls(Conn& c, const UpstreamTlsConfig& t);
  void onConnReady(Conn& c);
  void failConn(Conn& c, Errc reason, const std::string& detail);

  // inbound
  void onTlsAccepted(Conn& c);
  /**
   * onTlsAcceptFailed accounts for a mesh connection that never got past TLS, as every listener
   * kind does: counted per listener (connections_total and closes_total{reason}), one access-log
   * line, and a warning at most every 10 s per listener and worker (junk on a public port is
   * routine), which says how many were left out.
   */
  void onTlsAcceptFailed(const std::string& listener, StreamMeta& meta, Errc reason, std::string detail);
  bool authorizeAssociation(Conn& c, std::string& why) const;
  void onTunnelRequest(Conn& c, std::unique_ptr<http::H2Stream> s);
  /**
   * mayAssertIdentity: the peer may name the stream's originating identity (x-ugate-peer): the
   * gateway we dialled (our association), or a peer in mesh.trustedGateways.
   */
  bool mayAssertIdentity(const Conn& c) const;
  /**
   * originIdentity: the stream's identity: the peer's own verified one, or the one it asserts when
   * it may (else the assertion is ignored, counted and logged).
   */
  std::unique_ptr<PeerIdentity> originIdentity(const Conn& c, const http::H2Stream& s);
  /**
   * takeCarriedHeaders copies what travels on with the stream into meta.headers (allocated only if
   * any): well-formed traceparent, tracestate and baggage (malformed ones are dropped, counted and
   * logged) and the hop list.
   */
  void takeCarriedHeaders(const Conn& c, const http::H2Stream& s, StreamMeta& meta);
  void onConnClosed(Conn& c, Errc reason, const std::string& detail);
  void removeConn(Conn& c);

  void housekeeping();

  WorkerContext& worker_;
  MeshShared& shared_;
  uint64_t nextPending_{0};
  std::unordered_map<uint64_t, Pending*> pending_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;  // by handle
  std::map<std::string, std::vector<uint64_t>> pools_;          // pool key -> conn handles
  std::unordered_map<Bridged*, std::unique_ptr<Bridged>> bridged_;
  TimerPtr housekeeping_;
  http::H2Stats& h2Stats_;  // h2Stats_: this worker's HTTP/2 counters (process lifetime, mesh_stats.h)
  std::map<std::string, LogThrottle> tlsFailureLog_;  // tlsFailureLog_: per mesh listener
  bool draining_{false};
  MeshAssociations assoc_{*this};  // the association role: this node's upstreams held here
};

}  // namespace ugate::mesh

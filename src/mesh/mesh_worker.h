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
#include "mesh/mesh_server.h"
#include <ugate/tunnel.h>
#include "http/h2_connection.h"
#include "mesh/node_table.h"

namespace ugate::mesh {

struct MeshShared;
struct MeshConn;

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


  /**
   * openForPeer (posted from another worker): open a CONNECT on association `handle` held here and
   * splice it to `far` (a bridge end belonging to this worker). `reply` is posted back to the
   * requesting worker with the outcome.
   */
  void openForPeer(uint64_t handle, std::string authority, http::Headers headers, StreamPtr far,
                   std::function<void(Errc, std::string)> reply);

  // The worker's mesh connections, for its roles (dialer, server side, associations).
  WorkerContext& worker() { return worker_; }
  MeshShared& shared() { return shared_; }
  const Config& cfg() const;
  using Conn = MeshConn;
  /** findConn: the connection with this handle, or null. */
  Conn* findConn(uint64_t handle);
  std::unordered_map<uint64_t, std::unique_ptr<Conn>>& conns() { return conns_; }
  /** addConn puts c in the table (by its handle). */
  Conn& addConn(std::unique_ptr<Conn> c);
  /** dialConn: resolve, connect, mutual TLS to c.target; then onConnReady or failConn. */
  void dialConn(Conn& c);
  /** onConnReady: c's TLS is up: HTTP/2 starts, and its role is told. */
  void onConnReady(Conn& c);
  /** removeConn: c is closed and leaves the table (freed at the end of the turn). */
  void removeConn(Conn& c);
  std::string selfId() const;
  /** isSelf: `node` (an ID or name from `<node>.mesh`) is this node. */
  bool isSelf(const std::string& node) const;
  bool draining() const { return draining_; }
  MeshServer& server() { return server_; }

  struct Pending;
  struct Bridged;

 private:
  friend struct MeshConn;
  friend struct Pending;
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
  void failConn(Conn& c, Errc reason, const std::string& detail);

  void onConnClosed(Conn& c, Errc reason, const std::string& detail);

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
  bool draining_{false};
  MeshServer server_{*this, worker_, shared_};  // the server role: the mesh listener's connections
  MeshAssociations assoc_{*this};               // the association role: this node's upstreams held here
};

}  // namespace ugate::mesh

#pragma once
// MeshWorker: one worker's share of the mesh, the module's per-worker state. It holds the worker's
// mesh connections (mutual TLS, then HTTP/2) and their life — dial, handshake, ready, close — and
// the three roles they serve, each a class of its own:
// - MeshDialer (mesh_dialer.h): the worker's TunnelDialer: streams to `<node>.<meshSuffix>:port` and
//   routes `via` a gateway, over pooled connections or a registered node's association;
// - MeshServer (mesh_server.h): the mesh listener's connections: registrations (ALPN h2r) and
//   CONNECT admission (ALPN h2, and CONNECTs our gateways send over our associations);
// - MeshAssociations (mesh_associations.h): this node's associations with its upstream gateways.
// Everything runs on the worker's thread; other workers reach an association held here through
// MeshDialer::openForPeer (posted) and a StreamBridge.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <ugate/config.h>
#include <ugate/module.h>
#include <ugate/reactor.h>
#include <ugate/tunnel.h>
#include <ugate/worker_context.h>

#include "http/h2_connection.h"
#include "mesh/mesh_associations.h"
#include "mesh/mesh_config.h"
#include "mesh/mesh_dialer.h"
#include "mesh/mesh_server.h"
#include "mesh/node_table.h"

namespace ugate::mesh {

struct MeshShared;
struct MeshConn;

class MeshWorker final : public ModuleWorker {
 public:
  /** h2Stats: this worker's HTTP/2 counters, owned by the module (they outlive the worker). */
  MeshWorker(WorkerContext& w, MeshShared& shared, http::H2Stats& h2Stats);
  ~MeshWorker() override;

  // ugate::ModuleWorker
  /** configApplied: (re)start the upstream associations this worker holds. */
  void configApplied(const Config& cfg) override;
  /** drain: GOAWAY on every connection (shutdown). */
  void drain() override;
  TunnelDialer* tunnelDialer() override { return &dialer_; }


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
  MeshDialer& dialer() { return dialer_; }


  /** onConnClosed: c's HTTP/2 connection ended (the peer, a protocol error, a PING timeout). */
  void onConnClosed(Conn& c, Errc reason, const std::string& detail);
  /** onMuxReady: c's QUIC connection finished its handshake (dialled connections). */
  void onMuxReady(Conn& c);
  /** pinMismatch: why peer is not the one c was dialled for (a neighbour's node ID, an HBONE hop's SPIFFE ID); "" = fine. */
  static std::string pinMismatch(const Conn& c, const PeerIdentity* peer);
  /** onMuxClosed: c's QUIC connection ended (before its handshake: the dial failed). */
  void onMuxClosed(Conn& c, Errc reason, const std::string& detail);

 private:
  http::H2Options h2Options() const;
  void onConnTcp(Conn& c, int err);
  /** dialMux: c's next address over QUIC (transport "quic" of muxTransports()). */
  void dialMux(Conn& c);
  /** clientTls: the TLS settings c is dialled with (its ALPN for the transport). */
  UpstreamTlsConfig clientTls(const Conn& c) const;
  void startClientTls(Conn& c, const UpstreamTlsConfig& t);
  void failConn(Conn& c, Errc reason, const std::string& detail);
  void housekeeping();

  WorkerContext& worker_;
  MeshShared& shared_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;  // by handle
  TimerPtr housekeeping_;
  http::H2Stats& h2Stats_;  // h2Stats_: this worker's HTTP/2 counters (process lifetime, mesh_stats.h)
  bool draining_{false};
  MeshDialer dialer_{*this, worker_, shared_};  // the dialer role: this worker's mesh streams
  MeshServer server_{*this, worker_, shared_};  // the server role: the mesh listener's connections
  MeshAssociations assoc_{*this};               // the association role: this node's upstreams held here
};

}  // namespace ugate::mesh

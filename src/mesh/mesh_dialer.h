#pragma once
// MeshDialer: the dialer role of the mesh on one worker — the worker's TunnelDialer. A session's
// stream to `<node>.<meshSuffix>:port`, or one whose route goes `via` a gateway, becomes a TCP
// connect to our own loopback (`<self>.mesh`), a CONNECT on the association of a node registered
// here (joined through a StreamBridge when another worker holds it), or a CONNECT through a pooled
// connection to a gateway. It also opens the streams other workers ask of associations held here
// (openForPeer). The connections live in the worker's table (MeshWorker).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <ugate/config.h>
#include <ugate/mux.h>
#include <ugate/peer_directory.h>
#include <ugate/tunnel.h>
#include <ugate/worker_context.h>

#include "http/h2_connection.h"
#include "mesh/mesh_config.h"

namespace ugate::mesh {

class MeshWorker;
struct MeshConn;
struct MeshShared;

class MeshDialer final : public TunnelDialer {
 public:
  MeshDialer(MeshWorker& hub, WorkerContext& w, MeshShared& shared);
  ~MeshDialer() override;

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
  /** onConnReady: connection c is ready: the opens waiting for it go ahead. */
  void onConnReady(MeshConn& c);
  /** onConnFailed: the opens waiting for c fail with this reason. */
  void onConnFailed(MeshConn& c, Errc reason, const std::string& detail);
  /** onConnRemoved: c leaves its pool. */
  void onConnRemoved(const MeshConn& c);
  /** closeBridged ends the streams opened here for other workers (the worker is going away). */
  void closeBridged();

  struct Pending;
  struct Bridged;

 private:
  using Conn = MeshConn;
  const Config& cfg() const;
  http::Headers tunnelHeaders(const StreamMeta& meta) const;
  void openLocal(Pending& p, uint16_t port);
  /** openRouted: over the node's association here, else through a gateway (the route's `via`). */
  void openRouted(Pending& p);
  /** openDirect: to a neighbour of the peer directory, over a connection pinned to its ID. */
  void openDirect(Pending& p, const DirectPeer& d);
  /** directFailed: the direct connection failed: open routed when there is a path, else fail. */
  void directFailed(Pending& p, Errc reason, const std::string& detail);
  bool hasRoutedPath(const Pending& p) const;
  void openOnConn(Pending& p, Conn& c);
  /** openViaGateway: through gateway gw, over the transport of upstream u (null: a `via` host:port, HTTP/2). */
  void openViaGateway(Pending& p, const HostPort& gw, const std::string& pinnedId, const UpstreamConfig* u = nullptr);
  /** autoFallback: a QUIC attempt of transport auto failed: the opens waiting on c go over HTTP/2. */
  bool autoFallback(MeshConn& c, Errc reason, const std::string& detail);
  /** answered: the outcome of an open on a connection, from the peer's status and fields. */
  void answered(uint64_t id, int status, const MuxFields& fields, uint64_t resetCode);
  void completePending(uint64_t id, Result<StreamPtr> r);
  /** poolConnection: a ready or starting connection to gw; `addrs`: dial these (a neighbour's). */
  Conn* poolConnection(const HostPort& gw, const std::string& pinnedId,
                       const std::vector<SocketAddress>* addrs = nullptr, MeshTransport transport = MeshTransport::H2,
                       const std::string& spiffe = "");

  MeshWorker& hub_;
  WorkerContext& worker_;
  MeshShared& shared_;
  uint64_t nextPending_{0};
  std::unordered_map<uint64_t, Pending*> pending_;
  std::map<std::string, std::vector<uint64_t>> pools_;  // pool key -> conn handles
  std::unordered_map<Bridged*, std::unique_ptr<Bridged>> bridged_;
};

}  // namespace ugate::mesh

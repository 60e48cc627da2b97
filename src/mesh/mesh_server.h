#pragma once
// MeshServer: the server role of the mesh on one worker — the mesh listener's connections: mutual
// TLS accept, reverse-accept registrations (ALPN h2r: the node's association is held here) and
// CONNECT admission (ALPN h2, and CONNECTs our own gateways send over our associations): who may
// ask for what (exposure, routes, loops, hops), what identity and trace context a stream carries,
// and the core session that serves it. The connections live in the worker's table (MeshWorker).
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <ugate/config.h>
#include <ugate/log_throttle.h>
#include <ugate/mux.h>
#include <ugate/stream.h>
#include <ugate/worker_context.h>

#include "http/h2_connection.h"

namespace ugate::mesh {

class MeshWorker;
struct MeshConn;
struct MeshShared;

class MeshServer {
 public:
  MeshServer(MeshWorker& hub, WorkerContext& w, MeshShared& shared) : hub_(hub), worker_(w), shared_(shared) {}
  /** accept: a connection on a mesh listener (owns fd). */
  void accept(const ListenerConfig& l, int fd, StreamMeta meta);
  /**
   * acceptMux: a connection a transport accepted (the mesh over QUIC on a `quic` listener, its
   * handshake done): served like an accepted HTTP/2 mesh connection — ALPN ugater registers the
   * node's association, ALPN ugate is a peer sending us streams.
   */
  void acceptMux(const std::string& listener, MuxConnectionPtr mux);
  /** onTunnelRequest: a CONNECT on a connection whose peer sends us streams. */
  void onTunnelRequest(MeshConn& c, std::unique_ptr<http::H2Stream> s);
  /** onMuxStream: a stream the peer opened on a multiplexed connection (any transport). */
  void onMuxStream(MeshConn& c, MuxInbound in) { admit(c, std::move(in)); }
  /** goAwayAssociation: an association replaced by a newer one of the same node drains. */
  void goAwayAssociation(uint64_t handle);

 private:
  using Conn = MeshConn;
  const Config& cfg() const;
  void onTlsAccepted(Conn& c);
  /**
   * onTlsAcceptFailed accounts for a mesh connection that never got past TLS, as every listener
   * kind does: counted per listener (connections_total and closes_total{reason}), one access-log
   * line, and a warning at most every 10 s per listener and worker (junk on a public port is
   * routine), which says how many were left out.
   */
  void onTlsAcceptFailed(const std::string& listener, StreamMeta& meta, Errc reason, std::string detail);
  bool authorizeAssociation(Conn& c, std::string& why) const;
  /**
   * mayAssertIdentity: the peer may name the stream's originating identity (x-ugate-peer): the
   * gateway we dialled (our association), or a peer in mesh.trustedGateways.
   */
  bool mayAssertIdentity(const Conn& c) const;
  /**
   * originIdentity: the stream's identity: the peer's own verified one, or the one it asserts when
   * it may (else the assertion is ignored, counted and logged).
   */
  std::unique_ptr<PeerIdentity> originIdentity(const Conn& c, const MuxInbound& s);
  /**
   * takeCarriedHeaders copies what travels on with the stream into meta.headers (allocated only if
   * any): well-formed traceparent, tracestate and baggage (malformed ones are dropped, counted and
   * logged) and the hop list.
   */
  void takeCarriedHeaders(const Conn& c, const MuxInbound& s, StreamMeta& meta);
  /**
   * admit: the one admission of a mesh stream, whatever carried it (an HTTP/2 CONNECT or a QUIC
   * stream header): hops and loops, identity, trace context, routes and exposure, then a session;
   * refusals are answered with a status and x-ugate-error, counted, logged and access-logged.
   */
  void admit(Conn& c, MuxInbound in, bool connectMethod = true);

  MeshWorker& hub_;
  WorkerContext& worker_;
  MeshShared& shared_;
  std::map<std::string, LogThrottle> tlsFailureLog_;  // tlsFailureLog_: per mesh listener
};

}  // namespace ugate::mesh

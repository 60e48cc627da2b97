#pragma once
// The mesh module's private pieces shared by mesh_worker.cc (outbound streams, connections),
// mesh_inbound.cc (the mesh listener: TLS accept, registrations, CONNECTs) and mesh_upstream.cc
// (this node's associations with its gateways): the per-connection, per-open and per-upstream
// state of a MeshWorker, and the header names and status mappings of the tunnel protocol.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/reactor.h>
#include <ugate/stream.h>

#include <ugate/dns.h>
#include <ugate/mux.h>
#include <ugate/splicer.h>
#include <ugate/tunnel.h>
#include "http/h2_connection.h"
#include "mesh/mesh_module.h"
#include "mesh/mesh_worker.h"

namespace ugate::mesh {

inline constexpr std::string_view kHopsHeader = "x-ugate-hops";  // node IDs that forwarded this stream
inline constexpr std::string_view kPeerHeader = "x-ugate-peer";  // the originating authenticated identity
// kPeerIdHeader: the originator's node ID beside a SPIFFE x-ugate-peer (a CA-signed node has both), so
// mesh.expose and routes can match either form after any number of hops.
inline constexpr std::string_view kPeerIdHeader = "x-ugate-peer-id";
inline constexpr std::string_view kErrorHeader = "x-ugate-error";

/** wallMs: wall-clock time for the admin endpoint (Unix milliseconds). */
int64_t wallMs();

// MeshConn (MeshWorker::Conn): one mutual-TLS connection of this worker: HTTP/2 over TCP (`h2`), or
// a multiplexed connection of another transport (`mux`: the mesh over QUIC), served the same way.
struct MeshConn final : public DeferredDeletable, public http::H2ConnectionCallbacks, public MuxConnectionCallbacks {
  enum class Kind : uint8_t {
    MeshServer,     // accepted on a mesh listener, ALPN h2: the peer sends us CONNECTs
    NodeHeld,       // accepted, ALPN h2r: a node's association; we send it CONNECTs
    Pool,           // dialled, ALPN h2: our CONNECTs to a gateway
    Association,    // dialled to our upstream gateway, ALPN h2r: it sends us CONNECTs
  };
  enum class State : uint8_t { Dialling, Handshaking, Ready, Closed };

  MeshConn(MeshWorker& m, Kind k, uint64_t h) : mw(m), kind(k), handle(h) {}
  void onRequest(http::H2Connection&, http::H2StreamPtr s) override { mw.server().onTunnelRequest(*this, std::move(s)); }
  void onConnectionClosed(http::H2Connection&, Errc r, const std::string& d) override { mw.onConnClosed(*this, r, d); }
  // ugate::MuxConnectionCallbacks
  void onMuxReady(MuxConnection&) override { mw.onMuxReady(*this); }
  void onMuxStream(MuxConnection&, MuxInbound in) override { mw.server().onMuxStream(*this, std::move(in)); }
  void onMuxClosed(MuxConnection&, Errc r, const std::string& d) override { mw.onMuxClosed(*this, r, d); }

  bool ready() const { return state == State::Ready && ((h2 && !h2->closed()) || (mux && mux->ready())); }
  bool canOpenStream() const { return h2 ? h2->canOpenStream() : mux && mux->canOpen(); }
  size_t activeStreams() const { return h2 ? h2->activeStreams() : mux ? mux->activeStreams() : 0; }
  /** goAway: no new streams; close once the open ones are done. */
  void goAway() {
    if (h2 && !h2->closed()) h2->goAway();
    if (mux && !mux->closed()) mux->goAway();
  }
  std::string_view transportName() const { return mux || transport != MeshTransport::H2 ? "quic" : "h2"; }

  MeshWorker& mw;
  Kind kind;
  uint64_t handle;
  State state{State::Dialling};
  std::string listener;  // meta.listener of the sessions it starts
  StreamMeta tmeta;      // the transport's source and local address
  std::unique_ptr<PeerIdentity> peer;
  HostPort target;       // dialled: the gateway
  std::string pinnedId;  // dialled: the gateway's node ID when pinned; a neighbour's announced ID
  bool direct{false};    // a neighbour's: verified by the node's trust, then pinnedId checked
  std::string pinnedSpiffe;  // dialled: the peer must present this SPIFFE ID (an Istio ambient HBONE hop)
  std::string poolKey;
  std::string upstream;  // Association: the upstream's name
  std::vector<SocketAddress> addrs;  // resolved; preset for a neighbour's (dialConn skips DNS)
  size_t nextAddr{0};
  DnsQueryPtr dns;
  StreamPtr tcp;
  StreamPtr tls;  // until the handshake completes; then owned by h2
  http::H2ConnectionPtr h2;
  MuxConnectionPtr mux;   // instead of h2: the mesh over QUIC
  MeshTransport transport{MeshTransport::H2};  // dialled: how (Quic for a QUIC attempt, also under auto)
  bool autoFallback{false};  // a QUIC attempt of transport auto: on failure its opens go over HTTP/2
  TimerPtr timer;
  std::vector<uint64_t> waiting;  // pending opens waiting for Ready
  MonotonicTime idleSince{};
  std::string nodeId;    // NodeHeld: the registered node
  bool registered{false};
  std::string closeWhy;  // why it failed or closed (reason: detail), for the upstream's status
};

// Pending: a session's open of a mesh stream, until its stream is there (or its error).
struct MeshDialer::Pending final : public TunnelRequest {
  Pending(MeshDialer& m, uint64_t i, Done d) : mw(m), id(i), done(std::move(d)) {}
  ~Pending() override { mw.pending_.erase(id); }
  MeshDialer& mw;
  uint64_t id;
  Done done;
  std::string authority;
  http::Headers headers;
  StreamPtr stream;           // awaiting the response
  StreamPtr local;            // connecting to our own loopback
  StreamPtr bridgeNear;       // cross-worker: our end of the bridge
  uint16_t localPort{0};
  std::string node;     // the mesh node targeted ("" for a plain `via` target)
  std::string via;      // the route's gateway ("" = this node's first upstream)
  std::string spiffe;   // the gateway must present this SPIFFE ID (StreamMeta::upstreamSpiffe); "" = any trusted
  bool direct{false};   // waiting on a direct connection to a neighbour (falls back when it fails)
  bool directQuic{false};        // that direct connection is the mesh over QUIC (the announced port)
  bool directQuicFailed{false};  // ... which failed: the neighbour's TCP mesh port is tried next
  bool overQuic{false}; // opened on a QUIC connection (metrics)
};

// Bridged: a stream opened here for another worker, spliced to that worker's bridge end.
struct MeshDialer::Bridged final : private SplicerCallbacks {
  Bridged(MeshDialer& m, StreamPtr f) : mw(m), far(std::move(f)) {}
  ~Bridged() override {
    if (splicer) splicer->stop();
  }
  void onSpliceDone() override { finish(false); }
  void onSpliceError(Errc, bool) override { finish(true); }
  void start() {
    splicer = std::make_unique<Splicer>(mw.worker_.spliceContext(), *far, *stream, static_cast<SplicerCallbacks&>(*this));
    splicer->start();
  }
  void finish(bool abort) {
    if (far) far->close(abort);
    if (stream) stream->close(abort);
    auto self = std::move(mw.bridged_[this]);
    mw.bridged_.erase(this);
    deleteLater(mw.worker_.reactor(), std::move(self));
  }
  MeshDialer& mw;
  StreamPtr far;
  StreamPtr stream;
  std::unique_ptr<Splicer> splicer;
  std::function<void(Errc, std::string)> reply;
};

}  // namespace ugate::mesh

#pragma once
// AdsServer: the xds module's state on worker 0 (the I/O around ads_state.h). It listens on
// xds.server.address, runs an HTTP/2 server connection (h2c, prior knowledge; or over TLS 1.3 with
// the node's certificate, mutual by default, when xds.server.tls) per accepted socket
// and a grpc::Server for the two ADS methods; each call owns a SotwStream or DeltaStream. On every
// config applied it rebuilds the resources (a new Snapshot generation) and hands them to each
// stream, which pushes what changed. Everything runs on worker 0's reactor: one thread owns the
// snapshot and every stream, so a push needs no lock.
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include <ugate/log_throttle.h>
#include <ugate/module.h>
#include <ugate/reactor.h>
#include <ugate/socket_address.h>
#include <ugate/tls_provider.h>

#include "http/h2_connection.h"
#include "xds/ads_state.h"
#include "xds/decode_thread.h"
#include "xds/grpc_server.h"
#include "xds/xds_module.h"

namespace ugate::xds {

class AdsCall;

class AdsServer final : public ModuleWorker, private IoWatcher, private http::H2ConnectionCallbacks {
 public:
  AdsServer(WorkerContext& w, XdsCounters& counters);
  ~AdsServer() override;

  void configApplied(const Config& cfg) override;
  void drain() override;

  // For the calls.
  ads::SnapshotPtr snapshot() const { return snap_; }
  XdsCounters& counters() { return counters_; }
  void attach(AdsCall* c) { calls_.insert(c); }
  void detach(AdsCall* c) { calls_.erase(c); }
  /**
   * warning logs `line` at warn level, at most once per 10 s (NACKs and refused requests are a
   * client's to cause at any rate; the counters record each one).
   */
  void warning(const std::string& line);
  /**
   * requestPeer: while a call is being created (onRequest): the node ID its connection's client
   * certificate carries ("" for h2c or no certificate). Message names are limited by it.
   */
  const std::string& requestPeer() const { return requestPeer_; }

 private:
  void listen(const SocketAddress& a);
  /** rebuild: a new snapshot from `cfg` and the nodes known now, pushed to every stream. */
  void rebuild(const Config& cfg, bool logSkipped);
  /** checkNodes (every second): the nodes changed (discovery, identity): rebuild. */
  void checkNodes();
  /** selfId: this node's ID ("" before its identity is loaded). */
  std::string selfId() const;
  /** serve runs the ADS server's HTTP/2 on an accepted (and, with TLS, handshaken) transport. */
  void serve(StreamPtr transport, std::string peerId = "");
  /** handshake: TLS for an accepted socket first (xds.server.tls); serve() once it succeeds. */
  void handshake(int fd);
  void stopListening();
  // IoWatcher: the listening socket is readable.
  void onIoEvent(uint32_t events) override;
  // http::H2ConnectionCallbacks
  void onRequest(http::H2Connection& c, http::H2StreamPtr s) override;
  void onConnectionClosed(http::H2Connection& c, Errc reason, const std::string& detail) override;

  WorkerContext& w_;
  XdsCounters& counters_;
  int listenFd_{-1};
  SocketAddress bound_;
  bool draining_{false};
  uint64_t generation_{0};
  ads::SnapshotPtr snap_;
  std::unique_ptr<grpc::Server> server_;
  std::unordered_map<http::H2Connection*, std::unique_ptr<http::H2Connection>> conns_;
  std::shared_ptr<const ListenerTlsConfig> tls_;  // null: h2c
  Duration handshakeTimeout_{10'000};
  std::unordered_map<HandshakingStream*, HandshakingStreamPtr> handshakes_;  // TLS in progress
  std::set<AdsCall*> calls_;
  LogThrottle warnLog_;
  TimerPtr nodesTimer_;
  std::unordered_map<const http::H2Connection*, std::string> connPeer_;  // client certificate's node ID
  std::string requestPeer_;
  // A change of the MessageBox (post, removal) wakes checkNodes at once (MessageBox::setOnChange), one wake queued at a time.
  std::shared_ptr<ReactorLink> link_;
  std::shared_ptr<std::atomic<bool>> wakeQueued_ = std::make_shared<std::atomic<bool>>(false);
  // The address is in use: retried every 500 ms for a minute (an upgrade's old process releases
  // it when it starts draining, moments after this process started).
  TimerPtr bindRetry_;
  int bindTries_{0};
};

}  // namespace ugate::xds

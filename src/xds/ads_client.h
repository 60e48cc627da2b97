#pragma once
// AdsClient: the xds module's ADS client on worker 0 (the I/O around ads_client_state.h). It
// dials xds.client.address (mutual TLS with the node's identity, ALPN h2; or h2c), opens one StreamAggregatedResources or DeltaAggregatedResources
// call, feeds each response to its AdsClientState, sends the ACKs/NACKs and subscription changes
// that returns, and hands the clusters it holds to core (ugate::ClusterUpdater: every worker gets
// them, no lock on the data path, no connection dropped). A failed connect or an ended call is
// retried after a backoff with jitter; the clusters last accepted stay in force meanwhile.
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>

#include <ugate/cluster.h>
#include <ugate/dns.h>
#include <ugate/log_throttle.h>
#include <ugate/reactor.h>
#include <ugate/stream.h>
#include <ugate/tls_provider.h>

#include "http/h2_connection.h"
#include "xds/ads_client_state.h"
#include "xds/decode_thread.h"
#include "xds/grpc_client.h"
#include "xds/xds_config.h"
#include "xds/xds_module.h"

namespace ugate {
class WorkerContext;
}

namespace ugate::xds {

class AdsClient final : private http::H2ConnectionCallbacks, private grpc::ClientCallHandler {
 public:
  AdsClient(WorkerContext& w, XdsModule& m);
  ~AdsClient() override;

  /** configApplied: (re)start or stop as `xds.client` says; subscriptions follow the routes. */
  void configApplied(const Config& cfg);
  void drain();

 private:
  void connect();
  /** connectTo: the TCP connect of this attempt, to one address of xds.client.address. */
  void connectTo(const SocketAddress& a);
  /** serverName: the TLS server name: xds.client.tls.sni, else the address's host when a name. */
  std::string serverName() const;
  void onConnected(uint64_t attempt, int err);
  /** startTls: mutual TLS over the connected socket (xds.client.tls), then openCall(). */
  void startTls(uint64_t attempt);
  /** startH2: the HTTP/2 connection and the ADS call over `transport`. */
  void startH2(StreamPtr transport);
  void openCall();
  /** retry: the connection or call failed (`why`): close it and connect again after a backoff. */
  void retry(const std::string& why);
  void closeConnection();
  void send(const std::vector<std::string>& requests);
  /** publish: syncClusters, then publishStatus. */
  void publish();
  /** syncClusters: hand what the state holds to core (only what changed; warming clusters keep theirs). */
  void syncClusters();
  /** publishAmbient: the Istio ambient state held to ugate::ambientDirectory() (null when off). */
  void publishAmbient();
  /** deliverMessages: new Message envelopes (xds.client.messages) to the MessageBox inbox. */
  void deliverMessages(std::vector<Mailbox> boxes);
  /** publishStatus: the /xds document. */
  void publishStatus();
  /** publishSource: the config store's "xds" source (the clusters handed to core, with versions). */
  void publishSource();
  void stop();
  /**
   * process: one response of the stream, in order: a small one decoded here, a big one
   * (kDecodeInline bytes or more) on the module's DecodeThread, applied when back (onDecoded);
   * responses that come meanwhile wait in waiting_.
   */
  void process(std::string message);
  /** onDecoded: a decode of generation `gen` is back on worker 0 (dropped when stale). */
  void onDecoded(uint64_t gen, DecodedResponse d);
  /** applyResponse: the state takes a decoded response; the ACK/NACK and what changed go out. */
  void applyResponse(DecodedResponse d);

  // http::H2ConnectionCallbacks
  void onRequest(http::H2Connection& c, http::H2StreamPtr s) override;
  void onConnectionClosed(http::H2Connection& c, Errc reason, const std::string& detail) override;
  // grpc::ClientCallHandler
  void onMessage(grpc::ClientCall& call, std::string message) override;
  void onDone(grpc::ClientCall& call, const grpc::Status& status) override;

  WorkerContext& w_;
  XdsModule& module_;
  XdsCounters& counters_;
  std::shared_ptr<const XdsClientConfig> cfg_;  // null: off
  std::unique_ptr<AdsClientState> state_;
  std::unique_ptr<Stream> connecting_;
  HandshakingStreamPtr handshaking_;  // TLS to the control plane in progress
  Duration handshakeTimeout_{10'000};
  http::H2ConnectionPtr conn_;
  grpc::ClientCallPtr call_;
  TimerPtr timer_;  // reconnect backoff, or the connect deadline
  DnsQueryPtr query_;  // resolving a control plane's name
  uint64_t attempt_{0};
  Duration backoff_{0};
  bool draining_{false};
  bool gotResponse_{false};  // on this connection (resets the backoff)
  std::map<std::string, DynamicCluster> pushed_;  // what core has from us
  std::mt19937_64 rng_;
  LogThrottle warnLog_;
  // Decoding off the loop. generation_ changes when the stream ends (closeConnection): a decode of
  // an older one is dropped when it comes back; link_ is cut by the destructor (nothing comes back).
  std::shared_ptr<ReactorLink> link_;
  uint64_t generation_{0};
  bool decoding_{false};              // a response of this stream is on the DecodeThread
  std::deque<std::string> waiting_;   // responses that came meanwhile, in order
};

}  // namespace ugate::xds

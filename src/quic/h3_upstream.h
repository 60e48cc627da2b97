#pragma once
// H3Upstream: one HTTP/3 request of a `quic` listener relayed to an HTTP/3 origin over QUIC — a
// route with "upstreamQuic": true (docs/CONFIG.md). ugated is the QUIC client here: it resolves the
// route's `to`, opens a QUIC connection from a connected UDP socket (ClientSocket, as the mesh does)
// with TLS from the provider's client context for the route's upstreamTls (ALPN h3; the origin's
// certificate must verify against the configured roots or pins unless insecureSkipVerify says
// otherwise), and sends the request head with H3Client::request. Then a Splicer joins the two
// streams' faces: the request body flows client → origin and the response body origin → client,
// each with QUIC flow control as backpressure at both ends (nothing is buffered beyond the
// streams' send caps and receive windows). The client's stream holds its writes until the origin's
// response head has been submitted on it.
//
// Failures before the origin answered are answered by the HTTP/3 server (502, or 504 for a
// handshake that timed out, with x-ugate-error), logged (rate-limited) and counted
// (ugate_quic_h3_upstream_errors_total); after it, the client's stream is reset. Every request has
// its access-log line. One QUIC connection per request (no pooling yet).
//
// Owned by the H3Server of the client's connection (so it dies with it); when done it asks the
// server to free it at the end of the turn and touches nothing of the server after that.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/config.h>
#include <ugate/dns.h>
#include <ugate/result.h>
#include <ugate/splicer.h>
#include <ugate/stream.h>

#include "quic/quic_counters.h"
#include "quic/quic_stream.h"

namespace ugate {
class WorkerContext;
}

namespace ugate::quic {

class ClientSocket;
class H3Server;
class QuicConn;

class H3Upstream final : public SplicerCallbacks {
 public:
  struct Params {
    HostPort target;                                   // the route's `to`
    std::shared_ptr<const UpstreamTlsConfig> tls;      // ALPN h3, pins, insecureSkipVerify
    Duration connectTimeout{5000};                     // the QUIC handshake's deadline (504 after it)
    Duration idleTimeout{300000};
  };
  /** H3Upstream for request stream s of the server connection `down` (s.headersDone). */
  H3Upstream(WorkerContext& w, H3Server& h3, QuicConn& down, StreamState& s, StreamMeta meta, Params p);
  ~H3Upstream() override;
  H3Upstream(const H3Upstream&) = delete;
  H3Upstream& operator=(const H3Upstream&) = delete;

  /** start resolves and dials the origin (failures are answered at once). */
  void start();

  /** requestHead: the HTTP/3 request head sent to the origin for client request s (pure; tested). */
  static std::vector<std::pair<std::string, std::string>> requestHead(const StreamState& s, const std::string& clientIp);

 private:
  void onResolved(Result<std::vector<SocketAddress>> r);
  void onReady();
  void onResponse(int status, const std::vector<std::pair<std::string, std::string>>& headers);
  void onUpstreamClosed(std::string_view why);
  void fail(Errc e, const std::string& detail);
  void finish(Errc e, const std::string& detail);

  // SplicerCallbacks
  void onSpliceDone() override;
  void onSpliceError(Errc reason, bool clientSide) override;

  WorkerContext& w_;
  H3Server& h3_;
  QuicCounters& counters_;
  int64_t id_;                        // the client's request stream
  std::unique_ptr<QuicStream> down_;  // face of the client's request stream
  StreamMeta meta_;
  Params p_;
  DnsQueryPtr query_;
  std::unique_ptr<ClientSocket> sock_;
  std::unique_ptr<QuicStream> up_;  // face of the request stream to the origin
  std::unique_ptr<Splicer> splicer_;
  bool answered_{false};  // the origin's response head went to the client (or an error answer did)
  bool done_{false};      // finished: handed back to the server for deletion
};

}  // namespace ugate::quic

#include "quic/quic_module.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include <ugate/config.h>
#include <ugate/listener.h>
#include <ugate/metrics.h>
#include <ugate/worker_context.h>

#include "quic/quic_config.h"
#include "quic/quic_crypto.h"
#include "quic/quic_endpoint.h"
#include "quic/quic_options.h"
#include "quic/lib_memory.h"
#include "quic/mux_app.h"

namespace ugate::quic {

std::string_view dropReasonName(DropReason r) {
  switch (r) {
    case DropReason::Malformed: return "malformed";
    case DropReason::UnknownConn: return "unknown_connection";
    case DropReason::NotInitial: return "not_initial";
    case DropReason::TooSmall: return "initial_too_small";
    case DropReason::BadToken: return "bad_token";
    case DropReason::Refused: return "refused";
    case DropReason::ConnError: return "undecryptable";
    case DropReason::Truncated: return "truncated";
    case DropReason::kCount: break;
  }
  return "unknown";
}

QuicShared::QuicShared() {
  RAND_bytes(resetSecret.data(), resetSecret.size());
  RAND_bytes(tokenSecret.data(), tokenSecret.size());
}

// ---------------------------------------------------------------------------------------------
QuicWorker::QuicWorker(WorkerContext& w, QuicShared& shared) : w_(w), shared_(shared) {}

QuicWorker::~QuicWorker() {
  // After every worker thread stopped (ModuleWorker's contract): nobody looks this slot up now.
  const auto i = static_cast<size_t>(w_.index());
  if (i < shared_.workers.size() && shared_.workers[i] == this) shared_.workers[i] = nullptr;
}

void QuicWorker::drain() {
  for (QuicEndpoint* e : endpoints_) e->drain();
}

void QuicWorker::removeEndpoint(QuicEndpoint* e) { std::erase(endpoints_, e); }

std::string QuicWorker::altSvc(std::string_view listener) const {
  const ListenerConfig* push = nullptr;
  for (const auto& l : w_.config().listeners) {
    if (l.name == listener) push = &l;
  }
  if (push == nullptr) return {};
  for (QuicEndpoint* e : endpoints_) {
    const ListenerConfig& q = e->config();
    auto o = std::dynamic_pointer_cast<const QuicListenerOptions>(q.options);
    if (!o || o->push != listener || !q.tls || q.tls->requireClientCert) continue;  // only what any client can use
    // The same host: the quic listener takes the push listener's address (or every address).
    if (!q.address.isAny() && q.address.ip() != push->address.ip()) continue;
    if (uint16_t port = e->localPort(); port != 0) return "h3=\":" + std::to_string(port) + "\"";
  }
  return {};
}

QuicEndpoint* QuicWorker::endpointFor(const std::string& name) const {
  for (QuicEndpoint* e : endpoints_) {
    if (e->name() == name) return e;
  }
  return nullptr;
}

void QuicWorker::handoff(uint16_t to, const std::string& listener, const uint8_t* data, size_t len,
                         const SocketAddress& peer, const SocketAddress& local, uint8_t ecn) {
  QuicWorker* target = shared_.workers[to];
  if (target == nullptr) {
    shared_.counters.drop(DropReason::UnknownConn);
    return;
  }
  shared_.counters.handedToOtherWorker.fetch_add(1, std::memory_order_relaxed);
  shared_.counters.packetsIn.fetch_sub(1, std::memory_order_relaxed);  // counted again by the owner
  shared_.counters.bytesIn.fetch_sub(len, std::memory_order_relaxed);
  std::string copy(reinterpret_cast<const char*>(data), len);
  target->w_.reactor().post([target, listener, copy = std::move(copy), peer, local, ecn] {
    QuicEndpoint* e = target->endpointFor(listener);
    if (e == nullptr) {
      target->shared_.counters.drop(DropReason::UnknownConn);
      return;
    }
    e->datagram(reinterpret_cast<const uint8_t*>(copy.data()), copy.size(), PathAddrs{local, peer}, ecn);
    e->runPending();
  });
}

// ---------------------------------------------------------------------------------------------
void QuicModule::registerKinds(ListenerKindRegistry& kinds) {
  ListenerKindSpec spec = quicKindSpec();
  spec.newDatagramHandler = [shared = &shared_](WorkerContext& w, const ListenerConfig& l,
                                                int fd) -> DatagramHandlerPtr {
    const auto i = static_cast<size_t>(w.index());
    QuicWorker* qw = i < shared->workers.size() ? shared->workers[i] : nullptr;
    if (qw == nullptr) return nullptr;
    return std::make_unique<QuicEndpoint>(w, *qw, l, fd);
  };
  kinds.add(std::move(spec));
  // The mesh over QUIC: transport "quic" for the mesh's dialer (include/ugate/mux.h).
  muxTransports().add(std::make_shared<QuicMuxTransport>(shared_));
}

ModuleWorkerPtr QuicModule::newWorker(WorkerContext& w) {
  const auto i = static_cast<size_t>(w.index());
  auto m = std::make_unique<QuicWorker>(w, shared_);
  if (shared_.workers.size() <= i) shared_.workers.resize(i + 1, nullptr);
  shared_.workers[i] = m.get();
  return m;
}

void QuicModule::finishConfig(Config& c, cfgjson::ConfigErrors& errs) const { checkQuicPush(c, errs); }

void QuicModule::renderMetrics(MetricsWriter& out) const {
  const QuicCounters& k = shared_.counters;
  auto v = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  out.family("ugate_quic_handshakes_total", "counter", "QUIC handshakes by result");
  out.sample("ugate_quic_handshakes_total", {{"result", "ok"}}, v(k.handshakesOk));
  out.sample("ugate_quic_handshakes_total", {{"result", "failed"}}, v(k.handshakesFailed));
  out.sample("ugate_quic_handshakes_total", {{"result", "timeout"}}, v(k.handshakeTimeouts));
  out.gauge("ugate_quic_connections", "QUIC connections open", k.connectionsOpen.load(std::memory_order_relaxed));
  out.counter("ugate_quic_connections_closed_total", "QUIC connections ended", v(k.connectionsClosed));
  out.counter("ugate_quic_streams_total", "requests and streams peers opened", v(k.streamsOpened));
  out.counter("ugate_quic_stream_errors_total", "HTTP/3 or stream errors", v(k.streamErrors));
  out.family("ugate_quic_packets_total", "counter", "UDP datagrams by direction");
  out.sample("ugate_quic_packets_total", {{"dir", "in"}}, v(k.packetsIn));
  out.sample("ugate_quic_packets_total", {{"dir", "out"}}, v(k.packetsOut));
  out.family("ugate_quic_bytes_total", "counter", "UDP payload bytes by direction");
  out.sample("ugate_quic_bytes_total", {{"dir", "in"}}, v(k.bytesIn));
  out.sample("ugate_quic_bytes_total", {{"dir", "out"}}, v(k.bytesOut));
  out.counter("ugate_quic_retry_sent_total", "Retry packets sent (address validation)", v(k.retrySent));
  out.counter("ugate_quic_version_negotiation_sent_total", "Version Negotiation packets sent",
              v(k.versionNegotiationSent));
  out.counter("ugate_quic_stateless_resets_sent_total", "stateless resets sent", v(k.statelessResetsSent));
  out.counter("ugate_quic_mesh_connections_dialled_total", "mesh connections dialled over QUIC (ALPN ugate)",
              v(k.meshDialled));
  out.counter("ugate_quic_mesh_connections_accepted_total", "mesh connections accepted over QUIC and handed to the mesh",
              v(k.meshAccepted));
  out.family("ugate_quic_mesh_streams_total", "counter", "mesh streams over QUIC by who opened them");
  out.sample("ugate_quic_mesh_streams_total", {{"opened_by", "us"}}, v(k.meshStreamsOut));
  out.sample("ugate_quic_mesh_streams_total", {{"opened_by", "peer"}}, v(k.meshStreamsIn));
  out.counter("ugate_quic_mesh_header_errors_total", "mesh streams reset for a malformed stream header",
              v(k.meshHeaderErrors));
  out.counter("ugate_quic_h3_upstream_requests_total", "HTTP/3 requests relayed to HTTP/3 origins (upstreamQuic)",
              v(k.h3UpstreamRequests));
  out.counter("ugate_quic_h3_upstream_errors_total",
              "HTTP/3 requests to HTTP/3 origins that failed (502/504 answered, or reset mid-body)",
              v(k.h3UpstreamErrors));
  out.counter("ugate_quic_handoffs_total", "datagrams handed to the worker their CID names", v(k.handedToOtherWorker));
  out.family("ugate_quic_dropped_total", "counter", "datagrams dropped before a connection, by reason");
  for (size_t i = 0; i < k.dropped.size(); ++i) {
    out.sample("ugate_quic_dropped_total", {{"reason", dropReasonName(static_cast<DropReason>(i))}}, v(k.dropped[i]));
  }
  // The smoothed RTT of connections at their end, as a Prometheus histogram (cumulative buckets).
  static constexpr const char* kLe[] = {"1000", "5000", "25000", "100000", "500000", "+Inf"};
  out.family("ugate_quic_rtt_microseconds", "histogram", "smoothed RTT of QUIC connections when they ended");
  uint64_t cum = 0;
  for (size_t i = 0; i < k.rttBuckets.size(); ++i) {
    cum += v(k.rttBuckets[i]);
    out.sample("ugate_quic_rtt_microseconds_bucket", {{"le", kLe[i]}}, cum);
  }
  out.sample("ugate_quic_rtt_microseconds_sum", v(k.rttSumUs));
  out.sample("ugate_quic_rtt_microseconds_count", cum);
  const CryptoCounters& c = cryptoCounters();
  out.counter("ugate_quic_decrypt_failures_total", "packets that failed AEAD authentication", v(c.decryptFailures));
  out.counter("ugate_quic_tokens_rejected_total", "Retry or NEW_TOKEN tokens that failed verification",
              v(c.tokensRejected));
  out.counter("ugate_quic_key_updates_total", "1-RTT key updates (either side)", v(c.keyUpdates));
  out.family("ugate_quic_library_bytes", "gauge", "bytes ngtcp2 and nghttp3 hold now (all connections)");
  out.sample("ugate_quic_library_bytes", {{"lib", "ngtcp2"}}, libBytes().ngtcp2.load(std::memory_order_relaxed));
  out.sample("ugate_quic_library_bytes", {{"lib", "nghttp3"}}, libBytes().nghttp3.load(std::memory_order_relaxed));
}

}  // namespace ugate::quic

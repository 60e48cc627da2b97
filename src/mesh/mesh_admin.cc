// The mesh on the admin endpoint: /nodes (nodes registered here, and this node's own upstream
// associations) and the ugate_mesh_* metrics of /stats.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <ugate/json_writer.h>
#include <ugate/metrics.h>
#include <ugate/peer_directory.h>

#include <ugate/stream_bridge.h>
#include "mesh/mesh_stats.h"
#include "mesh/mesh_module.h"
#include "mesh/mesh_worker.h"
#include "mesh/node_table.h"

namespace ugate::mesh {

namespace {

// objects appends `"name": [` and one JSON object per item, each line filled by `fields`, then `]`.
template <typename T, typename F>
void objects(std::string& o, const char* name, const std::vector<T>& items, F&& fields) {
  o += "\"";
  o += name;
  o += "\": [";
  for (size_t i = 0; i < items.size(); ++i) {
    o += i ? ",\n  {" : "\n  {";
    fields(o, items[i]);
    o += "}";
  }
  o += items.empty() ? "]" : "\n]";
}

}  // namespace

std::string MeshShared::nodesJson() const {
  auto held = nodes.list();
  std::sort(held.begin(), held.end(), [](const NodeEntry& a, const NodeEntry& b) { return a.id < b.id; });
  std::string o = "{";
  objects(o, "nodes", held, [](std::string& e, const NodeEntry& n) {
    JsonFields(e, false, ", ", ": ")
        .str("id", n.id)
        .str("name", n.name)
        .str("spiffe", n.spiffe)
        .str("from", n.peer.str())
        .num("worker", n.worker)
        .num("since_unix_ms", n.sinceUnixMs)
        .str("source", "association");
  });
  o += ",\n";
  // Nodes reachable directly (local discovery), dialled before any association or gateway.
  objects(o, "neighbours", peerDirectory().list(), [](std::string& e, const DirectPeer& d) {
    std::vector<std::string> tcp, quic;
    for (const auto& a : d.meshTcp) tcp.push_back(a.str());
    for (const auto& a : d.meshQuic) quic.push_back(a.str());
    JsonFields(e, false, ", ", ": ")
        .str("id", d.id)
        .str("name", d.name)
        .str("source", d.source)
        .str("interface", d.interface)
        .strs("mesh_tcp", tcp)
        .strs("mesh_quic", quic)
        .num("last_seen_unix_ms", d.lastSeenUnixMs);
  });
  o += ",\n";
  // This node's own associations with its gateways (the view from behind the NAT).
  objects(o, "upstreams", upstreams.list(), [](std::string& e, const UpstreamStatus& u) {
    JsonFields f(e, false, ", ", ": ");
    f.str("name", u.name)
        .str("address", u.address)
        .str("gateway_id", u.gatewayId)
        .str("state", upstreamStateName(u.state))
        .num("since_unix_ms", u.sinceUnixMs)
        .num("attempts", u.attempts);
    if (u.state == UpstreamStatus::State::BackingOff) f.num("next_retry_unix_ms", u.nextRetryUnixMs);
    if (!u.lastError.empty()) f.str("last_error", u.lastError);
  });
  o += "}\n";
  return o;
}

void MeshShared::renderMetrics(MetricsWriter& m) const {
  const MeshCounters& v = counters;
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  m.gauge("ugate_mesh_nodes", "Nodes holding an association with this gateway.", nodes.size());
  auto ups = upstreams.list();
  m.gauge("ugate_mesh_upstreams_connected", "This node's upstream associations that are up.",
          std::count_if(ups.begin(), ups.end(),
                        [](const UpstreamStatus& u) { return u.state == UpstreamStatus::State::Connected; }));
  m.counter("ugate_mesh_tunnels_opened_total", "Mesh streams opened for local sessions.", get(v.tunnelsOpened));
  m.counter("ugate_mesh_tunnels_failed_total", "Mesh streams that could not be opened.", get(v.tunnelsFailed));
  m.counter("ugate_mesh_streams_accepted_total", "CONNECT streams accepted from peers.", get(v.streamsAccepted));
  // Refusals by reason; the two of the exposure model are always present.
  m.family("ugate_mesh_streams_refused_total", "counter", "CONNECT streams refused (status >= 400), by reason.");
  for (size_t i = 1; i < kNumErrc; ++i) {
    const auto e = static_cast<Errc>(i);
    const uint64_t n = get(v.streamsRefused[i]);
    if (n == 0 && e != Errc::NotExposed && e != Errc::RouteRejected) continue;
    m.sample("ugate_mesh_streams_refused_total", {{"reason", errcReason(e)}}, n);
  }
  m.counter("ugate_mesh_loops_refused_total", "Streams refused as a loop (our node ID already in the hops).",
            get(v.loopsRefused));
  m.counter("ugate_mesh_hops_exceeded_total", "Streams refused for a circuit longer than mesh.maxHops.",
            get(v.hopsExceeded));
  m.counter("ugate_mesh_identity_assertions_ignored_total",
            "x-ugate-peer headers ignored: the peer may not assert another identity.", get(v.identityIgnored));
  m.counter("ugate_mesh_trace_headers_dropped_total", "Malformed traceparent, tracestate or baggage dropped.",
            get(v.traceHeadersDropped));
  m.counter("ugate_mesh_associations_registered_total", "Node associations registered here.",
            get(v.associationsRegistered));
  m.counter("ugate_mesh_associations_refused_total", "Node associations refused (not authorized, name taken).",
            get(v.associationsRefused));
  m.counter("ugate_mesh_associations_replaced_total", "Associations replaced by a newer one of the same node.",
            get(v.associationsReplaced));
  m.counter("ugate_mesh_association_dials_total", "Dials to our upstream gateways.", get(v.associationDials));
  m.counter("ugate_mesh_associations_up_total", "Associations to our upstream gateways established.",
            get(v.associationsUp));
  m.counter("ugate_mesh_pool_connections_total", "Outbound mesh connections opened.", get(v.poolConnections));
  m.gauge("ugate_mesh_direct_peers", "Nodes reachable directly (found by local discovery).", peerDirectory().size());
  m.counter("ugate_mesh_direct_opens_total", "Mesh streams opened straight to a neighbour.", get(v.directOpens));
  m.counter("ugate_mesh_direct_fallbacks_total",
            "Streams to a neighbour re-opened through an association or gateway after the direct dial failed.",
            get(v.directFallbacks));
  // Per transport: the mesh over QUIC beside HTTP/2 (the totals above count both).
  m.family("ugate_mesh_transport_connections_total", "counter", "Mesh connections dialled, by transport.");
  m.sample("ugate_mesh_transport_connections_total", {{"transport", "h2"}},
           get(v.poolConnections) + get(v.associationDials) - get(v.quicConnections));
  m.sample("ugate_mesh_transport_connections_total", {{"transport", "quic"}}, get(v.quicConnections));
  m.family("ugate_mesh_transport_tunnels_total", "counter", "Mesh streams opened by this node, by transport.");
  m.sample("ugate_mesh_transport_tunnels_total", {{"transport", "h2"}}, get(v.tunnelsOpened) - get(v.quicTunnelsOpened));
  m.sample("ugate_mesh_transport_tunnels_total", {{"transport", "quic"}}, get(v.quicTunnelsOpened));
  m.family("ugate_mesh_transport_streams_accepted_total", "counter", "Mesh streams admitted, by transport.");
  m.sample("ugate_mesh_transport_streams_accepted_total", {{"transport", "h2"}},
           get(v.streamsAccepted) - get(v.quicStreamsAccepted));
  m.sample("ugate_mesh_transport_streams_accepted_total", {{"transport", "quic"}}, get(v.quicStreamsAccepted));
  m.counter("ugate_mesh_auto_fallbacks_total",
            "QUIC attempts (upstreams with transport auto, a neighbour's announced QUIC port) that failed and "
            "were retried over HTTP/2.",
            get(v.autoFallbacks));
  // Streams joined across workers (ugate/stream_bridge.h): ring storage is held only while in use.
  const StreamBridgeStats& br = streamBridgeStats();
  auto gauge = [](const std::atomic<int64_t>& g) { return std::max<int64_t>(0, g.load(std::memory_order_relaxed)); };
  m.gauge("ugate_mesh_bridges", "Mesh streams joined to a session on another worker.", gauge(br.bridges));
  m.gauge("ugate_mesh_bridge_buffer_bytes", "Ring storage the bridges hold (bytes in flight).", gauge(br.bufferBytes));
  m.counter("ugate_mesh_bridge_buffer_allocations_total",
            "Bridge ring storage allocations (a direction woke from idle).",
            br.bufferAllocs.load(std::memory_order_relaxed));

  // HTTP/2 of every mesh connection, summed over the workers.
  struct Def {
    const char* name;
    const char* help;
    Counter http::H2Stats::*field;
  };
  static const Def kH2[] = {
      {"ugate_mesh_h2_streams_opened_total", "HTTP/2 streams we opened (CONNECTs sent).", &http::H2Stats::streamsOpened},
      {"ugate_mesh_h2_streams_accepted_total", "HTTP/2 streams peers opened (CONNECTs received).",
       &http::H2Stats::streamsAccepted},
      {"ugate_mesh_h2_resets_sent_total", "RST_STREAM frames sent.", &http::H2Stats::resetsSent},
      {"ugate_mesh_h2_resets_received_total", "RST_STREAM frames received.", &http::H2Stats::resetsReceived},
      {"ugate_mesh_h2_headers_too_large_total", "Header blocks over the limit (431 or reset).",
       &http::H2Stats::headersTooLarge},
      {"ugate_mesh_h2_protocol_errors_total", "Mesh connections closed with an error GOAWAY (protocol errors).",
       &http::H2Stats::protocolErrors},
      {"ugate_mesh_h2_ping_timeouts_total", "Mesh connections declared dead: no PING ack within mesh.pingTimeout.",
       &http::H2Stats::pingTimeouts},
      {"ugate_mesh_h2_goaways_received_total", "GOAWAY frames received.", &http::H2Stats::goawaysReceived},
      {"ugate_mesh_h2_received_bytes_total", "DATA payload bytes received on mesh connections.", &http::H2Stats::bytesIn},
      {"ugate_mesh_h2_sent_bytes_total", "DATA payload bytes sent on mesh connections.", &http::H2Stats::bytesOut},
  };
  for (const Def& d : kH2) {
    uint64_t sum = 0;
    for (const http::H2Stats& s : h2) sum += (s.*d.field).value();
    m.counter(d.name, d.help, sum);
  }
}

AdminReply MeshModule::handleAdmin(std::string_view path) const {
  if (path == "/nodes") return {200, "application/json", shared_.nodesJson()};
  return Module::handleAdmin(path);
}

}  // namespace ugate::mesh

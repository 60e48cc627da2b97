#include "xds/xds_module.h"

#include <ugate/ambient.h>
#include <ugate/message_box.h>
#include <ugate/metrics.h>
#include <ugate/worker_context.h>

#include "xds/ads_client.h"
#include "xds/ads_server.h"
#include "xds/messages.h"

namespace ugate::xds {

XdsType xdsTypeOf(std::string_view typeUrl) {
  if (typeUrl == kListenerType) return XdsType::Lds;
  if (typeUrl == kRouteConfigurationType) return XdsType::Rds;
  if (typeUrl == kClusterType) return XdsType::Cds;
  if (typeUrl == kClusterLoadAssignmentType) return XdsType::Eds;
  if (typeUrl == kNodeType) return XdsType::Node;
  return XdsType::Other;
}

std::string_view xdsTypeName(XdsType t) {
  switch (t) {
    case XdsType::Lds: return "lds";
    case XdsType::Rds: return "rds";
    case XdsType::Cds: return "cds";
    case XdsType::Eds: return "eds";
    case XdsType::Node: return "node";
    case XdsType::Other:
    case XdsType::Count: break;
  }
  return "other";
}

namespace {

/** XdsWorker: the module on worker 0: the ADS server and the ADS client side by side. */
class XdsWorker final : public ModuleWorker {
 public:
  XdsWorker(WorkerContext& w, XdsModule& m) : server_(w, m.counters()), client_(w, m) {}
  void configApplied(const Config& cfg) override {
    server_.configApplied(cfg);
    client_.configApplied(cfg);
  }
  void drain() override {
    server_.drain();
    client_.drain();
  }

 private:
  AdsServer server_;
  AdsClient client_;
};

}  // namespace

ModuleWorkerPtr XdsModule::newWorker(WorkerContext& w) {
  if (w.index() != 0) return nullptr;
  return std::make_unique<XdsWorker>(w, *this);
}

void XdsModule::setClientStatus(std::string json) {
  std::lock_guard<std::mutex> lk(mu_);
  clientStatus_ = std::move(json);
}

AdminReply XdsModule::handleAdmin(std::string_view path) const {
  if (path != "/xds") return Module::handleAdmin(path);
  std::lock_guard<std::mutex> lk(mu_);
  return {200, "application/json", "{\"client\": " + (clientStatus_.empty() ? std::string("null") : clientStatus_) + "}\n"};
}

void XdsModule::renderMetrics(MetricsWriter& m) const {
  const XdsCounters& c = counters_;
  auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  auto perType = [&](std::string_view name, std::string_view type, std::string_view help, const XdsCounters::PerType& v) {
    m.family(name, type, help);
    for (size_t i = 0; i < v.size(); ++i) m.sample(name, {{"type", xdsTypeName(static_cast<XdsType>(i))}}, get(v[i]));
  };
  m.gauge("ugate_xds_server_listening", "1 when the ADS server (xds.server) is listening.", get(c.listening));
  m.counter("ugate_xds_bind_errors_total", "Times the ADS server could not listen on xds.server.address.",
            get(c.bindErrors));
  m.counter("ugate_xds_tls_failures_total", "TLS handshakes of the ADS server or client that failed.",
            get(c.tlsFailures));
  m.counter("ugate_xds_connections_total", "HTTP/2 connections accepted by the ADS server.", get(c.connectionsTotal));
  m.family("ugate_xds_streams", "gauge", "ADS streams open, by API.");
  m.sample("ugate_xds_streams", {{"api", "sotw"}}, get(c.sotwStreams));
  m.sample("ugate_xds_streams", {{"api", "delta"}}, get(c.deltaStreams));
  m.counter("ugate_xds_streams_total", "ADS streams started (both APIs).", get(c.streamsTotal));
  perType("ugate_xds_requests_total", "counter", "Discovery requests received, by resource type.", c.requests);
  perType("ugate_xds_acks_total", "counter", "Discovery requests that ACKed the last response, by type.", c.acks);
  perType("ugate_xds_nacks_total", "counter", "Discovery requests that NACKed the last response, by type.", c.nacks);
  perType("ugate_xds_stale_total", "counter", "Discovery requests with a stale nonce, by type.", c.stale);
  perType("ugate_xds_pushes_total", "counter", "Discovery responses sent, by type.", c.pushes);
  perType("ugate_xds_resources", "gauge", "Resources published from the running config, by type.", c.resources);
  m.gauge("ugate_xds_client_connected", "1 while the ADS client (xds.client) has its call open.", get(c.clientConnected));
  m.counter("ugate_xds_client_responses_total", "Discovery responses the ADS client received.", get(c.clientResponses));
  m.counter("ugate_xds_client_acks_total", "Responses the ADS client applied and ACKed.", get(c.clientAcks));
  m.counter("ugate_xds_client_nacks_total", "Responses the ADS client refused (NACKed, or not a response).",
            get(c.clientNacks));
  m.counter("ugate_xds_client_reconnects_total", "Times the ADS client lost or could not reach its control plane.",
            get(c.clientReconnects));
  m.gauge("ugate_xds_client_clusters", "Clusters defined by the ADS client now.", get(c.clientClusters));
  m.counter("ugate_xds_client_messages_total",
            "ugate.v1.Message envelopes (Web Push ciphertext) the ADS client received, each id once.",
            get(c.clientMessages));
  m.counter("ugate_xds_client_messages_dropped_total",
            "Message envelopes received that no module took (no push service on this node).",
            get(c.clientMessagesDropped));
  m.counter("ugate_xds_mailboxes_refused_total",
            "ugate.v1.Message names left out of requests: another node's mailbox (clients with a certificate).",
            get(c.mailboxesRefused));
  m.gauge("ugate_xds_messages_boxed", "Web Push messages waiting in the MessageBox (published as ugate.v1.Message).",
          messageBox().size());
  renderAmbientMetrics(m, get(c.clientAmbientResources));
}

void XdsModule::renderAmbientMetrics(MetricsWriter& m, uint64_t resources) const {
  const AmbientDirectory& a = ambientDirectory();
  auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  m.gauge("ugate_xds_ambient_resources", "Istio ambient resources (Address, Authorization) the ADS client holds.",
          resources);
  m.counter("ugate_ambient_outbound_total", "Captured connections sent to an ambient workload (service VIP or workload IP).",
            get(a.outboundRedirected));
  m.counter("ugate_ambient_no_endpoint_total", "Captured connections to a service VIP with no usable endpoint.",
            get(a.outboundNoEndpoint));
  m.family("ugate_ambient_inbound_total", "counter", "Inbound mesh streams to ambient workloads, by authorization verdict.");
  m.sample("ugate_ambient_inbound_total", {{"verdict", "allowed"}}, get(a.inboundAllowed));
  m.sample("ugate_ambient_inbound_total", {{"verdict", "denied"}}, get(a.inboundDenied));
}

}  // namespace ugate::xds

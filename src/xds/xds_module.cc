#include "xds/xds_module.h"

#include <ugate/metrics.h>
#include <ugate/worker_context.h>

#include "xds/ads_server.h"
#include "xds/messages.h"

namespace ugate::xds {

XdsType xdsTypeOf(std::string_view typeUrl) {
  if (typeUrl == kListenerType) return XdsType::Lds;
  if (typeUrl == kRouteConfigurationType) return XdsType::Rds;
  if (typeUrl == kClusterType) return XdsType::Cds;
  if (typeUrl == kClusterLoadAssignmentType) return XdsType::Eds;
  return XdsType::Other;
}

std::string_view xdsTypeName(XdsType t) {
  switch (t) {
    case XdsType::Lds: return "lds";
    case XdsType::Rds: return "rds";
    case XdsType::Cds: return "cds";
    case XdsType::Eds: return "eds";
    case XdsType::Other:
    case XdsType::Count: break;
  }
  return "other";
}

ModuleWorkerPtr XdsModule::newWorker(WorkerContext& w) {
  if (w.index() != 0) return nullptr;
  return std::make_unique<AdsServer>(w, counters_);
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
}

}  // namespace ugate::xds

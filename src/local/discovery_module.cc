#include "local/discovery_module.h"

#include <spdlog/spdlog.h>

#include <ugate/json_writer.h>
#include <ugate/metrics.h>
#include <ugate/time.h>
#include <ugate/worker_context.h>

#include "auth/tls_provider.h"
#include "local/discovery_config.h"
#include "local/discovery_worker.h"

namespace ugate::local {

std::string_view sendCauseName(SendCause c) {
  switch (c) {
    case SendCause::Start: return "start";
    case SendCause::Interval: return "interval";
    case SendCause::Change: return "change";
    case SendCause::Reply: return "reply";
    case SendCause::Count: break;
  }
  return "unknown";
}

int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(realTimeSource().systemTime().time_since_epoch()).count();
}

void DiscoveryShared::publish(std::shared_ptr<const DiscoveryView> v) {
  std::lock_guard<std::mutex> g(mu_);
  view_ = std::move(v);
}

std::shared_ptr<const DiscoveryView> DiscoveryShared::view() const {
  std::lock_guard<std::mutex> g(mu_);
  return view_;
}

ModuleWorkerPtr DiscoveryModule::newWorker(WorkerContext& w) {
  if (w.index() != 0) return nullptr;  // one worker owns the sockets and the table
  auth::PrivateKey key;
  std::string keyError;
  if (discoveryConfig(w.config()).enabled) {
    // Main thread, before the workers start: the same files (and the same key) TLS loads next.
    auth::CredentialSource src(w.config());
    auto creds = src.load();
    if (creds) {
      key = creds->key;
    } else {
      keyError = creds.error().detail;
    }
  }
  return std::make_unique<DiscoveryWorker>(w, shared_, std::move(key), std::move(keyError));
}

void DiscoveryModule::renderMetrics(MetricsWriter& m) const {
  const DiscoveryCounters& c = shared_.counters;
  auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  m.family("ugate_discovery_sent_total", "counter", "Discovery announcements sent, by cause.");
  for (size_t i = 0; i < c.sent.size(); ++i) {
    m.sample("ugate_discovery_sent_total", {{"cause", sendCauseName(static_cast<SendCause>(i))}}, get(c.sent[i]));
  }
  m.counter("ugate_discovery_send_errors_total", "Discovery announcements the kernel refused to send.",
            get(c.sendErrors));
  m.counter("ugate_discovery_received_total", "Discovery announcements accepted (verified and fresh).",
            get(c.received));
  m.family("ugate_discovery_rejected_total", "counter", "Discovery datagrams dropped, by reason.");
  for (size_t i = 1; i < c.rejected.size(); ++i) {
    m.sample("ugate_discovery_rejected_total", {{"reason", rejectName(static_cast<Reject>(i))}}, get(c.rejected[i]));
  }
  m.counter("ugate_discovery_expired_total", "Neighbours removed after not announcing for discovery.expire.",
            get(c.expired));
  m.counter("ugate_discovery_link_events_total", "Interface and address changes reported by netlink.",
            get(c.linkEvents));
  m.counter("ugate_discovery_socket_errors_total", "Interfaces whose discovery socket could not be set up.",
            get(c.socketErrors));
  auto v = shared_.view();
  m.gauge("ugate_discovery_neighbours", "Neighbours known (heard within discovery.expire).",
          static_cast<uint64_t>(v->neighbours.size()));
  m.gauge("ugate_discovery_sockets", "Discovery sockets open (one per interface and family).",
          static_cast<uint64_t>(v->interfaces.size()));
}

std::string discoveryJson(const DiscoveryView& v, int64_t wallMs) {
  std::string o = "{";
  JsonFields(o, false, ", ", ": ")
      .str("state", v.state)
      .str("id", v.nodeId)
      .str("name", v.name)
      .unum("tcp_port", v.tcpPort)
      .unum("quic_port", v.quicPort);
  o += ",\n\"interfaces\": [";
  for (size_t i = 0; i < v.interfaces.size(); ++i) {
    if (i) o += ", ";
    appendJsonString(o, v.interfaces[i]);
  }
  o += "],\n\"neighbours\": [";
  for (size_t i = 0; i < v.neighbours.size(); ++i) {
    const Neighbour& n = v.neighbours[i];
    std::vector<std::string> addresses;
    for (const IpAddr& a : n.addresses) addresses.push_back(a.str());
    o += i ? ",\n  {" : "\n  {";
    JsonFields(o, false, ", ", ": ")
        .str("name", n.name)
        .str("id", n.nodeId)
        .str("interface", n.interface)
        .str("source", n.source)
        .unum("tcp_port", n.tcpPort)
        .unum("quic_port", n.quicPort)
        .num("last_seen_unix_ms", n.lastSeenWallMs)
        .num("last_seen_ms_ago", wallMs - n.lastSeenWallMs)
        .num("first_seen_ms_before_last", std::chrono::duration_cast<Duration>(n.lastSeen - n.firstSeen).count())
        .strs("addresses", addresses);
    o += "}";
  }
  o += v.neighbours.empty() ? "]}\n" : "\n]}\n";
  return o;
}

AdminReply DiscoveryModule::handleAdmin(std::string_view path) const {
  if (path != "/discovery") return Module::handleAdmin(path);
  return {200, "application/json", discoveryJson(*shared_.view(), wallClockMs())};
}

}  // namespace ugate::local

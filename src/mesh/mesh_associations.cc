// The association role: this node's associations with its gateways (`upstreams`), dialled with
// ALPN h2r, reconnected with exponential backoff and jitter, each state published for /nodes.
#include "mesh/mesh_associations.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <spdlog/spdlog.h>

#include "mesh/mesh_conn.h"
#include "mesh/mesh_module.h"
#include "mesh/mesh_stats.h"

namespace ugate::mesh {

MeshAssociations::~MeshAssociations() {
  for (const auto& [name, u] : upstreams_) hub_.shared().upstreams.remove(name, hub_.worker().index());
}

// This node keeps one connection to each of its gateways, spread over the workers.
void MeshAssociations::apply() {
  const size_t nworkers = std::max<size_t>(1, hub_.shared().workers.size());
  std::map<std::string, const UpstreamConfig*> want;
  const auto& ups = meshConfig(hub_.cfg()).upstreams;
  for (size_t i = 0; i < ups.size(); ++i) {
    if (i % nworkers == static_cast<size_t>(hub_.worker().index())) want[ups[i].name] = &ups[i];
  }
  for (auto it = upstreams_.begin(); it != upstreams_.end();) {
    auto w = want.find(it->first);
    bool same = w != want.end() && w->second->address.str() == it->second->cfg.address.str() &&
                w->second->id == it->second->cfg.id && w->second->transport == it->second->cfg.transport &&
                w->second->quicAddress.str() == it->second->cfg.quicAddress.str();
    if (same) {
      ++it;
      continue;
    }
    if (MeshWorker::Conn* c = hub_.findConn(it->second->conn); c != nullptr) c->goAway();
    hub_.shared().upstreams.remove(it->first, hub_.worker().index());
    it = upstreams_.erase(it);
  }
  if (draining_) return;
  for (const auto& [name, u] : want) {
    if (upstreams_.count(name)) continue;
    auto up = std::make_unique<Upstream>();
    up->cfg = *u;
    Upstream* raw = up.get();
    upstreams_[name] = std::move(up);
    dial(*raw);
  }
}

void MeshAssociations::dial(Upstream& u) {
  if (draining_) return;
  bump(hub_.shared().counters.associationDials);
  const uint64_t h = hub_.shared().nodes.nextHandle();
  auto c = std::make_unique<MeshWorker::Conn>(hub_, MeshWorker::Conn::Kind::Association, h);
  c->target = u.cfg.address;
  c->pinnedId = u.cfg.id;
  c->upstream = u.cfg.name;
  if (u.cfg.transport == MeshTransport::Quic || (u.cfg.transport == MeshTransport::Auto && !u.h2Next)) {
    c->transport = MeshTransport::Quic;
    c->autoFallback = u.cfg.transport == MeshTransport::Auto;
    c->target = u.cfg.quicAddress;
    bump(hub_.shared().counters.quicConnections);
  }
  u.h2Next = false;
  u.conn = h;
  publish(u, UpstreamStatus::State::Connecting);
  hub_.dialConn(hub_.addConn(std::move(c)));
}

void MeshAssociations::onUp(const std::string& name, const std::string& peerId) {
  auto it = upstreams_.find(name);
  if (it == upstreams_.end()) return;
  // attempts start over only once the association has stayed up a while (schedule), so a gateway
  // that accepts and drops at once still gets exponential backoff.
  Upstream& u = *it->second;
  u.upSince = hub_.worker().reactor().now();
  u.gatewayId = peerId;
  publish(u, UpstreamStatus::State::Connected);
}

void MeshAssociations::onGone(const std::string& name, uint64_t handle, const std::string& why, bool autoQuic) {
  if (auto it = upstreams_.find(name); it != upstreams_.end() && it->second->conn == handle) {
    it->second->conn = 0;
    Upstream& u = *it->second;
    if (autoQuic && u.upSince == MonotonicTime{} && !draining_) {
      // transport auto: QUIC did not come up; HTTP/2 now, without waiting for the backoff.
      bump(hub_.shared().counters.autoFallbacks);
      spdlog::warn("mesh: upstream {}: QUIC association to {} failed ({}); transport auto falls back to HTTP/2 at {}",
                   u.cfg.name, u.cfg.quicAddress.str(), why, u.cfg.address.str());
      u.h2Next = true;
      hub_.worker().reactor().defer([this, name] {
        if (auto i = upstreams_.find(name); i != upstreams_.end() && i->second->conn == 0) dial(*i->second);
      });
      return;
    }
    schedule(*it->second, why.empty() ? "closed" : why);
  }
}

void MeshAssociations::schedule(Upstream& u, const std::string& why) {
  if (draining_) return;
  const MeshConfig& m = meshConfig(hub_.cfg());
  Reactor& r = hub_.worker().reactor();
  // An association that stayed up a while starts over at the minimum delay.
  if (u.upSince != MonotonicTime{} && r.now() - u.upSince > std::chrono::seconds(30)) u.attempts = 0;
  u.upSince = {};
  double delay = static_cast<double>(m.reconnectMin.count()) * std::pow(2.0, std::min(u.attempts, 20));
  delay = std::min(delay, static_cast<double>(m.reconnectMax.count()));
  static thread_local std::mt19937 rng{std::random_device{}()};
  // Jitter after the cap, downwards only: nodes that all reached reconnectMax still do not dial in
  // lockstep, and the delay never exceeds reconnectMax.
  delay *= std::uniform_real_distribution<double>(0.8, 1.0)(rng);
  ++u.attempts;
  if (!u.timer) {
    const std::string name = u.cfg.name;
    u.timer = r.createTimer([this, name] {
      if (auto it = upstreams_.find(name); it != upstreams_.end() && it->second->conn == 0) dial(*it->second);
    });
  }
  auto d = Duration(static_cast<int64_t>(delay));
  u.lastError = why;
  publish(u, UpstreamStatus::State::BackingOff, d);
  if (hub_.worker().logBudget()) {
    spdlog::info("mesh: reconnecting to gateway {} in {} ms (attempt {}; {})", u.cfg.address.str(), d.count(),
                 u.attempts, why);
  }
  u.timer->enable(d);
}

void MeshAssociations::publish(const Upstream& u, UpstreamStatus::State state, Duration retryIn) {
  UpstreamStatus st;
  st.name = u.cfg.name;
  st.address = u.cfg.address.str();
  st.gatewayId = u.gatewayId.empty() ? u.cfg.id : upper(u.gatewayId);
  st.state = state;
  st.sinceUnixMs = wallMs();
  st.attempts = u.attempts;
  if (state == UpstreamStatus::State::BackingOff) st.nextRetryUnixMs = st.sinceUnixMs + retryIn.count();
  st.lastError = u.lastError;
  st.owner = hub_.worker().index();
  hub_.shared().upstreams.set(st);
}

void MeshAssociations::drain() {
  draining_ = true;
  for (auto& [name, u] : upstreams_) {
    if (u->timer) u->timer->disable();
  }
}

}  // namespace ugate::mesh

// This node's associations with its gateways (`upstreams`): dial with ALPN h2r, reconnect with
// exponential backoff and jitter, publish each state for /nodes; and the worker's housekeeping
// (idle pooled connections) and drain.
#include <algorithm>
#include <cmath>
#include <random>

#include <spdlog/spdlog.h>

#include "mesh/mesh_conn.h"
#include "mesh/mesh_stats.h"
#include "mesh/node_table.h"

namespace ugate::mesh {

namespace {
constexpr Duration kHousekeeping{5000};
}  // namespace

// Upstream associations: this node keeps one connection to each of its gateways, spread over the
// workers; the gateway sends us CONNECTs over it.
void MeshWorker::configApplied(const Config&) {
  if (!housekeeping_) {
    housekeeping_ = worker_.reactor().createTimer([this] { housekeeping(); });
    housekeeping_->enable(kHousekeeping);
  }
  const size_t nworkers = std::max<size_t>(1, shared_.workers.size());
  std::map<std::string, const UpstreamConfig*> want;
  const auto& ups = meshConfig(cfg()).upstreams;
  for (size_t i = 0; i < ups.size(); ++i) {
    if (i % nworkers == static_cast<size_t>(worker_.index())) want[ups[i].name] = &ups[i];
  }
  for (auto it = upstreams_.begin(); it != upstreams_.end();) {
    auto w = want.find(it->first);
    bool same = w != want.end() && w->second->address.str() == it->second->cfg.address.str() &&
                w->second->id == it->second->cfg.id;
    if (same) {
      ++it;
      continue;
    }
    if (auto c = conns_.find(it->second->conn); c != conns_.end() && c->second->h2) c->second->h2->goAway();
    shared_.upstreams.remove(it->first, worker_.index());
    it = upstreams_.erase(it);
  }
  if (draining_) return;
  for (const auto& [name, u] : want) {
    if (upstreams_.count(name)) continue;
    auto up = std::make_unique<Upstream>();
    up->cfg = *u;
    Upstream* raw = up.get();
    upstreams_[name] = std::move(up);
    dialUpstream(*raw);
  }
}

void MeshWorker::dialUpstream(Upstream& u) {
  if (draining_) return;
  bump(shared_.counters.associationDials);
  const uint64_t h = shared_.nodes.nextHandle();
  auto c = std::make_unique<Conn>(*this, Conn::Kind::Association, h);
  c->target = u.cfg.address;
  c->pinnedId = u.cfg.id;
  c->upstream = u.cfg.name;
  u.conn = h;
  publish(u, UpstreamStatus::State::Connecting);
  Conn* raw = c.get();
  conns_[h] = std::move(c);
  dialConn(*raw);
}

void MeshWorker::scheduleUpstream(Upstream& u, const std::string& why) {
  if (draining_) return;
  const MeshConfig& m = meshConfig(cfg());
  // An association that stayed up a while starts over at the minimum delay.
  if (u.upSince != MonotonicTime{} && worker_.reactor().now() - u.upSince > std::chrono::seconds(30)) u.attempts = 0;
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
    u.timer = worker_.reactor().createTimer([this, name] {
      if (auto it = upstreams_.find(name); it != upstreams_.end() && it->second->conn == 0) dialUpstream(*it->second);
    });
  }
  auto d = Duration(static_cast<int64_t>(delay));
  u.lastError = why;
  publish(u, UpstreamStatus::State::BackingOff, d);
  if (worker_.logBudget()) {
    spdlog::info("mesh: reconnecting to gateway {} in {} ms (attempt {}; {})", u.cfg.address.str(), d.count(),
                 u.attempts, why);
  }
  u.timer->enable(d);
}

void MeshWorker::publish(const Upstream& u, UpstreamStatus::State state, Duration retryIn) {
  UpstreamStatus st;
  st.name = u.cfg.name;
  st.address = u.cfg.address.str();
  st.gatewayId = u.gatewayId.empty() ? u.cfg.id : upper(u.gatewayId);
  st.state = state;
  st.sinceUnixMs = wallMs();
  st.attempts = u.attempts;
  if (state == UpstreamStatus::State::BackingOff) st.nextRetryUnixMs = st.sinceUnixMs + retryIn.count();
  st.lastError = u.lastError;
  st.owner = worker_.index();
  shared_.upstreams.set(st);
}

void MeshWorker::housekeeping() {
  housekeeping_->enable(kHousekeeping);
  const MonotonicTime now = worker_.reactor().now();
  std::vector<Conn*> idle;
  for (auto& [h, c] : conns_) {
    if (c->kind != Conn::Kind::Pool || !c->ready()) continue;
    if (c->h2->activeStreams() > 0) {
      c->idleSince = now;
    } else if (now - c->idleSince > meshConfig(cfg()).idleConnectionTimeout) {
      idle.push_back(c.get());
    }
  }
  for (Conn* c : idle) c->h2->goAway();
}

void MeshWorker::drain() {
  draining_ = true;
  for (auto& [name, u] : upstreams_) {
    if (u->timer) u->timer->disable();
  }
  for (auto& [h, c] : conns_) {
    if (c->h2 && !c->h2->closed()) c->h2->goAway();
  }
}

}  // namespace ugate::mesh

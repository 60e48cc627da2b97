// The worker's mesh lifecycle: configuration changes (the association role follows them), the
// housekeeping of idle pooled connections, and drain.
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

// After each config: the housekeeping timer, and the association role follows the new upstreams.
void MeshWorker::configApplied(const Config&) {
  if (!housekeeping_) {
    housekeeping_ = worker_.reactor().createTimer([this] { housekeeping(); });
    housekeeping_->enable(kHousekeeping);
  }
  assoc_.apply();
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
  assoc_.drain();
  for (auto& [h, c] : conns_) {
    if (c->h2 && !c->h2->closed()) c->h2->goAway();
  }
}

}  // namespace ugate::mesh

#pragma once
// MeshAssociations: this node's side of its associations with its gateways (`upstreams`), on one
// worker — the association role of the mesh. Each upstream is held by one worker (they are spread
// over the workers); this one dials those that fall to it with ALPN h2r (the gateway then sends us
// CONNECTs over it), reconnects with exponential backoff and jitter, and publishes each state for
// /nodes. The connections themselves live in the worker's table (MeshWorker).
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <ugate/config.h>
#include <ugate/reactor.h>
#include <ugate/time.h>

#include "mesh/mesh_config.h"
#include "mesh/node_table.h"

namespace ugate::mesh {

class MeshWorker;

class MeshAssociations {
 public:
  explicit MeshAssociations(MeshWorker& hub) : hub_(hub) {}
  /** Forgets its upstreams in the shared table (the worker is going away). */
  ~MeshAssociations();
  /** apply: hold the upstreams of the current config that fall to this worker; GOAWAY the others. */
  void apply();
  /** onUp: the association connection to upstream `name` is ready; the gateway is node `peerId`. */
  void onUp(const std::string& name, const std::string& peerId);
  /**
   * onGone: the association connection `handle` of upstream `name` closed (why): dial again later.
   * autoQuic: it was a QUIC attempt of transport auto; one that never came up is retried over
   * HTTP/2 at once (logged and counted).
   */
  void onGone(const std::string& name, uint64_t handle, const std::string& why, bool autoQuic = false);
  /** drain: no more dials (shutdown). */
  void drain();

 private:
  struct Upstream {
    UpstreamConfig cfg;
    uint64_t conn{0};
    int attempts{0};  // failed attempts since the association was last up for 30 s
    TimerPtr timer;
    MonotonicTime upSince{};
    std::string gatewayId;  // learned from the gateway's certificate
    std::string lastError;
    bool h2Next{false};  // transport auto: the QUIC attempt failed, the next one is HTTP/2
  };
  void dial(Upstream& u);
  void schedule(Upstream& u, const std::string& why);
  /** publish records an upstream association's state for /nodes (UpstreamTable). */
  void publish(const Upstream& u, UpstreamStatus::State state, Duration retryIn = Duration(0));

  MeshWorker& hub_;
  std::map<std::string, std::unique_ptr<Upstream>> upstreams_;  // by upstream name
  bool draining_{false};
};

}  // namespace ugate::mesh

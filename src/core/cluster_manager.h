#pragma once
// ClusterManager: the upstream clusters' life. The main thread builds each config's first snapshot
// (prepare) and hands it to every worker with the config; from then on one owner, on worker 0's
// thread, keeps it current — names re-resolved, active health checks, outlier ejections — and
// publishes each change as a new immutable ClusterSet posted to every worker (include/ugate/cluster.h).
// A later xDS client feeds CDS/EDS into the same owner. /stats and /clusters read the last
// published snapshot and the endpoints' atomic counters.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <ugate/cluster.h>
#include <ugate/config.h>
#include <ugate/metrics.h>

namespace ugate {

class Worker;

class ClusterManager {
 public:
  /** workers: all of them, before their threads start; worker 0 runs the owner. */
  explicit ClusterManager(std::vector<Worker*> workers);
  /** Destroy after the workers' threads stopped and before the workers (timers, probes). */
  ~ClusterManager();

  /**
   * prepare (main thread): cfg's snapshot, carrying over from the last published one the
   * resolved addresses of names, health, ejections and counters of endpoints that stay.
   */
  ClusterSetPtr prepare(const Config& cfg);
  /** start (main thread): every worker was posted `set` with cfg; the owner takes over from it. */
  void start(ConfigPtr cfg, ClusterSetPtr set);
  /** current: the snapshot published last (any thread; a mutex, never taken on the data path). */
  ClusterSetPtr current() const;

  /** renderMetrics: ugate_cluster_* families for /stats (main thread). */
  void renderMetrics(MetricsWriter& m) const;
  /** renderJson: the /clusters document: each cluster, its endpoints, health, weight, active, ejection. */
  std::string renderJson() const;
  /**
   * renderDynamicJson: the clusters modules defined at run time (xDS) as a JSON array of
   * {name, source, version, endpoints}, for /config_dump; "" when there are none.
   */
  std::string renderDynamicJson() const;

 private:
  class Owner;
  /** publish (owner thread): s goes to every worker and becomes current(). */
  void publish(ClusterSetPtr s);

  std::vector<Worker*> workers_;
  mutable std::mutex mu_;  // mu_: guards current_ (publish on worker 0, prepare and admin on main)
  ClusterSetPtr current_;
  uint64_t generation_{0};        // main thread only
  std::unique_ptr<Owner> owner_;  // used on worker 0's thread only
};

}  // namespace ugate

#pragma once
// A worker's side of the upstream clusters: the snapshot it was last given, and per cluster the
// load-balancing state of its policy. Sans-I/O (time and the client are passed in), so the pickers
// are unit-tested without sockets (tests/unit/core/cluster_lb_test.cc).
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <ugate/cluster.h>

namespace ugate {

/** ClusterLb: one cluster's load-balancing state on one worker. */
class ClusterLb {
 public:
  explicit ClusterLb(uint64_t seed) : rng_(seed | 1) {}
  /**
   * pick: see ClusterDialer::pick. `slot` is the worker's stats slot (least_connections and
   * random_two compare that worker's active streams per endpoint).
   */
  int pick(const Cluster& c, size_t slot, const SocketAddress& client, std::span<const SocketAddress> tried,
           MonotonicTime now);

 private:
  /** candidates fills cand_ with the endpoints a pick may choose from (see ClusterDialer::pick). */
  void candidates(const Cluster& c, std::span<const SocketAddress> tried, MonotonicTime now);
  int roundRobin(const Cluster& c);
  int leastConnections(const Cluster& c, size_t slot);
  int randomTwo(const Cluster& c, size_t slot);
  int hashSource(const Cluster& c, const SocketAddress& client) const;
  size_t weightedRandom(const Cluster& c, int exclude);
  uint64_t next();

  std::vector<int64_t> current_;  // current_: smooth weighted round robin's running weights
  std::vector<int> cand_;         // cand_: scratch, the candidates of the pick in progress
  size_t cursor_{0};              // cursor_: where least_connections starts looking (spreads ties)
  uint64_t rng_;
};

/**
 * WorkerClusters: the ClusterDialer of one worker. `eject` is called (on the worker's thread)
 * when an endpoint's failure streak reaches the cluster's outlier threshold; the cluster manager
 * decides and publishes.
 */
class WorkerClusters final : public ClusterDialer {
 public:
  using EjectFn = std::function<void(const std::string& cluster, const ClusterEndpoint& e)>;
  WorkerClusters(size_t slot, EjectFn eject) : slot_(slot), eject_(std::move(eject)) {}
  /** setSet installs s unless the current snapshot is newer (snapshots may arrive out of order). */
  void setSet(ClusterSetPtr s);
  const ClusterSetPtr& set() const { return set_; }

  // ugate::ClusterDialer
  ClusterPtr find(std::string_view name) const override;
  int pick(const Cluster& c, const SocketAddress& client, std::span<const SocketAddress> tried,
           MonotonicTime now) override;
  void connectResult(const Cluster& c, size_t i, bool ok) override;
  size_t statsSlot() const override { return slot_; }

 private:
  size_t slot_;
  EjectFn eject_;
  ClusterSetPtr set_;
  std::map<std::string, ClusterLb, std::less<>> lb_;
};

/** endpointHash: a stable 64-bit hash of an address (hash_source; also used as a key). */
uint64_t endpointHash(const SocketAddress& a, bool withPort);

}  // namespace ugate

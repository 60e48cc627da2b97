#pragma once
// Upstream clusters at run time. A ClusterSet is an immutable snapshot of every cluster: its
// endpoints (resolved addresses, weights), their health and ejections. The cluster manager builds
// it from the config (and, later, from xDS CDS/EDS) and posts it to every worker; a worker's
// sessions read only their worker's copy, so the data path takes no lock. What changes per stream
// (counters, active streams, failure streaks) lives in EndpointStats, which outlives snapshots.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/config.h>
#include <ugate/socket_address.h>
#include <ugate/stats.h>
#include <ugate/time.h>

namespace ugate {

/** EndpointWorkerStats: one endpoint's counters on one worker (single writer: that worker). */
struct EndpointWorkerStats {
  Counter connections;      // connects that succeeded
  Counter connectFailures;  // connects refused, timed out or unreachable
  Gauge active;             // streams connecting to or spliced with it now
};

/**
 * EndpointStats: an endpoint's counters, one set per worker, and its failure streak. Shared by the
 * snapshots that contain the endpoint (same cluster, configured name and address).
 */
class EndpointStats {
 public:
  /** Up to kInlineWorkers workers' counters live in the object itself (one allocation per endpoint). */
  static constexpr size_t kInlineWorkers = 4;
  explicit EndpointStats(size_t workers) : workers_(workers ? workers : 1) {
    if (workers_ > kInlineWorkers) {
      heap_ = std::make_unique<EndpointWorkerStats[]>(workers_);
      perWorker_ = heap_.get();
    }
  }
  EndpointStats(const EndpointStats&) = delete;
  EndpointStats& operator=(const EndpointStats&) = delete;
  /** worker: worker i's counters (i is clamped: a test's fake worker may not be counted). */
  EndpointWorkerStats& worker(size_t i) { return perWorker_[i < workers_ ? i : 0]; }
  int64_t active() const;
  uint64_t connections() const;
  uint64_t connectFailures() const;
  /** active on one worker (least_connections compares these). */
  int64_t activeOn(size_t i) const { return perWorker_[i < workers_ ? i : 0].active.value(); }

  /** consecutiveFailures: connect failures since the last success, from every worker. */
  std::atomic<uint32_t> consecutiveFailures{0};
  // Written by the cluster manager only:
  Counter ejections;     // times it was ejected by outlier detection
  Counter checksPassed;  // active health checks
  Counter checksFailed;

 private:
  EndpointWorkerStats inline_[kInlineWorkers];
  std::unique_ptr<EndpointWorkerStats[]> heap_;  // more workers than kInlineWorkers
  EndpointWorkerStats* perWorker_{inline_};
  size_t workers_;
};

/** ClusterStats: a cluster's own counters. */
class ClusterStats {
 public:
  explicit ClusterStats(size_t workers)
      : retries_(std::make_unique<Counter[]>(workers ? workers : 1)),
        noEndpoint_(std::make_unique<Counter[]>(workers ? workers : 1)),
        workers_(workers ? workers : 1) {}
  /** retries: connects to another endpoint after a failed one (worker i writes slot i). */
  Counter& retries(size_t i) { return retries_[i < workers_ ? i : 0]; }
  /** noEndpoint: streams failed because the cluster had no endpoint at all. */
  Counter& noEndpoint(size_t i) { return noEndpoint_[i < workers_ ? i : 0]; }
  uint64_t retriesTotal() const;
  uint64_t noEndpointTotal() const;
  Counter ejectionsOverflow;  // ejections refused by maxEjectedPercent (cluster manager only)

 private:
  std::unique_ptr<Counter[]> retries_;
  std::unique_ptr<Counter[]> noEndpoint_;
  size_t workers_;
};

/** ClusterEndpoint: one address of a cluster, in a snapshot (immutable). */
struct ClusterEndpoint {
  // name: as configured, "host:port" (a name resolving to n addresses gives n endpoints); empty for a
  // module's endpoint (ClusterUpdater), whose name is its address (not formatted per update: label()).
  std::string name;
  SocketAddress address;  // what is dialled
  uint32_t weight{1};
  bool healthy{true};            // active health checks (always true without them)
  MonotonicTime ejectedUntil{};  // outlier ejection: not chosen before this time
  std::shared_ptr<EndpointStats> stats;
  bool available(MonotonicTime now) const { return healthy && ejectedUntil <= now; }
  /** label: the name to show (/clusters, logs): name, or the address when it has none. */
  std::string label() const { return name.empty() ? address.str() : name; }
};

/** Cluster: one cluster in a snapshot (immutable). */
struct Cluster {
  std::string name;
  LbPolicy lb{LbPolicy::RoundRobin};
  uint32_t connectRetries{2};
  OutlierConfig outlier;
  std::vector<ClusterEndpoint> endpoints;
  std::shared_ptr<ClusterStats> stats;
  std::string source;   // "" for the config's `clusters`; else the module that defines it ("xds")
  std::string version;  // the source's version of it ("" for the config's)
};
using ClusterPtr = std::shared_ptr<const Cluster>;

/**
 * ClusterSet: every cluster, as published to the workers. (generation, seq) orders the snapshots:
 * generation counts configs applied, seq the updates (DNS, health, ejections) within one, so a
 * worker never goes back to an older snapshot that arrived late.
 */
struct ClusterSet {
  uint64_t generation{0};
  uint64_t seq{0};
  std::map<std::string, ClusterPtr, std::less<>> clusters;
  ClusterPtr find(std::string_view name) const {
    auto it = clusters.find(name);
    return it == clusters.end() ? nullptr : it->second;
  }
  bool newerThan(const ClusterSet& o) const {
    return generation != o.generation ? generation > o.generation : seq > o.seq;
  }
};
using ClusterSetPtr = std::shared_ptr<const ClusterSet>;

/**
 * ClusterDialer: a worker's clusters as its sessions see them (WorkerContext::clusters()). Used on
 * the worker's thread only.
 */
class ClusterDialer {
 public:
  virtual ~ClusterDialer() = default;
  /** find: cluster `name` in the worker's current snapshot, or null. */
  virtual ClusterPtr find(std::string_view name) const = 0;
  /**
   * pick chooses the endpoint (an index into c.endpoints) for a stream from `client` by the
   * cluster's policy: among available endpoints not in `tried`; then available ones again; with
   * none available (every endpoint unhealthy or ejected: panic, as Envoy) among all. -1: the
   * cluster has no endpoint.
   */
  virtual int pick(const Cluster& c, const SocketAddress& client, std::span<const SocketAddress> tried,
                   MonotonicTime now) = 0;
  /** connectResult: a connect to c.endpoints[i] ended: counters, the failure streak, ejection. */
  virtual void connectResult(const Cluster& c, size_t i, bool ok) = 0;
  /** statsSlot: this worker's slot in EndpointStats and ClusterStats. */
  virtual size_t statsSlot() const = 0;
};

/** DynamicEndpoint: one endpoint of a DynamicCluster. */
struct DynamicEndpoint {
  SocketAddress address;
  uint32_t weight{1};
  bool healthy{true};  // as the source says (xDS health_status); no active checks run on it
  bool operator==(const DynamicEndpoint&) const = default;
};

/** DynamicCluster: a cluster a module defines at run time (xDS CDS+EDS), as it hands it over. */
struct DynamicCluster {
  std::string name;
  std::string source;   // the module ("xds"): shown on /clusters
  std::string version;  // the source's version: shown on /clusters
  LbPolicy lb{LbPolicy::RoundRobin};
  uint32_t connectRetries{2};
  std::vector<DynamicEndpoint> endpoints;
  bool operator==(const DynamicCluster&) const = default;
};

/**
 * ClusterUpdater: lets a module add, replace and remove clusters beside the config's `clusters`
 * (WorkerContext::clusterUpdater(), on worker 0's thread only). Each change becomes a new
 * ClusterSet posted to every worker, like a health change: streams in flight keep the endpoint
 * they have, new streams pick from the new endpoints. Endpoints that stay (same address) keep
 * their counters and ejections (and their ClusterEndpoint: a 10 000-endpoint update that changes a
 * few costs worker 0 a copy of the list, not a rebuild). A module's clusters outlive reloads until
 * it removes them.
 */
class ClusterUpdater {
 public:
  virtual ~ClusterUpdater() = default;
  /** setCluster adds or replaces c.name; false (nothing changed) when the config defines that name. */
  virtual bool setCluster(DynamicCluster c) = 0;
  /** removeCluster removes a cluster set by setCluster (a name it did not set is ignored). */
  virtual void removeCluster(std::string_view name) = 0;
};

/** EndpointLease: one stream counted in an endpoint's active streams on a worker, until released. */
class EndpointLease {
 public:
  EndpointLease() = default;
  EndpointLease(std::shared_ptr<EndpointStats> s, size_t slot) : s_(std::move(s)), slot_(slot) {
    if (s_) s_->worker(slot_).active.inc();
  }
  EndpointLease(EndpointLease&& o) noexcept : s_(std::move(o.s_)), slot_(o.slot_) {}
  EndpointLease& operator=(EndpointLease&& o) noexcept {
    if (this != &o) {
      release();
      s_ = std::move(o.s_);
      slot_ = o.slot_;
    }
    return *this;
  }
  EndpointLease(const EndpointLease&) = delete;
  EndpointLease& operator=(const EndpointLease&) = delete;
  ~EndpointLease() { release(); }
  void release() {
    if (s_) s_->worker(slot_).active.dec();
    s_.reset();
  }

 private:
  std::shared_ptr<EndpointStats> s_;
  size_t slot_{0};
};

}  // namespace ugate

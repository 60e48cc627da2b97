#pragma once
// MeshModule: the mesh as a Module (include/ugate/module.h). It parses its config sections
// (mesh_config.cc), owns what the mesh shares between workers (MeshShared), registers the `mesh`
// listener kind, gives each worker its MeshWorker, and serves the mesh's metrics and /nodes.
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/module.h>

#include "http/h2_connection.h"
#include "mesh/mesh_stats.h"
#include "mesh/node_table.h"

namespace ugate::mesh {

class MeshWorker;

/**
 * MeshShared: the mesh's state shared by the workers. `nodes` publishes immutable snapshots (no lock
 * on lookups), `upstreams` is written on association state changes only, `counters` are relaxed
 * atomics. `workers` and `h2` are filled on the main thread before the worker threads start (and
 * `workers` cleared after they stopped), so workers read them without a lock.
 */
struct MeshShared {
  NodeTable nodes{&associationDirectory()};  // mirrored for other modules (ugate.v1.Node over xDS)
  UpstreamTable upstreams;
  MeshCounters counters;
  /**
   * h2: the HTTP/2 counters of each worker's mesh connections (single writer: that worker). They
   * live as long as the module, because a connection handed to deferred deletion may be destroyed
   * after its MeshWorker; /stats sums them.
   */
  std::deque<http::H2Stats> h2;
  std::vector<MeshWorker*> workers;  // by worker index
  /** nodesJson: the admin endpoint's /nodes document (any thread). */
  std::string nodesJson() const;
  /** renderMetrics: the ugate_mesh_* families (any thread). */
  void renderMetrics(MetricsWriter& out) const;
};

class MeshModule final : public Module {
 public:
  std::string_view name() const override { return "mesh"; }
  void registerKinds(ListenerKindRegistry& kinds) override;
  std::vector<std::string> configSections() const override;
  void parseConfig(const nlohmann::json& root, Config& c, cfgjson::ConfigErrors& errs) const override;
  void finishConfig(Config& c, cfgjson::ConfigErrors& errs) const override;
  ModuleWorkerPtr newWorker(WorkerContext& w) override;
  void renderMetrics(MetricsWriter& out) const override { shared_.renderMetrics(out); }
  std::vector<std::string> adminPaths() const override { return {"/nodes"}; }
  AdminReply handleAdmin(std::string_view path) const override;

 private:
  MeshShared shared_;
};

}  // namespace ugate::mesh

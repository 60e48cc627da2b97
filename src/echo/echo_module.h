#pragma once
// The echo module: the skeleton every new module starts from (docs/ARCHITECTURE.md, "How to add a
// module"). Its `echo` listener kind sends every byte a client sends straight back: a target that
// needs no backend process (tests, health probes through the mesh), and the smallest worked example
// of the Module contract: a listener kind that takes its connections itself, state per worker (its
// open connections, closed on drain), metrics of its own. It includes only include/ugate.
#include <atomic>
#include <cstdint>

#include <ugate/module.h>

namespace ugate::echo {

/** EchoCounters: the module's metrics; relaxed atomics added by every worker. */
struct EchoCounters {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> bytes{0};
};

class EchoModule final : public Module {
 public:
  std::string_view name() const override { return "echo"; }
  void registerKinds(ListenerKindRegistry& kinds) override;
  ModuleWorkerPtr newWorker(WorkerContext& w) override;
  void renderMetrics(MetricsWriter& out) const override;

 private:
  EchoCounters counters_;
};

}  // namespace ugate::echo

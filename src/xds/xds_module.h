#pragma once
// The xds module (`xds` section): the ADS server of issue 19 §2 (docs/ARCHITECTURE.md, "ADS
// server"). Worker 0 listens on `xds.server.address` (h2c, gRPC prior knowledge) and serves
// StreamAggregatedResources and DeltaAggregatedResources from the resources of the running config
// (ads_resources.h), pushing changes to every stream on a reload. /stats gets ugate_xds_*.
#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include <ugate/module.h>

namespace ugate::xds {

/** XdsType: the resource types counted apart on /stats (a label). */
enum class XdsType : uint8_t { Lds, Rds, Cds, Eds, Other, Count };
/** xdsTypeOf: the counted type of a type URL. */
XdsType xdsTypeOf(std::string_view typeUrl);
std::string_view xdsTypeName(XdsType t);

/** XdsCounters: relaxed atomics written by worker 0, read by /stats on the main thread. */
struct XdsCounters {
  using PerType = std::array<std::atomic<uint64_t>, static_cast<size_t>(XdsType::Count)>;
  std::atomic<uint64_t> sotwStreams{0};   // open now
  std::atomic<uint64_t> deltaStreams{0};  // open now
  std::atomic<uint64_t> streamsTotal{0};
  std::atomic<uint64_t> connectionsTotal{0};
  PerType requests{};
  PerType acks{};
  PerType nacks{};
  PerType stale{};
  PerType pushes{};     // responses sent
  PerType resources{};  // published now
  std::atomic<uint64_t> listening{0};
  std::atomic<uint64_t> bindErrors{0};
};

class XdsModule final : public Module {
 public:
  std::string_view name() const override { return "xds"; }
  std::vector<std::string> configSections() const override;
  void parseConfig(const nlohmann::json& root, Config& c, cfgjson::ConfigErrors& errs) const override;
  /** newWorker: worker 0 only: it owns the ADS server's socket, connections and streams. */
  ModuleWorkerPtr newWorker(WorkerContext& w) override;
  void renderMetrics(MetricsWriter& out) const override;

 private:
  XdsCounters counters_;
};

}  // namespace ugate::xds

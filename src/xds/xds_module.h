#pragma once
// The xds module (`xds` section): the ADS server of issue 19 §2 (docs/ARCHITECTURE.md, "ADS
// server"). Worker 0 listens on `xds.server.address` (h2c, gRPC prior knowledge) and serves
// StreamAggregatedResources and DeltaAggregatedResources from the resources of the running config
// (ads_resources.h), pushing changes to every stream on a reload; and the ADS client of §3
// (xds.client: CDS + EDS from a control plane become clusters, ads_client.h). /stats gets
// ugate_xds_*, /xds the client's state.
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include <ugate/module.h>

#include "xds/decode_thread.h"

namespace ugate::xds {

/** XdsType: the resource types counted apart on /stats (a label). */
enum class XdsType : uint8_t { Lds, Rds, Cds, Eds, Node, Other, Count };
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
  std::atomic<uint64_t> tlsFailures{0};  // TLS handshakes of the ADS server or client that failed
  std::atomic<uint64_t> mailboxesRefused{0};  // Message names a client may not read (another node's)
  // The ADS client (xds.client):
  std::atomic<uint64_t> clientConnected{0};  // 1 while its ADS call is open
  std::atomic<uint64_t> clientResponses{0};
  std::atomic<uint64_t> clientAcks{0};
  std::atomic<uint64_t> clientNacks{0};
  std::atomic<uint64_t> clientReconnects{0};
  std::atomic<uint64_t> clientClusters{0};  // clusters it defines now
  std::atomic<uint64_t> clientAmbientResources{0};  // Istio ambient resources held now
  std::atomic<uint64_t> clientMessages{0};         // Message envelopes received (new ids)
  std::atomic<uint64_t> clientMessagesDropped{0};  // ... that no inbox took
};

class XdsModule final : public Module {
 public:
  std::string_view name() const override { return "xds"; }
  std::vector<std::string> configSections() const override;
  void parseConfig(const nlohmann::json& root, Config& c, cfgjson::ConfigErrors& errs) const override;
  /** newWorker: worker 0 only: it owns the ADS server's socket, connections and streams. */
  ModuleWorkerPtr newWorker(WorkerContext& w) override;
  void renderMetrics(MetricsWriter& out) const override;
  std::vector<std::string> adminPaths() const override { return {"/xds"}; }
  /** handleAdmin: /xds, the ADS client's state: control plane, versions, clusters it defines. */
  AdminReply handleAdmin(std::string_view path) const override;

  XdsCounters& counters() { return counters_; }
  /** setClientStatus: the client's /xds document (worker 0, on each change). */
  void setClientStatus(std::string json);
  /** decodeThread: where the ADS client decodes big responses (off worker 0's loop). */
  DecodeThread& decodeThread() { return decode_; }

 private:
  /** renderAmbientMetrics: the ADS client's ambient resources and ugate::ambientDirectory()'s counters. */
  void renderAmbientMetrics(MetricsWriter& m, uint64_t resources) const;

  XdsCounters counters_;
  mutable std::mutex mu_;  // mu_: guards clientStatus_ (worker 0 writes, the admin endpoint reads)
  std::string clientStatus_;
  DecodeThread decode_;  // last: joined before the rest goes
};

}  // namespace ugate::xds

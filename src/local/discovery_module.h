#pragma once
// The local discovery module (`discovery` section): worker 0 announces this node on each link by
// signed multicast and keeps the table of neighbours it hears (docs/ARCHITECTURE.md, "Local
// discovery"). /stats gets ugate_discovery_*; the admin path /discovery lists the neighbours.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <ugate/module.h>

#include "local/announcement.h"
#include "local/neighbour_table.h"

namespace ugate::local {

/** SendCause: why an announcement went out (a label of ugate_discovery_sent_total). */
enum class SendCause : uint8_t { Start, Interval, Change, Reply, Count };
std::string_view sendCauseName(SendCause c);

/** DiscoveryCounters: relaxed atomics written by worker 0, read by /stats on the main thread. */
struct DiscoveryCounters {
  std::array<std::atomic<uint64_t>, static_cast<size_t>(SendCause::Count)> sent{};
  std::atomic<uint64_t> sendErrors{0};
  std::atomic<uint64_t> received{0};  // accepted announcements
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Reject::Count)> rejected{};
  std::atomic<uint64_t> expired{0};
  std::atomic<uint64_t> linkEvents{0};  // netlink link/address messages
  std::atomic<uint64_t> socketErrors{0};  // an interface whose socket could not be set up
};

/** DiscoveryView: what the admin path shows; published by worker 0 as an immutable snapshot. */
struct DiscoveryView {
  std::string state{"disabled"};  // disabled | running | no_key | id_mismatch | stopped
  std::string nodeId;
  std::string name;
  uint16_t tcpPort{0};
  uint16_t quicPort{0};
  std::vector<std::string> interfaces;  // "eth0/ipv4", "eth0/ipv6"
  std::vector<Neighbour> neighbours;
};

/** DiscoveryShared: the module's state shared between worker 0 and the main thread. */
struct DiscoveryShared {
  DiscoveryCounters counters;
  void publish(std::shared_ptr<const DiscoveryView> v);
  std::shared_ptr<const DiscoveryView> view() const;

 private:
  mutable std::mutex mu_;  // mu_ guards view_ (admin requests and table changes: off the data path)
  std::shared_ptr<const DiscoveryView> view_ = std::make_shared<DiscoveryView>();
};

class DiscoveryModule final : public Module {
 public:
  std::string_view name() const override { return "local"; }
  std::vector<std::string> configSections() const override;
  void parseConfig(const nlohmann::json& root, Config& c, cfgjson::ConfigErrors& errs) const override;
  /** newWorker: worker 0 only; loads the node key (main thread, startup) when discovery is enabled. */
  ModuleWorkerPtr newWorker(WorkerContext& w) override;
  void renderMetrics(MetricsWriter& out) const override;
  std::vector<std::string> adminPaths() const override { return {"/discovery"}; }
  AdminReply handleAdmin(std::string_view path) const override;

  DiscoveryShared& shared() { return shared_; }

 private:
  DiscoveryShared shared_;
};

/** wallClockMs: the wall clock in ms since the Unix epoch (announcement timestamps, ages). */
int64_t wallClockMs();

/** discoveryJson renders a view (wallMs: our clock now, for each neighbour's age). */
std::string discoveryJson(const DiscoveryView& v, int64_t wallMs);

}  // namespace ugate::local

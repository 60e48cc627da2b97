#pragma once
// The quic module: the `quic` listener kind (QUIC v1 with HTTP/3 and the mesh ALPN), the state the
// workers share (QuicShared: the CID key, the token and stateless-reset secrets, counters), and the
// per-worker connection table (QuicWorker) that routes every datagram to the connection that owns
// its destination CID — on this worker, or handed to the worker whose CID it is.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <ugate/http_endpoint.h>
#include <ugate/module.h>
#include <ugate/socket_address.h>
#include <ugate/worker_context.h>

#include "quic/cid.h"
#include "quic/quic_counters.h"

namespace ugate::quic {

class QuicEndpoint;
class QuicConn;
class QuicWorker;

/**
 * QuicShared: what the workers share. The CID codec and the secrets are made at start and never
 * change; `workers` is filled on the main thread before the worker threads start and each slot
 * cleared only after they stopped, so workers read it without a lock.
 */
struct QuicShared {
  QuicShared();
  CidCodec cids;
  std::array<uint8_t, 32> resetSecret{};  // stateless reset tokens (RFC 9000 §10.3)
  std::array<uint8_t, 32> tokenSecret{};  // Retry and NEW_TOKEN tokens
  QuicCounters counters;
  std::vector<QuicWorker*> workers;  // by worker index
};

/**
 * QuicWorker: the module's state on one worker: every CID of every connection this worker owns,
 * and the endpoints (one per quic listener) that read its sockets.
 */
class QuicWorker final : public ModuleWorker, public AltServiceSource {
 public:
  QuicWorker(WorkerContext& w, QuicShared& shared);
  ~QuicWorker() override;

  void drain() override;
  /** altSvc: h3=":PORT" of a quic listener serving push listener `listener` without client certificates. */
  std::string altSvc(std::string_view listener) const override;

  WorkerContext& ctx() { return w_; }
  QuicShared& shared() { return shared_; }
  uint16_t index() const { return static_cast<uint16_t>(w_.index()); }

  /** CID table: a connection registers each CID it issues (and the client's original DCID). */
  void addCid(std::string_view cid, QuicConn* c) { cids_[std::string(cid)] = c; }
  void removeCid(std::string_view cid) { cids_.erase(std::string(cid)); }
  QuicConn* findCid(std::string_view cid) const {
    auto it = cids_.find(cid);  // per packet: looked up by view, no string made
    return it == cids_.end() ? nullptr : it->second;
  }

  void addEndpoint(QuicEndpoint* e) { endpoints_.push_back(e); }
  void removeEndpoint(QuicEndpoint* e);
  /** endpointFor: this worker's endpoint of listener `name` (null when it has none). */
  QuicEndpoint* endpointFor(const std::string& name) const;

  /** handoff: a datagram for a connection of worker `to` (copied; processed on its thread). */
  void handoff(uint16_t to, const std::string& listener, const uint8_t* data, size_t len,
               const SocketAddress& peer, const SocketAddress& local, uint8_t ecn);

 private:
  WorkerContext& w_;
  QuicShared& shared_;
  /** CidHash: a transparent hash, so lookups take a string_view (CIDs are 16 bytes: past SSO). */
  struct CidHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, QuicConn*, CidHash, std::equal_to<>> cids_;
  std::vector<QuicEndpoint*> endpoints_;
};

class QuicModule final : public Module {
 public:
  std::string_view name() const override { return "quic"; }
  void registerKinds(ListenerKindRegistry& kinds) override;
  void finishConfig(Config& c, cfgjson::ConfigErrors& errs) const override;
  ModuleWorkerPtr newWorker(WorkerContext& w) override;
  void renderMetrics(MetricsWriter& out) const override;

 private:
  QuicShared shared_;
};

}  // namespace ugate::quic

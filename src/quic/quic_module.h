#pragma once
// The quic module: the `quic` listener kind (QUIC v1 with HTTP/3 and the mesh ALPN), the state the
// workers share (QuicShared: the CID key, the token and stateless-reset secrets, counters), and the
// per-worker connection table (QuicWorker) that routes every datagram to the connection that owns
// its destination CID — on this worker, or handed to the worker whose CID it is.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <ugate/module.h>
#include <ugate/socket_address.h>
#include <ugate/worker_context.h>

#include "quic/cid.h"

namespace ugate::quic {

class QuicEndpoint;
class ServerConn;
class QuicWorker;

/** Why a datagram was dropped without reaching a connection (a label of ugate_quic_dropped_total). */
enum class DropReason : uint8_t {
  Malformed,        // not a QUIC packet we can parse (header)
  UnknownConn,      // a short-header packet for no connection we know (a stateless reset may answer)
  NotInitial,       // a long-header packet other than Initial for an unknown connection
  TooSmall,         // an Initial in a datagram under 1200 bytes (RFC 9000 §14.1)
  BadToken,         // a Retry or NEW_TOKEN token that does not verify
  Refused,          // over maxConnections, or no TLS context
  ConnError,        // the connection rejected it (decryption, protocol)
  Truncated,        // larger than the receive buffer
  kCount,
};
std::string_view dropReasonName(DropReason r);

/** QuicCounters: process-wide, relaxed atomics added by every worker. */
struct QuicCounters {
  std::atomic<uint64_t> handshakesOk{0};
  std::atomic<uint64_t> handshakesFailed{0};   // TLS or QUIC error before completion
  std::atomic<uint64_t> handshakeTimeouts{0};
  std::atomic<int64_t> connectionsOpen{0};
  std::atomic<uint64_t> connectionsClosed{0};
  std::atomic<uint64_t> streamsOpened{0};      // requests / mesh streams the peers opened
  std::atomic<uint64_t> streamErrors{0};       // streams ended with an error code (bad header, H3 error)
  std::atomic<uint64_t> packetsIn{0};
  std::atomic<uint64_t> packetsOut{0};
  std::atomic<uint64_t> bytesIn{0};
  std::atomic<uint64_t> bytesOut{0};
  std::atomic<uint64_t> retrySent{0};
  std::atomic<uint64_t> versionNegotiationSent{0};
  std::atomic<uint64_t> statelessResetsSent{0};
  std::atomic<uint64_t> handedToOtherWorker{0};  // datagrams whose CID named another worker
  std::array<std::atomic<uint64_t>, static_cast<size_t>(DropReason::kCount)> dropped{};
  /** RTT of closed connections (smoothed, at close) in buckets: ≤1, ≤5, ≤25, ≤100, ≤500 ms, more. */
  std::array<std::atomic<uint64_t>, 6> rttBuckets{};
  std::atomic<uint64_t> rttSumUs{0};
  void drop(DropReason r) { dropped[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed); }
};

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
class QuicWorker final : public ModuleWorker {
 public:
  QuicWorker(WorkerContext& w, QuicShared& shared);
  ~QuicWorker() override;

  void drain() override;

  WorkerContext& ctx() { return w_; }
  QuicShared& shared() { return shared_; }
  uint16_t index() const { return static_cast<uint16_t>(w_.index()); }

  /** CID table: a connection registers each CID it issues (and the client's original DCID). */
  void addCid(std::string_view cid, ServerConn* c) { cids_[std::string(cid)] = c; }
  void removeCid(std::string_view cid) { cids_.erase(std::string(cid)); }
  ServerConn* findCid(std::string_view cid) const {
    auto it = cids_.find(std::string(cid));
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
  std::unordered_map<std::string, ServerConn*> cids_;
  std::vector<QuicEndpoint*> endpoints_;
};

class QuicModule final : public Module {
 public:
  std::string_view name() const override { return "quic"; }
  void registerKinds(ListenerKindRegistry& kinds) override;
  ModuleWorkerPtr newWorker(WorkerContext& w) override;
  void renderMetrics(MetricsWriter& out) const override;

 private:
  QuicShared shared_;
};

}  // namespace ugate::quic

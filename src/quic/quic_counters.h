#pragma once
// The quic module's counters (process-wide relaxed atomics, rendered on /stats by the module).
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ugate::quic {

/** Why a datagram was dropped without reaching a connection (a label of ugate_quic_dropped_total). */
enum class DropReason : uint8_t {
  Malformed,        // not a QUIC packet we can parse (header)
  UnknownConn,      // a short-header packet for no connection we know (a stateless reset may answer)
  NotInitial,       // a long-header packet other than Initial for an unknown connection
  TooSmall,         // an Initial in a datagram under 1200 bytes (RFC 9000 §14.1)
  BadToken,         // a Retry or NEW_TOKEN token that does not verify
  Refused,          // over maxConnections, draining, or no TLS context
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
  std::atomic<uint64_t> handedToOtherWorker{0};
  // The mesh over QUIC (ALPN ugate, mux_app.h).
  std::atomic<uint64_t> meshDialled{0};       // connections dialled (transport "quic")
  std::atomic<uint64_t> meshAccepted{0};      // connections accepted and handed to the mesh
  std::atomic<uint64_t> meshStreamsOut{0};    // streams this side opened
  std::atomic<uint64_t> meshStreamsIn{0};     // streams the peers opened (header complete)
  std::atomic<uint64_t> meshHeaderErrors{0};  // streams reset for a bad header  // datagrams whose CID named another worker
  // HTTP/3 requests relayed to HTTP/3 origins (routes with "upstreamQuic": true, h3_upstream.h).
  std::atomic<uint64_t> h3UpstreamRequests{0};  // requests relayed
  std::atomic<uint64_t> h3UpstreamErrors{0};    // of those, failed (answered 502/504, or reset mid-body)
  std::array<std::atomic<uint64_t>, static_cast<size_t>(DropReason::kCount)> dropped{};
  /** RTT of closed connections (smoothed, at close) in buckets: ≤1, ≤5, ≤25, ≤100, ≤500 ms, more. */
  std::array<std::atomic<uint64_t>, 6> rttBuckets{};
  std::atomic<uint64_t> rttSumUs{0};
  void drop(DropReason r) { dropped[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed); }
};

}  // namespace ugate::quic

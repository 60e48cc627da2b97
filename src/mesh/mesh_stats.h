#pragma once
// The mesh's process-wide counters (any worker adds), held in MeshShared (mesh_module.h) and
// rendered on /stats by mesh_admin.cc.
#include <array>
#include <atomic>
#include <cstdint>

#include <ugate/listener_stats.h>

#include "http/h2_connection.h"

namespace ugate::mesh {

/** MeshCounters: process-wide mesh metrics; relaxed atomics, added from any worker. */
struct MeshCounters {
  std::atomic<uint64_t> tunnelsOpened{0}, tunnelsFailed{0}, streamsAccepted{0};
  std::array<std::atomic<uint64_t>, kNumErrc> streamsRefused{};  // CONNECTs refused, by reason (Errc)
  std::atomic<uint64_t> loopsRefused{0};        // own node ID already in x-ugate-hops
  std::atomic<uint64_t> hopsExceeded{0};        // x-ugate-hops longer than mesh.maxHops allows
  std::atomic<uint64_t> identityIgnored{0};     // x-ugate-peer from a peer not allowed to assert it
  std::atomic<uint64_t> traceHeadersDropped{0};  // malformed traceparent/tracestate/baggage
  std::atomic<uint64_t> associationsRegistered{0}, associationsRefused{0}, associationsReplaced{0};
  std::atomic<uint64_t> associationDials{0}, associationsUp{0}, poolConnections{0};
  std::atomic<uint64_t> directOpens{0};      // streams opened straight to a neighbour (peer directory)
  std::atomic<uint64_t> directFallbacks{0};  // of those, re-opened routed after the direct dial failed
  // The mesh over QUIC (transport "quic", include/ugate/mux.h).
  std::atomic<uint64_t> quicConnections{0};      // QUIC mesh connections dialled (pools and associations)
  std::atomic<uint64_t> quicStreamsAccepted{0};  // of streamsAccepted, those that came over QUIC
  std::atomic<uint64_t> quicTunnelsOpened{0};    // of tunnelsOpened, those opened over QUIC
  std::atomic<uint64_t> autoFallbacks{0};        // a QUIC attempt (auto, a neighbour's) failed, HTTP/2 tried
};

/** bump adds one to a mesh counter. */
inline void bump(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

}  // namespace ugate::mesh

#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>

#include <ugate/result.h>
#include <ugate/stats.h>

namespace ugate {

constexpr size_t kNumErrc = static_cast<size_t>(Errc::Io) + 1;

/** ListenerStats: counters of one listener on one worker (single writer: that worker). */
struct ListenerStats {
  Counter accepted;
  Gauge active;
  Counter bytesIn;    // from clients
  Counter bytesOut;   // to clients
  Counter spliced;    // streams that used the splice fast path
  Counter overLimit;  // connections refused by limits.maxConnectionsPerWorker
  std::array<Counter, kNumErrc> closes;  // by close reason (Errc)
  // Datagram listeners and relays (UDP flows, SOCKS UDP ASSOCIATE):
  Counter packetsIn;   // datagrams from clients forwarded
  Counter packetsOut;  // datagrams sent to clients
  std::array<Counter, kNumErrc> drops;  // datagrams dropped, by reason (Errc)
};

/** ListenerStatsValues: a plain copy, summed across workers for /stats. */
struct ListenerStatsValues {
  uint64_t accepted{0};
  int64_t active{0};
  uint64_t bytesIn{0}, bytesOut{0}, spliced{0}, overLimit{0};
  std::array<uint64_t, kNumErrc> closes{};
  uint64_t packetsIn{0}, packetsOut{0};
  std::array<uint64_t, kNumErrc> drops{};
  void add(const ListenerStats& s);
  void add(const ListenerStatsValues& s);
};

/** WorkerStatsSnapshot: what one worker reports to the admin thread. */
struct WorkerStatsSnapshot {
  std::map<std::string, ListenerStatsValues> listeners;
  int64_t activeStreams{0};
  uint64_t pipesCreated{0};
  uint64_t pipesPooled{0};
  uint64_t acceptErrors{0};
  uint64_t dnsQueries{0};
};

}  // namespace ugate

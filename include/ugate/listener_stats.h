#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <ugate/result.h>
#include <ugate/stats.h>

namespace ugate {

constexpr size_t kNumErrc = static_cast<size_t>(Errc::Io) + 1;

/** RouteLatency: the latency histograms of one route's streams on one listener and worker. */
struct RouteLatency {
  LatencyHistogram connect;   // route decision to an upstream ready to splice
  LatencyHistogram duration;  // accept to close
};

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
  // Latency (streams of core sessions): connect = route decision to an upstream ready to splice
  // (DNS, TCP connect, upstream TLS, a mesh tunnel's open); duration = accept to close.
  LatencyHistogram connectTime;
  LatencyHistogram duration;
  /** routes: per route (its access-log name), made on a route's first stream; worker thread only. */
  std::map<std::string, std::unique_ptr<RouteLatency>, std::less<>> routes;
  /** route: the histograms of route `name` (created once per listener, worker and route). */
  RouteLatency& route(std::string_view name) {
    auto it = routes.find(name);
    if (it == routes.end()) it = routes.emplace(std::string(name), std::make_unique<RouteLatency>()).first;
    return *it->second;
  }
};

/** RouteLatencyValues: a plain copy of RouteLatency. */
struct RouteLatencyValues {
  HistogramValues connect, duration;
};

/** ListenerStatsValues: a plain copy, summed across workers for /stats. */
struct ListenerStatsValues {
  uint64_t accepted{0};
  int64_t active{0};
  uint64_t bytesIn{0}, bytesOut{0}, spliced{0}, overLimit{0};
  std::array<uint64_t, kNumErrc> closes{};
  uint64_t packetsIn{0}, packetsOut{0};
  std::array<uint64_t, kNumErrc> drops{};
  HistogramValues connectTime, duration;
  std::map<std::string, RouteLatencyValues, std::less<>> routes;
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

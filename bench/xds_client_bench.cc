// xds_client_bench: the ADS client's side of a big EDS update (issue 19 §5): the time from a
// DiscoveryResponse carrying a 10 000-endpoint ClusterLoadAssignment to the new cluster snapshot on
// every worker, and how long the workers' loops stall meanwhile (the data path's latency).
//
// Real pieces, in one process: N core Workers (their reactors on their own threads), the core
// ClusterManager (its owner on worker 0) and, on worker 0 as in ugated, the ADS client's state
// (AdsClientState: parse, validate, convert) handing the cluster to ClusterUpdater::setCluster, which
// builds the ClusterSet and posts it to every worker. The response bytes are what ugated's ADS server
// sends (ads::buildSnapshot of a route to a 10 000-endpoint cluster); updates alternate between two
// endpoint sets so each one is a real change. Timed per update: t0 on worker 0 before the bytes are
// parsed; the snapshot is on worker W when a task posted to W right after setCluster runs (posts run
// in order, and the snapshot was posted first). The data path's latency: a probe thread posts a
// stamped no-op to every worker every 200 µs and records how late it runs, while idle and during
// updates. Not a test: nothing is asserted.
// MODE: "thread" (as ugated now: AdsClientState::decode, the protobuf and the conversion, runs on the
// xds module's DecodeThread, and worker 0 applies the result, joins and calls setCluster) or "inline"
// (everything on worker 0, as before).
// SETS: "shift" (the two endpoint sets differ by 7 endpoints at each end: most endpoints stay, as in
// a rollout) or "disjoint" (no endpoint stays: every update builds every endpoint anew).
//
//   build/bench/xds_client_bench [UPDATES] [WORKERS] [ENDPOINTS] [MODE] [SETS]
//   (defaults 30, 2, 10000, thread, shift)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <ugate/cluster.h>
#include <ugate/config.h>

#include "core/cluster_manager.h"
#include "core/worker.h"
#include "xds/ads_client_state.h"
#include "xds/ads_resources.h"
#include "xds/decode_thread.h"
#include "xds/messages.h"
#include "xds_bench_endpoints.h"
#include "envoy/service/discovery/v3/discovery.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// response: a SotW DiscoveryResponse of one resource, as the server encodes it.
std::string response(const std::string& typeUrl, const std::string& bytes, const std::string& version) {
  envoy::service::discovery::v3::DiscoveryResponse r;
  r.set_version_info(version);
  r.set_type_url(typeUrl);
  r.set_nonce("n" + version);
  auto* any = r.add_resources();
  any->set_type_url(typeUrl);
  any->set_value(bytes);
  return ugate::xds::serializeDeterministic(r);
}

// resourceBytes: the server's encoding of svc.bench's resource of typeUrl for a cluster at base.
std::string resourceBytes(const std::string& typeUrl, int n, int base) {
  const std::string cfg = R"({"clusters": [{"name": "c", "endpoints": )" + benchEndpoints(n, base) +
                          R"(}], "routes": [{"match": {"host": "svc.bench"}, "to": "cluster:c"}]})";
  auto c = ugate::parseConfig(cfg, "<bench>", ugate::ConfigDefaults{});
  if (!c) {
    fprintf(stderr, "config: %s\n", c.error().detail.c_str());
    exit(1);
  }
  auto snap = ugate::xds::ads::buildSnapshot(**c, 1);
  const auto* r = snap.find(typeUrl, "svc.bench");
  if (!r) {
    fprintf(stderr, "no %s resource\n", typeUrl.c_str());
    exit(1);
  }
  return r->bytes;
}

struct Stats {
  std::vector<double> v;
  double pct(double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace ugate;
  const int updates = argc > 1 ? atoi(argv[1]) : 30;
  const int nworkers = argc > 2 ? atoi(argv[2]) : 2;
  const int n = argc > 3 ? atoi(argv[3]) : 10000;
  const bool threaded = argc > 4 ? std::string(argv[4]) != "inline" : true;
  const bool disjoint = argc > 5 && std::string(argv[5]) == "disjoint";

  const std::string cds = response(std::string(xds::kClusterType), resourceBytes(std::string(xds::kClusterType), 1, 1), "1");
  std::vector<std::string> eds;
  for (int i = 0; i < 2; ++i) {
    eds.push_back(response(std::string(xds::kClusterLoadAssignmentType),
                           resourceBytes(std::string(xds::kClusterLoadAssignmentType), n, 1 + i * (disjoint ? n : 7)), ""));
  }
  printf("EDS response: %zu bytes, %d endpoints (%s sets); %d workers; %d updates; decode %s\n", eds[0].size(), n,
         disjoint ? "disjoint" : "shifted", nworkers, updates, threaded ? "on the DecodeThread" : "inline on worker 0");

  auto cfg = parseConfig("{}", "<bench>", ConfigDefaults{});
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<Worker*> ws;
  for (int i = 0; i < nworkers; ++i) {
    workers.push_back(std::make_unique<Worker>(i, *cfg, 1000, -1));
    ws.push_back(workers.back().get());
  }
  auto mgr = std::make_unique<ClusterManager>(ws);
  ClusterSetPtr first = mgr->prepare(**cfg);
  for (auto& w : workers) {
    w->startThread();
    w->reactor().post([w = w.get(), c = *cfg, first] {
      w->setClusters(first);
      w->applyConfig(c, {});
    });
  }
  mgr->start(*cfg, first);

  // The ADS client's state on worker 0, subscribed to svc.bench; CDS first.
  xds::AdsClientOptions o;
  o.nodeId = "bench";
  o.clusters = {"svc.bench"};
  auto st = std::make_unique<xds::AdsClientState>(o);
  auto on0 = [&](auto fn) {
    std::promise<void> done;
    workers[0]->reactor().post([&] {
      fn();
      done.set_value();
    });
    done.get_future().get();
  };
  on0([&] {
    st->streamStarted();
    auto out = st->onMessage(cds);
    if (out.verdict != xds::ClientVerdict::Ack) fprintf(stderr, "CDS not ACKed: %s\n", out.error.c_str());
  });

  // The probe: a stamped no-op posted to every worker every 200 µs; lateness recorded per phase.
  std::atomic<bool> stop{false}, updating{false};
  std::mutex mu;
  std::vector<Stats> idleLat(nworkers), busyLat(nworkers);
  std::thread probe([&] {
    while (!stop.load()) {
      for (int i = 0; i < nworkers; ++i) {
        const auto sent = Clock::now();
        const bool busy = updating.load();
        workers[i]->reactor().post([&, i, sent, busy] {
          const double late = ms(Clock::now() - sent);
          std::lock_guard<std::mutex> l(mu);
          (busy ? busyLat : idleLat)[i].v.push_back(late);
        });
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // an idle baseline

  xds::DecodeThread decoder;
  Stats total, parse, publish, onLoop;
  int nacks = 0;
  for (int u = 0; u < updates + 1; ++u) {
    std::vector<Clock::time_point> arrived(nworkers);
    std::atomic<int> pending{nworkers};
    std::promise<void> all;
    Clock::time_point t0, ta, t1, t2;
    // apply: on worker 0 (ta: when it starts there): the state takes the decoded response, joins,
    // setCluster builds and posts the snapshot; then the markers to every worker.
    auto apply = [&](xds::DecodedResponse d) {
      ta = Clock::now();
      auto out = st->onDecoded(std::move(d));
      if (out.verdict != xds::ClientVerdict::Ack) ++nacks;
      auto held = st->clusters();
      t1 = Clock::now();
      auto it = held.find("svc.bench");
      if (it != held.end()) workers[0]->clusterUpdater()->setCluster(it->second);  // build, post to every worker
      t2 = Clock::now();
      for (int i = 0; i < nworkers; ++i) {
        workers[i]->reactor().post([&, i] {
          arrived[i] = Clock::now();
          if (--pending == 0) all.set_value();
        });
      }
    };
    updating = true;
    workers[0]->reactor().post([&] {
      t0 = Clock::now();
      if (!threaded) {
        apply(xds::AdsClientState::decode(false, eds[u % 2]));
        return;
      }
      decoder.run([&] {
        auto d = std::make_shared<xds::DecodedResponse>(xds::AdsClientState::decode(false, eds[u % 2]));
        workers[0]->reactor().post([&, d] { apply(std::move(*d)); });
      });
    });
    all.get_future().get();
    updating = false;
    if (u == 0) continue;  // the first builds the cluster from nothing
    const auto last = *std::max_element(arrived.begin(), arrived.end());
    total.v.push_back(ms(last - t0));
    parse.v.push_back(ms(t1 - t0));
    publish.v.push_back(ms(t2 - t1));
    onLoop.v.push_back(ms(t2 - (threaded ? ta : t0)));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  probe.join();
  for (auto& w : workers) {  // the probes still queued run before this (posts run in order)
    std::promise<void> flushed;
    w->reactor().post([&] { flushed.set_value(); });
    flushed.get_future().get();
  }
  std::lock_guard<std::mutex> statsLock(mu);

  printf("response -> snapshot on every worker: p50 %.2f ms, p90 %.2f ms, max %.2f ms\n", total.pct(0.5),
         total.pct(0.9), total.pct(1.0));
  printf("  of which parse+validate+convert+join: p50 %.2f ms; setCluster (build + post): p50 %.2f ms; NACKs %d\n",
         parse.pct(0.5), publish.pct(0.5), nacks);
  printf("  worker 0's loop held by the update (inline: all of it; thread: apply + join + setCluster): p50 %.2f ms, "
         "max %.2f ms\n",
         onLoop.pct(0.5), onLoop.pct(1.0));
  for (int i = 0; i < nworkers; ++i) {
    printf("worker %d loop latency idle: p50 %.3f p99 %.3f max %.3f ms (%zu probes); during updates: p50 %.3f p99 "
           "%.3f max %.3f ms (%zu probes)\n",
           i, idleLat[i].pct(0.5), idleLat[i].pct(0.99), idleLat[i].pct(1.0), idleLat[i].v.size(), busyLat[i].pct(0.5),
           busyLat[i].pct(0.99), busyLat[i].pct(1.0), busyLat[i].v.size());
  }

  for (auto& w : workers) w->reactor().post([w = w.get()] { w->drain(); });
  for (auto& w : workers) w->reactor().exit();
  for (auto& w : workers) w->join();
  mgr.reset();
  workers.clear();
  return 0;
}

// xds_bench: what the ADS server spends to turn a config into its resources (src/xds/ads_resources.h),
// for the issue's case of one ClusterLoadAssignment with 10 000 endpoints, and for 100 services of
// 100 endpoints each. buildSnapshot encodes every Listener, RouteConfiguration, Cluster and
// ClusterLoadAssignment and hashes each into its version: the work a SIGHUP costs before the first
// byte is pushed to any client. Not a test: nothing is asserted.
//
//   build/bench/xds_bench [RUNS]    (default 20; prints min and median per case)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <ugate/config.h>

#include "xds/ads_resources.h"
#include "xds/messages.h"
#include "xds_bench_endpoints.h"

namespace {

// config: `services` routes by exact host, each to its own cluster of `perService` endpoints.
std::string config(int services, int perService) {
  std::string clusters = "[", routes = "[";
  for (int s = 0; s < services; ++s) {
    const std::string name = "svc" + std::to_string(s);
    clusters += (s ? "," : "") + std::string("{\"name\":\"") + name + "\",\"endpoints\":" +
                benchEndpoints(perService, s * perService + 1) + "}";
    routes += (s ? "," : "") + std::string("{\"match\":{\"host\":\"") + name + ".bench\"},\"to\":\"cluster:" + name + "\"}";
  }
  return R"({"listeners":[{"name":"l","kind":"tcp","address":"127.0.0.1:7000","to":"reject"}],"clusters":)" +
         clusters + "],\"routes\":" + routes + "]}";
}

void run(const char* what, int services, int perService, int runs) {
  auto cfg = ugate::parseConfig(config(services, perService), "<bench>", ugate::ConfigDefaults{});
  if (!cfg) {
    fprintf(stderr, "config: %s\n", cfg.error().detail.c_str());
    exit(1);
  }
  std::vector<double> ms;
  size_t bytes = 0, resources = 0;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto snap = ugate::xds::ads::buildSnapshot(**cfg, static_cast<uint64_t>(i + 1));
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    bytes = resources = 0;
    for (auto t : {ugate::xds::kListenerType, ugate::xds::kRouteConfigurationType,
                   ugate::xds::kClusterType, ugate::xds::kClusterLoadAssignmentType}) {
      for (const auto& [name, r] : snap.ofType(t)) {
        bytes += r.bytes.size();
        ++resources;
      }
    }
  }
  std::sort(ms.begin(), ms.end());
  printf("%-40s %6zu resources %9zu bytes  build min %8.2f ms  median %8.2f ms\n", what, resources, bytes, ms.front(),
         ms[ms.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, atoi(argv[1])) : 20;
  run("1 service, 10 000 endpoints", 1, 10000, runs);
  run("100 services x 100 endpoints", 100, 100, runs);
  run("100 services x 1 endpoint", 100, 1, runs);
  return 0;
}

// The readiness port's answers (answerHealthProbe): one path, GET and HEAD, 200/503 by state, 404
// for everything else.
#include "http/health_probe.h"

#include <gtest/gtest.h>

namespace ugate::http {
namespace {

Request req(std::string method, std::string target) {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  return r;
}

TEST(HealthProbeTest, ReadyIs200AndStartingOrDrainingIs503) {
  const std::string path = "/healthz/ready";
  auto ready = answerHealthProbe(req("GET", path), path, ReadyState::Ready);
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ready\n");
  auto starting = answerHealthProbe(req("GET", path), path, ReadyState::Starting);
  EXPECT_EQ(starting.status, 503);
  EXPECT_EQ(starting.body, "starting\n");
  auto draining = answerHealthProbe(req("HEAD", path), path, ReadyState::Draining);
  EXPECT_EQ(draining.status, 503);
  EXPECT_EQ(draining.body, "draining\n");
  EXPECT_EQ(answerHealthProbe(req("GET", path + "?probe=kubelet"), path, ReadyState::Ready).status, 200)
      << "a query string is ignored";
}

TEST(HealthProbeTest, EverythingElseIsNotFound) {
  const std::string path = "/ready";
  for (const auto& [m, t] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/ready"}, {"PUT", "/ready"}, {"DELETE", "/ready"}, {"OPTIONS", "*"}, {"GET", "/stats"},
           {"GET", "/config_dump"}, {"GET", "/"}, {"GET", "/ready/"}, {"GET", "/READY"}, {"GET", "http://x/ready"},
           {"CONNECT", "host:443"}, {"get", "/ready"}}) {
    auto r = answerHealthProbe(req(m, t), path, ReadyState::Ready);
    EXPECT_EQ(r.status, 404) << m << " " << t;
    EXPECT_EQ(r.body, "not found\n");
  }
}

}  // namespace
}  // namespace ugate::http

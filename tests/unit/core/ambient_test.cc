// Istio ambient decisions (ugate/ambient.h, src/core/ambient.cc), pure functions of a snapshot:
// where a captured connection goes (service VIP → an endpoint workload's target port, HBONE or
// plain, waypoints) and whether an inbound stream passes the Authorization policies.
#include <ugate/ambient.h>

#include <gtest/gtest.h>

namespace ugate {
namespace {

SocketAddress addr(const char* ip, uint16_t port) { return *SocketAddress::fromIp(ip, port); }

AmbientWorkload workload(const std::string& uid, const std::string& ip, bool hbone, const std::string& ns = "server") {
  AmbientWorkload w;
  w.uid = uid;
  w.ns = ns;
  w.ips = {ip};
  w.hbone = hbone;
  w.trustDomain = "cluster.local";
  w.serviceAccount = "default";
  w.services["server/echo.svc"] = {{80, 8080}};
  return w;
}

AmbientSnapshot snapshot() {
  AmbientSnapshot s;
  AmbientService svc;
  svc.name = "echo";
  svc.ns = "server";
  svc.hostname = "echo.svc";
  svc.vips = {"10.96.0.10"};
  svc.ports = {{80, 8000}};
  s.services[svc.key()] = svc;
  s.workloads["w1"] = workload("w1", "10.0.2.2", true);
  s.workloads["w2"] = workload("w2", "10.0.2.3", false);
  s.index();
  return s;
}

TEST(AmbientOutbound, ServiceVipPicksAnEndpointOnItsTargetPort) {
  AmbientSnapshot s = snapshot();
  auto a = ambientOutbound(s, addr("10.96.0.10", 80), 0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->target.str(), "10.0.2.2:8080") << "the workload's target port overrides the service's";
  EXPECT_EQ(a->via, "10.0.2.2:15008") << "HBONE: the workload's :15008";
  EXPECT_EQ(a->identity, "spiffe://cluster.local/ns/server/sa/default") << "the hop must present the workload's ID";
  auto b = ambientOutbound(s, addr("10.96.0.10", 80), 1);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->target.str(), "10.0.2.3:8080");
  EXPECT_EQ(b->via, "") << "NONE: plain TCP";
  EXPECT_EQ(b->identity, "");
  // Unhealthy endpoints are skipped.
  s.workloads["w1"].healthy = false;
  s.index();
  for (uint64_t i = 0; i < 4; ++i) EXPECT_EQ(ambientOutbound(s, addr("10.96.0.10", 80), i)->target.host, "10.0.2.3");
}

TEST(AmbientOutbound, PortsWaypointsAndStrangers) {
  AmbientSnapshot s = snapshot();
  auto noPort = ambientOutbound(s, addr("10.96.0.10", 81), 0);
  ASSERT_TRUE(noPort);
  EXPECT_TRUE(noPort->target.host.empty());
  EXPECT_NE(noPort->why.find("no port 81"), std::string::npos);
  EXPECT_FALSE(ambientOutbound(s, addr("192.0.2.1", 80), 0)) << "not ambient's: dialled as it is";
  auto direct = ambientOutbound(s, addr("10.0.2.2", 9000), 0);
  ASSERT_TRUE(direct);
  EXPECT_EQ(direct->target.str(), "10.0.2.2:9000");
  EXPECT_EQ(direct->via, "10.0.2.2:15008");
  // A service waypoint gets the service address; a workload waypoint the workload's.
  s.services["server/echo.svc"].waypoint = AmbientWaypoint{"10.0.9.9", 15008};
  auto w = ambientOutbound(s, addr("10.96.0.10", 80), 0);
  EXPECT_EQ(w->target.str(), "10.96.0.10:80");
  EXPECT_EQ(w->via, "10.0.9.9:15008");
  EXPECT_EQ(w->identity, "") << "a waypoint the control plane does not describe: any trusted certificate";
  s.workloads["w2"].waypoint = AmbientWaypoint{"10.0.9.8", 15009};
  s.index();
  auto ww = ambientOutbound(s, addr("10.0.2.3", 8080), 0);
  EXPECT_EQ(ww->target.str(), "10.0.2.3:8080");
  EXPECT_EQ(ww->via, "10.0.9.8:15009");
  s.workloads["wp"] = workload("wp", "10.0.9.8", true, "gw");
  s.index();
  EXPECT_EQ(ambientOutbound(s, addr("10.0.2.3", 8080), 0)->identity, "spiffe://cluster.local/ns/gw/sa/default")
      << "a described waypoint: its workload's ID";
  s.workloads.erase("wp");
  s.index();
  // No endpoint at all.
  s.services["server/echo.svc"].waypoint.reset();
  s.workloads.clear();
  s.index();
  auto none = ambientOutbound(s, addr("10.96.0.10", 80), 0);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->target.host.empty());
  EXPECT_NE(none->why.find("no healthy endpoint"), std::string::npos);
}

AmbientPolicy policy(const std::string& name, AmbientPolicy::Action act, AmbientPolicy::Scope scope, AmbientMatch m) {
  AmbientPolicy p;
  p.name = name;
  p.ns = "server";
  p.action = act;
  p.scope = scope;
  p.rules = {{{std::move(m)}}};
  return p;
}

const char* kClient = "spiffe://cluster.local/ns/client/sa/sleep";

TEST(AmbientAuthorize, DenyAllowAndScopes) {
  AmbientSnapshot s = snapshot();
  const SocketAddress src = addr("10.0.1.2", 40000);
  EXPECT_FALSE(ambientAuthorize(s, addr("192.0.2.1", 80), kClient, src).applies);
  auto v = ambientAuthorize(s, addr("10.0.2.2", 8080), kClient, src);
  EXPECT_TRUE(v.applies);
  EXPECT_TRUE(v.allowed) << "no policy";

  AmbientMatch fromClientNs;
  fromClientNs.namespaces = {{AmbientStringMatch::Kind::Exact, "client"}};
  s.policies["server/deny"] = policy("deny", AmbientPolicy::Action::Deny, AmbientPolicy::Scope::Namespace, fromClientNs);
  v = ambientAuthorize(s, addr("10.0.2.2", 8080), kClient, src);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.why, "denied by policy server/deny");
  EXPECT_TRUE(ambientAuthorize(s, addr("10.0.2.2", 8080), "spiffe://cluster.local/ns/other/sa/x", src).allowed);
  // Namespace scope: a workload of another namespace is not covered.
  s.workloads["w3"] = workload("w3", "10.0.3.3", true, "elsewhere");
  s.index();
  EXPECT_TRUE(ambientAuthorize(s, addr("10.0.3.3", 8080), kClient, src).allowed);

  // ALLOW by principal and port; the DENY still wins where it matches.
  s.policies.clear();
  AmbientMatch sleepOn8080;
  sleepOn8080.principals = {{AmbientStringMatch::Kind::Exact, kClient}};
  sleepOn8080.destinationPorts = {8080};
  s.policies["server/allow"] = policy("allow", AmbientPolicy::Action::Allow, AmbientPolicy::Scope::WorkloadSelector, sleepOn8080);
  s.workloads["w1"].policies = {"server/allow"};
  s.index();
  EXPECT_TRUE(ambientAuthorize(s, addr("10.0.2.2", 8080), kClient, src).allowed);
  v = ambientAuthorize(s, addr("10.0.2.2", 9090), kClient, src);
  EXPECT_FALSE(v.allowed) << "an ALLOW applies and none matches";
  EXPECT_NE(v.why.find("no ALLOW policy"), std::string::npos);
  EXPECT_FALSE(ambientAuthorize(s, addr("10.0.2.2", 8080), "", src).allowed) << "no identity";
  EXPECT_TRUE(ambientAuthorize(s, addr("10.0.2.3", 9090), "", src).allowed) << "w2 does not select it";
  s.policies["server/deny"] = policy("deny", AmbientPolicy::Action::Deny, AmbientPolicy::Scope::Global, fromClientNs);
  EXPECT_FALSE(ambientAuthorize(s, addr("10.0.2.2", 8080), kClient, src).allowed);

  // not_* and source CIDRs; an ALLOW without rules allows nothing.
  s.policies.clear();
  AmbientMatch notFromNet;
  notFromNet.notSourceIps = {*Cidr::parse("10.0.1.0/24")};
  s.policies["server/allow"] = policy("allow", AmbientPolicy::Action::Allow, AmbientPolicy::Scope::Global, notFromNet);
  EXPECT_FALSE(ambientAuthorize(s, addr("10.0.2.2", 8080), kClient, src).allowed);
  EXPECT_TRUE(ambientAuthorize(s, addr("10.0.2.2", 8080), kClient, addr("10.0.5.1", 1)).allowed);
  s.policies["server/allow"].rules.clear();
  EXPECT_FALSE(ambientAuthorize(s, addr("10.0.2.2", 8080), kClient, addr("10.0.5.1", 1)).allowed);
}

TEST(AmbientAuthorize, SpiffeNamespace) {
  EXPECT_EQ(spiffeNamespace("spiffe://td/ns/a/sa/b"), "a");
  EXPECT_EQ(spiffeNamespace("spiffe://td/ns/a"), "a");
  EXPECT_EQ(spiffeNamespace("https://td/ns/a/sa/b"), "");
  EXPECT_EQ(spiffeNamespace(""), "");
}

TEST(AmbientDirectory, PublishesSnapshots) {
  AmbientDirectory d;
  EXPECT_EQ(d.current(), nullptr);
  auto s = std::make_shared<AmbientSnapshot>(snapshot());
  d.publish(s);
  EXPECT_EQ(d.current()->workloads.size(), 2u);
  d.publish(nullptr);
  EXPECT_EQ(d.current(), nullptr);
}

}  // namespace
}  // namespace ugate

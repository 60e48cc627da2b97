// Istio ambient resources (src/xds/ambient_convert.h) decoded field by field, refused with a reason
// when invalid; and the ADS client's state (ads_client_state.h) subscribing to them over delta
// ADS as ztunnel does, applying, removing, NACKing (the last good state stays) and resuming.
#include "xds/ambient_convert.h"

#include <arpa/inet.h>

#include <gtest/gtest.h>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "istio/security/authorization.pb.h"
#include "istio/workload/workload.pb.h"
#include "xds/ads_client_state.h"
#include "xds/messages.h"

namespace ugate::xds {
namespace {

namespace wl = istio::workload;
namespace sec = istio::security;
namespace discovery = envoy::service::discovery::v3;

std::string raw4(const char* ip) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, ip, &a), 1);
  return std::string(reinterpret_cast<const char*>(&a), 4);
}

wl::Workload workloadMsg(const std::string& uid, const char* ip, bool hbone) {
  wl::Workload w;
  w.set_uid(uid);
  w.set_name(uid);
  w.set_namespace_("server");
  w.add_addresses(raw4(ip));
  w.set_tunnel_protocol(hbone ? wl::HBONE : wl::NONE);
  w.set_service_account("echo");
  auto& pl = (*w.mutable_services())["server/echo.server.svc.cluster.local"];
  auto* p = pl.add_ports();
  p->set_service_port(80);
  p->set_target_port(8080);
  return w;
}

std::string addressBytes(const wl::Workload& w) {
  wl::Address a;
  *a.mutable_workload() = w;
  return a.SerializeAsString();
}

wl::Service serviceMsg() {
  wl::Service s;
  s.set_name("echo");
  s.set_namespace_("server");
  s.set_hostname("echo.server.svc.cluster.local");
  auto* na = s.add_addresses();
  na->set_address(raw4("10.96.0.10"));
  auto* p = s.add_ports();
  p->set_service_port(80);
  p->set_target_port(8000);
  return s;
}

std::string addressBytes(const wl::Service& s) {
  wl::Address a;
  *a.mutable_service() = s;
  return a.SerializeAsString();
}

sec::Authorization denyFrom(const std::string& ns) {
  sec::Authorization p;
  p.set_name("deny-" + ns);
  p.set_namespace_("server");
  p.set_scope(sec::NAMESPACE);
  p.set_action(sec::DENY);
  p.add_rules()->add_clauses()->add_matches()->add_namespaces()->set_exact(ns);
  return p;
}

TEST(AmbientConvert, WorkloadFieldByField) {
  wl::Workload m = workloadMsg("c1/Pod/server/echo-1", "10.0.2.2", true);
  m.mutable_waypoint()->mutable_address()->set_address(raw4("10.0.9.9"));
  m.add_authorization_policies("server/allow-client");
  auto a = parseAmbientAddress(addressBytes(m));
  ASSERT_TRUE(a) << a.error().detail;
  ASSERT_TRUE(a->workload);
  EXPECT_FALSE(a->service);
  const AmbientWorkload& w = *a->workload;
  EXPECT_EQ(a->name(), "c1/Pod/server/echo-1");
  EXPECT_EQ(w.ips, std::vector<std::string>{"10.0.2.2"});
  EXPECT_TRUE(w.hbone);
  EXPECT_TRUE(w.healthy);
  EXPECT_EQ(w.spiffe(), "spiffe://cluster.local/ns/server/sa/echo");
  ASSERT_TRUE(w.waypoint);
  EXPECT_EQ(w.waypoint->ip, "10.0.9.9");
  EXPECT_EQ(w.waypoint->port, 15008);
  ASSERT_EQ(w.services.count("server/echo.server.svc.cluster.local"), 1u);
  EXPECT_EQ(w.services.at("server/echo.server.svc.cluster.local"), (std::vector<AmbientPort>{{80, 8080}}));
  EXPECT_EQ(w.policies, std::vector<std::string>{"server/allow-client"});
}

TEST(AmbientConvert, ServiceFieldByField) {
  auto a = parseAmbientAddress(addressBytes(serviceMsg()));
  ASSERT_TRUE(a) << a.error().detail;
  ASSERT_TRUE(a->service);
  EXPECT_EQ(a->name(), "server/echo.server.svc.cluster.local");
  EXPECT_EQ(a->service->vips, std::vector<std::string>{"10.96.0.10"});
  EXPECT_EQ(a->service->ports, (std::vector<AmbientPort>{{80, 8000}}));
  EXPECT_FALSE(a->service->waypoint);
}

TEST(AmbientConvert, RefusesWithReasons) {
  wl::Workload noUid = workloadMsg("", "10.0.2.2", true);
  EXPECT_NE(parseAmbientAddress(addressBytes(noUid)).error().detail.find("uid"), std::string::npos);
  wl::Workload badIp = workloadMsg("u", "10.0.2.2", true);
  badIp.set_addresses(0, "abc");
  EXPECT_NE(parseAmbientAddress(addressBytes(badIp)).error().detail.find("3 bytes"), std::string::npos);
  wl::Workload hostOnly = workloadMsg("u", "10.0.2.2", true);
  hostOnly.clear_addresses();
  hostOnly.set_hostname("vm.example");
  EXPECT_FALSE(parseAmbientAddress(addressBytes(hostOnly)));
  wl::Workload wpHost = workloadMsg("u", "10.0.2.2", true);
  wpHost.mutable_waypoint()->mutable_hostname()->set_hostname("wp.example");
  EXPECT_NE(parseAmbientAddress(addressBytes(wpHost)).error().detail.find("hostname"), std::string::npos);
  wl::Workload slashSa = workloadMsg("u", "10.0.2.2", true);
  slashSa.set_service_account("a/b");
  EXPECT_NE(parseAmbientAddress(addressBytes(slashSa)).error().detail.find("SPIFFE"), std::string::npos);
  wl::Service badPort = serviceMsg();
  badPort.mutable_ports(0)->set_service_port(70000);
  EXPECT_NE(parseAmbientAddress(addressBytes(badPort)).error().detail.find("out of range"), std::string::npos);
  wl::Service noHost = serviceMsg();
  noHost.clear_hostname();
  EXPECT_FALSE(parseAmbientAddress(addressBytes(noHost)));
  EXPECT_FALSE(parseAmbientAddress(wl::Address().SerializeAsString())) << "neither workload nor service";
  EXPECT_FALSE(parseAmbientAddress("\xff\xff\xff"));
}

TEST(AmbientConvert, PolicyFieldByField) {
  sec::Authorization m;
  m.set_name("allow-client");
  m.set_namespace_("server");
  m.set_scope(sec::WORKLOAD_SELECTOR);
  auto* match = m.add_rules()->add_clauses()->add_matches();
  match->add_principals()->set_prefix("spiffe://cluster.local/ns/client/");
  match->add_not_principals()->mutable_presence();
  auto* ip = match->add_source_ips();
  ip->set_address(raw4("10.0.1.0"));
  ip->set_length(24);
  match->add_destination_ports(8080);
  auto p = parseAmbientPolicy(m.SerializeAsString());
  ASSERT_TRUE(p) << p.error().detail;
  EXPECT_EQ(p->key(), "server/allow-client");
  EXPECT_EQ(p->scope, AmbientPolicy::Scope::WorkloadSelector);
  EXPECT_EQ(p->action, AmbientPolicy::Action::Allow);
  ASSERT_EQ(p->rules.size(), 1u);
  ASSERT_EQ(p->rules[0].size(), 1u);
  ASSERT_EQ(p->rules[0][0].size(), 1u);
  const AmbientMatch& am = p->rules[0][0][0];
  EXPECT_EQ(am.principals, (std::vector<AmbientStringMatch>{{AmbientStringMatch::Kind::Prefix, "spiffe://cluster.local/ns/client/"}}));
  EXPECT_EQ(am.notPrincipals[0].kind, AmbientStringMatch::Kind::Presence);
  ASSERT_EQ(am.sourceIps.size(), 1u);
  EXPECT_EQ(am.sourceIps[0].str(), "10.0.1.0/24");
  EXPECT_EQ(am.destinationPorts, std::vector<uint16_t>{8080});

  sec::Authorization bad = m;
  bad.set_action(static_cast<sec::Action>(7));
  EXPECT_NE(parseAmbientPolicy(bad.SerializeAsString()).error().detail.find("action 7"), std::string::npos);
  bad = m;
  bad.mutable_rules(0)->mutable_clauses(0)->mutable_matches(0)->mutable_source_ips(0)->set_length(33);
  EXPECT_FALSE(parseAmbientPolicy(bad.SerializeAsString()));
  bad = m;
  bad.mutable_rules(0)->mutable_clauses(0)->mutable_matches(0)->add_namespaces();  // no value
  EXPECT_FALSE(parseAmbientPolicy(bad.SerializeAsString()));
  bad = m;
  bad.clear_name();
  EXPECT_FALSE(parseAmbientPolicy(bad.SerializeAsString()));
}

// ---- The client state over delta ADS ----------------------------------------------------------

const std::string kAddr(kAddressType);
const std::string kAuthz(kAuthorizationType);

AdsClientOptions ambientOpts() {
  AdsClientOptions o;
  o.delta = true;
  o.ambient = true;
  o.nodeId = "ztunnel~10.0.1.2~client.client~client.svc.cluster.local";
  o.metadata = {{"NAME", "client"}, {"NAMESPACE", "client"}};
  return o;
}

discovery::DeltaDiscoveryRequest req(const std::string& bytes) {
  discovery::DeltaDiscoveryRequest q;
  EXPECT_TRUE(parseMessage(bytes, q));
  return q;
}

std::string delta(const std::string& type, const std::string& nonce,
                  const std::vector<std::pair<std::string, std::string>>& resources,
                  const std::vector<std::string>& removed = {}) {
  discovery::DeltaDiscoveryResponse r;
  r.set_type_url(type);
  r.set_nonce(nonce);
  r.set_system_version_info(nonce);
  for (const auto& [name, bytes] : resources) {
    auto* res = r.add_resources();
    res->set_name(name);
    res->set_version("v-" + nonce);
    res->mutable_resource()->set_type_url(type);
    res->mutable_resource()->set_value(bytes);
  }
  for (const auto& n : removed) r.add_removed_resources(n);
  return r.SerializeAsString();
}

TEST(AdsClientAmbient, SubscribesLikeZtunnelAppliesNacksAndResumes) {
  AdsClientState s(ambientOpts());
  auto first = s.streamStarted();
  // CDS (nothing named: not asked), then the two ambient types as legacy wildcards.
  ASSERT_EQ(first.size(), 2u);
  auto q0 = req(first[0]);
  auto q1 = req(first[1]);
  EXPECT_EQ(q0.type_url(), kAddr);
  EXPECT_EQ(q0.node().id(), ambientOpts().nodeId);
  EXPECT_EQ(q0.node().metadata().fields().at("NAMESPACE").string_value(), "client");
  EXPECT_EQ(q0.resource_names_subscribe_size(), 0) << "legacy wildcard";
  EXPECT_EQ(q1.type_url(), kAuthz);
  EXPECT_FALSE(q1.has_node());
  EXPECT_EQ(s.ambient()->workloads.size(), 0u);

  const std::string w1 = addressBytes(workloadMsg("w1", "10.0.2.2", true));
  const std::string svc = addressBytes(serviceMsg());
  ClientOutcome o = s.onMessage(delta(kAddr, "1", {{"w1", w1}, {"server/echo.server.svc.cluster.local", svc}}));
  EXPECT_EQ(o.verdict, ClientVerdict::Ack);
  EXPECT_TRUE(o.ambientChanged);
  EXPECT_FALSE(o.changed);
  ASSERT_EQ(o.requests.size(), 1u);
  auto ack = req(o.requests[0]);
  EXPECT_EQ(ack.response_nonce(), "1");
  EXPECT_FALSE(ack.has_error_detail());
  auto snap = s.ambient();
  ASSERT_EQ(snap->workloads.size(), 1u);
  EXPECT_EQ(snap->serviceByVip.at("10.96.0.10"), "server/echo.server.svc.cluster.local");
  EXPECT_EQ(snap->workloadByIp.at("10.0.2.2"), "w1");

  o = s.onMessage(delta(kAuthz, "2", {{"server/deny-client", denyFrom("client").SerializeAsString()}}));
  EXPECT_EQ(o.verdict, ClientVerdict::Ack);
  EXPECT_TRUE(o.ambientChanged);
  EXPECT_EQ(s.ambient()->policies.size(), 1u);

  // An invalid workload NACKs the whole response; the last good state stays.
  wl::Workload bad = workloadMsg("w2", "10.0.2.3", true);
  bad.set_addresses(0, "xx");
  o = s.onMessage(delta(kAddr, "3", {{"w2", addressBytes(bad)}, {"w3", addressBytes(workloadMsg("w3", "10.0.2.4", false))}}));
  EXPECT_EQ(o.verdict, ClientVerdict::Nack);
  EXPECT_FALSE(o.ambientChanged);
  auto nack = req(o.requests[0]);
  EXPECT_NE(nack.error_detail().message().find("2 bytes"), std::string::npos) << nack.error_detail().message();
  EXPECT_EQ(s.ambient()->workloads.size(), 1u);

  // A workload moves: w1 removed, w3 added.
  o = s.onMessage(delta(kAddr, "4", {{"w3", addressBytes(workloadMsg("w3", "10.0.2.4", false))}}, {"w1"}));
  EXPECT_EQ(o.verdict, ClientVerdict::Ack);
  snap = s.ambient();
  EXPECT_EQ(snap->workloads.count("w1"), 0u);
  EXPECT_EQ(snap->workloadByIp.at("10.0.2.4"), "w3");
  EXPECT_EQ(snap->endpointsOf.at("server/echo.server.svc.cluster.local"), std::vector<std::string>{"w3"});

  // A new stream: initial_resource_versions of what is held.
  s.streamEnded();
  auto again = s.streamStarted();
  ASSERT_EQ(again.size(), 2u);
  auto r0 = req(again[0]);
  EXPECT_EQ(r0.type_url(), kAddr);
  EXPECT_EQ(r0.initial_resource_versions().at("w3"), "v-4");
  EXPECT_EQ(r0.initial_resource_versions().at("server/echo.server.svc.cluster.local"), "v-1");
  EXPECT_EQ(r0.initial_resource_versions().count("w1"), 0u);
  EXPECT_EQ(req(again[1]).initial_resource_versions().at("server/deny-client"), "v-2");
  EXPECT_EQ(s.ambient()->workloads.size(), 1u) << "held across the reconnect";
}

TEST(AdsClientAmbient, NotSubscribedWithoutAmbientOrOverSotw) {
  AdsClientOptions o = ambientOpts();
  o.ambient = false;
  AdsClientState s(o);
  EXPECT_TRUE(s.streamStarted().empty());
  EXPECT_EQ(s.ambient(), nullptr);
  // An Address response nobody asked for is NACKed.
  ClientOutcome out = s.onMessage(delta(kAddr, "1", {{"w1", addressBytes(workloadMsg("w1", "10.0.2.2", true))}}));
  EXPECT_EQ(out.verdict, ClientVerdict::Nack);
  EXPECT_FALSE(out.ambientChanged);
}

}  // namespace
}  // namespace ugate::xds

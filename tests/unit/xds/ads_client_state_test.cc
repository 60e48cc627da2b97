// The ADS client's state (src/xds/ads_client_state.h), sans-I/O: the requests it sends for the
// responses it is given, in both APIs: subscriptions (CDS by name or wildcard, EDS following CDS),
// ACKs, NACKs that keep the last good clusters, removals, and resubscription on a new stream.
#include "xds/ads_client_state.h"

#include <gtest/gtest.h>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "ugate/v1/message.pb.h"
#include "xds/message_convert.h"
#include "xds/messages.h"

namespace ugate::xds {
namespace {

namespace cluster = envoy::config::cluster::v3;
namespace discovery = envoy::service::discovery::v3;
namespace endpoint = envoy::config::endpoint::v3;

const std::string kCds(kClusterType);
const std::string kEds(kClusterLoadAssignmentType);

std::string clusterBytes(const std::string& name, cluster::Cluster::DiscoveryType t = cluster::Cluster::EDS) {
  cluster::Cluster c;
  c.set_name(name);
  c.set_type(t);
  return c.SerializeAsString();
}

std::string assignmentBytes(const std::string& name, uint32_t port) {
  endpoint::ClusterLoadAssignment a;
  a.set_cluster_name(name);
  auto* sa = a.add_endpoints()->add_lb_endpoints()->mutable_endpoint()->mutable_address()->mutable_socket_address();
  sa->set_address("127.0.0.1");
  sa->set_port_value(port);
  return a.SerializeAsString();
}

std::string sotw(const std::string& type, const std::string& version, const std::string& nonce,
                 const std::vector<std::string>& resources) {
  discovery::DiscoveryResponse r;
  r.set_type_url(type);
  r.set_version_info(version);
  r.set_nonce(nonce);
  for (const auto& b : resources) {
    auto* any = r.add_resources();
    any->set_type_url(type);
    any->set_value(b);
  }
  return r.SerializeAsString();
}

discovery::DiscoveryRequest sotwReq(const std::string& bytes) {
  discovery::DiscoveryRequest q;
  EXPECT_TRUE(parseMessage(bytes, q));
  return q;
}

std::vector<std::string> names(const discovery::DiscoveryRequest& q) {
  return {q.resource_names().begin(), q.resource_names().end()};
}

AdsClientOptions opts(bool delta, std::set<std::string> clusters, bool wildcard = false) {
  AdsClientOptions o;
  o.delta = delta;
  o.nodeId = "b";
  o.nodeCluster = "ugate";
  o.metadata = {{"NAME", "b"}};
  o.clusters = std::move(clusters);
  o.wildcard = wildcard;
  return o;
}

TEST(AdsClientSotw, SubscribesAcksFollowsCdsWithEds) {
  AdsClientState s(opts(false, {"web"}));
  auto first = s.streamStarted();
  ASSERT_EQ(first.size(), 1u) << "CDS only: no cluster known yet";
  auto q = sotwReq(first[0]);
  EXPECT_EQ(q.type_url(), kCds);
  EXPECT_EQ(q.node().id(), "b");
  EXPECT_EQ(q.node().metadata().fields().at("NAME").string_value(), "b");
  EXPECT_EQ(names(q), std::vector<std::string>{"web"});

  // A cluster not asked for (other) is ignored.
  auto o = s.onMessage(sotw(kCds, "1", "n1", {clusterBytes("web"), clusterBytes("other")}));
  EXPECT_EQ(o.verdict, ClientVerdict::Ack);
  EXPECT_TRUE(o.changed);
  ASSERT_EQ(o.requests.size(), 2u);
  auto ack = sotwReq(o.requests[0]);
  EXPECT_EQ(ack.type_url(), kCds);
  EXPECT_EQ(ack.version_info(), "1");
  EXPECT_EQ(ack.response_nonce(), "n1");
  EXPECT_FALSE(ack.has_error_detail());
  EXPECT_FALSE(ack.has_node()) << "the node goes in the first request only";
  auto eds = sotwReq(o.requests[1]);
  EXPECT_EQ(eds.type_url(), kEds);
  EXPECT_EQ(names(eds), std::vector<std::string>{"web"});
  EXPECT_TRUE(s.clusters().empty()) << "warming until its assignment arrives";
  EXPECT_EQ(s.warming(), std::set<std::string>{"web"});

  o = s.onMessage(sotw(kEds, "7", "n2", {assignmentBytes("web", 9001)}));
  EXPECT_EQ(o.verdict, ClientVerdict::Ack);
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_EQ(sotwReq(o.requests[0]).version_info(), "7");
  const DynamicCluster web = s.clusters().at("web");
  ASSERT_EQ(web.endpoints.size(), 1u);
  EXPECT_EQ(web.endpoints[0].address.str(), "127.0.0.1:9001");
  EXPECT_EQ(web.version, "cds 1, eds 7");
  EXPECT_EQ(web.source, "xds");
}

TEST(AdsClientSotw, NackKeepsTheLastGoodClusters) {
  AdsClientState s(opts(false, {"web"}));
  (void)s.streamStarted();
  (void)s.onMessage(sotw(kCds, "1", "n1", {clusterBytes("web")}));
  (void)s.onMessage(sotw(kEds, "1", "n2", {assignmentBytes("web", 9001)}));
  const auto before = s.clusters();

  auto o = s.onMessage(sotw(kCds, "2", "n3", {clusterBytes("web", cluster::Cluster::STATIC)}));
  EXPECT_EQ(o.verdict, ClientVerdict::Nack);
  EXPECT_FALSE(o.changed);
  EXPECT_NE(o.error.find("only EDS"), std::string::npos) << o.error;
  ASSERT_EQ(o.requests.size(), 1u);
  auto nack = sotwReq(o.requests[0]);
  EXPECT_EQ(nack.version_info(), "1") << "a NACK carries the last accepted version";
  EXPECT_EQ(nack.response_nonce(), "n3");
  ASSERT_TRUE(nack.has_error_detail());
  EXPECT_EQ(nack.error_detail().code(), 3);
  EXPECT_EQ(nack.error_detail().message(), o.error);
  EXPECT_EQ(s.clusters(), before);
  EXPECT_EQ(s.version(kCds), "1");

  // A bad endpoint NACKs the EDS response the same way.
  o = s.onMessage(sotw(kEds, "2", "n4", {assignmentBytes("web", 0)}));
  EXPECT_EQ(o.verdict, ClientVerdict::Nack);
  EXPECT_EQ(sotwReq(o.requests[0]).version_info(), "1");
  EXPECT_EQ(s.clusters(), before);

  // A resource of another type inside a CDS response, and a type never asked for.
  discovery::DiscoveryResponse mixed;
  mixed.set_type_url(kCds);
  mixed.set_nonce("n5");
  mixed.add_resources()->set_type_url(kEds);
  EXPECT_EQ(s.onMessage(mixed.SerializeAsString()).verdict, ClientVerdict::Nack);
  o = s.onMessage(sotw("type.googleapis.com/x.Y", "1", "n6", {}));
  EXPECT_EQ(o.verdict, ClientVerdict::Nack);
  EXPECT_EQ(sotwReq(o.requests[0]).type_url(), "type.googleapis.com/x.Y");
  EXPECT_EQ(s.clusters(), before);

  EXPECT_EQ(s.onMessage("\x0a\xff").verdict, ClientVerdict::Invalid);
}

TEST(AdsClientSotw, CdsIsFullStateAndANewStreamResubscribes) {
  AdsClientState s(opts(false, {"web", "api"}));
  (void)s.streamStarted();
  (void)s.onMessage(sotw(kCds, "1", "n1", {clusterBytes("web"), clusterBytes("api")}));
  (void)s.onMessage(sotw(kEds, "1", "n2", {assignmentBytes("web", 9001), assignmentBytes("api", 9002)}));
  EXPECT_EQ(s.clusters().size(), 2u);

  // EDS is not full state: a response with one assignment leaves the other.
  (void)s.onMessage(sotw(kEds, "2", "n3", {assignmentBytes("web", 9003)}));
  EXPECT_EQ(s.clusters().at("api").endpoints.size(), 1u);

  // CDS is: api absent = removed, and EDS is asked for web only.
  auto o = s.onMessage(sotw(kCds, "2", "n4", {clusterBytes("web")}));
  EXPECT_TRUE(o.changed);
  EXPECT_EQ(s.clusters().count("api"), 0u);
  ASSERT_EQ(o.requests.size(), 2u);
  EXPECT_EQ(names(sotwReq(o.requests[1])), std::vector<std::string>{"web"});

  // The stream ends: the clusters stay; the next stream starts from the versions accepted.
  s.streamEnded();
  EXPECT_EQ(s.clusters().size(), 1u);
  auto again = s.streamStarted();
  ASSERT_EQ(again.size(), 2u);
  auto cds = sotwReq(again[0]);
  EXPECT_TRUE(cds.has_node());
  EXPECT_EQ(cds.version_info(), "2");
  EXPECT_TRUE(cds.response_nonce().empty());
  auto eds = sotwReq(again[1]);
  EXPECT_EQ(eds.type_url(), kEds);
  EXPECT_EQ(names(eds), std::vector<std::string>{"web"});
}

TEST(AdsClientSotw, WildcardAndReloads) {
  AdsClientState s(opts(false, {}, /*wildcard=*/true));
  auto first = s.streamStarted();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(names(sotwReq(first[0])).empty());
  (void)s.onMessage(sotw(kCds, "1", "n1", {clusterBytes("a"), clusterBytes("b")}));
  EXPECT_EQ(s.warming().size(), 2u);

  // A reload naming one cluster (no wildcard any more): b is dropped, CDS and EDS follow.
  bool changed = false;
  auto o = opts(false, {"a"});
  EXPECT_TRUE(s.restartNeeded(o));
  AdsClientState t(opts(false, {"a", "b"}));
  (void)t.streamStarted();
  (void)t.onMessage(sotw(kCds, "1", "n1", {clusterBytes("a"), clusterBytes("b")}));
  auto reqs = t.setOptions(opts(false, {"a"}), changed);
  EXPECT_TRUE(changed);
  EXPECT_EQ(t.warming().size(), 1u);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(names(sotwReq(reqs[0])), std::vector<std::string>{"a"});
  EXPECT_EQ(names(sotwReq(reqs[1])), std::vector<std::string>{"a"});

  // No names and no wildcard: nothing is asked for.
  AdsClientState none(opts(false, {}));
  EXPECT_TRUE(none.streamStarted().empty());
}

// --- delta ---

std::string delta(const std::string& type, const std::string& nonce,
                  const std::vector<std::pair<std::string, std::string>>& resources,
                  const std::vector<std::string>& removed = {}) {
  discovery::DeltaDiscoveryResponse r;
  r.set_type_url(type);
  r.set_nonce(nonce);
  r.set_system_version_info("sys-" + nonce);
  for (const auto& [name, bytes] : resources) {
    auto* res = r.add_resources();
    res->set_name(name);
    res->set_version("v-" + name + "-" + nonce);
    res->mutable_resource()->set_type_url(type);
    res->mutable_resource()->set_value(bytes);
  }
  for (const auto& n : removed) r.add_removed_resources(n);
  return r.SerializeAsString();
}

discovery::DeltaDiscoveryRequest deltaReq(const std::string& bytes) {
  discovery::DeltaDiscoveryRequest q;
  EXPECT_TRUE(parseMessage(bytes, q));
  return q;
}

TEST(AdsClientDelta, SubscribesAcksRemovesAndResumes) {
  AdsClientState s(opts(true, {"web"}));
  auto first = s.streamStarted();
  ASSERT_EQ(first.size(), 1u);
  auto q = deltaReq(first[0]);
  EXPECT_EQ(q.type_url(), kCds);
  EXPECT_EQ(q.node().id(), "b");
  ASSERT_EQ(q.resource_names_subscribe_size(), 1);
  EXPECT_EQ(q.resource_names_subscribe(0), "web");
  EXPECT_TRUE(q.initial_resource_versions().empty());

  auto o = s.onMessage(delta(kCds, "1", {{"web", clusterBytes("web")}}));
  EXPECT_EQ(o.verdict, ClientVerdict::Ack);
  ASSERT_EQ(o.requests.size(), 2u);
  auto ack = deltaReq(o.requests[0]);
  EXPECT_EQ(ack.response_nonce(), "1");
  EXPECT_FALSE(ack.has_error_detail());
  EXPECT_EQ(ack.resource_names_subscribe_size(), 0);
  auto eds = deltaReq(o.requests[1]);
  EXPECT_EQ(eds.type_url(), kEds);
  ASSERT_EQ(eds.resource_names_subscribe_size(), 1);
  EXPECT_EQ(eds.resource_names_subscribe(0), "web");

  (void)s.onMessage(delta(kEds, "2", {{"web", assignmentBytes("web", 9001)}}));
  EXPECT_EQ(s.clusters().at("web").endpoints.size(), 1u);
  EXPECT_EQ(s.clusters().at("web").version, "cds v-web-1, eds v-web-2");

  // A bad resource: NACK with the reason, nothing changes.
  o = s.onMessage(delta(kEds, "3", {{"web", assignmentBytes("web", 0)}}));
  EXPECT_EQ(o.verdict, ClientVerdict::Nack);
  auto nack = deltaReq(o.requests[0]);
  EXPECT_EQ(nack.response_nonce(), "3");
  EXPECT_TRUE(nack.has_error_detail());
  EXPECT_EQ(s.clusters().at("web").endpoints.size(), 1u);

  // A new stream: initial_resource_versions of what is held.
  s.streamEnded();
  auto again = s.streamStarted();
  ASSERT_EQ(again.size(), 2u);
  auto cds = deltaReq(again[0]);
  EXPECT_TRUE(cds.has_node());
  EXPECT_TRUE(cds.response_nonce().empty());
  EXPECT_EQ(cds.initial_resource_versions().at("web"), "v-web-1");
  auto eds2 = deltaReq(again[1]);
  EXPECT_EQ(eds2.initial_resource_versions().at("web"), "v-web-2");
  EXPECT_FALSE(eds2.has_node());

  // removed_resources: the assignment goes (warming again), then the cluster, and EDS is unsubscribed.
  o = s.onMessage(delta(kEds, "4", {}, {"web"}));
  EXPECT_TRUE(o.changed);
  EXPECT_TRUE(s.clusters().empty());
  EXPECT_EQ(s.warming(), std::set<std::string>{"web"});
  o = s.onMessage(delta(kCds, "5", {}, {"web"}));
  EXPECT_TRUE(s.warming().empty());
  ASSERT_EQ(o.requests.size(), 2u);
  auto unsub = deltaReq(o.requests[1]);
  ASSERT_EQ(unsub.resource_names_unsubscribe_size(), 1);
  EXPECT_EQ(unsub.resource_names_unsubscribe(0), "web");
}

TEST(AdsClientDelta, ResourceNameMustMatch) {
  AdsClientState s(opts(true, {"web"}));
  (void)s.streamStarted();
  auto o = s.onMessage(delta(kCds, "1", {{"api", clusterBytes("web")}}));
  EXPECT_EQ(o.verdict, ClientVerdict::Nack);
  EXPECT_NE(o.error.find("holds cluster web"), std::string::npos) << o.error;
  EXPECT_TRUE(s.clusters().empty());
}

// ---- ugate.v1.Message mailboxes (xds.client.messages) --------------------------------------------

// body: an aes128gcm body as Web Push sends it (header, 65-byte keyid, one record); checkAes128gcm accepts it.
std::string pushBody(char fill) {
  std::string b(16, 's');
  b += std::string("\x00\x00\x10\x00", 4);
  b.push_back(65);
  b.push_back(4);
  b.append(64, 'k');
  return b + std::string(40, fill);
}

const std::string kMsg(kMessageType);
const std::string kSelf(52, 'N');

std::string mailboxBytes(const std::string& recipient, const std::vector<std::string>& ids) {
  Mailbox m{recipient, {}};
  for (const auto& id : ids) m.envelopes.push_back({id, pushBody('c'), 60, "normal", 1000});
  return encodeMailbox(m);
}

std::vector<std::string> ids(const ClientOutcome& o) {
  std::vector<std::string> out;
  for (const Mailbox& m : o.messages) {
    for (const RelayEnvelope& e : m.envelopes) out.push_back(m.recipient + "/" + e.id);
  }
  return out;
}

TEST(AdsClientMessages, SubscribesByNameDeliversEachIdOnceAndNacksABadMailbox) {
  AdsClientOptions o = opts(false, {});
  o.mailboxes = {kSelf, "topic:news"};
  AdsClientState s(o);
  auto first = s.streamStarted();
  ASSERT_EQ(first.size(), 1u) << "no CDS names: only the mailboxes";
  auto q = sotwReq(first[0]);
  EXPECT_EQ(q.type_url(), kMsg);
  EXPECT_EQ(names(q), (std::vector<std::string>{kSelf, "topic:news"}));

  auto r = s.onMessage(sotw(kMsg, "1", "n1", {mailboxBytes(kSelf, {"s.a", "s.b"}), mailboxBytes("topic:news", {"t.1"})}));
  EXPECT_EQ(r.verdict, ClientVerdict::Ack);
  EXPECT_EQ(ids(r), (std::vector<std::string>{kSelf + "/s.a", kSelf + "/s.b", "topic:news/t.1"}));
  // The same mailbox again (a new version, or a new stream): only what is new.
  r = s.onMessage(sotw(kMsg, "2", "n2", {mailboxBytes(kSelf, {"s.a", "s.b", "s.c"})}));
  EXPECT_EQ(ids(r), (std::vector<std::string>{kSelf + "/s.c"}));
  s.streamEnded();
  s.streamStarted();
  r = s.onMessage(sotw(kMsg, "2", "n3", {mailboxBytes(kSelf, {"s.a", "s.b", "s.c"})}));
  EXPECT_EQ(r.verdict, ClientVerdict::Ack);
  EXPECT_TRUE(r.messages.empty()) << "a new stream delivers nothing twice";
  // Acknowledged at the server: gone from the mailbox, then a new one.
  r = s.onMessage(sotw(kMsg, "3", "n4", {mailboxBytes(kSelf, {"s.d"})}));
  EXPECT_EQ(ids(r), (std::vector<std::string>{kSelf + "/s.d"}));
  // Someone else's mailbox is not ours: ignored, still ACKed.
  r = s.onMessage(sotw(kMsg, "4", "n5", {mailboxBytes(std::string(52, 'O'), {"x.y"})}));
  EXPECT_EQ(r.verdict, ClientVerdict::Ack);
  EXPECT_TRUE(r.messages.empty());

  // A plaintext (not an aes128gcm body) NACKs the whole response: nothing delivered, version kept.
  ugate::v1::Message bad;
  bad.set_recipient(kSelf);
  auto* e = bad.add_envelopes();
  e->set_id("s.e");
  e->set_content_encoding("aes128gcm");
  e->set_ciphertext("hello in the clear");
  r = s.onMessage(sotw(kMsg, "5", "n6", {mailboxBytes(kSelf, {"s.f"}), bad.SerializeAsString()}));
  EXPECT_EQ(r.verdict, ClientVerdict::Nack);
  EXPECT_TRUE(r.messages.empty());
  EXPECT_NE(r.error.find("aes128gcm"), std::string::npos) << r.error;
  EXPECT_EQ(s.version(kMsg), "4");
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_TRUE(sotwReq(r.requests[0]).has_error_detail());
}

TEST(AdsClientMessages, DeltaChecksNamesAndForgetsRemovedMailboxes) {
  AdsClientOptions o = opts(true, {});
  o.mailboxes = {kSelf};
  AdsClientState s(o);
  auto first = s.streamStarted();
  ASSERT_EQ(first.size(), 1u);
  auto q = deltaReq(first[0]);
  EXPECT_EQ(q.type_url(), kMsg);
  ASSERT_EQ(q.resource_names_subscribe_size(), 1);
  EXPECT_EQ(q.resource_names_subscribe(0), kSelf);
  auto delta = [&](const std::string& name, const std::string& bytes, const std::string& nonce,
                   std::vector<std::string> removed = {}) {
    discovery::DeltaDiscoveryResponse d;
    d.set_type_url(kMsg);
    d.set_nonce(nonce);
    if (!bytes.empty()) {
      auto* res = d.add_resources();
      res->set_name(name);
      res->set_version("v" + nonce);
      res->mutable_resource()->set_type_url(kMsg);
      res->mutable_resource()->set_value(bytes);
    }
    for (auto& n : removed) d.add_removed_resources(n);
    return s.onMessage(d.SerializeAsString());
  };
  auto r = delta(kSelf, mailboxBytes(kSelf, {"s.a"}), "1");
  EXPECT_EQ(ids(r), (std::vector<std::string>{kSelf + "/s.a"}));
  r = delta("topic:x", mailboxBytes(kSelf, {"s.b"}), "2");
  EXPECT_EQ(r.verdict, ClientVerdict::Nack) << "the resource's name is not its recipient";
  r = delta("", "", "3", {kSelf});
  EXPECT_EQ(r.verdict, ClientVerdict::Ack);
  r = delta(kSelf, mailboxBytes(kSelf, {"s.a"}), "4");
  EXPECT_EQ(ids(r), (std::vector<std::string>{kSelf + "/s.a"})) << "a removed mailbox was forgotten";
}

}  // namespace
}  // namespace ugate::xds

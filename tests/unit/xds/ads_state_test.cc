// The ADS subscription state machine (src/xds/ads_state.h), sans-I/O: requests in, responses out,
// against the rules of ../shared/docs/XDS.md (nonces, per-type versions, ACK/NACK, stale nonces,
// wildcard, resubscription, removals in SotW and delta).
#include "xds/ads_state.h"

#include <gtest/gtest.h>

#include "xds/messages.h"

namespace ugate::xds::ads {
namespace {

const std::string kLds(kListenerType);
const std::string kRds(kRouteConfigurationType);
const std::string kCds(kClusterType);
const std::string kEds(kClusterLoadAssignmentType);

// snap: a snapshot of generation `gen` with {type, name, bytes} resources.
SnapshotPtr snap(uint64_t gen, std::vector<std::array<std::string, 3>> rs) {
  auto s = std::make_shared<Snapshot>();
  s->generation = gen;
  for (auto& [type, name, bytes] : rs) s->add(type, name, bytes);
  return s;
}

std::vector<std::string> names(const std::vector<Resource>& rs) {
  std::vector<std::string> n;
  for (const Resource& r : rs) n.push_back(r.name);
  return n;
}

SotwRequest sotw(const std::string& type, std::vector<std::string> ns, const std::string& nonce = "",
                 const std::string& version = "") {
  SotwRequest r;
  r.typeUrl = type;
  r.names = std::move(ns);
  r.nonce = nonce;
  r.versionInfo = version;
  return r;
}

SotwRequest nack(const std::string& type, std::vector<std::string> ns, const std::string& nonce,
                 const std::string& version) {
  SotwRequest r = sotw(type, std::move(ns), nonce, version);
  r.hasError = true;
  r.error = "bad";
  return r;
}

using V = std::vector<std::string>;

TEST(AdsSotw, FirstRequestIsAnsweredThenAckedWithoutAnswer) {
  SotwStream s(snap(1, {{kLds, "a", "A"}, {kLds, "b", "B"}}));
  std::vector<SotwResponse> out;
  EXPECT_EQ(s.onRequest(sotw(kLds, {"a"}), out), Verdict::Initial);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].typeUrl, kLds);
  EXPECT_EQ(out[0].versionInfo, "1");
  EXPECT_FALSE(out[0].nonce.empty());
  EXPECT_EQ(names(out[0].resources), V{"a"});
  EXPECT_EQ(out[0].resources[0].bytes, "A");
  const std::string nonce = out[0].nonce;
  out.clear();
  EXPECT_EQ(s.onRequest(sotw(kLds, {"a"}, nonce, "1"), out), Verdict::Ack);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(s.ackedVersion(kLds), "1");
}

TEST(AdsSotw, EmptyNamesIsWildcardUntilANameIsGiven) {
  SotwStream s(snap(1, {{kCds, "a", "A"}, {kCds, "b", "B"}}));
  std::vector<SotwResponse> out;
  s.onRequest(sotw(kCds, {}), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(names(out[0].resources), (V{"a", "b"}));
  s.onRequest(sotw(kCds, {"b"}, out[0].nonce, "1"), out);  // names b: answered with b alone
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(names(out[1].resources), V{"b"});
  // Now an empty list unsubscribes everything; it is no wildcard any more.
  s.onRequest(sotw(kCds, {}, out[1].nonce, "1"), out);
  EXPECT_EQ(out.size(), 2u);
  s.onSnapshot(snap(2, {{kCds, "a", "A2"}, {kCds, "b", "B2"}}), out);
  EXPECT_EQ(out.size(), 2u) << "nothing subscribed: no push";
  // `*` is an explicit wildcard.
  s.onRequest(sotw(kCds, {"*"}, out[1].nonce, "1"), out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(names(out[2].resources), (V{"a", "b"}));
  EXPECT_EQ(out[2].versionInfo, "2");
}

TEST(AdsSotw, NamedResourceThatDoesNotExistIsLeftOut) {
  SotwStream s(snap(1, {{kEds, "a", "A"}}));
  std::vector<SotwResponse> out;
  s.onRequest(sotw(kEds, {"a", "zz"}), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(names(out[0].resources), V{"a"});
}

TEST(AdsSotw, NackKeepsAckedVersionAndSendsNothingAgain) {
  SotwStream s(snap(1, {{kLds, "a", "A"}}));
  std::vector<SotwResponse> out;
  s.onRequest(sotw(kLds, {"a"}), out);
  s.onRequest(sotw(kLds, {"a"}, out[0].nonce, "1"), out);
  s.onSnapshot(snap(2, {{kLds, "a", "A-bad"}}), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].versionInfo, "2");
  EXPECT_EQ(s.onRequest(nack(kLds, {"a"}, out[1].nonce, "1"), out), Verdict::Nack);
  EXPECT_EQ(out.size(), 2u) << "a NACK is not answered with the same resources";
  EXPECT_EQ(s.ackedVersion(kLds), "1");
  // A fixed config is pushed.
  s.onSnapshot(snap(3, {{kLds, "a", "A-good"}}), out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].resources[0].bytes, "A-good");
  EXPECT_EQ(s.onRequest(sotw(kLds, {"a"}, out[2].nonce, "3"), out), Verdict::Ack);
  EXPECT_EQ(s.ackedVersion(kLds), "3");
}

TEST(AdsSotw, StaleNonceIsNotAnsweredButItsNamesAreKept) {
  SotwStream s(snap(1, {{kRds, "a", "A"}, {kRds, "b", "B"}}));
  std::vector<SotwResponse> out;
  s.onRequest(sotw(kRds, {"a"}), out);
  const std::string n1 = out[0].nonce;
  s.onSnapshot(snap(2, {{kRds, "a", "A2"}, {kRds, "b", "B"}}), out);  // n2 in flight
  ASSERT_EQ(out.size(), 2u);
  const std::string n2 = out[1].nonce;
  // The client, not having seen n2 yet, ACKs n1 and adds b: stale, not answered.
  EXPECT_EQ(s.onRequest(sotw(kRds, {"a", "b"}, n1, "1"), out), Verdict::Stale);
  EXPECT_EQ(s.ackedVersion(kRds), "");
  EXPECT_EQ(out.size(), 2u);
  // Its ACK of n2 (still naming a and b) gets b: the change was not lost.
  EXPECT_EQ(s.onRequest(sotw(kRds, {"a", "b"}, n2, "2"), out), Verdict::Ack);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(names(out[2].resources), (V{"a", "b"}));
}

TEST(AdsSotw, ResubscriptionSendsUnchangedResourcesAgain) {
  SotwStream s(snap(1, {{kEds, "a", "A"}, {kEds, "b", "B"}}));
  std::vector<SotwResponse> out;
  s.onRequest(sotw(kEds, {"a"}), out);
  s.onRequest(sotw(kEds, {"a", "b"}, out[0].nonce, "1"), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(names(out[1].resources), (V{"a", "b"}));
  s.onRequest(sotw(kEds, {"a"}, out[1].nonce, "1"), out);  // drops b: no answer needed
  ASSERT_EQ(out.size(), 2u);
  s.onRequest(sotw(kEds, {"a", "b"}, out[1].nonce, "1"), out);  // b again, unchanged: sent
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(names(out[2].resources), (V{"a", "b"}));
  EXPECT_NE(out[2].nonce, out[1].nonce);
}

TEST(AdsSotw, ReloadPushesOnlyTypesWhoseContentChanged) {
  SotwStream s(snap(1, {{kLds, "a", "A"}, {kRds, "a", "RA"}, {kEds, "a", "EA"}}));
  std::vector<SotwResponse> out;
  s.onRequest(sotw(kLds, {"a"}), out);
  s.onRequest(sotw(kRds, {"a"}), out);
  s.onRequest(sotw(kEds, {"a"}), out);
  ASSERT_EQ(out.size(), 3u);
  out.clear();
  s.onSnapshot(snap(2, {{kLds, "a", "A"}, {kRds, "a", "RA"}, {kEds, "a", "EA2"}}), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].typeUrl, kEds);
  EXPECT_EQ(out[0].versionInfo, "2");
  EXPECT_EQ(out[0].resources[0].bytes, "EA2");
}

TEST(AdsSotw, RemovedListenerLeavesTheFullSetRemovedEndpointsSendNothingForIt) {
  SotwStream s(snap(1, {{kLds, "a", "A"}, {kLds, "b", "B"}, {kEds, "a", "EA"}, {kEds, "b", "EB"}}));
  std::vector<SotwResponse> out;
  s.onRequest(sotw(kLds, {"a", "b"}), out);
  s.onRequest(sotw(kEds, {"a", "b"}), out);
  out.clear();
  s.onSnapshot(snap(2, {{kLds, "a", "A"}, {kEds, "a", "EA"}}), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].typeUrl, kEds);  // pushed in CDS, EDS, LDS, RDS order
  EXPECT_EQ(names(out[0].resources), V{"a"});  // what exists; absence means nothing for EDS
  EXPECT_EQ(out[1].typeUrl, kLds);  // the full set without b: b is deleted
  EXPECT_EQ(names(out[1].resources), V{"a"});
  EXPECT_TRUE(fullStateType(kLds));
  EXPECT_TRUE(fullStateType(kCds));
  EXPECT_FALSE(fullStateType(kRds));
  EXPECT_FALSE(fullStateType(kEds));
}

TEST(AdsSotw, NoncesAreUniquePerStreamAcrossTypes) {
  SotwStream s(snap(1, {{kLds, "a", "A"}, {kCds, "a", "C"}}));
  std::vector<SotwResponse> out;
  s.onRequest(sotw(kLds, {"a"}), out);
  s.onRequest(sotw(kCds, {"a"}), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NE(out[0].nonce, out[1].nonce);
  // LDS's nonce on a CDS request is stale for CDS.
  EXPECT_EQ(s.onRequest(sotw(kCds, {"a"}, out[0].nonce, "1"), out), Verdict::Stale);
  EXPECT_EQ(s.subscribedTypes(), 2u);
}

TEST(AdsSotw, UnknownTypeIsAnsweredEmpty) {
  SotwStream s(snap(1, {}));
  std::vector<SotwResponse> out;
  s.onRequest(sotw("type.googleapis.com/x.Y", {"a"}), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].resources.empty());
}

// --- delta ---

DeltaRequest delta(const std::string& type, V sub, V unsub = {}, const std::string& nonce = "") {
  DeltaRequest r;
  r.typeUrl = type;
  r.subscribe = std::move(sub);
  r.unsubscribe = std::move(unsub);
  r.nonce = nonce;
  return r;
}

TEST(AdsDelta, LegacyWildcardSendsAllThenOnlyChanges) {
  DeltaStream s(snap(1, {{kCds, "a", "A"}, {kCds, "b", "B"}}));
  std::vector<DeltaResponse> out;
  EXPECT_EQ(s.onRequest(delta(kCds, {}), out), Verdict::Initial);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(names(out[0].resources), (V{"a", "b"}));
  EXPECT_TRUE(out[0].removed.empty());
  EXPECT_EQ(out[0].systemVersion, "1");
  EXPECT_EQ(s.onRequest(delta(kCds, {}, {}, out[0].nonce), out), Verdict::Ack);
  EXPECT_EQ(out.size(), 1u);
  s.onSnapshot(snap(2, {{kCds, "a", "A"}, {kCds, "b", "B2"}, {kCds, "c", "C"}}), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(names(out[1].resources), (V{"b", "c"}));
  s.onSnapshot(snap(3, {{kCds, "b", "B2"}, {kCds, "c", "C"}}), out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[2].resources.empty());
  EXPECT_EQ(out[2].removed, V{"a"});
  s.onSnapshot(snap(4, {{kCds, "b", "B2"}, {kCds, "c", "C"}}), out);
  EXPECT_EQ(out.size(), 3u) << "nothing changed";
}

TEST(AdsDelta, ExplicitSubscriptionsAndUnsubscribe) {
  DeltaStream s(snap(1, {{kEds, "a", "A"}, {kEds, "b", "B"}}));
  std::vector<DeltaResponse> out;
  s.onRequest(delta(kEds, {"a"}), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(names(out[0].resources), V{"a"});
  s.onRequest(delta(kEds, {"b"}, {"a"}, out[0].nonce), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(names(out[1].resources), V{"b"});
  EXPECT_TRUE(out[1].removed.empty()) << "an unsubscribed name is not reported removed";
  // a changes: not subscribed any more, not pushed.
  s.onSnapshot(snap(2, {{kEds, "a", "A2"}, {kEds, "b", "B"}}), out);
  EXPECT_EQ(out.size(), 2u);
  // Unsubscribing needs no response.
  s.onRequest(delta(kEds, {}, {"b"}, out[1].nonce), out);
  EXPECT_EQ(out.size(), 2u);
}

TEST(AdsDelta, MissingExplicitNameIsReportedRemovedOnceThenSentWhenItAppears) {
  DeltaStream s(snap(1, {{kEds, "a", "A"}}));
  std::vector<DeltaResponse> out;
  s.onRequest(delta(kEds, {"a", "zz"}), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(names(out[0].resources), V{"a"});
  EXPECT_EQ(out[0].removed, V{"zz"});
  s.onSnapshot(snap(2, {{kEds, "a", "A2"}}), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[1].removed.empty()) << "zz was reported once";
  s.onSnapshot(snap(3, {{kEds, "a", "A2"}, {kEds, "zz", "Z"}}), out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(names(out[2].resources), V{"zz"});
  s.onSnapshot(snap(4, {{kEds, "a", "A2"}}), out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[3].removed, V{"zz"});
}

TEST(AdsDelta, ReconnectSkipsKnownVersionsAndRemovesGoneNames) {
  auto s1 = snap(1, {{kCds, "a", "A"}, {kCds, "b", "B"}});
  DeltaRequest r = delta(kCds, {});
  r.initialVersions = {{"a", s1->find(kCds, "a")->version}, {"b", "old"}, {"gone", "v"}};
  DeltaStream s(s1);
  std::vector<DeltaResponse> out;
  s.onRequest(r, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(names(out[0].resources), V{"b"});
  EXPECT_EQ(out[0].removed, V{"gone"});
}

TEST(AdsDelta, ReconnectStillSendsExplicitlySubscribedNames) {
  auto s1 = snap(1, {{kEds, "a", "A"}});
  DeltaRequest r = delta(kEds, {"a"});
  r.initialVersions = {{"a", s1->find(kEds, "a")->version}};
  DeltaStream s(s1);
  std::vector<DeltaResponse> out;
  s.onRequest(r, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(names(out[0].resources), V{"a"});
}

TEST(AdsDelta, SubscriptionChangeWithStaleNonceIsHonoured) {
  DeltaStream s(snap(1, {{kEds, "a", "A"}, {kEds, "b", "B"}}));
  std::vector<DeltaResponse> out;
  s.onRequest(delta(kEds, {"a"}), out);
  s.onSnapshot(snap(2, {{kEds, "a", "A2"}, {kEds, "b", "B"}}), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(s.onRequest(delta(kEds, {"b"}, {}, out[0].nonce), out), Verdict::Stale);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(names(out[2].resources), V{"b"});
}

TEST(AdsDelta, NackSendsNothingAgainUntilAChange) {
  DeltaStream s(snap(1, {{kLds, "a", "A"}}));
  std::vector<DeltaResponse> out;
  s.onRequest(delta(kLds, {"a"}), out);
  DeltaRequest n = delta(kLds, {}, {}, out[0].nonce);
  n.hasError = true;
  EXPECT_EQ(s.onRequest(n, out), Verdict::Nack);
  EXPECT_EQ(out.size(), 1u);
  s.onSnapshot(snap(2, {{kLds, "a", "A2"}}), out);
  ASSERT_EQ(out.size(), 2u);
}

TEST(AdsDelta, UnsubscribingANameStarStillCoversSendsItAgain) {
  DeltaStream s(snap(1, {{kCds, "a", "A"}}));
  std::vector<DeltaResponse> out;
  s.onRequest(delta(kCds, {"*", "a"}), out);
  ASSERT_EQ(out.size(), 1u);
  s.onRequest(delta(kCds, {}, {"a"}, out[0].nonce), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(names(out[1].resources), V{"a"});
  // Dropping `*` then leaves nothing subscribed; no response needed.
  s.onRequest(delta(kCds, {}, {"*"}, out[1].nonce), out);
  EXPECT_EQ(out.size(), 2u);
  s.onSnapshot(snap(2, {{kCds, "a", "A2"}}), out);
  EXPECT_EQ(out.size(), 2u);
}

TEST(AdsLimits, TypesAndNamesPerStreamAreBounded) {
  StreamLimits l;
  l.maxTypes = 2;
  l.maxNamesPerType = 3;
  SotwStream s(snap(1, {}), l);
  std::vector<SotwResponse> out;
  EXPECT_EQ(s.onRequest(sotw(kLds, {"a", "b", "c"}), out), Verdict::Initial);
  EXPECT_EQ(s.onRequest(sotw(kCds, {}), out), Verdict::Initial);
  EXPECT_EQ(s.onRequest(sotw(kEds, {}), out), Verdict::Refused) << "a third type";
  EXPECT_EQ(s.onRequest(sotw(kLds, {"a", "b", "c", "d"}, out[0].nonce), out), Verdict::Refused);
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(s.subscribedTypes(), 2u);

  DeltaStream d(snap(1, {}), l);
  std::vector<DeltaResponse> dout;
  EXPECT_NE(d.onRequest(delta(kEds, {"a", "b"}), dout), Verdict::Refused);
  EXPECT_NE(d.onRequest(delta(kEds, {"c"}), dout), Verdict::Refused);
  EXPECT_EQ(d.onRequest(delta(kEds, {"d"}), dout), Verdict::Refused) << "names add up across requests";
  EXPECT_NE(d.onRequest(delta(kEds, {"d"}, {"a"}), dout), Verdict::Refused) << "after an unsubscribe";
  EXPECT_NE(d.onRequest(delta(kCds, {}), dout), Verdict::Refused);
  EXPECT_EQ(d.onRequest(delta(kLds, {}), dout), Verdict::Refused);
  DeltaRequest big = delta(kRds, {});
  for (int i = 0; i < 4; ++i) big.initialVersions["n" + std::to_string(i)] = "v";
  EXPECT_EQ(DeltaStream(snap(1, {}), l).onRequest(big, dout), Verdict::Refused);
}

TEST(AdsResourceVersion, IsAHashOfTheBytes) {
  EXPECT_EQ(resourceVersion("abc"), resourceVersion("abc"));
  EXPECT_NE(resourceVersion("abc"), resourceVersion("abd"));
  EXPECT_EQ(resourceVersion("").size(), 16u);
}

}  // namespace
}  // namespace ugate::xds::ads

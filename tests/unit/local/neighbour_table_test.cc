// The receiving side: rate limit per source, replay window per node, own announcements, the
// neighbour table and its expiry. Time is passed in: no clock is read.
#include "local/neighbour_table.h"

#include <gtest/gtest.h>

namespace ugate::local {
namespace {

constexpr int64_t kWall = 1'700'000'000'000;

auth::PrivateKey newKey() {
  auto k = auth::PrivateKey::generate();
  EXPECT_TRUE(k);
  return k ? *k : auth::PrivateKey();
}

auth::Bytes announce(const auth::PrivateKey& key, uint64_t seq, int64_t ts, std::string name = "peer") {
  Announcement a;
  a.sequence = seq;
  a.timestampMs = ts;
  a.name = std::move(name);
  a.tcpPort = 15008;
  auto b = encodeAnnouncement(a, key);
  EXPECT_TRUE(b);
  return b ? *b : auth::Bytes{};
}

class ReceiverTest : public ::testing::Test {
 protected:
  ReceiverTest() : own_(newKey()), peer_(newKey()), r_(params()) {}
  ReceiverParams params() const {
    ReceiverParams p;
    p.ownId = own_.nodeId();
    p.expire = Duration(30'000);
    p.maxAge = Duration(60'000);
    p.maxFuture = Duration(10'000);
    p.ratePerSecond = 1;
    p.rateBurst = 3;
    p.maxNodes = 4;
    return p;
  }
  Received rx(const auth::Bytes& b, const std::string& src = "10.0.0.2", Duration at = Duration(0)) {
    return r_.receive(b, src, "eth0", kWall + at.count(), t0_ + at);
  }
  auth::PrivateKey own_, peer_;
  Receiver r_;
  MonotonicTime t0_{std::chrono::seconds(1000)};
};

TEST_F(ReceiverTest, NewThenKnown) {
  Received a = rx(announce(peer_, 1, kWall));
  ASSERT_EQ(a.reject, Reject::None);
  EXPECT_TRUE(a.isNew);
  Received b = rx(announce(peer_, 2, kWall), "10.0.0.2", Duration(2000));
  ASSERT_EQ(b.reject, Reject::None);
  EXPECT_FALSE(b.isNew);
  ASSERT_EQ(r_.table().nodes().size(), 1u);
  const Neighbour& n = r_.table().nodes().begin()->second;
  EXPECT_EQ(n.nodeId, peer_.nodeId());
  EXPECT_EQ(n.name, "peer");
  EXPECT_EQ(n.sequence, 2u);
  EXPECT_EQ(n.interface, "eth0");
  EXPECT_EQ(n.firstSeen, t0_);
  EXPECT_EQ(n.lastSeen, t0_ + Duration(2000));
}

TEST_F(ReceiverTest, ReplayedAndOlderSequencesAreRefused) {
  auth::Bytes first = announce(peer_, 10, kWall);
  ASSERT_EQ(rx(first).reject, Reject::None);
  EXPECT_EQ(rx(first, "10.0.0.2", Duration(1000)).reject, Reject::Replay);
  EXPECT_EQ(rx(announce(peer_, 9, kWall), "10.0.0.2", Duration(2000)).reject, Reject::Replay);
  EXPECT_EQ(rx(announce(peer_, 11, kWall), "10.0.0.2", Duration(3000)).reject, Reject::None);
}

TEST_F(ReceiverTest, LateAnnouncementsInsideTheWindowAreTakenOnce) {
  // IPv4 and IPv6 copies, and replies, may overtake each other: 12 before 11 is fine, once each.
  ASSERT_EQ(rx(announce(peer_, 10, kWall)).reject, Reject::None);
  ASSERT_EQ(rx(announce(peer_, 12, kWall)).reject, Reject::None);
  auth::Bytes eleven = announce(peer_, 11, kWall);
  EXPECT_EQ(rx(eleven).reject, Reject::None);
  EXPECT_EQ(rx(eleven, "10.0.0.3").reject, Reject::Replay);
  EXPECT_EQ(r_.table().nodes().begin()->second.sequence, 12u);  // the late one does not move it back
  // Far ahead, then one more than the window behind: refused, even though never seen.
  ASSERT_EQ(rx(announce(peer_, 12 + kReplayWindow + 5, kWall), "10.0.0.4").reject, Reject::None);
  EXPECT_EQ(rx(announce(peer_, 13, kWall), "10.0.0.5").reject, Reject::Replay);
  EXPECT_EQ(rx(announce(peer_, 12 + 5 + 1, kWall), "10.0.0.6").reject, Reject::None);  // just inside
}

TEST_F(ReceiverTest, TimestampWindow) {
  EXPECT_EQ(rx(announce(peer_, 1, kWall - 60'001)).reject, Reject::TooOld);
  EXPECT_EQ(rx(announce(peer_, 2, kWall + 10'001), "10.0.0.3").reject, Reject::TooNew);
  EXPECT_EQ(rx(announce(peer_, 3, kWall - 60'000), "10.0.0.4").reject, Reject::None);
  EXPECT_EQ(rx(announce(peer_, 4, kWall + 10'000), "10.0.0.5").reject, Reject::None);
}

TEST_F(ReceiverTest, OwnAnnouncementIsDropped) {
  EXPECT_EQ(rx(announce(own_, 1, kWall)).reject, Reject::Own);
  EXPECT_TRUE(r_.table().nodes().empty());
}

TEST_F(ReceiverTest, ForgedPacketsAreCountedByTheirReason) {
  auth::Bytes b = announce(peer_, 1, kWall);
  b.back() ^= 1;
  EXPECT_EQ(rx(b).reject, Reject::BadSignature);
  auth::Bytes t(b.begin(), b.begin() + 50);
  EXPECT_EQ(rx(t, "10.0.0.3").reject, Reject::Truncated);
  EXPECT_TRUE(r_.table().nodes().empty());
}

TEST_F(ReceiverTest, RateLimitPerSource) {
  // Burst 3, then one token per second; another source has its own bucket.
  auth::Bytes junk = {1, 2, 3};
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rx(junk).reject, Reject::Truncated);
  EXPECT_EQ(rx(junk).reject, Reject::RateLimited);
  EXPECT_EQ(rx(junk, "10.0.0.9").reject, Reject::Truncated);
  EXPECT_EQ(rx(junk, "10.0.0.2", Duration(999)).reject, Reject::RateLimited);
  EXPECT_EQ(rx(junk, "10.0.0.2", Duration(1000)).reject, Reject::Truncated);
}

TEST(Receiver, VerifyBudgetAcrossSources) {
  // Many sources (spoofed, say), each within its own bucket: the verifications of all of them
  // together are capped (burst 2 x verifyPerSecond); junk refused before the verify costs none.
  ReceiverParams p;
  p.ownId = "self";
  p.verifyPerSecond = 2;
  Receiver r(p);
  auto peer = newKey();
  MonotonicTime t{std::chrono::seconds(7)};
  auth::Bytes forged = announce(peer, 1, kWall);
  forged.back() ^= 1;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.receive(forged, "10.0.3." + std::to_string(i), "eth0", kWall, t).reject, Reject::BadSignature) << i;
  }
  EXPECT_EQ(r.receive(forged, "10.0.3.9", "eth0", kWall, t).reject, Reject::RateLimited);
  EXPECT_EQ(r.receive(auth::Bytes{1, 2}, "10.0.3.10", "eth0", kWall, t).reject, Reject::Truncated);
  // Half a second later one verification is allowed again: a good one goes through.
  EXPECT_EQ(r.receive(announce(peer, 2, kWall), "10.0.3.11", "eth0", kWall, t + Duration(500)).reject, Reject::None);
  EXPECT_EQ(r.receive(announce(peer, 3, kWall), "10.0.3.12", "eth0", kWall, t + Duration(500)).reject,
            Reject::RateLimited);
}

TEST_F(ReceiverTest, ExpiryAndNextExpiry) {
  ASSERT_EQ(rx(announce(peer_, 1, kWall)).reject, Reject::None);
  auto other = newKey();
  ASSERT_EQ(rx(announce(other, 1, kWall + 10'000, "other"), "10.0.0.3", Duration(10'000)).reject, Reject::None);
  EXPECT_EQ(r_.table().nextExpiry(), t0_ + Duration(30'000));
  EXPECT_TRUE(r_.table().expire(t0_ + Duration(29'999)).empty());
  auto gone = r_.table().expire(t0_ + Duration(30'000));
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].nodeId, peer_.nodeId());
  EXPECT_EQ(r_.table().nodes().size(), 1u);
  EXPECT_EQ(r_.table().nextExpiry(), t0_ + Duration(40'000));
  // An expired node that announces again is new again (its sequence moved on).
  Received back = rx(announce(peer_, 2, kWall + 31'000), "10.0.0.2", Duration(31'000));
  EXPECT_EQ(back.reject, Reject::None);
  EXPECT_TRUE(back.isNew);
}

TEST_F(ReceiverTest, TableFull) {
  for (int i = 0; i < 4; ++i) {
    auto k = newKey();
    ASSERT_EQ(rx(announce(k, 1, kWall), "10.0.1." + std::to_string(i)).reject, Reject::None);
  }
  EXPECT_EQ(rx(announce(peer_, 1, kWall), "10.0.2.1").reject, Reject::TableFull);
}

TEST(SourceRateLimiter, BoundedSources) {
  SourceRateLimiter rl(1, 1, 2);
  MonotonicTime t{std::chrono::seconds(5)};
  EXPECT_TRUE(rl.allow("a", t));
  EXPECT_TRUE(rl.allow("b", t));
  EXPECT_FALSE(rl.allow("c", t));  // full, and no bucket has refilled yet
  EXPECT_TRUE(rl.allow("c", t + std::chrono::seconds(1)));  // a and b refilled: forgotten
  EXPECT_LE(rl.size(), 2u);
}

TEST(ReplayWindow, ForgetsAfterTheWindow) {
  ReplayWindow w(Duration(1000), Duration(1000), 8);
  MonotonicTime t{std::chrono::seconds(5)};
  ASSERT_EQ(w.check("n", 5, kWall, kWall, t), Reject::None);
  w.accept("n", 5, t);
  EXPECT_EQ(w.check("n", 5, kWall, kWall, t), Reject::Replay);
  // After maxAge + maxFuture any replay of seq 5 would be too old; the entry may go.
  EXPECT_EQ(w.check("n", 5, kWall + 2001, kWall + 2001, t + Duration(2001)), Reject::None);
  EXPECT_EQ(w.size(), 0u);
}

TEST(DirectPeer, HeardAddressFirstThenAnnouncedOnesWithTheMeshPorts) {
  Neighbour n;
  n.nodeId = "ABC";
  n.name = "b";
  n.interface = "eth0";
  n.source = "10.202.0.2";
  n.tcpPort = 15008;
  n.quicPort = 15009;
  n.lastSeenWallMs = kWall;
  IpAddr v4, ll, global;
  ASSERT_TRUE(IpAddr::parse("10.202.0.2", v4));  // the same as the source: listed once
  ASSERT_TRUE(IpAddr::parse("fe80::1", ll));
  ASSERT_TRUE(IpAddr::parse("2001:db8::2", global));
  n.addresses = {v4, ll, global};
  DirectPeer p = directPeer(n, 7);
  EXPECT_EQ(p.id, "ABC");
  EXPECT_EQ(p.name, "b");
  EXPECT_EQ(p.source, "local");
  EXPECT_EQ(p.interface, "eth0");
  EXPECT_EQ(p.lastSeenUnixMs, kWall);
  ASSERT_EQ(p.meshTcp.size(), 3u);
  EXPECT_EQ(p.meshTcp[0].str(), "10.202.0.2:15008");
  EXPECT_EQ(p.meshTcp[1].str(), "[2001:db8::2]:15008");
  EXPECT_EQ(p.meshTcp[2].ip(), "fe80::1");  // link-local last
  EXPECT_EQ(reinterpret_cast<const sockaddr_in6*>(p.meshTcp[2].sa())->sin6_scope_id, 7u);  // dialable on eth0
  ASSERT_EQ(p.meshQuic.size(), 3u);
  EXPECT_EQ(p.meshQuic[0].str(), "10.202.0.2:15009");
}

TEST(DirectPeer, LinkLocalSourceGetsTheScopeAndNoPortMeansNoAddress) {
  Neighbour n;
  n.nodeId = "ABC";
  n.source = "fe80::2%eth0";
  n.tcpPort = 15008;
  DirectPeer p = directPeer(n, 3);
  ASSERT_EQ(p.meshTcp.size(), 1u);
  EXPECT_EQ(p.meshTcp[0].ip(), "fe80::2");
  EXPECT_EQ(reinterpret_cast<const sockaddr_in6*>(p.meshTcp[0].sa())->sin6_scope_id, 3u);
  EXPECT_TRUE(p.meshQuic.empty());  // no QUIC port announced
  // Without the interface's index a link-local address cannot be dialled: left out.
  EXPECT_TRUE(directPeer(n, 0).meshTcp.empty());
  // Heard over IPv6 link-local, announced an IPv4 address: the IPv4 one first.
  IpAddr v4;
  ASSERT_TRUE(IpAddr::parse("10.202.0.2", v4));
  n.addresses = {v4};
  p = directPeer(n, 3);
  ASSERT_EQ(p.meshTcp.size(), 2u);
  EXPECT_EQ(p.meshTcp[0].str(), "10.202.0.2:15008");
  EXPECT_EQ(p.meshTcp[1].ip(), "fe80::2");
  n.tcpPort = 0;
  EXPECT_TRUE(directPeer(n, 3).meshTcp.empty());
}

}  // namespace
}  // namespace ugate::local

// DecodeThread and ReactorLink (src/xds/decode_thread.h): jobs run in order off the reactor, their
// results come back on the reactor's thread, and nothing comes back through a cut link. And the
// ADS client state's split: decode() on the thread + onDecoded() on the reactor = onMessage().
#include "xds/decode_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "unit/http/h2_test_util.h"
#include "xds/ads_client_state.h"
#include "xds/messages.h"

namespace ugate::xds {
namespace {

TEST(DecodeThread, JobsRunInOrderOffTheReactorAndPostBackThroughTheLink) {
  http::test::ReactorThread rt;
  auto link = std::make_shared<ReactorLink>(rt.reactor());
  std::vector<int> seen;  // on the reactor's thread only
  std::atomic<bool> offLoop{true};
  {
    DecodeThread t;
    for (int i = 0; i < 50; ++i) {
      t.run([&, i, link] {
        if (rt.reactor().isThisThread()) offLoop = false;
        link->post([&, i] {
          if (!rt.reactor().isThisThread()) offLoop = false;
          seen.push_back(i);
        });
      });
    }
    ASSERT_TRUE(rt.waitFor([&] { return seen.size() == 50; }));
  }
  EXPECT_TRUE(offLoop);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], i);
}

TEST(DecodeThread, ACutLinkPostsNothing) {
  http::test::ReactorThread rt;
  auto link = std::make_shared<ReactorLink>(rt.reactor());
  EXPECT_TRUE(link->alive());
  rt.run([&] { link->cut(); });
  EXPECT_FALSE(link->alive());
  std::atomic<int> ran{0};
  DecodeThread t;
  std::atomic<bool> posted{true};
  t.run([&, link] { posted = link->post([&] { ++ran; }); });
  rt.run([] {});  // a turn of the loop
  ASSERT_TRUE(rt.waitFor([&] { return !posted.load(); }, 5000));
  EXPECT_EQ(ran.load(), 0);
}

TEST(DecodeThread, DecodedOnAThreadAppliesAsOnMessage) {
  // A CDS response, then an EDS response with an invalid endpoint: NACKed with the same reason.
  envoy::service::discovery::v3::DiscoveryResponse bad;
  bad.set_version_info("2");
  bad.set_type_url(std::string(kClusterLoadAssignmentType));
  bad.set_nonce("n2");
  bad.add_resources()->set_type_url(std::string(kClusterLoadAssignmentType));
  bad.mutable_resources(0)->set_value("\x0a\x01");  // truncated: not a ClusterLoadAssignment
  const std::string bytes = bad.SerializeAsString();

  AdsClientOptions o;
  o.nodeId = "n";
  o.wildcard = true;
  AdsClientState inlineState(o), threadState(o);
  inlineState.streamStarted();
  threadState.streamStarted();
  const ClientOutcome a = inlineState.onMessage(bytes);
  DecodedResponse d;
  std::thread([&] { d = AdsClientState::decode(false, bytes); }).join();
  const ClientOutcome b = threadState.onDecoded(std::move(d));
  EXPECT_EQ(a.verdict, ClientVerdict::Nack);
  EXPECT_EQ(b.verdict, a.verdict);
  EXPECT_EQ(b.error, a.error);
  EXPECT_EQ(b.requests, a.requests);
}

}  // namespace
}  // namespace ugate::xds

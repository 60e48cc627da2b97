// The `quic` listener kind's config (quic_config.cc): which ALPNs it serves, and the mesh ones
// (ugate, ugater: the mesh over QUIC) only with client certificates.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <ugate/listener.h>
#include <ugate/module.h>

#include "quic/quic_module.h"
#include "test_common/config_cases.h"

namespace ugate::quic {
namespace {

class QuicConfigEnv : public testing::Environment {
 public:
  void SetUp() override { modules().add(std::make_unique<QuicModule>(), listenerKinds()); }
};
const auto* const kEnv = testing::AddGlobalTestEnvironment(new QuicConfigEnv);

std::string listener(const std::string& tls) {
  return R"({"node": {"dataDir": "/d"}, "listeners": [{"name": "q", "kind": "quic", "address": "127.0.0.1:15443", "tls": )" +
         tls + "}]}";
}

TEST(QuicConfig, TheMeshAlpnsAreServed) {
  auto c = test::parseOk(listener(R"({"alpn": ["h3", "ugate", "ugater"]})"));
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->listeners.size(), 1u);
  EXPECT_EQ(c->listeners[0].tls->alpn, (std::vector<std::string>{"h3", "ugate", "ugater"}));
}

TEST(QuicConfig, TheMeshNeedsClientCertificates) {
  EXPECT_EQ(test::parseErr(listener(R"({"alpn": ["h3", "ugate"], "requireClientCert": false})")),
            "listeners[0].tls.alpn: 'ugate' (the mesh over QUIC) needs requireClientCert: mesh peers are nodes");
  EXPECT_NE(test::parseOk(listener(R"({"alpn": ["h3"], "requireClientCert": false})")), nullptr);
}

TEST(QuicConfig, UnknownAlpnIsRefused) {
  EXPECT_EQ(test::parseErr(listener(R"({"alpn": ["h2"]})")),
            "listeners[0].tls.alpn: 'h2' is not served over QUIC (known: h3, ugate, ugater)");
}

// "push": the push listener whose service HTTP/3 requests reach (push_h3_test.sh runs the accepted case).
std::string withPush(const std::string& push) {
  return R"({"node": {"dataDir": "/d"}, "listeners": [{"name": "q", "kind": "quic", "address": "127.0.0.1:15443", "push": )" +
         push + R"(}, {"name": "t", "kind": "tcp", "address": "127.0.0.1:15444", "to": "127.0.0.1:80"}]})";
}

TEST(QuicConfig, PushNamesAPushListener) {
  EXPECT_EQ(test::parseErr(withPush(R"("nope")")),
            "listeners[0].push: no listener is named 'nope' (the name of a `push` listener)");
  EXPECT_EQ(test::parseErr(withPush(R"("t")")), "listeners[0].push: listener 't' is of kind 'tcp', not 'push'");
  EXPECT_EQ(test::parseErr(withPush(R"("")")),
            "listeners[0].push: names no listener (the name of a `push` listener)");
  EXPECT_NE(test::parseErr(withPush("5")).find("listeners[0].push"), std::string::npos);
}

}  // namespace
}  // namespace ugate::quic

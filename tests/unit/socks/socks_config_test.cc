// The socks5 listener kind's options and validation, through parseConfig (errors name the path).
#include <gtest/gtest.h>

#include <ugate/config.h>
#include "socks/socks_module.h"
#include "socks/socks_options.h"

namespace ugate::socks {
namespace {

class SocksConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { registerSocksModule(listenerKinds()); }
  static Result<ConfigPtr> parse(const std::string& listener) {
    return parseConfig(R"({"listeners": [)" + listener + "]}", "test");
  }
  static std::string error(const std::string& listener) {
    auto c = parse(listener);
    return c ? std::string("(no error)") : c.error().detail;
  }
};

TEST_F(SocksConfigTest, LoopbackWithoutAuth) {
  auto c = parse(R"({"name": "s", "kind": "socks5", "address": "127.0.0.1:1080"})");
  ASSERT_TRUE(c) << c.error().detail;
  const auto& l = (*c)->listeners[0];
  EXPECT_EQ(l.streamKind, StreamKind::Socks5);
  auto* o = dynamic_cast<const SocksOptions*>(l.options.get());
  ASSERT_NE(o, nullptr);
  EXPECT_TRUE(o->users.empty());
  ASSERT_NE(l.spec, nullptr);
  EXPECT_NE(l.spec->newFrontDoor(l), nullptr);
}

TEST_F(SocksConfigTest, Users) {
  auto c = parse(R"({"name": "s", "kind": "socks5", "address": "0.0.0.0:0", "to": "original",
                     "users": [{"username": "alice", "password": "s3cret"}]})");
  ASSERT_TRUE(c) << c.error().detail;
  auto* o = dynamic_cast<const SocksOptions*>((*c)->listeners[0].options.get());
  ASSERT_NE(o, nullptr);
  ASSERT_EQ(o->users.size(), 1u);
  EXPECT_TRUE(o->checkCredentials("alice", "s3cret"));
}

TEST_F(SocksConfigTest, OpenProxyRefusedUnlessAllowed) {
  EXPECT_EQ(error(R"({"name": "s", "kind": "socks5", "address": "0.0.0.0:1080"})").rfind("listeners[0].address: 0.0.0.0:1080 is not a loopback address", 0), 0u)
      << error(R"({"name": "s", "kind": "socks5", "address": "0.0.0.0:1080"})");
  EXPECT_NE(error(R"({"name": "s", "kind": "socks5", "address": "[::]:1080"})").find("allowOpenProxy"), std::string::npos);
  EXPECT_TRUE(parse(R"({"name": "s", "kind": "socks5", "address": "0.0.0.0:1080", "allowOpenProxy": true})"));
  EXPECT_TRUE(parse(R"({"name": "s", "kind": "socks5", "address": "[::1]:1080"})"));
}

TEST_F(SocksConfigTest, ErrorsNameThePath) {
  EXPECT_EQ(error(R"({"name": "s", "kind": "socks5", "address": "127.0.0.1:1", "allowOpenProxy": 1})"),
            "listeners[0].allowOpenProxy: expected true or false, got number");
  EXPECT_EQ(error(R"({"name": "s", "kind": "socks5", "address": "127.0.0.1:1", "users": {}})"),
            "listeners[0].users: expected an array, got object");
  EXPECT_EQ(error(R"({"name": "s", "kind": "socks5", "address": "127.0.0.1:1", "users": [{"username": "a"}]})"),
            "listeners[0].users[0].password: required");
  EXPECT_EQ(error(R"({"name": "s", "kind": "socks5", "address": "127.0.0.1:1", "users": [{"username": "", "password": "x"}]})"),
            "listeners[0].users[0].username: must be 1 to 255 bytes");
  EXPECT_EQ(error(R"({"name": "s", "kind": "socks5", "address": "127.0.0.1:1", "users": [{"username": "a", "password": "x", "pw": 1}]})"),
            "listeners[0].users[0].pw: unknown key (known: username, password)");
  EXPECT_EQ(error(R"({"name": "s", "kind": "socks5", "address": "127.0.0.1:1", "users": [{"username": "a", "password": "x"}, {"username": "a", "password": "y"}]})"),
            "listeners[0].users[1].username: duplicate user 'a'");
  EXPECT_EQ(error(R"({"name": "s", "kind": "socks5", "address": "127.0.0.1:1", "user": []})").rfind("listeners[0].user: unknown key for kind 'socks5'", 0), 0u);
}

}  // namespace
}  // namespace ugate::socks

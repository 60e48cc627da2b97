// ConfigDefaults: node.dataDir from systemd's $STATE_DIRECTORY when the file sets none.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include <ugate/config.h>

namespace ugate {
namespace {

constexpr const char* kTlsListener =
    R"({"listeners": [{"name": "in", "kind": "tcp", "address": "127.0.0.1:1", "to": "x:1", "tls": {}}]})";

// ScopedStateDirectory sets (or, with nullopt, unsets) $STATE_DIRECTORY and restores it.
class ScopedStateDirectory {
 public:
  explicit ScopedStateDirectory(std::optional<std::string> v) {
    if (const char* old = std::getenv("STATE_DIRECTORY")) old_ = old;
    if (v) {
      ::setenv("STATE_DIRECTORY", v->c_str(), 1);
    } else {
      ::unsetenv("STATE_DIRECTORY");
    }
  }
  ~ScopedStateDirectory() {
    if (old_) {
      ::setenv("STATE_DIRECTORY", old_->c_str(), 1);
    } else {
      ::unsetenv("STATE_DIRECTORY");
    }
  }
  ScopedStateDirectory(const ScopedStateDirectory&) = delete;
  ScopedStateDirectory& operator=(const ScopedStateDirectory&) = delete;

 private:
  std::optional<std::string> old_;
};

TEST(ConfigDefaultsTest, FromEnvironmentTakesTheFirstAbsoluteStateDirectory) {
  {
    ScopedStateDirectory env(std::nullopt);
    EXPECT_EQ(ConfigDefaults::fromEnvironment().dataDir, "");
  }
  {
    ScopedStateDirectory env("/var/lib/ugate");
    EXPECT_EQ(ConfigDefaults::fromEnvironment().dataDir, "/var/lib/ugate");
  }
  {
    ScopedStateDirectory env("/var/lib/ugate:/var/lib/other");
    EXPECT_EQ(ConfigDefaults::fromEnvironment().dataDir, "/var/lib/ugate");
  }
  {
    ScopedStateDirectory env("relative/dir");
    EXPECT_EQ(ConfigDefaults::fromEnvironment().dataDir, "");
  }
  {
    ScopedStateDirectory env("");
    EXPECT_EQ(ConfigDefaults::fromEnvironment().dataDir, "");
  }
}

TEST(ConfigDefaultsTest, DataDirFillsOnlyAnUnsetKey) {
  ConfigDefaults d;
  d.dataDir = "/state";
  auto unset = parseConfig(R"({"node": {"name": "n"}})", "test", d);
  ASSERT_TRUE(unset.has_value()) << unset.error().detail;
  EXPECT_EQ((*unset)->node.dataDir, "/state");
  EXPECT_TRUE((*unset)->node.dataDirFromEnvironment);

  auto noNode = parseConfig("{}", "test", d);
  ASSERT_TRUE(noNode.has_value()) << noNode.error().detail;
  EXPECT_EQ((*noNode)->node.dataDir, "/state");

  auto set = parseConfig(R"({"node": {"dataDir": "/explicit"}})", "test", d);
  ASSERT_TRUE(set.has_value()) << set.error().detail;
  EXPECT_EQ((*set)->node.dataDir, "/explicit");
  EXPECT_FALSE((*set)->node.dataDirFromEnvironment);

  // /config_dump shows the file as written: the default is not injected into it.
  EXPECT_EQ((*unset)->json.find("/state"), std::string::npos);

  auto none = parseConfig("{}", "test");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ((*none)->node.dataDir, "");
  EXPECT_FALSE((*none)->node.dataDirFromEnvironment);
}

TEST(ConfigDefaultsTest, StateDirectorySatisfiesTheTlsRequirement) {
  auto without = parseConfig(kTlsListener, "test");
  ASSERT_FALSE(without.has_value());
  EXPECT_EQ(without.error().detail.rfind("node.dataDir: required", 0), 0u)
      << without.error().detail;
  ConfigDefaults d;
  d.dataDir = "/state";
  auto with = parseConfig(kTlsListener, "test", d);
  ASSERT_TRUE(with.has_value()) << with.error().detail;
  EXPECT_EQ((*with)->node.dataDir, "/state");
}

TEST(ConfigDefaultsTest, EmbeddedDefaultConfigStaysWithoutDataDir) {
  // Run by hand (no $STATE_DIRECTORY) the embedded default names no directory at all.
  auto c = parseConfig(defaultConfigJson(), "<default>", ConfigDefaults{});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ((*c)->node.dataDir, "");
  EXPECT_FALSE((*c)->usesTls());  // so nothing would be written even under systemd
}

}  // namespace
}  // namespace ugate

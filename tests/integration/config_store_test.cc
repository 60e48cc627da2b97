// The config store's file source as a process (issue 19 §3): with `configWatch`, an edit of the
// config file is applied like SIGHUP (a new route takes effect, a held connection is not dropped),
// a broken edit is refused (logged, counted) and the running config keeps serving; /config_dump
// says which source supplied each resource with its version, and a dump loaded back is a config.
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "test_common/test_util.h"
#include "test_common/ugated_fixture.h"

namespace ugate::test {
namespace {

/** echoes: the held connection still carries bytes both ways. */
bool echoes(int fd) {
  if (::send(fd, "ping", 4, MSG_NOSIGNAL) != 4) return false;
  char buf[4];
  return ::recv(fd, buf, 4, MSG_WAITALL) == 4 && std::string(buf, 4) == "ping";
}

std::string withWatch(const UgatedFixture& f, uint16_t port, uint16_t backend) {
  return f.config(UgatedFixture::listener("in", "tcp", port, "127.0.0.1:" + std::to_string(backend)),
                  R"(, "configWatch": {"debounce": "50ms"})", /*workers=*/2);
}

TEST(ConfigStoreTest, AnEditOfTheWatchedFileIsAppliedAndABrokenOneRefused) {
  auto backendA = taggedServer("A"), backendB = taggedServer("B");
  UgatedFixture f;
  const uint16_t in = freePort();
  ASSERT_TRUE(f.start(withWatch(f, in, backendA->port()))) << f.logs();
  ASSERT_EQ(tagThrough(in), "A");
  EXPECT_EQ(f.metric("ugate_config_watched"), 1);
  const int held = connectTcp(in);
  ASSERT_GE(held, 0);
  char tag = 0;
  ASSERT_EQ(::recv(held, &tag, 1, MSG_WAITALL), 1);
  EXPECT_EQ(tag, 'A');

  // An edit in place (truncate and write): the new route, no signal sent.
  f.rewrite(withWatch(f, in, backendB->port()));
  ASSERT_TRUE(waitFor([&] { return tagThrough(in) == "B"; })) << f.logs();
  EXPECT_EQ(f.metric(R"(ugate_config_reloads_total{result="ok"})"), 1);
  EXPECT_EQ(f.metric("ugate_config_watch_changes_total"), 1);
  EXPECT_TRUE(echoes(held)) << "the edit dropped a connection";

  // A broken edit: refused with the reason, counted; the running config keeps serving.
  f.rewrite("{\"listeners\": [ broken");
  ASSERT_TRUE(f.waitMetric(R"(ugate_config_reloads_total{result="error"})", 1)) << f.logs();
  EXPECT_NE(f.logs().find("reload rejected"), std::string::npos) << f.logs();
  EXPECT_NE(f.logs().find("invalid JSON"), std::string::npos) << f.logs();
  EXPECT_EQ(tagThrough(in), "B");
  EXPECT_TRUE(echoes(held));
  // A config that parses but is wrong is refused the same way, with its path.
  f.rewrite(f.config(UgatedFixture::listener("in", "tcp", in, "not-a-target"), R"(, "configWatch": {})"));
  ASSERT_TRUE(f.waitMetric(R"(ugate_config_reloads_total{result="error"})", 2)) << f.logs();
  EXPECT_NE(f.logs().find("listeners[0].to"), std::string::npos) << f.logs();
  EXPECT_EQ(tagThrough(in), "B");

  // An editor's write-to-a-temporary-and-rename is seen too (the watch is on the directory).
  const std::string tmp = f.dir.write("ugated.json.tmp", withWatch(f, in, backendA->port()));
  const std::string path = f.dir.path() + "/ugated.json";
  ASSERT_EQ(::rename(tmp.c_str(), path.c_str()), 0);
  ASSERT_TRUE(waitFor([&] { return tagThrough(in) == "A"; })) << f.logs();
  EXPECT_EQ(f.metric(R"(ugate_config_reloads_total{result="ok"})"), 2);
  EXPECT_TRUE(echoes(held));

  // /config_dump: the file source, its location, and each resource with its version.
  const std::string dump = httpBody(f.admin, "/config_dump");
  EXPECT_NE(dump.find(R"("configSources": [)"), std::string::npos) << dump;
  EXPECT_NE(dump.find(R"({"source": "file", "location": ")" + path + R"(", "version": ")"), std::string::npos)
      << dump;
  EXPECT_NE(dump.find(R"({"type": "listener", "name": "in", "version": ")"), std::string::npos) << dump;
  EXPECT_NE(dump.find(R"({"type": "section", "name": "configWatch", "version": ")"), std::string::npos) << dump;

  // The dump written back as the config is a valid config (its store keys are not config): applied.
  f.rewrite(dump);
  ASSERT_TRUE(f.waitMetric(R"(ugate_config_reloads_total{result="ok"})", 3)) << f.logs();
  EXPECT_EQ(f.metric(R"(ugate_config_reloads_total{result="error"})"), 2);
  EXPECT_EQ(tagThrough(in), "A");
  EXPECT_TRUE(echoes(held));
  ::close(held);
}

TEST(ConfigStoreTest, WithoutConfigWatchTheFileIsNotWatched) {
  UgatedFixture f;
  ASSERT_TRUE(f.start(f.config(UgatedFixture::listener("in", "tcp", freePort(), "reject")))) << f.logs();
  EXPECT_EQ(f.metric("ugate_config_watched"), 0);
  const std::string dump = httpBody(f.admin, "/config_dump");
  EXPECT_NE(dump.find(R"({"source": "file", "location": ")" + f.dir.path() + "/ugated.json"), std::string::npos)
      << dump;
}

}  // namespace
}  // namespace ugate::test

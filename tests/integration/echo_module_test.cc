// The echo module (src/echo), the skeleton module, with ugated as a process: its listener kind
// answers connections itself on every worker, with the listener counters, access log and metrics
// every kind has, back-pressure, half-close, idle timeout and drain.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_common/test_util.h"
#include "test_common/ugated_fixture.h"

namespace ugate::test {
namespace {

std::string at(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

TEST(EchoModule, EchoesEveryByteOnEveryWorkerAndCountsIt) {
  UgatedFixture f;
  const uint16_t port = freePort();
  ASSERT_TRUE(f.start(f.config(UgatedFixture::listener("e", "echo", port, ""), "", /*workers=*/2))) << f.logs();
  EchoClients many(port, 20);
  ASSERT_EQ(many.opened(), 20);
  ASSERT_TRUE(many.allEcho());
  ASSERT_TRUE(many.allEcho());

  // 4 MiB written while it is read back: more than any socket buffer, so the echo must stop
  // reading while the client does not read, and go on when it does.
  std::string big(4u << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) >> 3);
  const int fd = connectTcp(port);
  ASSERT_GE(fd, 0);
  std::thread writer([&] { writeAll(fd, big.data(), big.size()); });
  std::string back(big.size(), '\0');
  const bool gotAll = readN(fd, back.data(), back.size());
  writer.join();
  ASSERT_TRUE(gotAll);
  EXPECT_EQ(fnv1a64(back.data(), back.size()), fnv1a64(big.data(), big.size()));
  close(fd);

  EXPECT_TRUE(f.waitMetric(R"(ugate_listener_connections_total{listener="e"})", 21)) << f.stats();
  EXPECT_EQ(f.metric("ugate_echo_connections_total"), 21);
  EXPECT_TRUE(f.waitMetric(R"(ugate_listener_closes_total{listener="e",reason="ok"})", 1)) << f.stats();
  EXPECT_GE(f.metric("ugate_echo_bytes_total"), static_cast<int64_t>(big.size()));
  EXPECT_GE(f.metric(R"(ugate_listener_received_bytes_total{listener="e"})"), static_cast<int64_t>(big.size()));
}

TEST(EchoModule, HalfCloseGetsEverythingBackThenEofAndAnAccessLogLine) {
  UgatedFixture f;
  const uint16_t port = freePort();
  ASSERT_TRUE(f.start(f.config(UgatedFixture::listener("e", "echo", port, ""), R"(, "log": {"accessLog": "-"})")))
      << f.logs();
  // The client sends, half-closes and reads to EOF: everything sent comes back before the EOF.
  const int fd = connectTcp(port);
  ASSERT_GE(fd, 0);
  const std::string hello = "hello, echo";
  ASSERT_TRUE(writeAll(fd, hello.data(), hello.size()));
  ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
  EXPECT_EQ(readAll(fd, 5000), hello);
  close(fd);
  EXPECT_TRUE(waitFor([&] {
    const std::string l = f.logs();
    return l.find(R"("listener":"e")") != std::string::npos && l.find(R"("route":"echo")") != std::string::npos &&
           l.find(R"("close":"ok")") != std::string::npos;
  })) << f.logs();
  EXPECT_TRUE(f.waitMetric(R"(ugate_listener_closes_total{listener="e",reason="ok"})", 1)) << f.stats();
  EXPECT_TRUE(f.waitMetric(R"(ugate_listener_connections_active{listener="e"})", 0)) << f.stats();
}

TEST(EchoModule, IdleConnectionsCloseAtTheListenersIdleTimeout) {
  UgatedFixture f;
  const uint16_t port = freePort();
  ASSERT_TRUE(f.start(f.config(UgatedFixture::listener("e", "echo", port, "", R"(, "idleTimeout": "300ms")"))))
      << f.logs();
  const int fd = connectTcp(port);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(closureName(awaitClosure(fd)), std::string("eof"));
  close(fd);
  EXPECT_TRUE(f.waitMetric(R"(ugate_listener_closes_total{listener="e",reason="idle_timeout"})", 1)) << f.stats();
}

TEST(EchoModule, DrainClosesOpenConnectionsAndTheDaemonExitsZero) {
  UgatedFixture f;
  const uint16_t port = freePort();
  ASSERT_TRUE(f.start(f.config(UgatedFixture::listener("e", "echo", port, ""), "", /*workers=*/2))) << f.logs();
  EchoClients open(port, 6);
  ASSERT_TRUE(open.allEcho());
  f.proc->signal(SIGTERM);
  for (Closure c : open.awaitClosures()) EXPECT_EQ(closureName(c), std::string("eof"));
  EXPECT_EQ(f.proc->wait(), 0) << f.logs();
}

TEST(EchoModule, EchoKindIsAProxyTargetLikeAnyBackend) {
  // A tcp listener forwards to the echo listener of the same daemon: the module's kind behind core's path.
  UgatedFixture f;
  const uint16_t echo = freePort(), front = freePort();
  ASSERT_TRUE(f.start(f.config(UgatedFixture::listener("e", "echo", echo, "") + "," +
                               UgatedFixture::listener("front", "tcp", front, at(echo)))))
      << f.logs();
  EchoClients through(front, 4);
  ASSERT_EQ(through.opened(), 4);
  EXPECT_TRUE(through.allEcho());
  EXPECT_TRUE(f.waitMetric(R"(ugate_listener_connections_total{listener="e"})", 4)) << f.stats();
}

TEST(EchoModule, TlsOrATargetOnAnEchoListenerIsAConfigErrorWithItsPath) {
  UgatedFixture f;
  const std::string tls = f.config(UgatedFixture::listener("e", "echo", freePort(), "", R"(, "tls": {})"));
  f.rewrite(tls);
  DaemonProcess check({"--check-config", f.dir.path() + "/ugated.json"});
  EXPECT_EQ(check.wait(), 2);
  EXPECT_NE(check.logs().find("listeners[0].tls: kind 'echo' answers in the clear (no TLS)"), std::string::npos)
      << check.logs();
}

}  // namespace
}  // namespace ugate::test

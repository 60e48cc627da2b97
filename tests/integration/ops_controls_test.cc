// Runtime controls of a running ugated, on ugated as a process over loopback: the readiness port
// (config "health"), POST /drain and /logging on the admin port, routes chosen by the client's
// address (match.sourceCidr), and the daemon log as JSON lines (log.format "json").
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_common/test_util.h"
#include "test_common/ugated_fixture.h"

namespace ugate::test {
namespace {

/** request: one raw HTTP/1.1 request with Connection: close; the whole response. */
std::string request(uint16_t port, const std::string& method, const std::string& target) {
  return roundTrip(port, method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 5000);
}

int status(const std::string& resp) { return resp.size() > 12 ? atoi(resp.c_str() + 9) : -1; }

std::string body(const std::string& resp) {
  auto pos = resp.find("\r\n\r\n");
  return pos == std::string::npos ? "" : resp.substr(pos + 4);
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

/** connectFrom: a TCP connection to 127.0.0.1:port from the local address `src` (-1 on failure). */
int connectFrom(const char* src, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, src, &a.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

/** greeter: a server that writes `word` to each connection, then closes it. */
TcpServer::Handler greeter(std::string word) {
  return [word](int fd) {
    writeAll(fd, word.data(), word.size());
    shutdown(fd, SHUT_WR);
    readAll(fd, 2000);
  };
}

TEST(Operations, ReadinessPortAnswersOnlyItsPathAnd503AfterPostDrain) {
  UgatedFixture f;
  TcpServer echo;
  const uint16_t port = freePort();
  const uint16_t health = freePort();
  ASSERT_TRUE(f.start(f.config(UgatedFixture::listener("fwd", "tcp", port, "127.0.0.1:" + std::to_string(echo.port())),
                               R"(, "limits": {"drainTimeout": "60s"}, "health": {"address": "127.0.0.1:)" +
                                   std::to_string(health) + R"("})")))
      << f.logs();
  std::string resp = request(health, "GET", "/healthz/ready");
  EXPECT_EQ(status(resp), 200) << resp;
  EXPECT_EQ(body(resp), "ready\n");
  resp = request(health, "HEAD", "/healthz/ready");
  EXPECT_EQ(status(resp), 200) << resp;
  EXPECT_EQ(body(resp), "") << "HEAD has no body";
  // Nothing else: no stats, no config, no admin paths, no control, whatever the method.
  for (const char* path : {"/stats", "/config_dump", "/ready", "/healthz", "/", "/logging", "/healthz/ready/x"}) {
    EXPECT_EQ(status(request(health, "GET", path)), 404) << path;
  }
  EXPECT_EQ(status(request(health, "POST", "/drain")), 404);
  EXPECT_EQ(status(request(health, "POST", "/healthz/ready")), 404);
  EXPECT_EQ(status(request(health, "DELETE", "/healthz/ready")), 404);

  // Wrong methods on the admin port's controls: 405 naming what is allowed.
  resp = request(f.admin, "GET", "/drain");
  EXPECT_EQ(status(resp), 405) << resp;
  EXPECT_NE(resp.find("\r\nAllow: POST\r\n"), std::string::npos) << resp;
  resp = request(f.admin, "DELETE", "/logging");
  EXPECT_EQ(status(resp), 405) << resp;
  EXPECT_NE(resp.find("\r\nAllow: GET, HEAD, POST\r\n"), std::string::npos) << resp;
  resp = request(f.admin, "POST", "/stats");
  EXPECT_NE(resp.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos) << resp;
  EXPECT_EQ(f.metric("ugate_admin_bad_requests_total{reason=\"method_not_allowed\"}"), 3);
  EXPECT_EQ(status(request(health, "GET", "/healthz/ready")), 200) << "the 405s drained nothing";

  // A stream open through the drain keeps ugated draining (not gone) while the probes are checked.
  int c = connectTcp(port);
  ASSERT_GE(c, 0);
  char buf[4];
  ASSERT_TRUE(writeAll(c, "ping", 4) && readN(c, buf, 4));
  resp = request(f.admin, "POST", "/drain");
  EXPECT_EQ(status(resp), 202) << resp;
  EXPECT_EQ(body(resp), "draining\n");
  resp = request(health, "GET", "/healthz/ready");
  EXPECT_EQ(status(resp), 503) << resp;
  EXPECT_EQ(body(resp), "draining\n");
  EXPECT_EQ(status(request(f.admin, "GET", "/ready")), 503);
  EXPECT_EQ(f.metric("ugate_draining"), 1);
  EXPECT_EQ(body(request(f.admin, "POST", "/drain")), "already draining\n");
  EXPECT_NE(f.logs().find("admin: POST /drain: draining (deadline 60000 ms)"), std::string::npos) << f.logs();
  EXPECT_LT(connectTcp(port), 0) << "the listeners closed";
  ASSERT_TRUE(writeAll(c, "pong", 4) && readN(c, buf, 4)) << "the open stream still flows";
  close(c);
  EXPECT_EQ(f.proc->wait(), 0) << f.logs();
}

TEST(Operations, ReadinessPortFollowsReloads) {
  UgatedFixture f;
  const uint16_t health = freePort();
  const std::string plain = f.config("");
  const std::string withHealth =
      f.config("", R"(, "health": {"address": "127.0.0.1:)" + std::to_string(health) + R"(", "path": "/ready"})");
  ASSERT_TRUE(f.start(plain)) << f.logs();
  EXPECT_LT(connectTcp(health), 0) << "off without the section";
  f.rewrite(withHealth);
  f.proc->signal(SIGHUP);
  ASSERT_TRUE(waitFor([&] { return status(request(health, "GET", "/ready")) == 200; })) << f.logs();
  EXPECT_EQ(status(request(health, "GET", "/healthz/ready")), 404) << "only the configured path";
  f.rewrite(plain);
  f.proc->signal(SIGHUP);
  ASSERT_TRUE(waitFor([&] {
    int fd = connectTcp(health);
    if (fd >= 0) close(fd);
    return fd < 0;
  })) << f.logs();
  EXPECT_EQ(httpGet(f.admin, "/ready"), 200);
}

TEST(Operations, LoggingLevelChangesWhatIsLoggedAtRuntime) {
  UgatedFixture f;
  const uint16_t port = freePort();
  ASSERT_TRUE(f.start(f.config(UgatedFixture::listener("rej", "tcp", port, "reject")))) << f.logs();
  // A stream a route rejects is logged at debug level only.
  auto rejectOne = [&] {
    int fd = connectTcp(port);
    if (fd >= 0) readAll(fd, 5000), close(fd);
  };
  const std::string debugLine = "listener=rej src=127.0.0.1:";
  EXPECT_EQ(body(request(f.admin, "GET", "/logging")), "level: info\n");
  rejectOne();
  ASSERT_TRUE(f.waitMetric("ugate_listener_closes_total{listener=\"rej\",reason=\"route_rejected\"}", 1));
  EXPECT_EQ(count(f.logs(), debugLine), 0u);

  std::string resp = request(f.admin, "POST", "/logging?level=debug");
  EXPECT_EQ(status(resp), 200) << resp;
  EXPECT_EQ(body(resp), "level: debug\n");
  EXPECT_EQ(body(request(f.admin, "GET", "/logging")), "level: debug\n");
  rejectOne();
  ASSERT_TRUE(waitFor([&] { return count(f.logs(), debugLine) == 1; })) << f.logs();

  // Bad levels change nothing and say what is allowed.
  for (const char* q : {"/logging?level=loud", "/logging", "/logging?level=", "/logging?lvl=debug", "/logging?level=DEBUG"}) {
    resp = request(f.admin, "POST", q);
    EXPECT_EQ(status(resp), 400) << q << resp;
    EXPECT_NE(body(resp).find("is not one of trace, debug, info, warn, error, critical, off"), std::string::npos) << resp;
  }
  EXPECT_EQ(body(request(f.admin, "GET", "/logging")), "level: debug\n");

  // Raised to error: the change itself is still logged, the debug lines are not.
  EXPECT_EQ(status(request(f.admin, "POST", "/logging?level=error")), 200);
  rejectOne();
  ASSERT_TRUE(f.waitMetric("ugate_listener_closes_total{listener=\"rej\",reason=\"route_rejected\"}", 3));
  EXPECT_EQ(count(f.logs(), debugLine), 1u) << f.logs();
  EXPECT_NE(f.logs().find("admin: POST /logging: log level info -> debug"), std::string::npos) << f.logs();
  EXPECT_NE(f.logs().find("admin: POST /logging: log level debug -> error"), std::string::npos) << f.logs();
}

TEST(Operations, SourceCidrRouteIsChosenByTheClientAddress) {
  UgatedFixture f;
  TcpServer a(greeter("A")), b(greeter("B"));
  const uint16_t port = freePort();
  const std::string routes = R"(, "routes": [{"name": "from-2", "match": {"listener": "in", "sourceCidr": ["127.0.0.2/32", "fd00::/8"]}, "to": "127.0.0.1:)" +
                             std::to_string(a.port()) + R"("}])";
  ASSERT_TRUE(f.start(f.config(UgatedFixture::listener("in", "tcp", port, "127.0.0.1:" + std::to_string(b.port())), routes)))
      << f.logs();
  auto greeting = [&](const char* src) {
    int fd = connectFrom(src, port);
    if (fd < 0) return std::string("connect failed");
    std::string got = readAll(fd, 5000);
    close(fd);
    return got;
  };
  EXPECT_EQ(greeting("127.0.0.2"), "A");
  EXPECT_EQ(greeting("127.0.0.1"), "B");
  EXPECT_EQ(greeting("127.0.0.3"), "B");
  EXPECT_EQ(greeting("127.0.0.2"), "A");
  ASSERT_TRUE(waitFor([&] { return count(f.logs(), "\"route\":\"from-2\"") == 2; })) << f.logs();
  EXPECT_EQ(count(f.logs(), "\"route\":\"listener:in\""), 2u);
  // The latency histograms of /stats: per listener and per route, every stream counted once.
  EXPECT_TRUE(f.waitMetric("ugate_listener_stream_duration_seconds_count{listener=\"in\"}", 4)) << f.stats();
  EXPECT_EQ(f.metric("ugate_listener_connect_seconds_bucket{listener=\"in\",le=\"+Inf\"}"), 4);
  EXPECT_EQ(f.metric("ugate_route_connect_seconds_count{route=\"from-2\"}"), 2);
  EXPECT_EQ(f.metric("ugate_route_stream_duration_seconds_bucket{route=\"listener:in\",le=\"+Inf\"}"), 2);
  const std::string stats = f.stats();
  EXPECT_NE(stats.find("# TYPE ugate_route_connect_seconds histogram\n"), std::string::npos);
  EXPECT_NE(stats.find("ugate_route_connect_seconds_sum{route=\"from-2\"} "), std::string::npos);
}

TEST(Operations, JsonDaemonLogLinesParseAsJson) {
  UgatedFixture f;
  const uint16_t port = freePort();
  std::string cfg = f.config(UgatedFixture::listener("rej", "tcp", port, "reject"));
  cfg.replace(cfg.find(R"("level": "info")"), 15, R"("level": "debug", "format": "json")");
  ASSERT_TRUE(f.start(cfg)) << f.logs();
  // A line carrying client-controlled bytes: quotes, a backslash and a control character.
  roundTrip(f.admin, "GET /\"q\\\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 2000);
  int fd = connectTcp(port);
  ASSERT_GE(fd, 0);
  readAll(fd, 5000);
  close(fd);
  ASSERT_TRUE(waitFor([&] { return f.logs().find("route_rejected") != std::string::npos; })) << f.logs();
  std::istringstream in(f.logs());
  size_t daemonLines = 0;
  bool ready = false;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object()) << "not a JSON object: " << line;
    if (j.contains("close")) continue;  // an access-log line ("accessLog": "-" shares the output)
    ++daemonLines;
    ASSERT_EQ(j.size(), 3u) << line;
    EXPECT_TRUE(j["time"].is_string() && j["time"].get<std::string>().ends_with("Z")) << line;
    EXPECT_TRUE(j["level"] == "info" || j["level"] == "debug" || j["level"] == "warn") << line;
    ready |= j["message"].get<std::string>().find(" ready: ") != std::string::npos;
  }
  EXPECT_TRUE(ready) << f.logs();
  EXPECT_GE(daemonLines, 3u);
}

}  // namespace
}  // namespace ugate::test

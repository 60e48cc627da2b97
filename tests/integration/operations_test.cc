// What an operator does to a running ugated, checked on ugated as a process: rotating its log files
// (SIGUSR1, SIGHUP), reading the access log (which route or listener decided), poking the admin port
// with bad requests, and stopping it with SIGTERM right after an admin request, many times over.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_common/test_util.h"
#include "test_common/ugated_fixture.h"

namespace ugate::test {
namespace {

/** lines: the file's lines that contain `needle`. */
std::vector<std::string> lines(const std::string& text, const std::string& needle = "") {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l.find(needle) != std::string::npos) out.push_back(l);
  }
  return out;
}

/** echoOnce: one short exchange through a tcp listener that forwards to an echo server. */
bool echoOnce(uint16_t port) {
  int fd = connectTcp(port);
  if (fd < 0) return false;
  char buf[4];
  bool ok = writeAll(fd, "ping", 4) && readN(fd, buf, 4);
  close(fd);
  return ok;
}

std::string fileConfig(const UgatedFixture& f, uint16_t port, uint16_t echo) {
  return R"({"workers": 2, "admin": {"address": "127.0.0.1:)" + std::to_string(f.admin) +
         R"("}, "log": {"level": "info", "accessLog": ")" + f.dir.path() + R"(/access.log", "file": ")" +
         f.dir.path() + R"(/ugated.log"}, "listeners": [)" +
         UgatedFixture::listener("fwd", "tcp", port, "127.0.0.1:" + std::to_string(echo)) + "]}";
}

// logrotate's `copytruncate`-free way: move the files, then signal; new lines go to new files.
TEST(Operations, Usr1ReopensTheLogFilesAfterTheyWereMovedAndReloadsNothing) {
  UgatedFixture f;
  TcpServer echo;
  const uint16_t port = freePort();
  const std::string dir = f.dir.path();
  ASSERT_TRUE(f.start(fileConfig(f, port, echo.port()))) << f.logs();
  ASSERT_TRUE(echoOnce(port));
  ASSERT_TRUE(waitFor([&] { return lines(readFile(dir + "/access.log"), "\"listener\":\"fwd\"").size() == 1; }));
  EXPECT_NE(readFile(dir + "/ugated.log").find("ready"), std::string::npos) << "the daemon log goes to log.file";

  ASSERT_EQ(rename((dir + "/access.log").c_str(), (dir + "/access.log.1").c_str()), 0);
  ASSERT_EQ(rename((dir + "/ugated.log").c_str(), (dir + "/ugated.log.1").c_str()), 0);
  // A config change on disk: SIGUSR1 must not pick it up (only SIGHUP reloads).
  f.rewrite(fileConfig(f, port, echo.port()) + " ");
  f.proc->signal(SIGUSR1);
  ASSERT_TRUE(waitFor([&] { return readFile(dir + "/ugated.log").find("SIGUSR1: reopened") != std::string::npos; }))
      << readFile(dir + "/ugated.log.1");
  ASSERT_TRUE(echoOnce(port));
  ASSERT_TRUE(echoOnce(port));
  ASSERT_TRUE(waitFor([&] { return lines(readFile(dir + "/access.log"), "\"listener\":\"fwd\"").size() == 2; }));
  EXPECT_EQ(lines(readFile(dir + "/access.log.1"), "\"listener\":\"fwd\"").size(), 1u)
      << "lines after the reopen went to the moved file";
  EXPECT_EQ(readFile(dir + "/ugated.log.1").find("SIGUSR1"), std::string::npos);
  EXPECT_EQ(f.metric("ugate_log_reopens_total{result=\"ok\"}"), 1);
  EXPECT_EQ(f.metric("ugate_config_reloads_total{result=\"ok\"}"), 0) << "SIGUSR1 reloaded the config";

  // SIGHUP reopens too, and reloads.
  ASSERT_EQ(rename((dir + "/access.log").c_str(), (dir + "/access.log.2").c_str()), 0);
  ASSERT_EQ(rename((dir + "/ugated.log").c_str(), (dir + "/ugated.log.2").c_str()), 0);
  f.proc->signal(SIGHUP);
  ASSERT_TRUE(waitFor([&] { return readFile(dir + "/ugated.log").find("reloaded") != std::string::npos; }))
      << readFile(dir + "/ugated.log.2");
  EXPECT_NE(readFile(dir + "/ugated.log").find("SIGHUP: reopened"), std::string::npos);
  ASSERT_TRUE(echoOnce(port));
  ASSERT_TRUE(waitFor([&] { return lines(readFile(dir + "/access.log"), "\"listener\":\"fwd\"").size() == 1; }));
  EXPECT_EQ(lines(readFile(dir + "/access.log.2"), "\"listener\":\"fwd\"").size(), 2u);
  EXPECT_EQ(f.metric("ugate_log_reopens_total{result=\"ok\"}"), 2);
  EXPECT_EQ(f.metric("ugate_config_reloads_total{result=\"ok\"}"), 1);

  // A path that cannot be opened again (a directory now stands there): the error is logged and
  // counted, and the lines keep going to the file that is open.
  ASSERT_EQ(rename((dir + "/access.log").c_str(), (dir + "/access.log.3").c_str()), 0);
  ASSERT_EQ(mkdir((dir + "/access.log").c_str(), 0700), 0);
  f.proc->signal(SIGUSR1);
  ASSERT_TRUE(f.waitMetric("ugate_log_reopens_total{result=\"error\"}", 1));
  EXPECT_NE(readFile(dir + "/ugated.log").find("reopening logs failed, still writing to the old files: log.accessLog"),
            std::string::npos)
      << readFile(dir + "/ugated.log");
  ASSERT_TRUE(echoOnce(port));
  ASSERT_TRUE(waitFor([&] { return lines(readFile(dir + "/access.log.3"), "\"listener\":\"fwd\"").size() == 2; }));

  f.proc->signal(SIGTERM);
  EXPECT_EQ(f.proc->wait(10000), 0) << readFile(dir + "/ugated.log");
}

TEST(Operations, Usr1WithoutLogFilesSaysSoAndKeepsServing) {
  UgatedFixture f;  // access log on stdout, daemon log on stderr: nothing to reopen
  ASSERT_TRUE(f.start(f.config(""))) << f.logs();
  f.proc->signal(SIGUSR1);
  ASSERT_TRUE(waitFor([&] { return f.logs().find("SIGUSR1: no log file to reopen") != std::string::npos; }))
      << f.logs();
  EXPECT_EQ(httpGet(f.admin, "/ready"), 200);
  f.proc->signal(SIGTERM);
  EXPECT_EQ(f.proc->wait(10000), 0) << f.logs();
}

TEST(Operations, StartupFailureAfterTheLogMovedToLogFileIsPointedOutOnStderr) {
  UgatedFixture f;
  TcpServer taken;  // holds its port: the listener cannot bind
  std::string cfg = R"({"log": {"file": ")" + f.dir.path() + R"(/ugated.log"}, "admin": {"enabled": false},
      "listeners": [)" + UgatedFixture::listener("fwd", "tcp", taken.port(), "127.0.0.1:1") + "]}";
  DaemonProcess d({"--config", f.dir.write("c.json", cfg)});
  EXPECT_EQ(d.wait(10000), 1);
  const std::string log = readFile(f.dir.path() + "/ugated.log");
  // The reason, in the log file: the listener and its address, held by another process.
  EXPECT_TRUE(log.find("'fwd'") != std::string::npos &&
              log.find("127.0.0.1:" + std::to_string(taken.port()) + " is already in use") != std::string::npos)
      << log;
  EXPECT_NE(d.logs().find("ugated: exit status 1; the reason is in " + f.dir.path() + "/ugated.log"),
            std::string::npos)
      << d.logs();
}

TEST(Operations, LogFileThatCannotBeOpenedIsAStartupError) {
  TempDir dir;
  std::string cfg = dir.write("c.json", R"({"log": {"file": ")" + dir.path() + R"(/no/such/dir/ugated.log"}})");
  DaemonProcess d({"--config", cfg});
  EXPECT_EQ(d.wait(10000), 2);
  EXPECT_NE(d.logs().find("config: log.file: " + dir.path() + "/no/such/dir/ugated.log: No such file or directory"),
            std::string::npos)
      << d.logs();
}

// The access log says who decided: a named or numbered route, or the listener's own `to`.
TEST(Operations, AccessLogNamesTheListenerOrRouteThatDecided) {
  UgatedFixture f;
  TcpServer echo;
  const uint16_t fwd = freePort(), rej = freePort(), numbered = freePort(), named = freePort();
  std::string listeners = UgatedFixture::listener("fwd", "tcp", fwd, "127.0.0.1:" + std::to_string(echo.port())) +
                          "," + UgatedFixture::listener("rej", "tcp", rej, "reject") + "," +
                          UgatedFixture::listener("numbered", "tcp", numbered, "127.0.0.1:1") + "," +
                          UgatedFixture::listener("named", "tcp", named, "127.0.0.1:1");
  std::string routes = R"(, "routes": [{"match": {"listener": "numbered"}, "to": "reject"},
      {"name": "no-named", "match": {"listener": "named"}, "to": "reject"}])";
  ASSERT_TRUE(f.start(f.config(listeners, routes))) << f.logs();
  ASSERT_TRUE(echoOnce(fwd));
  for (uint16_t p : {rej, numbered, named}) {
    int fd = connectTcp(p);
    ASSERT_GE(fd, 0);
    awaitClosure(fd);
    close(fd);
  }
  auto lineOf = [&](const std::string& listener) {
    auto l = lines(f.logs(), "\"listener\":\"" + listener + "\"");
    return l.empty() ? std::string() : l[0];
  };
  ASSERT_TRUE(waitFor([&] { return !lineOf("fwd").empty() && !lineOf("named").empty() && !lineOf("rej").empty() &&
                                   !lineOf("numbered").empty(); }))
      << f.logs();
  EXPECT_NE(lineOf("fwd").find("\"route\":\"listener:fwd\""), std::string::npos) << lineOf("fwd");
  EXPECT_NE(lineOf("rej").find("\"route\":\"listener:rej\""), std::string::npos) << lineOf("rej");
  EXPECT_NE(lineOf("rej").find("\"detail\":\"rejected by route listener:rej\""), std::string::npos) << lineOf("rej");
  EXPECT_NE(lineOf("numbered").find("\"route\":\"routes[0]\""), std::string::npos) << lineOf("numbered");
  EXPECT_NE(lineOf("numbered").find("\"detail\":\"rejected by route routes[0]\""), std::string::npos);
  EXPECT_NE(lineOf("named").find("\"detail\":\"rejected by route no-named\""), std::string::npos) << lineOf("named");
}

// The admin port answers what it refuses, and counts it.
TEST(Operations, AdminAnswersBadRequestsWithAStatusAndCountsThem) {
  UgatedFixture f;
  ASSERT_TRUE(f.start(f.config(""))) << f.logs();
  // A 100 KB header: 431 once the head passes 8 KiB, while the client is still sending; the rest
  // is read and dropped so the answer is not lost to a reset.
  std::string huge = "GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(100 * 1024, 'a') + "\r\n\r\n";
  std::string resp = roundTrip(f.admin, huge);
  EXPECT_EQ(resp.rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0), 0u) << resp.substr(0, 200);
  EXPECT_NE(resp.find("Connection: close"), std::string::npos);
  // Malformed, a body, a method the admin does not serve.
  resp = roundTrip(f.admin, "GET /stats HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n");
  EXPECT_EQ(resp.rfind("HTTP/1.1 400 ", 0), 0u) << resp;
  resp = roundTrip(f.admin, "GET /stats HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(resp.rfind("HTTP/1.1 413 ", 0), 0u) << resp;
  resp = roundTrip(f.admin, "DELETE /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(resp.rfind("HTTP/1.1 405 ", 0), 0u) << resp;
  EXPECT_EQ(f.metric("ugate_admin_bad_requests_total{reason=\"headers_too_large\"}"), 1);
  EXPECT_EQ(f.metric("ugate_admin_bad_requests_total{reason=\"malformed\"}"), 1);
  EXPECT_EQ(f.metric("ugate_admin_bad_requests_total{reason=\"body_not_accepted\"}"), 1);
  EXPECT_EQ(f.metric("ugate_admin_bad_requests_total{reason=\"method_not_allowed\"}"), 1);
  // One warning names the first; the next ones within 10 s are only counted.
  auto warned = lines(f.logs(), "admin: bad request from 127.0.0.1:");
  ASSERT_EQ(warned.size(), 1u) << f.logs();
  EXPECT_NE(warned[0].find("headers_too_large: request header block too large"), std::string::npos) << warned[0];
  // Twenty more junk requests: still one line, still every one counted.
  for (int i = 0; i < 20; ++i) roundTrip(f.admin, "\x16\x03\x01\x02\x00\x01\r\n\r\n");
  EXPECT_EQ(f.metric("ugate_admin_bad_requests_total{reason=\"malformed\"}"), 21);
  EXPECT_EQ(lines(f.logs(), "admin: bad request").size(), 1u);
  EXPECT_EQ(httpGet(f.admin, "/healthz"), 200);
}

// Junk and half-sent hellos on the mesh port are accounted like on every other listener: per
// listener counters, one access-log line each, and a warning that does not repeat for each one.
TEST(Operations, MeshListenerCountsAndLogsFailedTlsHandshakes) {
  UgatedFixture f;
  const std::string data = f.dir.path() + "/node";
  DaemonProcess id({"id", "--data-dir", data});
  ASSERT_EQ(id.wait(10000), 0) << id.logs();
  std::string nodeId;  // the line `ugated id` prints on stdout (stderr says it created the identity)
  for (const auto& l : lines(id.logs())) {
    if (l.size() == 52 && l.find(' ') == std::string::npos) nodeId = l;
  }
  ASSERT_FALSE(nodeId.empty()) << id.logs();
  const uint16_t mesh = freePort();
  std::string extra = R"(, "node": {"name": "n1", "dataDir": ")" + data + R"("}, "tls": {"trustedIds": [")" + nodeId +
                      R"("], "handshakeTimeout": "300ms"})";
  ASSERT_TRUE(f.start(f.config(UgatedFixture::listener("mesh", "mesh", mesh, ""), extra))) << f.logs();
  constexpr int kJunk = 30;
  for (int i = 0; i < kJunk; ++i) {
    int fd = connectTcp(mesh);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(writeAll(fd, "GET / HTTP/1.0\r\n\r\n", 18));
    EXPECT_NE(awaitClosure(fd), Closure::Open);
    close(fd);
  }
  // A hello that never completes: the handshake deadline ends it.
  int half = connectTcp(mesh);
  ASSERT_GE(half, 0);
  ASSERT_TRUE(writeAll(half, "\x16\x03\x01\x02\x00\x01", 6));
  EXPECT_NE(awaitClosure(half, 10000), Closure::Open);
  close(half);
  ASSERT_TRUE(f.waitMetric("ugate_listener_closes_total{listener=\"mesh\",reason=\"handshake_timeout\"}", 1));
  EXPECT_EQ(f.metric("ugate_listener_closes_total{listener=\"mesh\",reason=\"auth_failed\"}"), kJunk);
  EXPECT_EQ(f.metric("ugate_listener_errors_total{listener=\"mesh\",reason=\"auth_failed\"}"), kJunk);
  EXPECT_EQ(f.metric("ugate_listener_connections_total{listener=\"mesh\"}"), kJunk + 1);
  ASSERT_TRUE(waitFor([&] { return lines(f.logs(), "\"listener\":\"mesh\"").size() == kJunk + 1; })) << f.logs();
  auto junk = lines(f.logs(), "\"close\":\"auth_failed\",\"detail\":\"TLS from client: not_tls: ");
  EXPECT_EQ(junk.size(), static_cast<size_t>(kJunk)) << f.logs();
  EXPECT_EQ(lines(f.logs(), "\"close\":\"handshake_timeout\",\"detail\":\"TLS from client: handshake_timeout").size(), 1u);
  // The warning: the first failure is named; the others within 10 s are only counted (one worker,
  // so one line per 10 s at most however fast the junk comes).
  auto warned = lines(f.logs(), "mesh: listener mesh: ");
  ASSERT_GE(warned.size(), 1u);
  EXPECT_LT(warned.size(), 10u) << f.logs();
  EXPECT_NE(warned[0].find("auth_failed from 127.0.0.1:"), std::string::npos) << warned[0];
  EXPECT_EQ(httpGet(f.admin, "/ready"), 200);
}

// The stress test of the lost SIGTERM: start, one admin request, SIGTERM at once; every run must
// log "draining" and exit 0. The request is finished, still being answered (/stats waits for the
// workers), or the very /ready probe that said the daemon was up; 50 runs.
TEST(Signals, SigtermRightAfterAnAdminRequestDrainsAndExitsEveryTime) {
  TcpServer echo;
  for (int i = 0; i < 50; ++i) {
    SCOPED_TRACE("run " + std::to_string(i));
    UgatedFixture f;
    const uint16_t port = freePort();
    ASSERT_TRUE(f.start(f.config(UgatedFixture::listener("fwd", "tcp", port, "127.0.0.1:" + std::to_string(echo.port())),
                                 "", 2)))
        << f.logs();
    int pending = -1;
    switch (i % 4) {
      case 0:
        break;  // right after the /ready probe that found it up
      case 1:
        ASSERT_EQ(httpGet(f.admin, "/healthz"), 200);
        break;
      case 2:
        ASSERT_EQ(httpGet(f.admin, "/stats"), 200);
        break;
      case 3: {
        pending = connectTcp(f.admin);
        std::string req = "GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        ASSERT_TRUE(writeAll(pending, req.data(), req.size()));
        break;  // the answer is not read before the signal
      }
    }
    f.proc->signal(SIGTERM);
    int rc = f.proc->wait(10000);
    if (pending >= 0) close(pending);
    ASSERT_EQ(rc, 0) << (rc == -1 ? "still running 10 s after SIGTERM\n" : "") << f.logs();
    ASSERT_NE(f.logs().find("Terminated: draining"), std::string::npos) << f.logs();
  }
}

}  // namespace
}  // namespace ugate::test

// ugated as a process forwarding real TCP connections on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_common/test_util.h"

namespace ugate::test {
namespace {

struct Fixture {
  TempDir dir;
  uint16_t admin = freePort();
  std::string configPath;

  std::string config(const std::string& listeners, const std::string& extra = "") {
    return R"({"workers": 2, "admin": {"address": "127.0.0.1:)" + std::to_string(admin) +
           R"("}, "log": {"level": "debug", "accessLog": "-"}, "listeners": [)" + listeners + "]" +
           extra + "}";
  }
  static std::string tcpListener(const std::string& name, uint16_t port, const std::string& to,
                                 const std::string& more = "") {
    return R"({"name": ")" + name + R"(", "kind": "tcp", "address": "127.0.0.1:)" +
           std::to_string(port) + R"(", "to": ")" + to + "\"" + more + "}";
  }
  [[nodiscard]] std::unique_ptr<DaemonProcess> start(const std::string& cfg) {
    configPath = dir.write("ugated.json", cfg);
    auto d = std::make_unique<DaemonProcess>(std::vector<std::string>{"--config", configPath});
    EXPECT_TRUE(d->waitReady(admin)) << d->logs();
    return d;
  }
  std::string stats() {
    std::string body;
    httpGet(admin, "/stats", &body);
    return body;
  }
};

// Sends `up` bytes and reads everything back until EOF, concurrently; returns what was read.
std::string roundTrip(int fd, const std::string& up, bool halfClose = true) {
  std::string got;
  std::thread reader([&] { got = readAll(fd, 20000); });
  writeAll(fd, up.data(), up.size());
  if (halfClose) shutdown(fd, SHUT_WR);
  reader.join();
  return got;
}

TEST(Forward, MultiMegabyteEchoBothWaysWithChecksums) {
  Fixture f;
  TcpServer echo;
  uint16_t port = freePort();
  auto d = f.start(f.config(Fixture::tcpListener("fwd", port, "127.0.0.1:" + std::to_string(echo.port()))));
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&, i] {
      std::string payload = pattern(8 * 1024 * 1024 + i * 777, 1000 + i);
      int fd = connectTcp(port);
      ASSERT_GE(fd, 0);
      std::string got = roundTrip(fd, payload);
      close(fd);
      EXPECT_EQ(got.size(), payload.size());
      if (fnv1a64(got.data(), got.size()) == fnv1a64(payload.data(), payload.size())) ++ok;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 4);
  ASSERT_TRUE(waitFor([&] { return f.stats().find("ugate_listener_connections_active{listener=\"fwd\"} 0") != std::string::npos; }));
  std::string s = f.stats();
  EXPECT_NE(s.find("ugate_listener_connections_total{listener=\"fwd\"} 4"), std::string::npos) << s;
  EXPECT_NE(s.find("ugate_listener_closes_total{listener=\"fwd\",reason=\"ok\"} 4"), std::string::npos) << s;
  // Bulk transfers take the splice path.
  EXPECT_EQ(s.find("ugate_listener_spliced_total{listener=\"fwd\"} 0"), std::string::npos) << s;
  // The access log has one JSON line per stream with bytes both ways.
  std::string logs = d->logs();
  EXPECT_NE(logs.find("\"bytes_in\":8388608,\"bytes_out\":8388608"), std::string::npos) << logs.substr(0, 4000);
}

TEST(Forward, DownloadAndUploadChecksums) {
  Fixture f;
  const std::string blob = pattern(12 * 1024 * 1024, 7);
  // The backend answers "GET" with a 12 MiB blob, and "PUT" by reading to EOF and returning a checksum.
  TcpServer srv([&](int fd) {
    char cmd[3];
    if (!readN(fd, cmd, 3)) return;
    if (std::string(cmd, 3) == "GET") {
      writeAll(fd, blob.data(), blob.size());
    } else {
      std::string all = readAll(fd, 20000);
      std::string sum = std::to_string(fnv1a64(all.data(), all.size()));
      writeAll(fd, sum.data(), sum.size());
    }
    shutdown(fd, SHUT_WR);
  });
  uint16_t port = freePort();
  auto d = f.start(f.config(Fixture::tcpListener("fwd", port, "127.0.0.1:" + std::to_string(srv.port()))));
  int fd = connectTcp(port);
  std::string got = roundTrip(fd, "GET", /*halfClose=*/false);
  close(fd);
  ASSERT_EQ(got.size(), blob.size());
  EXPECT_EQ(fnv1a64(got.data(), got.size()), fnv1a64(blob.data(), blob.size()));

  fd = connectTcp(port);
  std::string up = "PUT" + pattern(10 * 1024 * 1024, 9);
  got = roundTrip(fd, up);
  close(fd);
  std::string body = up.substr(3);
  EXPECT_EQ(got, std::to_string(fnv1a64(body.data(), body.size())));
}

TEST(Forward, HalfCloseClientFirst) {
  Fixture f;
  // The server reads to EOF, then answers with the byte count and closes.
  TcpServer srv([](int fd) {
    std::string all = readAll(fd);
    std::string n = "got " + std::to_string(all.size());
    writeAll(fd, n.data(), n.size());
  });
  uint16_t port = freePort();
  auto d = f.start(f.config(Fixture::tcpListener("fwd", port, "127.0.0.1:" + std::to_string(srv.port()))));
  int fd = connectTcp(port);
  std::string got = roundTrip(fd, std::string(100000, 'x'));
  close(fd);
  EXPECT_EQ(got, "got 100000");
}

TEST(Forward, HalfCloseServerFirst) {
  Fixture f;
  std::atomic<size_t> serverGot{0};
  // The server greets and half-closes at once, then keeps reading what the client sends.
  TcpServer srv([&](int fd) {
    writeAll(fd, "hello", 5);
    shutdown(fd, SHUT_WR);
    serverGot = readAll(fd).size();
  });
  uint16_t port = freePort();
  auto d = f.start(f.config(Fixture::tcpListener("fwd", port, "127.0.0.1:" + std::to_string(srv.port()))));
  int fd = connectTcp(port);
  char buf[5];
  ASSERT_TRUE(readN(fd, buf, 5));
  EXPECT_EQ(std::string(buf, 5), "hello");
  // EOF arrives while our side stays open for writing.
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);
  std::string more(300000, 'y');
  ASSERT_TRUE(writeAll(fd, more.data(), more.size()));
  shutdown(fd, SHUT_WR);
  EXPECT_TRUE(waitFor([&] { return serverGot.load() == more.size(); }));
  close(fd);
}

TEST(Forward, BackendRefusedClosesClientPromptlyAndCounts) {
  Fixture f;
  uint16_t dead = freePort();  // nothing listens here
  uint16_t port = freePort();
  auto d = f.start(f.config(Fixture::tcpListener("fwd", port, "127.0.0.1:" + std::to_string(dead))));
  int fd = connectTcp(port);
  ASSERT_GE(fd, 0);
  auto t0 = std::chrono::steady_clock::now();
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  char c;
  EXPECT_LE(recv(fd, &c, 1, 0), 0);  // RST or EOF, no data
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  close(fd);
  ASSERT_TRUE(waitFor([&] {
    return f.stats().find("ugate_listener_errors_total{listener=\"fwd\",reason=\"connect_refused\"} 1") !=
           std::string::npos;
  })) << f.stats();
  EXPECT_TRUE(waitFor([&] { return d->logs().find("\"close\":\"connect_refused\"") != std::string::npos; }))
      << d->logs();
  // The reason is in the daemon's log too, naming the upstream.
  EXPECT_NE(d->logs().find("warning stream"), std::string::npos) << d->logs();
  EXPECT_NE(d->logs().find("connect_refused: connect 127.0.0.1:" + std::to_string(dead)), std::string::npos)
      << d->logs();
}

TEST(Forward, BackendNotAnsweringHitsConnectTimeout) {
  Fixture f;
  // A listener whose accept queue is full and never accepted: further SYNs go unanswered.
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  listen(ls, 0);
  socklen_t len = sizeof(a);
  getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t blackhole = ntohs(a.sin_port);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    fillers.push_back(c);
  }
  usleep(100000);
  uint16_t port = freePort();
  auto d = f.start(f.config(Fixture::tcpListener("fwd", port, "127.0.0.1:" + std::to_string(blackhole),
                                        R"(, "connectTimeout": "400ms")")));
  int fd = connectTcp(port);
  auto t0 = std::chrono::steady_clock::now();
  std::string got = readAll(fd, 5000);
  auto dt = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(got.empty());
  EXPECT_GE(dt, std::chrono::milliseconds(300));
  EXPECT_LT(dt, std::chrono::seconds(4));
  close(fd);
  EXPECT_TRUE(waitFor([&] {
    return f.stats().find("reason=\"connect_timeout\"} 1") != std::string::npos;
  })) << f.stats();
  for (int c : fillers) close(c);
  close(ls);
}

TEST(Forward, RouteRejectAndIdleTimeout) {
  Fixture f;
  TcpServer echo;
  uint16_t p1 = freePort(), p2 = freePort();
  std::string ls = Fixture::tcpListener("a", p1, "127.0.0.1:" + std::to_string(echo.port())) + "," +
                   Fixture::tcpListener("b", p2, "127.0.0.1:" + std::to_string(echo.port()),
                                        R"(, "idleTimeout": "300ms")");
  auto d = f.start(f.config(ls, R"(, "routes": [{"name": "no-a", "match": {"listener": "a"}, "to": "reject"}])"));
  int fd = connectTcp(p1);
  EXPECT_EQ(readAll(fd, 3000), "");
  close(fd);
  fd = connectTcp(p2);
  ASSERT_TRUE(writeAll(fd, "ping", 4));
  char buf[4];
  ASSERT_TRUE(readN(fd, buf, 4));
  // Idle: ugated closes after ~300 ms without bytes.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(readAll(fd, 5000), "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  close(fd);
  EXPECT_TRUE(waitFor([&] {
    std::string s = f.stats();
    return s.find("listener=\"a\",reason=\"route_rejected\"} 1") != std::string::npos &&
           s.find("listener=\"b\",reason=\"idle_timeout\"} 1") != std::string::npos;
  })) << f.stats();
}

TEST(Forward, ThousandConcurrentConnections) {
  Fixture f;
  TcpServer echo;
  uint16_t port = freePort();
  auto d = f.start(f.config(Fixture::tcpListener("fwd", port, "127.0.0.1:" + std::to_string(echo.port()))));
  constexpr int kN = 1000;
  std::vector<int> fds;
  for (int i = 0; i < kN; ++i) {
    int fd = connectTcp(port);
    ASSERT_GE(fd, 0) << i;
    fds.push_back(fd);
  }
  // All open at once; each exchanges its own message.
  for (int i = 0; i < kN; ++i) {
    std::string m = "conn-" + std::to_string(i) + ";";
    ASSERT_TRUE(writeAll(fds[i], m.data(), m.size()));
  }
  ASSERT_TRUE(waitFor([&] { return f.stats().find("ugate_streams_active 1000") != std::string::npos; }))
      << f.stats();
  int good = 0;
  for (int i = 0; i < kN; ++i) {
    std::string m = "conn-" + std::to_string(i) + ";";
    std::string got(m.size(), '\0');
    if (readN(fds[i], got.data(), got.size()) && got == m) ++good;
    close(fds[i]);
  }
  EXPECT_EQ(good, kN);
}

TEST(Forward, ReloadAddsAndRemovesListenersWithoutTouchingStreams) {
  Fixture f;
  TcpServer echo;
  std::string to = "127.0.0.1:" + std::to_string(echo.port());
  uint16_t pa = freePort(), pb = freePort();
  auto d = f.start(f.config(Fixture::tcpListener("a", pa, to)));
  int fa = connectTcp(pa);
  char buf[5];
  ASSERT_TRUE(writeAll(fa, "one..", 5));
  ASSERT_TRUE(readN(fa, buf, 5));
  EXPECT_EQ(connectTcp(pb), -1);

  f.dir.write("ugated.json", f.config(Fixture::tcpListener("a", pa, to) + "," + Fixture::tcpListener("b", pb, to)));
  d->signal(SIGHUP);
  int fb = -1;
  ASSERT_TRUE(waitFor([&] { return (fb = connectTcp(pb)) >= 0; })) << d->logs();
  ASSERT_TRUE(writeAll(fb, "bbbbb", 5));
  ASSERT_TRUE(readN(fb, buf, 5));
  // The connection opened before the reload still flows.
  ASSERT_TRUE(writeAll(fa, "two..", 5));
  ASSERT_TRUE(readN(fa, buf, 5));
  EXPECT_EQ(std::string(buf, 5), "two..");

  // An invalid config is rejected and everything keeps running.
  f.dir.write("ugated.json", "{\"listeners\": [{\"name\": 1}]}");
  d->signal(SIGHUP);
  ASSERT_TRUE(waitFor([&] { return d->logs().find("reload rejected") != std::string::npos; }));
  ASSERT_TRUE(writeAll(fa, "three", 5));
  ASSERT_TRUE(readN(fa, buf, 5));
  EXPECT_TRUE(f.stats().find("ugate_config_reloads_total{result=\"error\"} 1") != std::string::npos);

  // Removing b closes its listener; streams on both keep flowing.
  f.dir.write("ugated.json", f.config(Fixture::tcpListener("a", pa, to)));
  d->signal(SIGHUP);
  ASSERT_TRUE(waitFor([&] {
    int c = connectTcp(pb);
    if (c >= 0) close(c);
    return c < 0;
  }));
  ASSERT_TRUE(writeAll(fb, "still", 5));
  ASSERT_TRUE(readN(fb, buf, 5));
  ASSERT_TRUE(writeAll(fa, "four.", 5));
  ASSERT_TRUE(readN(fa, buf, 5));
  close(fa);
  close(fb);
}

TEST(Forward, SigtermDrainsThenExitsZero) {
  Fixture f;
  TcpServer echo;
  uint16_t port = freePort();
  auto d = f.start(f.config(Fixture::tcpListener("fwd", port, "127.0.0.1:" + std::to_string(echo.port())),
                            R"(, "limits": {"drainTimeout": "20s"})"));
  int fd = connectTcp(port);
  char buf[4];
  ASSERT_TRUE(writeAll(fd, "abcd", 4));
  ASSERT_TRUE(readN(fd, buf, 4));
  d->signal(SIGTERM);
  // New connections are refused while the old one still flows.
  ASSERT_TRUE(waitFor([&] {
    int c = connectTcp(port);
    if (c >= 0) close(c);
    return c < 0;
  }));
  EXPECT_EQ(httpGet(f.admin, "/ready"), 503);
  ASSERT_TRUE(writeAll(fd, "efgh", 4));
  ASSERT_TRUE(readN(fd, buf, 4));
  EXPECT_TRUE(d->running());
  close(fd);  // the last stream ends: ugated exits by itself
  EXPECT_EQ(d->wait(5000), 0) << d->logs();
}

TEST(Forward, DrainDeadlineClosesRemainingStreams) {
  Fixture f;
  TcpServer echo;
  uint16_t port = freePort();
  auto d = f.start(f.config(Fixture::tcpListener("fwd", port, "127.0.0.1:" + std::to_string(echo.port())),
                            R"(, "limits": {"drainTimeout": "500ms"})"));
  int fd = connectTcp(port);
  char buf[4];
  ASSERT_TRUE(writeAll(fd, "abcd", 4));
  ASSERT_TRUE(readN(fd, buf, 4));
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(5000), 0) << d->logs();
  EXPECT_EQ(readAll(fd, 2000), "");
  close(fd);
  EXPECT_NE(d->logs().find("\"close\":\"shutdown\""), std::string::npos);
}

TEST(Startup, BindFailureIsAnError) {
  Fixture f;
  TcpServer taken;  // occupies its port without SO_REUSEPORT
  std::string cfg = f.config(Fixture::tcpListener("fwd", taken.port(), "127.0.0.1:1"));
  std::string path = f.dir.write("c.json", cfg);
  DaemonProcess d({"--config", path});
  EXPECT_EQ(d.wait(5000), 1);
  // The holder is named: this test process.
  EXPECT_NE(d.logs().find("listeners[0] 'fwd': 127.0.0.1:" + std::to_string(taken.port()) +
                          " is already in use by another process (pid " + std::to_string(getpid()) + ": "),
            std::string::npos)
      << d.logs();
}

TEST(Startup, ConfigErrorsNameTheirPath) {
  TempDir dir;
  struct Case {
    std::string json, want;
  } cases[] = {
      {R"({"listeners": [{"name": "a", "kind": "tcp", "address": "127.0.0.1:99999", "to": "x:1"}]})",
       "listeners[0].address: port 99999 out of range"},
      {R"({"listeners": [{"name": "a", "kind": "tcp", "address": "127.0.0.1:1", "to": "x:1", "bogus": 1}]})",
       "listeners[0].bogus: unknown key"},
      {R"({"routes": [{"match": {"port": 0}, "to": "reject"}]})", "routes[0].match.port: 0 out of range"},
      {R"({"workers": "two"})", "workers: expected an integer"},
      {R"({"listeners": [{"name": "a", "kind": "tcp", "address": "127.0.0.1:1"}]})", "listeners[0].to: required"},
      {R"({"listeners": [)", "invalid JSON"},
  };
  for (const auto& c : cases) {
    std::string p = dir.write("bad.json", c.json);
    DaemonProcess d({"--check-config", p});
    EXPECT_EQ(d.wait(5000), 2) << c.json;
    EXPECT_NE(d.logs().find(c.want), std::string::npos) << c.json << " -> " << d.logs();
  }
  std::string good = dir.write("good.json", R"({"admin": {"enabled": false}, "listeners": [{"name": "a", "kind": "tcp", "address": "127.0.0.1:)" +
                                                std::to_string(freePort()) + R"(", "to": "x:1"}]})");
  DaemonProcess ok({"--check-config", good});
  EXPECT_EQ(ok.wait(5000), 0);
}

TEST(Startup, DefaultConfigServesAdmin) {
  // The embedded default binds admin on 127.0.0.1:15000; if that port is taken on this host, the
  // failure must be a clear startup error instead.
  DaemonProcess d({});
  bool up = waitFor([&] { return !d.running() || httpGet(15000, "/healthz") == 200; }, 10000);
  ASSERT_TRUE(up);
  if (!d.running()) {
    EXPECT_NE(d.logs().find("admin.address: 127.0.0.1:15000 is already in use by another process"),
              std::string::npos)
        << d.logs();
    GTEST_SKIP() << "port 15000 busy on this host";
  }
  std::string body;
  EXPECT_EQ(httpGet(15000, "/stats", &body), 200);
  EXPECT_NE(body.find("ugate_fd_limit"), std::string::npos);
  EXPECT_NE(body.find("ugate_workers"), std::string::npos);
  EXPECT_EQ(httpGet(15000, "/config_dump", &body), 200);
  EXPECT_NE(body.find("\"admin\""), std::string::npos);
  EXPECT_EQ(httpGet(15000, "/nope"), 404);
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(5000), 0);
}

}  // namespace
}  // namespace ugate::test

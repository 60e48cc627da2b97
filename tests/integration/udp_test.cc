// ugated as a process forwarding real UDP datagrams on loopback (kind `udp`).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
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
  std::string config(const std::string& listeners) {
    return R"({"workers": 2, "admin": {"address": "127.0.0.1:)" + std::to_string(admin) +
           R"("}, "log": {"level": "info", "accessLog": "-"}, "listeners": [)" + listeners + "]}";
  }
  static std::string udp(const std::string& name, const std::string& address, const std::string& to,
                         const std::string& more = "") {
    return R"({"name": ")" + name + R"(", "kind": "udp", "address": ")" + address + R"(", "to": ")" + to +
           "\"" + more + "}";
  }
  [[nodiscard]] std::unique_ptr<DaemonProcess> start(const std::string& cfg) {
    auto d = std::make_unique<DaemonProcess>(std::vector<std::string>{"--config", dir.write("u.json", cfg)});
    EXPECT_TRUE(d->waitReady(admin)) << d->logs();
    return d;
  }
  std::string stats() {
    std::string body;
    httpGet(admin, "/stats", &body);
    return body;
  }
};

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

// 64 clients at once, each its own flow, 50 datagrams each of varied sizes (0 to 65507 bytes);
// every answer is compared with what was sent.
TEST(Udp, ConcurrentFlowsEveryDatagramChecked) {
  Fixture f;
  UdpEchoServer echo;
  uint16_t port = freeUdpPort();
  auto d = f.start(f.config(Fixture::udp("dns", "127.0.0.1:" + std::to_string(port),
                                         "127.0.0.1:" + std::to_string(echo.port()))));
  constexpr int kClients = 64, kEach = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  // Every client's socket is open for the whole run: one that closed early could hand its port to
  // a later client, whose datagrams would then join the first one's flow (63 flows, not 64).
  std::vector<int> fds;
  for (int c = 0; c < kClients; ++c) fds.push_back(udpSocket(port));
  for (int c = 0; c < kClients; ++c) {
    ts.emplace_back([&, c] {
      const int fd = fds[static_cast<size_t>(c)];
      for (int i = 0; i < kEach; ++i) {
        // One empty and one 65507-byte datagram per client, the large ones spread over the run.
        size_t len = i == 0            ? 0
                     : i == 1 + c % 48 ? 65507
                                       : static_cast<size_t>((c * 131 + i * 977) % 3000);
        std::string out = pattern(len, static_cast<uint32_t>(c * 1000 + i));
        std::string in;
        // Loopback does not lose datagrams at this rate; a lost one fails the test.
        if (udpExchange(fd, out, in) && in == out) ++ok;
      }
    });
  }
  for (auto& t : ts) t.join();
  for (int fd : fds) close(fd);
  EXPECT_EQ(ok.load(), kClients * kEach);
  EXPECT_EQ(echo.peers(), static_cast<size_t>(kClients));
  std::string s = f.stats();
  EXPECT_NE(s.find("ugate_listener_connections_total{listener=\"dns\"} 64"), std::string::npos) << s;
  EXPECT_NE(s.find("ugate_listener_received_datagrams_total{listener=\"dns\"} 3200"), std::string::npos) << s;
  EXPECT_NE(s.find("ugate_listener_sent_datagrams_total{listener=\"dns\"} 3200"), std::string::npos) << s;
  EXPECT_EQ(s.find("ugate_listener_dropped_datagrams_total{listener=\"dns\""), std::string::npos) << s;
  // SIGTERM ends the flows: one access-log line each, with packets both ways.
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(10000), 0);
  std::string logs = d->logs();
  EXPECT_EQ(count(logs, "\"kind\":\"udp-flow\""), 64u) << logs.substr(0, 3000);
  EXPECT_EQ(count(logs, "\"packets_in\":50,\"packets_out\":50"), 64u) << logs.substr(0, 3000);
  EXPECT_EQ(count(logs, "\"close\":\"shutdown\""), 64u);
}

TEST(Udp, Ipv6Forwarder) {
  Fixture f;
  UdpEchoServer echo("::1");
  uint16_t port = freeUdpPort(true);
  auto d = f.start(f.config(Fixture::udp("v6", "[::1]:" + std::to_string(port), "[::1]:" + std::to_string(echo.port()))));
  int fd = udpSocket(port, "::1");
  ASSERT_GE(fd, 0);
  std::string in;
  for (std::string out : {std::string("over v6"), std::string(), pattern(65000, 3)}) {
    ASSERT_TRUE(udpExchange(fd, out, in));
    EXPECT_TRUE(in == out);
  }
  close(fd);
}

// A forwarder bound to 0.0.0.0 answers each client from the address that client sent to (a
// connected client socket only accepts datagrams from there).
TEST(Udp, WildcardBindRepliesFromTheAddressReached) {
  Fixture f;
  UdpEchoServer echo;
  uint16_t port = freeUdpPort();
  auto d = f.start(f.config(Fixture::udp("any", "0.0.0.0:" + std::to_string(port), "127.0.0.1:" + std::to_string(echo.port()))));
  for (const char* ip : {"127.0.0.1", "127.0.0.2", "127.0.0.3"}) {
    int fd = udpSocket(port, ip);
    std::string in;
    EXPECT_TRUE(udpExchange(fd, std::string("to ") + ip, in)) << ip;
    EXPECT_EQ(in, std::string("to ") + ip);
    close(fd);
  }
  d->signal(SIGTERM);
  d->wait(10000);
  EXPECT_NE(d->logs().find("\"local\":\"127.0.0.3:" + std::to_string(port) + "\""), std::string::npos) << d->logs();
}

// Nothing listens upstream: the ICMP errors are counted as drops, the flow stays (as NAT would).
TEST(Udp, UpstreamPortUnreachableIsCounted) {
  Fixture f;
  uint16_t port = freeUdpPort(), closed = freeUdpPort();
  auto d = f.start(f.config(Fixture::udp("dead", "127.0.0.1:" + std::to_string(port), "127.0.0.1:" + std::to_string(closed))));
  int fd = udpSocket(port, "127.0.0.1", 200);
  std::string in;
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(udpExchange(fd, "anyone?", in));
  ASSERT_TRUE(waitFor([&] {
    return f.stats().find("ugate_listener_dropped_datagrams_total{listener=\"dead\",reason=\"connect_refused\"}") !=
           std::string::npos;
  }));
  EXPECT_NE(f.stats().find("ugate_listener_connections_total{listener=\"dead\"} 1"), std::string::npos);
  close(fd);
}

TEST(Udp, ConfigErrors) {
  TempDir dir;
  struct Case {
    std::string json, want;
  } cases[] = {
      {R"({"listeners": [{"name": "u", "kind": "udp", "address": "127.0.0.1:1"}]})", "listeners[0].to: required"},
      {R"({"listeners": [{"name": "u", "kind": "udp", "address": "127.0.0.1:1", "to": "original"}]})",
       "listeners[0].to: kind 'udp' has no original destination"},
      {R"({"listeners": [{"name": "u", "kind": "udp", "address": "127.0.0.1:1", "to": "a:1", "proxyProtocol": "v2"}]})",
       "listeners[0].proxyProtocol: does not apply to kind 'udp'"},
      {R"({"listeners": [{"name": "u", "kind": "udp", "address": "127.0.0.1:1", "to": "a:1", "maxFlows": 0}]})",
       "listeners[0].maxFlows: 0 out of range"},
      {R"({"listeners": [{"name": "u", "kind": "udp-tproxy", "address": "0.0.0.0:1", "sniffTimeout": "1s"}]})",
       "listeners[0].sniffTimeout: does not apply to kind 'udp-tproxy'"},
      {R"({"listeners": [{"name": "a", "kind": "udp", "address": "127.0.0.1:53", "to": "a:1"},
                         {"name": "b", "kind": "udp", "address": "127.0.0.1:53", "to": "b:1"}]})",
       "listeners[1].address: 127.0.0.1:53 is already used by listener 'a'"},
  };
  for (const auto& c : cases) {
    DaemonProcess d({"--check-config", dir.write("bad.json", c.json)});
    EXPECT_EQ(d.wait(5000), 2) << c.json;
    EXPECT_NE(d.logs().find(c.want), std::string::npos) << c.json << " -> " << d.logs();
  }
  // check-config probes the addresses: free ones, and no admin endpoint (15000 may be taken here).
  const std::string port = std::to_string(freePort()), tport = std::to_string(freeUdpPort());
  DaemonProcess ok({"--check-config", dir.write("good.json", R"({"admin": {"enabled": false}, "listeners": [
      {"name": "u", "kind": "udp", "address": "127.0.0.1:)" + port + R"(", "to": "dns.example:53", "idleTimeout": "30s", "maxFlows": 100},
      {"name": "t", "kind": "udp-tproxy", "address": "0.0.0.0:)" + tport + R"("},
      {"name": "same-port-tcp", "kind": "tcp", "address": "127.0.0.1:)" + port + R"(", "to": "a:1"}]})")});
  EXPECT_EQ(ok.wait(5000), 0) << ok.logs();
}

// A port taken without SO_REUSEPORT: startup fails naming the listener.
TEST(Udp, BindFailureIsAnError) {
  Fixture f;
  UdpEchoServer taken;
  DaemonProcess d({"--config", f.dir.write("u.json", f.config(Fixture::udp("u", "127.0.0.1:" + std::to_string(taken.port()), "127.0.0.1:1")))});
  EXPECT_EQ(d.wait(5000), 1);
  EXPECT_NE(d.logs().find("listeners[0] 'u': 127.0.0.1:" + std::to_string(taken.port()) +
                          " (udp) is already in use by another process (pid " + std::to_string(getpid()) + ": "),
            std::string::npos)
      << d.logs();
}

}  // namespace
}  // namespace ugate::test

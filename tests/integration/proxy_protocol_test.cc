// PROXY protocol through ugated as a process: sending v1/v2 headers to upstreams (per route and per
// listener) and accepting them from a load balancer in front.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "core/proxy_protocol.h"
#include "test_common/test_util.h"

namespace ugate::test {
namespace {

// A backend that reads a PROXY header, records it and what follows it, then echoes "ok".
struct HeaderBackend {
  std::mutex mu;
  ProxyHeader header;
  std::string after;
  bool parsed{false};
  TcpServer server{[this](int fd) {
    std::string got;
    char buf[8192];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return;
      got.append(buf, static_cast<size_t>(n));
      auto r = parseProxyHeader({reinterpret_cast<const uint8_t*>(got.data()), got.size()});
      if (r.status == ProxyStatus::Error) return;
      if (r.status == ProxyStatus::Done && got.size() > r.consumed) {
        std::lock_guard<std::mutex> lk(mu);
        header = r.header;
        after = got.substr(r.consumed);
        parsed = true;
        break;
      }
    }
    writeAll(fd, "ok", 2);
    shutdown(fd, SHUT_WR);
    readAll(fd, 2000);
  }};
};

struct Daemon {
  TempDir dir;
  uint16_t admin = freePort();
  std::unique_ptr<DaemonProcess> proc;
  void start(const std::string& listeners, const std::string& routes = "[]") {
    std::string cfg = R"({"workers": 1, "admin": {"address": "127.0.0.1:)" + std::to_string(admin) +
                      R"("}, "log": {"level": "debug", "accessLog": "-"}, "listeners": [)" + listeners +
                      R"(], "routes": )" + routes + "}";
    proc = std::make_unique<DaemonProcess>(std::vector<std::string>{"--config", dir.write("c.json", cfg)});
    ASSERT_TRUE(proc->waitReady(admin)) << proc->logs();
  }
  std::string stats() {
    std::string b;
    httpGet(admin, "/stats", &b);
    return b;
  }
};

TEST(ProxyProtocol, ListenerSendsV1WithTheClientAddress) {
  HeaderBackend be;
  Daemon d;
  uint16_t port = freePort();
  d.start(R"({"name": "fwd", "kind": "tcp", "address": "127.0.0.1:)" + std::to_string(port) +
          R"(", "to": "127.0.0.1:)" + std::to_string(be.server.port()) + R"(", "proxyProtocol": "v1"})");
  int fd = connectTcp(port);
  ASSERT_GE(fd, 0);
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  writeAll(fd, "hello", 5);
  EXPECT_EQ(readAll(fd), "ok");
  close(fd);
  std::lock_guard<std::mutex> lk(be.mu);
  ASSERT_TRUE(be.parsed);
  EXPECT_EQ(be.header.version, 1);
  EXPECT_EQ(be.header.source.str(), "127.0.0.1:" + std::to_string(ntohs(local.sin_port)));
  EXPECT_EQ(be.header.destination.str(), "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(be.after, "hello");
}

TEST(ProxyProtocol, SniRouteSendsV2WithAuthorityAndAlpnAndTheHelloUntouched) {
  HeaderBackend be;
  Daemon d;
  uint16_t port = freePort();
  d.start(R"({"name": "sni", "kind": "sni", "address": "127.0.0.1:)" + std::to_string(port) + R"("})",
          R"([{"match": {"sni": "a.test"}, "to": "127.0.0.1:)" + std::to_string(be.server.port()) +
              R"(", "proxyProtocol": "v2"}])");
  std::string hello = readFile(std::string(UGATE_SOURCE_DIR) + "/tests/unit/sni/data/openssl_tls13.bin");
  ASSERT_FALSE(hello.empty());
  int fd = connectTcp(port);
  writeAll(fd, hello.data(), hello.size());
  EXPECT_EQ(readAll(fd), "ok");
  close(fd);
  std::lock_guard<std::mutex> lk(be.mu);
  ASSERT_TRUE(be.parsed);
  EXPECT_EQ(be.header.version, 2);
  EXPECT_EQ(be.header.authority, "a.test");
  EXPECT_EQ(be.header.alpn, "h2");
  EXPECT_EQ(be.header.destination.port(), port);
  EXPECT_EQ(be.after, hello);  // the peeked ClientHello follows the header byte for byte
}

TEST(ProxyProtocol, AcceptedHeaderSetsTheSourceAndIsNotForwarded) {
  HeaderBackend be;
  Daemon d;
  uint16_t port = freePort();
  // A load balancer in front speaks PROXY v2 to us; we tell the backend with v1.
  d.start(R"({"name": "lb", "kind": "tcp", "address": "127.0.0.1:)" + std::to_string(port) + R"(", "to": "127.0.0.1:)" +
          std::to_string(be.server.port()) + R"(", "acceptProxyProtocol": true, "proxyProtocol": "v1"})");
  auto src = *SocketAddress::parse("198.51.100.7:40000");
  auto dst = *SocketAddress::parse("203.0.113.9:443");
  std::string header = encodeProxyV2(src, dst);
  int fd = connectTcp(port);
  // Header and payload in one segment: the payload must not wait for another read event.
  std::string msg = header + "payload";
  writeAll(fd, msg.data(), msg.size());
  EXPECT_EQ(readAll(fd), "ok");
  close(fd);
  {
    std::lock_guard<std::mutex> lk(be.mu);
    ASSERT_TRUE(be.parsed);
    EXPECT_EQ(be.header.source.str(), "198.51.100.7:40000");
    EXPECT_EQ(be.header.destination.str(), "203.0.113.9:443");
    EXPECT_EQ(be.after, "payload");
  }
  // The access log records the client from the header.
  EXPECT_TRUE(waitFor([&] { return d.proc->logs().find("\"src\":\"198.51.100.7:40000\"") != std::string::npos; }))
      << d.proc->logs();
}

TEST(ProxyProtocol, BadOrMissingHeaderIsRefusedAndCounted) {
  HeaderBackend be;
  Daemon d;
  uint16_t port = freePort();
  d.start(R"({"name": "lb", "kind": "tcp", "address": "127.0.0.1:)" + std::to_string(port) + R"(", "to": "127.0.0.1:)" +
          std::to_string(be.server.port()) + R"(", "acceptProxyProtocol": true, "sniffTimeout": "500ms"})");
  int fd = connectTcp(port);
  writeAll(fd, "GET / HTTP/1.1\r\n\r\n", 18);
  EXPECT_EQ(readAll(fd, 3000), "");
  close(fd);
  fd = connectTcp(port);  // says nothing: the deadline closes it
  EXPECT_EQ(readAll(fd, 3000), "");
  close(fd);
  EXPECT_TRUE(waitFor([&] {
    std::string s = d.stats();
    return s.find("listener=\"lb\",reason=\"protocol_error\"} 1") != std::string::npos &&
           s.find("listener=\"lb\",reason=\"handshake_timeout\"} 1") != std::string::npos;
  })) << d.stats();
  EXPECT_EQ(be.server.accepted(), 0);
  EXPECT_NE(d.proc->logs().find("PROXY header: "), std::string::npos);
}

}  // namespace
}  // namespace ugate::test

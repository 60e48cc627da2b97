// The fault matrix, each against ugated as a process on real sockets: backends that refuse, reset,
// blackhole or die mid-stream; clients that reset mid-stream, drip their handshake or half-close;
// DNS that fails. Each checks what the client sees, the close reason in /stats and the log, and
// that bystander connections through the same ugated are untouched.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <ugate/socket_util.h>
#include "test_common/test_util.h"
#include "test_common/ugated_fixture.h"

namespace ugate::test {
namespace {

std::string at(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }
std::string closes(const std::string& listener, const std::string& reason) {
  return R"(ugate_listener_closes_total{listener=")" + listener + R"(",reason=")" + reason + "\"}";
}

/** socks5Connect: no-auth SOCKS5 CONNECT to 127.0.0.1:target; returns the fd, or -1 with rep. */
int socks5Connect(uint16_t proxy, const std::string& host, uint16_t target, int* rep = nullptr) {
  int fd = connectTcp(proxy);
  if (fd < 0) return -1;
  std::string req = std::string("\x05\x01\x00", 3);
  req += std::string("\x05\x01\x00\x03", 4) + static_cast<char>(host.size()) + host;
  req += static_cast<char>(target >> 8);
  req += static_cast<char>(target & 0xff);
  uint8_t r[2 + 4 + 4 + 2];
  if (!writeAll(fd, req.data(), req.size()) || !readN(fd, r, 2) || !readN(fd, r + 2, 4)) {
    close(fd);
    return -1;
  }
  if (rep) *rep = r[3];
  if (r[3] != 0 || !readN(fd, r + 6, 6)) {  // BND.ADDR is IPv4 0.0.0.0 in ugated's replies
    close(fd);
    return -1;
  }
  return fd;
}

/**
 * startWithBystanders runs ugated with listener "good" (to the echo server at echoPort, for the
 * bystander connections) beside `faulty`; returns the good listener's port, 0 if ugated did not
 * start.
 */
uint16_t startWithBystanders(UgatedFixture& f, uint16_t echoPort, const std::string& faulty) {
  uint16_t good = freePort();
  std::string ls = UgatedFixture::listener("good", "tcp", good, at(echoPort)) + "," + faulty;
  return f.start(f.config(ls)) ? good : 0;
}

// ---------------------------------------------------------------------------------------------
TEST(Fault, BackendRefusesEachClientIsResetAtOnce) {
  UgatedFixture f;
  TcpServer echo;
  uint16_t dead = freePort(), bad = freePort();
  uint16_t good =
      startWithBystanders(f, echo.port(), UgatedFixture::listener("bad", "tcp", bad, at(dead)));
  ASSERT_NE(good, 0) << f.logs();
  EchoClients bystanders(good, 3);
  ASSERT_TRUE(bystanders.allEcho());
  for (int i = 0; i < 20; ++i) {
    int fd = connectTcp(bad);
    ASSERT_GE(fd, 0);
    // The client is reset as soon as the backend refused: no byte, no waiting for a timeout.
    EXPECT_EQ(closureName(awaitClosure(fd)), std::string("reset")) << i;
    close(fd);
  }
  EXPECT_TRUE(f.waitMetric(closes("bad", "connect_refused"), 20)) << f.stats();
  EXPECT_NE(f.logs().find("connect_refused: connect " + at(dead) + ": Connection refused"),
            std::string::npos)
      << f.logs();
  EXPECT_TRUE(bystanders.allEcho());
  EXPECT_EQ(f.metric(closes("good", "ok")), 0);  // bystanders still open
}

TEST(Fault, BackendResetsMidStream) {
  UgatedFixture f;
  TcpServer echo;
  // The backend answers with 256 KiB, then aborts the connection (RST).
  TcpServer resetter([](int fd) {
    char c;
    if (!readN(fd, &c, 1)) return;
    std::string blob = pattern(256 * 1024, 3);
    writeAll(fd, blob.data(), blob.size());
    linger l{1, 0};  // the handler's close() then sends RST
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  });
  uint16_t rst = freePort();
  uint16_t good = startWithBystanders(
      f, echo.port(), UgatedFixture::listener("rst", "tcp", rst, at(resetter.port())));
  ASSERT_NE(good, 0) << f.logs();
  EchoClients bystanders(good, 3);
  ASSERT_TRUE(bystanders.allEcho());
  int fd = connectTcp(rst);
  ASSERT_TRUE(writeAll(fd, "x", 1));
  // The client may read some of the 256 KiB first; then ugated resets it too.
  Closure c = awaitClosure(fd);
  EXPECT_TRUE(c == Closure::Reset) << closureName(c);
  close(fd);
  EXPECT_TRUE(f.waitMetric(closes("rst", "reset"), 1)) << f.stats();
  EXPECT_TRUE(waitFor([&] {
    return f.logs().find(R"("close":"reset","detail":"upstream side")") != std::string::npos;
  })) << f.logs();
  EXPECT_TRUE(bystanders.allEcho());
}

/** ChildEcho: ugate_loadgen echo in a process of its own, so that it can be killed mid-stream. */
class ChildEcho : public ListeningChild {
 public:
  ChildEcho() : ListeningChild({UGATE_LOADGEN, "echo"}) {}
};

TEST(Fault, BackendDiesMidStream) {
  UgatedFixture f;
  TcpServer echo;
  ChildEcho doomed;
  ASSERT_NE(doomed.port(), 0);
  uint16_t dying = freePort();
  uint16_t good = startWithBystanders(
      f, echo.port(), UgatedFixture::listener("dying", "tcp", dying, at(doomed.port())));
  ASSERT_NE(good, 0) << f.logs();
  EchoClients bystanders(good, 3);
  // Five connections have exchanged bytes and sit idle when the backend dies.
  auto idle = std::make_unique<EchoClients>(dying, 5);
  ASSERT_TRUE(bystanders.allEcho());
  ASSERT_TRUE(idle->allEcho());
  // One connection streams both ways as fast as it can when the backend dies.
  int busy = connectTcp(dying);
  std::atomic<bool> writerDone{false}, readerDone{false};
  std::atomic<uint64_t> readBytes{0};
  std::thread writer([&] {
    std::string chunk = pattern(64 * 1024, 5);
    while (writeAll(busy, chunk.data(), chunk.size())) {
    }
    writerDone = true;
  });
  std::thread reader([&] {
    char buf[65536];
    for (;;) {
      ssize_t n = recv(busy, buf, sizeof(buf), 0);
      if (n <= 0) break;
      readBytes += static_cast<uint64_t>(n);
    }
    readerDone = true;
  });
  ASSERT_TRUE(waitFor([&] { return readBytes.load() > 1024 * 1024; }));
  doomed.kill9();
  // The streaming client sees its stream end (EOF or reset) instead of hanging.
  EXPECT_TRUE(waitFor([&] { return readerDone.load(); }, 5000));
  shutdown(busy, SHUT_RDWR);  // unblock the writer if its socket buffer was full
  writer.join();
  reader.join();
  close(busy);
  // Idle clients: the backend's FIN reaches each (EOF), as it would without a proxy between; the
  // streams end when the clients close their side.
  for (Closure c : idle->awaitClosures()) EXPECT_EQ(closureName(c), std::string("eof"));
  idle.reset();
  EXPECT_TRUE(f.waitMetric(R"(ugate_listener_connections_active{listener="dying"})", 0))
      << f.stats();
  int64_t ended = f.metric(closes("dying", "ok")) + f.metric(closes("dying", "reset"));
  EXPECT_EQ(ended, 6) << f.stats();
  // New streams to the dead backend are refused; the good listener is untouched.
  int fd = connectTcp(dying);
  EXPECT_EQ(closureName(awaitClosure(fd)), std::string("reset"));
  close(fd);
  EXPECT_TRUE(f.waitMetric(closes("dying", "connect_refused"), 1)) << f.stats();
  EXPECT_TRUE(bystanders.allEcho());
  EXPECT_TRUE(f.proc->running());
}

TEST(Fault, ClientResetsMidStream) {
  UgatedFixture f;
  TcpServer echo;
  std::atomic<bool> backendSawEnd{false};
  std::atomic<int> backendErrno{0};
  // The backend sends until its socket fails.
  TcpServer firehose([&](int fd) {
    std::string chunk = pattern(64 * 1024, 11);
    for (;;) {
      ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        backendErrno = errno;
        break;
      }
    }
    backendSawEnd = true;
  });
  uint16_t hose = freePort();
  uint16_t good = startWithBystanders(
      f, echo.port(), UgatedFixture::listener("hose", "tcp", hose, at(firehose.port())));
  ASSERT_NE(good, 0) << f.logs();
  EchoClients bystanders(good, 3);
  ASSERT_TRUE(bystanders.allEcho());
  int fd = connectTcp(hose);
  std::string got(512 * 1024, '\0');
  ASSERT_TRUE(readN(fd, got.data(), got.size()));
  closeAbort(fd);  // RST in the middle of the download
  // ugated resets the upstream in turn: the backend's next send fails instead of blocking.
  EXPECT_TRUE(waitFor([&] { return backendSawEnd.load(); }, 5000));
  EXPECT_TRUE(backendErrno == ECONNRESET || backendErrno == EPIPE) << strerror(backendErrno);
  EXPECT_TRUE(f.waitMetric(closes("hose", "reset"), 1)) << f.stats();
  EXPECT_TRUE(waitFor([&] {
    return f.logs().find(R"("close":"reset","detail":"client side")") != std::string::npos;
  })) << f.logs();
  EXPECT_TRUE(f.waitMetric(R"(ugate_listener_connections_active{listener="hose"})", 0));
  EXPECT_TRUE(bystanders.allEcho());
}

TEST(Fault, BlackholeBackendHitsConnectTimeoutInANamespace) {
  // A private network namespace where SYNs to one port are dropped by iptables: the connect neither
  // succeeds nor fails until ugated's connectTimeout. And an address with no route at all.
  std::string why;
  auto body = [&] {
    const uint16_t hole = 9999;
    std::string rule =
        "iptables -w -A INPUT -p tcp --dport " + std::to_string(hole) + " --syn -j DROP";
    ASSERT_EQ(system(rule.c_str()), 0) << rule;
    UgatedFixture f;
    TcpServer echo;
    uint16_t good = freePort(), bh = freePort(), unroutable = freePort(), socks = freePort();
    ASSERT_TRUE(f.start(f.config(
        UgatedFixture::listener("good", "tcp", good, at(echo.port())) + "," +
        UgatedFixture::listener("bh", "tcp", bh, at(hole), R"(, "connectTimeout": "500ms")") + "," +
        UgatedFixture::listener("unroutable", "tcp", unroutable, "10.255.255.1:80") + "," +
        UgatedFixture::listener("socks", "socks5", socks, "", R"(, "connectTimeout": "500ms")"))))
        << f.logs();
    EchoClients bystanders(good, 3);
    ASSERT_TRUE(bystanders.allEcho());
    std::vector<int> fds;
    for (int i = 0; i < 5; ++i) fds.push_back(connectTcp(bh));
    for (int fd : fds) {
      EXPECT_EQ(closureName(awaitClosure(fd)), std::string("reset"));
      close(fd);
    }
    EXPECT_TRUE(f.waitMetric(closes("bh", "connect_timeout"), 5)) << f.stats();
    EXPECT_NE(f.logs().find("connect_timeout: connect 127.0.0.1:9999: no answer within 500 ms"),
              std::string::npos)
        << f.logs();
    int rep = -1;
    EXPECT_EQ(socks5Connect(socks, "127.0.0.1", hole, &rep), -1);
    EXPECT_EQ(rep, 6) << "SOCKS5 REP 06 (TTL expired) for a connect timeout";
    int fd = connectTcp(unroutable);
    EXPECT_EQ(closureName(awaitClosure(fd)), std::string("reset"));
    close(fd);
    EXPECT_TRUE(f.waitMetric(closes("unroutable", "network_unreachable"), 1)) << f.stats();
    EXPECT_TRUE(bystanders.allEcho());
  };
  if (!runInPrivateNetns(body, &why)) GTEST_SKIP() << why;
}

// ---------------------------------------------------------------------------------------------
// Slow-drip sniffers: clients that send their handshake one byte at a time, slower than the sniff
// deadline allows, or nothing at all. Each is closed at the deadline; a normal client of the same
// listener is served meanwhile.
struct DripResult {
  size_t sent{0};
  Closure how{Closure::Open};
};

DripResult drip(uint16_t port, const std::string& bytes, int gapMs) {
  DripResult r;
  int fd = connectTcp(port);
  if (fd < 0) return r;
  for (size_t i = 0; i <= bytes.size(); ++i) {
    if (i < bytes.size()) {
      if (send(fd, &bytes[i], 1, MSG_NOSIGNAL) != 1) break;
      ++r.sent;
    }
    // Replies (the SOCKS method choice) are read and dropped; EOF or RST ends the drip.
    Closure c = awaitClosure(fd, i < bytes.size() ? gapMs : 10000);
    if (c == Closure::Reset || c == Closure::Eof) {
      r.how = c;
      break;
    }
  }
  close(fd);
  return r;
}

TEST(Fault, SlowDripSniffersAreCutAtTheDeadline) {
  UgatedFixture f;
  TcpServer echo;
  uint16_t socks = freePort(), sni = freePort(), httpc = freePort();
  const std::string deadline = R"(, "sniffTimeout": "1s")";
  ASSERT_TRUE(
      f.start(f.config(UgatedFixture::listener("socks", "socks5", socks, "", deadline) + "," +
                       UgatedFixture::listener("sni", "sni", sni, at(echo.port()), deadline) + "," +
                       UgatedFixture::listener("httpc", "http-connect", httpc, "", deadline))))
      << f.logs();
  const std::string socksHs = std::string("\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01", 11) +
                              static_cast<char>(echo.port() >> 8) +
                              static_cast<char>(echo.port() & 0xff);
  // A TLS record header announcing a 200-byte ClientHello, then the body, byte by byte.
  const std::string hello =
      fromHexString("16 03 01 00 c8 01 00 00 c4 03 03") + std::string(189, '\x01');
  const std::string connect = "CONNECT " + at(echo.port()) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  struct Case {
    uint16_t port;
    std::string bytes;
    const char* listener;
  };
  const Case cases[] = {{socks, socksHs, "socks"}, {sni, hello, "sni"}, {httpc, connect, "httpc"}};
  std::vector<std::thread> ts;
  std::mutex mu;
  std::map<std::string, std::vector<DripResult>> results;
  for (const auto& c : cases) {
    for (int i = 0; i < 4; ++i) {
      // Three drip a byte every 400 ms; the fourth says nothing at all.
      ts.emplace_back([&, c, i] {
        DripResult r = drip(c.port, i < 3 ? c.bytes : std::string(), 400);
        std::lock_guard<std::mutex> lk(mu);
        results[c.listener].push_back(r);
      });
    }
  }
  // Meanwhile a well-behaved SOCKS client is served.
  int fd = socks5Connect(socks, "127.0.0.1", echo.port());
  ASSERT_GE(fd, 0);
  char buf[5];
  EXPECT_TRUE(writeAll(fd, "hello", 5) && readN(fd, buf, 5) && std::string(buf, 5) == "hello");
  for (auto& t : ts) t.join();
  for (const auto& c : cases) {
    for (const auto& r : results[c.listener]) {
      // Closed by ugated (reset) long before the whole handshake was dripped.
      EXPECT_EQ(closureName(r.how), std::string("reset")) << c.listener;
      EXPECT_LT(r.sent, c.bytes.size()) << c.listener;
    }
    EXPECT_TRUE(f.waitMetric(R"(ugate_listener_errors_total{listener=")" + std::string(c.listener) +
                                 R"(",reason="handshake_timeout"})",
                             4))
        << f.stats();
  }
  EXPECT_TRUE(writeAll(fd, "again", 5) && readN(fd, buf, 5));  // the good client still flows
  close(fd);
}

// ---------------------------------------------------------------------------------------------
// Half-open peers: one side sends FIN while the other keeps sending megabytes, both ways.
TEST(Fault, HalfOpenPeersKeepTheOtherDirectionFlowing) {
  UgatedFixture f;
  const std::string down = pattern(8 * 1024 * 1024, 21), up = pattern(8 * 1024 * 1024, 22);
  std::atomic<uint64_t> upSum{0};
  // Backend 1 reads the upload to EOF first, then sends the download.
  TcpServer afterEof([&](int fd) {
    std::string all = readAll(fd, 20000);
    upSum = fnv1a64(all.data(), all.size());
    writeAll(fd, down.data(), down.size());
    shutdown(fd, SHUT_WR);
  });
  // Backend 2 sends the download and FIN at once, then reads the upload to EOF.
  std::atomic<uint64_t> upSum2{0};
  TcpServer finFirst([&](int fd) {
    writeAll(fd, down.data(), down.size());
    shutdown(fd, SHUT_WR);
    std::string all = readAll(fd, 20000);
    upSum2 = fnv1a64(all.data(), all.size());
  });
  uint16_t p1 = freePort(), p2 = freePort();
  ASSERT_TRUE(
      f.start(f.config(UgatedFixture::listener("client-fin", "tcp", p1, at(afterEof.port())) + "," +
                       UgatedFixture::listener("server-fin", "tcp", p2, at(finFirst.port())))))
      << f.logs();
  const uint64_t upWant = fnv1a64(up.data(), up.size()),
                 downWant = fnv1a64(down.data(), down.size());

  // Client FIN first: upload, FIN, then the whole download arrives on the half-closed stream.
  int fd = connectTcp(p1);
  ASSERT_TRUE(writeAll(fd, up.data(), up.size()));
  shutdown(fd, SHUT_WR);
  std::string got = readAll(fd, 20000);
  close(fd);
  EXPECT_EQ(got.size(), down.size());
  EXPECT_EQ(fnv1a64(got.data(), got.size()), downWant);
  EXPECT_TRUE(waitFor([&] { return upSum.load() == upWant; }));

  // Server FIN first: the download ends with EOF while the upload is still being sent.
  fd = connectTcp(p2);
  std::thread uploader([&] {
    writeAll(fd, up.data(), up.size());
    shutdown(fd, SHUT_WR);
  });
  got = readAll(fd, 20000);
  uploader.join();
  EXPECT_EQ(fnv1a64(got.data(), got.size()), downWant);
  EXPECT_TRUE(waitFor([&] { return upSum2.load() == upWant; }));
  close(fd);

  EXPECT_TRUE(f.waitMetric(closes("client-fin", "ok"), 1)) << f.stats();
  EXPECT_TRUE(f.waitMetric(closes("server-fin", "ok"), 1)) << f.stats();
  EXPECT_GE(f.metric(R"(ugate_listener_spliced_total{listener="client-fin"})"), 1);
}

// ---------------------------------------------------------------------------------------------
// DNS failure: a fake DNS server on loopback answers SERVFAIL, NXDOMAIN, nothing at all, or an A
// record, by the first label of the name.
class FakeDns {
 public:
  FakeDns() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeDns() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  int queries(const std::string& firstLabel) {
    std::lock_guard<std::mutex> lk(mu_);
    return counts_[firstLabel];
  }

 private:
  void serve() {
    uint8_t q[512];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      sockaddr_storage from{};
      socklen_t fl = sizeof(from);
      ssize_t n = recvfrom(fd_, q, sizeof(q), 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < 17) continue;
      // The question: labels from byte 12 to a zero byte, then QTYPE and QCLASS.
      size_t i = 12;
      std::string first;
      while (i < static_cast<size_t>(n) && q[i] != 0) {
        if (first.empty()) first.assign(reinterpret_cast<char*>(q + i + 1), q[i]);
        i += q[i] + 1u;
      }
      if (i + 5 > static_cast<size_t>(n)) continue;
      uint16_t qtype = static_cast<uint16_t>(q[i + 1] << 8 | q[i + 2]);
      size_t qend = i + 5;
      {
        std::lock_guard<std::mutex> lk(mu_);
        ++counts_[first];
      }
      if (first == "silent") continue;
      uint8_t rcode = first == "servfail" ? 2 : first == "nxdomain" ? 3 : 0;
      std::string r(reinterpret_cast<char*>(q), qend);
      r[2] = static_cast<char>(0x81);                // QR, RD
      r[3] = static_cast<char>(0x80 | rcode);        // RA
      const bool answer = rcode == 0 && qtype == 1;  // A 127.0.0.1; AAAA: no data
      r[6] = 0, r[7] = answer ? 1 : 0;
      r[8] = r[9] = r[10] = r[11] = 0;
      if (answer) r += fromHexString("c00c 0001 0001 0000003c 0004 7f000001");
      sendto(fd_, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
    }
  }
  int fd_{-1};
  uint16_t port_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, int> counts_;
};

TEST(Fault, DnsFailuresAreAnsweredAndCounted) {
  UgatedFixture f;
  TcpServer echo;
  FakeDns dns;
  const std::string ep = ":" + std::to_string(echo.port());
  uint16_t servfail = freePort(), nxdomain = freePort(), silent = freePort(), ok = freePort(),
           socks = freePort();
  std::string dnsCfg = R"(, "dns": {"servers": ["127.0.0.1:)" + std::to_string(dns.port()) +
                       R"("], "timeout": "300ms", "negativeTtl": "30s"})";
  ASSERT_TRUE(f.start(
      f.config(UgatedFixture::listener("servfail", "tcp", servfail, "servfail.test" + ep) + "," +
                   UgatedFixture::listener("nxdomain", "tcp", nxdomain, "nxdomain.test" + ep) +
                   "," + UgatedFixture::listener("silent", "tcp", silent, "silent.test" + ep) +
                   "," + UgatedFixture::listener("ok", "tcp", ok, "ok.test" + ep) + "," +
                   UgatedFixture::listener("socks", "socks5", socks, ""),
               dnsCfg)))
      << f.logs();
  EchoClients bystanders(ok, 3);  // through a name the fake server resolves
  ASSERT_TRUE(bystanders.allEcho());
  for (uint16_t port : {servfail, nxdomain, silent}) {
    int fd = connectTcp(port);
    EXPECT_EQ(closureName(awaitClosure(fd)), std::string("reset")) << port;
    close(fd);
  }
  for (const char* l : {"servfail", "nxdomain", "silent"}) {
    EXPECT_TRUE(f.waitMetric(closes(l, "dns_failure"), 1)) << l << "\n" << f.stats();
  }
  EXPECT_NE(f.logs().find("upstream=servfail.test" + ep + ": dns_failure"), std::string::npos)
      << f.logs();
  EXPECT_NE(f.logs().find("upstream=silent.test" + ep + ": dns_failure"), std::string::npos)
      << f.logs();
  // SOCKS5 maps a DNS failure to REP 04 (host unreachable) and still serves names that resolve.
  int rep = -1;
  EXPECT_EQ(socks5Connect(socks, "nxdomain.test", echo.port(), &rep), -1);
  EXPECT_EQ(rep, 4);
  int fd = socks5Connect(socks, "ok.test", echo.port(), &rep);
  ASSERT_GE(fd, 0) << "rep " << rep;
  char buf[2];
  EXPECT_TRUE(writeAll(fd, "hi", 2) && readN(fd, buf, 2));
  close(fd);
  // Failures are cached (dns.negativeTtl): more streams to the failing name ask the server no more.
  int asked = dns.queries("servfail");
  EXPECT_GE(asked, 1);
  for (int i = 0; i < 3; ++i) {
    int c = connectTcp(servfail);
    EXPECT_EQ(closureName(awaitClosure(c)), std::string("reset"));
    close(c);
  }
  EXPECT_TRUE(f.waitMetric(closes("servfail", "dns_failure"), 4));
  EXPECT_EQ(dns.queries("servfail"), asked);
  EXPECT_TRUE(bystanders.allEcho());
}

}  // namespace
}  // namespace ugate::test

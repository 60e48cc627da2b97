// TlsStream against real peers: `openssl s_server -Verify` and `openssl s_client -cert -key`,
// spawned on loopback and killed by PID.
#include <sys/epoll.h>

#include <gtest/gtest.h>

#include "auth/mesh_ca.h"
#include "auth/tls_stream.h"
#include "tls_test_util.h"

namespace ugate::auth {
namespace {

using namespace std::chrono_literals;
using test::Child;
using test::Endpoint;
using test::runUntil;

// Acceptor: a non-blocking loopback listener on the reactor.
class Acceptor : public IoWatcher {
 public:
  Acceptor(Reactor& r, std::function<void(int)> onFd) : r_(r), onFd_(std::move(onFd)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(fd_, 16);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    r_.addFd(fd_, this, EPOLLIN);
  }
  ~Acceptor() override {
    r_.removeFd(fd_, this);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  void onIoEvent(uint32_t) override {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c < 0) return;
      onFd_(c);
    }
  }

 private:
  Reactor& r_;
  std::function<void(int)> onFd_;
  int fd_{-1};
  uint16_t port_{0};
};

class TlsInteropTest : public testing::Test {
 protected:
  void SetUp() override {
    CaInitOptions o;
    o.dir = tmp_.path() + "/ca";
    o.trustDomain = "example.org";
    ca_ = *initMeshCa(o);
    caPath_ = tmp_.path() + "/ca/ca-cert.pem";
    IssueOptions io;
    io.name = "server-a";
    a_ = *issueNodeCredentials(ca_, io);
    io.name = "client-b";
    b_ = *issueNodeCredentials(ca_, io);
    ASSERT_TRUE(saveIstioDir(tmp_.path() + "/a", a_));
    ASSERT_TRUE(saveIstioDir(tmp_.path() + "/b", b_));
  }

  TlsContextPtr context(bool server, const NodeCredentials& creds, std::vector<std::string> alpn) {
    TlsContextConfig cfg;
    cfg.server = server;
    cfg.certChainPem = creds.certChainPem;
    cfg.keyPem = creds.key.toPem();
    PeerVerifyConfig v;
    v.rootsPem = ca_.certPem;
    v.trustDomain = "example.org";
    cfg.verifier = *PeerVerifier::create(v);
    cfg.alpn = std::move(alpn);
    return *TlsContext::create(std::move(cfg));
  }

  // runServerWithClient serves one connection on a fresh reactor while `openssl s_client` runs.
  std::string runOpensslClient(std::vector<std::string> extra, Endpoint& server, int* exitCode) {
    ReactorPtr r = newReactor(realTimeSource(), 0);
    auto ctx = context(true, a_, {"h2"});
    Acceptor acc(*r, [&](int fd) {
      if (!server.tls) server.start(*r, fd, ctx);
      else ::close(fd);
    });
    std::string in = tmp_.write("stdin.txt", "hello from s_client\n");
    std::vector<std::string> args = {"openssl", "s_client", "-connect",
                                     "127.0.0.1:" + std::to_string(acc.port()), "-CAfile", caPath_,
                                     "-verify_return_error", "-servername",
                                     "server-a.example.org", "-brief", "-ign_eof"};
    args.insert(args.end(), extra.begin(), extra.end());
    Child child(args, in, tmp_.path() + "/s_client.log");
    EXPECT_TRUE(runUntil(*r, [&] { return server.finished(); }));
    *exitCode = child.wait();
    server.tls.reset();
    return child.output();
  }

  ugate::test::TempDir tmp_;
  MeshCa ca_;
  std::string caPath_;
  NodeCredentials a_;
  NodeCredentials b_;
};

TEST_F(TlsInteropTest, OurClientAgainstOpensslServerRequiringClientCert) {
  uint16_t port = ugate::test::freePort();
  std::string in = tmp_.write("empty", "");
  Child server({"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert",
                tmp_.path() + "/a/cert-chain.pem", "-key", tmp_.path() + "/a/key.pem", "-CAfile",
                caPath_, "-Verify", "1", "-verify_return_error", "-tls1_3", "-naccept", "1",
                "-rev", "-alpn", "h2"},
               in, tmp_.path() + "/s_server.log");
  ASSERT_TRUE(ugate::test::waitFor(
      [&] { return server.output().find("ACCEPT") != std::string::npos; }, 10000))
      << server.output();

  ReactorPtr r = newReactor(realTimeSource(), 0);
  int fd = ugate::test::connectTcp(port);
  ASSERT_GE(fd, 0);
  test::setNonBlocking(fd);
  Endpoint client;
  client.toSend = "hello world\n";
  TlsStreamOptions o;
  o.sni = "server-a.example.org";
  client.start(*r, fd, context(false, b_, {"h2"}), o);
  EXPECT_TRUE(runUntil(*r, [&] {
    return client.finished() || client.received.find("dlrow olleh") != std::string::npos;
  })) << server.output();
  ASSERT_TRUE(client.info.ok()) << client.info.detail;
  EXPECT_EQ(client.info.peer.nodeId, a_.nodeId());
  EXPECT_EQ(client.info.peer.spiffe, "spiffe://example.org/ns/default/sa/server-a");
  EXPECT_EQ(client.info.alpn, "h2");
  EXPECT_EQ(client.info.version, "TLSv1.3");
  EXPECT_NE(client.received.find("dlrow olleh"), std::string::npos) << client.received;
  client.tls.reset();
  EXPECT_EQ(server.wait(), 0);
  // s_server verified our client certificate against the CA.
  std::string log = server.output();
  EXPECT_NE(log.find("client-b.example.org"), std::string::npos) << log;
  EXPECT_EQ(log.find("verify error"), std::string::npos) << log;
}

TEST_F(TlsInteropTest, OpensslClientWithCertAgainstOurServer) {
  Endpoint server;
  server.echo = true;
  server.closeAfterBytes = strlen("hello from s_client\n");
  int code = -1;
  std::string out = runOpensslClient(
      {"-cert", tmp_.path() + "/b/cert-chain.pem", "-key", tmp_.path() + "/b/key.pem", "-alpn",
       "h2"},
      server, &code);
  ASSERT_TRUE(server.info.ok()) << server.info.detail << "\n" << out;
  EXPECT_EQ(server.info.peer.nodeId, b_.nodeId());
  EXPECT_EQ(server.info.peer.spiffe, "spiffe://example.org/ns/default/sa/client-b");
  EXPECT_EQ(server.info.alpn, "h2");
  EXPECT_EQ(server.info.sni, "server-a.example.org");
  EXPECT_EQ(server.received, "hello from s_client\n");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("Verification: OK"), std::string::npos) << out;
  EXPECT_NE(out.find("Protocol version: TLSv1.3"), std::string::npos) << out;
  EXPECT_NE(out.find("hello from s_client"), std::string::npos) << out;  // the echo
}

TEST_F(TlsInteropTest, OpensslClientWithTls12IsRefused) {
  Endpoint server;
  int code = -1;
  std::string out = runOpensslClient(
      {"-tls1_2", "-cert", tmp_.path() + "/b/cert-chain.pem", "-key", tmp_.path() + "/b/key.pem"},
      server, &code);
  EXPECT_EQ(server.info.failure, AuthFailure::HandshakeFailed) << server.info.detail;
  EXPECT_NE(server.info.detail.find("UNSUPPORTED_PROTOCOL"), std::string::npos)
      << server.info.detail;
  EXPECT_NE(code, 0) << out;
}

TEST_F(TlsInteropTest, OpensslClientFromAnotherCaIsUnknownCa) {
  CaInitOptions o;
  o.dir = tmp_.path() + "/ca2";
  o.trustDomain = "example.org";
  auto ca2 = initMeshCa(o);
  IssueOptions io;
  io.name = "mallory";
  ASSERT_TRUE(saveIstioDir(tmp_.path() + "/m", *issueNodeCredentials(*ca2, io)));
  Endpoint server;
  int code = -1;
  std::string out = runOpensslClient(
      {"-cert", tmp_.path() + "/m/cert-chain.pem", "-key", tmp_.path() + "/m/key.pem"}, server,
      &code);
  EXPECT_EQ(server.info.failure, AuthFailure::UnknownCa) << server.info.detail;
  EXPECT_NE(out.find("unknown ca"), std::string::npos) << out;
}

}  // namespace
}  // namespace ugate::auth

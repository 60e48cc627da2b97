// TlsStream between two ugate endpoints over loopback TCP on the real reactor: mTLS by CA and by
// pinned IDs, ALPN, resumption, and each rejection with its own reason.
#include <gtest/gtest.h>

#include "auth/mesh_ca.h"
#include "auth/tls_stream.h"
#include "tls_test_util.h"

namespace ugate::auth {
namespace {

using namespace std::chrono_literals;
using test::Endpoint;
using test::runUntil;
using test::tcpPair;

class TlsStreamTest : public testing::Test {
 protected:
  void SetUp() override {
    CaInitOptions o;
    o.dir = tmp_.path() + "/ca";
    o.trustDomain = "example.org";
    ca_ = *initMeshCa(o);
    CaInitOptions o2;
    o2.dir = tmp_.path() + "/ca2";
    o2.trustDomain = "example.org";
    otherCa_ = *initMeshCa(o2);
  }

  NodeCredentials issue(const MeshCa& ca, const std::string& name, IssueOptions io = {}) {
    io.name = name;
    auto c = issueNodeCredentials(ca, io);
    EXPECT_TRUE(c) << c.error().detail;
    return *c;
  }

  NodeCredentials selfSigned(const std::string& name) { return test::selfSignedCredentials(name); }

  static TlsContextPtr context(bool server, const NodeCredentials* creds, PeerVerifyConfig v,
                               std::vector<std::string> alpn = {}) {
    TlsContextConfig cfg;
    cfg.server = server;
    if (creds) {
      cfg.certChainPem = creds->certChainPem;
      cfg.keyPem = creds->key.toPem();
    }
    auto verifier = PeerVerifier::create(v);
    EXPECT_TRUE(verifier) << verifier.error().detail;
    cfg.verifier = *verifier;
    cfg.alpn = std::move(alpn);
    auto ctx = TlsContext::create(std::move(cfg));
    EXPECT_TRUE(ctx) << ctx.error().detail;
    return *ctx;
  }

  static PeerVerifyConfig roots(const MeshCa& ca, std::string td = "example.org") {
    PeerVerifyConfig v;
    v.rootsPem = ca.certPem;
    v.trustDomain = std::move(td);
    return v;
  }

  // connect runs one client/server pair to completion on a fresh reactor.
  void connect(Endpoint& client, TlsContextPtr cctx, Endpoint& server, TlsContextPtr sctx,
               TlsStreamOptions copts = {}) {
    ReactorPtr r = newReactor(realTimeSource(), 0);
    auto [c, s] = tcpPair();
    server.start(*r, s, std::move(sctx));
    client.start(*r, c, std::move(cctx), std::move(copts));
    bool done = runUntil(*r, [&] { return client.finished() && server.finished(); });
    EXPECT_TRUE(done) << "client handshook=" << client.handshook << " server handshook="
                      << server.handshook;
    client.tls.reset();
    server.tls.reset();
  }

  ugate::test::TempDir tmp_;
  MeshCa ca_;
  MeshCa otherCa_;
};

TEST_F(TlsStreamTest, MutualTlsByCaCarriesDataAndIdentities) {
  auto a = issue(ca_, "server-a");
  auto b = issue(ca_, "client-b");
  Endpoint server;
  server.echo = true;
  Endpoint client;
  client.toSend = ugate::test::pattern(1 << 20, 7);  // 1 MiB: several records, backpressure
  client.shutdownAfterSend = true;
  TlsStreamOptions copts;
  copts.sni = "server-a.example.org";
  connect(client, context(false, &b, roots(ca_), {"h2r", "h2"}), server,
          context(true, &a, roots(ca_), {"h2"}), copts);

  ASSERT_TRUE(server.info.ok()) << server.info.detail;
  ASSERT_TRUE(client.info.ok()) << client.info.detail;
  EXPECT_TRUE(client.eof);
  EXPECT_EQ(client.received.size(), client.toSend.size());
  EXPECT_TRUE(client.received == client.toSend);

  EXPECT_TRUE(server.info.peerAuthenticated);
  EXPECT_EQ(server.info.peer.nodeId, b.nodeId());
  EXPECT_EQ(server.info.peer.spiffe, "spiffe://example.org/ns/default/sa/client-b");
  EXPECT_EQ(server.info.peer.dnsSans, std::vector<std::string>{"client-b.example.org"});
  EXPECT_EQ(server.info.sni, "server-a.example.org");
  EXPECT_EQ(server.info.alpn, "h2");
  EXPECT_EQ(server.info.version, "TLSv1.3");
  EXPECT_EQ(client.info.peer.nodeId, a.nodeId());
  EXPECT_EQ(client.info.peer.spiffe, "spiffe://example.org/ns/default/sa/server-a");
  EXPECT_EQ(client.info.alpn, "h2");
  EXPECT_FALSE(client.info.resumed);
}

TEST_F(TlsStreamTest, MutualTlsByPinnedNodeIds) {
  auto a = selfSigned("a");
  auto b = selfSigned("b");
  Endpoint server;
  server.echo = true;
  Endpoint client;
  client.toSend = "hello pinned";
  client.shutdownAfterSend = true;
  connect(client, context(false, &b, PeerVerifyConfig{.pinnedIds = {a.nodeId()}}), server,
          context(true, &a, PeerVerifyConfig{.pinnedIds = {b.nodeId()}}));
  ASSERT_TRUE(server.info.ok()) << server.info.detail;
  ASSERT_TRUE(client.info.ok()) << client.info.detail;
  EXPECT_EQ(client.received, "hello pinned");
  EXPECT_EQ(server.info.peer.nodeId, b.nodeId());
  EXPECT_EQ(client.info.peer.nodeId, a.nodeId());
  EXPECT_TRUE(server.info.peer.spiffe.empty());
}

TEST_F(TlsStreamTest, ClientSessionResumption) {
  auto a = issue(ca_, "a");
  auto b = issue(ca_, "b");
  auto cctx = context(false, &b, roots(ca_));
  auto sctx = context(true, &a, roots(ca_));
  TlsStreamOptions copts;
  copts.sessionKey = "127.0.0.1:15008";
  for (int i = 0; i < 2; ++i) {
    Endpoint server;
    server.echo = true;
    Endpoint client;
    client.toSend = "round " + std::to_string(i);
    // closeAfterBytes: BoringSSL ignores tickets that arrive after our close_notify, so the client
    // reads the echo (and the tickets before it) first.
    client.closeAfterBytes = client.toSend.size();
    connect(client, cctx, server, sctx, copts);
    ASSERT_TRUE(client.info.ok()) << client.info.detail;
    ASSERT_TRUE(server.info.ok()) << server.info.detail;
    EXPECT_EQ(client.received, client.toSend);
    EXPECT_EQ(client.info.resumed, i == 1) << i;
    EXPECT_EQ(server.info.resumed, i == 1) << i;
    // The identity survives resumption on both sides.
    EXPECT_EQ(server.info.peer.nodeId, b.nodeId()) << i;
    EXPECT_EQ(client.info.peer.nodeId, a.nodeId()) << i;
    if (i == 0) {
      EXPECT_GE(cctx->cachedSessionsForTest(), 1u);
    }
  }
}

TEST_F(TlsStreamTest, ClientCertFromWrongCaIsUnknownCa) {
  auto a = issue(ca_, "a");
  auto stranger = issue(otherCa_, "stranger");
  uint64_t before = authFailureCount(AuthFailure::UnknownCa);
  Endpoint server;
  Endpoint client;
  client.toSend = "x";
  connect(client, context(false, &stranger, PeerVerifyConfig{.acceptAny = true}), server,
          context(true, &a, roots(ca_)));
  EXPECT_EQ(server.info.failure, AuthFailure::UnknownCa) << server.info.detail;
  EXPECT_NE(server.info.detail.find("untrusted issuer"), std::string::npos)
      << server.info.detail;
  EXPECT_EQ(authFailureCount(AuthFailure::UnknownCa), before + 1);
  // TLS 1.3: the client finished first and learns of the rejection on its first read.
  EXPECT_EQ(client.readErr, EPROTO);
}

TEST_F(TlsStreamTest, ServerCertFromWrongCaIsUnknownCaAtTheClient) {
  auto stranger = issue(otherCa_, "stranger");
  auto b = issue(ca_, "b");
  Endpoint server;
  Endpoint client;
  connect(client, context(false, &b, roots(ca_)), server,
          context(true, &stranger, PeerVerifyConfig{.acceptAny = true}));
  EXPECT_EQ(client.info.failure, AuthFailure::UnknownCa) << client.info.detail;
  EXPECT_EQ(server.info.failure, AuthFailure::PeerRejected) << server.info.detail;
  EXPECT_NE(server.info.detail.find("unknown CA"), std::string::npos) << server.info.detail;
}

TEST_F(TlsStreamTest, ExpiredClientCertIsRejected) {
  auto a = issue(ca_, "a");
  IssueOptions io;
  io.notBefore = std::chrono::system_clock::now() - 24h * 3;
  io.validity = 24h;
  auto old = issue(ca_, "old", io);
  uint64_t before = authFailureCount(AuthFailure::CertExpired);
  Endpoint server;
  Endpoint client;
  connect(client, context(false, &old, PeerVerifyConfig{.acceptAny = true}), server,
          context(true, &a, roots(ca_)));
  EXPECT_EQ(server.info.failure, AuthFailure::CertExpired) << server.info.detail;
  EXPECT_NE(server.info.detail.find("certificate has expired"), std::string::npos)
      << server.info.detail;
  EXPECT_EQ(authFailureCount(AuthFailure::CertExpired), before + 1);
}

TEST_F(TlsStreamTest, PinnedIdMismatchIsRejected) {
  auto a = selfSigned("a");
  auto b = selfSigned("b");
  auto c = selfSigned("c");
  uint64_t before = authFailureCount(AuthFailure::PinnedIdMismatch);
  Endpoint server;
  Endpoint client;
  connect(client, context(false, &b, PeerVerifyConfig{.acceptAny = true}), server,
          context(true, &a, PeerVerifyConfig{.pinnedIds = {c.nodeId()}}));
  EXPECT_EQ(server.info.failure, AuthFailure::PinnedIdMismatch) << server.info.detail;
  EXPECT_NE(server.info.detail.find(b.nodeId()), std::string::npos) << server.info.detail;
  EXPECT_EQ(authFailureCount(AuthFailure::PinnedIdMismatch), before + 1);

  // The client pinning the wrong server ID fails during its own handshake.
  Endpoint server2;
  Endpoint client2;
  connect(client2, context(false, &b, PeerVerifyConfig{.pinnedIds = {c.nodeId()}}), server2,
          context(true, &a, PeerVerifyConfig{.acceptAny = true}));
  EXPECT_EQ(client2.info.failure, AuthFailure::PinnedIdMismatch) << client2.info.detail;
  EXPECT_EQ(server2.info.failure, AuthFailure::PeerRejected) << server2.info.detail;
}

TEST_F(TlsStreamTest, MissingClientCertIsRejected) {
  auto a = issue(ca_, "a");
  Endpoint server;
  Endpoint client;
  connect(client, context(false, nullptr, roots(ca_)), server, context(true, &a, roots(ca_)));
  EXPECT_EQ(server.info.failure, AuthFailure::NoPeerCert) << server.info.detail;
}

TEST_F(TlsStreamTest, PlainTcpToTlsPortIsNotTls) {
  auto a = issue(ca_, "a");
  uint64_t before = authFailureCount(AuthFailure::NotTls);
  ReactorPtr r = newReactor(realTimeSource(), 0);
  auto [c, s] = tcpPair();
  Endpoint server;
  server.start(*r, s, context(true, &a, roots(ca_)));
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(ugate::test::writeAll(c, req.data(), req.size()));
  EXPECT_TRUE(runUntil(*r, [&] { return server.finished(); }));
  EXPECT_EQ(server.info.failure, AuthFailure::NotTls) << server.info.detail;
  EXPECT_NE(server.info.detail.find("\"GET / HTTP/1.1"), std::string::npos) << server.info.detail;
  EXPECT_EQ(authFailureCount(AuthFailure::NotTls), before + 1);
  server.tls.reset();
  ::close(c);
}

TEST_F(TlsStreamTest, HandshakeTimeout) {
  auto a = issue(ca_, "a");
  ReactorPtr r = newReactor(realTimeSource(), 0);
  auto [c, s] = tcpPair();
  Endpoint server;
  TlsStreamOptions o;
  o.reactor = r.get();
  o.handshakeTimeout = 50ms;
  server.start(*r, s, context(true, &a, roots(ca_)), o);
  EXPECT_TRUE(runUntil(*r, [&] { return server.finished(); }));
  EXPECT_EQ(server.info.failure, AuthFailure::Timeout);
  server.tls.reset();
  ::close(c);
}

TEST_F(TlsStreamTest, PeerClosingDuringHandshakeIsClosed) {
  auto a = issue(ca_, "a");
  ReactorPtr r = newReactor(realTimeSource(), 0);
  auto [c, s] = tcpPair();
  Endpoint server;
  server.start(*r, s, context(true, &a, roots(ca_)));
  ::close(c);
  EXPECT_TRUE(runUntil(*r, [&] { return server.finished(); }));
  EXPECT_EQ(server.info.failure, AuthFailure::Closed) << server.info.detail;
}

TEST_F(TlsStreamTest, ContextValidation) {
  auto a = issue(ca_, "a");
  auto b = issue(ca_, "b");
  TlsContextConfig server;
  server.server = true;
  EXPECT_FALSE(TlsContext::create(server));  // no certificate
  TlsContextConfig client;
  EXPECT_FALSE(TlsContext::create(client));  // no verifier
  TlsContextConfig mismatch;
  mismatch.server = true;
  mismatch.certChainPem = a.certChainPem;
  mismatch.keyPem = b.key.toPem();
  auto r = TlsContext::create(mismatch);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("does not match"), std::string::npos) << r.error().detail;
}

}  // namespace
}  // namespace ugate::auth

// End to end through the glue: an ngtcp2 server and an ngtcp2 client, both using quic_crypto.h
// with BoringSSL, exchange datagrams through in-memory queues (no sockets) in simulated time
// (crypto_test_harness.h). Mutual TLS with pinned self-signed P-256 certificates, ALPN, streams
// both ways, a key update, Retry with a verified token, compatible version negotiation to v2, a
// tampered packet, a rejected client certificate, and ChaCha20-Poly1305 (a child process with AES
// hardware hidden).
#include <sys/wait.h>
#include <unistd.h>

#include "crypto_test_harness.h"

namespace ugate::quic::test {
namespace {

std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + (i * 7) % 61);
  return s;
}

uint16_t negotiatedCipher(const Peer& p) {
  return static_cast<uint16_t>(SSL_CIPHER_get_id(SSL_get_current_cipher(p.ssl.get())) & 0xffff);
}

/** exchange: both sides open a stream and send; each must receive every byte the other sent. */
void exchange(Harness& h, size_t bytes) {
  h.openStream(h.client(), pattern(bytes, 'a'));
  h.openStream(h.server(), pattern(bytes, 'A'));
  ASSERT_TRUE(h.runUntil([&] {
    return h.server().received() == bytes && h.client().received() == bytes;
  })) << "server got "
      << h.server().received() << ", client got " << h.client().received() << ", errors "
      << h.client().error << "/" << h.server().error;
  EXPECT_EQ(h.server().in[h.client().streamId], pattern(bytes, 'a'));
  EXPECT_EQ(h.client().in[h.server().streamId], pattern(bytes, 'A'));
}

/** handshakeAndKeyUpdate: the common body — handshake, mTLS, ALPN, streams, key update. */
void handshakeAndKeyUpdate(Harness& h) {
  ASSERT_TRUE(h.runUntil([&] { return h.handshaken(); }))
      << "client err " << h.client().error << " server err " << h.server().error;
  EXPECT_EQ(h.client().error, 0);
  EXPECT_EQ(h.server().error, 0);
  // Mutual TLS: each side checked the other's certificate against its pin.
  EXPECT_TRUE(h.server().peerVerified);
  EXPECT_TRUE(h.client().peerVerified);
  const uint8_t* alpn = nullptr;
  unsigned alpnLen = 0;
  SSL_get0_alpn_selected(h.server().ssl.get(), &alpn, &alpnLen);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(alpn), alpnLen), kAlpn);
  SSL_get0_alpn_selected(h.client().ssl.get(), &alpn, &alpnLen);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(alpn), alpnLen), kAlpn);

  exchange(h, 200 * 1024);

  // Key update, initiated by the client once allowed (needs the handshake confirmed).
  int clientBefore = h.client().updateKeyCalls;
  int serverBefore = h.server().updateKeyCalls;
  uint64_t updatesBefore = cryptoCounters().keyUpdates.load();
  ASSERT_TRUE(
      h.runUntil([&] { return ngtcp2_conn_initiate_key_update(h.client().conn, h.now()) == 0; }));
  // More data both ways, under the new keys; the peers derive the next generation as they go.
  size_t cBefore = h.client().received();
  size_t sBefore = h.server().received();
  h.sendMore(h.client(), pattern(100 * 1024, 'k'));
  h.sendMore(h.server(), pattern(100 * 1024, 'K'));
  ASSERT_TRUE(h.runUntil([&] {
    return h.server().received() == sBefore + 100 * 1024 &&
           h.client().received() == cBefore + 100 * 1024;
  }));
  EXPECT_EQ(h.server().in[h.client().streamId],
            pattern(200 * 1024, 'a') + pattern(100 * 1024, 'k'));
  EXPECT_EQ(h.client().in[h.server().streamId],
            pattern(200 * 1024, 'A') + pattern(100 * 1024, 'K'));
  // ngtcp2 derives the generation after the one now in use once the update is confirmed and the
  // old keys are dropped (3 PTO later): update_key runs again on both sides.
  EXPECT_TRUE(h.runUntil([&] {
    return h.client().updateKeyCalls > clientBefore && h.server().updateKeyCalls > serverBefore;
  })) << "update_key calls: client "
      << h.client().updateKeyCalls << " server " << h.server().updateKeyCalls;
  EXPECT_GE(cryptoCounters().keyUpdates.load(), updatesBefore + 2);
  // And the connection keeps working under the rotated keys.
  h.sendMore(h.client(), "after");
  ASSERT_TRUE(h.runUntil([&] { return h.server().received() == sBefore + 100 * 1024 + 5; }));
  EXPECT_EQ(h.client().error, 0);
  EXPECT_EQ(h.server().error, 0);
}

TEST(QuicCryptoHandshake, MutualTlsStreamsAndKeyUpdateWithAes128Gcm) {
  Harness h(Options{});
  handshakeAndKeyUpdate(h);
  EXPECT_EQ(ngtcp2_conn_get_negotiated_version(h.client().conn), NGTCP2_PROTO_VER_V1);
  // Where the CPU has AES hardware (this test's premise), BoringSSL picks AES-128-GCM first.
  if (getenv("OPENSSL_ia32cap") == nullptr) {
    EXPECT_EQ(negotiatedCipher(h.client()), 0x1301);
    EXPECT_EQ(negotiatedCipher(h.server()), 0x1301);
  }
}

TEST(QuicCryptoHandshake, RetryThenTokenVerifiedThenHandshake) {
  Harness h(Options{.retry = true});
  handshakeAndKeyUpdate(h);
  EXPECT_EQ(h.retriesSent(), 1);
  EXPECT_TRUE(h.tokenVerified());
  EXPECT_TRUE(ngtcp2_conn_after_retry(h.client().conn));
}

TEST(QuicCryptoHandshake, CompatibleVersionNegotiationToV2) {
  uint64_t vnegBefore = cryptoCounters().versionNegotiations.load();
  Harness h(Options{.offerV2 = true});
  handshakeAndKeyUpdate(h);
  EXPECT_EQ(ngtcp2_conn_get_negotiated_version(h.client().conn), NGTCP2_PROTO_VER_V2);
  EXPECT_EQ(ngtcp2_conn_get_negotiated_version(h.server().conn), NGTCP2_PROTO_VER_V2);
  EXPECT_EQ(ngtcp2_conn_get_client_chosen_version(h.client().conn), NGTCP2_PROTO_VER_V1);
  // Both sides installed v2 Initial keys through the glue's version_negotiation callback.
  EXPECT_GE(cryptoCounters().versionNegotiations.load(), vnegBefore + 2);
}

TEST(QuicCryptoHandshake, TamperedPacketIsADecryptFailureAndTheConnectionLives) {
  Harness h(Options{});
  ASSERT_TRUE(h.runUntil([&] { return h.handshaken(); }));
  uint64_t failuresBefore = cryptoCounters().decryptFailures.load();
  h.tamperNext = true;
  h.openStream(h.client(), pattern(7000, 'x'));
  h.openStream(h.server(), pattern(10, 'y'));
  ASSERT_TRUE(h.runUntil([&] {
    return h.server().received() == 7000 && h.client().received() == 10;
  })) << "lost data is retransmitted after the tampered packet was dropped";
  EXPECT_EQ(h.tampered, 1);
  EXPECT_EQ(cryptoCounters().decryptFailures.load(), failuresBefore + 1);
  EXPECT_EQ(h.server().error, 0) << "a bad packet is dropped, not fatal";
  EXPECT_EQ(h.server().in[h.client().streamId], pattern(7000, 'x'));
}

TEST(QuicCryptoHandshake, UntrustedClientCertificateFailsTheHandshake) {
  uint64_t tlsBefore = cryptoCounters().tlsFailures.load();
  Harness h(Options{.trustClientCert = false});
  h.runUntil([&] { return h.server().error != 0 && h.client().error != 0; });
  EXPECT_FALSE(h.server().handshakeDone);
  EXPECT_FALSE(h.server().peerVerified);
  EXPECT_EQ(h.server().error, NGTCP2_ERR_CRYPTO);
  EXPECT_GT(cryptoCounters().tlsFailures.load(), tlsBefore);
  // The client learns why: CRYPTO_ERROR 0x100 + bad_certificate (42).
  const ngtcp2_ccerr* e = ngtcp2_conn_get_ccerr(h.client().conn);
  EXPECT_EQ(e->type, NGTCP2_CCERR_TYPE_TRANSPORT);
  EXPECT_EQ(e->error_code, NGTCP2_CRYPTO_ERROR | SSL_AD_BAD_CERTIFICATE);
}

// ChaCha20-Poly1305: BoringSSL (API 17) has no switch for TLS 1.3 cipher suites; it prefers
// ChaCha20 when the CPU lacks AES hardware. OPENSSL_ia32cap hides AES-NI, but only before the
// library reads the CPU flags, so the check runs in a child process of this binary.
TEST(QuicCryptoHandshake, DISABLED_ChaCha20Child) {
  if (getenv("OPENSSL_ia32cap") == nullptr)
    GTEST_SKIP() << "run by ChaCha20Poly1305WhenAesHardwareIsHidden";
  Harness h(Options{});
  handshakeAndKeyUpdate(h);
  EXPECT_EQ(negotiatedCipher(h.client()), 0x1303);
  EXPECT_EQ(negotiatedCipher(h.server()), 0x1303);
}

TEST(QuicCryptoHandshake, ChaCha20Poly1305WhenAesHardwareIsHidden) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    // AES-NI is bit 57 of the first 64-bit word (CPUID.1:ECX bit 25).
    setenv("OPENSSL_ia32cap", "~0x200000000000000", 1);
    execl("/proc/self/exe", "unit_quic_test",
          "--gtest_filter=QuicCryptoHandshake.DISABLED_ChaCha20Child",
          "--gtest_also_run_disabled_tests", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string output;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof(buf))) > 0) output.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("[  PASSED  ] 1 test"), std::string::npos) << output;
  EXPECT_EQ(output.find("SKIPPED"), std::string::npos) << output;
}

}  // namespace
}  // namespace ugate::quic::test

#pragma once
// The in-memory QUIC harness of the crypto glue tests: an ngtcp2 server and an ngtcp2 client, both
// on quic_crypto.h with BoringSSL, with test identities (self-signed P-256, pinned), ALPN, streams,
// Retry and version options. step() moves every queued datagram in simulated time; an external
// peer (a real client over UDP) can drive the server side instead.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "auth/crypto.h"
#include "quic/quic_crypto.h"

namespace ugate::quic::test {

inline constexpr ngtcp2_tstamp kMs = NGTCP2_MILLISECONDS;
inline constexpr std::string_view kAlpn = "ugate";
inline constexpr uint8_t kStaticSecret[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                              12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                              23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/** Identity: a fresh P-256 key and self-signed certificate, as PEM and as leaf DER. */
struct Identity {
  std::string certPem;
  std::string keyPem;
  std::string certDer;
};

inline Identity makeIdentity(const std::string& name) {
  Identity id;
  auto key = auth::PrivateKey::generate();
  EXPECT_TRUE(key);
  auth::CertSpec spec;
  spec.name = name;
  auto pem = auth::createSelfSignedCert(*key, spec);
  EXPECT_TRUE(pem);
  id.certPem = *pem;
  id.keyPem = key->toPem();
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(id.certPem.data(), static_cast<int>(id.certPem.size())));
  bssl::UniquePtr<X509> x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  EXPECT_NE(x, nullptr);
  uint8_t* der = nullptr;
  int n = i2d_X509(x.get(), &der);
  id.certDer.assign(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return id;
}

inline void useIdentity(SSL_CTX* ctx, const Identity& id) {
  bssl::UniquePtr<BIO> cb(BIO_new_mem_buf(id.certPem.data(), static_cast<int>(id.certPem.size())));
  bssl::UniquePtr<X509> x(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  bssl::UniquePtr<BIO> kb(BIO_new_mem_buf(id.keyPem.data(), static_cast<int>(id.keyPem.size())));
  bssl::UniquePtr<EVP_PKEY> k(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  ASSERT_EQ(SSL_CTX_use_certificate(ctx, x.get()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(ctx, k.get()), 1);
}

using Datagram = std::vector<uint8_t>;

/** Peer: one endpoint — its ngtcp2 connection, SSL and what it sent and received on streams. */
struct Peer {
  bool server{false};
  ConnRef ref{};
  ngtcp2_conn* conn{nullptr};
  bssl::UniquePtr<SSL> ssl;
  sockaddr_in local{};
  sockaddr_in remote{};
  bool handshakeDone{false};
  bool handshakeConfirmed{false};
  std::string pinnedPeerDer;  // the only certificate this peer accepts from the other side
  bool peerVerified{false};
  int64_t streamId{-1};
  std::string out;
  size_t outOff{0};
  std::map<int64_t, std::string> in;
  int updateKeyCalls{0};
  int error{0};  // the first fatal ngtcp2 error on this side
  bool closeSent{false};

  ~Peer() {
    if (conn != nullptr) ngtcp2_conn_del(conn);
  }
  ngtcp2_path path() {
    ngtcp2_path p{};
    p.local.addr = reinterpret_cast<sockaddr*>(&local);
    p.local.addrlen = sizeof(local);
    p.remote.addr = reinterpret_cast<sockaddr*>(&remote);
    p.remote.addrlen = sizeof(remote);
    return p;
  }
  size_t received() const {
    size_t n = 0;
    for (const auto& [id, s] : in) n += s.size();
    return n;
  }
};

inline ngtcp2_conn* getConn(ConnRef* ref) { return static_cast<Peer*>(ref->user)->conn; }

// ------------------------------------------------------------------ the application callbacks

inline int onHandshakeCompleted(ngtcp2_conn*, void* user) {
  static_cast<Peer*>(user)->handshakeDone = true;
  return 0;
}

inline int onHandshakeConfirmed(ngtcp2_conn*, void* user) {
  static_cast<Peer*>(user)->handshakeConfirmed = true;
  return 0;
}

inline int onRecvStreamData(ngtcp2_conn* conn, uint32_t, int64_t streamId, uint64_t,
                            const uint8_t* data, size_t datalen, void* user, void*) {
  static_cast<Peer*>(user)->in[streamId].append(reinterpret_cast<const char*>(data), datalen);
  ngtcp2_conn_extend_max_stream_offset(conn, streamId, datalen);
  ngtcp2_conn_extend_max_offset(conn, datalen);
  return 0;
}

inline int onNewConnectionId(ngtcp2_conn*, ngtcp2_cid* cid, uint8_t* token, size_t cidlen, void*) {
  if (RAND_bytes(cid->data, cidlen) != 1) return NGTCP2_ERR_CALLBACK_FAILURE;
  cid->datalen = cidlen;
  auto ok = generateStatelessResetToken(std::span<uint8_t, kStatelessResetTokenLen>(token, 16),
                                        kStaticSecret, *cid);
  return ok ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

inline int onUpdateKey(ngtcp2_conn* conn, uint8_t* rxSecret, uint8_t* txSecret,
                       ngtcp2_crypto_aead_ctx* rxAeadCtx, uint8_t* rxIv,
                       ngtcp2_crypto_aead_ctx* txAeadCtx, uint8_t* txIv, const uint8_t* curRx,
                       const uint8_t* curTx, size_t secretlen, void* user) {
  ++static_cast<Peer*>(user)->updateKeyCalls;
  return updateKeyCb(conn, rxSecret, txSecret, rxAeadCtx, rxIv, txAeadCtx, txIv, curRx, curTx,
                     secretlen, user);
}

inline ngtcp2_callbacks callbacksFor(bool server) {
  ngtcp2_callbacks cb{};
  if (server) {
    setServerCryptoCallbacks(cb);
  } else {
    setClientCryptoCallbacks(cb);
  }
  cb.handshake_completed = onHandshakeCompleted;
  cb.handshake_confirmed = onHandshakeConfirmed;
  cb.recv_stream_data = onRecvStreamData;
  cb.get_new_connection_id = onNewConnectionId;
  cb.update_key = onUpdateKey;  // wraps the glue's, to count
  return cb;
}

// ------------------------------------------------------------------ TLS contexts

inline enum ssl_verify_result_t verifyPinned(SSL* ssl, uint8_t* alert) {
  auto* peer = static_cast<Peer*>(static_cast<ConnRef*>(SSL_get_app_data(ssl))->user);
  const STACK_OF(CRYPTO_BUFFER)* chain = SSL_get0_peer_certificates(ssl);
  if (chain == nullptr || sk_CRYPTO_BUFFER_num(chain) == 0) {
    *alert = SSL_AD_CERTIFICATE_REQUIRED;
    return ssl_verify_invalid;
  }
  const CRYPTO_BUFFER* leaf = sk_CRYPTO_BUFFER_value(chain, 0);
  std::string der(reinterpret_cast<const char*>(CRYPTO_BUFFER_data(leaf)), CRYPTO_BUFFER_len(leaf));
  if (der != peer->pinnedPeerDer) {
    *alert = SSL_AD_BAD_CERTIFICATE;
    return ssl_verify_invalid;
  }
  peer->peerVerified = true;
  return ssl_verify_ok;
}

/** selectAlpn: the server picks the protocol named by arg (a std::string) if the client offers it.
 */
inline int selectAlpn(SSL*, const uint8_t** out, uint8_t* outlen, const uint8_t* in, unsigned inlen,
                      void* arg) {
  const std::string& want = *static_cast<const std::string*>(arg);
  for (unsigned i = 0; i < inlen;) {
    uint8_t len = in[i];
    if (i + 1 + len <= inlen &&
        std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == want) {
      *out = in + i + 1;
      *outlen = len;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// ------------------------------------------------------------------ the harness

struct Options {
  bool retry{false};
  bool offerV2{false};           // client offers v2 in version_information; server prefers v2
  bool trustClientCert{true};    // false: the server pins another certificate
  bool requireClientCert{true};  // false: the server asks for no certificate
  bool externalClient{false};    // the client is a real peer: receiveAtServer / flushServer
  bool externalServer{false};    // the server is a real peer: startClientTo / receiveAtClient
  std::string alpn{kAlpn};       // what the server selects
};

class Harness {
 public:
  explicit Harness(Options o) : opt_(o) {
    serverId_ = makeIdentity("server.test");
    clientId_ = makeIdentity("client.test");
    sctx_.reset(SSL_CTX_new(TLS_method()));
    cctx_.reset(SSL_CTX_new(TLS_method()));
    EXPECT_TRUE(configureServerContext(sctx_.get()));
    EXPECT_TRUE(configureClientContext(cctx_.get()));
    useIdentity(sctx_.get(), serverId_);
    useIdentity(cctx_.get(), clientId_);
    if (opt_.requireClientCert) {
      SSL_CTX_set_custom_verify(sctx_.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                                verifyPinned);
    }
    SSL_CTX_set_custom_verify(cctx_.get(), SSL_VERIFY_PEER, verifyPinned);
    SSL_CTX_set_alpn_select_cb(sctx_.get(), selectAlpn, &opt_.alpn);

    server_.server = true;
    inet_pton(AF_INET, "127.0.0.1", &server_.local.sin_addr);
    server_.local.sin_family = AF_INET;
    server_.local.sin_port = htons(4433);
    inet_pton(AF_INET, "127.0.0.1", &client_.local.sin_addr);
    client_.local.sin_family = AF_INET;
    client_.local.sin_port = htons(50123);
    server_.remote = client_.local;
    client_.remote = server_.local;
    server_.pinnedPeerDer = opt_.trustClientCert ? clientId_.certDer : serverId_.certDer;
    client_.pinnedPeerDer = serverId_.certDer;
    server_.ref = ConnRef{getConn, &server_};
    client_.ref = ConnRef{getConn, &client_};
    if (!opt_.externalClient && !opt_.externalServer) startClient();
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  // A real client (over a UDP socket the test owns) drives the server side with these.

  /** setServerAddress: the server's local address (the bound socket). */
  void setServerAddress(const sockaddr_in& a) { server_.local = a; }
  /** setNow: the clock, in ngtcp2 nanoseconds (a real-peer test passes a monotonic clock). */
  void setNow(ngtcp2_tstamp t) { now_ = t; }
  /** receiveAtServer: a datagram from `from` (accepting the connection on the first Initial). */
  void receiveAtServer(const Datagram& d, const sockaddr_in& from) {
    server_.remote = from;
    deliverToServer(d);
  }
  /** serverIdentity: the certificate and key the (external) server should present. */
  const Identity& serverIdentity() const { return serverId_; }
  /** startClientTo: start the client on a real path (our socket, the external server). */
  void startClientTo(const sockaddr_in& local, const sockaddr_in& remote) {
    client_.local = local;
    client_.remote = remote;
    startClient();
  }
  /** receiveAtClient: a datagram from the external server. */
  void receiveAtClient(const Datagram& d) { read(client_, d); }
  /** flushClient: run the client's timer if due, then move what it writes to out. */
  void flushClient(std::deque<Datagram>& out) {
    expire(client_);
    writeAll(client_, c2s_);
    while (!c2s_.empty()) {
      out.push_back(std::move(c2s_.front()));
      c2s_.pop_front();
    }
  }
  /** flushServer: run the server's timer if due, then move what it writes (and any Retry) out. */
  void flushServer(std::deque<Datagram>& out) {
    expire(server_);
    writeAll(server_, s2c_);
    while (!s2c_.empty()) {
      out.push_back(std::move(s2c_.front()));
      s2c_.pop_front();
    }
  }

  /** tamperNext: flip one bit of the next client 1-RTT datagram with data; tampered counts them. */
  bool tamperNext{false};
  int tampered{0};

  Peer& client() { return client_; }
  Peer& server() { return server_; }
  ngtcp2_tstamp now() const { return now_; }
  int retriesSent() const { return retriesSent_; }
  bool tokenVerified() const { return tokenVerified_; }

  /** step: both sides write, every queued datagram is delivered, time moves 1 ms, timers run. */
  void step() {
    writeAll(client_, c2s_);
    if (server_.conn != nullptr) writeAll(server_, s2c_);
    while (!c2s_.empty()) {
      Datagram d = std::move(c2s_.front());
      c2s_.pop_front();
      if (tamperNext && (d[0] & 0x80) == 0 && d.size() > 100) {
        d.back() ^= 0x01;  // a bit of the AEAD tag of a 1-RTT packet carrying data
        tamperNext = false;
        ++tampered;
      }
      deliverToServer(d);
    }
    while (!s2c_.empty()) {
      Datagram d = std::move(s2c_.front());
      s2c_.pop_front();
      read(client_, d);
    }
    now_ += kMs;
    expire(client_);
    expire(server_);
  }

  /** runUntil steps until pred holds, at most maxSteps times (simulated time; no wall clock). */
  template <class Pred>
  bool runUntil(Pred pred, int maxSteps = 3000) {
    for (int i = 0; i < maxSteps; ++i) {
      if (pred()) return true;
      step();
    }
    return pred();
  }

  bool handshaken() const { return client_.handshakeDone && server_.handshakeDone; }

  /** openStream: a bidirectional stream from p carrying bytes (sent as flow control allows). */
  void openStream(Peer& p, std::string bytes) {
    ASSERT_EQ(ngtcp2_conn_open_bidi_stream(p.conn, &p.streamId, nullptr), 0);
    p.out = std::move(bytes);
    p.outOff = 0;
  }
  void sendMore(Peer& p, const std::string& bytes) { p.out += bytes; }

 private:
  /** expire: the peer's timer (loss detection, PTO, idle, key discard) when it is due. */
  void expire(Peer& p) {
    if (p.conn != nullptr && p.error == 0 && ngtcp2_conn_get_expiry(p.conn) <= now_) {
      int rv = ngtcp2_conn_handle_expiry(p.conn, now_);
      if (rv != 0) p.error = rv;
    }
  }

  void startClient() {
    ngtcp2_cid dcid = randomCid(18);
    ngtcp2_cid scid = randomCid(17);
    ngtcp2_settings settings = baseSettings();
    if (opt_.offerV2) {
      settings.available_versions = kVersions;
      settings.available_versionslen = 2;
    }
    ngtcp2_transport_params params;
    defaultParams(params);
    ngtcp2_callbacks cb = callbacksFor(false);
    ngtcp2_path path = client_.path();
    ASSERT_EQ(ngtcp2_conn_client_new(&client_.conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb,
                                     &settings, &params, nullptr, &client_),
              0);
    client_.ssl.reset(SSL_new(cctx_.get()));
    SslOptions so;
    so.serverName = "server.test";
    ASSERT_TRUE(configureClientSsl(client_.ssl.get(), &client_.ref, so));
    std::string alpnWire = static_cast<char>(opt_.alpn.size()) + opt_.alpn;
    SSL_set_alpn_protos(client_.ssl.get(), reinterpret_cast<const uint8_t*>(alpnWire.data()),
                        alpnWire.size());
    ngtcp2_conn_set_tls_native_handle(client_.conn, client_.ssl.get());
  }

  ngtcp2_settings baseSettings() const {
    ngtcp2_settings s;
    ngtcp2_settings_default(&s);
    s.initial_ts = now_;
    return s;
  }

  static ngtcp2_cid randomCid(size_t len) {
    ngtcp2_cid c{};
    c.datalen = len;
    RAND_bytes(c.data, len);
    return c;
  }

  static void defaultParams(ngtcp2_transport_params& params) {
    ngtcp2_transport_params_default(&params);
    params.initial_max_streams_bidi = 8;
    params.initial_max_stream_data_bidi_local = 256 * 1024;
    params.initial_max_stream_data_bidi_remote = 256 * 1024;
    params.initial_max_data = 1024 * 1024;
    params.initial_max_streams_uni = 3;  // an HTTP/3 peer needs its control and QPACK streams
    params.initial_max_stream_data_uni = 64 * 1024;
    params.max_idle_timeout = 30 * NGTCP2_SECONDS;
  }

  /** deliverToServer: the listener's job — Retry, token check and conn creation — then read. */
  void deliverToServer(const Datagram& d) {
    if (server_.conn != nullptr) {
      read(server_, d);
      return;
    }
    ngtcp2_pkt_hd hd;
    if (ngtcp2_accept(&hd, d.data(), d.size()) != 0) return;  // not an acceptable Initial
    ngtcp2_settings settings = baseSettings();
    if (opt_.offerV2) {
      settings.preferred_versions = kPreferV2;
      settings.preferred_versionslen = 2;
    }
    ngtcp2_transport_params params;
    defaultParams(params);
    sockaddr* remote = reinterpret_cast<sockaddr*>(&server_.remote);
    if (opt_.retry) {
      if (hd.tokenlen == 0) {
        sendRetry(hd, remote);
        return;
      }
      ngtcp2_cid odcid;
      auto ok = verifyRetryToken(&odcid, std::span<const uint8_t>(hd.token, hd.tokenlen),
                                 kStaticSecret, hd.version, remote, sizeof(server_.remote), hd.dcid,
                                 10 * NGTCP2_SECONDS, now_);
      ASSERT_TRUE(ok) << ok.error().detail;
      tokenVerified_ = true;
      params.original_dcid = odcid;
      params.retry_scid = hd.dcid;
      params.retry_scid_present = 1;
      settings.token = hd.token;
      settings.tokenlen = hd.tokenlen;
      settings.token_type = NGTCP2_TOKEN_TYPE_RETRY;
    } else {
      params.original_dcid = hd.dcid;
    }
    params.original_dcid_present = 1;
    ngtcp2_cid scid = randomCid(18);
    params.stateless_reset_token_present = 1;
    ASSERT_TRUE(generateStatelessResetToken(params.stateless_reset_token, kStaticSecret, scid));
    ngtcp2_callbacks cb = callbacksFor(true);
    ngtcp2_path path = server_.path();
    ASSERT_EQ(ngtcp2_conn_server_new(&server_.conn, &hd.scid, &scid, &path, hd.version, &cb,
                                     &settings, &params, nullptr, &server_),
              0);
    server_.ssl.reset(SSL_new(sctx_.get()));
    ASSERT_TRUE(configureServerSsl(server_.ssl.get(), &server_.ref));
    ngtcp2_conn_set_tls_native_handle(server_.conn, server_.ssl.get());
    read(server_, d);
  }

  void sendRetry(const ngtcp2_pkt_hd& hd, sockaddr* remote) {
    ngtcp2_cid scid = randomCid(18);
    std::array<uint8_t, kMaxRetryTokenLen> token{};
    auto tl = generateRetryToken(token, kStaticSecret, hd.version, remote, sizeof(server_.remote),
                                 scid, hd.dcid, now_);
    ASSERT_TRUE(tl);
    Datagram buf(1500);
    auto n = writeRetry(buf, hd.version, hd.scid, scid, hd.dcid,
                        std::span<const uint8_t>(token.data(), *tl));
    ASSERT_TRUE(n) << n.error().detail;
    buf.resize(*n);
    s2c_.push_back(std::move(buf));
    ++retriesSent_;
  }

  void read(Peer& p, const Datagram& d) {
    if (p.conn == nullptr || p.error != 0) return;
    ngtcp2_path path = p.path();
    ngtcp2_pkt_info pi{};
    int rv = ngtcp2_conn_read_pkt(p.conn, &path, &pi, d.data(), d.size(), now_);
    if (rv != 0) p.error = rv;
  }

  void writeAll(Peer& p, std::deque<Datagram>& out) {
    if (p.conn == nullptr) return;
    if (p.error != 0) {
      writeClose(p, out);
      return;
    }
    bool streamBlocked = false;
    // One buffer for the whole loop: after NGTCP2_ERR_WRITE_MORE ngtcp2 keeps writing into it.
    Datagram buf(1500);
    for (int i = 0; i < 1000; ++i) {
      ngtcp2_path_storage ps;
      ngtcp2_path_storage_zero(&ps);
      ngtcp2_pkt_info pi{};
      ngtcp2_ssize accepted = -1;
      int64_t sid = -1;
      ngtcp2_vec v{};
      size_t vcnt = 0;
      uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_NONE;
      if (!streamBlocked && p.streamId >= 0 && p.outOff < p.out.size()) {
        sid = p.streamId;
        v.base = reinterpret_cast<uint8_t*>(p.out.data()) + p.outOff;
        v.len = p.out.size() - p.outOff;
        vcnt = 1;
        flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
      }
      ngtcp2_ssize n =
          ngtcp2_conn_writev_stream(p.conn, &ps.path, &pi, buf.data(), buf.size(), &accepted, flags,
                                    sid, vcnt ? &v : nullptr, vcnt, now_);
      if (accepted > 0) p.outOff += static_cast<size_t>(accepted);
      if (n == NGTCP2_ERR_WRITE_MORE) continue;
      if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR) {
        streamBlocked = true;
        continue;
      }
      if (n < 0) {
        p.error = static_cast<int>(n);
        writeClose(p, out);
        return;
      }
      if (n == 0) return;
      out.emplace_back(buf.begin(), buf.begin() + n);
    }
  }

  /** writeClose: one CONNECTION_CLOSE carrying the TLS alert or the library error. */
  void writeClose(Peer& p, std::deque<Datagram>& out) {
    if (p.closeSent || p.error == NGTCP2_ERR_DRAINING || p.error == NGTCP2_ERR_CLOSING) return;
    p.closeSent = true;
    ngtcp2_ccerr ccerr;
    ngtcp2_ccerr_default(&ccerr);
    if (p.error == NGTCP2_ERR_CRYPTO) {
      ngtcp2_ccerr_set_tls_alert(&ccerr, ngtcp2_conn_get_tls_alert(p.conn), nullptr, 0);
    } else {
      ngtcp2_ccerr_set_liberr(&ccerr, p.error, nullptr, 0);
    }
    Datagram buf(1500);
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi{};
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(p.conn, &ps.path, &pi, buf.data(),
                                                        buf.size(), &ccerr, now_);
    if (n > 0) {
      buf.resize(static_cast<size_t>(n));
      out.push_back(std::move(buf));
    }
  }

  static constexpr uint32_t kVersions[] = {NGTCP2_PROTO_VER_V1, NGTCP2_PROTO_VER_V2};
  static constexpr uint32_t kPreferV2[] = {NGTCP2_PROTO_VER_V2, NGTCP2_PROTO_VER_V1};

  Options opt_;
  Identity serverId_;
  Identity clientId_;
  bssl::UniquePtr<SSL_CTX> sctx_;
  bssl::UniquePtr<SSL_CTX> cctx_;
  Peer server_;
  Peer client_;
  std::deque<Datagram> c2s_;
  std::deque<Datagram> s2c_;
  ngtcp2_tstamp now_{NGTCP2_SECONDS};
  int retriesSent_{0};
  bool tokenVerified_{false};
};

}  // namespace ugate::quic::test

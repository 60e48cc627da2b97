// The BoringSSL backend of quic_crypto.h: RFC 9001 packet protection for ngtcp2 through BoringSSL's
// QUIC API (SSL_QUIC_METHOD). The rules it follows (key-install order, transport-parameter timing,
// context ownership, level mapping) are collected in the project's QUIC research notes §1-§2; the
// comments below name the rule where the order matters.
#include <openssl/aead.h>
#include <openssl/aes.h>
#include <openssl/chacha.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/hkdf.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <string>

#include "quic/quic_crypto.h"

namespace ugate::quic {
namespace {

// ------------------------------------------------------------------ constants (RFC 9001, RFC 9369)

// AEAD usage limits (RFC 9001 §6.6), as ngtcp2's crypto/shared.h spells them.
constexpr uint64_t kMaxEncryptionAesGcm = 1ULL << 23;
constexpr uint64_t kMaxDecryptionFailureAesGcm = 1ULL << 52;
constexpr uint64_t kMaxEncryptionChaCha = 1ULL << 62;
constexpr uint64_t kMaxDecryptionFailureChaCha = 1ULL << 36;

/** kTransportParamsMax: room for our encoded transport parameters. */
constexpr size_t kTransportParamsMax = 1024;

bool isV2(uint32_t version) { return version == NGTCP2_PROTO_VER_V2; }

// ------------------------------------------------------------------ suites, AEADs, HP ciphers

enum class HpKind : uint8_t { Aes128, Aes256, ChaCha20 };

/** HpCipher: what an ngtcp2_crypto_cipher's native_handle points to (static, never freed). */
struct HpCipher {
  HpKind kind;
};
const HpCipher kHpAes128{HpKind::Aes128};
const HpCipher kHpAes256{HpKind::Aes256};
const HpCipher kHpChaCha20{HpKind::ChaCha20};

/** HpCtx: an ngtcp2_crypto_cipher_ctx's native_handle (owned; freed by deleteCryptoCipherCtxCb). */
struct HpCtx {
  HpKind kind;
  AES_KEY aes;
  uint8_t chacha[32];
};

struct SuiteInfo {
  const EVP_AEAD* aead;
  const EVP_MD* md;
  const HpCipher* hp;
  uint64_t maxEncryption;
  uint64_t maxDecryptionFailure;
};

SuiteInfo suiteInfo(CipherSuite s) {
  switch (s) {
    case CipherSuite::Aes128GcmSha256:
      return {EVP_aead_aes_128_gcm(), EVP_sha256(), &kHpAes128, kMaxEncryptionAesGcm,
              kMaxDecryptionFailureAesGcm};
    case CipherSuite::Aes256GcmSha384:
      return {EVP_aead_aes_256_gcm(), EVP_sha384(), &kHpAes256, kMaxEncryptionAesGcm,
              kMaxDecryptionFailureAesGcm};
    case CipherSuite::ChaCha20Poly1305Sha256:
      return {EVP_aead_chacha20_poly1305(), EVP_sha256(), &kHpChaCha20, kMaxEncryptionChaCha,
              kMaxDecryptionFailureChaCha};
  }
  return {EVP_aead_aes_128_gcm(), EVP_sha256(), &kHpAes128, kMaxEncryptionAesGcm,
          kMaxDecryptionFailureAesGcm};
}

ngtcp2_crypto_ctx cryptoCtxFor(CipherSuite s) {
  SuiteInfo i = suiteInfo(s);
  ngtcp2_crypto_ctx c{};
  c.aead.native_handle = const_cast<EVP_AEAD*>(i.aead);
  c.aead.max_overhead = EVP_AEAD_max_overhead(i.aead);
  c.md.native_handle = const_cast<EVP_MD*>(i.md);
  c.hp.native_handle = const_cast<HpCipher*>(i.hp);
  c.max_encryption = i.maxEncryption;
  c.max_decryption_failure = i.maxDecryptionFailure;
  return c;
}

const EVP_AEAD* aeadOf(const ngtcp2_crypto_aead* a) {
  return static_cast<const EVP_AEAD*>(a->native_handle);
}
const HpCipher* hpOf(const ngtcp2_crypto_cipher* c) {
  return static_cast<const HpCipher*>(c->native_handle);
}

Error cryptoError(std::string what) { return Error{Errc::ProtocolError, "quic crypto: " + what}; }

// ------------------------------------------------------------------ HKDF-Expand-Label and labels

/** expandLabel: TLS 1.3 HKDF-Expand-Label(secret, label, "", out.size()) under md. */
bool expandLabel(uint8_t* out, size_t outlen, const EVP_MD* md, const uint8_t* secret,
                 size_t secretlen, std::string_view label) {
  static constexpr std::string_view kPrefix = "tls13 ";
  uint8_t info[2 + 1 + 255 + 1];
  if (outlen > 0xffff || kPrefix.size() + label.size() > 255) return false;
  size_t n = 0;
  info[n++] = static_cast<uint8_t>(outlen >> 8);
  info[n++] = static_cast<uint8_t>(outlen);
  info[n++] = static_cast<uint8_t>(kPrefix.size() + label.size());
  std::memcpy(info + n, kPrefix.data(), kPrefix.size());
  n += kPrefix.size();
  std::memcpy(info + n, label.data(), label.size());
  n += label.size();
  info[n++] = 0;  // empty context
  return HKDF_expand(out, outlen, md, secret, secretlen, info, n) == 1;
}

// ------------------------------------------------------------------ AEAD and HP contexts

/** newAeadCtx: an ngtcp2_crypto_aead_ctx holding an EVP_AEAD_CTX (same one seals and opens). */
bool newAeadCtx(ngtcp2_crypto_aead_ctx* out, const EVP_AEAD* aead, const uint8_t* key) {
  EVP_AEAD_CTX* c =
      EVP_AEAD_CTX_new(aead, key, EVP_AEAD_key_length(aead), EVP_AEAD_DEFAULT_TAG_LENGTH);
  out->native_handle = c;
  return c != nullptr;
}

void freeAeadCtx(ngtcp2_crypto_aead_ctx* c) {
  if (c->native_handle != nullptr) EVP_AEAD_CTX_free(static_cast<EVP_AEAD_CTX*>(c->native_handle));
  c->native_handle = nullptr;
}

bool newHpCtx(ngtcp2_crypto_cipher_ctx* out, const HpCipher* hp, const uint8_t* key) {
  auto* c = static_cast<HpCtx*>(OPENSSL_malloc(sizeof(HpCtx)));
  out->native_handle = c;
  if (c == nullptr) return false;
  c->kind = hp->kind;
  switch (hp->kind) {
    case HpKind::Aes128:
    case HpKind::Aes256:
      if (AES_set_encrypt_key(key, hp->kind == HpKind::Aes128 ? 128 : 256, &c->aes) != 0) {
        OPENSSL_free(c);
        out->native_handle = nullptr;
        return false;
      }
      break;
    case HpKind::ChaCha20:
      std::memcpy(c->chacha, key, sizeof(c->chacha));
      break;
  }
  return true;
}

void freeHpCtx(ngtcp2_crypto_cipher_ctx* c) {
  if (c->native_handle != nullptr) {
    OPENSSL_cleanse(c->native_handle, sizeof(HpCtx));
    OPENSSL_free(c->native_handle);
  }
  c->native_handle = nullptr;
}

void hpMaskWith(uint8_t* dest, const HpCtx* c, const uint8_t* sample) {
  static constexpr uint8_t kZeros[NGTCP2_HP_MASKLEN] = {};
  if (c->kind == HpKind::ChaCha20) {
    uint32_t counter = static_cast<uint32_t>(sample[0]) | static_cast<uint32_t>(sample[1]) << 8 |
                       static_cast<uint32_t>(sample[2]) << 16 |
                       static_cast<uint32_t>(sample[3]) << 24;
    CRYPTO_chacha_20(dest, kZeros, sizeof(kZeros), c->chacha, sample + 4, counter);
  } else {
    AES_ecb_encrypt(sample, dest, &c->aes, AES_ENCRYPT);
  }
}

/** DirectionKeys: the contexts of one direction, freed unless release() handed them to ngtcp2. */
struct DirectionKeys {
  ngtcp2_crypto_aead_ctx aead{};
  ngtcp2_crypto_cipher_ctx hp{};
  uint8_t iv[kIvLen]{};
  DirectionKeys() = default;
  DirectionKeys(const DirectionKeys&) = delete;
  DirectionKeys& operator=(const DirectionKeys&) = delete;
  ~DirectionKeys() {
    freeAeadCtx(&aead);
    freeHpCtx(&hp);
  }
  void release() {
    aead.native_handle = nullptr;
    hp.native_handle = nullptr;
  }
};

/** suiteOf: the suite of a crypto context this backend built (by its AEAD). */
CipherSuite suiteOf(const ngtcp2_crypto_ctx& ctx) {
  const EVP_AEAD* aead = aeadOf(&ctx.aead);
  if (aead == EVP_aead_aes_256_gcm()) return CipherSuite::Aes256GcmSha384;
  if (aead == EVP_aead_chacha20_poly1305()) return CipherSuite::ChaCha20Poly1305Sha256;
  return CipherSuite::Aes128GcmSha256;
}

void cleanse(PacketKeys& k) {
  for (Bytes* b : {&k.key, &k.iv, &k.hp}) OPENSSL_cleanse(b->data(), b->size());
}

/**
 * makeKeys derives key, IV and HP key from secret (derivePacketKeys: the same code the RFC vector
 * tests check) and builds the AEAD and HP contexts.
 */
bool makeKeys(DirectionKeys& k, const ngtcp2_crypto_ctx& ctx, uint32_t version,
              const uint8_t* secret, size_t secretlen) {
  auto keys = derivePacketKeys(version, suiteOf(ctx), std::span<const uint8_t>(secret, secretlen));
  if (!keys) return false;
  std::memcpy(k.iv, keys->iv.data(), kIvLen);
  bool ok = newAeadCtx(&k.aead, aeadOf(&ctx.aead), keys->key.data()) &&
            newHpCtx(&k.hp, hpOf(&ctx.hp), keys->hp.data());
  cleanse(*keys);
  return ok;
}

// ------------------------------------------------------------------ the connection behind an SSL

ngtcp2_conn* connOf(SSL* ssl) {
  auto* ref = static_cast<ConnRef*>(SSL_get_app_data(ssl));
  return ref != nullptr && ref->getConn != nullptr ? ref->getConn(ref) : nullptr;
}

SSL* sslOf(ngtcp2_conn* conn) { return static_cast<SSL*>(ngtcp2_conn_get_tls_native_handle(conn)); }

// Level mapping by switch, never a cast: the enums differ (notes §2).
ngtcp2_encryption_level fromSslLevel(ssl_encryption_level_t l) {
  switch (l) {
    case ssl_encryption_initial:
      return NGTCP2_ENCRYPTION_LEVEL_INITIAL;
    case ssl_encryption_early_data:
      return NGTCP2_ENCRYPTION_LEVEL_0RTT;
    case ssl_encryption_handshake:
      return NGTCP2_ENCRYPTION_LEVEL_HANDSHAKE;
    case ssl_encryption_application:
      return NGTCP2_ENCRYPTION_LEVEL_1RTT;
  }
  return NGTCP2_ENCRYPTION_LEVEL_INITIAL;
}

ssl_encryption_level_t toSslLevel(ngtcp2_encryption_level l) {
  switch (l) {
    case NGTCP2_ENCRYPTION_LEVEL_INITIAL:
      return ssl_encryption_initial;
    case NGTCP2_ENCRYPTION_LEVEL_0RTT:
      return ssl_encryption_early_data;
    case NGTCP2_ENCRYPTION_LEVEL_HANDSHAKE:
      return ssl_encryption_handshake;
    case NGTCP2_ENCRYPTION_LEVEL_1RTT:
      return ssl_encryption_application;
  }
  return ssl_encryption_initial;
}

int setLocalTransportParams(ngtcp2_conn* conn, SSL* ssl) {
  uint8_t buf[kTransportParamsMax];
  ngtcp2_ssize n = ngtcp2_conn_encode_local_transport_params(conn, buf, sizeof(buf));
  if (n < 0) return static_cast<int>(n);
  if (SSL_set_quic_transport_params(ssl, buf, static_cast<size_t>(n)) != 1) {
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

int setRemoteTransportParams(ngtcp2_conn* conn, SSL* ssl) {
  const uint8_t* tp = nullptr;
  size_t tplen = 0;
  SSL_get_peer_quic_transport_params(ssl, &tp, &tplen);
  int rv = ngtcp2_conn_decode_and_set_remote_transport_params(conn, tp, tplen);
  if (rv != 0) ngtcp2_conn_set_tls_error(conn, rv);
  return rv;
}

/**
 * secretCryptoCtx: the ngtcp2 crypto context for a handshake/1-RTT or 0-RTT secret; set on the
 * connection the first time (from the cipher BoringSSL reports for this very secret).
 */
const ngtcp2_crypto_ctx* secretCryptoCtx(ngtcp2_conn* conn, ngtcp2_encryption_level level,
                                         const SSL_CIPHER* cipher) {
  bool early = level == NGTCP2_ENCRYPTION_LEVEL_0RTT;
  const ngtcp2_crypto_ctx* cur =
      early ? ngtcp2_conn_get_0rtt_crypto_ctx(conn) : ngtcp2_conn_get_crypto_ctx(conn);
  if (cur->aead.native_handle != nullptr) return cur;
  auto suite = cipherSuiteFromId(SSL_CIPHER_get_id(cipher));
  if (!suite) return nullptr;
  ngtcp2_crypto_ctx c = cryptoCtxFor(*suite);
  if (early) {
    ngtcp2_conn_set_0rtt_crypto_ctx(conn, &c);
    return ngtcp2_conn_get_0rtt_crypto_ctx(conn);
  }
  ngtcp2_conn_set_crypto_ctx(conn, &c);
  return ngtcp2_conn_get_crypto_ctx(conn);
}

/** keyFailure: counts, records the error on the connection and fails the TLS callback (fatal). */
int keyFailure(ngtcp2_conn* conn, int rv) {
  cryptoCounters().keyInstallFailures.fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("quic: installing a packet protection key failed: {}", ngtcp2_strerror(rv));
  ngtcp2_conn_set_tls_error(conn, rv != 0 ? rv : NGTCP2_ERR_CRYPTO);
  return 0;
}

// ------------------------------------------------------------------ SSL_QUIC_METHOD

/** SecretInstall: what a set_*_secret callback is installing, once prepared. */
struct SecretInstall {
  ngtcp2_conn* conn{nullptr};
  ngtcp2_encryption_level level{NGTCP2_ENCRYPTION_LEVEL_INITIAL};
  bool server{false};
  DirectionKeys keys;
};

enum class Prepared : uint8_t { Install, Skip, Fail };

/**
 * prepareSecret: the common part of set_read_secret and set_write_secret — find the connection,
 * skip the 0-RTT direction this side never uses, decode the client's transport parameters first
 * on the server (rule 1: that fixes the negotiated version, hence the labels), pick the crypto
 * context from this secret's cipher and derive the key, IV and HP key.
 */
Prepared prepareSecret(SecretInstall& in, SSL* ssl, ssl_encryption_level_t sslLevel,
                       const SSL_CIPHER* cipher, const uint8_t* secret, size_t secretlen,
                       bool write) {
  in.conn = connOf(ssl);
  if (in.conn == nullptr) return Prepared::Fail;
  in.level = fromSslLevel(sslLevel);
  in.server = ngtcp2_conn_is_server(in.conn) != 0;
  // A client never reads 0-RTT and a server never writes it.
  if (in.level == NGTCP2_ENCRYPTION_LEVEL_0RTT && in.server == write) return Prepared::Skip;
  if (in.server && in.level == NGTCP2_ENCRYPTION_LEVEL_HANDSHAKE &&
      ngtcp2_conn_get_negotiated_version(in.conn) == 0) {
    if (int rv = setRemoteTransportParams(in.conn, ssl); rv != 0) {
      keyFailure(in.conn, rv);
      return Prepared::Fail;
    }
  }
  const ngtcp2_crypto_ctx* ctx = secretCryptoCtx(in.conn, in.level, cipher);
  uint32_t version = in.level == NGTCP2_ENCRYPTION_LEVEL_0RTT
                         ? ngtcp2_conn_get_client_chosen_version(in.conn)
                         : ngtcp2_conn_get_negotiated_version(in.conn);
  if (ctx == nullptr || !makeKeys(in.keys, *ctx, version, secret, secretlen)) {
    keyFailure(in.conn, NGTCP2_ERR_CRYPTO);
    return Prepared::Fail;
  }
  return Prepared::Install;
}

int setReadSecret(SSL* ssl, ssl_encryption_level_t sslLevel, const SSL_CIPHER* cipher,
                  const uint8_t* secret, size_t secretlen) {
  SecretInstall in;
  if (Prepared p = prepareSecret(in, ssl, sslLevel, cipher, secret, secretlen, false);
      p != Prepared::Install) {
    return p == Prepared::Skip ? 1 : 0;
  }
  ngtcp2_conn* conn = in.conn;
  DirectionKeys& k = in.keys;
  int rv = 0;
  switch (in.level) {
    case NGTCP2_ENCRYPTION_LEVEL_0RTT:
      rv = ngtcp2_conn_install_0rtt_key(conn, &k.aead, k.iv, kIvLen, &k.hp);
      break;
    case NGTCP2_ENCRYPTION_LEVEL_HANDSHAKE:
      rv = ngtcp2_conn_install_rx_handshake_key(conn, &k.aead, k.iv, kIvLen, &k.hp);
      break;
    case NGTCP2_ENCRYPTION_LEVEL_1RTT:
      // Rule 3: the client learns the server's transport parameters with the 1-RTT read key.
      if (!in.server) {
        if (int trv = setRemoteTransportParams(conn, ssl); trv != 0) return keyFailure(conn, trv);
      }
      rv = ngtcp2_conn_install_rx_key(conn, secret, secretlen, &k.aead, k.iv, kIvLen, &k.hp);
      break;
    default:
      return keyFailure(conn, NGTCP2_ERR_CRYPTO);
  }
  if (rv != 0) return keyFailure(conn, rv);
  k.release();  // Rule 5: ngtcp2 owns the contexts once an install succeeded
  return 1;
}

int setWriteSecret(SSL* ssl, ssl_encryption_level_t sslLevel, const SSL_CIPHER* cipher,
                   const uint8_t* secret, size_t secretlen) {
  SecretInstall in;
  if (Prepared p = prepareSecret(in, ssl, sslLevel, cipher, secret, secretlen, true);
      p != Prepared::Install) {
    return p == Prepared::Skip ? 1 : 0;
  }
  ngtcp2_conn* conn = in.conn;
  DirectionKeys& k = in.keys;
  int rv = 0;
  switch (in.level) {
    case NGTCP2_ENCRYPTION_LEVEL_0RTT:
      rv = ngtcp2_conn_install_0rtt_key(conn, &k.aead, k.iv, kIvLen, &k.hp);
      break;
    case NGTCP2_ENCRYPTION_LEVEL_HANDSHAKE:
      rv = ngtcp2_conn_install_tx_handshake_key(conn, &k.aead, k.iv, kIvLen, &k.hp);
      if (rv != 0 && in.server) {
        // Rule 5: in ngtcp2 1.11 a failure inside the server's commit of its local transport
        // parameters leaves the contexts referenced by the connection. Never free them; the
        // failure is fatal and ngtcp2_conn_del releases them.
        k.release();
      }
      break;
    case NGTCP2_ENCRYPTION_LEVEL_1RTT:
      rv = ngtcp2_conn_install_tx_key(conn, secret, secretlen, &k.aead, k.iv, kIvLen, &k.hp);
      break;
    default:
      return keyFailure(conn, NGTCP2_ERR_CRYPTO);
  }
  if (rv != 0) return keyFailure(conn, rv);
  k.release();
  // Rule 2: the server's own transport parameters go in after its handshake write key, so
  // BoringSSL puts them in EncryptedExtensions (built after this callback).
  if (in.server && in.level == NGTCP2_ENCRYPTION_LEVEL_HANDSHAKE) {
    if (int trv = setLocalTransportParams(conn, ssl); trv != 0) return keyFailure(conn, trv);
  }
  return 1;
}

int addHandshakeData(SSL* ssl, ssl_encryption_level_t level, const uint8_t* data, size_t len) {
  ngtcp2_conn* conn = connOf(ssl);
  if (conn == nullptr) return 0;
  int rv = ngtcp2_conn_submit_crypto_data(conn, fromSslLevel(level), data, len);
  if (rv != 0) {
    ngtcp2_conn_set_tls_error(conn, rv);
    return 0;
  }
  return 1;
}

int flushFlight(SSL*) { return 1; }  // packets are built later by ngtcp2_conn_writev_stream

int sendAlert(SSL* ssl, ssl_encryption_level_t, uint8_t alert) {
  ngtcp2_conn* conn = connOf(ssl);
  if (conn == nullptr) return 0;
  ngtcp2_conn_set_tls_alert(conn, alert);
  return 1;
}

const SSL_QUIC_METHOD kQuicMethod = {setReadSecret, setWriteSecret, addHandshakeData, flushFlight,
                                     sendAlert};

// ------------------------------------------------------------------ Initial keys

/** InitialMode: first Initial keys, keys after a Retry, or keys for a negotiated version. */
enum class InitialMode : uint8_t { First, AfterRetry, VersionNegotiation };

/** installInitialKeys: Initial keys of version for dcid (and, first time, the client's Retry AEAD).
 */
int installInitialKeys(ngtcp2_conn* conn, uint32_t version, const ngtcp2_cid& dcid,
                       InitialMode mode) {
  bool vneg = mode == InitialMode::VersionNegotiation;
  ngtcp2_crypto_ctx ictx = cryptoCtxFor(CipherSuite::Aes128GcmSha256);
  if (!vneg) ngtcp2_conn_set_initial_crypto_ctx(conn, &ictx);
  auto secrets = deriveInitialSecrets(version, std::span<const uint8_t>(dcid.data, dcid.datalen));
  if (!secrets) return NGTCP2_ERR_CALLBACK_FAILURE;
  bool server = ngtcp2_conn_is_server(conn) != 0;
  const auto& rxSecret = server ? secrets->client : secrets->server;
  const auto& txSecret = server ? secrets->server : secrets->client;
  DirectionKeys rx;
  DirectionKeys tx;
  if (!makeKeys(rx, ictx, version, rxSecret.data(), rxSecret.size()) ||
      !makeKeys(tx, ictx, version, txSecret.data(), txSecret.size())) {
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  if (!server && mode == InitialMode::First && !ngtcp2_conn_after_retry(conn)) {
    // The client checks a Retry's integrity tag with this AEAD (the key of its chosen version).
    ngtcp2_crypto_aead_ctx retryCtx{};
    const uint8_t* retryKey =
        reinterpret_cast<const uint8_t*>(isV2(version) ? NGTCP2_RETRY_KEY_V2 : NGTCP2_RETRY_KEY_V1);
    if (!newAeadCtx(&retryCtx, EVP_aead_aes_128_gcm(), retryKey)) {
      return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    ngtcp2_conn_set_retry_aead(conn, &ictx.aead, &retryCtx);
  }
  int rv = vneg ? ngtcp2_conn_install_vneg_initial_key(conn, version, &rx.aead, rx.iv, &rx.hp,
                                                       &tx.aead, tx.iv, &tx.hp, kIvLen)
                : ngtcp2_conn_install_initial_key(conn, &rx.aead, rx.iv, &rx.hp, &tx.aead, tx.iv,
                                                  &tx.hp, kIvLen);
  if (rv != 0) return rv;
  rx.release();
  tx.release();
  return 0;
}

/** driveHandshake: SSL_do_handshake until it wants data; post-handshake messages after. */
int driveHandshake(ngtcp2_conn* conn, SSL* ssl) {
  if (!ngtcp2_conn_get_handshake_completed(conn)) {
    for (;;) {
      int rv = SSL_do_handshake(ssl);
      if (rv > 0) break;
      int err = SSL_get_error(ssl, rv);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return 0;
      if (err == SSL_ERROR_EARLY_DATA_REJECTED && !ngtcp2_conn_is_server(conn)) {
        SSL_reset_early_data_reject(ssl);
        if (ngtcp2_conn_tls_early_data_rejected(conn) != 0) return -1;
        continue;
      }
      return -1;
    }
    if (SSL_in_early_data(ssl)) return 0;
    ngtcp2_conn_tls_handshake_completed(conn);
  }
  return SSL_process_quic_post_handshake(ssl) == 1 ? 0 : -1;
}

int failWithTlsError(ngtcp2_conn* conn) {
  cryptoCounters().tlsFailures.fetch_add(1, std::memory_order_relaxed);
  // The reason for the connection's close log; the error queue is per thread, so leave it empty
  // for the next connection on this reactor.
  uint32_t e = ERR_peek_last_error();
  spdlog::debug(
      "quic: TLS {} failed: {} (alert {})", ngtcp2_conn_is_server(conn) ? "server" : "client",
      e != 0 ? ERR_reason_error_string(e) : "no error queued", ngtcp2_conn_get_tls_alert(conn));
  ERR_clear_error();
  int rv = ngtcp2_conn_get_tls_error(conn);
  return rv != 0 ? rv : NGTCP2_ERR_CRYPTO;
}

/** retryAeadCtx: the static Retry integrity AEAD context of version (built once, shared). */
const ngtcp2_crypto_aead_ctx* retryAeadCtx(uint32_t version) {
  static const ngtcp2_crypto_aead_ctx v1 = [] {
    ngtcp2_crypto_aead_ctx c{};
    newAeadCtx(&c, EVP_aead_aes_128_gcm(), reinterpret_cast<const uint8_t*>(NGTCP2_RETRY_KEY_V1));
    return c;
  }();
  static const ngtcp2_crypto_aead_ctx v2 = [] {
    ngtcp2_crypto_aead_ctx c{};
    newAeadCtx(&c, EVP_aead_aes_128_gcm(), reinterpret_cast<const uint8_t*>(NGTCP2_RETRY_KEY_V2));
    return c;
  }();
  const ngtcp2_crypto_aead_ctx* c = isV2(version) ? &v2 : &v1;
  return c->native_handle != nullptr ? c : nullptr;
}

bool supportedVersion(uint32_t v) { return v == NGTCP2_PROTO_VER_V1 || v == NGTCP2_PROTO_VER_V2; }

}  // namespace

// ==================================================================== public: primitives

Result<CipherSuite> cipherSuiteFromId(uint32_t id) {
  switch (id & 0xffff) {
    case 0x1301:
      return CipherSuite::Aes128GcmSha256;
    case 0x1302:
      return CipherSuite::Aes256GcmSha384;
    case 0x1303:
      return CipherSuite::ChaCha20Poly1305Sha256;
    default:
      return cryptoError("cipher suite not usable with QUIC: " + std::to_string(id));
  }
}

size_t keyLength(CipherSuite s) { return EVP_AEAD_key_length(suiteInfo(s).aead); }
size_t hashLength(CipherSuite s) { return EVP_MD_size(suiteInfo(s).md); }

Result<void> hkdfExpandLabel(std::span<uint8_t> out, CipherSuite s, std::span<const uint8_t> secret,
                             std::string_view label) {
  if (!expandLabel(out.data(), out.size(), suiteInfo(s).md, secret.data(), secret.size(), label)) {
    return cryptoError("HKDF-Expand-Label");
  }
  return {};
}

ngtcp2_crypto_ctx cryptoContext(CipherSuite s) { return cryptoCtxFor(s); }

Result<void> initPacketContexts(ngtcp2_crypto_aead_ctx* aeadCtx, ngtcp2_crypto_cipher_ctx* hpCtx,
                                CipherSuite s, const PacketKeys& keys) {
  SuiteInfo i = suiteInfo(s);
  if (keys.key.size() != EVP_AEAD_key_length(i.aead) || keys.hp.size() != keys.key.size()) {
    return cryptoError("packet key length");
  }
  if (!newAeadCtx(aeadCtx, i.aead, keys.key.data())) return cryptoError("AEAD context");
  if (!newHpCtx(hpCtx, i.hp, keys.hp.data())) {
    freeAeadCtx(aeadCtx);
    return cryptoError("header protection context");
  }
  return {};
}

Result<void> hkdfSha256(std::span<uint8_t> out, std::span<const uint8_t> secret,
                        std::span<const uint8_t> salt, std::span<const uint8_t> info) {
  if (HKDF(out.data(), out.size(), EVP_sha256(), secret.data(), secret.size(), salt.data(),
           salt.size(), info.data(), info.size()) != 1) {
    return cryptoError("HKDF");
  }
  return {};
}

Result<void> hkdfExtractSha256(std::span<uint8_t, 32> prk, std::span<const uint8_t> ikm,
                               std::span<const uint8_t> salt) {
  size_t len = 0;
  if (HKDF_extract(prk.data(), &len, EVP_sha256(), ikm.data(), ikm.size(), salt.data(),
                   salt.size()) != 1 ||
      len != prk.size()) {
    return cryptoError("HKDF-Extract");
  }
  return {};
}

Result<void> randomBytes(std::span<uint8_t> out) {
  if (RAND_bytes(out.data(), out.size()) != 1) return cryptoError("RAND_bytes");
  return {};
}

Result<Bytes> aeadSeal(CipherSuite s, std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                       std::span<const uint8_t> plaintext, std::span<const uint8_t> aad) {
  bssl::ScopedEVP_AEAD_CTX ctx;
  const EVP_AEAD* aead = suiteInfo(s).aead;
  if (key.size() != EVP_AEAD_key_length(aead) ||
      EVP_AEAD_CTX_init(ctx.get(), aead, key.data(), key.size(), EVP_AEAD_DEFAULT_TAG_LENGTH,
                        nullptr) != 1) {
    return cryptoError("AEAD key");
  }
  Bytes out(plaintext.size() + EVP_AEAD_max_overhead(aead));
  size_t n = 0;
  if (EVP_AEAD_CTX_seal(ctx.get(), out.data(), &n, out.size(), nonce.data(), nonce.size(),
                        plaintext.data(), plaintext.size(), aad.data(), aad.size()) != 1) {
    return cryptoError("AEAD seal");
  }
  out.resize(n);
  return out;
}

Result<Bytes> aeadOpen(CipherSuite s, std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                       std::span<const uint8_t> ciphertext, std::span<const uint8_t> aad) {
  bssl::ScopedEVP_AEAD_CTX ctx;
  const EVP_AEAD* aead = suiteInfo(s).aead;
  if (key.size() != EVP_AEAD_key_length(aead) ||
      EVP_AEAD_CTX_init(ctx.get(), aead, key.data(), key.size(), EVP_AEAD_DEFAULT_TAG_LENGTH,
                        nullptr) != 1) {
    return cryptoError("AEAD key");
  }
  Bytes out(ciphertext.size());
  size_t n = 0;
  if (EVP_AEAD_CTX_open(ctx.get(), out.data(), &n, out.size(), nonce.data(), nonce.size(),
                        ciphertext.data(), ciphertext.size(), aad.data(), aad.size()) != 1) {
    return cryptoError("AEAD open: authentication failed");
  }
  out.resize(n);
  return out;
}

Result<std::array<uint8_t, NGTCP2_HP_MASKLEN>> headerProtectionMask(
    CipherSuite s, std::span<const uint8_t> hpKey,
    std::span<const uint8_t, NGTCP2_HP_SAMPLELEN> sample) {
  if (hpKey.size() != keyLength(s)) return cryptoError("header protection key length");
  ngtcp2_crypto_cipher_ctx c{};
  if (!newHpCtx(&c, suiteInfo(s).hp, hpKey.data())) return cryptoError("header protection key");
  uint8_t mask[16];
  hpMaskWith(mask, static_cast<const HpCtx*>(c.native_handle), sample.data());
  freeHpCtx(&c);
  std::array<uint8_t, NGTCP2_HP_MASKLEN> out{};
  std::memcpy(out.data(), mask, out.size());
  return out;
}

// ==================================================================== public: ngtcp2 callbacks

void setServerCryptoCallbacks(ngtcp2_callbacks& cb) {
  cb.recv_client_initial = recvClientInitialCb;
  cb.recv_crypto_data = recvCryptoDataCb;
  cb.encrypt = encryptCb;
  cb.decrypt = decryptCb;
  cb.hp_mask = hpMaskCb;
  cb.update_key = updateKeyCb;
  cb.delete_crypto_aead_ctx = deleteCryptoAeadCtxCb;
  cb.delete_crypto_cipher_ctx = deleteCryptoCipherCtxCb;
  cb.get_path_challenge_data = getPathChallengeDataCb;
  cb.version_negotiation = versionNegotiationCb;
  cb.rand = randCb;
}

void setClientCryptoCallbacks(ngtcp2_callbacks& cb) {
  setServerCryptoCallbacks(cb);
  cb.recv_client_initial = nullptr;
  cb.client_initial = clientInitialCb;
  cb.recv_retry = recvRetryCb;
}

int setupClientInitial(ngtcp2_conn* conn) {
  SSL* ssl = sslOf(conn);
  if (ssl == nullptr) return NGTCP2_ERR_CALLBACK_FAILURE;
  if (installInitialKeys(conn, ngtcp2_conn_get_client_chosen_version(conn),
                         *ngtcp2_conn_get_dcid(conn), InitialMode::First) != 0) {
    cryptoCounters().keyInstallFailures.fetch_add(1, std::memory_order_relaxed);
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  // Keys before crypto data (notes §1): the ClientHello is submitted by SSL_do_handshake below.
  if (setLocalTransportParams(conn, ssl) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
  if (driveHandshake(conn, ssl) != 0) {
    failWithTlsError(conn);
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

int clientInitialCb(ngtcp2_conn* conn, void*) { return setupClientInitial(conn); }

int recvClientInitialCb(ngtcp2_conn* conn, const ngtcp2_cid* dcid, void*) {
  if (installInitialKeys(conn, ngtcp2_conn_get_client_chosen_version(conn), *dcid,
                         InitialMode::First) != 0) {
    cryptoCounters().keyInstallFailures.fetch_add(1, std::memory_order_relaxed);
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

int recvCryptoDataCb(ngtcp2_conn* conn, ngtcp2_encryption_level level, uint64_t,
                     const uint8_t* data, size_t datalen, void*) {
  SSL* ssl = sslOf(conn);
  if (ssl == nullptr) return NGTCP2_ERR_CALLBACK_FAILURE;
  if (SSL_provide_quic_data(ssl, toSslLevel(level), data, datalen) != 1) {
    return failWithTlsError(conn);
  }
  if (driveHandshake(conn, ssl) != 0) return failWithTlsError(conn);
  return 0;
}

int encryptCb(uint8_t* dest, const ngtcp2_crypto_aead* aead, const ngtcp2_crypto_aead_ctx* aeadCtx,
              const uint8_t* plaintext, size_t plaintextlen, const uint8_t* nonce, size_t noncelen,
              const uint8_t* aad, size_t aadlen) {
  size_t outlen = 0;
  if (EVP_AEAD_CTX_seal(static_cast<EVP_AEAD_CTX*>(aeadCtx->native_handle), dest, &outlen,
                        plaintextlen + aead->max_overhead, nonce, noncelen, plaintext, plaintextlen,
                        aad, aadlen) != 1) {
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

int decryptCb(uint8_t* dest, const ngtcp2_crypto_aead* aead, const ngtcp2_crypto_aead_ctx* aeadCtx,
              const uint8_t* ciphertext, size_t ciphertextlen, const uint8_t* nonce,
              size_t noncelen, const uint8_t* aad, size_t aadlen) {
  size_t outlen = 0;
  if (ciphertextlen < aead->max_overhead ||
      EVP_AEAD_CTX_open(static_cast<EVP_AEAD_CTX*>(aeadCtx->native_handle), dest, &outlen,
                        ciphertextlen - aead->max_overhead, nonce, noncelen, ciphertext,
                        ciphertextlen, aad, aadlen) != 1) {
    cryptoCounters().decryptFailures.fetch_add(1, std::memory_order_relaxed);
    return NGTCP2_ERR_DECRYPT;  // not CALLBACK_FAILURE: ngtcp2 drops the packet and counts it
  }
  return 0;
}

int hpMaskCb(uint8_t* dest, const ngtcp2_crypto_cipher*, const ngtcp2_crypto_cipher_ctx* hpCtx,
             const uint8_t* sample) {
  hpMaskWith(dest, static_cast<const HpCtx*>(hpCtx->native_handle), sample);
  return 0;
}

int recvRetryCb(ngtcp2_conn* conn, const ngtcp2_pkt_hd* hd, void*) {
  // New Initial keys from the Retry's SCID (the client's next DCID), same version.
  if (installInitialKeys(conn, ngtcp2_conn_get_client_chosen_version(conn), hd->scid,
                         InitialMode::AfterRetry) != 0) {
    cryptoCounters().keyInstallFailures.fetch_add(1, std::memory_order_relaxed);
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

int updateKeyCb(ngtcp2_conn* conn, uint8_t* rxSecret, uint8_t* txSecret,
                ngtcp2_crypto_aead_ctx* rxAeadCtx, uint8_t* rxIv, ngtcp2_crypto_aead_ctx* txAeadCtx,
                uint8_t* txIv, const uint8_t* currentRxSecret, const uint8_t* currentTxSecret,
                size_t secretlen, void*) {
  const ngtcp2_crypto_ctx* ctx = ngtcp2_conn_get_crypto_ctx(conn);
  uint32_t version = ngtcp2_conn_get_negotiated_version(conn);
  CipherSuite suite = suiteOf(*ctx);
  auto rx = deriveNextSecret(version, suite, std::span<const uint8_t>(currentRxSecret, secretlen));
  auto tx = deriveNextSecret(version, suite, std::span<const uint8_t>(currentTxSecret, secretlen));
  // The header-protection key is not updated (RFC 9001 §6): only secret, key and IV change, so the
  // hp member of the derived keys is dropped.
  Result<PacketKeys> rxKeys = rx ? derivePacketKeys(version, suite, *rx) : rx.error();
  Result<PacketKeys> txKeys = tx ? derivePacketKeys(version, suite, *tx) : tx.error();
  bool ok = rxKeys && txKeys;
  if (ok) {
    std::memcpy(rxSecret, rx->data(), secretlen);
    std::memcpy(txSecret, tx->data(), secretlen);
    std::memcpy(rxIv, rxKeys->iv.data(), kIvLen);
    std::memcpy(txIv, txKeys->iv.data(), kIvLen);
    ok = newAeadCtx(rxAeadCtx, aeadOf(&ctx->aead), rxKeys->key.data());
    if (ok && !newAeadCtx(txAeadCtx, aeadOf(&ctx->aead), txKeys->key.data())) {
      freeAeadCtx(rxAeadCtx);
      ok = false;
    }
  }
  for (auto* b : {rx ? &*rx : nullptr, tx ? &*tx : nullptr}) {
    if (b != nullptr) OPENSSL_cleanse(b->data(), b->size());
  }
  if (rxKeys) cleanse(*rxKeys);
  if (txKeys) cleanse(*txKeys);
  if (!ok) {
    cryptoCounters().keyInstallFailures.fetch_add(1, std::memory_order_relaxed);
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  cryptoCounters().keyUpdates.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

void deleteCryptoAeadCtxCb(ngtcp2_conn*, ngtcp2_crypto_aead_ctx* aeadCtx, void*) {
  freeAeadCtx(aeadCtx);
}

void deleteCryptoCipherCtxCb(ngtcp2_conn*, ngtcp2_crypto_cipher_ctx* cipherCtx, void*) {
  freeHpCtx(cipherCtx);
}

int getPathChallengeDataCb(ngtcp2_conn*, uint8_t* data, void*) {
  return RAND_bytes(data, NGTCP2_PATH_CHALLENGE_DATALEN) == 1 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

int versionNegotiationCb(ngtcp2_conn* conn, uint32_t version, const ngtcp2_cid* clientDcid, void*) {
  if (!supportedVersion(version) ||
      installInitialKeys(conn, version, *clientDcid, InitialMode::VersionNegotiation) != 0) {
    cryptoCounters().keyInstallFailures.fetch_add(1, std::memory_order_relaxed);
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  cryptoCounters().versionNegotiations.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

void randCb(uint8_t* dest, size_t destlen, const ngtcp2_rand_ctx*) {
  // ngtcp2 needs no cryptographic strength here (packet-number skips, jitter), but the CSPRNG is
  // cheap enough and never fails in BoringSSL (it aborts instead).
  RAND_bytes(dest, destlen);
}

// ==================================================================== public: TLS setup

namespace {
Result<void> configureContext(SSL_CTX* ctx) {
  if (ctx == nullptr) return cryptoError("no SSL_CTX");
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_quic_method(ctx, &kQuicMethod) != 1) {
    return cryptoError("SSL_CTX setup for QUIC");
  }
  return {};
}

Result<void> configureEarlyData(SSL* ssl, const SslOptions& opts, bool server) {
  if (!opts.enableEarlyData) {
    SSL_set_early_data_enabled(ssl, 0);
    return {};
  }
  if (server) {
    // BoringSSL accepts 0-RTT only with a non-empty context (notes §2).
    if (opts.earlyDataContext.empty())
      return cryptoError("0-RTT needs a non-empty early data context");
    if (SSL_set_quic_early_data_context(ssl, opts.earlyDataContext.data(),
                                        opts.earlyDataContext.size()) != 1) {
      return cryptoError("SSL_set_quic_early_data_context");
    }
  }
  SSL_set_early_data_enabled(ssl, 1);
  return {};
}
}  // namespace

Result<void> configureServerContext(ssl_ctx_st* ctx) { return configureContext(ctx); }
Result<void> configureClientContext(ssl_ctx_st* ctx) { return configureContext(ctx); }

// configureSsl: QUIC on this SSL alone, so an SSL_CTX shared with TLS over TCP (the node's listener
// contexts) serves QUIC too: the method and TLS 1.3 are set per connection.
Result<void> configureSsl(SSL* ssl) {
  if (SSL_set_min_proto_version(ssl, TLS1_3_VERSION) != 1 || SSL_set_max_proto_version(ssl, TLS1_3_VERSION) != 1 ||
      SSL_set_quic_method(ssl, &kQuicMethod) != 1) {
    return cryptoError("SSL setup for QUIC");
  }
  // Once the handshake is done, BoringSSL frees this SSL's copy of the handshake configuration
  // (certificate chain, key, cipher and curve lists): an idle connection does not carry it.
  SSL_set_shed_handshake_config(ssl, 1);
  return {};
}

Result<void> configureServerSsl(ssl_st* ssl, ConnRef* ref, const SslOptions& opts) {
  if (ssl == nullptr || ref == nullptr || ref->getConn == nullptr) return cryptoError("no SSL or ConnRef");
  if (auto r = configureSsl(ssl); !r) return r;
  SSL_set_app_data(ssl, ref);
  SSL_set_accept_state(ssl);
  SSL_set_quic_use_legacy_codepoint(ssl, 0);
  return configureEarlyData(ssl, opts, true);
}

Result<void> configureClientSsl(ssl_st* ssl, ConnRef* ref, const SslOptions& opts) {
  if (ssl == nullptr || ref == nullptr || ref->getConn == nullptr) return cryptoError("no SSL or ConnRef");
  if (auto r = configureSsl(ssl); !r) return r;
  SSL_set_app_data(ssl, ref);
  SSL_set_connect_state(ssl);
  SSL_set_quic_use_legacy_codepoint(ssl, 0);
  if (!opts.serverName.empty()) {
    std::string name(opts.serverName);
    if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) return cryptoError("SNI");
  }
  return configureEarlyData(ssl, opts, false);
}

// ==================================================================== public: packets a listener
// writes

Result<size_t> writeRetry(std::span<uint8_t> dest, uint32_t version, const ngtcp2_cid& dcid,
                          const ngtcp2_cid& scid, const ngtcp2_cid& odcid,
                          std::span<const uint8_t> token) {
  if (!supportedVersion(version)) return cryptoError("unsupported version");
  const ngtcp2_crypto_aead_ctx* ctx = retryAeadCtx(version);
  if (ctx == nullptr) return cryptoError("retry AEAD");
  ngtcp2_crypto_ctx ictx = cryptoCtxFor(CipherSuite::Aes128GcmSha256);
  ngtcp2_ssize n = ngtcp2_pkt_write_retry(dest.data(), dest.size(), version, &dcid, &scid, &odcid,
                                          token.data(), token.size(), encryptCb, &ictx.aead, ctx);
  if (n < 0)
    return cryptoError(std::string("write Retry: ") + ngtcp2_strerror(static_cast<int>(n)));
  return static_cast<size_t>(n);
}

Result<size_t> writeInitialConnectionClose(std::span<uint8_t> dest, uint32_t version,
                                           const ngtcp2_cid& dcid, const ngtcp2_cid& scid,
                                           const ngtcp2_cid& clientDcid, uint64_t errorCode,
                                           std::string_view reason) {
  auto secrets =
      deriveInitialSecrets(version, std::span<const uint8_t>(clientDcid.data, clientDcid.datalen));
  if (!secrets) return secrets.error();
  ngtcp2_crypto_ctx ictx = cryptoCtxFor(CipherSuite::Aes128GcmSha256);
  DirectionKeys tx;
  if (!makeKeys(tx, ictx, version, secrets->server.data(), secrets->server.size())) {
    return cryptoError("initial keys");
  }
  ngtcp2_ssize n = ngtcp2_pkt_write_connection_close(
      dest.data(), dest.size(), version, &dcid, &scid, errorCode,
      reinterpret_cast<const uint8_t*>(reason.data()), reason.size(), encryptCb, &ictx.aead,
      &tx.aead, tx.iv, hpMaskCb, &ictx.hp, &tx.hp);
  if (n < 0) {
    return cryptoError(std::string("write CONNECTION_CLOSE: ") +
                       ngtcp2_strerror(static_cast<int>(n)));
  }
  return static_cast<size_t>(n);
}

}  // namespace ugate::quic

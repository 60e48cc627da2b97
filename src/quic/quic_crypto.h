#pragma once
// The ngtcp2 <-> TLS crypto glue (RFC 9001), shaped like ngtcp2's own crypto helper
// (ngtcp2_crypto.h) so another backend can replace it in one file. Debian packages ngtcp2's helper
// only for GnuTLS, so ugated carries its own; the one backend is crypto_boringssl.cc (BoringSSL's
// QUIC API, SSL_set_quic_method), and crypto_shared.cc (the key schedule, tokens, Version
// Negotiation, counters) is built on the primitives below only. Nothing here names a BoringSSL type beyond the opaque SSL /
// SSL_CTX structs, which every OpenSSL-family library spells the same way.
//
// Sans-I/O: nothing touches a socket or a clock; timestamps are passed in.
//
// How a connection uses it:
//   1. once per process or listener: configureServerContext(ctx) / configureClientContext(ctx),
//      plus the application's certificate, verification and ALPN settings on that SSL_CTX;
//   2. per connection: fill ngtcp2_callbacks with setServerCryptoCallbacks or
//      setClientCryptoCallbacks (then the application's own stream, CID and handshake callbacks;
//      get_new_connection_id can use generateStatelessResetToken), create the ngtcp2_conn,
//      create an SSL from the context, configureServerSsl / configureClientSsl(ssl, connRef), then
//      ngtcp2_conn_set_tls_native_handle(conn, ssl). The ConnRef must outlive the SSL;
//   3. a server with address validation uses generateRetryToken / writeRetry / verifyRetryToken and
//      generateRegularToken / verifyRegularToken; stateless reset tokens come from
//      generateStatelessResetToken so they can be recomputed without state.
//
// Threading: every function is reentrant; a connection's SSL and ngtcp2_conn belong to one thread.
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <ngtcp2/ngtcp2.h>

#include <ugate/result.h>

struct ssl_st;      // SSL
struct ssl_ctx_st;  // SSL_CTX

namespace ugate::quic {

using Bytes = std::vector<uint8_t>;

/**
 * ConnRef: set as the SSL's app data (configure*Ssl does it) so the TLS callbacks can reach the
 * ngtcp2 connection. getConn(ref) returns the connection; user is the application's own pointer.
 * Same shape as ngtcp2_crypto_conn_ref. Non-owning; must outlive the SSL.
 */
struct ConnRef {
  ngtcp2_conn* (*getConn)(ConnRef* ref){nullptr};
  void* user{nullptr};
};

// ---------------------------------------------------------------------------------------------
// ngtcp2 callbacks. setServer/ClientCryptoCallbacks fill every crypto member of an ngtcp2_callbacks
// (client_initial or recv_client_initial, recv_crypto_data, encrypt, decrypt, hp_mask, recv_retry
// (client), update_key, delete_crypto_aead_ctx, delete_crypto_cipher_ctx, get_path_challenge_data,
// version_negotiation, rand) and leave the others alone. Each callback finds the SSL through
// ngtcp2_conn_get_tls_native_handle(conn). They are exported so an application can wrap one
// (e.g. to count) and still call the glue.

/** setServerCryptoCallbacks fills the crypto callbacks a server ngtcp2_conn needs. */
void setServerCryptoCallbacks(ngtcp2_callbacks& cb);
/** setClientCryptoCallbacks fills the crypto callbacks a client ngtcp2_conn needs. */
void setClientCryptoCallbacks(ngtcp2_callbacks& cb);

int clientInitialCb(ngtcp2_conn* conn, void* userData);
int recvClientInitialCb(ngtcp2_conn* conn, const ngtcp2_cid* dcid, void* userData);
int recvCryptoDataCb(ngtcp2_conn* conn, ngtcp2_encryption_level level, uint64_t offset,
                     const uint8_t* data, size_t datalen, void* userData);
int encryptCb(uint8_t* dest, const ngtcp2_crypto_aead* aead, const ngtcp2_crypto_aead_ctx* aeadCtx,
              const uint8_t* plaintext, size_t plaintextlen, const uint8_t* nonce, size_t noncelen,
              const uint8_t* aad, size_t aadlen);
/** decryptCb returns NGTCP2_ERR_DECRYPT on an authentication failure (counted). */
int decryptCb(uint8_t* dest, const ngtcp2_crypto_aead* aead, const ngtcp2_crypto_aead_ctx* aeadCtx,
              const uint8_t* ciphertext, size_t ciphertextlen, const uint8_t* nonce,
              size_t noncelen, const uint8_t* aad, size_t aadlen);
int hpMaskCb(uint8_t* dest, const ngtcp2_crypto_cipher* hp, const ngtcp2_crypto_cipher_ctx* hpCtx,
             const uint8_t* sample);
int recvRetryCb(ngtcp2_conn* conn, const ngtcp2_pkt_hd* hd, void* userData);
int updateKeyCb(ngtcp2_conn* conn, uint8_t* rxSecret, uint8_t* txSecret,
                ngtcp2_crypto_aead_ctx* rxAeadCtx, uint8_t* rxIv, ngtcp2_crypto_aead_ctx* txAeadCtx,
                uint8_t* txIv, const uint8_t* currentRxSecret, const uint8_t* currentTxSecret,
                size_t secretlen, void* userData);
void deleteCryptoAeadCtxCb(ngtcp2_conn* conn, ngtcp2_crypto_aead_ctx* aeadCtx, void* userData);
void deleteCryptoCipherCtxCb(ngtcp2_conn* conn, ngtcp2_crypto_cipher_ctx* cipherCtx,
                             void* userData);
int getPathChallengeDataCb(ngtcp2_conn* conn, uint8_t* data, void* userData);
int versionNegotiationCb(ngtcp2_conn* conn, uint32_t version, const ngtcp2_cid* clientDcid,
                         void* userData);
void randCb(uint8_t* dest, size_t destlen, const ngtcp2_rand_ctx* randCtx);

// ---------------------------------------------------------------------------------------------
// TLS setup.

/**
 * configureServerContext / configureClientContext: TLS 1.3 only and the QUIC method on ctx.
 * Certificates, verification, ALPN and session tickets stay the application's.
 */
Result<void> configureServerContext(ssl_ctx_st* ctx);
Result<void> configureClientContext(ssl_ctx_st* ctx);

/** SslOptions: per-connection TLS choices. */
struct SslOptions {
  /**
   * enableEarlyData: allow 0-RTT (off by default). A server also needs earlyDataContext (non-empty:
   * the encoded transport parameters and application settings that 0-RTT depends on); a client
   * also needs a resumed session and ngtcp2_conn_decode_and_set_0rtt_transport_params. The glue
   * installs 0-RTT keys when BoringSSL hands them over; no test exercises 0-RTT yet.
   */
  bool enableEarlyData{false};
  std::span<const uint8_t> earlyDataContext;
  /** serverName: SNI a client sends (empty = none). */
  std::string_view serverName;
};

/**
 * configureServerSsl / configureClientSsl: ref becomes the SSL's app data; the accept or connect
 * state is set, 0-RTT is off unless asked. Transport parameters are NOT set here: the glue sets
 * them at the moment ngtcp2 needs (a client in client_initial, a server when its handshake write
 * key is installed, after the client's parameters were decoded). Call before the ngtcp2_conn sees
 * a packet; then ngtcp2_conn_set_tls_native_handle(conn, ssl).
 */
Result<void> configureServerSsl(ssl_st* ssl, ConnRef* ref, const SslOptions& opts = {});
Result<void> configureClientSsl(ssl_st* ssl, ConnRef* ref, const SslOptions& opts = {});

/**
 * setupClientInitial: the body of clientInitialCb (Initial keys from the client's DCID, the Retry
 * AEAD, the client's transport parameters, then the ClientHello), for an application that wraps
 * client_initial. Returns 0 or an ngtcp2 error code.
 */
int setupClientInitial(ngtcp2_conn* conn);

// ---------------------------------------------------------------------------------------------
// Stateless reset, address validation tokens, Retry, Version Negotiation, CONNECTION_CLOSE.

inline constexpr size_t kStatelessResetTokenLen = NGTCP2_STATELESS_RESET_TOKENLEN;
/** kTokenSecretMinLen: static secrets (reset, token) are at least this long. */
inline constexpr size_t kTokenSecretMinLen = 16;
/** kRetryTokenMagic / kRegularTokenMagic: first byte of each token kind (tells them apart). */
inline constexpr uint8_t kRetryTokenMagic = 0xb6;
inline constexpr uint8_t kRegularTokenMagic = 0x36;
/** kMaxRetryTokenLen / kMaxRegularTokenLen: upper bounds of what generate*Token writes. */
inline constexpr size_t kMaxRetryTokenLen = 1 + 8 + 1 + NGTCP2_MAX_CIDLEN + 16 + 32;
inline constexpr size_t kMaxRegularTokenLen = 1 + 8 + 16 + 32;

/**
 * generateStatelessResetToken: token = HKDF(SHA-256, secret, info "stateless_reset" || cid)[16].
 * Deterministic, so any worker holding the secret recomputes it for an unknown CID.
 */
Result<void> generateStatelessResetToken(std::span<uint8_t, kStatelessResetTokenLen> token,
                                         std::span<const uint8_t> secret, const ngtcp2_cid& cid);

/**
 * generateRetryToken: an AEAD-sealed token carrying odcid and ts, bound (as AAD) to version,
 * the client address and retryScid (the SCID of the Retry, i.e. the DCID the client uses next).
 * Writes at most kMaxRetryTokenLen bytes to token; returns the length written.
 */
Result<size_t> generateRetryToken(std::span<uint8_t, kMaxRetryTokenLen> token,
                                  std::span<const uint8_t> secret, uint32_t version,
                                  const sockaddr* remote, socklen_t remotelen,
                                  const ngtcp2_cid& retryScid, const ngtcp2_cid& odcid,
                                  ngtcp2_tstamp ts);

/**
 * verifyRetryToken: opens a Retry token presented with an Initial whose DCID is dcid. On success
 * *odcid is the original DCID (for ngtcp2_settings / transport params). Fails (and counts) on a
 * wrong kind, tampering, another address, version or DCID, or an age over timeout.
 */
Result<void> verifyRetryToken(ngtcp2_cid* odcid, std::span<const uint8_t> token,
                              std::span<const uint8_t> secret, uint32_t version,
                              const sockaddr* remote, socklen_t remotelen, const ngtcp2_cid& dcid,
                              ngtcp2_duration timeout, ngtcp2_tstamp ts);

/** generateRegularToken: a NEW_TOKEN token bound to the client address (IP only) and ts. */
Result<size_t> generateRegularToken(std::span<uint8_t, kMaxRegularTokenLen> token,
                                    std::span<const uint8_t> secret, const sockaddr* remote,
                                    socklen_t remotelen, ngtcp2_tstamp ts);
/** verifyRegularToken: the counterpart of generateRegularToken. */
Result<void> verifyRegularToken(std::span<const uint8_t> token, std::span<const uint8_t> secret,
                                const sockaddr* remote, socklen_t remotelen,
                                ngtcp2_duration timeout, ngtcp2_tstamp ts);

/**
 * writeRetry: a Retry packet (v1 or v2 integrity key) to dest. dcid = the client's SCID, scid =
 * the new server CID, odcid = the client's original DCID. Returns the length or an error.
 */
Result<size_t> writeRetry(std::span<uint8_t> dest, uint32_t version, const ngtcp2_cid& dcid,
                          const ngtcp2_cid& scid, const ngtcp2_cid& odcid,
                          std::span<const uint8_t> token);

/**
 * writeVersionNegotiation: answers a long-header packet of an unsupported version. dcid/scid are
 * the client's SCID/DCID (swapped by the caller, as RFC 9000 §17.2.1 says); versions are ours.
 */
Result<size_t> writeVersionNegotiation(std::span<uint8_t> dest, uint8_t unusedRandom,
                                       std::span<const uint8_t> dcid, std::span<const uint8_t> scid,
                                       std::span<const uint32_t> versions);

/**
 * writeInitialConnectionClose: an Initial packet carrying CONNECTION_CLOSE(errorCode) for an
 * Initial we reject before creating a connection (bad token, overload). Protected with the server
 * Initial keys derived from clientDcid (the client's DCID); dcid = the client's SCID, scid = ours.
 */
Result<size_t> writeInitialConnectionClose(std::span<uint8_t> dest, uint32_t version,
                                           const ngtcp2_cid& dcid, const ngtcp2_cid& scid,
                                           const ngtcp2_cid& clientDcid, uint64_t errorCode,
                                           std::string_view reason);

// ---------------------------------------------------------------------------------------------
// Low-level pieces (RFC 9001 §5, RFC 9369 §3.3), exposed for the test vectors and benchmarks.

/** CipherSuite: the TLS 1.3 suites QUIC uses, by their IANA value. */
enum class CipherSuite : uint16_t {
  Aes128GcmSha256 = 0x1301,
  Aes256GcmSha384 = 0x1302,
  ChaCha20Poly1305Sha256 = 0x1303,
};

/** cipherSuiteFromId: a TLS cipher id (0x0300130x or 0x130x) to the enum; error when not QUIC's. */
Result<CipherSuite> cipherSuiteFromId(uint32_t id);
/** keyLength / hashLength: AEAD key and hash (secret) length of a suite. */
size_t keyLength(CipherSuite s);
size_t hashLength(CipherSuite s);
inline constexpr size_t kIvLen = 12;
inline constexpr size_t kAeadTagLen = 16;

/** hkdfExpandLabel: TLS 1.3 HKDF-Expand-Label(secret, label, "", out.size()) with the suite's hash.
 */
Result<void> hkdfExpandLabel(std::span<uint8_t> out, CipherSuite s, std::span<const uint8_t> secret,
                             std::string_view label);

/** hkdfSha256: HKDF-SHA-256 (RFC 5869 extract and expand) of secret with salt and info. */
Result<void> hkdfSha256(std::span<uint8_t> out, std::span<const uint8_t> secret,
                        std::span<const uint8_t> salt, std::span<const uint8_t> info);
/** hkdfExtractSha256: the HKDF-Extract PRK of ikm under salt (SHA-256). */
Result<void> hkdfExtractSha256(std::span<uint8_t, 32> prk, std::span<const uint8_t> ikm,
                               std::span<const uint8_t> salt);
/** randomBytes: out from the CSPRNG. */
Result<void> randomBytes(std::span<uint8_t> out);

/** InitialSecrets: RFC 9001 §5.2 (v1) / RFC 9369 §3.3.1 (v2). */
struct InitialSecrets {
  std::array<uint8_t, 32> initial{};
  std::array<uint8_t, 32> client{};
  std::array<uint8_t, 32> server{};
};
/** deriveInitialSecrets for version (v1 or v2) from the client's first DCID. */
Result<InitialSecrets> deriveInitialSecrets(uint32_t version, std::span<const uint8_t> dcid);

/** PacketKeys: key, IV and header-protection key of one direction. */
struct PacketKeys {
  Bytes key;
  Bytes iv;
  Bytes hp;
};
/** derivePacketKeys: "quic key/iv/hp" (v1) or "quicv2 key/iv/hp" (v2) from a traffic secret. */
Result<PacketKeys> derivePacketKeys(uint32_t version, CipherSuite s,
                                    std::span<const uint8_t> secret);
/** deriveNextSecret: the key-update secret, "quic ku" (v1) or "quicv2 ku" (v2). */
Result<Bytes> deriveNextSecret(uint32_t version, CipherSuite s, std::span<const uint8_t> secret);

/** aeadSeal: ciphertext || tag of plaintext under key and nonce (12 bytes) with aad. */
Result<Bytes> aeadSeal(CipherSuite s, std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                       std::span<const uint8_t> plaintext, std::span<const uint8_t> aad);
/** aeadOpen: the plaintext, or an error when the tag does not verify. */
Result<Bytes> aeadOpen(CipherSuite s, std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                       std::span<const uint8_t> ciphertext, std::span<const uint8_t> aad);
/** headerProtectionMask: the 5-byte mask (AES-ECB for AES suites, ChaCha20 for ChaCha20). */
Result<std::array<uint8_t, NGTCP2_HP_MASKLEN>> headerProtectionMask(
    CipherSuite s, std::span<const uint8_t> hpKey,
    std::span<const uint8_t, NGTCP2_HP_SAMPLELEN> sample);
/**
 * retryIntegrityTag: RFC 9001 §5.8 / RFC 9369 §3.3.3 tag over the Retry pseudo-packet
 * (odcid length, odcid, Retry packet without its tag).
 */
Result<std::array<uint8_t, 16>> retryIntegrityTag(uint32_t version, std::span<const uint8_t> odcid,
                                                  std::span<const uint8_t> retryWithoutTag);

/**
 * cryptoContext: the ngtcp2_crypto_ctx of a suite (AEAD, hash, HP cipher, usage limits), as the
 * glue sets it on connections. Static objects; nothing to free.
 */
ngtcp2_crypto_ctx cryptoContext(CipherSuite s);
/**
 * initPacketContexts: the AEAD and header-protection contexts of one direction from derived keys,
 * as the callbacks use them (encryptCb/decryptCb/hpMaskCb). The caller owns them until handed to
 * ngtcp2; free with deleteCryptoAeadCtxCb / deleteCryptoCipherCtxCb (conn may be null there).
 */
Result<void> initPacketContexts(ngtcp2_crypto_aead_ctx* aeadCtx, ngtcp2_crypto_cipher_ctx* hpCtx,
                                CipherSuite s, const PacketKeys& keys);

// ---------------------------------------------------------------------------------------------
// Counters (process-wide, relaxed atomics): what the glue rejected, for /stats and tests.

struct CryptoCounters {
  std::atomic<uint64_t> decryptFailures{0};      // AEAD open failed (tampered or misrouted packet)
  std::atomic<uint64_t> tlsFailures{0};          // TLS handshake or post-handshake error
  std::atomic<uint64_t> keyInstallFailures{0};   // a key could not be derived or installed (fatal)
  std::atomic<uint64_t> keyUpdates{0};           // update_key calls (each side, each update)
  std::atomic<uint64_t> tokensRejected{0};       // Retry / regular tokens that failed verification
  std::atomic<uint64_t> versionNegotiations{0};  // Initial keys re-installed for another version
};
/** cryptoCounters: the process-wide counters. */
CryptoCounters& cryptoCounters();

}  // namespace ugate::quic

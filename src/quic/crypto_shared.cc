// The backend-neutral part of quic_crypto.h (like ngtcp2's crypto/shared.c): the RFC 9001 / RFC
// 9369 key schedule (Initial secrets, packet keys, key update, the Retry integrity tag), stateless
// reset tokens, address-validation tokens, the Version Negotiation writer and the counters. Built
// only on the primitives the backend exports (HKDF, aeadSeal/aeadOpen, randomBytes), so swapping
// the TLS library touches crypto_boringssl.cc alone. The backend's own key installs call these
// derivations, so the RFC vector tests check the code the connections run.
//
// Token layout: magic (1) || AES-128-GCM(plaintext, aad) (plaintext + 16) || salt (32). The AEAD
// key and nonce are HKDF-SHA-256(static secret, salt, info) — a fresh key per token, so nonces
// never repeat under one key. A Retry token's plaintext is timestamp (8) || ODCID length (1) ||
// ODCID (padded to 20); its AAD binds the version, the client's IP and port and the Retry's SCID. A
// regular (NEW_TOKEN) token's plaintext is the timestamp; its AAD is the client's IP only.
#include <cstring>
#include <string>

#include "quic/quic_crypto.h"

namespace ugate::quic {
namespace {

constexpr size_t kTokenSaltLen = 32;
constexpr size_t kTsLen = 8;
constexpr size_t kTokenKeyLen = 16;
constexpr size_t kMaxAddrLen = 1 + 16 + 2;  // family tag, IPv6 address, port
constexpr std::string_view kRetryTokenInfo = "ugate quic retry token";
constexpr std::string_view kRegularTokenInfo = "ugate quic regular token";
constexpr std::string_view kResetInfo = "ugate quic stateless reset";

static_assert(kMaxRetryTokenLen ==
              1 + kTsLen + 1 + NGTCP2_MAX_CIDLEN + kAeadTagLen + kTokenSaltLen);
static_assert(kMaxRegularTokenLen == 1 + kTsLen + kAeadTagLen + kTokenSaltLen);

// RFC 9001 §5.2 and RFC 9369 §3.3.1.
constexpr uint8_t kInitialSaltV1[] = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
                                      0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
constexpr uint8_t kInitialSaltV2[] = {0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
                                      0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9};

bool isV2(uint32_t version) { return version == NGTCP2_PROTO_VER_V2; }
bool isV1(uint32_t version) { return version == NGTCP2_PROTO_VER_V1; }

enum class Label : uint8_t { Key, Iv, Hp, Ku };

/** labelFor: "quic key/iv/hp/ku" in v1, "quicv2 …" in v2 (RFC 9369 §3.3.2). */
std::string_view labelFor(uint32_t version, Label l) {
  static constexpr std::string_view kV1[] = {"quic key", "quic iv", "quic hp", "quic ku"};
  static constexpr std::string_view kV2[] = {"quicv2 key", "quicv2 iv", "quicv2 hp", "quicv2 ku"};
  return (isV2(version) ? kV2 : kV1)[static_cast<size_t>(l)];
}

Error sharedError(std::string what) { return Error{Errc::ProtocolError, "quic crypto: " + what}; }

Error tokenRejected(std::string why) {
  cryptoCounters().tokensRejected.fetch_add(1, std::memory_order_relaxed);
  return Error{Errc::AuthFailed, "quic token: " + why};
}

std::span<const uint8_t> bytesOf(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

/** addrBytes: the IP (and port when withPort) of remote, for a token's AAD; 0 = unsupported. */
size_t addrBytes(uint8_t* out, const sockaddr* remote, socklen_t remotelen, bool withPort) {
  if (remote == nullptr) return 0;
  if (remote->sa_family == AF_INET && remotelen >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(remote);
    out[0] = 4;
    std::memcpy(out + 1, &a->sin_addr, 4);
    if (!withPort) return 5;
    std::memcpy(out + 5, &a->sin_port, 2);
    return 7;
  }
  if (remote->sa_family == AF_INET6 && remotelen >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(remote);
    out[0] = 6;
    std::memcpy(out + 1, &a->sin6_addr, 16);
    if (!withPort) return 17;
    std::memcpy(out + 17, &a->sin6_port, 2);
    return 19;
  }
  return 0;
}

void putTs(uint8_t* p, uint64_t ts) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(ts);
    ts >>= 8;
  }
}

uint64_t getTs(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

/** checkAge: the token is not from the future and younger than timeout. */
Result<void> checkAge(uint64_t genTs, ngtcp2_duration timeout, ngtcp2_tstamp ts) {
  if (genTs > ts) return tokenRejected("timestamp in the future");
  if (ts - genTs >= timeout) return tokenRejected("expired");
  return {};
}

/** TokenKey: the per-token AES-128-GCM key and nonce. */
struct TokenKey {
  std::array<uint8_t, kTokenKeyLen + kIvLen> km{};
  std::span<const uint8_t> key() const { return std::span(km).first(kTokenKeyLen); }
  std::span<const uint8_t> nonce() const { return std::span(km).subspan(kTokenKeyLen); }
};

Result<TokenKey> tokenKey(std::span<const uint8_t> secret, std::span<const uint8_t> salt,
                          std::string_view info) {
  TokenKey k;
  if (auto ok = hkdfSha256(k.km, secret, salt, bytesOf(info)); !ok) return ok.error();
  return k;
}

/** sealToken: magic || AEAD(plaintext, aad) || salt into out; returns the length. */
Result<size_t> sealToken(std::span<uint8_t> out, uint8_t magic, std::string_view info,
                         std::span<const uint8_t> secret, std::span<const uint8_t> plaintext,
                         std::span<const uint8_t> aad) {
  if (secret.size() < kTokenSecretMinLen) return sharedError("token secret too short");
  size_t need = 1 + plaintext.size() + kAeadTagLen + kTokenSaltLen;
  if (out.size() < need) return sharedError("token buffer too small");
  std::span<uint8_t> salt = out.subspan(need - kTokenSaltLen, kTokenSaltLen);
  if (auto ok = randomBytes(salt); !ok) return ok.error();
  auto k = tokenKey(secret, salt, info);
  if (!k) return k.error();
  auto ct = aeadSeal(CipherSuite::Aes128GcmSha256, k->key(), k->nonce(), plaintext, aad);
  if (!ct) return ct.error();
  out[0] = magic;
  std::memcpy(out.data() + 1, ct->data(), ct->size());
  return need;
}

/** openToken: the plaintext of a token of the given kind; its length must be plainlen. */
Result<Bytes> openToken(size_t plainlen, uint8_t magic, std::string_view info,
                        std::span<const uint8_t> secret, std::span<const uint8_t> token,
                        std::span<const uint8_t> aad) {
  if (secret.size() < kTokenSecretMinLen) return sharedError("token secret too short");
  if (token.size() != 1 + plainlen + kAeadTagLen + kTokenSaltLen) {
    return tokenRejected("bad length " + std::to_string(token.size()));
  }
  if (token[0] != magic) return tokenRejected("wrong token kind");
  auto k = tokenKey(secret, token.last(kTokenSaltLen), info);
  if (!k) return k.error();
  auto pt = aeadOpen(CipherSuite::Aes128GcmSha256, k->key(), k->nonce(),
                     token.subspan(1, plainlen + kAeadTagLen), aad);
  if (!pt || pt->size() != plainlen) {
    return tokenRejected("authentication failed (tampered, other address or other secret)");
  }
  return pt;
}

/** retryAad: version || client address (IP and port) || Retry SCID; 0 = unsupported address. */
size_t retryAad(uint8_t* aad, uint32_t version, const sockaddr* remote, socklen_t remotelen,
                const ngtcp2_cid& retryScid) {
  aad[0] = static_cast<uint8_t>(version >> 24);
  aad[1] = static_cast<uint8_t>(version >> 16);
  aad[2] = static_cast<uint8_t>(version >> 8);
  aad[3] = static_cast<uint8_t>(version);
  size_t n = addrBytes(aad + 4, remote, remotelen, true);
  if (n == 0) return 0;
  std::memcpy(aad + 4 + n, retryScid.data, retryScid.datalen);
  return 4 + n + retryScid.datalen;
}

}  // namespace

Result<InitialSecrets> deriveInitialSecrets(uint32_t version, std::span<const uint8_t> dcid) {
  if (!isV1(version) && !isV2(version)) {
    return sharedError("no Initial salt for version " + std::to_string(version));
  }
  InitialSecrets s;
  const CipherSuite sha256 = CipherSuite::Aes128GcmSha256;  // Initial packets: always SHA-256
  if (auto ok = hkdfExtractSha256(s.initial, dcid, isV2(version) ? kInitialSaltV2 : kInitialSaltV1);
      !ok) {
    return ok.error();
  }
  if (auto ok = hkdfExpandLabel(s.client, sha256, s.initial, "client in"); !ok) return ok.error();
  if (auto ok = hkdfExpandLabel(s.server, sha256, s.initial, "server in"); !ok) return ok.error();
  return s;
}

Result<PacketKeys> derivePacketKeys(uint32_t version, CipherSuite s,
                                    std::span<const uint8_t> secret) {
  PacketKeys k{Bytes(keyLength(s)), Bytes(kIvLen), Bytes(keyLength(s))};
  if (auto ok = hkdfExpandLabel(k.key, s, secret, labelFor(version, Label::Key)); !ok) {
    return ok.error();
  }
  if (auto ok = hkdfExpandLabel(k.iv, s, secret, labelFor(version, Label::Iv)); !ok) {
    return ok.error();
  }
  if (auto ok = hkdfExpandLabel(k.hp, s, secret, labelFor(version, Label::Hp)); !ok) {
    return ok.error();
  }
  return k;
}

Result<Bytes> deriveNextSecret(uint32_t version, CipherSuite s, std::span<const uint8_t> secret) {
  Bytes next(secret.size());
  if (auto ok = hkdfExpandLabel(next, s, secret, labelFor(version, Label::Ku)); !ok) {
    return ok.error();
  }
  return next;
}

Result<std::array<uint8_t, 16>> retryIntegrityTag(uint32_t version, std::span<const uint8_t> odcid,
                                                  std::span<const uint8_t> retryWithoutTag) {
  if (!isV1(version) && !isV2(version)) return sharedError("no Retry key for this version");
  if (odcid.size() > NGTCP2_MAX_CIDLEN) return sharedError("odcid too long");
  // The pseudo-packet: ODCID length, ODCID, the Retry without its tag; sealed as AAD only.
  Bytes pseudo;
  pseudo.reserve(1 + odcid.size() + retryWithoutTag.size());
  pseudo.push_back(static_cast<uint8_t>(odcid.size()));
  pseudo.insert(pseudo.end(), odcid.begin(), odcid.end());
  pseudo.insert(pseudo.end(), retryWithoutTag.begin(), retryWithoutTag.end());
  auto key = bytesOf(isV2(version) ? std::string_view(NGTCP2_RETRY_KEY_V2, 16)
                                   : std::string_view(NGTCP2_RETRY_KEY_V1, 16));
  auto nonce = bytesOf(isV2(version) ? std::string_view(NGTCP2_RETRY_NONCE_V2, kIvLen)
                                     : std::string_view(NGTCP2_RETRY_NONCE_V1, kIvLen));
  auto sealed = aeadSeal(CipherSuite::Aes128GcmSha256, key, nonce, {}, pseudo);
  if (!sealed) return sealed.error();
  if (sealed->size() != 16) return sharedError("retry integrity tag length");
  std::array<uint8_t, 16> tag{};
  std::memcpy(tag.data(), sealed->data(), tag.size());
  return tag;
}

CryptoCounters& cryptoCounters() {
  static CryptoCounters c;
  return c;
}

Result<void> generateStatelessResetToken(std::span<uint8_t, kStatelessResetTokenLen> token,
                                         std::span<const uint8_t> secret, const ngtcp2_cid& cid) {
  if (secret.size() < kTokenSecretMinLen) return sharedError("reset secret too short");
  return hkdfSha256(token, secret, std::span<const uint8_t>(cid.data, cid.datalen),
                    bytesOf(kResetInfo));
}

Result<size_t> generateRetryToken(std::span<uint8_t, kMaxRetryTokenLen> token,
                                  std::span<const uint8_t> secret, uint32_t version,
                                  const sockaddr* remote, socklen_t remotelen,
                                  const ngtcp2_cid& retryScid, const ngtcp2_cid& odcid,
                                  ngtcp2_tstamp ts) {
  if (odcid.datalen > NGTCP2_MAX_CIDLEN || retryScid.datalen > NGTCP2_MAX_CIDLEN) {
    return sharedError("CID too long");
  }
  uint8_t plain[kTsLen + 1 + NGTCP2_MAX_CIDLEN] = {};
  putTs(plain, ts);
  plain[kTsLen] = static_cast<uint8_t>(odcid.datalen);
  std::memcpy(plain + kTsLen + 1, odcid.data, odcid.datalen);
  uint8_t aad[4 + kMaxAddrLen + NGTCP2_MAX_CIDLEN];
  size_t aadlen = retryAad(aad, version, remote, remotelen, retryScid);
  if (aadlen == 0) return sharedError("unsupported address family");
  return sealToken(token, kRetryTokenMagic, kRetryTokenInfo, secret, plain,
                   std::span<const uint8_t>(aad, aadlen));
}

Result<void> verifyRetryToken(ngtcp2_cid* odcid, std::span<const uint8_t> token,
                              std::span<const uint8_t> secret, uint32_t version,
                              const sockaddr* remote, socklen_t remotelen, const ngtcp2_cid& dcid,
                              ngtcp2_duration timeout, ngtcp2_tstamp ts) {
  if (dcid.datalen > NGTCP2_MAX_CIDLEN) return tokenRejected("DCID too long");
  uint8_t aad[4 + kMaxAddrLen + NGTCP2_MAX_CIDLEN];
  size_t aadlen = retryAad(aad, version, remote, remotelen, dcid);
  if (aadlen == 0) return tokenRejected("unsupported address family");
  auto plain = openToken(kTsLen + 1 + NGTCP2_MAX_CIDLEN, kRetryTokenMagic, kRetryTokenInfo, secret,
                         token, std::span<const uint8_t>(aad, aadlen));
  if (!plain) return plain.error();
  size_t cidlen = (*plain)[kTsLen];
  if (cidlen > NGTCP2_MAX_CIDLEN) return tokenRejected("bad original DCID length");
  if (auto age = checkAge(getTs(plain->data()), timeout, ts); !age) return age;
  ngtcp2_cid_init(odcid, plain->data() + kTsLen + 1, cidlen);
  return {};
}

Result<size_t> generateRegularToken(std::span<uint8_t, kMaxRegularTokenLen> token,
                                    std::span<const uint8_t> secret, const sockaddr* remote,
                                    socklen_t remotelen, ngtcp2_tstamp ts) {
  uint8_t plain[kTsLen];
  putTs(plain, ts);
  uint8_t aad[kMaxAddrLen];
  size_t aadlen = addrBytes(aad, remote, remotelen, false);  // NAT rebinding keeps the IP only
  if (aadlen == 0) return sharedError("unsupported address family");
  return sealToken(token, kRegularTokenMagic, kRegularTokenInfo, secret, plain,
                   std::span<const uint8_t>(aad, aadlen));
}

Result<void> verifyRegularToken(std::span<const uint8_t> token, std::span<const uint8_t> secret,
                                const sockaddr* remote, socklen_t remotelen,
                                ngtcp2_duration timeout, ngtcp2_tstamp ts) {
  uint8_t aad[kMaxAddrLen];
  size_t aadlen = addrBytes(aad, remote, remotelen, false);
  if (aadlen == 0) return tokenRejected("unsupported address family");
  auto plain = openToken(kTsLen, kRegularTokenMagic, kRegularTokenInfo, secret, token,
                         std::span<const uint8_t>(aad, aadlen));
  if (!plain) return plain.error();
  return checkAge(getTs(plain->data()), timeout, ts);
}

Result<size_t> writeVersionNegotiation(std::span<uint8_t> dest, uint8_t unusedRandom,
                                       std::span<const uint8_t> dcid, std::span<const uint8_t> scid,
                                       std::span<const uint32_t> versions) {
  ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(
      dest.data(), dest.size(), unusedRandom, dcid.data(), dcid.size(), scid.data(), scid.size(),
      versions.data(), versions.size());
  if (n < 0) {
    return sharedError(std::string("write Version Negotiation: ") +
                       ngtcp2_strerror(static_cast<int>(n)));
  }
  return static_cast<size_t>(n);
}

}  // namespace ugate::quic

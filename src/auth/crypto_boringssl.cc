// The crypto backend on BoringSSL: keys, digests, ES256, X.509 creation, parsing and chain
// verification. The only file of src/auth besides tls_boringssl.cc that calls BoringSSL.
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <set>

#include "auth/crypto.h"
#include "auth/encoding.h"
#include "auth/peer_verifier.h"

namespace ugate::auth {

struct PrivateKey::Impl {
  bssl::UniquePtr<EVP_PKEY> pkey;
  Bytes pub;
};

struct PeerVerifier::Impl {
  bssl::UniquePtr<X509_STORE> store;
  size_t roots{0};
  std::set<std::string> pinned;
};

namespace {

std::string lastSslError() {
  uint32_t e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

Error cryptoError(std::string what) {
  return makeError(Errc::InvalidArgument, what + ": " + lastSslError());
}

const EC_KEY* p256Key(const EVP_PKEY* pkey) {
  if (pkey == nullptr || EVP_PKEY_id(pkey) != EVP_PKEY_EC) return nullptr;
  const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(pkey);
  if (ec == nullptr || EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) != NID_X9_62_prime256v1) {
    return nullptr;
  }
  return ec;
}

Bytes pointBytes(const EC_KEY* ec) {
  Bytes out(kPublicKeyLen);
  size_t n = EC_POINT_point2oct(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec),
                                POINT_CONVERSION_UNCOMPRESSED, out.data(), out.size(), nullptr);
  if (n != kPublicKeyLen) return {};
  return out;
}

bssl::UniquePtr<EVP_PKEY> pkeyFromPoint(std::span<const uint8_t> pub) {
  if (pub.size() != kPublicKeyLen || pub[0] != 0x04) return nullptr;
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  bssl::UniquePtr<EC_POINT> pt(EC_POINT_new(EC_KEY_get0_group(ec.get())));
  if (!ec || !pt ||
      !EC_POINT_oct2point(EC_KEY_get0_group(ec.get()), pt.get(), pub.data(), pub.size(), nullptr) ||
      !EC_KEY_set_public_key(ec.get(), pt.get())) {
    ERR_clear_error();
    return nullptr;
  }
  bssl::UniquePtr<EVP_PKEY> pkey(EVP_PKEY_new());
  if (!pkey || !EVP_PKEY_set1_EC_KEY(pkey.get(), ec.get())) return nullptr;
  return pkey;
}

Result<PrivateKey> wrapKey(bssl::UniquePtr<EVP_PKEY> pkey);

time_t toTimeT(SystemTime t) { return std::chrono::system_clock::to_time_t(t); }

SystemTime fromAsn1Time(const ASN1_TIME* t) {
  bssl::UniquePtr<ASN1_TIME> epoch(ASN1_TIME_set(nullptr, 0));
  int days = 0;
  int secs = 0;
  if (!epoch || !ASN1_TIME_diff(&days, &secs, epoch.get(), t)) return {};
  return std::chrono::system_clock::from_time_t(0) +
         std::chrono::seconds(int64_t{days} * 86400 + secs);
}

std::string nameOneLine(const X509_NAME* n) {
  char buf[512];
  if (X509_NAME_oneline(n, buf, sizeof(buf)) == nullptr) return {};
  return buf;
}

// validName: names end up in a config-style extension string, so they must not carry separators.
bool validName(std::string_view s, bool allowEmpty) {
  if (s.empty()) return allowEmpty;
  if (s.size() > 253) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
  });
}

bool addExt(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  bssl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value.c_str()));
  return ext && X509_add_ext(cert, ext.get(), -1);
}

// buildCert fills and signs a certificate for subjectKey, issued by issuer (nullptr: self-signed).
Result<std::string> buildCert(EVP_PKEY* subjectKey, const CertSpec& spec, EVP_PKEY* signKey,
                              X509* issuer) {
  if (!validName(spec.name, false) || !validName(spec.trustDomain, true) ||
      !validName(spec.ns, false)) {
    return makeError(Errc::InvalidArgument,
                     "certificate names may only hold letters, digits, '-', '.', '_': name='" +
                         spec.name + "' trustDomain='" + spec.trustDomain + "' namespace='" +
                         spec.ns + "'");
  }
  if (spec.validity.count() <= 0) {
    return makeError(Errc::InvalidArgument, "certificate validity must be positive");
  }
  bssl::UniquePtr<X509> x(X509_new());
  if (!x || !X509_set_version(x.get(), X509_VERSION_3)) return cryptoError("X509_new");

  // serial: 128 random bits, positive (as Go's ugate).
  uint8_t serialBytes[16];
  RAND_bytes(serialBytes, sizeof(serialBytes));
  serialBytes[0] &= 0x7f;
  serialBytes[0] |= 0x01;
  bssl::UniquePtr<BIGNUM> bn(BN_bin2bn(serialBytes, sizeof(serialBytes), nullptr));
  bssl::UniquePtr<ASN1_INTEGER> serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial || !X509_set_serialNumber(x.get(), serial.get())) return cryptoError("serial");

  std::string cn = spec.isCa ? spec.name : certDnsName(spec);
  bssl::UniquePtr<X509_NAME> name(X509_NAME_new());
  if (!spec.trustDomain.empty()) {
    X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                               reinterpret_cast<const uint8_t*>(spec.trustDomain.data()),
                               static_cast<int>(spec.trustDomain.size()), -1, 0);
  }
  if (!X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const uint8_t*>(cn.data()),
                                  static_cast<int>(cn.size()), -1, 0) ||
      !X509_set_subject_name(x.get(), name.get())) {
    return cryptoError("subject name");
  }
  if (!X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name.get())) {
    return cryptoError("issuer name");
  }

  // Validity counts from now (or the given start); the default start is backdated an hour for
  // clock skew without eating into the requested lifetime.
  const SystemTime start = spec.notBefore == SystemTime{} ? std::chrono::system_clock::now() : spec.notBefore;
  SystemTime nb = spec.notBefore == SystemTime{} ? start - std::chrono::hours(1) : start;
  SystemTime na = start + spec.validity;
  bssl::UniquePtr<ASN1_TIME> t1(ASN1_TIME_set(nullptr, toTimeT(nb)));
  bssl::UniquePtr<ASN1_TIME> t2(ASN1_TIME_set(nullptr, toTimeT(na)));
  if (!t1 || !t2 || !X509_set1_notBefore(x.get(), t1.get()) ||
      !X509_set1_notAfter(x.get(), t2.get()) || !X509_set_pubkey(x.get(), subjectKey)) {
    return cryptoError("validity or public key");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : x.get(), x.get(), nullptr, nullptr, 0);
  bool ok = true;
  std::string spiffe = certSpiffeId(spec);
  if (spec.isCa) {
    ok = addExt(x.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE") &&
         addExt(x.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    if (ok && !spec.trustDomain.empty()) {
      ok = addExt(x.get(), &ctx, NID_subject_alt_name, "URI:spiffe://" + spec.trustDomain);
    }
  } else {
    std::string san = "DNS:" + certDnsName(spec);
    if (!spiffe.empty()) san += ",URI:" + spiffe;
    ok = addExt(x.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE") &&
         addExt(x.get(), &ctx, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
         addExt(x.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth") &&
         addExt(x.get(), &ctx, NID_subject_alt_name, san);
  }
  ok = ok && addExt(x.get(), &ctx, NID_subject_key_identifier, "hash");
  if (ok && issuer != nullptr) {
    ok = addExt(x.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  }
  if (!ok) return cryptoError("certificate extensions");
  if (!X509_sign(x.get(), signKey, EVP_sha256())) return cryptoError("X509_sign");

  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), x.get())) return cryptoError("PEM_write_bio_X509");
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

bssl::UniquePtr<X509> x509FromPem(std::string_view pem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  bssl::UniquePtr<X509> x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return x;
}

bssl::UniquePtr<X509> x509FromDer(std::span<const uint8_t> der) {
  const uint8_t* p = der.data();
  bssl::UniquePtr<X509> x(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  ERR_clear_error();
  return x;
}

CertInfo infoOf(X509* x) {
  CertInfo info;
  info.subject = nameOneLine(X509_get_subject_name(x));
  info.issuer = nameOneLine(X509_get_issuer_name(x));
  info.notBefore = fromAsn1Time(X509_get0_notBefore(x));
  info.notAfter = fromAsn1Time(X509_get0_notAfter(x));
  info.isCa = (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
  bssl::UniquePtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
  for (size_t i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_DNS && gn->type != GEN_URI) continue;
    const ASN1_IA5STRING* s = gn->type == GEN_DNS ? gn->d.dNSName : gn->d.uniformResourceIdentifier;
    std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                  static_cast<size_t>(ASN1_STRING_length(s)));
    (gn->type == GEN_DNS ? info.dnsSans : info.uriSans).push_back(std::move(v));
  }
  bssl::UniquePtr<EVP_PKEY> pk(X509_get_pubkey(x));
  if (const EC_KEY* ec = p256Key(pk.get())) info.publicKey = pointBytes(ec);
  info.selfSigned = X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0 && pk &&
                    X509_verify(x, pk.get()) == 1;
  ERR_clear_error();
  return info;
}

Result<PrivateKey> wrapKey(bssl::UniquePtr<EVP_PKEY> pkey) {
  const EC_KEY* ec = p256Key(pkey.get());
  if (ec == nullptr) return makeError(Errc::NotSupported, "only EC P-256 keys are supported");
  auto impl = std::make_shared<PrivateKey::Impl>();
  impl->pub = pointBytes(ec);
  impl->pkey = std::move(pkey);
  if (impl->pub.empty()) return makeError(Errc::InvalidArgument, "cannot encode the public key");
  return PrivateKey(std::shared_ptr<const PrivateKey::Impl>(std::move(impl)));
}

}  // namespace

// ---- keys and digests

Result<PrivateKey> PrivateKey::generate() {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  if (!ec || !EC_KEY_generate_key(ec.get())) return cryptoError("EC_KEY_generate_key");
  bssl::UniquePtr<EVP_PKEY> pkey(EVP_PKEY_new());
  if (!pkey || !EVP_PKEY_set1_EC_KEY(pkey.get(), ec.get())) return cryptoError("EVP_PKEY");
  return wrapKey(std::move(pkey));
}

Result<PrivateKey> PrivateKey::fromPem(std::string_view pem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  bssl::UniquePtr<EVP_PKEY> pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) return cryptoError("no private key in PEM");
  return wrapKey(std::move(pkey));
}

std::string PrivateKey::toPem() const {
  if (!impl_) return {};
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PKCS8PrivateKey(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0, nullptr,
                                     nullptr)) {
    ERR_clear_error();
    return {};
  }
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

const Bytes& PrivateKey::publicKey() const {
  static const Bytes kEmpty;
  return impl_ ? impl_->pub : kEmpty;
}

std::string PrivateKey::nodeId() const {
  return impl_ ? nodeIdFromPublicKey(impl_->pub) : std::string();
}

Result<Bytes> PrivateKey::signEs256(std::span<const uint8_t> data) const {
  if (!impl_) return makeError(Errc::InvalidArgument, "no key");
  auto digest = sha256(data);
  bssl::UniquePtr<ECDSA_SIG> sig(
      ECDSA_do_sign(digest.data(), digest.size(), EVP_PKEY_get0_EC_KEY(impl_->pkey.get())));
  if (!sig) return cryptoError("ECDSA_do_sign");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  Bytes out(64);
  if (!BN_bn2bin_padded(out.data(), 32, r) || !BN_bn2bin_padded(out.data() + 32, 32, s)) {
    return cryptoError("signature encoding");
  }
  return out;
}

std::array<uint8_t, 32> sha256(std::span<const uint8_t> data) {
  std::array<uint8_t, 32> out{};
  SHA256(data.data(), data.size(), out.data());
  return out;
}

bool isP256PublicKey(std::span<const uint8_t> key) { return pkeyFromPoint(key) != nullptr; }

bool verifyEs256(std::span<const uint8_t> publicKey, std::span<const uint8_t> data,
                 std::span<const uint8_t> signature) {
  if (signature.size() != 64) return false;
  bssl::UniquePtr<EVP_PKEY> pkey = pkeyFromPoint(publicKey);
  if (!pkey) return false;
  bssl::UniquePtr<ECDSA_SIG> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(signature.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn(signature.data() + 32, 32, nullptr);
  if (!sig || !r || !s || !ECDSA_SIG_set0(sig.get(), r, s)) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  auto digest = sha256(data);
  bool ok = ECDSA_do_verify(digest.data(), digest.size(), sig.get(),
                            EVP_PKEY_get0_EC_KEY(pkey.get())) == 1;
  ERR_clear_error();
  return ok;
}

std::string nodeIdFromPublicKey(std::span<const uint8_t> publicKey) {
  auto d = sha256(publicKey);
  return base32Encode(d);
}

// ---- certificates

std::string certDnsName(const CertSpec& spec) {
  return spec.trustDomain.empty() ? spec.name : spec.name + "." + spec.trustDomain;
}

std::string certSpiffeId(const CertSpec& spec) {
  if (spec.trustDomain.empty()) return {};
  return "spiffe://" + spec.trustDomain + "/ns/" + spec.ns + "/sa/" + spec.name;
}

Result<std::string> createSelfSignedCert(const PrivateKey& key, const CertSpec& spec) {
  if (!key.valid()) return makeError(Errc::InvalidArgument, "no key");
  return buildCert(key.impl()->pkey.get(), spec, key.impl()->pkey.get(), nullptr);
}

Result<std::string> createSignedCert(std::span<const uint8_t> subjectPublicKey, const CertSpec& spec,
                                     const PrivateKey& caKey, std::string_view caCertPem) {
  bssl::UniquePtr<EVP_PKEY> subject = pkeyFromPoint(subjectPublicKey);
  if (!subject) return makeError(Errc::InvalidArgument, "subject key is not a P-256 point");
  if (!caKey.valid()) return makeError(Errc::InvalidArgument, "no CA key");
  bssl::UniquePtr<X509> ca = x509FromPem(caCertPem);
  if (!ca) return makeError(Errc::InvalidArgument, "no CA certificate in PEM");
  if (!certMatchesKey(caCertPem, caKey)) {
    return makeError(Errc::InvalidArgument, "the CA key does not match the CA certificate");
  }
  return buildCert(subject.get(), spec, caKey.impl()->pkey.get(), ca.get());
}

Result<CertInfo> parseCertPem(std::string_view pem) {
  bssl::UniquePtr<X509> x = x509FromPem(pem);
  if (!x) return makeError(Errc::InvalidArgument, "no certificate in PEM");
  return infoOf(x.get());
}

Result<CertInfo> parseCertDer(std::span<const uint8_t> der) {
  bssl::UniquePtr<X509> x = x509FromDer(der);
  if (!x) return makeError(Errc::InvalidArgument, "unparsable DER certificate");
  return infoOf(x.get());
}

std::vector<std::string> splitPemCerts(std::string_view pem) {
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    size_t b = pem.find(kBegin, pos);
    if (b == std::string_view::npos) break;
    size_t e = pem.find(kEnd, b);
    if (e == std::string_view::npos) break;
    e += kEnd.size();
    out.emplace_back(std::string(pem.substr(b, e - b)) + "\n");
    pos = e;
  }
  return out;
}

bool certMatchesKey(std::string_view certPem, const PrivateKey& key) {
  auto info = parseCertPem(certPem);
  return info && key.valid() && info->publicKey == key.publicKey();
}

// ---- peer verification

PeerIdentity identityFromCert(const CertInfo& info) {
  PeerIdentity id;
  if (!info.publicKey.empty()) id.nodeId = nodeIdFromPublicKey(info.publicKey);
  for (const auto& u : info.uriSans) {
    if (u.rfind("spiffe://", 0) == 0) {
      id.spiffe = u;
      break;
    }
  }
  id.dnsSans = info.dnsSans;
  return id;
}

PeerVerifier::PeerVerifier(PeerVerifyConfig cfg, std::unique_ptr<Impl> impl)
    : cfg_(std::move(cfg)), impl_(std::move(impl)) {}
PeerVerifier::~PeerVerifier() = default;

Result<std::shared_ptr<const PeerVerifier>> PeerVerifier::create(const PeerVerifyConfig& cfg) {
  auto impl = std::make_unique<Impl>();
  impl->store.reset(X509_STORE_new());
  for (const auto& pem : splitPemCerts(cfg.rootsPem)) {
    bssl::UniquePtr<X509> x = x509FromPem(pem);
    if (!x) return makeError(Errc::InvalidArgument, "unparsable certificate in the roots bundle");
    if (!X509_STORE_add_cert(impl->store.get(), x.get())) return cryptoError("X509_STORE_add_cert");
    ++impl->roots;
  }
  if (!cfg.rootsPem.empty() && impl->roots == 0) {
    return makeError(Errc::InvalidArgument, "the roots bundle holds no certificate");
  }
  for (const auto& id : cfg.pinnedIds) {
    if (id.size() != kNodeIdLen) {
      return makeError(Errc::InvalidArgument, "pinned node ID '" + id + "' is not 52 characters");
    }
    impl->pinned.insert(id);
  }
  if (!cfg.trustDomain.empty() && !validName(cfg.trustDomain, false)) {
    return makeError(Errc::InvalidArgument, "bad trust domain '" + cfg.trustDomain + "'");
  }
  return std::make_shared<const PeerVerifier>(cfg, std::move(impl));
}

namespace {
VerifyResult reject(AuthFailure f, std::string detail) {
  VerifyResult r;
  r.failure = f;
  r.detail = std::move(detail);
  return r;
}

std::string fmtTime(SystemTime t) {
  time_t tt = std::chrono::system_clock::to_time_t(t);
  struct tm tmv;
  gmtime_r(&tt, &tmv);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tmv);
  return buf;
}

VerifyResult checkValidity(const CertInfo& info, SystemTime now) {
  if (now > info.notAfter) {
    return reject(AuthFailure::CertExpired, "certificate '" + info.subject + "' expired at " +
                                                fmtTime(info.notAfter));
  }
  if (now < info.notBefore) {
    return reject(AuthFailure::CertNotYetValid, "certificate '" + info.subject +
                                                    "' is not valid before " +
                                                    fmtTime(info.notBefore));
  }
  return {};
}

AuthFailure mapX509Error(int err) {
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return AuthFailure::CertExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return AuthFailure::CertNotYetValid;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_CERT_UNTRUSTED:
      return AuthFailure::UnknownCa;
    default:
      return AuthFailure::BadCert;
  }
}
}  // namespace

VerifyResult PeerVerifier::verify(std::span<const std::string_view> derChain,
                                  SystemTime now) const {
  if (derChain.empty()) return reject(AuthFailure::NoPeerCert, "the peer sent no certificate");
  bssl::UniquePtr<X509> leaf = x509FromDer(asBytes(derChain[0]));
  if (!leaf) return reject(AuthFailure::BadCert, "unparsable peer certificate");
  CertInfo info = infoOf(leaf.get());
  VerifyResult r;
  r.peer = identityFromCert(info);

  bool pinned = !r.peer.nodeId.empty() && impl_->pinned.count(r.peer.nodeId) > 0;
  if (pinned || (cfg_.acceptAny && !r.peer.nodeId.empty())) {
    VerifyResult v = checkValidity(info, now);
    if (!v.ok()) return v;
    return r;
  }
  if (impl_->roots > 0 && !(info.selfSigned && !impl_->pinned.empty())) {
    bssl::UniquePtr<STACK_OF(X509)> untrusted(sk_X509_new_null());
    for (size_t i = 1; i < derChain.size(); ++i) {
      bssl::UniquePtr<X509> c = x509FromDer(asBytes(derChain[i]));
      if (!c) return reject(AuthFailure::BadCert, "unparsable certificate in the peer's chain");
      sk_X509_push(untrusted.get(), c.release());
    }
    // untrusted owns its certificates; free them with the stack.
    struct Free {
      STACK_OF(X509)* s;
      ~Free() {
        while (sk_X509_num(s) > 0) X509_free(sk_X509_pop(s));
      }
    } freeCerts{untrusted.get()};
    bssl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
    if (!ctx || !X509_STORE_CTX_init(ctx.get(), impl_->store.get(), leaf.get(), untrusted.get())) {
      return reject(AuthFailure::BadCert, "X509_STORE_CTX_init: " + lastSslError());
    }
    X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(now));
    if (X509_verify_cert(ctx.get()) != 1) {
      int err = X509_STORE_CTX_get_error(ctx.get());
      ERR_clear_error();
      AuthFailure f = mapX509Error(err);
      std::string detail = std::string(f == AuthFailure::UnknownCa ? "untrusted issuer: " : "") +
                           X509_verify_cert_error_string(err) + " (subject '" +
                           info.subject + "', issuer '" + info.issuer + "')";
      if (f == AuthFailure::CertExpired) detail += ", notAfter " + fmtTime(info.notAfter);
      return reject(f, std::move(detail));
    }
    if (!cfg_.trustDomain.empty()) {
      std::string prefix = "spiffe://" + cfg_.trustDomain + "/";
      if (r.peer.spiffe.rfind(prefix, 0) != 0) {
        return reject(AuthFailure::TrustDomainMismatch,
                      "peer SPIFFE ID '" + r.peer.spiffe + "' is not in trust domain '" +
                          cfg_.trustDomain + "'");
      }
    }
    return r;
  }
  if (!impl_->pinned.empty()) {
    return reject(AuthFailure::PinnedIdMismatch,
                  "peer node ID " + (r.peer.nodeId.empty() ? std::string("(not a P-256 key)")
                                                           : r.peer.nodeId) +
                      " is not in the allowed set");
  }
  return reject(AuthFailure::NoTrustConfigured, "no roots or pinned node IDs configured");
}

}  // namespace ugate::auth

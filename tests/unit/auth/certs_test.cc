// Certificates: self-signed node certs, the mesh CA and the peer verifier, inspected with the
// openssl CLI.
#include <gtest/gtest.h>

#include "auth/crypto.h"
#include "auth/encoding.h"
#include "auth/mesh_ca.h"
#include "auth/peer_verifier.h"
#include "auth_test_util.h"
#include "test_common/test_util.h"

namespace ugate::auth {
namespace {

using namespace std::chrono_literals;
using test::dataPath;
using test::shell;
using test::slurp;
using test::writeFile;

std::string x509Text(const ugate::test::TempDir& dir, const std::string& pem) {
  std::string path = dir.write("cert.pem", pem);
  int st = -1;
  std::string out = shell("openssl x509 -in " + path + " -text -noout", &st);
  EXPECT_EQ(st, 0) << out;
  return out;
}

// derOf converts the PEM certificates into DER strings (the form TLS hands to the verifier).
std::vector<std::string> derOf(const std::string& pem) {
  std::vector<std::string> out;
  for (const auto& c : splitPemCerts(pem)) {
    std::string b64;
    for (const auto& line : {c}) {
      size_t a = line.find('\n') + 1;
      size_t b = line.find("-----END");
      b64 = line.substr(a, b - a);
    }
    out.push_back(asString(*base64Decode(b64)));
  }
  return out;
}

VerifyResult verifyPem(const PeerVerifier& v, const std::string& chainPem,
                       SystemTime now = std::chrono::system_clock::now()) {
  auto ders = derOf(chainPem);
  std::vector<std::string_view> views(ders.begin(), ders.end());
  return v.verify(views, now);
}

class CertsTest : public testing::Test {
 protected:
  void SetUp() override {
    CaInitOptions o;
    o.dir = tmp_.path() + "/ca";
    o.trustDomain = "example.org";
    auto ca = initMeshCa(o);
    ASSERT_TRUE(ca) << ca.error().detail;
    ca_ = *ca;
  }
  ugate::test::TempDir tmp_;
  MeshCa ca_;
};

TEST_F(CertsTest, SelfSignedNodeCertificateAsOpensslSeesIt) {
  auto key = PrivateKey::fromPem(slurp(dataPath("node-key.pem")));
  CertSpec spec;
  spec.name = "node1";
  spec.trustDomain = "example.org";
  spec.ns = "prod";
  spec.validity = 48h;
  auto pem = createSelfSignedCert(*key, spec);
  ASSERT_TRUE(pem) << pem.error().detail;
  std::string text = x509Text(tmp_, *pem);
  EXPECT_NE(text.find("DNS:node1.example.org"), std::string::npos) << text;
  EXPECT_NE(text.find("URI:spiffe://example.org/ns/prod/sa/node1"), std::string::npos) << text;
  EXPECT_NE(text.find("ecdsa-with-SHA256"), std::string::npos);
  EXPECT_NE(text.find("ASN1 OID: prime256v1"), std::string::npos);
  EXPECT_NE(text.find("X509v3 Key Usage: critical"), std::string::npos);
  EXPECT_NE(text.find("Digital Signature"), std::string::npos);
  EXPECT_NE(text.find("TLS Web Server Authentication, TLS Web Client Authentication"),
            std::string::npos);
  EXPECT_NE(text.find("CA:FALSE"), std::string::npos);
  EXPECT_NE(text.find("Subject: O = example.org, CN = node1.example.org"), std::string::npos) << text;

  // Validity: 48 h from now (checked by openssl's -checkend), the start backdated one hour for
  // clock skew.
  std::string path = tmp_.write("n.pem", *pem);
  int st = -1;
  shell("openssl x509 -in " + path + " -noout -checkend " + std::to_string(48 * 3600 - 60), &st);
  EXPECT_EQ(st, 0);
  shell("openssl x509 -in " + path + " -noout -checkend " + std::to_string(48 * 3600 + 60), &st);
  EXPECT_EQ(st, 1);
  auto info = parseCertPem(*pem);
  ASSERT_TRUE(info);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(info->notAfter - info->notBefore), 49h);
  EXPECT_TRUE(info->selfSigned);
  EXPECT_FALSE(info->isCa);
  EXPECT_EQ(nodeIdFromPublicKey(info->publicKey), key->nodeId());
  // The SPKI in the certificate is the same key openssl derives from key.pem.
  std::string fromCert = shell("openssl x509 -in " + path + " -noout -pubkey | openssl sha256");
  std::string fromKey = shell("openssl ec -in " + dataPath("node-key.pem") + " -pubout 2>/dev/null | openssl sha256");
  EXPECT_EQ(fromCert, fromKey);
}

TEST_F(CertsTest, NoTrustDomainMeansDnsNameOnly) {
  auto key = PrivateKey::generate();
  CertSpec spec;
  spec.name = "solo";
  auto pem = createSelfSignedCert(*key, spec);
  ASSERT_TRUE(pem);
  auto info = parseCertPem(*pem);
  EXPECT_EQ(info->dnsSans, std::vector<std::string>{"solo"});
  EXPECT_TRUE(info->uriSans.empty());
  spec.name = "bad,name";
  EXPECT_FALSE(createSelfSignedCert(*key, spec));
}

TEST_F(CertsTest, MeshCaAndIssuedCertificateAsOpensslSeesThem) {
  std::string caText = x509Text(tmp_, ca_.certPem);
  EXPECT_NE(caText.find("CA:TRUE"), std::string::npos) << caText;
  EXPECT_NE(caText.find("Certificate Sign, CRL Sign"), std::string::npos) << caText;
  EXPECT_NE(caText.find("URI:spiffe://example.org"), std::string::npos);
  EXPECT_EQ(test::fileMode(tmp_.path() + "/ca/ca-key.pem"), 0600u);
  EXPECT_EQ(test::fileMode(tmp_.path() + "/ca"), 0700u);

  auto loaded = loadMeshCa(tmp_.path() + "/ca");
  ASSERT_TRUE(loaded) << loaded.error().detail;
  EXPECT_EQ(loaded->trustDomain, "example.org");
  IssueOptions io;
  io.name = "node2";
  io.ns = "edge";
  io.validity = 24h * 30;
  auto creds = issueNodeCredentials(*loaded, io);
  ASSERT_TRUE(creds) << creds.error().detail;
  auto certs = splitPemCerts(creds->certChainPem);
  ASSERT_EQ(certs.size(), 2u);
  EXPECT_EQ(certs[1], ca_.certPem);
  std::string text = x509Text(tmp_, certs[0]);
  EXPECT_NE(text.find("DNS:node2.example.org"), std::string::npos) << text;
  EXPECT_NE(text.find("URI:spiffe://example.org/ns/edge/sa/node2"), std::string::npos) << text;
  EXPECT_NE(text.find("Issuer: O = example.org, CN = ugate-mesh-ca"), std::string::npos) << text;
  EXPECT_NE(text.find("X509v3 Authority Key Identifier"), std::string::npos);

  std::string caPath = tmp_.write("ca.pem", ca_.certPem);
  std::string leafPath = tmp_.write("leaf.pem", certs[0]);
  int st = -1;
  std::string out = shell("openssl verify -purpose sslclient -CAfile " + caPath + " " + leafPath, &st);
  EXPECT_EQ(st, 0) << out;
  out = shell("openssl verify -purpose sslserver -CAfile " + caPath + " " + leafPath, &st);
  EXPECT_EQ(st, 0) << out;

  // A second init into the same directory refuses to overwrite the CA.
  CaInitOptions again;
  again.dir = tmp_.path() + "/ca";
  auto r = initMeshCa(again);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::AlreadyExists);
}

TEST_F(CertsTest, VerifierByRootsWithTrustDomain) {
  IssueOptions io;
  io.name = "n1";
  auto good = issueNodeCredentials(ca_, io);
  ASSERT_TRUE(good);
  PeerVerifyConfig cfg;
  cfg.rootsPem = ca_.certPem;
  cfg.trustDomain = "example.org";
  auto v = PeerVerifier::create(cfg);
  ASSERT_TRUE(v) << v.error().detail;
  auto r = verifyPem(**v, good->certChainPem);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(r.peer.nodeId, good->nodeId());
  EXPECT_EQ(r.peer.spiffe, "spiffe://example.org/ns/default/sa/n1");
  EXPECT_EQ(r.peer.dnsSans, std::vector<std::string>{"n1.example.org"});
  // Leaf only (the root is not needed in the chain).
  EXPECT_TRUE(verifyPem(**v, splitPemCerts(good->certChainPem)[0]).ok());

  // Another CA: unknown_ca.
  CaInitOptions o2;
  o2.dir = tmp_.path() + "/ca2";
  o2.trustDomain = "example.org";
  auto ca2 = initMeshCa(o2);
  auto stranger = issueNodeCredentials(*ca2, io);
  auto bad = verifyPem(**v, stranger->certChainPem);
  EXPECT_EQ(bad.failure, AuthFailure::UnknownCa) << bad.detail;
  // Self-signed: unknown_ca too.
  CertSpec spec;
  spec.name = "n1";
  spec.trustDomain = "example.org";
  auto self = createSelfSignedCert(good->key, spec);
  EXPECT_EQ(verifyPem(**v, *self).failure, AuthFailure::UnknownCa);

  // Expired and not yet valid.
  io.notBefore = std::chrono::system_clock::now() - 24h * 10;
  io.validity = 24h;
  auto expired = issueNodeCredentials(ca_, io);
  auto e = verifyPem(**v, expired->certChainPem);
  EXPECT_EQ(e.failure, AuthFailure::CertExpired) << e.detail;
  EXPECT_NE(e.detail.find("expired"), std::string::npos) << e.detail;
  io.notBefore = std::chrono::system_clock::now() + 24h;
  auto future = issueNodeCredentials(ca_, io);
  EXPECT_EQ(verifyPem(**v, future->certChainPem).failure, AuthFailure::CertNotYetValid);

  // Another trust domain under the same CA.
  io = IssueOptions{};
  io.name = "n3";
  io.trustDomain = "other.org";
  auto foreign = issueNodeCredentials(ca_, io);
  auto td = verifyPem(**v, foreign->certChainPem);
  EXPECT_EQ(td.failure, AuthFailure::TrustDomainMismatch) << td.detail;
  EXPECT_NE(td.detail.find("spiffe://other.org/ns/default/sa/n3"), std::string::npos);
}

TEST_F(CertsTest, VerifierByPinnedIds) {
  auto a = PrivateKey::generate();
  auto b = PrivateKey::generate();
  CertSpec spec;
  spec.name = "a";
  auto certA = createSelfSignedCert(*a, spec);
  PeerVerifyConfig cfg;
  cfg.pinnedIds = {a->nodeId()};
  auto v = PeerVerifier::create(cfg);
  ASSERT_TRUE(v);
  auto ok = verifyPem(**v, *certA);
  ASSERT_TRUE(ok.ok()) << ok.detail;
  EXPECT_EQ(ok.peer.nodeId, a->nodeId());

  spec.name = "b";
  auto certB = createSelfSignedCert(*b, spec);
  auto no = verifyPem(**v, *certB);
  EXPECT_EQ(no.failure, AuthFailure::PinnedIdMismatch);
  EXPECT_NE(no.detail.find(b->nodeId()), std::string::npos) << no.detail;

  // Pinned but expired: expired.
  spec.name = "a";
  spec.notBefore = std::chrono::system_clock::now() - 48h;
  spec.validity = 24h;
  auto old = createSelfSignedCert(*a, spec);
  EXPECT_EQ(verifyPem(**v, *old).failure, AuthFailure::CertExpired);

  // With roots too: a CA-issued peer passes by roots, a self-signed stranger is a pin mismatch.
  cfg.rootsPem = ca_.certPem;
  auto both = PeerVerifier::create(cfg);
  IssueOptions io;
  io.name = "c";
  auto issued = issueNodeCredentials(ca_, io);
  EXPECT_TRUE(verifyPem(**both, issued->certChainPem).ok());
  EXPECT_EQ(verifyPem(**both, *certB).failure, AuthFailure::PinnedIdMismatch);

  EXPECT_FALSE(PeerVerifier::create(PeerVerifyConfig{.pinnedIds = {"short"}}));
  auto none = PeerVerifier::create(PeerVerifyConfig{});
  EXPECT_EQ(verifyPem(**none, *certA).failure, AuthFailure::NoTrustConfigured);
  EXPECT_EQ(verifyPem(**none, "").failure, AuthFailure::NoPeerCert);
}

TEST_F(CertsTest, FailureReasonsAreDistinct) {
  std::set<std::string_view> seen;
  for (int i = 0; i < static_cast<int>(AuthFailure::Count); ++i) {
    EXPECT_TRUE(seen.insert(authFailureReason(static_cast<AuthFailure>(i))).second) << i;
  }
}

}  // namespace
}  // namespace ugate::auth

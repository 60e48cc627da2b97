// Node identity: ID derivation cross-checked with the openssl CLI, creation on first use with safe
// modes, refusal of loose key permissions, kubeconfig and Istio layouts.
#include "auth/identity.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "auth/encoding.h"
#include "auth_test_util.h"
#include "test_common/test_util.h"

namespace ugate::auth {
namespace {

using test::dataPath;
using test::fileMode;
using test::shell;
using test::slurp;
using test::writeFile;

// opensslNodeId derives the ID of a PEM key with the openssl CLI and coreutils only.
std::string opensslNodeId(const std::string& keyPath) {
  std::string cmd = "openssl ec -in " + keyPath +
                    " -pubout -outform DER -conv_form uncompressed 2>/dev/null | tail -c 65 | "
                    "openssl dgst -sha256 -binary | base32 -w0 | tr -d '='";
  int st = -1;
  std::string out = shell(cmd, &st);
  EXPECT_EQ(st, 0) << out;
  return out;
}

TEST(IdentityTest, NodeIdOfFixedKeyMatchesCommittedAndOpensslCli) {
  std::string committed = slurp(dataPath("node-key.id"));
  ASSERT_EQ(committed.size(), kNodeIdLen);
  for (const char* f : {"node-key.pem", "node-key-pkcs8.pem"}) {
    auto key = PrivateKey::fromPem(slurp(dataPath(f)));
    ASSERT_TRUE(key) << f << ": " << key.error().detail;
    EXPECT_EQ(key->publicKey().size(), kPublicKeyLen);
    EXPECT_EQ(key->publicKey()[0], 0x04);
    EXPECT_EQ(key->nodeId(), committed) << f;
  }
  EXPECT_EQ(opensslNodeId(dataPath("node-key.pem")), committed);
}

TEST(IdentityTest, GeneratedKeyIdMatchesOpensslCli) {
  ugate::test::TempDir dir;
  auto key = PrivateKey::generate();
  ASSERT_TRUE(key);
  writeFile(dir.path() + "/k.pem", key->toPem(), 0600);
  std::string id = key->nodeId();
  EXPECT_EQ(id.size(), kNodeIdLen);
  EXPECT_EQ(id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), std::string::npos);
  EXPECT_EQ(opensslNodeId(dir.path() + "/k.pem"), id);
  // PEM round trip keeps the key.
  EXPECT_EQ(PrivateKey::fromPem(key->toPem())->nodeId(), id);
}

TEST(IdentityTest, RejectsNonP256Keys) {
  ugate::test::TempDir dir;
  shell("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out " + dir.path() + "/rsa.pem");
  auto rsa = PrivateKey::fromPem(slurp(dir.path() + "/rsa.pem"));
  ASSERT_FALSE(rsa);
  EXPECT_EQ(rsa.error().code, Errc::NotSupported);
  shell("openssl ecparam -name secp384r1 -genkey -noout -out " + dir.path() + "/p384.pem");
  EXPECT_FALSE(PrivateKey::fromPem(slurp(dir.path() + "/p384.pem")));
  EXPECT_FALSE(PrivateKey::fromPem("not a key"));
}

TEST(IdentityTest, CreatedOnFirstUseWithPrivateModesAndStable) {
  ugate::test::TempDir tmp;
  IdentityOptions o;
  o.dataDir = tmp.path() + "/a/data";
  o.name = "node1";
  o.trustDomain = "example.org";
  auto c1 = loadOrCreateIdentity(o);
  ASSERT_TRUE(c1) << c1.error().detail;
  EXPECT_TRUE(c1->created);
  EXPECT_EQ(fileMode(o.dataDir), 0700u);
  EXPECT_EQ(fileMode(o.dataDir + "/kube.json"), 0600u);
  EXPECT_EQ(c1->nodeId().size(), kNodeIdLen);
  auto info = parseCertPem(c1->certChainPem);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->dnsSans, std::vector<std::string>{"node1.example.org"});
  EXPECT_EQ(info->uriSans, std::vector<std::string>{"spiffe://example.org/ns/default/sa/node1"});
  EXPECT_TRUE(info->selfSigned);

  std::string before = slurp(o.dataDir + "/kube.json");
  auto c2 = loadOrCreateIdentity(o);
  ASSERT_TRUE(c2) << c2.error().detail;
  EXPECT_FALSE(c2->created);
  EXPECT_EQ(c2->nodeId(), c1->nodeId());
  EXPECT_EQ(c2->certChainPem, c1->certChainPem);
  EXPECT_EQ(slurp(o.dataDir + "/kube.json"), before);  // nothing rewritten

  // A new name re-issues the self-signed certificate for the same key.
  o.name = "node2";
  auto c3 = loadOrCreateIdentity(o);
  ASSERT_TRUE(c3);
  EXPECT_EQ(c3->nodeId(), c1->nodeId());
  EXPECT_EQ(parseCertPem(c3->certChainPem)->dnsSans[0], "node2.example.org");
}

// --check-config loads the identity in a dry run: nothing is created or rewritten, and what a
// real load would write is said.
TEST(IdentityTest, DryRunWritesNothingAndSaysWhatWouldBeWritten) {
  ugate::test::TempDir tmp;
  IdentityOptions o;
  o.dataDir = tmp.path() + "/a/data";
  o.name = "node1";
  o.dryRun = true;
  auto dry = loadOrCreateIdentity(o);
  ASSERT_TRUE(dry) << dry.error().detail;
  EXPECT_TRUE(dry->created);
  EXPECT_EQ(dry->planned, "would create a new key and self-signed certificate in " + o.dataDir + "/kube.json");
  EXPECT_FALSE(parseCertPem(dry->certChainPem)->dnsSans.empty());  // usable to build TLS contexts
  struct stat st;
  EXPECT_NE(stat((tmp.path() + "/a").c_str(), &st), 0);

  o.dryRun = false;
  auto real = loadOrCreateIdentity(o);
  ASSERT_TRUE(real);
  EXPECT_TRUE(real->planned.empty());
  const std::string before = slurp(o.dataDir + "/kube.json");
  o.dryRun = true;
  auto again = loadOrCreateIdentity(o);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->created);
  EXPECT_TRUE(again->planned.empty());
  EXPECT_EQ(again->nodeId(), real->nodeId());
  o.name = "node2";  // a renamed node's certificate would be re-issued: said, not done
  auto renamed = loadOrCreateIdentity(o);
  ASSERT_TRUE(renamed);
  EXPECT_EQ(renamed->planned, "would re-issue the self-signed certificate in " + o.dataDir + "/kube.json (same key)");
  EXPECT_EQ(slurp(o.dataDir + "/kube.json"), before);

  // A data directory that cannot be created is an error before any key is generated.
  o.dataDir = tmp.path() + "/a/data/kube.json/sub";
  auto blocked = loadOrCreateIdentity(o);
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().detail, tmp.path() + "/a/data/kube.json: exists and is not a directory");
}

TEST(IdentityTest, RenewsSelfSignedCertificateNearExpiry) {
  ugate::test::TempDir tmp;
  IdentityOptions o;
  o.dataDir = tmp.path();
  o.name = "n";
  o.certValidity = std::chrono::hours(24 * 10);
  o.renewBefore = std::chrono::hours(24);
  auto c1 = loadOrCreateIdentity(o);
  ASSERT_TRUE(c1);
  o.renewBefore = std::chrono::hours(24 * 20);  // now the 10-day cert is "about to expire"
  auto c2 = loadOrCreateIdentity(o);
  ASSERT_TRUE(c2);
  EXPECT_NE(c2->certChainPem, c1->certChainPem);
  EXPECT_EQ(c2->nodeId(), c1->nodeId());
}

TEST(IdentityTest, RefusesKeyFilesReadableByOthers) {
  ugate::test::TempDir tmp;
  IdentityOptions o;
  o.dataDir = tmp.path();
  o.name = "n";
  ASSERT_TRUE(loadOrCreateIdentity(o));
  ::chmod((tmp.path() + "/kube.json").c_str(), 0644);
  auto r = loadOrCreateIdentity(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::AuthFailed);
  EXPECT_NE(r.error().detail.find("kube.json"), std::string::npos) << r.error().detail;
  EXPECT_NE(r.error().detail.find("0644"), std::string::npos) << r.error().detail;
  EXPECT_NE(r.error().detail.find("chmod 600"), std::string::npos) << r.error().detail;
  ::chmod((tmp.path() + "/kube.json").c_str(), 0640);
  EXPECT_FALSE(loadOrCreateIdentity(o));
  ::chmod((tmp.path() + "/kube.json").c_str(), 0600);
  EXPECT_TRUE(loadOrCreateIdentity(o));

  // Istio layout: key.pem too.
  ugate::test::TempDir istio;
  writeFile(istio.path() + "/key.pem", slurp(dataPath("node-key.pem")), 0604);
  auto key = PrivateKey::fromPem(slurp(dataPath("node-key.pem")));
  CertSpec spec;
  spec.name = "x";
  writeFile(istio.path() + "/cert-chain.pem", *createSelfSignedCert(*key, spec), 0644);
  auto r2 = loadIstioDir(istio.path());
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().detail.find("key.pem"), std::string::npos);
  ::chmod((istio.path() + "/key.pem").c_str(), 0400);
  EXPECT_TRUE(loadIstioDir(istio.path()));
}

TEST(IdentityTest, KubeconfigFormatRoundTrip) {
  auto key = PrivateKey::fromPem(slurp(dataPath("node-key.pem")));
  CertSpec spec;
  spec.name = "k";
  NodeCredentials c;
  c.key = *key;
  c.certChainPem = *createSelfSignedCert(*key, spec);
  c.rootsPem = c.certChainPem;
  std::string json = kubeconfigToJson(c);
  // The Go ugate / kubectl field names.
  for (const char* field : {"\"apiVersion\": \"v1\"", "\"kind\": \"Config\"", "\"users\"",
                            "\"client-certificate-data\"", "\"client-key-data\"",
                            "\"certificate-authority-data\"", "\"current-context\": \"default\""}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << "\n" << json;
  }
  EXPECT_NE(json.find("\"name\": \"" + key->nodeId() + "\""), std::string::npos);
  auto back = kubeconfigFromJson(json);
  ASSERT_TRUE(back) << back.error().detail;
  EXPECT_EQ(back->nodeId(), key->nodeId());
  EXPECT_EQ(back->certChainPem, c.certChainPem);
  EXPECT_EQ(back->rootsPem, c.rootsPem);

  // The data fields are base64 of PEM text.
  size_t p = json.find("\"client-key-data\": \"") + 20;
  std::string b64 = json.substr(p, json.find('"', p) - p);
  EXPECT_EQ(asString(*base64Decode(b64)).rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);

  auto bad = kubeconfigFromJson(R"({"users":[{"name":"x","user":{"client-key-data":"!!"}}]})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().detail.find("users[0].user.client-key-data"), std::string::npos);
  EXPECT_FALSE(kubeconfigFromJson("{"));
}

TEST(IdentityTest, IstioLayoutPreferredOverKubeconfig) {
  ugate::test::TempDir tmp;
  IdentityOptions o;
  o.dataDir = tmp.path();
  o.name = "self";
  auto self = loadOrCreateIdentity(o);
  ASSERT_TRUE(self);
  auto key = PrivateKey::fromPem(slurp(dataPath("node-key.pem")));
  NodeCredentials c;
  c.key = *key;
  CertSpec spec;
  spec.name = "istio";
  c.certChainPem = *createSelfSignedCert(*key, spec);
  c.rootsPem = c.certChainPem;
  ASSERT_TRUE(saveIstioDir(tmp.path(), c));
  EXPECT_EQ(fileMode(tmp.path() + "/key.pem"), 0600u);
  auto loaded = loadOrCreateIdentity(o);
  ASSERT_TRUE(loaded) << loaded.error().detail;
  EXPECT_EQ(loaded->nodeId(), key->nodeId());
  EXPECT_EQ(loaded->rootsPem, c.rootsPem);
  EXPECT_EQ(loaded->source, tmp.path());

  // A certificate for another key is refused.
  writeFile(tmp.path() + "/cert-chain.pem", self->certChainPem, 0644);
  auto mismatch = loadIstioDir(tmp.path());
  ASSERT_FALSE(mismatch);
  EXPECT_NE(mismatch.error().detail.find("does not belong"), std::string::npos);
}

}  // namespace
}  // namespace ugate::auth

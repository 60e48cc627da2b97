// `ugated id` and `ugated ca` as functions: output, files, exit codes.
#include "auth/cli.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "auth/identity.h"
#include "auth_test_util.h"
#include "test_common/test_util.h"

namespace ugate::auth {
namespace {

using test::fileMode;
using test::shell;
using test::writeFile;

struct CliRun {
  int code;
  std::string out;
  std::string err;
  std::string firstLine() const { return out.substr(0, out.find('\n')); }
};

CliRun run(int (*fn)(int, char**), std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  int code = fn(static_cast<int>(args.size()), argv.data());
  CliRun r{code, testing::internal::GetCapturedStdout(), testing::internal::GetCapturedStderr()};
  return r;
}

TEST(CliTest, IdCreatesIdentityAndPrintsStableId) {
  ugate::test::TempDir tmp;
  std::string dir = tmp.path() + "/node";
  CliRun r1 = run(runIdCommand, {"id", "--data-dir", dir});
  ASSERT_EQ(r1.code, 0) << r1.err;
  EXPECT_EQ(r1.firstLine().size(), 52u) << r1.out;
  EXPECT_EQ(fileMode(dir), 0700u);
  EXPECT_EQ(fileMode(dir + "/kube.json"), 0600u);
  CliRun r2 = run(runIdCommand, {"id", "--data-dir=" + dir});
  ASSERT_EQ(r2.code, 0);
  EXPECT_EQ(r2.firstLine(), r1.firstLine());
}

TEST(CliTest, IdCertPrintsTheNodeCertificate) {
  ugate::test::TempDir tmp;
  CliRun r = run(runIdCommand, {"id", "--data-dir", tmp.path(), "--cert", "--name", "gw1",
                             "--trust-domain", "cluster.local"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string pem = r.out.substr(r.out.find('\n') + 1);
  EXPECT_EQ(pem.rfind("-----BEGIN CERTIFICATE-----", 0), 0u) << r.out;
  std::string path = tmp.write("c.pem", pem);
  std::string text = shell("openssl x509 -in " + path + " -text -noout");
  EXPECT_NE(text.find("DNS:gw1.cluster.local"), std::string::npos) << text;
  EXPECT_NE(text.find("URI:spiffe://cluster.local/ns/default/sa/gw1"), std::string::npos) << text;
}

TEST(CliTest, IdUsageErrors) {
  EXPECT_EQ(run(runIdCommand, {"id"}).code, 2);
  CliRun r = run(runIdCommand, {"id", "--data-dir"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--data-dir needs a value"), std::string::npos) << r.err;
  CliRun u = run(runIdCommand, {"id", "--data-dir", "/tmp/x", "--bogus"});
  EXPECT_EQ(u.code, 2);
  EXPECT_NE(u.err.find("unknown argument '--bogus'"), std::string::npos) << u.err;
  EXPECT_NE(u.err.find("usage: ugated id"), std::string::npos);
  EXPECT_EQ(run(runIdCommand, {"id", "--help"}).code, 0);
}

TEST(CliTest, IdRefusesLooseKeyPermissions) {
  ugate::test::TempDir tmp;
  ASSERT_EQ(run(runIdCommand, {"id", "--data-dir", tmp.path()}).code, 0);
  ::chmod((tmp.path() + "/kube.json").c_str(), 0644);
  CliRun r = run(runIdCommand, {"id", "--data-dir", tmp.path()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("refusing private key file"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(CliTest, CaInitIssueAndVerifyWithOpenssl) {
  ugate::test::TempDir tmp;
  std::string ca = tmp.path() + "/ca";
  CliRun init = run(runCaCommand, {"ca", "init", "--dir", ca, "--trust-domain", "example.org"});
  ASSERT_EQ(init.code, 0) << init.err;
  EXPECT_EQ(fileMode(ca + "/ca-key.pem"), 0600u);
  CliRun again = run(runCaCommand, {"ca", "init", "--dir", ca});
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;

  std::string out = tmp.path() + "/node1";
  CliRun issue = run(runCaCommand, {"ca", "issue", "--dir", ca, "--name", "node1", "--out", out,
                                 "--namespace", "edge"});
  ASSERT_EQ(issue.code, 0) << issue.err;
  EXPECT_EQ(fileMode(out + "/key.pem"), 0600u);
  int st = -1;
  std::string v = shell("openssl verify -CAfile " + out + "/root-cert.pem " + out +
                        "/cert-chain.pem", &st);
  EXPECT_EQ(st, 0) << v;
  std::string text = shell("openssl x509 -in " + out + "/cert-chain.pem -text -noout");
  EXPECT_NE(text.find("URI:spiffe://example.org/ns/edge/sa/node1"), std::string::npos) << text;
  EXPECT_NE(text.find("DNS:node1.example.org"), std::string::npos) << text;
  // `ugated id` on the issued directory reports the same node ID.
  CliRun id = run(runIdCommand, {"id", "--data-dir", out});
  ASSERT_EQ(id.code, 0) << id.err;
  EXPECT_EQ(id.firstLine(), issue.firstLine());
}

TEST(CliTest, CaIssueKeepsAnExistingNodeKey) {
  ugate::test::TempDir tmp;
  std::string ca = tmp.path() + "/ca";
  ASSERT_EQ(run(runCaCommand, {"ca", "init", "--dir", ca}).code, 0);
  std::string node = tmp.path() + "/node";
  CliRun id = run(runIdCommand, {"id", "--data-dir", node, "--name", "n"});
  ASSERT_EQ(id.code, 0);
  CliRun issue = run(runCaCommand, {"ca", "issue", "--dir", ca, "--name", "n", "--out", node,
                                 "--validity", "30d"});
  ASSERT_EQ(issue.code, 0) << issue.err;
  EXPECT_EQ(issue.firstLine(), id.firstLine());
  CliRun again = run(runIdCommand, {"id", "--data-dir", node});
  EXPECT_EQ(again.firstLine(), id.firstLine());
}

TEST(CliTest, OwnerErrorsComeBeforeAnyFileIsWritten) {
  ugate::test::TempDir tmp;
  std::string ca = tmp.path() + "/ca";
  ASSERT_EQ(run(runCaCommand, {"ca", "init", "--dir", ca}).code, 0);
  std::string out = tmp.path() + "/node";
  CliRun unknown = run(runCaCommand, {"ca", "issue", "--dir", ca, "--name", "n", "--out", out,
                                   "--owner", "no-such-user-ugate"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("--owner: unknown user 'no-such-user-ugate'"), std::string::npos) << unknown.err;
  EXPECT_TRUE(unknown.out.empty()) << unknown.out;
  EXPECT_NE(::access(out.c_str(), F_OK), 0);  // nothing issued
  CliRun id = run(runIdCommand, {"id", "--data-dir", out, "--owner", "root:no-such-group-ugate"});
  EXPECT_EQ(id.code, 1);
  EXPECT_NE(id.err.find("--owner: unknown group 'no-such-group-ugate'"), std::string::npos) << id.err;
  EXPECT_NE(::access(out.c_str(), F_OK), 0);
  EXPECT_EQ(run(runIdCommand, {"id", "--data-dir", out, "--owner"}).code, 2);  // needs a value
}

TEST(CliTest, OwnerThatIsOneselfNeedsNoRoot) {
  ugate::test::TempDir tmp;
  std::string self = std::to_string(::geteuid()) + ":" + std::to_string(::getegid());
  CliRun id = run(runIdCommand, {"id", "--data-dir", tmp.path() + "/n", "--owner", self});
  ASSERT_EQ(id.code, 0) << id.err;
  EXPECT_EQ(id.firstLine().size(), 52u);
  EXPECT_NE(id.err.find("and 1 file in it to"), std::string::npos) << id.err;
  EXPECT_EQ(fileMode(tmp.path() + "/n"), 0700u);
  EXPECT_EQ(fileMode(tmp.path() + "/n/kube.json"), 0600u);
}

TEST(CliTest, CaUsageErrors) {
  EXPECT_EQ(run(runCaCommand, {"ca"}).code, 2);
  CliRun bad = run(runCaCommand, {"ca", "frobnicate"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("unknown ca subcommand 'frobnicate'"), std::string::npos) << bad.err;
  CliRun noName = run(runCaCommand, {"ca", "issue", "--dir", "/tmp/x", "--out", "/tmp/y"});
  EXPECT_EQ(noName.code, 2);
  EXPECT_NE(noName.err.find("--name is required"), std::string::npos) << noName.err;
  EXPECT_EQ(run(runCaCommand, {"ca", "init"}).code, 2);
  EXPECT_EQ(run(runCaCommand, {"ca", "init", "--dir", "/tmp/x", "--validity", "ten"}).code, 2);
  CliRun missing = run(runCaCommand, {"ca", "issue", "--dir", "/nonexistent/ca", "--name", "n",
                                   "--out", "/tmp/y"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("/nonexistent/ca/ca-key.pem"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace ugate::auth

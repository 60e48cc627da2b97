// FileOwner: --owner USER[:GROUP] resolution, the privilege check and the chown of identity files.
#include "auth/file_owner.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "auth/identity.h"
#include "auth_test_util.h"
#include "test_common/test_util.h"

namespace ugate::auth {
namespace {

// nobody: the conventional unprivileged account (65534 on Debian); the tests skip without it.
const passwd* nobody() { return ::getpwnam("nobody"); }

std::string groupName(gid_t gid) {
  const group* g = ::getgrgid(gid);
  return g ? g->gr_name : std::to_string(gid);
}

struct stat statOf(const std::string& path) {
  struct stat st{};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

TEST(FileOwnerTest, ResolvesUserAndDefaultsToTheLoginGroup) {
  const passwd* pw = nobody();
  if (pw == nullptr) GTEST_SKIP() << "no user 'nobody' here";
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  auto o = parseFileOwner("nobody");
  ASSERT_TRUE(o.has_value()) << o.error().detail;
  EXPECT_EQ(o->uid, uid);
  EXPECT_EQ(o->gid, gid);
  EXPECT_EQ(o->name, "nobody:" + groupName(gid));

  auto colon = parseFileOwner("nobody:");  // like chown: USER: is the login group too
  ASSERT_TRUE(colon.has_value()) << colon.error().detail;
  EXPECT_EQ(colon->gid, gid);

  auto numeric = parseFileOwner(std::to_string(uid));
  ASSERT_TRUE(numeric.has_value()) << numeric.error().detail;
  EXPECT_EQ(numeric->uid, uid);
  EXPECT_EQ(numeric->gid, gid);
  EXPECT_EQ(numeric->name, "nobody:" + groupName(gid));

  auto withGroup = parseFileOwner("nobody:root");
  ASSERT_TRUE(withGroup.has_value()) << withGroup.error().detail;
  EXPECT_EQ(withGroup->gid, 0u);
  EXPECT_EQ(withGroup->name, "nobody:root");

  auto numericGroup = parseFileOwner("nobody:4242");  // a gid without a group entry is still a gid
  ASSERT_TRUE(numericGroup.has_value()) << numericGroup.error().detail;
  EXPECT_EQ(numericGroup->gid, 4242u);
}

TEST(FileOwnerTest, UnknownNamesAreErrorsThatNameThem) {
  auto user = parseFileOwner("no-such-user-ugate");
  ASSERT_FALSE(user.has_value());
  EXPECT_EQ(user.error().code, Errc::NotFound);
  EXPECT_EQ(user.error().detail.rfind("--owner: unknown user 'no-such-user-ugate'", 0), 0u)
      << user.error().detail;

  auto grp = parseFileOwner("root:no-such-group-ugate");
  ASSERT_FALSE(grp.has_value());
  EXPECT_EQ(grp.error().detail,
            "--owner: unknown group 'no-such-group-ugate' (no such entry in the group database)");

  // 4294967295 is (uid_t)-1, which chown(2) reads as "leave unchanged": not a user.
  auto minusOne = parseFileOwner("4294967295");
  ASSERT_FALSE(minusOne.has_value());
  EXPECT_EQ(minusOne.error().code, Errc::NotFound);

  auto empty = parseFileOwner(":root");
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code, Errc::InvalidArgument);

  // A uid without a passwd entry has no login group: the group must be given.
  if (::getpwuid(54321) == nullptr) {
    auto bare = parseFileOwner("54321");
    ASSERT_FALSE(bare.has_value());
    EXPECT_NE(bare.error().detail.find("give one as 54321:GROUP"), std::string::npos)
        << bare.error().detail;
    auto given = parseFileOwner("54321:54321");
    ASSERT_TRUE(given.has_value()) << given.error().detail;
    EXPECT_EQ(given->uid, 54321u);
  }
}

TEST(FileOwnerTest, OneselfNeedsNoPrivilege) {
  FileOwner self{::geteuid(), ::getegid(), "self"};
  EXPECT_TRUE(checkCanChown(self).has_value());
}

TEST(FileOwnerTest, ChownsTheDirectoryAndIdentityFilesKeepingModes) {
  const passwd* pw = nobody();
  if (pw == nullptr) GTEST_SKIP() << "no user 'nobody' here";
  if (::geteuid() != 0) GTEST_SKIP() << "chown to another user needs root";
  ugate::test::TempDir tmp;
  std::string dir = tmp.path() + "/node";
  IdentityOptions io;
  io.dataDir = dir;
  ASSERT_TRUE(loadOrCreateIdentity(io).has_value());
  ASSERT_TRUE(saveIstioDir(dir, test::selfSignedCredentials("n")).has_value());
  std::string other = tmp.write("node/other.txt", "not an identity file");
  auto o = parseFileOwner("nobody");
  ASSERT_TRUE(o.has_value());
  ASSERT_TRUE(checkCanChown(*o).has_value());
  auto changed = chownIdentityDir(dir, *o);
  ASSERT_TRUE(changed.has_value()) << changed.error().detail;
  EXPECT_EQ(changed->size(), 4u);  // dir, key.pem, cert-chain.pem, kube.json (no root-cert.pem)
  for (const std::string& p :
       {dir, dir + "/key.pem", dir + "/cert-chain.pem", dir + "/kube.json"}) {
    EXPECT_EQ(statOf(p).st_uid, o->uid) << p;
    EXPECT_EQ(statOf(p).st_gid, o->gid) << p;
  }
  EXPECT_EQ(statOf(dir).st_mode & 07777, 0700u);
  EXPECT_EQ(statOf(dir + "/key.pem").st_mode & 07777, 0600u);
  EXPECT_EQ(statOf(dir + "/kube.json").st_mode & 07777, 0600u);
  EXPECT_EQ(statOf(other).st_uid, 0u);  // other files are not ours to give away

  // Root writing into the directory now owned by nobody keeps nobody as the owner.
  auto inherited = inheritedOwner(dir);
  ASSERT_TRUE(inherited.has_value());
  EXPECT_EQ(inherited->uid, o->uid);
  EXPECT_FALSE(inheritedOwner(tmp.path()).has_value());  // ours: nothing to inherit
}

TEST(FileOwnerTest, RefusesToFollowASymbolicLink) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown to another user needs root";
  const passwd* pw = nobody();
  if (pw == nullptr) GTEST_SKIP() << "no user 'nobody' here";
  ugate::test::TempDir tmp;
  std::string target = tmp.write("secret", "root's file");
  std::string dir = tmp.path() + "/node";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(target.c_str(), (dir + "/key.pem").c_str()), 0);
  auto o = parseFileOwner("nobody");
  ASSERT_TRUE(o.has_value());
  auto r = chownIdentityDir(dir, *o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().detail, dir + "/key.pem is a symbolic link: refusing to give it away");
  EXPECT_EQ(statOf(target).st_uid, 0u);
}

}  // namespace
}  // namespace ugate::auth

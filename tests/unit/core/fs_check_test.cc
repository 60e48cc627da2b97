// checkCanCreateDir / checkCanAppend: what --check-config says about paths startup would create,
// without creating anything.
#include "core/fs_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "test_common/test_util.h"

namespace ugate {
namespace {

bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

TEST(FsCheck, DirectoriesThatCouldBeCreatedAreNotCreated) {
  test::TempDir t;
  EXPECT_TRUE(checkCanCreateDir(t.path()));
  EXPECT_TRUE(checkCanCreateDir(t.path() + "/a/b/c/"));
  EXPECT_FALSE(exists(t.path() + "/a"));
  t.write("file", "x");
  auto r = checkCanCreateDir(t.path() + "/file/sub/dir");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().detail, t.path() + "/file: exists and is not a directory");
  EXPECT_FALSE(checkCanCreateDir(""));
}

TEST(FsCheck, FilesToAppendTo) {
  test::TempDir t;
  EXPECT_TRUE(checkCanAppend(t.path() + "/new.log"));
  EXPECT_FALSE(exists(t.path() + "/new.log"));
  EXPECT_TRUE(checkCanAppend(t.write("old.log", "line\n")));
  auto missing = checkCanAppend(t.path() + "/nodir/access.log");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().detail, t.path() + "/nodir/access.log: directory " + t.path() +
                                        "/nodir does not exist (startup creates the file, not its directory)");
  auto dir = checkCanAppend(t.path());
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().detail, t.path() + ": is a directory");
  if (geteuid() != 0) {  // root may write anywhere
    chmod(t.path().c_str(), 0500);
    auto ro = checkCanAppend(t.path() + "/new.log");
    chmod(t.path().c_str(), 0700);
    ASSERT_FALSE(ro);
    EXPECT_EQ(ro.error().detail,
              t.path() + "/new.log: cannot create it: directory " + t.path() + " is not writable by this user");
  }
}

}  // namespace
}  // namespace ugate

#include "core/fs_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ugate {

namespace {

Error fsError(const std::string& path, const std::string& why) {
  return makeError(Errc::InvalidArgument, path + ": " + why);
}

// writable: the effective user may write (and, for a directory, enter) path.
bool writable(const std::string& path, bool dir) {
  return faccessat(AT_FDCWD, path.c_str(), dir ? (W_OK | X_OK) : W_OK, AT_EACCESS) == 0;
}

std::string parentOf(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Result<void> checkCanCreateDir(const std::string& dir) {
  if (dir.empty()) return makeError(Errc::InvalidArgument, "no directory given");
  std::string p = dir;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  bool missing = false;  // some part of `dir` below p does not exist yet
  for (;;) {
    struct stat st;
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return fsError(p, "exists and is not a directory");
      if (!writable(p, true)) {
        return fsError(p, std::string(missing ? "cannot create " + dir + " in it: " : "") +
                              "not writable by this user (" + strerror(EACCES) + ")");
      }
      return {};
    }
    // ENOTDIR: a file on the way; walking up finds it and says so.
    if (errno != ENOENT && errno != ENOTDIR) return fsError(p, strerror(errno));
    if (p == "/" || p == ".") return fsError(p, strerror(ENOENT));
    missing = true;
    p = parentOf(p);
  }
}

Result<void> checkCanAppend(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return fsError(path, "is a directory");
    if (!writable(path, false)) {
      return fsError(path, std::string("not writable by this user (") + strerror(EACCES) + ")");
    }
    return {};
  }
  if (errno != ENOENT && errno != ENOTDIR) return fsError(path, strerror(errno));
  const std::string dir = parentOf(path);
  if (::stat(dir.c_str(), &st) != 0) {
    return fsError(path, "directory " + dir + " does not exist (startup creates the file, not its directory)");
  }
  if (!S_ISDIR(st.st_mode)) return fsError(path, dir + " is not a directory");
  if (!writable(dir, true)) {
    return fsError(path, "cannot create it: directory " + dir + " is not writable by this user");
  }
  return {};
}

}  // namespace ugate

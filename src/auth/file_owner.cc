#include "auth/file_owner.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "auth/identity.h"

namespace ugate::auth {

namespace {

constexpr std::string_view kIdentityFiles[] = {kIstioKeyFile, kIstioCertFile, kIstioRootFile,
                                               kKubeconfigFile};

std::optional<unsigned> numericId(std::string_view s) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  if (v == static_cast<unsigned>(-1)) return std::nullopt;  // -1 means "unchanged" to chown(2)
  return v;
}

// Lookup: getpwnam_r / getpwuid_r / getgrnam_r / getgrgid_r with a buffer that grows on ERANGE.
// found is false when the database has no such entry; err is set when the lookup itself failed.
struct Lookup {
  bool found{false};
  int err{0};
  std::string name;
  uid_t uid{0};
  gid_t gid{0};
};

template <typename Ent, typename Fn>
Lookup lookup(Fn&& fn) {
  Lookup l;
  std::vector<char> buf(4096);
  for (;;) {
    Ent ent{};
    Ent* res = nullptr;
    int rc = fn(&ent, buf.data(), buf.size(), &res);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 4);
      continue;
    }
    // "Not found" is 0 with res == nullptr, but some NSS modules return ENOENT/ESRCH/EBADF/EPERM.
    if (res != nullptr) {
      l.found = true;
      if constexpr (std::is_same_v<Ent, passwd>) {
        l.name = res->pw_name;
        l.uid = res->pw_uid;
        l.gid = res->pw_gid;
      } else {
        l.name = res->gr_name;
        l.gid = res->gr_gid;
      }
    } else if (rc != 0 && rc != ENOENT && rc != ESRCH && rc != EBADF && rc != EPERM) {
      l.err = rc;
    }
    return l;
  }
}

Lookup userByName(const std::string& n) {
  return lookup<passwd>(
      [&](passwd* e, char* b, size_t s, passwd** r) { return getpwnam_r(n.c_str(), e, b, s, r); });
}
Lookup userById(uid_t id) {
  return lookup<passwd>(
      [&](passwd* e, char* b, size_t s, passwd** r) { return getpwuid_r(id, e, b, s, r); });
}
Lookup groupByName(const std::string& n) {
  return lookup<group>(
      [&](group* e, char* b, size_t s, group** r) { return getgrnam_r(n.c_str(), e, b, s, r); });
}
Lookup groupById(gid_t id) {
  return lookup<group>(
      [&](group* e, char* b, size_t s, group** r) { return getgrgid_r(id, e, b, s, r); });
}

bool inOurGroups(gid_t gid) {
  if (gid == ::getegid()) return true;
  int n = ::getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  n = ::getgroups(n, groups.data());
  return n > 0 && std::find(groups.begin(), groups.begin() + n, gid) != groups.begin() + n;
}

bool hasEffectiveCapChown() {
  __user_cap_header_struct hdr{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &hdr, data) != 0) return ::geteuid() == 0;
  return (data[CAP_TO_INDEX(CAP_CHOWN)].effective & CAP_TO_MASK(CAP_CHOWN)) != 0;
}

// chownOne gives path (opened without following a final symbolic link) to owner.
Result<void> chownOne(int fd, const std::string& path, const FileOwner& owner) {
  if (::fchown(fd, owner.uid, owner.gid) != 0) {
    int e = errno;
    std::string detail = "cannot give " + path + " to " + owner.name + ": " + std::strerror(e);
    if (e == EPERM) detail += " (changing a file's owner needs root, i.e. CAP_CHOWN)";
    return makeError(e == EPERM ? Errc::AuthFailed : Errc::Io, detail);
  }
  return {};
}

}  // namespace

Result<FileOwner> parseFileOwner(std::string_view spec) {
  std::string_view userPart = spec.substr(0, spec.find(':'));
  std::optional<std::string_view> groupPart;
  if (auto colon = spec.find(':'); colon != std::string_view::npos) {
    groupPart = spec.substr(colon + 1);
  }
  if (userPart.empty()) {
    return makeError(Errc::InvalidArgument,
                     "--owner '" + std::string(spec) + "': want USER or USER:GROUP");
  }
  FileOwner o;
  std::string userName;
  Lookup u = userByName(std::string(userPart));
  if (!u.found && !u.err) {
    if (auto id = numericId(userPart)) {
      Lookup byId = userById(*id);
      u.found = true;
      u.uid = *id;
      u.name = byId.found ? byId.name : std::string(userPart);
    }
  }
  if (u.err) {
    return makeError(Errc::Io, "--owner: cannot look up user '" + std::string(userPart) +
                                   "': " + std::strerror(u.err));
  }
  if (!u.found) {
    return makeError(Errc::NotFound,
                     "--owner: unknown user '" + std::string(userPart) +
                         "' (no such entry in the passwd database; create it first, e.g. "
                         "useradd --system " + std::string(userPart) + ")");
  }
  o.uid = u.uid;
  userName = u.name;
  std::string groupName;
  if (!groupPart || groupPart->empty()) {
    Lookup byId = userById(o.uid);
    if (!byId.found) {
      return makeError(Errc::InvalidArgument,
                       "--owner: uid " + std::to_string(o.uid) +
                           " has no passwd entry, so no login group: give one as " +
                           std::string(userPart) + ":GROUP");
    }
    o.gid = byId.gid;
    Lookup g = groupById(o.gid);
    groupName = g.found ? g.name : std::to_string(o.gid);
  } else {
    std::string gp(*groupPart);
    Lookup g = groupByName(gp);
    if (!g.found && !g.err) {
      if (auto id = numericId(gp)) {
        Lookup byId = groupById(*id);
        g.found = true;
        g.gid = *id;
        g.name = byId.found ? byId.name : gp;
      }
    }
    if (g.err) {
      return makeError(Errc::Io,
                       "--owner: cannot look up group '" + gp + "': " + std::strerror(g.err));
    }
    if (!g.found) {
      return makeError(Errc::NotFound,
                       "--owner: unknown group '" + gp + "' (no such entry in the group database)");
    }
    o.gid = g.gid;
    groupName = g.name;
  }
  o.name = userName + ":" + groupName;
  return o;
}

Result<void> checkCanChown(const FileOwner& owner) {
  if (owner.uid == ::geteuid() && inOurGroups(owner.gid)) return {};
  if (hasEffectiveCapChown()) return {};
  return makeError(Errc::AuthFailed, "--owner " + owner.name +
                                         ": only root (a process with CAP_CHOWN) can give files to "
                                         "another user, and this runs as uid " +
                                         std::to_string(::geteuid()) +
                                         "; run the command as root, or leave --owner out");
}

std::optional<FileOwner> inheritedOwner(const std::string& dir) {
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid == ::geteuid()) {
    return std::nullopt;
  }
  if (!hasEffectiveCapChown()) return std::nullopt;
  FileOwner o;
  o.uid = st.st_uid;
  o.gid = st.st_gid;
  Lookup u = userById(o.uid);
  Lookup g = groupById(o.gid);
  o.name =
      (u.found ? u.name : std::to_string(o.uid)) + ":" + (g.found ? g.name : std::to_string(o.gid));
  return o;
}

Result<std::vector<std::string>> chownIdentityDir(const std::string& dir, const FileOwner& owner) {
  std::vector<std::string> changed;
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    int e = errno;
    return makeError(e == ENOENT ? Errc::NotFound : Errc::Io,
                     "cannot open " + dir + ": " + std::strerror(e));
  }
  auto closeDir = [&] { ::close(dfd); };
  if (auto r = chownOne(dfd, dir, owner); !r) {
    closeDir();
    return r.error();
  }
  changed.push_back(dir);
  for (std::string_view f : kIdentityFiles) {
    std::string name(f);
    std::string path = dir + "/" + name;
    int fd = ::openat(dfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) continue;
    if (fd < 0) {
      int e = errno;
      closeDir();
      if (e == ELOOP)
        return makeError(Errc::InvalidArgument,
                         path + " is a symbolic link: refusing to give it away");
      return makeError(Errc::Io, "cannot open " + path + ": " + std::strerror(e));
    }
    struct stat st{};
    Result<void> r;
    if (::fstat(fd, &st) != 0) {
      r = makeError(Errc::Io, "cannot stat " + path + ": " + std::strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
      r = makeError(Errc::InvalidArgument,
                    path + " is not a regular file: refusing to give it away");
    } else {
      r = chownOne(fd, path, owner);
    }
    ::close(fd);
    if (!r) {
      closeDir();
      return r.error();
    }
    changed.push_back(path);
  }
  closeDir();
  return changed;
}

}  // namespace ugate::auth

// Safe defaults, checked on ugated as a process: what it listens on and dials at startup, what the
// admin endpoint reveals, which privileges it needs, and that loose secrets files are refused.
// docs/SECURITY.md says the same in prose.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/port_holders.h"
#include "test_common/test_util.h"
#include "test_common/ugated_fixture.h"

namespace ugate::test {
namespace {

/** Sock: one socket of a process, from /proc/PID/net/{tcp,tcp6,udp,udp6,raw,raw6}. */
struct Sock {
  std::string proto;    // "tcp", "udp6", ...; "other" for unix, netlink, ...
  SocketAddress local;  // invalid for "other"
  int state{0};         // TCP state; 0x0A = LISTEN
  bool loopback() const { return local.isLoopback(); }
};

/** socketsOf lists the sockets held by process pid. */
std::vector<Sock> socketsOf(pid_t pid) {
  std::set<uint64_t> inodes;
  std::string fdDir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = opendir(fdDir.c_str())) {
    while (dirent* e = readdir(d)) {
      char target[256];
      ssize_t n = readlink((fdDir + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      std::string t(target, static_cast<size_t>(n));
      if (t.rfind("socket:[", 0) == 0) inodes.insert(std::stoull(t.substr(8, t.size() - 9)));
    }
    closedir(d);
  }
  std::vector<Sock> out;
  for (const char* proto : {"tcp", "tcp6", "udp", "udp6", "raw", "raw6"}) {
    for (const auto& s : procSockets(proto, pid)) {
      if (inodes.erase(s.inode)) out.push_back({proto, s.local, s.state});
    }
  }
  for (size_t i = 0; i < inodes.size(); ++i) out.push_back({"other", {}, 0});
  return out;
}

/** childOf: the first child process of pid (ugated under strace or setpriv), or pid itself. */
pid_t childOf(pid_t pid) {
  std::string kids =
      readFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  int k = atoi(kids.c_str());
  return k > 0 ? k : pid;
}

bool haveTool(const std::string& cmd) { return system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

/** straceConnects: the command running ugated under strace, logging its connect() calls to out. */
std::vector<std::string> straceConnects(const std::string& out) {
  // LeakSanitizer cannot run under ptrace: in an ASan build, ugated's exit would report that.
  std::string asan =
      getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") + std::string(":") : std::string();
  std::vector<std::string> cmd = {"strace", "-f", "-qq", "-e", "trace=connect", "-o", out};
  cmd.insert(cmd.end(), {"-E", "ASAN_OPTIONS=" + asan + "detect_leaks=0"});
  return cmd;
}

// ---------------------------------------------------------------------------------------------
// Started without a config (the embedded default) and with a config using every listener kind:
// ugated listens on loopback only and makes no connect() at all until a client arrives. Run in a
// private network namespace (port 15000 is free there) under strace, which logs every connect().
TEST(SafeDefaults, ListensOnLoopbackOnlyAndDialsNothingAtStartup) {
  if (!haveTool("strace -V")) GTEST_SKIP() << "strace not installed (scripts/install-deps.sh)";
  std::string why;
  auto body = [&] {
    TempDir t;
    TcpServer echo;
    uint16_t admin = freePort(), fwd = freePort(), socks = freePort(), httpc = freePort(),
             sni = freePort();
    std::string every =
        R"({"admin": {"address": "127.0.0.1:)" + std::to_string(admin) + R"("}, "listeners": [)" +
        UgatedFixture::listener("fwd", "tcp", fwd, "127.0.0.1:" + std::to_string(echo.port())) +
        "," + UgatedFixture::listener("socks", "socks5", socks, "") + "," +
        UgatedFixture::listener("httpc", "http-connect", httpc, "") + "," +
        UgatedFixture::listener("sni", "sni", sni, "sni:443") + "]}";
    struct Run {
      const char* what;
      std::vector<std::string> args;
      uint16_t admin;
      size_t listeners;
    } runs[] = {{"embedded default config", {}, 15000, 1},
                {"every listener kind", {"--config", t.write("every.json", every)}, admin, 5}};
    for (const auto& r : runs) {
      SCOPED_TRACE(r.what);
      std::string trace = t.path() + "/strace." + std::to_string(r.admin);
      DaemonProcess d(r.args, straceConnects(trace));
      ASSERT_TRUE(d.waitReady(r.admin)) << d.logs();
      const pid_t pid = childOf(d.pid());
      std::vector<Sock> held;
      // The /ready probes' admin connections close soon; then only listeners remain (one socket
      // per worker for each listener, and the admin's).
      ASSERT_TRUE(waitFor([&] {
        held = socketsOf(pid);
        return held.size() >= r.listeners &&
               std::all_of(held.begin(), held.end(), [](const Sock& s) { return s.state == 0x0A; });
      })) << held.size()
          << " sockets";
      for (const auto& s : held) {
        EXPECT_EQ(s.proto.substr(0, 3), "tcp") << s.proto << " " << s.local.str();
        EXPECT_EQ(s.state, 0x0A) << "not a listening socket: " << s.local.str();
        EXPECT_TRUE(s.loopback()) << "listens on a non-loopback address: " << s.local.str();
      }
      usleep(500 * 1000);  // time for anything dialled at startup to show
      kill(pid, SIGTERM);
      EXPECT_EQ(d.wait(10000), 0) << d.logs();
      std::string calls = readFile(trace);
      EXPECT_EQ(calls.find("connect("), std::string::npos) << "connect() at startup:\n" << calls;
    }
    // The detector works: one proxied stream makes exactly the connect() ugated needs for it.
    std::string trace = t.path() + "/strace.stream";
    DaemonProcess d({"--config", t.path() + "/every.json"}, straceConnects(trace));
    ASSERT_TRUE(d.waitReady(admin)) << d.logs();
    int fd = connectTcp(fwd);
    char buf[2];
    EXPECT_TRUE(writeAll(fd, "hi", 2) && readN(fd, buf, 2));
    close(fd);
    kill(childOf(d.pid()), SIGTERM);
    EXPECT_EQ(d.wait(10000), 0);
    EXPECT_NE(readFile(trace).find("connect("), std::string::npos);
    EXPECT_NE(readFile(trace).find("htons(" + std::to_string(echo.port()) + ")"), std::string::npos)
        << readFile(trace);
  };
  if (!runInPrivateNetns(body, &why)) GTEST_SKIP() << why;
}

TEST(SafeDefaults, ConfigDumpRedactsSecretsAndLoopbackAdminIsQuiet) {
  UgatedFixture f;
  uint16_t socks = freePort(), httpc = freePort();
  const std::string users = R"(, "users": [{"username": "alice", "password": "s3cret-p4ss"}])";
  ASSERT_TRUE(f.start(f.config(UgatedFixture::listener("socks", "socks5", socks, "", users) + "," +
                               UgatedFixture::listener("httpc", "http-connect", httpc, "", users))))
      << f.logs();
  std::string body;
  ASSERT_EQ(httpGet(f.admin, "/config_dump", &body), 200);
  EXPECT_EQ(body.find("s3cret-p4ss"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("password": "[redacted]")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("username": "alice")"), std::string::npos) << body;
  EXPECT_EQ(f.logs().find("is not a loopback address"), std::string::npos) << f.logs();
}

TEST(SafeDefaults, AdminOnANonLoopbackAddressIsWarnedAbout) {
  std::string why;
  // 0.0.0.0 there reaches nothing but the namespace's lo.
  auto body = [&] {
    UgatedFixture f;
    std::string cfg = R"({"admin": {"address": "0.0.0.0:)" + std::to_string(f.admin) + R"("}})";
    ASSERT_TRUE(f.start(cfg)) << f.logs();
    EXPECT_NE(f.logs().find("admin: 0.0.0.0:" + std::to_string(f.admin) +
                            " is not a loopback address: /stats and /config_dump answer anyone"),
              std::string::npos)
        << f.logs();
  };
  if (!runInPrivateNetns(body, &why)) GTEST_SKIP() << why;
}

// Runs as nobody with no capability, then with CAP_NET_BIND_SERVICE only (what docs/SECURITY.md
// prescribes for ports below 1024): the first cannot bind port 80 and says so; the second serves.
TEST(SafeDefaults, UnprivilegedUserNeedsOnlyNetBindServiceForLowPorts) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  if (!haveTool("setpriv --version")) GTEST_SKIP() << "setpriv (util-linux) not installed";
  std::string why;
  auto body = [&] {
    UgatedFixture f;
    TcpServer echo;
    chmod(f.dir.path().c_str(), 0755);  // nobody reads the config
    std::string cfg = f.config(
        UgatedFixture::listener("web", "tcp", 80, "127.0.0.1:" + std::to_string(echo.port())));
    f.rewrite(cfg);
    std::string path = f.dir.path() + "/ugated.json";
    chmod(path.c_str(), 0644);
    const std::vector<std::string> nobody = {"setpriv", "--reuid=65534", "--regid=65534",
                                             "--clear-groups"};

    std::vector<std::string> noCaps = nobody;
    noCaps.insert(noCaps.end(), {"--inh-caps=-all", "--bounding-set=-all"});
    DaemonProcess denied({"--config", path}, noCaps);
    EXPECT_EQ(denied.wait(10000), 1) << denied.logs();
    EXPECT_NE(denied.logs().find("listeners[0] 'web': bind 127.0.0.1:80: Permission denied"),
              std::string::npos)
        << denied.logs();

    std::vector<std::string> bindOnly = nobody;
    bindOnly.insert(bindOnly.end(),
                    {"--inh-caps=-all,+net_bind_service", "--ambient-caps=+net_bind_service",
                     "--bounding-set=-all,+net_bind_service"});
    DaemonProcess served({"--config", path}, bindOnly);
    ASSERT_TRUE(served.waitReady(f.admin)) << served.logs();
    std::string status = readFile("/proc/" + std::to_string(childOf(served.pid())) + "/status");
    EXPECT_NE(status.find("Uid:\t65534\t65534\t65534\t65534"), std::string::npos) << status;
    EXPECT_NE(status.find("CapEff:\t0000000000000400"), std::string::npos)
        << "only cap_net_bind_service (10)\n"
        << status;
    int fd = connectTcp(80);
    char buf[5];
    EXPECT_TRUE(writeAll(fd, "hello", 5) && readN(fd, buf, 5) && std::string(buf, 5) == "hello");
    close(fd);
  };
  if (!runInPrivateNetns(body, &why)) GTEST_SKIP() << why;
}

// Key files readable by group or others are refused with the reason and the fix, through the
// ugated commands that read them.
TEST(SafeDefaults, SecretsFilesWithLoosePermissionsAreRefused) {
  TempDir t;
  auto ugated = [](std::vector<std::string> args, std::string* out) {
    DaemonProcess p(std::move(args));
    int rc = p.wait(20000);
    *out = p.logs();
    return rc;
  };
  std::string out, again;
  const std::string node = t.path() + "/node";
  ASSERT_EQ(ugated({"id", "--data-dir", node}, &out), 0) << out;
  const std::string kube = node + "/kube.json";
  struct stat st {};
  ASSERT_EQ(stat(kube.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << "ugated creates its key file private";
  for (mode_t loose : {0644, 0640, 0604}) {
    chmod(kube.c_str(), loose);
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", loose);
    EXPECT_EQ(ugated({"id", "--data-dir", node}, &again), 1) << mode;
    EXPECT_NE(again.find("refusing private key file " + kube + " with mode " + mode),
              std::string::npos)
        << again;
    EXPECT_NE(again.find("chmod 600 " + kube), std::string::npos) << again;
  }
  chmod(kube.c_str(), 0600);
  EXPECT_EQ(ugated({"id", "--data-dir", node}, &again), 0);
  // The node ID (first line) is the one created at first: the key was kept, only refused meanwhile.
  EXPECT_EQ(again.find('\n'), 52u) << again;
  EXPECT_NE(out.find(again.substr(0, again.find('\n'))), std::string::npos) << out << "\n" << again;

  // A mesh CA's key, and an Istio-layout key.pem issued by it.
  const std::string ca = t.path() + "/ca", n1 = t.path() + "/n1";
  ASSERT_EQ(ugated({"ca", "init", "--dir", ca}, &out), 0) << out;
  ASSERT_EQ(ugated({"ca", "issue", "--dir", ca, "--name", "n1", "--out", n1}, &out), 0) << out;
  chmod((n1 + "/key.pem").c_str(), 0644);
  EXPECT_EQ(ugated({"id", "--data-dir", n1}, &out), 1);
  EXPECT_NE(out.find("refusing private key file " + n1 + "/key.pem with mode 0644"),
            std::string::npos)
      << out;
  chmod((ca + "/ca-key.pem").c_str(), 0640);
  EXPECT_EQ(ugated({"ca", "issue", "--dir", ca, "--name", "n2", "--out", t.path() + "/n2"}, &out),
            1);
  EXPECT_NE(out.find("refusing private key file " + ca + "/ca-key.pem with mode 0640"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace ugate::test

// `ugated --check-config` means "it will start", and a listen address held by another process is
// refused (SO_REUSEPORT would otherwise let a second ugated share it silently). ugated runs as a
// process: check-config on broken configs reports every error with its JSON path and the file name
// once; the shipped examples pass (or fail only for the certificates they name); a second ugated on
// the same addresses exits with the error while the first keeps serving curl; reloads and drain of
// the first keep working.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/port_holders.h"
#include "test_common/test_util.h"
#include "test_common/ugated_fixture.h"

namespace ugate::test {
namespace {

struct Ran {
  int rc;
  std::string out;  // stdout and stderr
};

// ugated runs `ugated ARGS...` to completion.
Ran ugated(std::vector<std::string> args) {
  DaemonProcess p(std::move(args));
  int rc = p.wait(20000);
  return {rc, p.logs()};
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

// lineCount: the lines of `out` that start with two spaces (check-config's one line per finding).
size_t findingLines(const std::string& out) {
  size_t n = 0;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) n += line.rfind("  ", 0) == 0;
  return n;
}

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

bool haveTool(const std::string& cmd) { return system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

// HttpServer: answers every request with "hello from the origin".
struct HttpServer {
  TcpServer srv{[](int fd) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
    }
    const std::string body = "hello from the origin\n";
    std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nConnection: close\r\n\r\n" + body;
    writeAll(fd, resp.data(), resp.size());
  }};
};

// curlThroughSocks fetches http://127.0.0.1:httpPort/ through the SOCKS5 proxy on socksPort.
std::string curlThroughSocks(uint16_t socksPort, uint16_t httpPort) {
  std::string cmd = "curl -s --max-time 5 --socks5-hostname 127.0.0.1:" + std::to_string(socksPort) +
                    " http://127.0.0.1:" + std::to_string(httpPort) + "/ 2>&1";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    pclose(p);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Errors of the config itself: every broken element, each with its path; the file name once.

TEST(CheckConfig, SyntaxErrorNamesTheFileOnce) {
  TempDir t;
  std::string path = t.write("syntax.json", R"({"listeners": [)");
  Ran r = ugated({"--check-config", path});
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(r.out.rfind(path + ": 1 error\n  invalid JSON: ", 0), 0u) << r.out;
  EXPECT_EQ(count(r.out, "syntax.json"), 1u) << r.out;
  EXPECT_NE(r.out.find("note: credentials, log paths and listen addresses are checked once these are fixed"),
            std::string::npos)
      << r.out;

  Ran missing = ugated({"--check-config", t.path() + "/absent.json"});
  EXPECT_EQ(missing.rc, 2);
  EXPECT_EQ(missing.out, t.path() + "/absent.json: 1 error\n  cannot open: No such file or directory\n");
}

TEST(CheckConfig, EveryBrokenElementIsReportedWithItsPath) {
  TempDir t;
  std::string path = t.write("bad.json", R"({
    "workers": "two",
    "listeners": [
      {"name": "a", "kind": "tcp", "address": "127.0.0.1:99999", "to": "x:1"},
      {"name": "b", "kind": "tcp", "address": "127.0.0.1:1", "to": "x:1", "bogus": 1},
      {"name": "c", "kind": "tcp", "address": "127.0.0.1:2"}
    ],
    "routes": [{"match": {"port": 0}, "to": "reject"}]
  })");
  Ran r = ugated({"--check-config", path});
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(r.out.rfind(path + ": 5 errors\n", 0), 0u) << r.out;
  for (const char* want : {"\n  workers: expected an integer, got string\n",
                           "\n  listeners[0].address: port 99999 out of range\n",
                           "\n  listeners[1].bogus: unknown key for kind 'tcp'",
                           "\n  listeners[2].to: required for kind 'tcp'\n",
                           "\n  routes[0].match.port: 0 out of range [1, 65535]\n"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " in:\n" << r.out;
  }
  EXPECT_EQ(count(r.out, "bad.json"), 1u) << r.out;

  // Startup reports the same errors, all of them, and exits 2.
  Ran start = ugated({"--config", path});
  EXPECT_EQ(start.rc, 2);
  EXPECT_EQ(count(start.out, " config: "), 5u) << start.out;
  EXPECT_NE(start.out.find("config: listeners[2].to: required for kind 'tcp'"), std::string::npos) << start.out;
}

// ---------------------------------------------------------------------------------------------
// What startup checks beyond the JSON: credentials, log paths, addresses. All at once.

TEST(CheckConfig, CredentialsLogPathAndAddressesAllAtOnce) {
  TempDir t;
  TcpServer taken;  // holds its port: another process, from ugated's side
  uint16_t admin = freePort();
  const std::string certDir = t.path() + "/certs/gw";  // absent
  const std::string logDir = t.path() + "/no-such-dir";
  std::string cfg = R"({"node": {"name": "gw", "trustDomain": "mesh.example"},
    "tls": {"certDir": ")" + certDir + R"("},
    "admin": {"address": "127.0.0.1:)" + std::to_string(admin) + R"("},
    "log": {"accessLog": ")" + logDir + R"(/access.log"},
    "listeners": [
      {"name": "mesh", "kind": "mesh", "address": "127.0.0.1:)" + std::to_string(freePort()) + R"("},
      {"name": "socks", "kind": "socks5", "address": "127.0.0.1:)" + std::to_string(taken.port()) + R"("}
    ]})";
  std::string path = t.write("gw.json", cfg);
  const std::string inUse = "listeners[1] 'socks': 127.0.0.1:" + std::to_string(taken.port()) +
                            " is already in use by another process (pid " + std::to_string(getpid()) + ": ";
  const std::string noCert = "tls.certDir: cannot stat " + certDir + "/key.pem: No such file or directory";
  const std::string noLogDir = "log.accessLog: " + logDir + "/access.log: directory " + logDir +
                               " does not exist (startup creates the file, not its directory)";

  Ran r = ugated({"--check-config", path});
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(r.out.rfind(path + ": 3 errors\n", 0), 0u) << r.out;
  EXPECT_EQ(findingLines(r.out), 3u) << r.out;
  for (const auto& want : {noCert, noLogDir, inUse}) {
    EXPECT_NE(r.out.find("\n  " + want), std::string::npos) << want << " in:\n" << r.out;
  }
  EXPECT_FALSE(exists(logDir)) << "check-config must not create anything";

  // Startup finds the same three, reports them together and exits 2 (not only a bind problem).
  Ran start = ugated({"--config", path});
  EXPECT_EQ(start.rc, 2) << start.out;
  for (const auto& want : {noCert, noLogDir, inUse}) {
    EXPECT_NE(start.out.find("startup: " + want), std::string::npos) << want << " in:\n" << start.out;
  }
}

// The readiness port is checked like the admin endpoint: a held address is named at check time and
// is a bind error at startup (exit 1).
TEST(CheckConfig, ReadinessPortHeldByAnotherProcessIsReported) {
  TempDir t;
  TcpServer taken;
  std::string path = t.write("gw.json", R"({"admin": {"address": "127.0.0.1:)" + std::to_string(freePort()) +
                                            R"("}, "health": {"address": "127.0.0.1:)" +
                                            std::to_string(taken.port()) + R"("}})");
  const std::string inUse = "health.address: 127.0.0.1:" + std::to_string(taken.port()) +
                            " is already in use by another process (pid " + std::to_string(getpid()) + ": ";
  Ran r = ugated({"--check-config", path});
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("\n  " + inUse), std::string::npos) << r.out;
  Ran start = ugated({"--config", path});
  EXPECT_EQ(start.rc, 1) << start.out;
  EXPECT_NE(start.out.find("startup: " + inUse), std::string::npos) << start.out;
}

TEST(CheckConfig, TlsSettingsAreCheckedAgainstTheIdentityStartupWouldCreate) {
  TempDir t;
  TcpServer echo;
  uint16_t admin = freePort(), out = freePort(), in = freePort();
  const std::string dataDir = t.path() + "/var/node";  // startup creates it; check-config must not
  auto config = [&](const std::string& upstreamTls, const std::string& tls) {
    return R"({"node": {"dataDir": ")" + dataDir + R"("},
      "admin": {"address": "127.0.0.1:)" + std::to_string(admin) + R"("},
      "listeners": [
        {"name": "out", "kind": "tcp", "address": "127.0.0.1:)" + std::to_string(out) +
           R"(", "to": "127.0.0.1:)" + std::to_string(echo.port()) + R"(", "upstreamTls": )" + upstreamTls + R"(},
        {"name": "in", "kind": "tcp", "address": "127.0.0.1:)" + std::to_string(in) +
           R"(", "to": "127.0.0.1:)" + std::to_string(echo.port()) + R"(", "tls": )" + tls + R"(}
      ]})";
  };
  const std::string note = "note: node.dataDir: startup would create a new key and self-signed certificate in " +
                           dataDir + "/kube.json";

  // Nothing to verify the upstream server against, and a mutual-TLS listener trusting nobody.
  std::string bad = t.write("bad.json", config("{}", "{}"));
  Ran r = ugated({"--check-config", bad});
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(r.out.rfind(bad + ": 2 errors\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\n  listeners[0].upstreamTls: cannot verify the server: set peerIds, or nothing to trust"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\n  listeners[1].tls: mutual TLS but nothing to trust"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n  " + note + "\n"), std::string::npos) << r.out;
  EXPECT_FALSE(exists(t.path() + "/var")) << "check-config created the data directory";

  // Pinned server and a listener that does not ask for client certificates: it will start.
  const std::string pin = R"({"peerIds": ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]})";
  std::string good = t.write("good.json", config(pin, R"({"requireClientCert": false})"));
  Ran ok = ugated({"--check-config", good});
  EXPECT_EQ(ok.rc, 0) << ok.out;
  EXPECT_EQ(ok.out, good + ": ok (2 listeners, 0 routes)\n  " + note + "\n");
  EXPECT_FALSE(exists(t.path() + "/var"));
  // And it does: startup creates the identity check-config announced.
  DaemonProcess d({"--config", good});
  ASSERT_TRUE(d.waitReady(admin)) << d.logs();
  EXPECT_TRUE(exists(dataDir + "/kube.json"));
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(10000), 0) << d.logs();
  // Now the identity exists: nothing to create, no note.
  Ran again = ugated({"--check-config", good});
  EXPECT_EQ(again.out, good + ": ok (2 listeners, 0 routes)\n");

  // A data directory that cannot be created.
  t.write("file", "not a directory");
  std::string blocked = replaceAll(config(pin, R"({"requireClientCert": false})"), dataDir, t.path() + "/file/node");
  Ran b = ugated({"--check-config", t.write("blocked.json", blocked)});
  EXPECT_EQ(b.rc, 2) << b.out;
  EXPECT_NE(b.out.find("\n  node.dataDir: " + t.path() + "/file: exists and is not a directory\n"), std::string::npos)
      << b.out;
}

// The shipped examples, in a network namespace of their own (their fixed ports are free there):
// those meant to start pass and do start; the mesh and mTLS ones name certificate directories
// (/etc/ugate/certs/NAME, or certs/NAME relative to the repository root for the README's mesh
// walk-through) and fail exactly for those while they are absent, and pass (and start) with
// certificates issued by `ugated ca` in their place.
TEST(CheckConfig, ShippedExamples) {
  std::string why;
  auto body = [&] {
    const std::string dir = std::string(UGATE_SOURCE_DIR) + "/configs/examples/";
    TempDir t;
    struct Example {
      const char* file;
      const char* node;     // the node whose certificates it names, "" for none
      const char* certDir;  // tls.certDir as shipped
      bool start;           // started too (mesh-node dials a gateway: checked only)
    } examples[] = {{"forward.json", "", "", true},
                    {"cluster.json", "", "", true},
                    {"udp.json", "", "", true},
                    {"sidecar.json", "", "", true},
                    {"sidecar-tproxy.json", "", "", true},
                    {"mesh-gateway.json", "gw", "certs/gw", true},
                    {"mesh-node.json", "alice", "certs/alice", false},
                    {"mtls-gateway.json", "b", "/etc/ugate/certs/b", true},
                    {"mtls-client.json", "a", "/etc/ugate/certs/a", true}};
    ASSERT_EQ(ugated({"ca", "init", "--dir", t.path() + "/ca", "--trust-domain", "mesh.example"}).rc, 0);
    for (const auto& e : examples) {
      SCOPED_TRACE(e.file);
      std::string path = dir + e.file;
      ASSERT_TRUE(exists(path));
      if (*e.node) {
        const std::string key = std::string(e.certDir) + "/key.pem";
        if (!exists(key)) {  // as shipped, on a machine without those certificates
          Ran r = ugated({"--check-config", path});
          EXPECT_EQ(r.rc, 2) << r.out;
          EXPECT_EQ(r.out, path + ": 1 error\n  tls.certDir: cannot stat " + key + ": No such file or directory\n");
        }
        Ran issued = ugated({"ca", "issue", "--dir", t.path() + "/ca", "--name", e.node, "--out",
                             t.path() + "/certs/" + e.node});
        ASSERT_EQ(issued.rc, 0) << issued.out;
        const std::string shipped = std::string("\"") + e.certDir + "\"";
        ASSERT_NE(readFile(path).find(shipped), std::string::npos) << shipped;
        path = t.write(e.file, replaceAll(readFile(path), shipped, "\"" + t.path() + "/certs/" + e.node + "\""));
      }
      Ran r = ugated({"--check-config", path});
      EXPECT_EQ(r.rc, 0) << r.out;
      EXPECT_EQ(r.out.rfind(path + ": ok (", 0), 0u) << r.out;
      if (!e.start) continue;
      DaemonProcess d({"--config", path});
      EXPECT_TRUE(d.waitReady(15000)) << d.logs();
      d.signal(SIGTERM);
      EXPECT_EQ(d.wait(10000), 0) << d.logs();
    }
  };
  if (!runInPrivateNetns(body, &why)) GTEST_SKIP() << why;
}

// ---------------------------------------------------------------------------------------------
// A second ugated on the same addresses.

// Two: ugated A serving a forwarder, SOCKS5 and UDP, and the config of a second one, B, that
// names A's SOCKS, UDP and admin addresses.
struct Two {
  UgatedFixture a;
  TcpServer echo;
  UdpEchoServer udpEcho;
  HttpServer origin;
  uint16_t fwd = freePort(), socks = freePort(), udp = freeUdpPort(), bAdmin = freePort();
  std::string bPath;

  std::string listeners(uint16_t fwdPort) const {
    return UgatedFixture::listener("fwd", "tcp", fwdPort, "127.0.0.1:" + std::to_string(echo.port())) + "," +
           UgatedFixture::listener("socks", "socks5", socks, "") + "," +
           UgatedFixture::listener("dns", "udp", udp, "127.0.0.1:" + std::to_string(udpEcho.port()));
  }
  bool startA() { return a.start(a.config(listeners(fwd), "", 2)); }
  // openStream: a connection through A's forwarder that has carried "abcd" (-1 on failure).
  int openStream() const {
    int fd = connectTcp(fwd);
    char buf[4];
    if (fd < 0 || !writeAll(fd, "abcd", 4) || !readN(fd, buf, 4)) return -1;
    return fd;
  }
  // b: A's addresses but its own forwarder port (the errors B reports are exactly the shared ones).
  std::string writeB(bool sameAdmin) {
    std::string cfg = a.config(listeners(freePort()), "", 2);
    if (!sameAdmin) {
      cfg = replaceAll(cfg, "127.0.0.1:" + std::to_string(a.admin), "127.0.0.1:" + std::to_string(bAdmin));
    }
    bPath = a.dir.write("b.json", cfg);
    return bPath;
  }
  std::string inUse(const std::string& what, const std::string& addr) const {
    return what + ": " + addr + " is already in use by another process (pid " + std::to_string(a.proc->pid()) +
           ": " + UGATED_BINARY + " --config " + a.dir.path() + "/ugated.json)";
  }
};

TEST(DoubleBind, SecondInstanceIsRefusedAndTheFirstKeepsServing) {
  if (!haveTool("curl --version")) GTEST_SKIP() << "curl not installed";
  Two two;
  ASSERT_TRUE(two.startA()) << two.a.logs();
  ASSERT_EQ(curlThroughSocks(two.socks, two.origin.srv.port()), "hello from the origin\n");

  const std::string socksErr = two.inUse("listeners[1] 'socks'", "127.0.0.1:" + std::to_string(two.socks));
  const std::string udpErr = two.inUse("listeners[2] 'dns'", "127.0.0.1:" + std::to_string(two.udp) + " (udp)");
  const std::string adminErr = two.inUse("admin.address", "127.0.0.1:" + std::to_string(two.a.admin));

  // B exits with every address A holds (exit 1: only binds fail), without serving anything.
  Ran b = ugated({"--config", two.writeB(/*sameAdmin=*/true)});
  EXPECT_EQ(b.rc, 1) << b.out;
  for (const auto& want : {socksErr, udpErr, adminErr}) {
    EXPECT_NE(b.out.find("startup: " + want), std::string::npos) << want << " in:\n" << b.out;
  }
  EXPECT_EQ(count(b.out, "startup: "), 3u) << b.out;
  EXPECT_EQ(b.out.find(" ready:"), std::string::npos) << b.out;

  // check-config of B's file while A runs says the same.
  Ran check = ugated({"--check-config", two.bPath});
  EXPECT_EQ(check.rc, 2) << check.out;
  EXPECT_EQ(check.out.rfind(two.bPath + ": 3 errors\n", 0), 0u) << check.out;
  for (const auto& want : {socksErr, udpErr, adminErr}) {
    EXPECT_NE(check.out.find("\n  " + want + "\n"), std::string::npos) << want << " in:\n" << check.out;
  }
  // ... and of A's own file: a reload of A would keep those sockets; a note, not an error.
  const std::string aPath = two.a.dir.path() + "/ugated.json";
  Ran own = ugated({"--check-config", aPath});
  EXPECT_EQ(own.rc, 0) << own.out;
  EXPECT_EQ(count(own.out, "running this file: a SIGHUP reload keeps it; a second instance would not start"), 4u)
      << own.out;

  // A still serves everything, alone.
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(curlThroughSocks(two.socks, two.origin.srv.port()), "hello from the origin\n") << i;
  }
  EXPECT_EQ(two.a.metric("ugate_listener_connections_total{listener=\"socks\"}"), 11);
  int u = udpSocket(two.udp);
  std::string back;
  EXPECT_TRUE(udpExchange(u, "ping", back) && back == "ping");
  close(u);
  EXPECT_TRUE(two.a.proc->running());
}

TEST(DoubleBind, ReloadOfTheFirstKeepsWorking) {
  Two two;
  ASSERT_TRUE(two.startA()) << two.a.logs();
  int held = two.openStream();
  ASSERT_GE(held, 0);
  char buf[4];
  auto reload = [&](const std::string& cfg, const char* result, int64_t n) {
    two.a.rewrite(cfg);
    two.a.proc->signal(SIGHUP);
    return two.a.waitMetric(std::string("ugate_config_reloads_total{result=\"") + result + "\"}", n);
  };
  // Unchanged listeners: their sockets stay; a changed backlog re-binds beside this process's own
  // sockets on the same address; a new listener on a free address binds.
  ASSERT_TRUE(reload(two.a.config(two.listeners(two.fwd), "", 2), "ok", 1)) << two.a.logs();
  std::string changed =
      replaceAll(two.listeners(two.fwd), R"("kind": "socks5")", R"("kind": "socks5", "backlog": 128)");
  ASSERT_TRUE(reload(two.a.config(changed, "", 2), "ok", 2)) << two.a.logs();
  uint16_t added = freePort();
  std::string withAdded =
      changed + "," +
      UgatedFixture::listener("added", "tcp", added, "127.0.0.1:" + std::to_string(two.echo.port()));
  ASSERT_TRUE(reload(two.a.config(withAdded, "", 2), "ok", 3)) << two.a.logs();
  int c = connectTcp(added);
  ASSERT_GE(c, 0);
  EXPECT_TRUE(writeAll(c, "wxyz", 4) && readN(c, buf, 4) && std::string(buf, 4) == "wxyz");
  close(c);

  // A new listener on an address another process holds: the reload is rejected, naming it.
  TcpServer other;
  std::string clash = withAdded + "," + UgatedFixture::listener("clash", "tcp", other.port(), "127.0.0.1:1");
  ASSERT_TRUE(reload(two.a.config(clash, "", 2), "error", 1)) << two.a.logs();
  EXPECT_NE(two.a.logs().find("reload rejected: listeners[4] 'clash': 127.0.0.1:" + std::to_string(other.port()) +
                              " is already in use by another process (pid " + std::to_string(getpid()) + ": "),
            std::string::npos)
      << two.a.logs();

  // Everything still serves: the stream from before the reloads, and new connections.
  ASSERT_TRUE(writeAll(held, "efgh", 4) && readN(held, buf, 4));
  EXPECT_EQ(std::string(buf, 4), "efgh");
  close(held);
  c = connectTcp(two.fwd);
  EXPECT_TRUE(writeAll(c, "ijkl", 4) && readN(c, buf, 4));
  close(c);
  EXPECT_EQ(httpGet(two.a.admin, "/ready"), 200);
}

// SIGTERM: A drains its open stream and has closed its listeners, so a replacement B may bind the
// same addresses at once (no sharing: A no longer listens), and A still exits 0 when its stream ends.
TEST(DoubleBind, DrainingFirstLetsTheReplacementBind) {
  Two two;
  ASSERT_TRUE(two.startA()) << two.a.logs();
  int held = two.openStream();
  ASSERT_GE(held, 0);
  char buf[4];
  two.a.proc->signal(SIGTERM);
  ASSERT_TRUE(waitFor([&] { return httpGet(two.a.admin, "/ready") == 503; })) << two.a.logs();
  ASSERT_TRUE(waitFor([&] {  // the listeners close at once
    int fd = connectTcp(two.fwd);
    if (fd >= 0) close(fd);
    return fd < 0;
  }));
  // B takes over A's listener addresses while A drains (its admin differs: A's is still up).
  std::string cfg = two.a.config(two.listeners(two.fwd), "", 2);
  cfg = replaceAll(cfg, "127.0.0.1:" + std::to_string(two.a.admin), "127.0.0.1:" + std::to_string(two.bAdmin));
  DaemonProcess b({"--config", two.a.dir.write("b.json", cfg)});
  ASSERT_TRUE(b.waitReady(two.bAdmin)) << b.logs();
  int fresh = connectTcp(two.fwd);
  ASSERT_TRUE(writeAll(fresh, "new!", 4) && readN(fresh, buf, 4));
  close(fresh);
  // A's stream is untouched by B; when it ends, A exits 0.
  ASSERT_TRUE(writeAll(held, "efgh", 4) && readN(held, buf, 4));
  EXPECT_EQ(std::string(buf, 4), "efgh");
  EXPECT_TRUE(two.a.proc->running());
  close(held);
  EXPECT_EQ(two.a.proc->wait(10000), 0) << two.a.logs();
  b.signal(SIGTERM);
  EXPECT_EQ(b.wait(10000), 0) << b.logs();
}

// tcpStates: the TCP states of the sockets with local port `port`.
std::vector<int> tcpStates(uint16_t port) {
  std::vector<int> out;
  for (const auto& s : procSockets("tcp")) {
    if (s.local.port() == port) out.push_back(s.state);
  }
  return out;
}

// Connections a stopped ugated closed first sit in TIME_WAIT on its listen port: they do not make
// the address "in use" for the next ugated.
TEST(DoubleBind, TimeWaitConnectionsOfAStoppedInstanceDoNotCount) {
  UgatedFixture f;
  TcpServer echo;
  uint16_t port = freePort();
  std::string cfg = f.config(UgatedFixture::listener("fwd", "tcp", port, "127.0.0.1:" + std::to_string(echo.port()),
                                                     R"(, "idleTimeout": "100ms")"));
  ASSERT_TRUE(f.start(cfg)) << f.logs();
  for (int i = 0; i < 3; ++i) {
    int fd = connectTcp(port);
    char buf[2];
    ASSERT_TRUE(writeAll(fd, "hi", 2) && readN(fd, buf, 2));
    EXPECT_EQ(readAll(fd, 5000), "");  // ugated closes first (idle timeout), then the client
    close(fd);
  }
  f.proc->signal(SIGTERM);
  ASSERT_EQ(f.proc->wait(10000), 0) << f.logs();
  const auto states = tcpStates(port);
  ASSERT_NE(std::count(states.begin(), states.end(), 0x06), 0) << "no TIME_WAIT on the port: the case is not tested";
  Ran check = ugated({"--check-config", f.dir.path() + "/ugated.json"});
  EXPECT_EQ(check.rc, 0) << check.out;
  DaemonProcess again({"--config", f.dir.path() + "/ugated.json"});
  EXPECT_TRUE(again.waitReady(f.admin)) << again.logs();
}

// A connection whose local port is the listen port (an ephemeral port, as under load) blocks the
// bind too; the error says that it is no listening socket.
TEST(DoubleBind, AConnectionOnThePortIsNamedAsSuch) {
  TcpServer server;
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // no SO_REUSEADDR, like most clients
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(c, reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0);
  socklen_t len = sizeof(local);
  getsockname(c, reinterpret_cast<sockaddr*>(&local), &len);
  sockaddr_in to = local;
  to.sin_port = htons(server.port());
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  const uint16_t port = ntohs(local.sin_port);
  UgatedFixture f;
  std::string path = f.dir.write("c.json", f.config(UgatedFixture::listener("fwd", "tcp", port, "127.0.0.1:1")));
  Ran r = ugated({"--check-config", path});
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("\n  listeners[0] 'fwd': 127.0.0.1:" + std::to_string(port) +
                       " is already in use by a socket that is not listening"),
            std::string::npos)
      << r.out;
  close(c);
}

// sharePort: several ugated on one port on purpose (the soak test's split past one process's fd
// limit): allowed for processes of one user that all set it.
TEST(DoubleBind, SharePortLetsProcessesOfOneUserShareOnPurpose) {
  UgatedFixture one, two;
  TcpServer echo;
  uint16_t port = freePort();
  auto cfg = [&](const UgatedFixture& f) {
    return f.config(UgatedFixture::listener("fwd", "tcp", port, "127.0.0.1:" + std::to_string(echo.port()),
                                            R"(, "sharePort": true)"));
  };
  ASSERT_TRUE(one.start(cfg(one))) << one.logs();
  ASSERT_TRUE(two.start(cfg(two))) << two.logs();
  // A socket that is not shareable (no SO_REUSEPORT) still stops a sharePort listener.
  TcpServer plain;
  UgatedFixture three;
  std::string path = three.dir.write(
      "c.json", three.config(UgatedFixture::listener("fwd", "tcp", plain.port(), "127.0.0.1:1",
                                                     R"(, "sharePort": true)")));
  Ran r = ugated({"--check-config", path});
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("which sharePort cannot join (it must be of this user and set SO_REUSEPORT)"), std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace ugate::test

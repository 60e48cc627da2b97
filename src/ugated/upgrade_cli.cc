// `ugated upgrade`: asks a running ugated (through its admin endpoint) to upgrade to the binary at
// its path, waits for the outcome and says it; the exit status is 0 only when the new process took
// over.
#include "ugated/upgrade_cli.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <ugate/config.h>
#include <ugate/socket_address.h>

namespace ugate {

namespace {

constexpr const char* kUpgradeUsage = R"(usage: ugated upgrade [--admin HOST:PORT | -c FILE]

Upgrades a running ugated to the binary now at its path (install the new one first): the running
process starts it and hands it every listening socket and every established spliced TCP connection,
so nothing is refused or dropped; connections inside TLS, HTTP/2 or QUIC finish in the old process,
which then exits. Prints the outcome; exit status 0 when the new process took over, 1 when not (the
old one then keeps serving). Same as SIGUSR2, with an answer. docs/OPERATIONS.md "Upgrades".

  --admin HOST:PORT   the daemon's admin endpoint (default 127.0.0.1:15000)
  -c, --config FILE   read the admin address from the daemon's config file
  --timeout SECONDS   how long to wait for the outcome (default 120)
)";

int fail(const std::string& msg) {
  fprintf(stderr, "ugated upgrade: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int runUpgradeCommand(int argc, char** argv) {
  std::string admin = "127.0.0.1:15000";
  int timeoutSec = 120;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      fputs(kUpgradeUsage, stdout);
      return 0;
    }
    if (i + 1 >= argc) return fail(std::string(a) + ": needs a value (see ugated upgrade --help)");
    const char* v = argv[++i];
    if (a == "--admin") {
      admin = v;
    } else if (a == "-c" || a == "--config") {
      auto cfg = loadConfigFile(v, ConfigDefaults::fromEnvironment());
      if (!cfg) return fail(cfg.error().detail);
      if (!(*cfg)->admin.enabled) return fail(std::string(v) + ": the admin endpoint is off; send SIGUSR2 instead");
      admin = (*cfg)->admin.address.str();
    } else if (a == "--timeout") {
      timeoutSec = atoi(v);
      if (timeoutSec <= 0) return fail("--timeout: a positive number of seconds");
    } else {
      return fail("unknown argument '" + std::string(a) + "' (see ugated upgrade --help)");
    }
  }
  auto addr = SocketAddress::parse(admin);
  if (!addr) return fail("'" + admin + "' is not HOST:PORT with an IP address");
  int fd = socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, addr->sa(), addr->len()) != 0) {
    return fail("cannot reach the admin endpoint " + admin + ": " + strerror(errno));
  }
  const std::string req = "POST /upgrade HTTP/1.1\r\nHost: " + admin +
                          "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return fail(std::string("send: ") + strerror(errno));
  }
  std::string resp;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, timeoutSec * 1000);
    if (r == 0) {
      close(fd);
      return fail("no answer within " + std::to_string(timeoutSec) + " s (see the daemon's log)");
    }
    if (r < 0 && errno == EINTR) continue;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
    const size_t head = resp.find("\r\n\r\n");
    if (head != std::string::npos) {
      const size_t cl = resp.find("Content-Length: ");
      if (cl != std::string::npos && cl < head &&
          resp.size() >= head + 4 + std::stoul(resp.substr(cl + 16, resp.find("\r\n", cl) - cl - 16))) {
        break;
      }
    }
  }
  close(fd);
  const size_t head = resp.find("\r\n\r\n");
  if (resp.size() < 12 || head == std::string::npos) return fail("no HTTP answer from " + admin);
  const int status = atoi(resp.c_str() + 9);
  const std::string body = resp.substr(head + 4);
  if (status == 200) {
    fputs(body.c_str(), stdout);
    return 0;
  }
  return fail(status == 404 ? "this daemon does not know /upgrade (older than this command)" : body);
}

}  // namespace ugate

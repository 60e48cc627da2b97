// ugated: command line entry point. The only place modules are wired together.
#include <fcntl.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "auth/cli.h"
#include <ugate/config.h>
#include "iptables/iptables_cli.h"
#include "webpush/push_cli.h"
#include "ugated/daemon.h"
#include "ugated/modules.h"
#include "ugated/preflight.h"
#include "ugated/upgrade_cli.h"

#include <unistd.h>

#include <cstdlib>
#include <vector>


namespace {

constexpr const char* kUsage = R"(usage: ugated [options]
       ugated id --data-dir DIR [--cert] [--name N] [--trust-domain D] [--owner USER[:GROUP]]
       ugated ca init --dir DIR [--trust-domain D]
       ugated ca issue --dir DIR --name NAME --out DIR2 [--namespace NS] [--owner USER[:GROUP]]
       ugated iptables print|apply|clean [--mode redirect|tproxy] [options]
       ugated upgrade [--admin HOST:PORT | -c FILE]
       ugated push vapid-keys|subscribe|listen|send [options]

ugate L4 gateway daemon. `ugated id` prints this node's ID (creating its identity on first use);
`ugated ca` creates a mesh CA and issues node certificates (`ugated id --help`, `ugated ca --help`).
`ugated iptables` shows, installs or removes Istio-compatible capture rules for running as a
sidecar (`ugated iptables --help`, docs/SIDECAR.md). `ugated upgrade` makes the running daemon hand
its sockets and connections to the binary now installed at its path (`ugated upgrade --help`).

options:
  -c, --config FILE         run with the JSON config FILE (default: the embedded default config,
                            loopback only, dials nothing)
      --check-config FILE   check that FILE would start, touching nothing, and exit (0 it would,
                            2 it would not): the config, the TLS credentials, log paths, and that
                            no other process holds a listen address; every error, with its path
      --print-default-config
                            print the embedded default config and exit
      --log-level LEVEL     trace, debug, info, warn, error, critical or off (overrides log.level)
  -v, --version             print the version and exit
  -h, --help                this help

signals: SIGHUP reopens the log files and reloads the config; SIGUSR1 only reopens the log files
(logrotate); SIGUSR2 upgrades to the binary at this one's path (as `ugated upgrade`);
SIGTERM/SIGINT drain (up to limits.drainTimeout) and exit.
docs: docs/CONFIG.md (every key), docs/OPERATIONS.md (signals, log rotation), docs/ARCHITECTURE.md.
)";

int usageError(const std::string& msg) {
  fprintf(stderr, "ugated: %s\n(see ugated --help)\n", msg.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Subcommands: identity and CA management (src/auth/cli.cc).
  if (argc >= 2 && std::string_view(argv[1]) == "id") return ugate::auth::runIdCommand(argc - 1, argv + 1);
  if (argc >= 2 && std::string_view(argv[1]) == "ca") return ugate::auth::runCaCommand(argc - 1, argv + 1);
  // Web Push application server and subscriber (src/webpush/push_cli.cc).
  if (argc >= 2 && std::string_view(argv[1]) == "push") return ugate::webpush::runPushCommand(argc - 1, argv + 1);
  // Capture rules for sidecar mode (src/iptables/iptables_cli.cc).
  if (argc >= 2 && std::string_view(argv[1]) == "iptables") {
    return ugate::iptables::runIptablesCommand(argc - 1, argv + 1);
  }
  if (argc >= 2 && std::string_view(argv[1]) == "upgrade") return ugate::runUpgradeCommand(argc - 1, argv + 1);
  ugate::registerBuiltinModules(ugate::modules(), ugate::listenerKinds());
  ugate::DaemonOptions opts;
  opts.argv.assign(argv, argv + argc);
  {
    // The binary's path now: an upgrade starts whatever is installed there later.
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) opts.exe.assign(exe, static_cast<size_t>(n));
  }
  if (const char* fd = getenv("UGATE_UPGRADE_FD")) {
    // Started by an upgrade (src/ugated/upgrade.cc): the channel to the old process.
    opts.upgradeFd = atoi(fd);
    unsetenv("UGATE_UPGRADE_FD");
    if (opts.upgradeFd < 3 || fcntl(opts.upgradeFd, F_SETFD, FD_CLOEXEC) != 0) {
      fprintf(stderr, "ugated: UGATE_UPGRADE_FD=%s is not an open descriptor\n", fd);
      return 2;
    }
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view flag) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)flag;
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    } else if (a == "-v" || a == "--version") {
      printf("ugated %s\n", UGATE_VERSION);
      return 0;
    } else if (a == "--print-default-config") {
      fwrite(ugate::defaultConfigJson().data(), 1, ugate::defaultConfigJson().size(), stdout);
      fputc('\n', stdout);
      return 0;
    } else if (a == "--check-config") {
      const char* f = value(a);
      if (!f) return usageError("--check-config needs a FILE");
      return ugate::runCheckConfig(f);
    } else if (a == "-c" || a == "--config") {
      const char* f = value(a);
      if (!f) return usageError(std::string(a) + " needs a FILE");
      opts.configPath = f;
    } else if (a.starts_with("--config=")) {
      opts.configPath = std::string(a.substr(9));
    } else if (a == "--log-level") {
      const char* l = value(a);
      if (!l) return usageError("--log-level needs a LEVEL");
      std::string_view lv = l;
      if (lv != "trace" && lv != "debug" && lv != "info" && lv != "warn" && lv != "error" &&
          lv != "critical" && lv != "off") {
        return usageError("unknown log level '" + std::string(lv) + "'");
      }
      opts.logLevel = l;
    } else {
      return usageError("unknown argument '" + std::string(a) + "'");
    }
  }
  ugate::Daemon d(opts);
  return d.run();
}

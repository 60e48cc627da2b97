#pragma once
// Daemon: the main thread. Owns the config, the workers, the admin endpoint and the signals.
#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <ugate/reactor.h>

#include <ugate/config.h>
#include <ugate/config_store.h>
#include <ugate/listener_stats.h>
#include "core/cluster_manager.h"
#include "core/worker.h"
#include "http/admin_server.h"
#include "http/health_probe.h"
#include "core/handover_channel.h"
#include "core/handover.h"
#include "ugated/tls_manager.h"

namespace ugate {

struct DaemonOptions {
  std::string configPath;  // empty = embedded default
  std::string logLevel;    // overrides log.level when set
  std::vector<std::string> argv;  // the command line, for the new binary of an upgrade
  std::string exe;                // this binary's path when it started (the upgrade runs that path)
  int upgradeFd{-1};              // the channel to the old process when started by an upgrade
};

/** UpgradeReply: the outcome of an upgrade for whoever asked (POST /upgrade): HTTP status, text. */
using UpgradeReply = std::function<void(int status, std::string text)>;

class Daemon final : private http::AdminHandler, private IoWatcher {
 public:
  explicit Daemon(DaemonOptions opts);
  ~Daemon() override;
  /** run starts everything, serves until SIGTERM/SIGINT and drained; returns the exit code. */
  int run();

 private:
  /** serve is run() until the daemon stops: startup, the main loop, the drain. */
  int serve();
  // ugate::http::AdminHandler
  void handleAdmin(const http::Request& req, http::AdminResponder respond) override;
  void onAdminBadRequest(std::string_view reason) override;
  // ugate::IoWatcher (signalfd)
  void onIoEvent(uint32_t events) override;

  /** loadConfig reads the document from source_ and parses it. */
  Result<ConfigPtr> loadConfig() const;
  /** configApplied (main thread, after cfg_ took effect): records it in the config store, (un)watches the file. */
  void configApplied();
  /** openSockets binds every listener of cfg not in `keep` once per worker. */
  Result<std::vector<std::vector<ListenSocket>>> openSockets(const Config& cfg, const Config* old);
  /** applyLogConfig sets the level and points the daemon log at cfg's log.file (error: unchanged). */
  Result<void> applyLogConfig(const Config& cfg);
  Result<int> openAccessLog(const std::string& path);
  /**
   * switchDaemonLog points fd 2 (spdlog's sink) at `path`, or back at the stderr ugated was started
   * with when path is "". dup2 swaps the file under the descriptor atomically, so threads logging
   * at that moment need no lock: their line lands in the old file or the new one.
   */
  Result<void> switchDaemonLog(const std::string& path);
  /** reopenLogs opens the log files again at their paths (after logrotate moved them). */
  void reopenLogs(const char* why);
  /**
   * bindEndpoint opens the admin endpoint (admin) or the readiness port (!admin) on addr; the error
   * names the address.
   */
  Result<std::unique_ptr<http::AdminServer>> bindEndpoint(bool admin, const SocketAddress& addr);
  /** rebindEndpoint moves the admin endpoint or the readiness port on reload when its address changed. */
  void rebindEndpoint(bool admin, bool wasOn, const SocketAddress& was, bool on, const SocketAddress& addr);
  /** readyState: what /ready and the readiness port answer. */
  http::ReadyState readyState() const;
  /** handleLogging serves GET and POST /logging (the daemon log's level at runtime). */
  void handleLogging(const http::Request& req, http::AdminResponder respond);
  void onSignal(int signo);
  // --- upgrades (src/ugated/upgrade.cc) ---
  /** startUpgrade starts the new binary and hands everything over (main thread); reply may be null. */
  void startUpgrade(UpgradeReply reply);
  /** runUpgrade: the old process's side of the handover, on its own thread. */
  void runUpgrade(int channelFd, int childPid, ConfigPtr cfg);
  /** finishUpgrade (main thread): report, and on success drain what stayed and exit. */
  void finishUpgrade(bool ok, int childPid, std::string text);
  /**
   * receiveListeners: the new process's first step (blocking, before anything is bound): says
   * hello and takes the old process's listening sockets into inherited_.
   */
  Result<void> receiveListeners();
  /** receiveSessions: once the workers accept, the connections and the admin/readiness sockets. */
  Result<void> receiveSessions();
  /**
   * takeOverEndpoints: the sessions, then the admin endpoint and the readiness port from the old
   * process (or bound here when their address changed).
   */
  void takeOverEndpoints();
  /** inheritedConfig: a config holding the listeners whose sockets came over (preflight skips them). */
  ConfigPtr inheritedConfig() const;
  void reload();
  void startDrain();
  void checkDrained();
  void gatherStats(std::function<void(std::vector<WorkerStatsSnapshot>)> done);
  std::string renderStats(const std::vector<WorkerStatsSnapshot>& snaps) const;

  DaemonOptions opts_;
  ReactorPtr reactor_;
  ConfigPtr cfg_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<ClusterManager> clusters_;  // clusters_: upstream clusters (owner on worker 0)
  std::unique_ptr<http::AdminServer> admin_;
  std::unique_ptr<http::HealthProbeHandler> healthHandler_;  // healthHandler_: answers health_'s requests
  std::unique_ptr<http::AdminServer> health_;  // health_: the readiness port (config "health"), or null
  std::unique_ptr<TlsManager> tls_;
  ConfigSourcePtr source_;  // source_: where the config document comes from (file or memory)
  uint64_t watchChanges_{0};
  int signalFd_{-1};
  int accessLogFd_{-1};
  bool ownAccessLogFd_{false};  // ownAccessLogFd_: accessLogFd_ is a file of ours (not stdout, not off)
  std::string daemonLogPath_;   // daemonLogPath_: the file fd 2 points at ("" = the original stderr)
  int savedStderr_{-1};         // savedStderr_: the original stderr, kept once fd 2 was redirected
  std::map<std::string, uint64_t, std::less<>> adminBadRequests_;  // by reason (main thread only)
  uint64_t logReopensOk_{0};
  uint64_t logReopensFailed_{0};
  uint64_t fdLimit_{0};
  uint32_t maxConnPerWorker_{0};
  bool ready_{false};
  bool draining_{false};
  MonotonicTime drainDeadline_{};
  MonotonicTime started_{};
  TimerPtr drainTimer_;
  uint64_t reloadsOk_{0};
  uint64_t reloadsFailed_{0};
  // Upgrades. The old process: upgrading_ while the thread runs; replies waiting for its outcome.
  bool upgrading_{false};
  bool handedOff_{false};  // handedOff_: an upgrade succeeded; systemd's main PID is the new process
  std::thread upgradeThread_;
  std::vector<UpgradeReply> upgradeReplies_;
  uint64_t upgradesOk_{0};
  uint64_t upgradesFailed_{0};
  uint64_t sessionsHandedOver_{0};
  // The new process: the channel, and the sockets that came over (listener name -> sockets).
  std::unique_ptr<handover::Channel> upgradeChannel_;
  struct InheritedSocket {
    SocketAddress address;  // the listener's configured address
    bool datagram{false};
    uint16_t worker{0};
    int fd{-1};
  };
  std::map<std::string, std::vector<InheritedSocket>, std::less<>> inherited_;
  std::vector<std::pair<handover::Endpoint, int>> inheritedEndpoints_;
  uint64_t sessionsAdopted_{0};
};

/**
 * setupLogging installs the stderr logger (once) with UTC timestamps, as text or as JSON lines
 * (log.format "json"; switched on reload), and sets the level.
 */
void setupLogging(const std::string& level, bool json = false);

}  // namespace ugate

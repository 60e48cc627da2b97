#include "ugated/daemon.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <tuple>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "core/fs_check.h"
#include "core/json_log.h"
#include "core/sd_notify.h"
#include <ugate/metrics.h>
#include <ugate/module.h>
#include <ugate/socket_util.h>
#include "ugated/preflight.h"


namespace ugate {

void setupLogging(const std::string& level, bool json) {
  static bool once = false;
  static bool isJson = false;
  if (!once || json != isJson) {
    if (!once) spdlog::set_default_logger(spdlog::stderr_logger_mt("ugated"));
    if (json) spdlog::default_logger()->set_formatter(newJsonLogFormatter());
    else spdlog::default_logger()->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
    spdlog::flush_on(spdlog::level::info);
    once = true;
    isJson = json;
  }
  spdlog::set_level(spdlog::level::from_str(level));
}

namespace {

int cpuCount() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)) > 0 ? static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)) : 1;
}

// warnIfAdminExposed: the admin endpoint has no authentication; say so when it is reachable from
// other hosts.
void warnIfAdminExposed(const SocketAddress& a) {
  if (a.isLoopback()) return;
  spdlog::warn("admin: {} is not a loopback address: /stats and /config_dump answer anyone who can "
               "reach it (there is no authentication; secrets are redacted)",
               a.str());
}

// adminModule: the module that answers admin path `path`, or null.
const Module* adminModule(std::string_view path) {
  for (const auto& m : modules().list()) {
    for (const auto& p : m->adminPaths()) {
      if (p == path) return m.get();
    }
  }
  return nullptr;
}

// listItem: `item` is one of the comma-separated elements of `list` ("GET, HEAD").
bool listItem(std::string_view list, std::string_view item) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (list.substr(0, comma) == item) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
    while (list.starts_with(' ')) list.remove_prefix(1);
  }
  return false;
}

// queryParam: the raw value of `name` in target's query string ("" when absent).
std::string_view queryParam(std::string_view target, std::string_view name) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view kv = rest.substr(0, amp);
    if (kv.size() > name.size() && kv.starts_with(name) && kv[name.size()] == '=') return kv.substr(name.size() + 1);
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return {};
}

// kLogLevels: log.level's names, indexed by spdlog::level::level_enum.
constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};

}  // namespace

Daemon::Daemon(DaemonOptions opts)
    : opts_(std::move(opts)),
      reactor_(newReactor(realTimeSource(), -1)),
      healthHandler_(std::make_unique<http::HealthProbeHandler>("", [this] { return readyState(); })),
      source_(opts_.configPath.empty()
                  ? ConfigSourcePtr(std::make_unique<MemoryConfigSource>("<default>", std::string(defaultConfigJson())))
                  : fileConfigSource(opts_.configPath)) {}

Daemon::~Daemon() {
  if (upgradeThread_.joinable()) upgradeThread_.join();
  for (auto& w : workers_) w->join();
  clusters_.reset();  // its timers and probes live on worker 0's reactor
  workers_.clear();
  admin_.reset();
  health_.reset();
  source_.reset();  // its inotify descriptor is registered with reactor_
  if (signalFd_ >= 0) {
    reactor_->removeFd(signalFd_, this);
    close(signalFd_);
  }
  if (ownAccessLogFd_ && accessLogFd_ >= 0) close(accessLogFd_);
  if (savedStderr_ >= 0) close(savedStderr_);
}

Result<ConfigPtr> Daemon::loadConfig() const {
  // $STATE_DIRECTORY (systemd's StateDirectory=) stands in for an unset node.dataDir.
  const ConfigDefaults defaults = ConfigDefaults::fromEnvironment();
  auto text = source_->read();
  if (!text) return text.error();
  return parseConfig(*text, source_->location(), defaults);
}

void Daemon::configApplied() {
  // The config store: what the document supplied, per element, under its source's kind.
  configStore().publish({std::string(source_->kind()), source_->location(), contentVersion(cfg_->json),
                         cfg_->resources, 0});
  const bool was = source_->watching();
  auto r = source_->watch(*reactor_, cfg_->watch.enabled ? cfg_->watch.debounce : Duration(0), [this] {
    ++watchChanges_;
    spdlog::info("config: {} changed: reloading", source_->location());
    reload();
  });
  if (!r) {
    spdlog::error("configWatch: {}; edits wait for a SIGHUP", r.error().detail);
  } else if (was != source_->watching()) {
    spdlog::info("configWatch: {} {}", source_->location(), was ? "no longer watched" : "watched: edits are applied like SIGHUP");
  }
}

Result<void> Daemon::applyLogConfig(const Config& cfg) {
  setupLogging(opts_.logLevel.empty() ? cfg.log.level : opts_.logLevel, cfg.log.json);
  if (cfg.log.file == daemonLogPath_) return {};
  return switchDaemonLog(cfg.log.file);
}

Result<void> Daemon::switchDaemonLog(const std::string& path) {
  if (path.empty()) {
    if (savedStderr_ >= 0) dup2(savedStderr_, STDERR_FILENO);
    daemonLogPath_.clear();
    return {};
  }
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return makeError(errcFromErrno(errno), "log.file: " + path + ": " + strerror(errno));
  if (savedStderr_ < 0) savedStderr_ = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);  // -1: none to keep
  if (dup2(fd, STDERR_FILENO) < 0) {
    int e = errno;
    close(fd);
    return makeError(errcFromErrno(e), "log.file: " + path + ": dup2: " + strerror(e));
  }
  close(fd);
  daemonLogPath_ = path;
  return {};
}

void Daemon::reopenLogs(const char* why) {
  std::string reopened, failed;
  auto note = [](std::string& list, const std::string& item) { list += (list.empty() ? "" : ", ") + item; };
  if (!daemonLogPath_.empty()) {
    auto r = switchDaemonLog(daemonLogPath_);
    if (r) note(reopened, daemonLogPath_);
    else note(failed, r.error().detail);
  }
  if (ownAccessLogFd_ && accessLogFd_ >= 0) {
    // Workers keep writing to accessLogFd_: dup3 puts the new file under that number atomically
    // (a write in progress completes in the old file), so no worker is told or waited for.
    auto fd = openAccessLog(cfg_->log.accessLog);
    if (!fd) {
      note(failed, fd.error().detail);
    } else {
      int r = dup3(*fd, accessLogFd_, O_CLOEXEC);
      int e = errno;
      close(*fd);
      if (r < 0) note(failed, "log.accessLog: " + cfg_->log.accessLog + ": dup3: " + strerror(e));
      else note(reopened, cfg_->log.accessLog);
    }
  }
  if (reopened.empty() && failed.empty()) {
    spdlog::info("{}: no log file to reopen (log.file is unset, log.accessLog is not a file)", why);
    return;
  }
  if (!failed.empty()) {
    ++logReopensFailed_;
    spdlog::error("{}: reopening logs failed, still writing to the old files: {}", why, failed);
  } else {
    ++logReopensOk_;
  }
  if (!reopened.empty()) spdlog::info("{}: reopened {}", why, reopened);
}

Result<int> Daemon::openAccessLog(const std::string& path) {
  if (path.empty()) return -1;
  if (path == "-") return STDOUT_FILENO;
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    const int e = errno;
    // The reason --check-config gives, when it explains more than errno (a missing directory).
    if (auto why = checkCanAppend(path); !why) {
      return makeError(errcFromErrno(e), "log.accessLog: " + why.error().detail);
    }
    return makeError(errcFromErrno(e), "log.accessLog: " + path + ": " + strerror(e));
  }
  return fd;
}

Result<std::vector<std::vector<ListenSocket>>> Daemon::openSockets(const Config& cfg, const Config* old) {
  std::vector<std::vector<ListenSocket>> per(workers_.size());
  auto rollback = [&] {
    for (auto& v : per)
      for (auto& s : v) close(s.fd);
  };
  for (const auto& l : cfg.listeners) {
    if (keepsSockets(old, l)) continue;
    SocketAddress addr = l.address;
    std::function<Result<void>(int)> configure;
    if (l.spec && l.spec->configureListenSocket) {
      configure = [&l](int fd) { return l.spec->configureListenSocket(fd, l); };
    }
    const bool datagram = l.spec && l.spec->datagram;
    // An upgrade: the old process's sockets for this listener, one per worker (it may have had
    // more or fewer workers: new sockets join the same SO_REUSEPORT group; surplus ones close).
    std::vector<InheritedSocket> from;
    if (auto it = inherited_.find(l.name); it != inherited_.end()) from = std::exchange(it->second, {});
    if (!from.empty()) addr = localAddress(from.front().fd);
    for (size_t j = workers_.size(); j < from.size(); ++j) {
      spdlog::warn("upgrade: listener {}: the old process had {} sockets, this one has {} workers: closing one "
                   "(connections waiting in its queue are refused)",
                   l.name, from.size(), workers_.size());
      close(from[j].fd);
    }
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (i < from.size()) {
        per[i].push_back(ListenSocket{l.name, from[i].fd});
        continue;
      }
      auto fd = datagram ? openDatagramSocket(addr, /*reusePort=*/true, configure)
                         : openListenSocket(addr, l.backlog, /*reusePort=*/true, configure);
      if (!fd) {
        rollback();
        return makeError(fd.error().code, listenerLabel(cfg, l) + ": " + fd.error().detail);
      }
      if (addr.port() == 0) addr = localAddress(*fd);  // the other workers join the chosen port
      per[i].push_back(ListenSocket{l.name, *fd});
    }
    spdlog::info("listener {} ({}) on {}{}{}", l.name, l.kind, addr.str(),
                 l.to.type != Target::Type::None ? " -> " + l.to.str() : "",
                 from.empty() ? "" : " (sockets taken over from the old process)");
  }
  return per;
}

Result<std::unique_ptr<http::AdminServer>> Daemon::bindEndpoint(bool admin, const SocketAddress& addr) {
  std::unique_ptr<http::AdminServer> server;
  if (admin) {
    server = std::make_unique<http::AdminServer>(*reactor_, static_cast<http::AdminHandler&>(*this));
  } else {
    server = std::make_unique<http::AdminServer>(*reactor_, *healthHandler_, "health");
  }
  if (auto r = server->listen(addr); !r) return makeError(r.error().code, r.error().detail);
  if (admin) {
    spdlog::info("admin on http://{}", server->boundAddress().str());
    warnIfAdminExposed(server->boundAddress());
  } else {
    spdlog::info("readiness probe on http://{}{}", server->boundAddress().str(), healthHandler_->path());
  }
  return server;
}

void Daemon::rebindEndpoint(bool admin, bool wasOn, const SocketAddress& was, bool on, const SocketAddress& addr) {
  std::unique_ptr<http::AdminServer>& current = admin ? admin_ : health_;
  if (wasOn == on && was == addr) return;
  if (current) current->close();
  if (!on) {
    current.reset();
    return;
  }
  auto r = bindEndpoint(admin, addr);
  if (r) {
    current = std::move(*r);
    return;
  }
  spdlog::error("reload: {}; the {} endpoint stays where it was", r.error().detail, admin ? "admin" : "health");
  if (current && !current->listen(was)) current.reset();
}

http::ReadyState Daemon::readyState() const {
  if (draining_) return http::ReadyState::Draining;
  return ready_ ? http::ReadyState::Ready : http::ReadyState::Starting;
}

int Daemon::run() {
  int rc = serve();
  if (rc != 0 && !daemonLogPath_.empty() && savedStderr_ >= 0) {
    // Whoever started us watches the original stderr: say where the reason went.
    dprintf(savedStderr_, "ugated: exit status %d; the reason is in %s\n", rc, daemonLogPath_.c_str());
  }
  return rc;
}

int Daemon::serve() {
  // Signals are handled on this thread through a signalfd; workers inherit the blocked mask. They
  // are blocked before anything else, so one that arrives during startup waits in the signalfd.
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&mask, s);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signalFd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signalFd_ < 0 || !reactor_->addFd(signalFd_, this, EPOLLIN)) {
    setupLogging("info");
    spdlog::error("startup: signalfd: {}", strerror(errno));
    return 1;
  }

  auto cfg = loadConfig();
  if (!cfg) {
    setupLogging(opts_.logLevel.empty() ? "info" : opts_.logLevel);
    Findings f;
    f.addError(cfg.error().detail);
    for (const auto& e : f.errors) spdlog::error("config: {}", e);
    return 2;
  }
  cfg_ = *cfg;
  if (auto r = applyLogConfig(*cfg_); !r) {
    spdlog::error("config: {}", r.error().detail);
    return 2;
  }
  if (cfg_->node.dataDirFromEnvironment) {
    spdlog::info("node.dataDir: {} (from $STATE_DIRECTORY; the config sets none)", cfg_->node.dataDir);
  }
  started_ = reactor_->now();

  // The fd limit may be fixed (containers, sandboxes): raise the soft limit to the hard one and size
  // the per-worker connection cap from what we got.
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  fdLimit_ = rl.rlim_cur;
  const int nworkers = cfg_->workers > 0 ? cfg_->workers : cpuCount();
  // Each proxied connection holds two sockets; keep a reserve for listeners, pipes, DNS and admin.
  uint64_t reserve = 64 + 8 * static_cast<uint64_t>(nworkers) * (cfg_->listeners.size() + 1);
  uint64_t derived = fdLimit_ > reserve ? (fdLimit_ - reserve) / (2 * static_cast<uint64_t>(nworkers)) : 1;
  // limits.maxConnections is split over the workers (rounded up: SO_REUSEPORT spreads connections
  // evenly, not exactly, so no worker refuses while the process is under its cap on average).
  uint32_t wanted = cfg_->limits.maxConnectionsPerWorker;
  if (cfg_->limits.maxConnections) {
    wanted = static_cast<uint32_t>((cfg_->limits.maxConnections + nworkers - 1) / static_cast<uint32_t>(nworkers));
  }
  maxConnPerWorker_ = wanted ? wanted : static_cast<uint32_t>(derived);
  if (wanted && wanted > derived) {
    spdlog::warn("limits: {} connections per worker exceeds what the fd limit {} allows (~{})", wanted, fdLimit_,
                 derived);
  }

  // What `--check-config` checks, done for real: every problem is reported before giving up.
  Findings startup;
  auto alog = openAccessLog(cfg_->log.accessLog);
  if (alog) {
    accessLogFd_ = *alog;
    ownAccessLogFd_ = accessLogFd_ >= 0 && cfg_->log.accessLog != "-";
  } else {
    startup.addError(alog.error().detail);
  }

  for (int i = 0; i < nworkers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, cfg_, maxConnPerWorker_, accessLogFd_));
  }
  // Each module's state on each worker (created before the threads start; used only on each
  // worker's thread after).
  for (auto& w : workers_) {
    for (const auto& m : modules().list()) w->addModuleWorker(*m, m->newWorker(*w));
  }
  {
    std::vector<Worker*> ws;
    for (auto& w : workers_) ws.push_back(w.get());
    clusters_ = std::make_unique<ClusterManager>(std::move(ws));
  }
  tls_ = std::make_unique<TlsManager>(*reactor_, [this](TlsProviderPtr p) {
    for (auto& w : workers_) w->reactor().post([w = w.get(), p] { w->setTls(p); });
  });
  auto tlsReady = tls_->prepare(*cfg_);
  if (!tlsReady) startup.addError(tlsReady.error().detail);
  const bool upgrade = opts_.upgradeFd >= 0;
  if (upgrade && startup.errors.empty()) {
    // Started by an upgrade: the old process's sockets first (it holds our addresses).
    if (auto r = receiveListeners(); !r) startup.addError("upgrade: " + r.error().detail);
  }
  checkAddresses(*cfg_, startup, "", upgrade ? inheritedConfig().get() : nullptr);
  if (!startup.errors.empty()) {
    for (const auto& e : startup.errors) spdlog::error("startup: {}", e);
    // 1: only addresses that cannot be bound (as a failed bind); 2: the config cannot run here.
    return startup.bindErrors == startup.errors.size() ? 1 : 2;
  }
  auto socks = openSockets(*cfg_, nullptr);
  if (!socks) {  // the address was free a moment ago (or another bind problem): still a bind error
    spdlog::error("startup: {}", socks.error().detail);
    return 1;
  }
  healthHandler_->setPath(cfg_->health.path);
  for (auto [server, on, addr] : {std::tuple{&admin_, cfg_->admin.enabled, cfg_->admin.address},
                                  std::tuple{&health_, cfg_->health.enabled, cfg_->health.address}}) {
    if (!on || upgrade) continue;  // an upgrade takes them over at its end
    auto r = bindEndpoint(server == &admin_, addr);
    if (!r) {
      for (auto& v : *socks)
        for (auto& s : v) close(s.fd);
      spdlog::error("startup: {}", r.error().detail);
      return 1;
    }
    *server = std::move(*r);
  }
  tls_->install(cfg_, std::move(*tlsReady));  // the contexts reach each worker before the config
  ClusterSetPtr clusterSet = clusters_->prepare(*cfg_);  // and the clusters its targets name
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->startThread();
    workers_[i]->reactor().post(
        [w = workers_[i].get(), c = cfg_, cs = clusterSet, s = std::move((*socks)[i])]() mutable {
          w->setClusters(cs);
          w->applyConfig(c, std::move(s));
        });
  }
  clusters_->start(cfg_, clusterSet);
  configApplied();
  if (upgrade) takeOverEndpoints();
  ready_ = true;
  spdlog::info("ugated {} ready: {} workers, fd limit {}, max {} connections per worker, config {}",
               UGATE_VERSION, nworkers, fdLimit_, maxConnPerWorker_, cfg_->origin);
  sdNotify("READY=1\nSTATUS=serving");
  reactor_->run();
  if (upgradeThread_.joinable()) upgradeThread_.join();
  for (auto& w : workers_) w->join();
  spdlog::info("ugated stopped");
  return 0;
}

void Daemon::onIoEvent(uint32_t) {
  // Edge-triggered: take every pending signal now, or the next one would be the only wake-up.
  for (;;) {
    signalfd_siginfo si{};
    ssize_t n = read(signalFd_, &si, sizeof(si));
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof(si))) break;  // EAGAIN: none left
    onSignal(static_cast<int>(si.ssi_signo));
  }
}

void Daemon::onSignal(int signo) {
  switch (signo) {
    case SIGHUP:
      reopenLogs("SIGHUP");  // first, so the reload's own lines go to the new file
      reload();
      break;
    case SIGUSR1:
      reopenLogs("SIGUSR1");
      break;
    case SIGUSR2:
      spdlog::info("SIGUSR2: upgrading to {}", opts_.exe);
      startUpgrade(nullptr);
      break;
    case SIGTERM:
    case SIGINT:
      if (draining_) {
        spdlog::warn("second {}: stopping now", strsignal(signo));
        drainDeadline_ = reactor_->now();
        checkDrained();
      } else {
        spdlog::info("{}: draining (deadline {} ms)", strsignal(signo), cfg_->limits.drainTimeout.count());
        startDrain();
      }
      break;
  }
}

void Daemon::reload() {
  if (draining_) return;
  if (upgrading_) {
    spdlog::warn("reload: an upgrade is in progress; the new process reads the config itself");
    return;
  }
  sdNotify(sdReloadingState());
  auto next = loadConfig();
  auto finish = [] { sdNotify("READY=1\nSTATUS=serving"); };
  // reject logs every problem found (one line each) and keeps the running config.
  auto reject = [&](const Findings& f) {
    ++reloadsFailed_;
    spdlog::error("reload rejected, keeping the running config: {} error{}", f.errors.size(),
                  f.errors.size() == 1 ? "" : "s");
    for (const auto& e : f.errors) spdlog::error("reload rejected: {}", e);
    finish();
  };
  Findings problems;
  if (!next) {
    problems.addError(next.error().detail);
    reject(problems);
    return;
  }
  ConfigPtr cfg = *next;
  if ((cfg->workers > 0 ? cfg->workers : cpuCount()) != static_cast<int>(workers_.size())) {
    spdlog::warn("reload: 'workers' changes take effect on restart only");
  }
  auto tlsReady = tls_->prepare(*cfg);
  if (!tlsReady) problems.addError(tlsReady.error().detail);
  checkAddresses(*cfg, problems, "", cfg_.get());  // the listeners to bind; this process's own sockets are fine
  if (!problems.errors.empty()) {
    reject(problems);
    return;
  }
  auto socks = openSockets(*cfg, cfg_.get());
  if (!socks) {
    problems.addError(socks.error().detail);
    reject(problems);
    return;
  }
  // Admin and readiness endpoints: rebound only when their address changed; on failure each stays
  // where it was.
  rebindEndpoint(true, cfg_->admin.enabled, cfg_->admin.address, cfg->admin.enabled, cfg->admin.address);
  healthHandler_->setPath(cfg->health.path);
  rebindEndpoint(false, cfg_->health.enabled, cfg_->health.address, cfg->health.enabled, cfg->health.address);
  if (cfg->log.accessLog != cfg_->log.accessLog) {
    auto fd = openAccessLog(cfg->log.accessLog);
    if (fd) {
      int old = accessLogFd_;
      bool ownOld = ownAccessLogFd_;
      accessLogFd_ = *fd;
      ownAccessLogFd_ = accessLogFd_ >= 0 && cfg->log.accessLog != "-";
      auto pending = std::make_shared<size_t>(workers_.size());
      for (auto& w : workers_) {
        w->reactor().post([this, w = w.get(), fd = *fd, pending, old, ownOld] {
          w->accessLog().setFd(fd);
          reactor_->post([pending, old, ownOld] {
            if (--*pending == 0 && ownOld) close(old);  // no worker writes to it any more
          });
        });
      }
    } else {
      spdlog::error("reload: {}; access log unchanged", fd.error().detail);
    }
  }
  if (auto r = applyLogConfig(*cfg); !r) spdlog::error("reload: {}; the daemon log stays where it was", r.error().detail);
  tls_->install(cfg, std::move(*tlsReady));
  ClusterSetPtr clusterSet = clusters_->prepare(*cfg);
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->reactor().post(
        [w = workers_[i].get(), c = cfg, cs = clusterSet, s = std::move((*socks)[i])]() mutable {
          w->setClusters(cs);
          w->applyConfig(c, std::move(s));
        });
  }
  clusters_->start(cfg, clusterSet);
  size_t added = 0, removed = 0;
  for (const auto& l : cfg->listeners) added += cfg_->findListener(l.name) == nullptr;
  for (const auto& l : cfg_->listeners) removed += cfg->findListener(l.name) == nullptr;
  cfg_ = cfg;
  ++reloadsOk_;
  configApplied();
  spdlog::info("reloaded {}: {} listeners ({} added, {} removed), {} routes", cfg_->origin,
               cfg_->listeners.size(), added, removed, cfg_->routes.size());
  finish();
}

void Daemon::startDrain() {
  draining_ = true;
  ready_ = false;
  if (!handedOff_) sdNotify("STOPPING=1\nSTATUS=draining");  // after an upgrade the new process is the service
  drainDeadline_ = reactor_->now() + cfg_->limits.drainTimeout;
  for (auto& w : workers_) {
    w->reactor().post([w = w.get()] { w->drain(); });
  }
  drainTimer_ = reactor_->createTimer([this] { checkDrained(); });
  checkDrained();
}

void Daemon::checkDrained() {
  gatherStats([this](std::vector<WorkerStatsSnapshot> snaps) {
    int64_t active = 0;
    for (const auto& s : snaps) active += s.activeStreams;
    if (active > 0 && reactor_->now() < drainDeadline_) {
      drainTimer_->enable(Duration(100));
      return;
    }
    if (active > 0) {
      spdlog::warn("drain deadline reached: closing {} remaining streams", active);
      for (auto& w : workers_) w->reactor().post([w = w.get()] { w->closeAll(Errc::Shutdown); });
    }
    for (auto& w : workers_) w->reactor().post([w = w.get()] { w->accessLog().flush(); });
    reactor_->exit();
  });
}

void Daemon::gatherStats(std::function<void(std::vector<WorkerStatsSnapshot>)> done) {
  struct Pending {
    std::vector<WorkerStatsSnapshot> snaps;
    size_t left;
    std::function<void(std::vector<WorkerStatsSnapshot>)> done;
  };
  auto p = std::make_shared<Pending>();
  p->snaps.resize(workers_.size());
  p->left = workers_.size();
  p->done = std::move(done);
  if (workers_.empty()) {
    p->done({});
    return;
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    Worker* w = workers_[i].get();
    w->reactor().post([this, w, i, p] {
      WorkerStatsSnapshot s;
      w->snapshotStats(s);
      reactor_->post([i, p, s = std::move(s)]() mutable {
        p->snaps[i] = std::move(s);
        if (--p->left == 0) p->done(std::move(p->snaps));
      });
    });
  }
}

std::string Daemon::renderStats(const std::vector<WorkerStatsSnapshot>& snaps) const {
  std::map<std::string, ListenerStatsValues> total;
  uint64_t acceptErrors = 0, pipesCreated = 0, pipesPooled = 0;
  int64_t active = 0;
  for (const auto& s : snaps) {
    for (const auto& [n, v] : s.listeners) total[n].add(v);
    acceptErrors += s.acceptErrors;
    pipesCreated += s.pipesCreated;
    pipesPooled += s.pipesPooled;
    active += s.activeStreams;
  }
  std::string o;
  MetricsWriter m(o);
  m.family("ugate_build_info", "gauge", "Build version.");
  m.sample("ugate_build_info", {{"version", UGATE_VERSION}}, 1);
  m.gauge("ugate_uptime_seconds", "Seconds since start.",
          std::chrono::duration_cast<std::chrono::seconds>(reactor_->updateNow() - started_).count());
  m.gauge("ugate_workers", "Worker threads.", workers_.size());
  m.gauge("ugate_fd_limit", "RLIMIT_NOFILE in force.", fdLimit_);
  m.gauge("ugate_max_connections_per_worker", "Connection cap of each worker.", maxConnPerWorker_);
  m.gauge("ugate_streams_active", "Streams open now, all listeners.", active);
  m.counter("ugate_accept_errors_total", "accept() failures other than EAGAIN.", acceptErrors);
  m.counter("ugate_splice_pipes_created_total", "Pipes created for splice.", pipesCreated);
  m.gauge("ugate_splice_pipes_pooled", "Idle pipes kept for reuse.", pipesPooled);
  m.family("ugate_config_reloads_total", "counter", "Config reloads by result.");
  m.sample("ugate_config_reloads_total", {{"result", "ok"}}, reloadsOk_);
  m.sample("ugate_config_reloads_total", {{"result", "error"}}, reloadsFailed_);
  m.family("ugate_config_watch_changes_total", "counter",
           "Edits of the watched config file that started a reload (configWatch; the reload's result is in ugate_config_reloads_total).");
  m.sample("ugate_config_watch_changes_total", {}, watchChanges_);
  m.family("ugate_config_watch_unchanged_total", "counter", "Change events of the watched config file whose content was the same (nothing applied).");
  m.sample("ugate_config_watch_unchanged_total", {}, source_ ? source_->unchangedEvents() : 0);
  m.family("ugate_config_watched", "gauge", "1 while the config file is watched (configWatch).");
  m.sample("ugate_config_watched", {}, source_ && source_->watching() ? 1 : 0);
  m.family("ugate_admin_bad_requests_total", "counter", "Admin requests refused, by reason.");
  auto badRequests = adminBadRequests_;  // the usual reasons are shown at 0 too
  for (const char* r : {"headers_too_large", "malformed", "body_not_accepted", "method_not_allowed"}) badRequests[r];
  for (const auto& [r, n] : badRequests) m.sample("ugate_admin_bad_requests_total", {{"reason", r}}, n);
  m.family("ugate_log_reopens_total", "counter", "Log files reopened on SIGUSR1/SIGHUP, by result.");
  m.sample("ugate_log_reopens_total", {{"result", "ok"}}, logReopensOk_);
  m.sample("ugate_log_reopens_total", {{"result", "error"}}, logReopensFailed_);
  m.gauge("ugate_draining", "1 while draining for shutdown.", draining_ ? 1 : 0);
  m.family("ugate_upgrades_total", "counter", "Upgrades to a new binary started here, by result.");
  m.sample("ugate_upgrades_total", {{"result", "ok"}}, upgradesOk_);
  m.sample("ugate_upgrades_total", {{"result", "error"}}, upgradesFailed_);
  m.counter("ugate_upgrade_connections_handed_over_total", "Connections handed to the new binary of an upgrade.",
            sessionsHandedOver_);
  m.counter("ugate_upgrade_connections_adopted_total", "Connections this process took over from the old one.",
            sessionsAdopted_);
  if (tls_) tls_->renderStats(m);
  if (clusters_) clusters_->renderMetrics(m);
  for (const auto& mod : modules().list()) mod->renderMetrics(m);

  struct Def {
    const char* name;
    const char* type;
    const char* help;
    uint64_t (*get)(const ListenerStatsValues&);
  };
  static const Def defs[] = {
      {"ugate_listener_connections_total", "counter", "Connections accepted.",
       [](const ListenerStatsValues& v) { return v.accepted; }},
      {"ugate_listener_connections_active", "gauge", "Connections open now.",
       [](const ListenerStatsValues& v) { return static_cast<uint64_t>(std::max<int64_t>(0, v.active)); }},
      {"ugate_listener_received_bytes_total", "counter", "Bytes received from clients and forwarded.",
       [](const ListenerStatsValues& v) { return v.bytesIn; }},
      {"ugate_listener_sent_bytes_total", "counter", "Bytes sent to clients.",
       [](const ListenerStatsValues& v) { return v.bytesOut; }},
      {"ugate_listener_spliced_total", "counter", "Streams that used the splice(2) fast path.",
       [](const ListenerStatsValues& v) { return v.spliced; }},
      {"ugate_listener_over_limit_total", "counter", "Connections refused by the connection cap.",
       [](const ListenerStatsValues& v) { return v.overLimit; }},
      {"ugate_listener_received_datagrams_total", "counter", "Datagrams received from clients and forwarded.",
       [](const ListenerStatsValues& v) { return v.packetsIn; }},
      {"ugate_listener_sent_datagrams_total", "counter", "Datagrams sent to clients.",
       [](const ListenerStatsValues& v) { return v.packetsOut; }},
  };
  for (const auto& d : defs) {
    m.family(d.name, d.type, d.help);
    for (const auto& [n, v] : total) m.sample(d.name, {{"listener", n}}, d.get(v));
  }
  // Latency histograms per listener, and per route summed over the listeners its streams came from.
  std::map<std::string, RouteLatencyValues, std::less<>> routes;
  for (const auto& [n, v] : total) {
    for (const auto& [r, rv] : v.routes) {
      routes[r].connect.add(rv.connect);
      routes[r].duration.add(rv.duration);
    }
  }
  m.family("ugate_listener_connect_seconds", "histogram",
           "From the route decision to an upstream ready to splice (DNS, connect, upstream TLS).");
  for (const auto& [n, v] : total) m.latency("ugate_listener_connect_seconds", {"listener", n}, v.connectTime);
  m.family("ugate_listener_stream_duration_seconds", "histogram", "Streams from accept to close.");
  for (const auto& [n, v] : total) m.latency("ugate_listener_stream_duration_seconds", {"listener", n}, v.duration);
  m.family("ugate_route_connect_seconds", "histogram",
           "From the route decision to an upstream ready to splice, by route (access-log name).");
  for (const auto& [r, v] : routes) m.latency("ugate_route_connect_seconds", {"route", r}, v.connect);
  m.family("ugate_route_stream_duration_seconds", "histogram", "Streams from accept to close, by route.");
  for (const auto& [r, v] : routes) m.latency("ugate_route_stream_duration_seconds", {"route", r}, v.duration);
  // byReason writes one sample per listener and reason of `counts` (index = Errc) that `keep` selects.
  auto byReason = [&](const char* name, const uint64_t* (*counts)(const ListenerStatsValues&),
                      bool (*keep)(Errc, uint64_t)) {
    for (const auto& [n, v] : total) {
      for (size_t i = 0; i < kNumErrc; ++i) {
        const auto e = static_cast<Errc>(i);
        const uint64_t c = counts(v)[i];
        if (keep(e, c)) m.sample(name, {{"listener", n}, {"reason", errcReason(e)}}, c);
      }
    }
  };
  m.family("ugate_listener_closes_total", "counter", "Streams closed, by reason (ok = clean close).");
  byReason("ugate_listener_closes_total", [](const ListenerStatsValues& v) -> const uint64_t* { return v.closes.data(); },
           [](Errc e, uint64_t c) { return c != 0 || e == Errc::Ok; });
  m.family("ugate_listener_errors_total", "counter", "Streams that ended in an error, by reason.");
  byReason("ugate_listener_errors_total", [](const ListenerStatsValues& v) -> const uint64_t* { return v.closes.data(); },
           [](Errc e, uint64_t c) { return c != 0 && e != Errc::Ok && e != Errc::IdleTimeout && e != Errc::Shutdown; });
  m.family("ugate_listener_dropped_datagrams_total", "counter", "Datagrams dropped, by reason.");
  byReason("ugate_listener_dropped_datagrams_total",
           [](const ListenerStatsValues& v) -> const uint64_t* { return v.drops.data(); },
           [](Errc e, uint64_t c) { return c != 0 && e != Errc::Ok; });
  return o;
}

void Daemon::onAdminBadRequest(std::string_view reason) {
  auto it = adminBadRequests_.find(reason);
  if (it == adminBadRequests_.end()) it = adminBadRequests_.emplace(std::string(reason), 0).first;
  ++it->second;
}

namespace {

// The stats page (src/ugated/stats_page.html), embedded at build time (see CMakeLists.txt).
constexpr std::string_view kStatsPage =
#include "stats_page.inc"
    ;

// acceptsHtml: the request's Accept names text/html (a browser); curl and scripts get the text index.
bool acceptsHtml(const http::Request& req) {
  for (const auto& h : req.headers) {
    if (h.name.size() == 6 && strncasecmp(h.name.c_str(), "accept", 6) == 0 &&
        h.value.find("text/html") != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

void Daemon::handleLogging(const http::Request& req, http::AdminResponder respond) {
  const std::string_view current = kLogLevels[spdlog::get_level()];
  if (req.method != "POST") {
    respond({200, "text/plain; charset=utf-8", "level: " + std::string(current) + "\n"});
    return;
  }
  const std::string_view want = queryParam(req.target, "level");
  const auto* it = std::find(std::begin(kLogLevels), std::end(kLogLevels), want);
  if (it == std::end(kLogLevels)) {
    std::string names;
    for (auto n : kLogLevels) names += (names.empty() ? "" : ", ") + std::string(n);
    respond({400, "text/plain; charset=utf-8",
             "level '" + std::string(want) + "' is not one of " + names + " (POST /logging?level=debug)\n"});
    return;
  }
  const auto level = static_cast<spdlog::level::level_enum>(it - std::begin(kLogLevels));
  // The change is logged whatever the old and new levels (an info line is dropped under warn or off).
  spdlog::set_level(std::min({spdlog::get_level(), level, spdlog::level::info}));
  spdlog::info("admin: POST /logging: log level {} -> {} (until a reload sets log.level again)", current, want);
  spdlog::set_level(level);
  respond({200, "text/plain; charset=utf-8", "level: " + std::string(want) + "\n"});
}

void Daemon::handleAdmin(const http::Request& req, http::AdminResponder respond) {
  const std::string path = req.target.substr(0, req.target.find('?'));
  // The methods each path takes; a wrong one is 405 with Allow. Unknown paths are 404 below.
  const char* allow = path == "/drain" || path == "/upgrade" ? "POST"
                      : path == "/logging"                  ? "GET, HEAD, POST"
                                                            : "GET, HEAD";
  if (!listItem(allow, req.method)) {
    onAdminBadRequest("method_not_allowed");
    respond({405, "text/plain; charset=utf-8", path + " takes " + allow + "\n", {{"Allow", allow}}});
    return;
  }
  if (path == "/drain") {
    if (draining_) {
      respond({200, "text/plain; charset=utf-8", "already draining\n"});
      return;
    }
    spdlog::info("admin: POST /drain: draining (deadline {} ms)", cfg_->limits.drainTimeout.count());
    respond({202, "text/plain; charset=utf-8", "draining\n"});  // written before the drain may end the loop
    startDrain();
    return;
  }
  if (path == "/logging") {
    handleLogging(req, std::move(respond));
    return;
  }
  if (path == "/upgrade") {
    spdlog::info("admin: POST /upgrade: upgrading to {}", opts_.exe);
    startUpgrade([respond](int status, std::string text) {
      respond({status, "text/plain; charset=utf-8", std::move(text)});
    });
    return;
  }
  if (path == "/healthz") {
    respond({200, "text/plain; charset=utf-8", "ok\n"});
  } else if (path == "/ready") {
    if (ready_ && !draining_) respond({200, "text/plain; charset=utf-8", "ready\n"});
    else respond({503, "text/plain; charset=utf-8", draining_ ? "draining\n" : "starting\n"});
  } else if (path == "/stats") {
    gatherStats([this, respond](std::vector<WorkerStatsSnapshot> snaps) {
      respond({200, "text/plain; version=0.0.4; charset=utf-8", renderStats(snaps)});
    });
  } else if (path == "/stats.json") {
    gatherStats([this, respond](std::vector<WorkerStatsSnapshot> snaps) {
      respond({200, "application/json", metricsTextToJson(renderStats(snaps))});
    });
  } else if (path == "/config_dump") {
    std::string dump = cfg_->json;
    // Beside the config (not config keys: ignored when a dump is loaded back): which source supplied
    // which resource with its version, and the clusters modules define at run time (xDS).
    std::string extra = "\n  \"configSources\": " + configStore().renderJson("  ");
    const std::string dynamic = clusters_ ? clusters_->renderDynamicJson() : "";
    if (!dynamic.empty()) extra += ",\n  \"dynamicClusters\": " + dynamic;
    if (!dump.empty() && dump.back() == '}') {
      while (dump.size() > 1 && dump[dump.size() - 2] == '\n') dump.erase(dump.size() - 2, 1);
      dump.insert(dump.size() - 1, std::string(dump.find(':') == std::string::npos ? "" : ",") + extra + "\n");
    }
    respond({200, "application/json", dump + "\n"});
  } else if (path == "/clusters") {
    respond({200, "application/json", clusters_ ? clusters_->renderJson() : "{\"clusters\": []}\n"});
  } else if (path == "/" && acceptsHtml(req)) {
    respond({200, "text/html; charset=utf-8", std::string(kStatsPage)});  // a browser: the live stats page
  } else if (path == "/") {
    std::string index =
        "ugated admin: /healthz /ready /stats /stats.json /config_dump /clusters /logging (POST ?level=) /drain (POST) "
        "/upgrade (POST)";
    for (const auto& m : modules().list()) {
      for (const auto& p : m->adminPaths()) index += " " + p;
    }
    respond({200, "text/plain; charset=utf-8", index + "\n"});
  } else if (const Module* m = adminModule(path)) {
    AdminReply r = m->handleAdmin(path);
    respond({r.status, std::move(r.contentType), std::move(r.body)});
  } else {
    respond({404, "text/plain; charset=utf-8", "not found\n"});
  }
}

}  // namespace ugate

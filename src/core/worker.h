#pragma once
// Worker: one thread, one Reactor, its own listeners (SO_REUSEPORT), resolver, pipes and sessions;
// sessions and modules see it as a WorkerContext (include/ugate/worker_context.h).
// Everything here runs on the worker's thread; other threads talk to it only through post().
#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <ugate/dns.h>
#include <ugate/module.h>
#include <ugate/reactor.h>
#include <ugate/worker_context.h>

#include "core/access_log.h"
#include "core/handover.h"
#include "core/cluster_lb.h"
#include <ugate/config.h>
#include <ugate/listener_stats.h>
#include <ugate/pipe_pool.h>
#include "core/route_table.h"
#include <ugate/splicer.h>
#include <ugate/tls_provider.h>
#include <ugate/tunnel.h>

namespace ugate {

class ProxySession;
class Worker;

/** ListenSocket: a bound, listening fd for one listener, destined for one worker. */
struct ListenSocket {
  std::string name;
  int fd{-1};
  bool datagram{false};  // (listenSockets() only) a datagram listener's socket
};

/** HandedSession: a connection an upgrade carries to the new process (fds in rec's order). */
struct HandedSession {
  handover::SessionRecord rec;
  std::vector<int> fds;
};

/** Listener: accepts on one fd and starts a session per connection. */
class Listener final : private IoWatcher {
 public:
  Listener(Worker& w, const ListenerConfig* cfg, int fd);
  ~Listener() override;
  void setConfig(const ListenerConfig* cfg) { cfg_ = cfg; }
  const ListenerConfig& config() const { return *cfg_; }
  /**
   * pause stops accepting (the process is out of file descriptors: `why`) and retries every
   * 100 ms; meanwhile clients wait in the kernel's backlog. Logged once per episode.
   */
  void pause(const std::string& why);
  int fd() const { return fd_; }

 private:
  // ugate::IoWatcher
  void onIoEvent(uint32_t events) override;
  void acceptLoop();
  /** refuse resets a connection the kind's onAccept turned down; counted and logged like a close. */
  void refuse(int fd, StreamMeta meta, const Error& why);
  void resume();

  Worker& worker_;
  const ListenerConfig* cfg_;  // points into the worker's current config snapshot
  int fd_;
  SocketAddress bound_;  // bound_: the listening address; per-connection getsockname only if wildcard
  ListenerStats& stats_;
  TimerPtr backoff_;  // accept pauses after EMFILE/ENFILE instead of spinning
  MonotonicTime pausedSince_{};
  MonotonicTime lastPauseLog_{};
  bool paused_{false};       // paused_: in an out-of-descriptors episode
  bool pauseLogged_{false};  // pauseLogged_: its start was logged (at most every 10 s), and its end
};

class Worker final : public WorkerContext {
 public:
  /** ts: the reactor's clock (tests pass a simulated one). */
  Worker(int index, ConfigPtr cfg, uint32_t maxConnections, int accessLogFd,
         TimeSource& ts = realTimeSource());
  ~Worker() override;

  /** startThread runs the reactor on a new thread. */
  void startThread();
  void join();
  Reactor& reactor() override { return *reactor_; }
  int index() const override { return index_; }

  // --- called on the worker's thread (through post) ---
  /** applyConfig swaps the snapshot, opens the given sockets and closes listeners not in cfg. */
  void applyConfig(ConfigPtr cfg, std::vector<ListenSocket> sockets);
  /** stopListening closes all listeners (drain starts). */
  void stopListening();
  /**
   * drain: shutdown began: stop listening, and each module's state takes no new work. Datagram
   * handlers that drain in place (QUIC) stay, serving what they have, until the worker ends —
   * unless `socketsMove` (an upgrade: the new process reads those sockets now, so they go here).
   */
  void drain(bool socketsMove = false);
  /**
   * listenSockets: a duplicate of every listening socket of this worker (an upgrade hands them to
   * the new process; the caller closes them).
   */
  std::vector<ListenSocket> listenSockets() const;
  /**
   * handOver ends every session of a listener in `listeners` that can move to the new process
   * (ProxySession::handOver) and returns them; the others stay and drain here.
   */
  std::vector<HandedSession> handOver(const std::set<std::string, std::less<>>& listeners);
  /**
   * adopt serves a connection handed over by the old process (a listener of this config, else it
   * is closed and false returned). Takes the fds.
   */
  bool adopt(HandedSession&& s);
  /** closeAll force-closes every live session. */
  void closeAll(Errc reason);
  void snapshotStats(WorkerStatsSnapshot& out) const;
  /** setTls installs the TLS contexts for the current credentials (before the config using them). */
  void setTls(TlsProviderPtr tls) { tls_ = std::move(tls); }
  size_t activeSessions() const { return activeCount_; }

  // --- used by listeners, and by sessions and modules (ugate::WorkerContext) ---
  const Config& config() const override { return *cfg_; }
  const Router& router() const override { return *router_; }
  Resolver& resolver() override { return *resolver_; }
  /** tls: the current TLS contexts; null when no listener or route uses TLS. */
  const TlsProviderPtr& tls() const override { return tls_; }
  /** tunnels: the mesh's dialer on this worker (null without the mesh). Set before the config. */
  TunnelDialer* tunnels() const override { return tunnels_; }
  /**
   * addModuleWorker: a module's state on this worker (before the thread starts). The first one
   * with a tunnel dialer serves tunnels(); applyConfig and drain reach each in the order added.
   */
  void addModuleWorker(const Module& owner, ModuleWorkerPtr m);
  ModuleWorker* moduleWorker(const Module& m) const override;
  ClusterDialer* clusters() override { return &clusters_; }
  /** setClusters installs a cluster snapshot (before the config that targets it; older ones are ignored). */
  void setClusters(ClusterSetPtr s) { clusters_.setSet(std::move(s)); }
  /** setClusterEjectHook: where outlier ejection requests go (the cluster manager; before the thread starts). */
  void setClusterEjectHook(WorkerClusters::EjectFn fn) { ejectHook_ = std::move(fn); }
  ClusterUpdater* clusterUpdater() override { return clusterUpdater_; }
  /** setClusterUpdater: worker 0's, the cluster manager's owner (before the thread starts). */
  void setClusterUpdater(ClusterUpdater* u) { clusterUpdater_ = u; }
  /** stats/timeouts for sessions that kinds with acceptConnection start themselves. */
  Duration connectTimeout(const ListenerConfig& l) const;
  Duration idleTimeout(const ListenerConfig& l) const;
  SpliceContext& spliceContext() override { return *spliceCtx_; }
  AccessLog& accessLog() override { return accessLog_; }
  ListenerStats& stats(const std::string& listener) override;
  uint64_t nextStreamId() override {
    return (++streamSeq_ << 8) | static_cast<uint64_t>(index_ & 0xff);
  }
  bool atConnectionLimit() const { return maxConnections_ != 0 && activeCount_ >= maxConnections_; }
  /** overLimit: a connection was refused by the cap (logged once until sessions fall below it). */
  void overLimit();
  /** pauseAccepting pauses every listener of this worker (out of file descriptors: `why`). */
  void pauseAccepting(const std::string& why) override;
  /**
   * fdWaiters: sessions waiting for a descriptor for their upstream socket. Listeners stay paused
   * while there are any, so freed descriptors go to clients already accepted.
   */
  void addFdWaiter(int delta) override { fdWaiters_ += delta; }
  int fdWaiters() const { return fdWaiters_; }
  void startSession(StreamPtr client, StreamMeta meta, SessionStart s) override;
  void addSession(std::unique_ptr<ProxySession> s) override;
  /** removeSession unlinks s; after a burst has closed, it schedules releaseMemory(). */
  void removeSession(ProxySession* s) override;
  Counter& acceptErrors() { return acceptErrors_; }
  /**
   * logBudget: per-connection warnings are capped at 20 a second per worker so a failing backend
   * cannot flood the log; the access log and counters still record every stream.
   */
  bool logBudget() override;

 private:
  /**
   * releaseMemory hands heap pages freed by closed sessions back to the OS (malloc_trim): the
   * allocator keeps them otherwise, so RSS would stay at the peak of the last burst.
   */
  void releaseMemory();

  const int index_;
  ReactorPtr reactor_;
  TimerPtr releaseTimer_;  // releaseTimer_: runs releaseMemory() shortly after a burst closed
  ConfigPtr cfg_;
  std::unique_ptr<RouteTable> router_;
  ResolverPtr resolver_;
  TlsProviderPtr tls_;
  std::vector<std::pair<const Module*, ModuleWorkerPtr>> modules_;  // in the order added
  TunnelDialer* tunnels_{nullptr};  // tunnels_: the first module dialer (in modules_), or null
  WorkerClusters::EjectFn ejectHook_;
  ClusterUpdater* clusterUpdater_{nullptr};
  WorkerClusters clusters_;
  PipePool pipes_;
  std::unique_ptr<uint8_t[]> scratch_;
  std::unique_ptr<SpliceContext> spliceCtx_;
  AccessLog accessLog_;
  std::map<std::string, std::unique_ptr<Listener>> listeners_;
  std::map<std::string, DatagramHandlerPtr> datagramListeners_;  // kinds with spec->datagram
  std::vector<DatagramHandlerPtr> drainingDatagram_;  // kept by drain() until the worker ends
  std::map<std::string, int> datagramFds_;  // datagramFds_: each datagram listener's socket (its handler owns it)
  std::map<std::string, std::unique_ptr<ListenerStats>> stats_;  // never shrinks: counters survive reloads
  ProxySession* sessions_{nullptr};  // head of the intrusive list; sessions own themselves
  size_t activeCount_{0};
  size_t highWater_{0};  // highWater_: most sessions open at once since the last releaseMemory()
  uint32_t maxConnections_;
  bool capLogged_{false};  // capLogged_: the cap was reached and logged; cleared below the cap
  int fdWaiters_{0};
  uint64_t streamSeq_{0};
  Counter acceptErrors_;
  MonotonicTime logWindow_{};
  uint32_t logsInWindow_{0};
  uint64_t logsSuppressed_{0};
  std::thread thread_;
};

}  // namespace ugate

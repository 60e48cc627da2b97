#pragma once
// WorkerContext: what a session, and a module's per-worker code, may use of the worker it runs on.
// A narrow interface, so that sessions and modules are unit-tested with a fake worker.
#include <ugate/access_log_sink.h>
#include <ugate/dns.h>
#include <ugate/reactor.h>
#include <ugate/router.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <ugate/socket_address.h>
#include <ugate/stream.h>
#include <ugate/time.h>

namespace ugate {

// Types that still live in src/core: a later step moves them (or interfaces for them) here.
struct Config;         // ugate/config.h: the config snapshot
struct ListenerStats;  // ugate/listener_stats.h: one listener's counters on this worker
struct SpliceContext;  // core/splicer.h: the worker's pipes and scratch buffer for splicers
class TlsProvider;     // ugate/tls_provider.h: TLS contexts for the current credentials
class TunnelDialer;    // ugate/tunnel.h: the dialer of a module that tunnels (the mesh)
class ProxySession;    // core/proxy_session.h: a session registered with the worker
class Module;          // ugate/module.h
class ModuleWorker;    // ugate/module.h: a module's state on one worker
class ClusterDialer;   // ugate/cluster.h: the upstream clusters as this worker sees them
class ClusterUpdater;  // ugate/cluster.h: clusters a module defines at run time

/**
 * SessionStart: how a session a module starts for a stream it accepted itself (a tunnelled stream)
 * is run: its deadlines, and what to tell the module.
 */
struct SessionStart {
  Duration connectTimeout{10'000};
  Duration idleTimeout{3'600'000};
  Duration sniffTimeout{10'000};
  /** forcedTarget: dial this without consulting the routes (the module authorized it already). */
  std::optional<HostPort> forcedTarget;
  /**
   * onResult: called once with the outcome of routing and dialling (Errc::Ok when the upstream is
   * ready, before any byte is spliced), so the module answers in its own protocol (a :status).
   */
  std::function<void(Errc, const StreamMeta&)> onResult;
};

/**
 * WorkerContext: one worker's resources. Everything is used on the worker's thread only, and lives
 * as long as the worker, except where said otherwise (the router and the config are replaced on
 * reload: look them up again for each decision rather than keeping a reference).
 */
class WorkerContext {
 public:
  virtual ~WorkerContext() = default;

  /** index: the worker's number, 0 .. workers-1 (stable for the process's life). */
  virtual int index() const = 0;
  virtual Reactor& reactor() = 0;
  virtual Resolver& resolver() = 0;
  /** router: the routes of the current config snapshot. */
  virtual const Router& router() const = 0;
  /** config: the current config snapshot. */
  virtual const Config& config() const = 0;
  /** tls: the current TLS contexts; null when no listener or route uses TLS. */
  virtual const std::shared_ptr<const TlsProvider>& tls() const = 0;
  /** tunnels: the dialer of the module that tunnels (the mesh) on this worker; null without one. */
  virtual TunnelDialer* tunnels() const = 0;
  /** clusters: the upstream clusters (targets `cluster:NAME`) on this worker; null without them. */
  virtual ClusterDialer* clusters() { return nullptr; }
  /** clusterUpdater: defines clusters at run time (xDS); on worker 0 only, null elsewhere. */
  virtual ClusterUpdater* clusterUpdater() { return nullptr; }
  /** moduleWorker: module m's state on this worker (what m.newWorker built), or null. */
  virtual ModuleWorker* moduleWorker(const Module& m) const = 0;
  virtual SpliceContext& spliceContext() = 0;
  virtual AccessLogSink& accessLog() = 0;
  /** stats: the counters of `listener` on this worker (created on first use, never removed). */
  virtual ListenerStats& stats(const std::string& listener) = 0;
  /** nextStreamId: a process-unique stream id (the worker's index in the low byte). */
  virtual uint64_t nextStreamId() = 0;
  /**
   * logBudget: whether a per-connection warning may be logged now (capped per second per worker
   * so a failing backend cannot flood the log; access log and counters still record every stream).
   */
  virtual bool logBudget() = 0;

  // Out of file descriptors: a session that cannot create its upstream socket keeps its client
  // and retries; meanwhile the worker accepts nothing, so freed descriptors go to such sessions.
  /** pauseAccepting pauses every listener of this worker (`why`: the failing call, logged). */
  virtual void pauseAccepting(const std::string& why) = 0;
  /** addFdWaiter counts sessions waiting for a descriptor (+1 on the first wait, -1 when done). */
  virtual void addFdWaiter(int delta) = 0;

  /**
   * startSession runs a core session for `client`, a stream a module accepted itself: routes
   * meta (or dials s.forcedTarget), dials, splices, closes with an access-log line, counted in
   * meta.listener's counters. The worker owns it (drain, force-close).
   */
  virtual void startSession(StreamPtr client, StreamMeta meta, SessionStart s) = 0;
  /** addSession hands a started or about-to-start session to the worker (drain, force-close). */
  virtual void addSession(std::unique_ptr<ProxySession> s) = 0;
  /** removeSession: s closed; the worker forgets it (s deletes itself at the end of the turn). */
  virtual void removeSession(ProxySession* s) = 0;
};

}  // namespace ugate

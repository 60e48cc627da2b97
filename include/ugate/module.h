#pragma once
// Module: what a module (a folder under src/ with its own CMake target) gives the daemon. The daemon
// knows modules only through this interface: src/ugated/modules.cc lists them, and startup, reload,
// drain, /stats and the admin endpoint loop over the list. A module includes include/ugate (the
// contract), the libraries its CMake target links, and its own folder; never another module or
// src/ugated (tests/layering checks this).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ugate {

namespace cfgjson {
class ConfigErrors;
}
struct Config;
class ListenerKindRegistry;
class MetricsWriter;
class TunnelDialer;
class WorkerContext;

/**
 * ModuleWorker: a module's state on one worker. Created on the main thread before the worker's
 * thread starts; every call after that comes on the worker's thread; destroyed after the thread
 * stopped (so it must not post to other workers from its destructor).
 */
class ModuleWorker {
 public:
  virtual ~ModuleWorker() = default;
  /** configApplied: the worker now runs snapshot `cfg` (its listeners were rebound first). */
  virtual void configApplied(const Config& cfg) { (void)cfg; }
  /** drain: shutdown began: take no new work; streams in flight finish or hit the drain deadline. */
  virtual void drain() {}
  /** tunnelDialer: this module's dialer for the targets it serves (mesh hosts, `via`), or null. */
  virtual TunnelDialer* tunnelDialer() { return nullptr; }
};
using ModuleWorkerPtr = std::unique_ptr<ModuleWorker>;

/** AdminReply: a module's answer on the admin endpoint. */
struct AdminReply {
  int status{200};
  std::string contentType{"application/json"};
  std::string body;
};

/**
 * Module: registered once per process, before any config is parsed. Every method but newWorker
 * may be called from the main thread at any time; renderMetrics and handleAdmin must therefore read
 * only thread-safe state (atomics, published snapshots).
 */
class Module {
 public:
  virtual ~Module() = default;
  /** name: the module's folder name ("mesh", "socks"); used in logs and the module list. */
  virtual std::string_view name() const = 0;
  /** registerKinds adds the module's listener kinds (startup, before any config is parsed). */
  virtual void registerKinds(ListenerKindRegistry& kinds) { (void)kinds; }
  /** configSections: the top-level config keys this module owns ("mesh", "upstreams"). */
  virtual std::vector<std::string> configSections() const { return {}; }
  /**
   * parseConfig: each config parsed (startup, reload, --check-config) calls it once, whether or not
   * the module's sections are present, after core's sections and the listeners and before the
   * routes. It reads its sections of `root` (a JSON object) in its own *_config.cc, keeps what it
   * parsed in c.modules[name()] and tells core what it needs in c.fromModules (names routes may use,
   * TLS). Each error goes to errs with its JSON path (ugate/config_json.h has the helpers).
   */
  virtual void parseConfig(const nlohmann::json& root, Config& c, cfgjson::ConfigErrors& errs) const {
    (void)root, (void)c, (void)errs;
  }
  /** finishConfig: after the routes: checks across sections, and needs that depend on routes. */
  virtual void finishConfig(Config& c, cfgjson::ConfigErrors& errs) const { (void)c, (void)errs; }
  /** newWorker builds the module's state on worker `w` (null: the module keeps none). */
  virtual ModuleWorkerPtr newWorker(WorkerContext& w) {
    (void)w;
    return nullptr;
  }
  /** renderMetrics appends the module's families to /stats. */
  virtual void renderMetrics(MetricsWriter& out) const { (void)out; }
  /** adminPaths: the admin endpoint paths the module answers ("/nodes"); listed on "/". */
  virtual std::vector<std::string> adminPaths() const { return {}; }
  /** handleAdmin answers a GET of one of adminPaths(). */
  virtual AdminReply handleAdmin(std::string_view path) const {
    (void)path;
    return {404, "text/plain; charset=utf-8", "not found\n"};
  }
};
using ModulePtr = std::unique_ptr<Module>;

/**
 * kindsOnlyModule: a module that only adds listener kinds (a front door with no state of its own
 * beyond its sessions): `registerKinds` is its registration function.
 */
ModulePtr kindsOnlyModule(std::string name, void (*registerKinds)(ListenerKindRegistry&));

/** ModuleRegistry: this process's modules, in the order added. Filled at startup, then read-only. */
class ModuleRegistry {
 public:
  /** add registers m and its listener kinds; a second module of the same name is refused (false). */
  bool add(ModulePtr m, ListenerKindRegistry& kinds);
  const std::vector<ModulePtr>& list() const { return modules_; }
  Module* find(std::string_view name) const;

 private:
  std::vector<ModulePtr> modules_;
};

/** modules: the process-wide registry (src/ugated/modules.cc fills it; tests add what they need). */
ModuleRegistry& modules();

}  // namespace ugate

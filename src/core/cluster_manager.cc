#include "core/cluster_manager.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>

#include <ugate/json_writer.h>
#include "core/cluster_lb.h"
#include "core/health_check.h"
#include "core/worker.h"

namespace ugate {

namespace {

// endpointsFor: the endpoints cfg's entry `ec` gives, carried over from `prev` (the same cluster in
// the last snapshot) where it had them: a literal IP is one endpoint; a name has the addresses it
// last resolved to (none until its first answer).
void addEndpoints(const ClusterEndpointConfig& ec, const Cluster* prev, const HealthCheckConfig& hc,
                  size_t workers, std::vector<ClusterEndpoint>& out) {
  const std::string name = ec.address.str();
  auto carried = [&](const SocketAddress& a) -> const ClusterEndpoint* {
    if (!prev) return nullptr;
    for (const auto& e : prev->endpoints) {
      if (e.name == name && e.address == a) return &e;
    }
    return nullptr;
  };
  auto add = [&](const SocketAddress& a) {
    ClusterEndpoint e;
    e.name = name;
    e.address = a;
    e.weight = ec.weight;
    if (const ClusterEndpoint* p = carried(a)) {
      e.healthy = hc.enabled ? p->healthy : true;
      e.ejectedUntil = p->ejectedUntil;
      e.stats = p->stats;
    } else {
      e.stats = std::make_shared<EndpointStats>(workers);
    }
    out.push_back(std::move(e));
  };
  if (auto ip = SocketAddress::fromIp(ec.address.host, ec.address.port)) {
    add(*ip);
    return;
  }
  if (!prev) return;
  for (const auto& e : prev->endpoints) {
    if (e.name == name) add(e.address);
  }
}

// AddressIndex: the endpoints of a cluster by address, in one flat open-addressing table (an update
// may carry 10 000 endpoints and is applied on worker 0's loop: no node or key string per endpoint).
class AddressIndex {
 public:
  explicit AddressIndex(const std::vector<ClusterEndpoint>& eps) : eps_(eps) {
    size_t cap = 16;
    while (cap < eps.size() * 2) cap <<= 1;
    slots_.assign(cap, 0);
    for (size_t i = 0; i < eps.size(); ++i) {
      size_t j = slot(eps[i].address);
      while (slots_[j] != 0) j = (j + 1) & (cap - 1);
      slots_[j] = static_cast<uint32_t>(i + 1);
    }
  }
  /** find: the position of the (first) endpoint with address a, or -1. */
  ptrdiff_t find(const SocketAddress& a) const {
    for (size_t j = slot(a); slots_[j] != 0; j = (j + 1) & (slots_.size() - 1)) {
      if (eps_[slots_[j] - 1].address == a) return static_cast<ptrdiff_t>(slots_[j] - 1);
    }
    return -1;
  }

 private:
  size_t slot(const SocketAddress& a) const {  // Fibonacci hashing: the product's high bits
    return static_cast<size_t>((endpointHash(a, true) * 0x9e3779b97f4a7c15ULL) >> 32) & (slots_.size() - 1);
  }
  const std::vector<ClusterEndpoint>& eps_;
  std::vector<uint32_t> slots_;  // 1 + position; 0: empty
};

// buildDynamic: a module's cluster `d` as a snapshot entry. An endpoint `prev` (its last version)
// had keeps its ClusterEndpoint (counters, ejection): found at the position after the last one found
// (an update usually lists the endpoints in the same order) or else by address in an index built on
// the first miss. New endpoints get fresh counters; no name is formatted (label() shows the address).
ClusterPtr buildDynamic(const DynamicCluster& d, const Cluster* prev, size_t workers) {
  auto c = std::make_shared<Cluster>();
  c->name = d.name;
  c->lb = d.lb;
  c->connectRetries = d.connectRetries;
  c->source = d.source;
  c->version = d.version;
  c->stats = prev ? prev->stats : std::make_shared<ClusterStats>(workers);
  const std::vector<ClusterEndpoint> none;
  const std::vector<ClusterEndpoint>& before = prev ? prev->endpoints : none;
  std::optional<AddressIndex> index;
  size_t cursor = 0;
  c->endpoints.reserve(d.endpoints.size());
  for (const DynamicEndpoint& de : d.endpoints) {
    ptrdiff_t at = -1;
    if (cursor < before.size() && before[cursor].address == de.address) {
      at = static_cast<ptrdiff_t>(cursor);
    } else if (!before.empty()) {
      if (!index) index.emplace(before);
      at = index->find(de.address);
    }
    if (at >= 0) {
      cursor = static_cast<size_t>(at) + 1;
      ClusterEndpoint& e = c->endpoints.emplace_back(before[static_cast<size_t>(at)]);
      e.weight = de.weight;
      e.healthy = de.healthy;
      continue;
    }
    ClusterEndpoint& e = c->endpoints.emplace_back();
    e.address = de.address;
    e.weight = de.weight;
    e.healthy = de.healthy;
    e.stats = std::make_shared<EndpointStats>(workers);
  }
  return c;
}

// sameAs: snapshot entry c is what `d` would build (nothing to publish).
bool sameAs(const Cluster& c, const DynamicCluster& d) {
  if (c.source != d.source || c.version != d.version || c.lb != d.lb || c.connectRetries != d.connectRetries ||
      c.endpoints.size() != d.endpoints.size()) {
    return false;
  }
  for (size_t i = 0; i < d.endpoints.size(); ++i) {
    const ClusterEndpoint& e = c.endpoints[i];
    const DynamicEndpoint& de = d.endpoints[i];
    if (e.address != de.address || e.weight != de.weight || e.healthy != de.healthy) return false;
  }
  return true;
}

std::string isoTime(std::chrono::system_clock::time_point t) {
  std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Owner: lives on worker 0's thread. Keeps, per cluster, the endpoints' resolved addresses, health
// streaks and ejections, and publishes a new snapshot when any of them changes.
class ClusterManager::Owner final : public ClusterUpdater {
 public:
  Owner(ClusterManager& m, Worker& w) : mgr_(m), w_(w) {}

  // ugate::ClusterUpdater (a module on this thread)
  bool setCluster(DynamicCluster d) override {
    if (cfg_ && cfg_->findCluster(d.name)) return false;
    const std::string name = d.name;
    DynamicCluster& kept = dynamic_[name] = std::move(d);
    if (!set_) return true;  // apply() merges it
    ClusterPtr prev = set_->find(name);
    if (prev && sameAs(*prev, kept)) return true;
    replace(buildDynamic(kept, prev.get(), mgr_.workers_.size()));
    return true;
  }
  void removeCluster(std::string_view name) override {
    auto it = dynamic_.find(name);
    if (it == dynamic_.end()) return;
    dynamic_.erase(it);
    ClusterPtr c = set_ ? set_->find(name) : nullptr;
    if (!c || c->source.empty()) return;
    auto s = std::make_shared<ClusterSet>(*set_);
    s->clusters.erase(std::string(name));
    set_ = std::move(s);
    publish();
  }

  /** apply: a new config and its first snapshot (already on every worker). */
  void apply(ConfigPtr cfg, ClusterSetPtr set) {
    cfg_ = std::move(cfg);
    set_ = std::move(set);
    std::map<std::string, std::unique_ptr<ClusterState>> old;
    old.swap(clusters_);
    for (const auto& kc : cfg_->clusters) {
      auto st = std::make_unique<ClusterState>();
      st->cfg = &kc;
      if (auto it = old.find(kc.name); it != old.end()) st->streaks = std::move(it->second->streaks);
      ClusterState* raw = st.get();
      st->dnsTimer = w_.reactor().createTimer([this, raw] { resolveAll(*raw); });
      st->hcTimer = w_.reactor().createTimer([this, raw] { checkAll(*raw); });
      st->ejectTimer = w_.reactor().createTimer([this] { publish(); });
      clusters_[kc.name] = std::move(st);
    }
    mergeDynamic();
    for (auto& [name, st] : clusters_) {
      resolveAll(*st);
      if (st->cfg->healthCheck.enabled) checkAll(*st);
    }
  }

  /** eject: a worker saw `consecutiveFailures` connect failures in a row on this endpoint. */
  void eject(const std::string& cluster, const std::string& name, const SocketAddress& addr) {
    ClusterPtr c = set_ ? set_->find(cluster) : nullptr;
    if (!c) return;
    const MonotonicTime now = w_.reactor().now();
    size_t ejected = 0;
    const ClusterEndpoint* target = nullptr;
    for (const auto& e : c->endpoints) {
      if (e.ejectedUntil > now) ++ejected;
      if (e.name == name && e.address == addr) target = &e;
    }
    if (!target) return;
    target->stats->consecutiveFailures.store(0, std::memory_order_relaxed);  // a new streak starts
    if (target->ejectedUntil > now) return;
    const uint64_t total = c->endpoints.size();
    if ((ejected + 1) * 100 > static_cast<uint64_t>(c->outlier.maxEjectedPercent) * total) {
      c->stats->ejectionsOverflow.add();
      spdlog::warn("cluster {}: endpoint {} ({}) failed {} connects in a row; not ejected: {} of {} "
                   "endpoints are ejected already (maxEjectedPercent {})",
                   cluster, addr.str(), target->label(), c->outlier.consecutiveFailures, ejected, total,
                   c->outlier.maxEjectedPercent);
      return;
    }
    target->stats->ejections.add();
    spdlog::warn("cluster {}: endpoint {} ({}) ejected for {} ms after {} connect failures in a row", cluster,
                 addr.str(), target->label(), c->outlier.ejectFor.count(), c->outlier.consecutiveFailures);
    update(cluster, [&](ClusterEndpoint& e) {
      if (e.name == name && e.address == addr) e.ejectedUntil = now + c->outlier.ejectFor;
    });
  }

 private:
  struct Streak {
    uint32_t passes{0};
    uint32_t fails{0};
  };
  struct ClusterState {
    const ClusterConfig* cfg{nullptr};
    std::map<std::string, DnsQueryPtr> queries;  // by name: lookups in flight
    std::map<std::string, Streak> streaks;       // by endpoint key: health check results in a row
    std::map<std::string, std::unique_ptr<HealthProbe>> probes;  // by endpoint key: checks in flight
    TimerPtr dnsTimer, hcTimer, ejectTimer;
  };
  static std::string key(const ClusterEndpoint& e) { return e.name + "@" + e.address.str(); }

  /**
   * mergeDynamic: set_ (a new config's snapshot, which carried over the modules' clusters of the
   * last one) made to hold exactly the modules' clusters as last set; a config's cluster of the
   * same name wins.
   */
  void mergeDynamic() {
    auto s = std::make_shared<ClusterSet>(*set_);
    bool changed = false;
    for (auto it = s->clusters.begin(); it != s->clusters.end();) {
      const bool gone = !it->second->source.empty() && !dynamic_.count(it->first);
      changed = changed || gone;
      it = gone ? s->clusters.erase(it) : std::next(it);
    }
    for (const auto& [name, d] : dynamic_) {
      if (cfg_->findCluster(name)) {
        spdlog::warn("cluster {}: defined by the config and by {}: the config's is used", name, d.source);
        continue;
      }
      ClusterPtr cur = s->find(name);
      if (cur && sameAs(*cur, d)) continue;
      s->clusters[name] = buildDynamic(d, cur.get(), mgr_.workers_.size());
      changed = true;
    }
    if (!changed) return;
    set_ = std::move(s);
    publish();
  }

  /** update publishes a copy of cluster `name` with fn applied to each endpoint. */
  template <class Fn>
  void update(const std::string& name, Fn fn) {
    ClusterPtr c = set_->find(name);
    if (!c) return;
    auto copy = std::make_shared<Cluster>(*c);
    for (auto& e : copy->endpoints) fn(e);
    replace(std::move(copy));
  }

  void replace(std::shared_ptr<const Cluster> c) {
    auto s = std::make_shared<ClusterSet>(*set_);
    s->clusters[c->name] = std::move(c);
    set_ = std::move(s);
    publish();
  }

  void publish() {
    auto s = std::make_shared<ClusterSet>(*set_);
    s->seq = set_->seq + 1;
    set_ = s;
    // The next ejection to end: publish then, so /clusters and the workers' copies agree.
    const MonotonicTime now = w_.reactor().now();
    for (auto& [name, st] : clusters_) {
      MonotonicTime next{};
      if (ClusterPtr c = set_->find(name)) {
        for (const auto& e : c->endpoints) {
          if (e.ejectedUntil > now && (next == MonotonicTime{} || e.ejectedUntil < next)) next = e.ejectedUntil;
        }
      }
      if (next != MonotonicTime{}) st->ejectTimer->enableAt(next);
    }
    mgr_.publish(set_);
  }

  // --- names ---
  void resolveAll(ClusterState& st) {
    for (const auto& ec : st.cfg->endpoints) {
      if (SocketAddress::fromIp(ec.address.host, ec.address.port)) continue;
      const std::string name = ec.address.str();
      if (st.queries.count(name)) continue;  // the last lookup has not answered yet
      ClusterState* raw = &st;
      // May complete inline (a cached answer); the answer's TTL is the resolver cache's.
      auto q = w_.resolver().resolve(ec.address.host, ec.address.port,
                                     [this, raw, name](Result<std::vector<SocketAddress>> r) {
                                       resolved(*raw, name, std::move(r));
                                     });
      if (q) st.queries[name] = std::move(q);
    }
    if (std::any_of(st.cfg->endpoints.begin(), st.cfg->endpoints.end(), [](const ClusterEndpointConfig& ec) {
          return !SocketAddress::fromIp(ec.address.host, ec.address.port);
        })) {
      st.dnsTimer->enable(st.cfg->dnsRefresh);
    }
  }

  void resolved(ClusterState& st, const std::string& name, Result<std::vector<SocketAddress>> r) {
    if (auto it = st.queries.find(name); it != st.queries.end()) {
      deleteLater(w_.reactor(), std::move(it->second));  // we are inside its callback
      st.queries.erase(it);
    }
    ClusterPtr c = set_->find(st.cfg->name);
    if (!c) return;
    if (!r || r->empty()) {
      // Keep the addresses it had: a resolver hiccup should not empty a cluster.
      spdlog::warn("cluster {}: resolving {}: {}; keeping its last addresses", st.cfg->name, name,
                   r ? "no addresses" : r.error().detail);
      return;
    }
    std::vector<SocketAddress> addrs = std::move(*r);
    std::sort(addrs.begin(), addrs.end(), [](const SocketAddress& a, const SocketAddress& b) { return a.str() < b.str(); });
    addrs.erase(std::unique(addrs.begin(), addrs.end()), addrs.end());
    // An address another entry of the cluster has already is that entry's: one endpoint per address.
    std::erase_if(addrs, [&](const SocketAddress& a) {
      for (const auto& e : c->endpoints) {
        if (e.name != name && e.address == a) {
          spdlog::warn("cluster {}: {} resolves to {}, which is endpoint {} already; not added twice", st.cfg->name,
                       name, a.str(), e.name);
          return true;
        }
      }
      return false;
    });
    if (addrs.empty()) return;
    std::vector<SocketAddress> had;
    for (const auto& e : c->endpoints) {
      if (e.name == name) had.push_back(e.address);
    }
    if (had == addrs) return;  // in config order, then address order: comparable as they are
    // Rebuild the endpoint list in config order: this name's entries replaced by the answer.
    auto copy = std::make_shared<Cluster>(*c);
    copy->endpoints.clear();
    for (const auto& ec : st.cfg->endpoints) {
      if (ec.address.str() != name) {
        for (const auto& e : c->endpoints) {
          if (e.name == ec.address.str()) copy->endpoints.push_back(e);
        }
        continue;
      }
      for (const auto& a : addrs) {
        auto old = std::find_if(c->endpoints.begin(), c->endpoints.end(),
                                [&](const ClusterEndpoint& e) { return e.name == name && e.address == a; });
        if (old != c->endpoints.end()) {
          copy->endpoints.push_back(*old);
          continue;
        }
        ClusterEndpoint e;
        e.name = name;
        e.address = a;
        e.weight = ec.weight;
        e.stats = std::make_shared<EndpointStats>(mgr_.workers_.size());
        copy->endpoints.push_back(std::move(e));
      }
    }
    spdlog::info("cluster {}: {} resolves to {} address(es) (had {})", st.cfg->name, name, addrs.size(), had.size());
    replace(std::move(copy));
  }

  // --- active health checks ---
  void checkAll(ClusterState& st) {
    const HealthCheckConfig& hc = st.cfg->healthCheck;
    st.hcTimer->enable(hc.interval);
    ClusterPtr c = set_->find(st.cfg->name);
    if (!c) return;
    for (const auto& e : c->endpoints) {
      const std::string k = key(e);
      if (st.probes.count(k)) continue;  // the last check is still running (it has its own timeout)
      ClusterState* raw = &st;
      auto p = std::make_unique<HealthProbe>(w_.reactor(), e.address, hc, e.name,
                                             [this, raw, k](bool ok, const std::string& why) { checked(*raw, k, ok, why); });
      HealthProbe* pp = p.get();
      st.probes[k] = std::move(p);
      pp->start();
    }
  }

  void checked(ClusterState& st, const std::string& k, bool ok, const std::string& why) {
    if (auto it = st.probes.find(k); it != st.probes.end()) {
      deleteLater(w_.reactor(), std::move(it->second));
      st.probes.erase(it);
    }
    ClusterPtr c = set_->find(st.cfg->name);
    if (!c) return;
    auto e = std::find_if(c->endpoints.begin(), c->endpoints.end(), [&](const ClusterEndpoint& x) { return key(x) == k; });
    if (e == c->endpoints.end()) return;  // gone meanwhile (DNS)
    (ok ? e->stats->checksPassed : e->stats->checksFailed).add();
    Streak& s = st.streaks[k];
    const HealthCheckConfig& hc = st.cfg->healthCheck;
    if (ok) {
      s.fails = 0;
      ++s.passes;
    } else {
      s.passes = 0;
      ++s.fails;
    }
    bool flip = e->healthy ? (!ok && s.fails >= hc.unhealthyThreshold) : (ok && s.passes >= hc.healthyThreshold);
    if (!flip) {
      if (!ok) spdlog::debug("cluster {}: health check of {} failed: {}", st.cfg->name, e->address.str(), why);
      return;
    }
    const bool healthy = !e->healthy;
    if (healthy) {
      spdlog::info("cluster {}: endpoint {} ({}) is healthy again after {} passed checks", st.cfg->name,
                   e->address.str(), e->name, s.passes);
    } else {
      spdlog::warn("cluster {}: endpoint {} ({}) is unhealthy after {} failed checks: {}", st.cfg->name,
                   e->address.str(), e->name, s.fails, why);
    }
    update(st.cfg->name, [&](ClusterEndpoint& x) {
      if (key(x) == k) x.healthy = healthy;
    });
  }

  ClusterManager& mgr_;
  Worker& w_;
  ConfigPtr cfg_;
  ClusterSetPtr set_;
  std::map<std::string, std::unique_ptr<ClusterState>> clusters_;
  std::map<std::string, DynamicCluster, std::less<>> dynamic_;  // by name: what modules set
};

// ---------------------------------------------------------------------------------------------
ClusterManager::ClusterManager(std::vector<Worker*> workers) : workers_(std::move(workers)) {
  if (!workers_.empty()) {
    owner_ = std::make_unique<Owner>(*this, *workers_[0]);
    workers_[0]->setClusterUpdater(owner_.get());
  }
  for (Worker* w : workers_) {
    w->setClusterEjectHook([this](const std::string& cluster, const ClusterEndpoint& e) {
      workers_[0]->reactor().post([this, cluster, name = e.name, addr = e.address] { owner_->eject(cluster, name, addr); });
    });
  }
}

ClusterManager::~ClusterManager() {
  if (!workers_.empty()) workers_[0]->setClusterUpdater(nullptr);
}

ClusterSetPtr ClusterManager::prepare(const Config& cfg) {
  ClusterSetPtr prev = current();
  auto s = std::make_shared<ClusterSet>();
  s->generation = ++generation_;
  for (const auto& kc : cfg.clusters) {
    ClusterPtr old = prev ? prev->find(kc.name) : nullptr;
    auto c = std::make_shared<Cluster>();
    c->name = kc.name;
    c->lb = kc.lb;
    c->connectRetries = kc.connectRetries;
    c->outlier = kc.outlier;
    c->stats = old ? old->stats : std::make_shared<ClusterStats>(workers_.size());
    for (const auto& ec : kc.endpoints) addEndpoints(ec, old.get(), kc.healthCheck, workers_.size(), c->endpoints);
    s->clusters[kc.name] = std::move(c);
  }
  // Modules' clusters stay (the owner reconciles them when it applies cfg).
  for (const auto& [name, c] : prev ? prev->clusters : decltype(s->clusters){}) {
    if (!c->source.empty() && !cfg.findCluster(name)) s->clusters[name] = c;
  }
  std::lock_guard<std::mutex> lk(mu_);
  current_ = s;
  return s;
}

void ClusterManager::start(ConfigPtr cfg, ClusterSetPtr set) {
  if (!owner_) return;
  workers_[0]->reactor().post([this, cfg = std::move(cfg), set = std::move(set)]() mutable {
    owner_->apply(std::move(cfg), std::move(set));
  });
}

ClusterSetPtr ClusterManager::current() const {
  std::lock_guard<std::mutex> lk(mu_);
  return current_;
}

void ClusterManager::publish(ClusterSetPtr s) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    // A reload's snapshot (a newer generation) may have been prepared meanwhile: it wins.
    if (current_ && !s->newerThan(*current_)) return;
    current_ = s;
  }
  workers_[0]->setClusters(s);  // the owner runs here
  for (size_t i = 1; i < workers_.size(); ++i) {
    Worker* w = workers_[i];
    w->reactor().post([w, s] { w->setClusters(s); });
  }
}

void ClusterManager::renderMetrics(MetricsWriter& m) const {
  ClusterSetPtr s = current();
  if (!s || s->clusters.empty()) return;
  const MonotonicTime now = realTimeSource().monotonicTime();
  struct EpDef {
    const char* name;
    const char* type;
    const char* help;
    int64_t (*get)(const ClusterEndpoint&, MonotonicTime);
  };
  static const EpDef defs[] = {
      {"ugate_cluster_connections_total", "counter", "Connects to an endpoint that succeeded.",
       [](const ClusterEndpoint& e, MonotonicTime) { return static_cast<int64_t>(e.stats->connections()); }},
      {"ugate_cluster_connect_failures_total", "counter", "Connects to an endpoint refused, timed out or unreachable.",
       [](const ClusterEndpoint& e, MonotonicTime) { return static_cast<int64_t>(e.stats->connectFailures()); }},
      {"ugate_cluster_active_connections", "gauge", "Streams connecting to or spliced with an endpoint now.",
       [](const ClusterEndpoint& e, MonotonicTime) { return std::max<int64_t>(0, e.stats->active()); }},
      {"ugate_cluster_endpoint_healthy", "gauge", "1 when the endpoint passes its active health checks (or has none).",
       [](const ClusterEndpoint& e, MonotonicTime) { return static_cast<int64_t>(e.healthy ? 1 : 0); }},
      {"ugate_cluster_endpoint_ejected", "gauge", "1 while the endpoint is ejected by outlier detection.",
       [](const ClusterEndpoint& e, MonotonicTime t) { return static_cast<int64_t>(e.ejectedUntil > t ? 1 : 0); }},
      {"ugate_cluster_ejections_total", "counter", "Times the endpoint was ejected by outlier detection.",
       [](const ClusterEndpoint& e, MonotonicTime) { return static_cast<int64_t>(e.stats->ejections.value()); }},
      {"ugate_cluster_health_checks_passed_total", "counter", "Active health checks the endpoint passed.",
       [](const ClusterEndpoint& e, MonotonicTime) { return static_cast<int64_t>(e.stats->checksPassed.value()); }},
      {"ugate_cluster_health_checks_failed_total", "counter", "Active health checks the endpoint failed.",
       [](const ClusterEndpoint& e, MonotonicTime) { return static_cast<int64_t>(e.stats->checksFailed.value()); }},
  };
  for (const auto& d : defs) {
    m.family(d.name, d.type, d.help);
    for (const auto& [name, c] : s->clusters) {
      for (const auto& e : c->endpoints) {
        const std::string addr = e.address.str();
        m.sample(d.name, {{"cluster", name}, {"endpoint", addr}}, d.get(e, now));
      }
    }
  }
  m.family("ugate_cluster_endpoints", "gauge", "Endpoints (resolved addresses) in the cluster.");
  for (const auto& [name, c] : s->clusters) m.sample("ugate_cluster_endpoints", {{"cluster", name}}, c->endpoints.size());
  m.family("ugate_cluster_retries_total", "counter", "Connects retried on another endpoint after a failure.");
  for (const auto& [name, c] : s->clusters) m.sample("ugate_cluster_retries_total", {{"cluster", name}}, c->stats->retriesTotal());
  m.family("ugate_cluster_no_endpoint_total", "counter", "Streams failed because the cluster had no endpoint.");
  for (const auto& [name, c] : s->clusters) {
    m.sample("ugate_cluster_no_endpoint_total", {{"cluster", name}}, c->stats->noEndpointTotal());
  }
  m.family("ugate_cluster_ejections_overflow_total", "counter", "Ejections refused by maxEjectedPercent.");
  for (const auto& [name, c] : s->clusters) {
    m.sample("ugate_cluster_ejections_overflow_total", {{"cluster", name}}, c->stats->ejectionsOverflow.value());
  }
}

std::string ClusterManager::renderJson() const {
  ClusterSetPtr s = current();
  const MonotonicTime now = realTimeSource().monotonicTime();
  const auto wall = realTimeSource().systemTime();
  std::string o = "{\"clusters\": [";
  bool firstCluster = true;
  if (s) {
    for (const auto& [name, c] : s->clusters) {
      o += firstCluster ? "\n  {" : ",\n  {";
      firstCluster = false;
      JsonFields(o, false, ", ", ": ")
          .str("name", name)
          .str("lb", lbPolicyName(c->lb))
          .str("source", c->source.empty() ? "config" : c->source)
          .str("version", c->version)
          .unum("connectRetries", c->connectRetries)
          .unum("retries", c->stats->retriesTotal())
          .unum("ejectionsOverflow", c->stats->ejectionsOverflow.value());
      o += ", \"endpoints\": [";
      bool firstEp = true;
      for (const auto& e : c->endpoints) {
        o += firstEp ? "\n    {" : ",\n    {";
        firstEp = false;
        const bool ejected = e.ejectedUntil > now;
        JsonFields f(o, false, ", ", ": ");
        const std::string addr = e.address.str();
        f.str("name", e.name.empty() ? addr : e.name)
            .str("address", addr)
            .unum("weight", e.weight)
            .str("health", e.healthy ? "healthy" : "unhealthy")
            .num("active", std::max<int64_t>(0, e.stats->active()))
            .unum("connections", e.stats->connections())
            .unum("connectFailures", e.stats->connectFailures())
            .unum("consecutiveFailures", e.stats->consecutiveFailures.load(std::memory_order_relaxed))
            .unum("ejections", e.stats->ejections.value());
        o += ", \"ejected\": ";
        o += ejected ? "true" : "false";
        if (ejected) {
          auto left = std::chrono::duration_cast<Duration>(e.ejectedUntil - now);
          JsonFields(o, true, ", ", ": ").num("ejectedForMs", left.count()).str("ejectedUntil", isoTime(wall + left));
        }
        o += "}";
      }
      o += firstEp ? "]}" : "\n  ]}";
    }
  }
  o += firstCluster ? "]}\n" : "\n]}\n";
  return o;
}

std::string ClusterManager::renderDynamicJson() const {
  ClusterSetPtr s = current();
  std::string o;
  for (const auto& [name, c] : s ? s->clusters : decltype(s->clusters){}) {
    if (c->source.empty()) continue;
    o += o.empty() ? "[\n    {" : ",\n    {";
    JsonFields(o, false, ", ", ": ").str("name", name).str("source", c->source).str("version", c->version).unum(
        "endpoints", c->endpoints.size());
    o += "}";
  }
  return o.empty() ? o : o + "\n  ]";
}

}  // namespace ugate

#include "core/cluster_lb.h"

#include <algorithm>
#include <cmath>

namespace ugate {

// ---------------------------------------------------------------------------------------------
namespace {
// sumOver adds one value of each worker's slot.
template <class T, class Get>
auto sumOver(const T* slots, size_t n, Get get) {
  decltype(get(slots[0])) total = 0;
  for (size_t i = 0; i < n; ++i) total += get(slots[i]);
  return total;
}
}  // namespace

int64_t EndpointStats::active() const {
  return sumOver(perWorker_, workers_, [](const EndpointWorkerStats& s) { return s.active.value(); });
}

uint64_t EndpointStats::connections() const {
  return sumOver(perWorker_, workers_, [](const EndpointWorkerStats& s) { return s.connections.value(); });
}

uint64_t EndpointStats::connectFailures() const {
  return sumOver(perWorker_, workers_, [](const EndpointWorkerStats& s) { return s.connectFailures.value(); });
}

uint64_t ClusterStats::retriesTotal() const {
  return sumOver(retries_.get(), workers_, [](const Counter& c) { return c.value(); });
}

uint64_t ClusterStats::noEndpointTotal() const {
  return sumOver(noEndpoint_.get(), workers_, [](const Counter& c) { return c.value(); });
}

// ---------------------------------------------------------------------------------------------
namespace {

uint64_t mix64(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// lessLoaded: active a / weight wa below active b / weight wb (compared without division).
bool lessLoaded(int64_t a, uint32_t wa, int64_t b, uint32_t wb) {
  return a * static_cast<int64_t>(wb) < b * static_cast<int64_t>(wa);
}

}  // namespace

uint64_t endpointHash(const SocketAddress& a, bool withPort) {
  uint64_t h = 1469598103934665603ULL;
  const uint8_t* p = a.ipBytes();
  const size_t n = a.family() == AF_INET6 ? 16 : 4;
  for (size_t i = 0; p && i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  if (withPort) h = (h ^ a.port()) * 1099511628211ULL;
  return mix64(h);
}

uint64_t ClusterLb::next() {  // xorshift64*
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 2685821657736338717ULL;
}

void ClusterLb::candidates(const Cluster& c, std::span<const SocketAddress> tried, MonotonicTime now) {
  cand_.clear();
  auto untried = [&](const ClusterEndpoint& e) {
    return std::find(tried.begin(), tried.end(), e.address) == tried.end();
  };
  bool anyAvailable = false;
  for (size_t i = 0; i < c.endpoints.size(); ++i) {
    const ClusterEndpoint& e = c.endpoints[i];
    if (!e.available(now)) continue;
    anyAvailable = true;
    if (untried(e)) cand_.push_back(static_cast<int>(i));
  }
  if (!cand_.empty()) return;
  // Every available endpoint was tried (retry one of them), or none is available: panic, as Envoy
  // does, and spread over all of them rather than refuse every stream.
  for (size_t i = 0; i < c.endpoints.size(); ++i) {
    const ClusterEndpoint& e = c.endpoints[i];
    if ((anyAvailable ? e.available(now) : true) && untried(e)) cand_.push_back(static_cast<int>(i));
  }
  if (!cand_.empty()) return;
  for (size_t i = 0; i < c.endpoints.size(); ++i) {
    if (!anyAvailable || c.endpoints[i].available(now)) cand_.push_back(static_cast<int>(i));
  }
}

int ClusterLb::pick(const Cluster& c, size_t slot, const SocketAddress& client,
                    std::span<const SocketAddress> tried, MonotonicTime now) {
  if (c.endpoints.empty()) return -1;
  if (current_.size() != c.endpoints.size()) current_.assign(c.endpoints.size(), 0);
  candidates(c, tried, now);
  if (cand_.size() == 1) {
    if (c.lb == LbPolicy::RoundRobin) return roundRobin(c);  // keeps the running weights in step
    return cand_[0];
  }
  switch (c.lb) {
    case LbPolicy::RoundRobin: return roundRobin(c);
    case LbPolicy::LeastConnections: return leastConnections(c, slot);
    case LbPolicy::RandomTwo: return randomTwo(c, slot);
    case LbPolicy::HashSource: return hashSource(c, client);
  }
  return cand_[0];
}

int ClusterLb::roundRobin(const Cluster& c) {
  // Smooth weighted round robin (nginx): each candidate gains its weight, the highest is chosen and
  // pays back the total. Over sum(weights) picks each endpoint is chosen exactly `weight` times,
  // interleaved rather than in runs.
  int64_t total = 0;
  int best = -1;
  for (int i : cand_) {
    current_[i] += c.endpoints[i].weight;
    total += c.endpoints[i].weight;
    if (best < 0 || current_[i] > current_[best]) best = i;
  }
  current_[best] -= total;
  return best;
}

int ClusterLb::leastConnections(const Cluster& c, size_t slot) {
  // Fewest active streams on this worker relative to weight; ties go round, starting one further
  // each time, so an idle cluster is still spread evenly.
  const size_t n = cand_.size();
  const size_t start = cursor_++ % n;
  int best = -1;
  int64_t bestActive = 0;
  for (size_t k = 0; k < n; ++k) {
    int i = cand_[(start + k) % n];
    int64_t a = c.endpoints[i].stats ? c.endpoints[i].stats->activeOn(slot) : 0;
    if (best < 0 || lessLoaded(a, c.endpoints[i].weight, bestActive, c.endpoints[best].weight)) {
      best = i;
      bestActive = a;
    }
  }
  return best;
}

size_t ClusterLb::weightedRandom(const Cluster& c, int exclude) {
  uint64_t total = 0;
  for (int i : cand_) {
    if (i != exclude) total += c.endpoints[i].weight;
  }
  uint64_t r = next() % total;
  for (size_t k = 0; k < cand_.size(); ++k) {
    int i = cand_[k];
    if (i == exclude) continue;
    if (r < c.endpoints[i].weight) return k;
    r -= c.endpoints[i].weight;
  }
  return cand_.size() - 1;
}

int ClusterLb::randomTwo(const Cluster& c, size_t slot) {
  // Power of two choices: two distinct weighted random candidates, the one with fewer active
  // streams (relative to weight) on this worker wins.
  int a = cand_[weightedRandom(c, -1)];
  int b = cand_[weightedRandom(c, a)];
  auto active = [&](int i) { return c.endpoints[i].stats ? c.endpoints[i].stats->activeOn(slot) : 0; };
  return lessLoaded(active(b), c.endpoints[b].weight, active(a), c.endpoints[a].weight) ? b : a;
}

int ClusterLb::hashSource(const Cluster& c, const SocketAddress& client) const {
  // Weighted rendezvous hashing on the client's IP: every endpoint scores weight / -ln(u) with u
  // uniform from hash(client, endpoint); the highest wins. An endpoint leaving moves only its own
  // clients, and the same client lands on the same endpoint on every worker.
  const uint64_t h = client.valid() ? endpointHash(client, false) : 0;
  int best = -1;
  double bestScore = 0;
  for (int i : cand_) {
    uint64_t k = mix64(h ^ endpointHash(c.endpoints[i].address, true));
    double u = (static_cast<double>(k >> 11) + 0.5) / 9007199254740992.0;  // (0, 1)
    double score = c.endpoints[i].weight / -std::log(u);
    if (best < 0 || score > bestScore) {
      best = i;
      bestScore = score;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
void WorkerClusters::setSet(ClusterSetPtr s) {
  if (!s || (set_ && !s->newerThan(*set_))) return;
  set_ = std::move(s);
  // Forget the state of clusters that are gone.
  for (auto it = lb_.begin(); it != lb_.end();) {
    it = set_->clusters.count(it->first) ? std::next(it) : lb_.erase(it);
  }
}

ClusterPtr WorkerClusters::find(std::string_view name) const { return set_ ? set_->find(name) : nullptr; }

int WorkerClusters::pick(const Cluster& c, const SocketAddress& client, std::span<const SocketAddress> tried,
                         MonotonicTime now) {
  auto it = lb_.find(c.name);
  if (it == lb_.end()) {
    it = lb_.emplace(c.name, ClusterLb(0x9e3779b97f4a7c15ULL * (slot_ + 1) ^ std::hash<std::string>()(c.name)))
             .first;
  }
  return it->second.pick(c, slot_, client, tried, now);
}

void WorkerClusters::connectResult(const Cluster& c, size_t i, bool ok) {
  if (i >= c.endpoints.size()) return;
  const ClusterEndpoint& e = c.endpoints[i];
  if (!e.stats) return;
  if (ok) {
    e.stats->worker(slot_).connections.add();
    // Most connects succeed: read before writing, so a healthy endpoint's line is not bounced
    // between workers.
    if (e.stats->consecutiveFailures.load(std::memory_order_relaxed) != 0) {
      e.stats->consecutiveFailures.store(0, std::memory_order_relaxed);
    }
    return;
  }
  e.stats->worker(slot_).connectFailures.add();
  uint32_t n = e.stats->consecutiveFailures.fetch_add(1, std::memory_order_relaxed) + 1;
  // Exactly at the threshold: one request per streak, whichever worker saw it.
  if (c.outlier.enabled && n == c.outlier.consecutiveFailures && eject_) eject_(c.name, e);
}

}  // namespace ugate

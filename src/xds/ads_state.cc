#include "xds/ads_state.h"

#include <algorithm>
#include <cstdio>

#include "xds/messages.h"

namespace ugate::xds::ads {

std::string resourceVersion(std::string_view bytes) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void Snapshot::add(std::string_view typeUrl, std::string name, std::string bytes) {
  auto& m = types[std::string(typeUrl)];
  if (m.count(name)) return;
  Resource r{name, resourceVersion(bytes), std::move(bytes)};
  m.emplace(std::move(name), std::move(r));
}

const Resource* Snapshot::find(std::string_view typeUrl, const std::string& name) const {
  const auto& m = ofType(typeUrl);
  auto it = m.find(name);
  return it == m.end() ? nullptr : &it->second;
}

const std::map<std::string, Resource>& Snapshot::ofType(std::string_view typeUrl) const {
  static const std::map<std::string, Resource> kNone;
  auto it = types.find(typeUrl);
  return it == types.end() ? kNone : it->second;
}

bool fullStateType(std::string_view typeUrl) {
  return typeUrl == kListenerType || typeUrl == kClusterType || typeUrl == kNodeType;
}

const char* verdictName(Verdict v) {
  switch (v) {
    case Verdict::Initial: return "initial";
    case Verdict::Ack: return "ack";
    case Verdict::Nack: return "nack";
    case Verdict::Stale: return "stale";
    case Verdict::Refused: return "refused";
  }
  return "unknown";
}

namespace {

Verdict verdictOf(const std::string& nonce, const std::string& last, bool hasError) {
  if (nonce.empty()) return Verdict::Initial;
  if (nonce != last) return Verdict::Stale;
  return hasError ? Verdict::Nack : Verdict::Ack;
}

// pushRank: a reload pushes CDS, EDS, LDS, RDS in that order (Envoy's "make before break": a
// cluster and its endpoints exist before a route names them); other types after them.
int pushRank(std::string_view typeUrl) {
  if (typeUrl == kClusterType) return 0;
  if (typeUrl == kClusterLoadAssignmentType) return 1;
  if (typeUrl == kListenerType) return 2;
  if (typeUrl == kRouteConfigurationType) return 3;
  return 4;
}

// inPushOrder: the entries of a per-type state map, in pushRank order (then type URL).
template <class Map>
std::vector<typename Map::value_type*> inPushOrder(Map& m) {
  std::vector<typename Map::value_type*> v;
  for (auto& e : m) v.push_back(&e);
  std::stable_sort(v.begin(), v.end(), [](auto* a, auto* b) { return pushRank(a->first) < pushRank(b->first); });
  return v;
}

}  // namespace

// --- state of the world ---

Verdict SotwStream::onRequest(const SotwRequest& r, std::vector<SotwResponse>& out) {
  if (r.names.size() > limits_.maxNamesPerType) return Verdict::Refused;
  if (!types_.count(r.typeUrl) && types_.size() >= limits_.maxTypes) return Verdict::Refused;
  TypeState& t = types_[r.typeUrl];
  const Verdict v = verdictOf(r.nonce, t.nonce, r.hasError);
  if (v == Verdict::Ack) t.acked = r.versionInfo;

  bool star = false;
  std::set<std::string, std::less<>> names;
  for (const std::string& n : r.names) {
    if (n == "*") {
      star = true;
    } else {
      names.insert(n);
    }
  }
  const bool wildcard = star || (names.empty() && !t.named);
  if (!names.empty()) t.named = true;
  bool added = wildcard && !t.wildcard;
  for (const std::string& n : names) added = added || !t.names.count(n);
  t.names = std::move(names);
  t.wildcard = wildcard;
  if (!wildcard) {  // what the client dropped is no change to push later
    for (auto it = t.sent.begin(); it != t.sent.end();) it = t.names.count(it->first) ? std::next(it) : t.sent.erase(it);
  }

  if (v == Verdict::Stale) {
    t.pending = t.pending || added;  // answered with the next current request
    return v;
  }
  if (v == Verdict::Initial || added || t.pending) respond(t, r.typeUrl, out);
  return v;
}

void SotwStream::onSnapshot(SnapshotPtr s, std::vector<SotwResponse>& out) {
  snap_ = std::move(s);
  for (auto* e : inPushOrder(types_)) {
    const std::string& typeUrl = e->first;
    TypeState& t = e->second;
    if (t.nonce.empty()) continue;  // never answered (only stale requests so far)
    std::map<std::string, std::string> now;
    for (const Resource& r : content(t, typeUrl)) now.emplace(r.name, r.version);
    if (now != t.sent) respond(t, typeUrl, out);
  }
}

std::string SotwStream::ackedVersion(std::string_view typeUrl) const {
  auto it = types_.find(typeUrl);
  return it == types_.end() ? std::string() : it->second.acked;
}

std::vector<Resource> SotwStream::content(const TypeState& t, std::string_view typeUrl) const {
  std::vector<Resource> rs;
  const auto& all = snap_->ofType(typeUrl);
  if (t.wildcard) {
    for (const auto& [name, r] : all) rs.push_back(r);
    return rs;
  }
  for (const std::string& n : t.names) {
    auto it = all.find(n);
    if (it != all.end()) rs.push_back(it->second);
  }
  return rs;
}

void SotwStream::respond(TypeState& t, std::string_view typeUrl, std::vector<SotwResponse>& out) {
  SotwResponse resp;
  resp.typeUrl = std::string(typeUrl);
  resp.versionInfo = std::to_string(snap_->generation);
  resp.nonce = std::to_string(++nonces_);
  resp.resources = content(t, typeUrl);
  t.sent.clear();
  for (const Resource& r : resp.resources) t.sent.emplace(r.name, r.version);
  t.nonce = resp.nonce;
  t.pending = false;
  out.push_back(std::move(resp));
}

// --- delta ---

Verdict DeltaStream::onRequest(const DeltaRequest& r, std::vector<DeltaResponse>& out) {
  const bool first = !types_.count(r.typeUrl);
  if (first && types_.size() >= limits_.maxTypes) return Verdict::Refused;
  if (r.initialVersions.size() > limits_.maxNamesPerType) return Verdict::Refused;
  if (r.subscribe.size() > limits_.maxNamesPerType + r.unsubscribe.size()) return Verdict::Refused;
  if (!first) {  // the names this request would leave subscribed (it subscribes, then unsubscribes)
    const TypeState& cur = types_.find(r.typeUrl)->second;
    std::set<std::string_view> after(cur.names.begin(), cur.names.end());
    for (const std::string& n : r.subscribe) after.insert(n);
    for (const std::string& n : r.unsubscribe) after.erase(n);
    after.erase("*");
    if (after.size() > limits_.maxNamesPerType) return Verdict::Refused;
  } else if (r.subscribe.size() > limits_.maxNamesPerType) {
    return Verdict::Refused;
  }
  TypeState& t = types_[r.typeUrl];
  const Verdict v = verdictOf(r.nonce, t.nonce, r.hasError);
  if (first) {
    // Legacy wildcard: a first request that names nothing.
    t.wildcard = r.subscribe.empty() && r.unsubscribe.empty();
    for (const auto& [name, version] : r.initialVersions) {
      if (name != "*") t.known[name] = version;
    }
  }
  for (const std::string& n : r.subscribe) {
    if (n == "*") {
      t.wildcard = true;
      continue;
    }
    t.names.insert(n);
    t.known.erase(n);  // a newly requested resource is sent even if the client has it
    t.absent.erase(n);
  }
  for (const std::string& n : r.unsubscribe) {
    if (n == "*") {
      t.wildcard = false;
      continue;
    }
    t.names.erase(n);
    t.absent.erase(n);
    t.known.erase(n);  // still covered by `*`: sent again
  }
  if (!t.wildcard) {
    for (auto it = t.known.begin(); it != t.known.end();) {
      it = t.names.count(it->first) ? std::next(it) : t.known.erase(it);
    }
  }
  // A NACK keeps `known` as sent: nothing is sent again until something changes.
  diff(t, r.typeUrl, out);
  return v;
}

void DeltaStream::onSnapshot(SnapshotPtr s, std::vector<DeltaResponse>& out) {
  snap_ = std::move(s);
  for (auto* e : inPushOrder(types_)) diff(e->second, e->first, out);
}

void DeltaStream::diff(TypeState& t, std::string_view typeUrl, std::vector<DeltaResponse>& out) {
  DeltaResponse resp;
  const auto& all = snap_->ofType(typeUrl);
  for (const auto& [name, r] : all) {
    if (!t.wildcard && !t.names.count(name)) continue;
    auto k = t.known.find(name);
    if (k != t.known.end() && k->second == r.version) continue;
    t.known[name] = r.version;
    t.absent.erase(name);
    resp.resources.push_back(r);
  }
  std::set<std::string> removed;
  for (auto it = t.known.begin(); it != t.known.end();) {
    if (all.count(it->first)) {
      ++it;
      continue;
    }
    removed.insert(it->first);
    if (t.names.count(it->first)) t.absent.insert(it->first);
    it = t.known.erase(it);
  }
  for (const std::string& n : t.names) {
    if (!all.count(n) && !t.absent.count(n)) {
      removed.insert(n);
      t.absent.insert(n);
    }
  }
  if (resp.resources.empty() && removed.empty()) return;
  resp.removed.assign(removed.begin(), removed.end());
  resp.typeUrl = std::string(typeUrl);
  resp.systemVersion = std::to_string(snap_->generation);
  resp.nonce = std::to_string(++nonces_);
  t.nonce = resp.nonce;
  out.push_back(std::move(resp));
}

}  // namespace ugate::xds::ads

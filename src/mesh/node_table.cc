#include "mesh/node_table.h"

#include <algorithm>
#include <cctype>

namespace ugate::mesh {

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  return out;
}

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

NodeTable::NodeTable(AssociationDirectory* mirror) : snap_(std::make_shared<const Snapshot>()), mirror_(mirror) {}

void NodeTable::store(std::shared_ptr<const Snapshot> next) {
  if (mirror_) {
    std::vector<AssociatedNode> out;
    out.reserve(next->byId.size());
    for (const auto& [id, e] : next->byId) out.push_back({e.id, e.name, e.spiffe, e.peer.str(), e.sinceUnixMs});
    mirror_->publish(std::move(out));
  }
  snap_.store(std::move(next), std::memory_order_release);
}

Result<uint64_t> NodeTable::add(const NodeEntry& in) {
  NodeEntry e = in;
  e.id = upper(e.id);
  std::lock_guard<std::mutex> l(writeMu_);
  auto next = std::make_shared<Snapshot>(*current());
  if (!e.name.empty()) {
    auto it = next->nameToId.find(lower(e.name));
    if (it != next->nameToId.end() && it->second != e.id) {
      return makeError(Errc::AuthFailed, "name '" + e.name + "' is already held by node " + it->second);
    }
  }
  uint64_t replaced = 0;
  if (auto it = next->byId.find(e.id); it != next->byId.end()) {
    replaced = it->second.handle;
    if (!it->second.name.empty()) next->nameToId.erase(lower(it->second.name));
  }
  if (!e.name.empty()) next->nameToId[lower(e.name)] = e.id;
  next->byId[e.id] = e;
  store(std::move(next));
  return replaced;
}

void NodeTable::remove(const std::string& id, uint64_t handle) {
  std::lock_guard<std::mutex> l(writeMu_);
  auto cur = current();
  auto it = cur->byId.find(upper(id));
  if (it == cur->byId.end() || it->second.handle != handle) return;
  auto next = std::make_shared<Snapshot>(*cur);
  if (!it->second.name.empty()) next->nameToId.erase(lower(it->second.name));
  next->byId.erase(it->first);
  store(std::move(next));
}

std::optional<NodeEntry> NodeTable::find(std::string_view idOrName) const {
  auto s = current();
  if (auto it = s->byId.find(upper(idOrName)); it != s->byId.end()) return it->second;
  if (auto n = s->nameToId.find(lower(idOrName)); n != s->nameToId.end()) {
    if (auto it = s->byId.find(n->second); it != s->byId.end()) return it->second;
  }
  return std::nullopt;
}

std::vector<NodeEntry> NodeTable::list() const {
  auto s = current();
  std::vector<NodeEntry> out;
  out.reserve(s->byId.size());
  for (const auto& [id, e] : s->byId) out.push_back(e);
  return out;
}

const char* upstreamStateName(UpstreamStatus::State s) {
  switch (s) {
    case UpstreamStatus::State::Connecting: return "connecting";
    case UpstreamStatus::State::Connected: return "connected";
    case UpstreamStatus::State::BackingOff: return "backing-off";
  }
  return "?";
}

void UpstreamTable::set(const UpstreamStatus& s) {
  std::lock_guard<std::mutex> l(mu_);
  byName_[s.name] = s;
}

void UpstreamTable::remove(const std::string& name, int owner) {
  std::lock_guard<std::mutex> l(mu_);
  if (auto it = byName_.find(name); it != byName_.end() && it->second.owner == owner) byName_.erase(it);
}

std::vector<UpstreamStatus> UpstreamTable::list() const {
  std::vector<UpstreamStatus> out;
  {
    std::lock_guard<std::mutex> l(mu_);
    out.reserve(byName_.size());
    for (const auto& [name, s] : byName_) out.push_back(s);
  }
  std::sort(out.begin(), out.end(), [](const UpstreamStatus& a, const UpstreamStatus& b) { return a.name < b.name; });
  return out;
}

}  // namespace ugate::mesh

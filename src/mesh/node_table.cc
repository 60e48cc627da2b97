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

NodeTable& NodeTable::instance() {
  static NodeTable t;
  return t;
}

uint64_t NodeTable::nextHandle() {
  std::lock_guard<std::mutex> l(mu_);
  return ++handles_;
}

Result<uint64_t> NodeTable::add(const NodeEntry& in) {
  NodeEntry e = in;
  e.id = upper(e.id);
  std::lock_guard<std::mutex> l(mu_);
  if (!e.name.empty()) {
    auto it = nameToId_.find(lower(e.name));
    if (it != nameToId_.end() && it->second != e.id) {
      return makeError(Errc::AuthFailed, "name '" + e.name + "' is already held by node " + it->second);
    }
  }
  uint64_t replaced = 0;
  if (auto it = byId_.find(e.id); it != byId_.end()) {
    replaced = it->second.handle;
    if (!it->second.name.empty()) nameToId_.erase(lower(it->second.name));
  }
  if (!e.name.empty()) nameToId_[lower(e.name)] = e.id;
  byId_[e.id] = e;
  return replaced;
}

void NodeTable::remove(const std::string& id, uint64_t handle) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = byId_.find(upper(id));
  if (it == byId_.end() || it->second.handle != handle) return;
  if (!it->second.name.empty()) nameToId_.erase(lower(it->second.name));
  byId_.erase(it);
}

std::optional<NodeEntry> NodeTable::find(std::string_view idOrName) const {
  std::lock_guard<std::mutex> l(mu_);
  if (auto it = byId_.find(upper(idOrName)); it != byId_.end()) return it->second;
  if (auto n = nameToId_.find(lower(idOrName)); n != nameToId_.end()) {
    if (auto it = byId_.find(n->second); it != byId_.end()) return it->second;
  }
  return std::nullopt;
}

std::vector<NodeEntry> NodeTable::list() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<NodeEntry> out;
  out.reserve(byId_.size());
  for (const auto& [id, e] : byId_) out.push_back(e);
  return out;
}

void NodeTable::clearForTest() {
  std::lock_guard<std::mutex> l(mu_);
  byId_.clear();
  nameToId_.clear();
}

const char* upstreamStateName(UpstreamStatus::State s) {
  switch (s) {
    case UpstreamStatus::State::Connecting: return "connecting";
    case UpstreamStatus::State::Connected: return "connected";
    case UpstreamStatus::State::BackingOff: return "backing-off";
  }
  return "?";
}

UpstreamTable& UpstreamTable::instance() {
  static UpstreamTable t;
  return t;
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

void UpstreamTable::clearForTest() {
  std::lock_guard<std::mutex> l(mu_);
  byName_.clear();
}

}  // namespace ugate::mesh

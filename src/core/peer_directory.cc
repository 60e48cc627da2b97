// PeerDirectory (ugate/peer_directory.h): immutable snapshots, one publisher at a time.
#include <ugate/peer_directory.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <unordered_map>

namespace ugate {

namespace {

std::string folded(std::string_view s, bool up) {
  std::string out(s);
  for (auto& c : out) {
    const auto u = static_cast<unsigned char>(c);
    c = static_cast<char>(up ? toupper(u) : tolower(u));
  }
  return out;
}

}  // namespace

struct PeerDirectory::Snapshot {
  std::map<std::string, std::vector<DirectPeer>, std::less<>> bySource;  // each sorted by ID
  std::unordered_map<std::string, DirectPeer> byId;                      // upper-case ID
  std::unordered_map<std::string, std::string> nameToId;                 // lower-case name -> ID ("" = ambiguous)
};

PeerDirectory::PeerDirectory() : snap_(std::make_shared<const Snapshot>()) {}

void PeerDirectory::publish(std::string_view source, std::vector<DirectPeer> peers) {
  std::lock_guard<std::mutex> l(writeMu_);
  auto next = std::make_shared<Snapshot>();
  next->bySource = current()->bySource;
  std::vector<DirectPeer> kept;
  kept.reserve(peers.size());
  for (auto& p : peers) {
    if (p.id.empty() || p.meshTcp.empty()) continue;
    p.id = folded(p.id, true);
    p.source = std::string(source);
    kept.push_back(std::move(p));
  }
  std::sort(kept.begin(), kept.end(), [](const DirectPeer& a, const DirectPeer& b) { return a.id < b.id; });
  if (kept.empty()) {
    next->bySource.erase(std::string(source));
  } else {
    next->bySource[std::string(source)] = std::move(kept);
  }
  // Rebuild the indexes: the first source (in name order) to list an ID wins it.
  for (const auto& [src, list] : next->bySource) {
    for (const auto& p : list) {
      if (!next->byId.emplace(p.id, p).second) continue;
      if (p.name.empty()) continue;
      auto [it, fresh] = next->nameToId.emplace(folded(p.name, false), p.id);
      if (!fresh && it->second != p.id) it->second.clear();
    }
  }
  snap_.store(std::move(next), std::memory_order_release);
}

std::optional<DirectPeer> PeerDirectory::find(std::string_view idOrName) const {
  auto s = current();
  if (auto it = s->byId.find(folded(idOrName, true)); it != s->byId.end()) return it->second;
  if (auto n = s->nameToId.find(folded(idOrName, false)); n != s->nameToId.end() && !n->second.empty()) {
    if (auto it = s->byId.find(n->second); it != s->byId.end()) return it->second;
  }
  return std::nullopt;
}

std::vector<DirectPeer> PeerDirectory::list() const {
  auto s = current();
  std::vector<DirectPeer> out;
  for (const auto& [src, list] : s->bySource) out.insert(out.end(), list.begin(), list.end());
  return out;
}

size_t PeerDirectory::size() const {
  auto s = current();
  size_t n = 0;
  for (const auto& [src, list] : s->bySource) n += list.size();
  return n;
}

PeerDirectory& peerDirectory() {
  static PeerDirectory d;
  return d;
}

}  // namespace ugate

#include <ugate/flow_table.h>

#include <cstring>

namespace ugate::udp {
namespace {

// FNV-1a over the address bytes and port: cheap, and flows are few per bucket.
size_t hashAddr(const SocketAddress& a, size_t h) {
  if (!a.valid()) return h;
  const uint8_t* p = a.ipBytes();
  for (int i = 0; i < a.ipLen(); ++i) h = (h ^ p[i]) * 1099511628211ULL;
  uint16_t port = a.port();
  h = (h ^ (port & 0xff)) * 1099511628211ULL;
  h = (h ^ (port >> 8)) * 1099511628211ULL;
  return h;
}

}  // namespace

size_t FlowKeyHash::operator()(const FlowKey& k) const {
  return hashAddr(k.origDst, hashAddr(k.client, 1469598103934665603ULL));
}

FlowEntry* FlowTable::find(const FlowKey& k) const {
  auto it = map_.find(k);
  return it == map_.end() ? nullptr : it->second;
}

void FlowTable::insert(FlowEntry* e, MonotonicTime now) {
  e->lastActivity = now;
  map_.emplace(e->key, e);
  e->inTable = true;
  pushNewest(e);
}

void FlowTable::touch(FlowEntry* e, MonotonicTime now) {
  e->lastActivity = now;
  if (newest_ == e) return;
  unlink(e);
  pushNewest(e);
}

void FlowTable::remove(FlowEntry* e) {
  if (!e->inTable) return;
  map_.erase(e->key);
  unlink(e);
  e->inTable = false;
}

FlowEntry* FlowTable::expiredAt(MonotonicTime now) const {
  if (oldest_ && oldest_->lastActivity + idle_ <= now) return oldest_;
  return nullptr;
}

std::optional<MonotonicTime> FlowTable::nextDeadline() const {
  if (!oldest_) return std::nullopt;
  return oldest_->lastActivity + idle_;
}

void FlowTable::unlink(FlowEntry* e) {
  if (e->newer) e->newer->older = e->older;
  else newest_ = e->older;
  if (e->older) e->older->newer = e->newer;
  else oldest_ = e->newer;
  e->newer = e->older = nullptr;
}

void FlowTable::pushNewest(FlowEntry* e) {
  e->older = newest_;
  e->newer = nullptr;
  if (newest_) newest_->newer = e;
  newest_ = e;
  if (!oldest_) oldest_ = e;
}

}  // namespace ugate::udp

// The c-ares resolver. c-ares owns the DNS protocol, retries and hosts-file parsing; this file owns
// the glue to the edge-triggered reactor, the TTL cache, query sharing and callback safety.
//
// Callback discipline: c-ares callbacks (onAddrInfo, onSockState) only record state. User callbacks
// run later from dispatchReady(), after ares_process_fd()/ares_getaddrinfo() have returned, so a
// user callback may start lookups or destroy the resolver (and so call ares_destroy) without
// re-entering c-ares while it is on the stack.
#include "core/dns_resolver.h"

#include <ares.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <fstream>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <utility>

namespace ugate {
namespace {

// kMaxReadsPerEvent bounds the ares_process_fd() calls for one readiness event (fairness); the rest
// is picked up from a deferred callback.
constexpr int kMaxReadsPerEvent = 64;

using AddrList = std::vector<SocketAddress>;

std::string lowerAscii(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// Outcome: what a lookup produced. addrs carry port 0; IPv4 first, then IPv6.
struct Outcome {
  int status{ARES_SUCCESS};
  AddrList addrs;
};

Result<AddrList> toResult(const Outcome& o, const std::string& host, uint16_t port) {
  if (o.status != ARES_SUCCESS) {
    return Error{Errc::DnsFailure, host + ": " + ares_strerror(o.status)};
  }
  AddrList out = o.addrs;
  for (auto& a : out) {
    a.setPort(port);
  }
  return out;
}

// addUnique appends a to v4 or v6 unless already present.
void addUnique(AddrList& v4, AddrList& v6, const SocketAddress& a) {
  if (!a.valid()) {
    return;
  }
  auto& list = a.family() == AF_INET ? v4 : v6;
  if (std::find(list.begin(), list.end(), a) == list.end()) {
    list.push_back(a);
  }
}

AddrList concat(AddrList v4, const AddrList& v6) {
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

class ResolverImpl;
class QueryImpl;

// Pending: one c-ares lookup and the queries waiting for it.
struct Pending {
  ResolverImpl* owner{nullptr};
  std::string key;
  std::list<QueryImpl*> waiters;
  bool done{false};
  Outcome outcome;
};

class QueryImpl final : public DnsQuery {
 public:
  QueryImpl(std::string host, uint16_t port, DnsCallback cb)
      : host_(std::move(host)), port_(port), cb_(std::move(cb)) {}
  ~QueryImpl() override { detach(); }

  void attach(Pending* p) {
    pending_ = p;
    it_ = p->waiters.insert(p->waiters.end(), this);
  }
  void detach() {
    if (pending_ != nullptr) {
      pending_->waiters.erase(it_);
      pending_ = nullptr;
    }
  }

  // host_ is the name as the caller wrote it (used in error details).
  const std::string host_;
  const uint16_t port_;
  DnsCallback cb_;
  // pending_ is the lookup waited on; nullptr once completed, cancelled or orphaned.
  Pending* pending_{nullptr};
  std::list<QueryImpl*>::iterator it_;
};

// SockWatcher: reactor registration of one c-ares socket.
class SockWatcher final : public IoWatcher, public DeferredDeletable {
 public:
  SockWatcher(ResolverImpl& r, int fd, uint32_t events) : resolver_(r), fd_(fd), events_(events) {}
  // ugate::IoWatcher
  void onIoEvent(uint32_t events) override;

  ResolverImpl& resolver_;
  const int fd_;
  uint32_t events_;
};

class ResolverImpl final : public Resolver {
 public:
  ResolverImpl(Reactor& r, const ResolverOptions& o);
  ~ResolverImpl() override;
  ResolverImpl(const ResolverImpl&) = delete;
  ResolverImpl& operator=(const ResolverImpl&) = delete;

  // ugate::Resolver
  DnsQueryPtr resolve(const std::string& host, uint16_t port, DnsCallback cb) override;

  /** onSocketEvent feeds readiness of fd to c-ares, then delivers finished lookups. */
  void onSocketEvent(int fd, uint32_t events);

 private:
  struct CacheEntry {
    Outcome outcome;
    MonotonicTime expiry;
    std::list<std::string>::iterator orderIt;
    std::multimap<MonotonicTime, std::string>::iterator expiryIt;
  };
  using CacheMap = std::unordered_map<std::string, CacheEntry>;

  static void onSockState(void* data, ares_socket_t fd, int readable, int writable);
  static void onAddrInfo(void* arg, int status, int timeouts, ares_addrinfo* res);

  void sockState(int fd, bool readable, bool writable);
  void complete(Pending* p, int status, ares_addrinfo* res);
  void onTimer();
  void rearmTimer();
  /** dispatchReady runs the callbacks of finished lookups; false if the resolver was destroyed. */
  bool dispatchReady();
  void scheduleDispatch();

  const CacheEntry* findFresh(const std::string& key);
  void store(const std::string& key, const Outcome& o, Duration ttl);
  void eraseEntry(CacheMap::iterator it);
  void evict();
  std::optional<Outcome> lookupHostsFile(const std::string& key) const;

  Reactor& reactor_;
  const ResolverOptions opts_;
  ares_channel channel_{nullptr};
  // initStatus_ is why c-ares is unusable (ARES_SUCCESS if it is usable).
  int initStatus_{ARES_SUCCESS};
  TimerPtr timer_;
  std::unordered_map<int, std::unique_ptr<SockWatcher>> socks_;
  // pending_ holds lookups in flight in c-ares, by lower-case name.
  std::unordered_map<std::string, std::unique_ptr<Pending>> pending_;
  // ready_ holds finished lookups whose callbacks have not run yet.
  std::list<std::unique_ptr<Pending>> ready_;
  CacheMap cache_;
  // cacheOrder_ lists cache keys oldest first; cacheExpiry_ orders them by expiry.
  std::list<std::string> cacheOrder_;
  std::multimap<MonotonicTime, std::string> cacheExpiry_;
  // alive_ turns false in the destructor; callbacks hold a copy to detect it.
  std::shared_ptr<bool> alive_{std::make_shared<bool>(true)};
  bool destroying_{false};
  bool dispatchScheduled_{false};
};

void SockWatcher::onIoEvent(uint32_t events) {
  // Last statement: the callbacks it runs may free this watcher.
  resolver_.onSocketEvent(fd_, events);
}

ResolverImpl::ResolverImpl(Reactor& r, const ResolverOptions& o) : reactor_(r), opts_(o) {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });

  timer_ = reactor_.createTimer([this] { onTimer(); });

  ares_options ao{};
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS;
  ao.sock_state_cb = &ResolverImpl::onSockState;
  ao.sock_state_cb_data = this;
  ao.timeout = static_cast<int>(std::clamp<int64_t>(opts_.queryTimeout.count(), 1, INT_MAX));
  ao.tries = std::max(1, opts_.tries);
  // With a hostsFile override we read that file ourselves, and c-ares only does DNS.
  std::string lookups = opts_.hostsFile.empty() ? "fb" : "b";
  ao.lookups = lookups.data();
  initStatus_ = ares_init_options(&channel_, &ao, mask);
  if (initStatus_ != ARES_SUCCESS) {
    spdlog::error("dns: ares_init_options: {}", ares_strerror(initStatus_));
    channel_ = nullptr;
    return;
  }
  if (!opts_.servers.empty()) {
    std::string csv;
    for (const auto& s : opts_.servers) {
      csv += csv.empty() ? s : "," + s;
    }
    int rc = ares_set_servers_ports_csv(channel_, csv.c_str());
    if (rc != ARES_SUCCESS) {
      spdlog::error("dns: bad servers '{}': {}", csv, ares_strerror(rc));
      initStatus_ = rc;
    }
  }
}

ResolverImpl::~ResolverImpl() {
  *alive_ = false;
  destroying_ = true;  // from here on c-ares callbacks are ignored
  timer_.reset();
  for (auto& [fd, w] : socks_) {
    reactor_.removeFd(fd, w.get());  // before ares_destroy closes the fd
    reactor_.deferredDelete(std::move(w));
  }
  socks_.clear();
  if (channel_ != nullptr) {
    ares_destroy(channel_);  // lookups end with ARES_EDESTRUCTION; onAddrInfo drops them
    channel_ = nullptr;
  }
  // Orphan the queries still held by callers so their destructors do nothing.
  for (auto& [key, p] : pending_) {
    while (!p->waiters.empty()) {
      p->waiters.front()->detach();
    }
  }
  for (auto& p : ready_) {
    while (!p->waiters.empty()) {
      p->waiters.front()->detach();
    }
  }
}

DnsQueryPtr ResolverImpl::resolve(const std::string& host, uint16_t port, DnsCallback cb) {
  if (host.empty()) {
    cb(Error{Errc::InvalidArgument, "empty host name"});
    return nullptr;
  }
  if (auto a = SocketAddress::fromIp(host, port)) {  // also strips "[...]"
    cb(AddrList{*a});
    return nullptr;
  }
  if (host.front() == '[') {
    cb(Error{Errc::InvalidArgument, host + ": not an IP literal"});
    return nullptr;
  }
  const std::string key = lowerAscii(host);
  if (const CacheEntry* e = findFresh(key)) {
    auto r = toResult(e->outcome, host, port);  // copy first: cb may change the cache
    cb(std::move(r));
    return nullptr;
  }
  if (auto it = pending_.find(key); it != pending_.end()) {
    auto q = std::make_unique<QueryImpl>(host, port, std::move(cb));
    q->attach(it->second.get());
    return q;
  }
  if (initStatus_ != ARES_SUCCESS) {
    cb(toResult(Outcome{initStatus_, {}}, host, port));
    return nullptr;
  }
  if (!opts_.hostsFile.empty()) {
    if (auto o = lookupHostsFile(key)) {
      store(key, *o, opts_.minCacheTtl);
      cb(toResult(*o, host, port));
      return nullptr;
    }
  }

  auto owned = std::make_unique<Pending>();
  Pending* p = owned.get();
  p->owner = this;
  p->key = key;
  pending_.emplace(key, std::move(owned));
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = ARES_AI_NOSORT;  // we order v4 then v6; RFC 6724 sorting costs syscalls
  ares_getaddrinfo(channel_, key.c_str(), nullptr, &hints, &ResolverImpl::onAddrInfo, p);
  rearmTimer();

  if (p->done) {
    // Finished synchronously (hosts file, no servers, bad name): answer inline like a cache hit.
    std::unique_ptr<Pending> mine;
    for (auto it = ready_.begin(); it != ready_.end(); ++it) {
      if (it->get() == p) {
        mine = std::move(*it);
        ready_.erase(it);
        break;
      }
    }
    if (!ready_.empty()) {
      scheduleDispatch();
    }
    auto r = toResult(p->outcome, host, port);
    mine.reset();
    cb(std::move(r));
    return nullptr;
  }
  if (!ready_.empty()) {
    scheduleDispatch();  // other lookups c-ares happened to finish during the call
  }
  auto q = std::make_unique<QueryImpl>(host, port, std::move(cb));
  q->attach(p);
  return q;
}

void ResolverImpl::onSockState(void* data, ares_socket_t fd, int readable, int writable) {
  static_cast<ResolverImpl*>(data)->sockState(fd, readable != 0, writable != 0);
}

void ResolverImpl::sockState(int fd, bool readable, bool writable) {
  if (destroying_) {
    return;
  }
  auto it = socks_.find(fd);
  if (!readable && !writable) {
    // c-ares is about to close fd.
    if (it != socks_.end()) {
      reactor_.removeFd(fd, it->second.get());
      reactor_.deferredDelete(std::move(it->second));  // may be inside its own onIoEvent
      socks_.erase(it);
    }
    return;
  }
  // Always watch input: answers, resets and EOF all need ares_process_fd.
  uint32_t events = EPOLLIN | EPOLLRDHUP | (writable ? EPOLLOUT : 0u);
  if (it == socks_.end()) {
    auto w = std::make_unique<SockWatcher>(*this, fd, events);
    if (!reactor_.addFd(fd, w.get(), events)) {
      // The lookup cannot see its answer; c-ares' timeout (our timer) still ends it.
      spdlog::warn("dns: cannot watch fd {}", fd);
      return;
    }
    socks_.emplace(fd, std::move(w));
  } else if (it->second->events_ != events) {
    it->second->events_ = events;
    reactor_.modFd(fd, it->second.get(), events);  // MOD re-reports current readiness
  }
}

void ResolverImpl::onSocketEvent(int fd, uint32_t events) {
  auto alive = alive_;
  ares_socket_t rfd =
      (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0 ? fd : ARES_SOCKET_BAD;
  ares_socket_t wfd = (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 ? fd : ARES_SOCKET_BAD;
  // Edge-triggered: the edge is not repeated for data already queued, so keep feeding c-ares while
  // the socket still holds bytes (it reads one TCP chunk per call; UDP it drains itself).
  for (int i = 0;; ++i) {
    ares_process_fd(channel_, rfd, wfd);
    wfd = ARES_SOCKET_BAD;
    if (rfd == ARES_SOCKET_BAD || socks_.find(fd) == socks_.end()) {
      break;  // nothing to read, or c-ares closed the socket
    }
    int avail = 0;
    if (ioctl(fd, FIONREAD, &avail) != 0 || avail <= 0) {
      break;
    }
    if (i + 1 >= kMaxReadsPerEvent) {
      reactor_.defer([this, alive, fd] {
        if (*alive && socks_.find(fd) != socks_.end()) {
          onSocketEvent(fd, EPOLLIN);
        }
      });
      break;
    }
  }
  rearmTimer();
  dispatchReady();  // may destroy this; nothing after it
}

void ResolverImpl::onTimer() {
  ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts and retries
  rearmTimer();
  dispatchReady();
}

void ResolverImpl::rearmTimer() {
  if (channel_ == nullptr || destroying_) {
    return;
  }
  timeval tv{};
  timeval* t = ares_timeout(channel_, nullptr, &tv);
  if (t == nullptr) {
    timer_->disable();
    return;
  }
  // Round up so the timer does not fire before c-ares considers the query late.
  int64_t ms = static_cast<int64_t>(t->tv_sec) * 1000 + (t->tv_usec + 999) / 1000;
  timer_->enable(Duration(std::max<int64_t>(ms, 1)));
}

void ResolverImpl::onAddrInfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* res) {
  // ares_destroy() ends every lookup with ARES_EDESTRUCTION from inside our destructor.
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED ||
      static_cast<Pending*>(arg)->owner->destroying_) {
    if (res != nullptr) {
      ares_freeaddrinfo(res);
    }
    return;
  }
  auto* p = static_cast<Pending*>(arg);
  p->owner->complete(p, status, res);
}

void ResolverImpl::complete(Pending* p, int status, ares_addrinfo* res) {
  Outcome o;
  o.status = status;
  int64_t minTtl = INT64_MAX;
  if (status == ARES_SUCCESS && res != nullptr) {
    AddrList v4, v6;
    for (auto* n = res->nodes; n != nullptr; n = n->ai_next) {
      if (n->ai_addr == nullptr) {
        continue;
      }
      addUnique(v4, v6, SocketAddress::fromSockaddr(n->ai_addr, n->ai_addrlen));
      minTtl = std::min<int64_t>(minTtl, std::max(0, n->ai_ttl));
    }
    for (auto* c = res->cnames; c != nullptr; c = c->next) {
      minTtl = std::min<int64_t>(minTtl, std::max(0, c->ttl));
    }
    o.addrs = concat(std::move(v4), v6);
    if (o.addrs.empty()) {
      o.status = ARES_ENODATA;
    }
  } else if (status == ARES_SUCCESS) {
    o.status = ARES_ENODATA;
  }
  if (res != nullptr) {
    ares_freeaddrinfo(res);
  }
  Duration ttl = opts_.negativeTtl;
  if (o.status == ARES_SUCCESS) {
    ttl = std::clamp(Duration(minTtl * 1000), opts_.minCacheTtl, opts_.maxCacheTtl);
  }
  store(p->key, o, ttl);
  p->outcome = std::move(o);
  p->done = true;
  auto it = pending_.find(p->key);
  if (it != pending_.end() && it->second.get() == p) {
    ready_.push_back(std::move(it->second));
    pending_.erase(it);
  }
}

bool ResolverImpl::dispatchReady() {
  auto alive = alive_;
  while (!ready_.empty()) {
    std::unique_ptr<Pending> p = std::move(ready_.front());
    ready_.pop_front();
    while (!p->waiters.empty()) {
      QueryImpl* q = p->waiters.front();
      q->detach();
      DnsCallback cb = std::move(q->cb_);  // q may be destroyed by cb
      auto r = toResult(p->outcome, q->host_, q->port_);
      cb(std::move(r));
      if (!*alive) {
        while (!p->waiters.empty()) {
          p->waiters.front()->detach();
        }
        return false;
      }
    }
  }
  return true;
}

void ResolverImpl::scheduleDispatch() {
  if (dispatchScheduled_) {
    return;
  }
  dispatchScheduled_ = true;
  reactor_.defer([this, alive = alive_] {
    if (*alive) {
      dispatchScheduled_ = false;
      dispatchReady();
    }
  });
}

const ResolverImpl::CacheEntry* ResolverImpl::findFresh(const std::string& key) {
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    return nullptr;
  }
  if (it->second.expiry <= reactor_.now()) {
    eraseEntry(it);
    return nullptr;
  }
  return &it->second;
}

void ResolverImpl::store(const std::string& key, const Outcome& o, Duration ttl) {
  if (opts_.maxCacheEntries == 0 || ttl <= Duration::zero()) {
    return;
  }
  if (auto it = cache_.find(key); it != cache_.end()) {
    eraseEntry(it);
  }
  MonotonicTime expiry = reactor_.now() + ttl;
  auto orderIt = cacheOrder_.insert(cacheOrder_.end(), key);
  auto expiryIt = cacheExpiry_.emplace(expiry, key);
  cache_.emplace(key, CacheEntry{o, expiry, orderIt, expiryIt});
  evict();
}

void ResolverImpl::eraseEntry(CacheMap::iterator it) {
  cacheOrder_.erase(it->second.orderIt);
  cacheExpiry_.erase(it->second.expiryIt);
  cache_.erase(it);
}

void ResolverImpl::evict() {
  if (cache_.size() <= opts_.maxCacheEntries) {
    return;
  }
  const MonotonicTime now = reactor_.now();
  while (!cacheExpiry_.empty() && cacheExpiry_.begin()->first <= now) {
    eraseEntry(cache_.find(cacheExpiry_.begin()->second));
  }
  while (cache_.size() > opts_.maxCacheEntries) {
    eraseEntry(cache_.find(cacheOrder_.front()));
  }
}

std::optional<Outcome> ResolverImpl::lookupHostsFile(const std::string& key) const {
  std::ifstream in(opts_.hostsFile);
  if (!in) {
    return std::nullopt;
  }
  AddrList v4, v6;
  std::string line;
  while (std::getline(in, line)) {
    if (auto hash = line.find('#'); hash != std::string::npos) {
      line.resize(hash);
    }
    std::istringstream fields(line);
    std::string ip, name;
    if (!(fields >> ip)) {
      continue;
    }
    auto addr = SocketAddress::fromIp(ip, 0);
    if (!addr) {
      continue;
    }
    while (fields >> name) {
      if (lowerAscii(name) == key) {
        addUnique(v4, v6, *addr);
        break;
      }
    }
  }
  if (v4.empty() && v6.empty()) {
    return std::nullopt;
  }
  return Outcome{ARES_SUCCESS, concat(std::move(v4), v6)};
}

}  // namespace

ResolverPtr newResolver(Reactor& r, const ResolverOptions& o) {
  return std::make_unique<ResolverImpl>(r, o);
}

}  // namespace ugate

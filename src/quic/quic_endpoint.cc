#include "quic/quic_endpoint.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include <ugate/config.h>
#include <ugate/listener_stats.h>
#include <ugate/worker_context.h>

#include "quic/quic_module.h"

namespace ugate::quic {

namespace {

constexpr int kBatchesPerWake = 8;
constexpr size_t kArenaBytes = 256 * 1024;  // packets built per flush at most (then sent)
constexpr unsigned kResetsPerMs = 16;        // stateless resets per millisecond per endpoint at most
constexpr ngtcp2_duration kRetryTokenLife = 10 * NGTCP2_SECONDS;
constexpr ngtcp2_duration kRegularTokenLife = 24 * 3600 * NGTCP2_SECONDS;

const QuicTuning& defaultTuning() {
  static const QuicTuning t;
  return t;
}

ngtcp2_tstamp nowNs(Reactor& r) {
  return static_cast<ngtcp2_tstamp>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(r.now().time_since_epoch()).count());
}

ngtcp2_cid toCid(const uint8_t* p, size_t n) {
  ngtcp2_cid c;
  ngtcp2_cid_init(&c, p, n);
  return c;
}

}  // namespace

QuicEndpoint::QuicEndpoint(WorkerContext& w, QuicWorker& qw, const ListenerConfig& l, int fd)
    : w_(w), qw_(qw), cfg_(&l), name_(l.name), fd_(fd), tx_(kArenaBytes) {
  wildcard_ = l.address.isAny();
  // Replies must leave from the address each client reached: learn it on a wildcard socket. The
  // TOS byte carries the ECN codepoint ngtcp2 counts (ACK_ECN).
  recvFlags_ = static_cast<uint8_t>(udp::kRecvTos | (wildcard_ ? udp::kRecvPktInfo : 0));
  if (auto r = udp::setRecvOptions(fd_, l.address.family(), recvFlags_); !r) {
    spdlog::warn("quic {}: {}", name_, r.error().detail);
  }
  // GRO: the kernel hands over a flow's datagrams coalesced (split again in onIoEvent); a kernel
  // that refuses it delivers them one by one, as before.
  if (udp::enableGro(fd_)) {
    recvFlags_ |= udp::kRecvGro;
  } else {
    spdlog::debug("quic {}: no UDP GRO on this kernel: {}", name_, strerror(errno));
  }
  udp::setBufferBytes(fd_, 4 << 20);
  // Path MTU: packets carry DF, so a too-large PMTUD probe is lost instead of being fragmented.
  udp::setDontFragment(fd_, l.address.family());
  flushTimer_ = w_.reactor().createTimer([this] { runPending(); });
  qw_.addEndpoint(this);
  if (!w_.reactor().addFd(fd_, this, EPOLLIN)) spdlog::error("quic {}: cannot watch the socket", name_);
}

QuicEndpoint::~QuicEndpoint() {
  for (auto& [p, c] : conns_) c->closeNow();
  flushTx();
  conns_.clear();
  died_.clear();
  qw_.removeEndpoint(this);
  w_.reactor().removeFd(fd_, this);
  ::close(fd_);
}

void QuicEndpoint::setConfig(const ListenerConfig& cfg) { cfg_ = &cfg; }

uint16_t QuicEndpoint::localPort() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

const QuicTuning& QuicEndpoint::tuning() const {
  auto o = std::dynamic_pointer_cast<const QuicListenerOptions>(cfg_->options);
  return o ? o->tuning : defaultTuning();
}

size_t QuicEndpoint::handshaking() const {
  size_t n = 0;
  for (const auto& [p, c] : conns_) n += c->handshakeDone() ? 0 : 1;
  return n;
}

void QuicEndpoint::onIoEvent(uint32_t events) {
  (void)events;
  udp::RecvBatch& batch = udp::recvBatch();
  const uint8_t flags = recvFlags_;
  QuicCounters& k = qw_.shared().counters;
  bool more = false;
  size_t unflushed = 0;  // bytes read since the last flush (kFlushAfterRxBytes)
  for (int round = 0; round < kBatchesPerWake; ++round) {
    IoResult r = batch.recv(fd_, flags);
    if (!r.ok() || r.value <= 0) break;
    more = round + 1 == kBatchesPerWake;
    const auto n = static_cast<size_t>(r.value);
    for (size_t i = 0; i < n; ++i) {
      udp::Datagram& d = batch[i];
      if (d.truncated) {
        k.drop(DropReason::Truncated);
        continue;
      }
      PathAddrs path;
      path.remote = d.peer;
      path.local = wildcard_ && d.local.valid() ? *SocketAddress::fromIp(d.local.ip(), cfg_->address.port())
                                                : cfg_->address;
      const uint8_t ecn = d.tos & kEcnMask;
      udp::forEachSegment(d.data, d.len, d.segSize,
                          [&](const uint8_t* p, size_t len) { datagram(p, len, path, ecn); });
      unflushed += d.len;
      if (unflushed >= kFlushAfterRxBytes) {
        unflushed = 0;
        runPending();  // ACK what came in before reading on (a bulk upload's sender waits on them)
      }
    }
    if (n < udp::kBatch) break;
  }
  // Connections that received datagrams write their answers now (ACKs, data), in one batch.
  runPending();
  if (more) w_.reactor().modFd(fd_, this, EPOLLIN);  // edge-triggered: come back next turn
}

void QuicEndpoint::schedule(QuicConn* c) {
  pending_.push_back(c);
  if (!flushTimer_->enabled()) flushTimer_->enable(Duration(0));
}

void QuicEndpoint::runPending() {
  // A flush may schedule again (a face written to from a readiness callback): loop until quiet.
  for (int round = 0; round < 4 && !pending_.empty(); ++round) {
    std::vector<QuicConn*> now;
    now.swap(pending_);
    for (QuicConn* c : now) c->flush();
  }
  flushTx();
  sweep();
}

void QuicEndpoint::sweep() {
  // Only the connections that died since the last sweep: runPending runs at every read wake (and
  // every kFlushAfterRxBytes inside one), so a walk over every connection would cost O(open
  // connections) per wake.
  if (died_.empty()) return;
  std::erase_if(pending_, [](QuicConn* c) { return c->dead(); });
  for (QuicConn* c : died_) {
    auto it = conns_.find(c);
    if (it == conns_.end()) continue;
    deleteLater(w_.reactor(), std::move(it->second));
    conns_.erase(it);
  }
  died_.clear();
}

void QuicEndpoint::datagram(const uint8_t* data, size_t len, const PathAddrs& path, uint8_t ecn) {
  QuicCounters& k = qw_.shared().counters;
  k.packetsIn.fetch_add(1, std::memory_order_relaxed);
  k.bytesIn.fetch_add(len, std::memory_order_relaxed);
  if (len == 0) {  // an empty UDP datagram: ngtcp2's decoders assert on it (found by quic_endpoint_fuzz)
    k.drop(DropReason::Malformed);
    return;
  }
  ngtcp2_version_cid vc;
  int rv = ngtcp2_pkt_decode_version_cid(&vc, data, len, CidCodec::kLen);
  if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
    // Only a datagram that could carry a client's first Initial (≥ 1200 bytes) gets an answer, so
    // Version Negotiation never amplifies (RFC 9000 §6.1, §14.1).
    if (len < NGTCP2_MAX_UDP_PAYLOAD_SIZE) {
      k.drop(DropReason::TooSmall);
      return;
    }
    sendVersionNegotiation(vc, path);
    return;
  }
  if (rv != 0) {
    k.drop(DropReason::Malformed);
    return;
  }
  const std::string_view dcid(reinterpret_cast<const char*>(vc.dcid), vc.dcidlen);
  if (QuicConn* c = qw_.findCid(dcid)) {
    c->onDatagram(path, data, len, ecn);
    return;
  }
  const auto owner = qw_.shared().cids.workerOf({vc.dcid, vc.dcidlen});
  if (owner && *owner != qw_.index() && *owner < qw_.shared().workers.size()) {
    // SO_REUSEPORT hashed this 4-tuple to us (NAT rebinding, migration): the CID's worker owns it.
    qw_.handoff(*owner, name_, data, len, path.remote, path.local, ecn);
    return;
  }
  const bool longHeader = (data[0] & 0x80) != 0;
  if (!longHeader) {
    if (owner && *owner == qw_.index()) {
      sendStatelessReset(vc, len, path);  // ours, and gone: tell the peer to stop
    } else {
      k.drop(DropReason::UnknownConn);
    }
    return;
  }
  acceptInitial(data, len, path, ecn);
}

void QuicEndpoint::acceptInitial(const uint8_t* data, size_t len, const PathAddrs& path, uint8_t ecn) {
  QuicCounters& k = qw_.shared().counters;
  ngtcp2_pkt_hd hd;
  if (ngtcp2_accept(&hd, data, len) != 0) {
    // Not an Initial we could accept (0-RTT before its Initial, a Handshake packet of a connection
    // long gone, an Initial in a datagram under 1200 bytes).
    k.drop(len < NGTCP2_MAX_UDP_PAYLOAD_SIZE && (data[0] & 0x30) == 0 ? DropReason::TooSmall
                                                                      : DropReason::NotInitial);
    return;
  }
  const QuicTuning& t = tuning();
  if (draining_ || conns_.size() >= t.maxConnections) {
    k.drop(DropReason::Refused);
    sendInitialClose(hd, path, NGTCP2_CONNECTION_REFUSED);
    return;
  }
  ngtcp2_cid odcid;
  bool retried = false, validated = false;
  const ngtcp2_tstamp ts = nowNs(w_.reactor());
  if (hd.tokenlen > 0) {
    std::span<const uint8_t> token(hd.token, hd.tokenlen);
    if (hd.token[0] == kRetryTokenMagic) {
      auto r = verifyRetryToken(&odcid, token, qw_.shared().tokenSecret, hd.version, path.remote.sa(),
                                path.remote.len(), hd.dcid, kRetryTokenLife, ts);
      if (!r) {
        // A Retry token that does not verify: RFC 9000 §8.1.3 says close with INVALID_TOKEN.
        k.drop(DropReason::BadToken);
        sendInitialClose(hd, path, NGTCP2_INVALID_TOKEN);
        return;
      }
      retried = validated = true;
    } else if (hd.token[0] == kRegularTokenMagic) {
      // A NEW_TOKEN token that fails is only ignored (it may come from an earlier process).
      validated = bool(verifyRegularToken(token, qw_.shared().tokenSecret, path.remote.sa(), path.remote.len(),
                                          kRegularTokenLife, ts));
    }
  }
  if (!validated && (t.retry == RetryPolicy::Always ||
                     (t.retry == RetryPolicy::UnderLoad && handshaking() >= t.retryAbove))) {
    sendRetry(hd, path);
    return;
  }
  ServerParams sp;
  sp.hd = &hd;
  sp.odcid = retried ? &odcid : nullptr;
  sp.tokenValidated = validated;
  sp.path = path;
  sp.tuning = t;
  sp.name = name_;
  if (const auto& provider = w_.tls(); provider && cfg_->tls) sp.tls = provider->serverSession(*cfg_->tls);
  auto c = std::make_unique<QuicConn>(*this, std::move(sp));
  if (!c->ok()) {
    k.drop(DropReason::Refused);
    if (w_.logBudget()) spdlog::warn("quic {}: refused a connection from {}: {}", name_, path.remote.str(), c->why());
    sendInitialClose(hd, path, NGTCP2_INTERNAL_ERROR);
    return;
  }
  QuicConn* raw = c.get();
  conns_.emplace(raw, std::move(c));
  raw->onDatagram(path, data, len, ecn);
}

void QuicEndpoint::sendVersionNegotiation(const ngtcp2_version_cid& vc, const PathAddrs& path) {
  // Only in answer to a datagram that could be an Initial (RFC 9000 §6.1: ≥ 1200 bytes).
  uint8_t* slot = txSlot();
  uint8_t unused = 0;
  RAND_bytes(&unused, 1);
  const uint32_t versions[] = {NGTCP2_PROTO_VER_V1, NGTCP2_PROTO_VER_V2};
  auto n = writeVersionNegotiation({slot, kMaxPacket}, unused, {vc.scid, vc.scidlen}, {vc.dcid, vc.dcidlen},
                                   versions);
  if (!n) return;
  qw_.shared().counters.versionNegotiationSent.fetch_add(1, std::memory_order_relaxed);
  send(slot, *n, path.remote, wildcard_ ? path.local : SocketAddress{});
}

void QuicEndpoint::sendRetry(const ngtcp2_pkt_hd& hd, const PathAddrs& path) {
  std::array<uint8_t, CidCodec::kLen> scidBytes;
  qw_.shared().cids.make(qw_.index(), scidBytes);
  ngtcp2_cid scid = toCid(scidBytes.data(), scidBytes.size());
  std::array<uint8_t, kMaxRetryTokenLen> token;
  auto tlen = generateRetryToken(token, qw_.shared().tokenSecret, hd.version, path.remote.sa(), path.remote.len(),
                                 scid, hd.dcid, nowNs(w_.reactor()));
  if (!tlen) return;
  uint8_t* slot = txSlot();
  auto n = writeRetry({slot, kMaxPacket}, hd.version, hd.scid, scid, hd.dcid, {token.data(), *tlen});
  if (!n) return;
  qw_.shared().counters.retrySent.fetch_add(1, std::memory_order_relaxed);
  send(slot, *n, path.remote, wildcard_ ? path.local : SocketAddress{});
}

void QuicEndpoint::sendInitialClose(const ngtcp2_pkt_hd& hd, const PathAddrs& path, uint64_t code) {
  std::array<uint8_t, CidCodec::kLen> scidBytes;
  qw_.shared().cids.make(qw_.index(), scidBytes);
  ngtcp2_cid scid = toCid(scidBytes.data(), scidBytes.size());
  uint8_t* slot = txSlot();
  auto n = writeInitialConnectionClose({slot, kMaxPacket}, hd.version, hd.scid, scid, hd.dcid, code, "");
  if (!n) return;
  send(slot, *n, path.remote, wildcard_ ? path.local : SocketAddress{});
}

void QuicEndpoint::sendStatelessReset(const ngtcp2_version_cid& vc, size_t len, const PathAddrs& path) {
  QuicCounters& k = qw_.shared().counters;
  // RFC 9000 §10.3.3: smaller than the packet that triggered it (so two endpoints cannot loop),
  // at least 21 bytes (so it looks like a short-header packet); and rate-limited.
  if (len <= 41) {
    k.drop(DropReason::UnknownConn);
    return;
  }
  const MonotonicTime t = w_.reactor().now();
  if (t - resetTick_ >= std::chrono::milliseconds(1)) {
    resetTick_ = t;
    resetsThisTick_ = 0;
  }
  if (++resetsThisTick_ > kResetsPerMs) {
    k.drop(DropReason::UnknownConn);
    return;
  }
  std::array<uint8_t, kStatelessResetTokenLen> token;
  ngtcp2_cid cid = toCid(vc.dcid, vc.dcidlen);
  if (!generateStatelessResetToken(token, qw_.shared().resetSecret, cid)) return;
  uint8_t rnd[64];
  const size_t rndlen = std::min<size_t>(len - 1 - kStatelessResetTokenLen - 1, sizeof(rnd));
  RAND_bytes(rnd, rndlen);
  uint8_t* slot = txSlot();
  ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(slot, kMaxPacket, token.data(), rnd, rndlen);
  if (n <= 0) return;
  k.statelessResetsSent.fetch_add(1, std::memory_order_relaxed);
  send(slot, static_cast<size_t>(n), path.remote, wildcard_ ? path.local : SocketAddress{});
}

uint8_t* QuicEndpoint::txSlot() { return tx_.slot(fd_, kMaxPacket); }

void QuicEndpoint::send(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from) {
  sendEcn(slot, len, to, from, 0);
}

void QuicEndpoint::sendEcn(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from,
                           uint8_t ecn) {
  QuicCounters& k = qw_.shared().counters;
  k.packetsOut.fetch_add(1, std::memory_order_relaxed);
  k.bytesOut.fetch_add(len, std::memory_order_relaxed);
  SocketAddress src = wildcard_ ? from : SocketAddress{};
  if (src.valid()) src = *SocketAddress::fromIp(src.ip(), 0);
  tx_.push(slot, len, to, src, ecn);
}

void QuicEndpoint::flushTx() {
  if (tx_.flush(fd_)) {
    spdlog::warn("quic {}: the kernel refused UDP GSO (EIO): sending packet by packet from now on", name_);
  }
}

Reactor& QuicEndpoint::reactor() { return w_.reactor(); }
QuicCounters& QuicEndpoint::counters() { return qw_.shared().counters; }
bool QuicEndpoint::logBudget() { return w_.logBudget(); }
void QuicEndpoint::newCid(std::span<uint8_t, CidCodec::kLen> out) { qw_.shared().cids.make(qw_.index(), out); }
void QuicEndpoint::addCid(std::string_view cid, QuicConn* c) { qw_.addCid(cid, c); }
void QuicEndpoint::removeCid(std::string_view cid) { qw_.removeCid(cid); }
std::span<const uint8_t> QuicEndpoint::resetSecret() { return qw_.shared().resetSecret; }
std::span<const uint8_t> QuicEndpoint::tokenSecret() { return qw_.shared().tokenSecret; }

void QuicEndpoint::connDied(QuicConn* c) {
  died_.push_back(c);
  schedule(c);  // freed by runPending's sweep, never while its own code is on the stack
}

void QuicEndpoint::drain() {
  draining_ = true;
  // By copy: a connection without streams closes at once, and may leave the map as it does.
  std::vector<QuicConn*> conns;
  conns.reserve(conns_.size());
  for (auto& [p, c] : conns_) conns.push_back(c.get());
  for (QuicConn* c : conns) c->drain();
  flushTx();
}

}  // namespace ugate::quic

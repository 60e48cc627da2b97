#include "quic/quic_conn.h"

#include <algorithm>

#include <openssl/ssl.h>

#include <cerrno>
#include <cstring>
#include <chrono>

#include <spdlog/spdlog.h>

#include <ugate/config.h>
#include <ugate/worker_context.h>

#include "quic/h3_app.h"
#include "quic/lib_memory.h"
#include "quic/mux_app.h"
#include "quic/quic_config.h"

namespace ugate::quic {

namespace {

std::string cidKey(const ngtcp2_cid& c) { return std::string(reinterpret_cast<const char*>(c.data), c.datalen); }

ngtcp2_addr toAddr(const SocketAddress& a) {
  ngtcp2_addr r;
  r.addr = const_cast<ngtcp2_sockaddr*>(reinterpret_cast<const ngtcp2_sockaddr*>(a.sa()));
  r.addrlen = a.len();
  return r;
}

ngtcp2_path toPath(const PathAddrs& p) {
  ngtcp2_path path;
  path.local = toAddr(p.local);
  path.remote = toAddr(p.remote);
  path.user_data = nullptr;
  return path;
}

/** rttBucket: the index of ugate_quic_rtt_seconds' bucket for a smoothed RTT. */
size_t rttBucket(ngtcp2_duration rtt) {
  const ngtcp2_duration ms = rtt / NGTCP2_MILLISECONDS;
  if (ms <= 1) return 0;
  if (ms <= 5) return 1;
  if (ms <= 25) return 2;
  if (ms <= 100) return 3;
  if (ms <= 500) return 4;
  return 5;
}

}  // namespace

ngtcp2_tstamp QuicConn::now() const {
  // The reactor's clock (time is injected), in nanoseconds as ngtcp2 wants.
  return static_cast<ngtcp2_tstamp>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(io_.reactor().now().time_since_epoch()).count());
}

ngtcp2_conn* QuicConn::getConn(ConnRef* ref) { return static_cast<QuicConn*>(ref->user)->conn_; }

namespace {

void fillSettings(ngtcp2_settings& settings, const QuicTuning& t, ngtcp2_tstamp ts) {
  ngtcp2_settings_default(&settings);
  settings.initial_ts = ts;
  settings.handshake_timeout = static_cast<ngtcp2_duration>(t.handshakeTimeout.count()) * NGTCP2_MILLISECONDS;
  settings.max_window = t.connectionWindow * 16;
  settings.max_stream_window = t.streamWindow * 16;
  settings.cc_algo = NGTCP2_CC_ALGO_CUBIC;
  // Path MTU discovery from the 1200-byte base up to max_tx_udp_payload_size (ngtcp2's default,
  // 1452): the sockets set DF (udp::setDontFragment), so a probe too big for the path is lost.
  settings.no_pmtud = 0;
}

void fillParams(ngtcp2_transport_params& params, const QuicTuning& t) {
  ngtcp2_transport_params_default(&params);
  params.initial_max_stream_data_bidi_local = t.streamWindow;
  params.initial_max_stream_data_bidi_remote = t.streamWindow;
  params.initial_max_stream_data_uni = 256u << 10;
  params.initial_max_data = t.connectionWindow;
  params.initial_max_streams_bidi = t.maxStreams;
  params.initial_max_streams_uni = 3;  // HTTP/3: control, QPACK encoder and decoder
  params.max_idle_timeout = static_cast<ngtcp2_duration>(t.idleTimeout.count()) * NGTCP2_MILLISECONDS;
  params.active_connection_id_limit = 7;
}

}  // namespace

bool QuicConn::setupTls(const std::string& sni) {
  if (!tls_) {
    why_ = "no TLS session for this connection";
    return false;
  }
  auto* ssl = static_cast<SSL*>(tls_->nativeHandle());
  connRef_.getConn = &QuicConn::getConn;
  connRef_.user = this;
  SslOptions opts;
  opts.serverName = sni;
  auto r = server_ ? configureServerSsl(ssl, &connRef_, opts) : configureClientSsl(ssl, &connRef_, opts);
  if (!r) {
    why_ = "TLS: " + r.error().detail;
    return false;
  }
  ngtcp2_conn_set_tls_native_handle(conn_, ssl);
  return true;
}

QuicConn::QuicConn(PacketIo& io, ServerParams p)
    : io_(io), server_(true), name_(std::move(p.name)), tuning_(p.tuning), path_(p.path), tls_(std::move(p.tls)) {
  const ngtcp2_pkt_hd& hd = *p.hd;
  start_ = io_.reactor().now();
  std::array<uint8_t, CidCodec::kLen> scidBytes;
  io_.newCid(scidBytes);
  ngtcp2_cid scid;
  ngtcp2_cid_init(&scid, scidBytes.data(), scidBytes.size());

  ngtcp2_callbacks cb{};
  setServerCryptoCallbacks(cb);
  setupCallbacks(cb);
  ngtcp2_settings settings;
  fillSettings(settings, tuning_, now());
  if (hd.tokenlen > 0 && p.tokenValidated) {
    settings.token = hd.token;
    settings.tokenlen = hd.tokenlen;
    settings.token_type = p.odcid ? NGTCP2_TOKEN_TYPE_RETRY : NGTCP2_TOKEN_TYPE_NEW_TOKEN;
  }
  ngtcp2_transport_params params;
  fillParams(params, tuning_);
  params.stateless_reset_token_present = 1;
  if (!generateStatelessResetToken(std::span<uint8_t, kStatelessResetTokenLen>(params.stateless_reset_token, 16),
                                   io_.resetSecret(), scid)) {
    why_ = "stateless reset token";
    return;
  }
  if (p.odcid != nullptr) {
    params.original_dcid = *p.odcid;
    params.retry_scid = hd.dcid;
    params.retry_scid_present = 1;
  } else {
    params.original_dcid = hd.dcid;
  }
  params.original_dcid_present = 1;

  ngtcp2_path np = toPath(path_);
  int rv = ngtcp2_conn_server_new(&conn_, &hd.scid, &scid, &np, hd.version, &cb, &settings, &params, ngtcp2Mem(), this);
  if (rv != 0) {
    why_ = std::string("ngtcp2_conn_server_new: ") + ngtcp2_strerror(rv);
    conn_ = nullptr;
    return;
  }
  if (!setupTls("")) {
    ngtcp2_conn_del(conn_);
    conn_ = nullptr;
    return;
  }
  registerCid(scid);
  originalDcid_ = cidKey(hd.dcid);
  io_.addCid(originalDcid_, this);  // the client repeats its Initial to this DCID until it hears us
  timer_ = io_.reactor().createTimer([this] { onTimer(); });
  io_.counters().connectionsOpen.fetch_add(1, std::memory_order_relaxed);
}

QuicConn::QuicConn(PacketIo& io, ClientParams p)
    : io_(io), server_(false), name_(std::move(p.name)), tuning_(p.tuning), wantAlpn_(std::move(p.alpn)),
      path_(p.path), tls_(std::move(p.tls)) {
  start_ = io_.reactor().now();
  if (p.makeApp) app_ = p.makeApp(*this);
  std::array<uint8_t, CidCodec::kLen> dcidBytes, scidBytes;
  io_.newCid(dcidBytes);
  io_.newCid(scidBytes);
  ngtcp2_cid dcid, scid;
  ngtcp2_cid_init(&dcid, dcidBytes.data(), dcidBytes.size());
  ngtcp2_cid_init(&scid, scidBytes.data(), scidBytes.size());
  ngtcp2_callbacks cb{};
  setClientCryptoCallbacks(cb);
  setupCallbacks(cb);
  ngtcp2_settings settings;
  fillSettings(settings, tuning_, now());
  ngtcp2_transport_params params;
  fillParams(params, tuning_);
  ngtcp2_path np = toPath(path_);
  int rv = ngtcp2_conn_client_new(&conn_, &dcid, &scid, &np, NGTCP2_PROTO_VER_V1, &cb, &settings, &params,
                                  ngtcp2Mem(), this);
  if (rv != 0) {
    why_ = std::string("ngtcp2_conn_client_new: ") + ngtcp2_strerror(rv);
    conn_ = nullptr;
    return;
  }
  if (!setupTls(p.sni)) {
    ngtcp2_conn_del(conn_);
    conn_ = nullptr;
    return;
  }
  registerCid(scid);
  timer_ = io_.reactor().createTimer([this] { onTimer(); });
  io_.counters().connectionsOpen.fetch_add(1, std::memory_order_relaxed);
}

QuicConn::~QuicConn() {
  // Faces still held by sessions (the listener went away on a reload): they read ECONNRESET now,
  // and their sessions hear it at once rather than at their idle timeout.
  std::vector<std::pair<QuicStream*, StreamCallbacks*>> orphans;
  for (auto& [id, s] : streams_) {
    if (s->face) {
      orphans.emplace_back(s->face, s->face->callbacks());
      s->face->markReadable();
      s->face->markWritable();
      s->face->detach();
      s->face = nullptr;
    }
  }
  streams_.clear();
  for (auto& [f, cb] : orphans) {
    if (cb) cb->onStreamReadable(*f);
  }
  app_.reset();
  if (conn_ != nullptr) {
    if (state_ != State::Dead) {
      io_.counters().connectionsOpen.fetch_sub(1, std::memory_order_relaxed);
      io_.counters().connectionsClosed.fetch_add(1, std::memory_order_relaxed);
    }
    for (const auto& c : cids_) io_.removeCid(c);
    if (!originalDcid_.empty()) io_.removeCid(originalDcid_);
    ngtcp2_conn_del(conn_);
  }
}

void QuicConn::registerCid(const ngtcp2_cid& cid) {
  std::string k = cidKey(cid);
  io_.addCid(k, this);
  cids_.push_back(std::move(k));
}

void QuicConn::setupCallbacks(ngtcp2_callbacks& cb) {
  cb.handshake_completed = cbHandshakeCompleted;
  cb.recv_stream_data = cbRecvStreamData;
  cb.acked_stream_data_offset = cbAckedStreamData;
  cb.stream_open = cbStreamOpen;
  cb.stream_close = cbStreamClose;
  cb.stream_reset = cbStreamReset;
  cb.stream_stop_sending = cbStreamStopSending;
  cb.extend_max_stream_data = cbExtendMaxStreamData;
  cb.extend_max_remote_streams_bidi = cbExtendMaxRemoteStreamsBidi;
  cb.get_new_connection_id = cbGetNewConnectionId;
  cb.remove_connection_id = cbRemoveConnectionId;
}

// ---------------------------------------------------------------------------------------------
// Packets in.

void QuicConn::onDatagram(const PathAddrs& path, const uint8_t* data, size_t len, uint8_t ecn) {
  if (state_ == State::Dead || len == 0) return;  // (ngtcp2 asserts on an empty datagram)
  if (state_ == State::Draining) return;  // the peer closed: say nothing more
  if (state_ == State::Closing) {
    // Repeat our CONNECTION_CLOSE to a late packet (RFC 9000 §10.2.1), within the amplification limit.
    if (!closeBuf_.empty()) {
      uint8_t* slot = io_.txSlot();
      std::memcpy(slot, closeBuf_.data(), closeBuf_.size());
      io_.send(slot, closeBuf_.size(), path.remote, path.local);
    }
    return;
  }
  ngtcp2_path p = toPath(path);
  ngtcp2_pkt_info pi{};
  pi.ecn = ecn;
  inRead_ = true;
  int rv = ngtcp2_conn_read_pkt(conn_, &p, &pi, data, len, now());
  inRead_ = false;
  if (pendingClose_) {  // a callback decided to close (an HTTP/3 connection error)
    pendingClose_ = false;
    closeWithError(pendingErr_);
    return;
  }
  if (rv != 0) {
    onReadError(rv);
    return;
  }
  if (!(path.remote == path_.remote)) path_ = path;  // migration or NAT rebinding: ngtcp2 validated it
  wake();
}

void QuicConn::onReadError(int rv) {
  QuicCounters& k = io_.counters();
  switch (rv) {
    case NGTCP2_ERR_DRAINING:
      enterDraining();
      return;
    case NGTCP2_ERR_DROP_CONN:
      die("dropped");
      return;
    case NGTCP2_ERR_DECRYPT:
      k.drop(DropReason::ConnError);  // a packet that does not decrypt is dropped, the connection lives
      return;
    default:
      break;
  }
  if (!handshakeDone_) k.handshakesFailed.fetch_add(1, std::memory_order_relaxed);
  ngtcp2_ccerr err;
  ngtcp2_ccerr_default(&err);
  if (rv == NGTCP2_ERR_CRYPTO) {
    ngtcp2_ccerr_set_tls_alert(&err, ngtcp2_conn_get_tls_alert(conn_), nullptr, 0);
  } else if (const ngtcp2_ccerr* set = ngtcp2_conn_get_ccerr(conn_); set && set->error_code != 0) {
    err = *set;  // a callback chose the error (an HTTP/3 connection error)
  } else {
    ngtcp2_ccerr_set_liberr(&err, rv, nullptr, 0);
  }
  if (io_.logBudget()) {
    spdlog::info("quic {}: connection from {} failed: {}{}", name_, path_.remote.str(), ngtcp2_strerror(rv),
                 handshakeDone_ ? "" : " (during the handshake: " + tls_->failureDetail() + ")");
  }
  closeWithError(err);
}

// ---------------------------------------------------------------------------------------------
// Packets out.

void QuicConn::wake() {
  if (wakePending_ || state_ == State::Dead) return;
  wakePending_ = true;
  io_.schedule(this);
}

void QuicConn::flush() {
  wakePending_ = false;
  if (state_ == State::Dead || state_ == State::Closing || state_ == State::Draining) return;
  deliverNotifications();
  if (state_ != State::Handshaking && state_ != State::Open) return;
  const ngtcp2_tstamp ts = now();
  if (!writeStreams(ts)) return;
  if (draining_ && streams_.empty()) {
    closeNow();
    return;
  }
  armTimer();
}

bool QuicConn::writeStreams(ngtcp2_tstamp ts) {
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  const size_t maxPkt = std::min<size_t>(ngtcp2_conn_get_max_tx_udp_payload_size(conn_), PacketIo::kMaxPacket);
  bool building = false;  // a packet is being filled (NGTCP2_ERR_WRITE_MORE)
  for (int i = 0; i < 1024; ++i) {  // bounded: a congestion-limited connection comes back by its timer
    ngtcp2_vec vecs[16];
    size_t nvecs = 0;
    bool fin = false;
    int64_t sid = -1;
    if (app_ && ngtcp2_conn_get_max_data_left(conn_) > 0) sid = app_->nextStreamData(vecs, 16, nvecs, fin);
    if (state_ != State::Open && state_ != State::Handshaking) return false;  // the application failed it
    uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
    if (fin) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
    ngtcp2_ssize ndatalen = -1;
    uint8_t* slot = io_.txSlot();
    ngtcp2_ssize n = ngtcp2_conn_writev_stream(conn_, &ps.path, &pi, slot, maxPkt, &ndatalen, flags, sid, vecs,
                                               nvecs, ts);
    if (n < 0) {
      switch (n) {
        case NGTCP2_ERR_STREAM_DATA_BLOCKED:
          app_->streamBlocked(sid);
          continue;
        case NGTCP2_ERR_STREAM_SHUT_WR:
          app_->streamShutWrite(sid);
          continue;
        case NGTCP2_ERR_WRITE_MORE:
          app_->streamDataTaken(sid, static_cast<size_t>(ndatalen));
          building = true;
          continue;
        default: {
          ngtcp2_ccerr err;
          ngtcp2_ccerr_default(&err);
          ngtcp2_ccerr_set_liberr(&err, static_cast<int>(n), nullptr, 0);
          closeWithError(err);
          return false;
        }
      }
    }
    building = false;
    if (ndatalen >= 0 && sid >= 0) app_->streamDataTaken(sid, static_cast<size_t>(ndatalen));
    if (n == 0) break;
    sendPacket(slot, static_cast<size_t>(n), ps.path, pi.ecn);
  }
  if (building) {
    // The bound ended the loop inside a packet being built (many streams with data): finish it
    // now, or ngtcp2 finds it still pending at the next read.
    uint8_t* slot = io_.txSlot();
    ngtcp2_ssize n = ngtcp2_conn_writev_stream(conn_, &ps.path, &pi, slot, maxPkt, nullptr,
                                               NGTCP2_WRITE_STREAM_FLAG_NONE, -1, nullptr, 0, ts);
    if (n > 0) sendPacket(slot, static_cast<size_t>(n), ps.path, pi.ecn);
  }
  ngtcp2_conn_update_pkt_tx_time(conn_, ts);
  ngtcp2_conn_info info;
  ngtcp2_conn_get_conn_info(conn_, &info);
  // Shared by the streams the connection carries: many bulk streams on one connection together
  // hold about one window's worth, not one each.
  const size_t share = (static_cast<size_t>(info.cwnd) + kMinWriteCap) / std::max<size_t>(1, streams_.size());
  writeCap_ = std::clamp<size_t>(share, kMinWriteCap, kMaxWriteCap);
  return true;
}

void QuicConn::sendPacket(const uint8_t* data, size_t len, const ngtcp2_path& path, uint8_t ecn) {
  auto to = SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(path.remote.addr), path.remote.addrlen);
  auto from = SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(path.local.addr), path.local.addrlen);
  io_.sendEcn(const_cast<uint8_t*>(data), len, to, from, ecn);
}

void QuicConn::armTimer() {
  const ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(conn_);
  // Most flushes (a burst of data, an ACK) leave the earliest deadline where it was: keep the
  // armed timer then instead of re-arming it after every flush.
  if (expiry == armedExpiry_ && (expiry == UINT64_MAX || timer_->enabled())) return;
  armedExpiry_ = expiry;
  if (expiry == UINT64_MAX) {
    timer_->disable();
    return;
  }
  const ngtcp2_tstamp t = now();
  const uint64_t ns = expiry > t ? expiry - t : 0;
  timer_->enable(Duration((ns + NGTCP2_MILLISECONDS - 1) / NGTCP2_MILLISECONDS));
}

void QuicConn::onTimer() {
  if (state_ == State::Closing || state_ == State::Draining) {
    die(state_ == State::Closing ? "closed" : "peer closed");
    return;
  }
  if (state_ == State::Dead) return;
  inRead_ = true;
  int rv = ngtcp2_conn_handle_expiry(conn_, now());
  inRead_ = false;
  if (pendingClose_) {
    pendingClose_ = false;
    closeWithError(pendingErr_);
    return;
  }
  if (rv != 0) {
    QuicCounters& k = io_.counters();
    if (rv == NGTCP2_ERR_IDLE_CLOSE) {
      die("idle timeout");
      return;
    }
    if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
      k.handshakeTimeouts.fetch_add(1, std::memory_order_relaxed);
      die("handshake timeout");
      return;
    }
    ngtcp2_ccerr err;
    ngtcp2_ccerr_default(&err);
    ngtcp2_ccerr_set_liberr(&err, rv, nullptr, 0);
    closeWithError(err);
    return;
  }
  wake();
}

// ---------------------------------------------------------------------------------------------
// Closing.

void QuicConn::closeWithError(const ngtcp2_ccerr& err) {
  if (state_ == State::Closing || state_ == State::Draining || state_ == State::Dead) return;
  if (ngtcp2_conn_in_closing_period(conn_) || ngtcp2_conn_in_draining_period(conn_)) {
    enterDraining();
    return;
  }
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  uint8_t* slot = io_.txSlot();
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(conn_, &ps.path, &pi, slot, PacketIo::kMaxPacket, &err, now());
  state_ = State::Closing;
  for (auto& [id, s] : streams_) {
    s->err = ECONNRESET;
    if (s->face) notify(*s, true, true);
  }
  if (n > 0) {
    closeBuf_.assign(slot, slot + n);
    sendPacket(slot, static_cast<size_t>(n), ps.path, pi.ecn);
  }
  deliverNotifications();
  // Stay 3 PTO to answer late packets with the same CONNECTION_CLOSE, then go.
  armedExpiry_ = 0;  // the closing / draining period, not an ngtcp2 deadline
  timer_->enable(Duration(std::max<uint64_t>(1, 3 * ngtcp2_conn_get_pto(conn_) / NGTCP2_MILLISECONDS)));
}

void QuicConn::closeWithAppError(uint64_t code, std::string_view reason) {
  ngtcp2_ccerr err;
  ngtcp2_ccerr_default(&err);
  ngtcp2_ccerr_set_application_error(&err, code, nullptr, 0);
  if (io_.logBudget()) {
    spdlog::info("quic {}: closing the connection from {}: application error 0x{:x}: {}", name_,
                 path_.remote.str(), code, reason);
  }
  if (inRead_) {  // inside an ngtcp2 callback: no packet may be written now
    if (!pendingClose_) pendingErr_ = err;
    pendingClose_ = true;
    return;
  }
  closeWithError(err);
}

void QuicConn::enterDraining() {
  if (state_ == State::Draining || state_ == State::Dead) return;
  state_ = State::Draining;
  for (auto& [id, s] : streams_) {
    s->err = ECONNRESET;
    if (s->face) notify(*s, true, true);
  }
  deliverNotifications();
  armedExpiry_ = 0;  // the closing / draining period, not an ngtcp2 deadline
  timer_->enable(Duration(std::max<uint64_t>(1, 3 * ngtcp2_conn_get_pto(conn_) / NGTCP2_MILLISECONDS)));
}

void QuicConn::drain() {
  if (state_ != State::Open && state_ != State::Handshaking) return;
  draining_ = true;
  if (app_) app_->drain();
  if (streams_.empty()) {
    closeNow();
  } else {
    wake();
  }
}

void QuicConn::closeNow() {
  if (app_) app_->drain();
  ngtcp2_ccerr err;
  ngtcp2_ccerr_default(&err);
  if (handshakeDone_ && app_) {
    ngtcp2_ccerr_set_application_error(&err, app_ ? 0x100 : 0, nullptr, 0);  // H3_NO_ERROR
  }
  closeWithError(err);
}

void QuicConn::refused(std::string_view why) {
  if (handshakeDone_ || state_ != State::Handshaking) return;
  die(why);
}

void QuicConn::die(std::string_view why) {
  if (state_ == State::Dead) return;
  QuicCounters& k = io_.counters();
  if (conn_ != nullptr) {
    ngtcp2_conn_info info;
    ngtcp2_conn_get_conn_info(conn_, &info);
    if (handshakeDone_) {
      k.rttBuckets[rttBucket(info.smoothed_rtt)].fetch_add(1, std::memory_order_relaxed);
      k.rttSumUs.fetch_add(info.smoothed_rtt / NGTCP2_MICROSECONDS, std::memory_order_relaxed);
    }
  }
  k.connectionsOpen.fetch_sub(1, std::memory_order_relaxed);
  k.connectionsClosed.fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("quic {}: connection {} {} ended: {}", name_, server_ ? "from" : "to", path_.remote.str(), why);
  state_ = State::Dead;
  timer_.reset();
  for (auto& [id, s] : streams_) {
    s->err = ECONNRESET;
    if (s->face) {
      QuicStream* f = s->face;
      f->markReadable();
      f->markWritable();
      StreamCallbacks* cb = f->callbacks();
      f->detach();
      s->face = nullptr;
      if (cb) cb->onStreamReadable(*f);
    }
  }
  if (onClosed) {
    auto cb = std::move(onClosed);
    onClosed = nullptr;
    cb(why);
  }
  io_.connDied(this);
}

// ---------------------------------------------------------------------------------------------
// Streams and their faces.

StreamState& QuicConn::stream(int64_t id) {
  auto& p = streams_[id];
  if (!p) p = std::make_unique<StreamState>(id);
  return *p;
}

StreamState* QuicConn::findStream(int64_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void QuicConn::eraseStream(int64_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  if (it->second->face) {
    // The face outlives the stream: it reads what is left... nothing: the state goes with the stream.
    QuicStream* f = it->second->face;
    StreamCallbacks* cb = f->callbacks();
    f->markReadable();
    f->markWritable();
    f->detach();
    if (cb) cb->onStreamReadable(*f);
  }
  streams_.erase(it);
}

void QuicConn::notify(StreamState& s, bool read, bool write) {
  if (!s.face) return;
  if (!s.notifyRead && !s.notifyWrite) notifyQ_.push_back(s.id);
  s.notifyRead |= read;
  s.notifyWrite |= write;
  wake();
}

void QuicConn::deliverNotifications() {
  for (int round = 0; round < 4 && !notifyQ_.empty(); ++round) {
    std::vector<int64_t> q;
    q.swap(notifyQ_);
    for (int64_t id : q) {
      StreamState* s = findStream(id);
      if (s == nullptr || s->face == nullptr) continue;
      const bool r = s->notifyRead, w = s->notifyWrite;
      s->notifyRead = s->notifyWrite = false;
      QuicStream* f = s->face;
      if (r) {
        f->markReadable();
        if (StreamCallbacks* cb = f->callbacks()) cb->onStreamReadable(*f);
      }
      s = findStream(id);  // the callback may have closed the face (and a reset may end the stream)
      if (w && s && s->face == f) {
        f->markWritable();
        if (StreamCallbacks* cb = f->callbacks()) cb->onStreamWritable(*f);
      }
    }
  }
}

void QuicConn::consumed(StreamState& s, size_t n) {
  if (state_ == State::Dead || conn_ == nullptr) return;
  extendCredit(s.id, n);
  wake();
}

void QuicConn::extendCredit(int64_t id, size_t n) {
  ngtcp2_conn_extend_max_stream_offset(conn_, id, n);
  ngtcp2_conn_extend_max_offset(conn_, n);
}

void QuicConn::dataReady(StreamState& s) {
  if (app_) app_->resume(s.id);
  wake();
}

void QuicConn::released(StreamState& s, bool abort) {
  if (state_ == State::Dead) return;
  if (abort && !s.closed && !s.finQueued) {
    // (A stream whose end is already queued, such as a 502 for a bad origin, is let finish.)
    ngtcp2_conn_shutdown_stream(conn_, 0, s.id, 0x10c);  // H3_REQUEST_CANCELLED
  } else if (!s.finQueued) {
    s.finQueued = true;
    if (app_) app_->resume(s.id);
  }
  // Unread bytes will never be read: give their credit back so the connection window stays open.
  if (size_t left = s.recvQ.size(); left > 0 && !s.closed) {
    s.recvQ.clear();
    extendCredit(s.id, left);
  }
  if (s.closed) eraseStream(s.id);
  wake();
}

// ---------------------------------------------------------------------------------------------
// Handshake.

void QuicConn::onHandshakeCompleted() {
  handshakeDone_ = true;
  state_ = State::Open;
  QuicCounters& k = io_.counters();
  outcome_ = tls_->finish();
  if (!outcome_.ok) {
    k.handshakesFailed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  k.handshakesOk.fetch_add(1, std::memory_order_relaxed);
  // A token for the next connection from this address (it skips the Retry round trip).
  std::array<uint8_t, kMaxRegularTokenLen> token;
  if (server_ && !io_.tokenSecret().empty()) {
    if (auto n = generateRegularToken(token, io_.tokenSecret(), path_.remote.sa(), path_.remote.len(), now())) {
      ngtcp2_conn_submit_new_token(conn_, token.data(), *n);
    }
  }
  // The client's original DCID is done with once the handshake is (it only carried Initials).
  if (!originalDcid_.empty()) {
    io_.removeCid(originalDcid_);
    originalDcid_.clear();
  }
  if (!server_) {
    if (outcome_.alpn != wantAlpn_) app_.reset();  // the server chose another protocol: close
    return;
  }
  if (outcome_.alpn == kAlpnH3) {
    app_ = std::make_unique<H3Server>(*this);
  } else if (outcome_.alpn == kAlpnMesh || outcome_.alpn == kAlpnMeshReverse) {
    app_ = std::make_unique<MuxApp>(*this, nullptr);  // handed to the mesh (include/ugate/mux.h)
  }
}

int QuicConn::cbHandshakeCompleted(ngtcp2_conn* c, void* ud) {
  (void)c;
  auto* self = static_cast<QuicConn*>(ud);
  self->onHandshakeCompleted();
  if (!self->outcome_.ok) return NGTCP2_ERR_CALLBACK_FAILURE;
  if (!self->app_) {
    // No protocol we serve was negotiated: close with TLS alert no_application_protocol (120).
    ngtcp2_ccerr_default(&self->pendingErr_);
    ngtcp2_ccerr_set_tls_alert(&self->pendingErr_, 120, nullptr, 0);
    self->pendingClose_ = true;
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  return self->app_->start() ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

// ---------------------------------------------------------------------------------------------
// ngtcp2 stream callbacks: straight to the application.

int QuicConn::cbRecvStreamData(ngtcp2_conn* c, uint32_t flags, int64_t id, uint64_t off, const uint8_t* data,
                                 size_t len, void* ud, void* sud) {
  (void)c, (void)off, (void)sud;
  auto* self = static_cast<QuicConn*>(ud);
  if (!self->app_) return NGTCP2_ERR_CALLBACK_FAILURE;
  return self->app_->recvStreamData(id, data, len, (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0);
}

int QuicConn::cbAckedStreamData(ngtcp2_conn* c, int64_t id, uint64_t off, uint64_t len, void* ud, void* sud) {
  (void)c, (void)off, (void)sud;
  auto* self = static_cast<QuicConn*>(ud);
  if (self->app_) self->app_->ackedStreamData(id, len);
  return 0;
}

int QuicConn::cbStreamOpen(ngtcp2_conn* c, int64_t id, void* ud) {
  (void)c, (void)id, (void)ud;
  return 0;
}

int QuicConn::cbStreamClose(ngtcp2_conn* c, uint32_t flags, int64_t id, uint64_t code, void* ud, void* sud) {
  (void)c, (void)sud;
  auto* self = static_cast<QuicConn*>(ud);
  if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET)) code = 0x100;  // H3_NO_ERROR
  if (self->app_) self->app_->streamClosed(id, code);
  return 0;
}

int QuicConn::cbStreamReset(ngtcp2_conn* c, int64_t id, uint64_t finalSize, uint64_t code, void* ud, void* sud) {
  (void)c, (void)finalSize, (void)sud;
  auto* self = static_cast<QuicConn*>(ud);
  if (self->app_) self->app_->streamReset(id, code);
  return 0;
}

int QuicConn::cbStreamStopSending(ngtcp2_conn* c, int64_t id, uint64_t code, void* ud, void* sud) {
  (void)c, (void)sud;
  auto* self = static_cast<QuicConn*>(ud);
  if (self->app_) self->app_->streamStopSending(id, code);
  return 0;
}

int QuicConn::cbExtendMaxStreamData(ngtcp2_conn* c, int64_t id, uint64_t max, void* ud, void* sud) {
  (void)c, (void)max, (void)sud;
  auto* self = static_cast<QuicConn*>(ud);
  if (self->app_) self->app_->extendMaxStreamData(id);
  return 0;
}

int QuicConn::cbExtendMaxRemoteStreamsBidi(ngtcp2_conn* c, uint64_t max, void* ud) {
  (void)c;
  auto* self = static_cast<QuicConn*>(ud);
  if (self->app_) self->app_->extendMaxRemoteStreams(max);
  return 0;
}

int QuicConn::cbGetNewConnectionId(ngtcp2_conn* c, ngtcp2_cid* cid, uint8_t* token, size_t len, void* ud) {
  (void)c;
  auto* self = static_cast<QuicConn*>(ud);
  if (len != CidCodec::kLen) return NGTCP2_ERR_CALLBACK_FAILURE;
  std::array<uint8_t, CidCodec::kLen> b;
  self->io_.newCid(b);
  ngtcp2_cid_init(cid, b.data(), b.size());
  if (!generateStatelessResetToken(std::span<uint8_t, kStatelessResetTokenLen>(token, kStatelessResetTokenLen),
                                   self->io_.resetSecret(), *cid)) {
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  self->registerCid(*cid);
  return 0;
}

int QuicConn::cbRemoveConnectionId(ngtcp2_conn* c, const ngtcp2_cid* cid, void* ud) {
  (void)c;
  auto* self = static_cast<QuicConn*>(ud);
  std::string k = cidKey(*cid);
  self->io_.removeCid(k);
  std::erase(self->cids_, k);
  return 0;
}

}  // namespace ugate::quic

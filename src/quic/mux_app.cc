// The mesh over QUIC (mux_app.h): raw bidirectional streams with a stream header, as a MuxConnection.
#include "quic/mux_app.h"

#include <algorithm>
#include <cerrno>

#include <spdlog/spdlog.h>

#include <ugate/config.h>
#include <ugate/tls_provider.h>
#include <ugate/worker_context.h>

#include "quic/client_socket.h"
#include "quic/quic_config.h"
#include "quic/quic_module.h"

namespace ugate::quic {

MuxApp::MuxApp(QuicConn& c, QuicMux* mux) : conn_(c), mux_(mux) {
  // A dialled connection's QuicMux knows its application from the start, so whichever of the two
  // goes first (a handshake that never completes, the mesh dropping the connection) detaches the
  // other.
  if (mux_ != nullptr) mux_->bindApp(this);
}

MuxApp::~MuxApp() {
  *alive_ = false;
  if (mux_ != nullptr) mux_->appGone("the QUIC connection ended");
}

bool MuxApp::start() {
  // Liveness: PINGs keep NATs open and find a dead peer within the idle timeout.
  const ngtcp2_duration idle = ngtcp2_conn_get_local_transport_params(conn_.conn())->max_idle_timeout;
  if (idle > 0) ngtcp2_conn_set_keep_alive_timeout(conn_.conn(), idle / 3);
  QuicCounters& k = conn_.io().counters();
  if (!conn_.isServer()) {
    if (mux_ == nullptr) return false;
    k.meshDialled.fetch_add(1, std::memory_order_relaxed);
    std::weak_ptr<bool> alive = alive_;
    conn_.io().reactor().defer([this, alive] {  // after the handshake callback returned
      if (auto a = alive.lock(); a && *a && mux_ != nullptr) mux_->appReady(*this);
    });
    return true;
  }
  // A server connection goes to the mesh (the registry's acceptor) once this turn is over.
  WorkerContext* w = conn_.io().worker();
  const ListenerConfig* l = conn_.io().listenerConfig();
  if (w == nullptr || l == nullptr) return false;
  auto mux = std::make_unique<QuicMux>(k, l->name);
  mux->attachServer(conn_, *this);
  mux_ = mux.get();
  auto holder = std::make_shared<MuxConnectionPtr>(std::move(mux));
  std::weak_ptr<bool> alive = alive_;
  std::string listener = l->name;
  conn_.io().reactor().defer([this, alive, holder, w, listener] {
    auto a = alive.lock();
    if (!a || !*a || !*holder) return;  // the connection is gone: the QuicMux goes with the holder
    mux_->appReady(*this);
    QuicCounters& kk = conn_.io().counters();
    if (!muxTransports().accept(*w, listener, *holder)) {
      if (conn_.io().logBudget()) {
        spdlog::warn("quic {}: mesh connection from {} refused: the mesh takes no QUIC connections here", listener,
                     conn_.peer().str());
      }
      return;  // the holder's QuicMux closes the connection
    }
    kk.meshAccepted.fetch_add(1, std::memory_order_relaxed);
  });
  return true;
}

// ---------------------------------------------------------------------------------------------
// Streams we open.

StreamPtr MuxApp::open(const std::string& authority, const MuxFields& fields, MuxConnection::Answer answer) {
  if (goingAway_ || !validAuthority(authority)) return nullptr;
  int64_t id = -1;
  if (ngtcp2_conn_open_bidi_stream(conn_.conn(), &id, nullptr) != 0) return nullptr;
  StreamState& s = conn_.stream(id);
  s.tunnel = true;
  StreamRequest req;
  req.authority = authority;
  for (const auto& [n, v] : fields) {
    if (validFieldName(n) && validFieldValue(v)) req.fields.emplace_back(n, v);
  }
  std::vector<uint8_t> hdr;
  encodeRequest(req, hdr);
  s.sendBuf.append(hdr.data(), hdr.size());  // payload the opener writes follows the header
  auto [it, fresh] = extra_.try_emplace(id, StreamHeaderParser::Kind::Response);
  it->second.answer = std::move(answer);
  ready_.insert(id);
  conn_.io().counters().meshStreamsOut.fetch_add(1, std::memory_order_relaxed);
  auto face = std::make_unique<QuicStream>(&conn_, &s);
  conn_.wake();
  return face;
}

// ---------------------------------------------------------------------------------------------
// Streams the peer opened.

void MuxApp::deliverInbound(StreamState& s, StreamRequest req) {
  const int64_t id = s.id;
  conn_.io().counters().meshStreamsIn.fetch_add(1, std::memory_order_relaxed);
  if (mux_ == nullptr || goingAway_) {
    ngtcp2_conn_shutdown_stream(conn_.conn(), 0, id, kMuxRefused);
    conn_.wake();
    return;
  }
  s.holdWrites = true;  // until answered: the answer's header goes first
  auto face = std::make_unique<QuicStream>(&conn_, &s);
  MuxInbound in;
  in.authority = std::move(req.authority);
  in.fields = std::move(req.fields);
  QuicStream* f = face.get();
  in.stream = std::move(face);
  in.respond = [f, id](int status, const MuxFields& fields, const std::string& body) {
    auto* c = static_cast<QuicConn*>(f->host());
    if (c == nullptr || f->state() == nullptr) return;  // the connection went away meanwhile
    if (auto* app = dynamic_cast<MuxApp*>(c->app())) app->answer(id, status, fields, body);
  };
  mux_->appStream(std::move(in));
}

void MuxApp::answer(int64_t id, int status, const MuxFields& fields, const std::string& body) {
  StreamState* s = conn_.findStream(id);
  if (s == nullptr || s->responded) return;
  s->responded = true;
  StreamResponse r;
  r.status = static_cast<uint16_t>(std::clamp(status, 100, 999));
  for (const auto& [n, v] : fields) {
    if (validFieldName(n) && validFieldValue(v)) r.fields.emplace_back(n, v);
  }
  std::vector<uint8_t> hdr;
  encodeResponse(r, hdr);
  s->sendBuf.append(hdr.data(), hdr.size());
  s->holdWrites = false;
  if (status < 200 || status > 299) {
    if (!body.empty()) s->sendBuf.append(reinterpret_cast<const uint8_t*>(body.data()), body.size());
    s->finQueued = true;
    // The rest of the opener's bytes are not wanted.
    if (!s->remoteEnded && !s->closed) ngtcp2_conn_shutdown_stream_read(conn_.conn(), 0, id, kMuxNoError);
  } else if (s->writeBlocked) {
    s->writeBlocked = false;
    conn_.notify(*s, false, true);
  }
  ready_.insert(id);
  conn_.wake();
}

void MuxApp::headerFailed(int64_t id, HeaderError e) {
  QuicCounters& k = conn_.io().counters();
  k.meshHeaderErrors.fetch_add(1, std::memory_order_relaxed);
  k.streamErrors.fetch_add(1, std::memory_order_relaxed);
  if (conn_.io().logBudget()) {
    spdlog::warn("quic {}: mesh stream {} from {}: bad stream header ({}); stream reset", conn_.name(), id,
                 conn_.peer().str(), headerErrorReason(e));
  }
  auto it = extra_.find(id);
  MuxConnection::Answer answer;
  if (it != extra_.end()) answer = std::move(it->second.answer);
  if (StreamState* s = conn_.findStream(id)) {
    s->err = ECONNRESET;
    conn_.notify(*s, true, true);
  }
  ngtcp2_conn_shutdown_stream(conn_.conn(), 0, id, kMuxHeaderError);
  conn_.wake();
  if (answer) answer(0, {});
}

int MuxApp::recvStreamData(int64_t id, const uint8_t* data, size_t len, bool fin) {
  if ((id & 0x2) != 0) {  // unidirectional: not part of this protocol; take and ignore
    conn_.extendCredit(id, len);
    return 0;
  }
  StreamState& s = conn_.stream(id);
  auto it = extra_.find(id);
  if (it == extra_.end()) {
    if (!remoteStream(id)) {  // ours, already finished with: credit and drop
      conn_.extendCredit(id, len);
      return 0;
    }
    it = extra_.try_emplace(id, StreamHeaderParser::Kind::Request).first;
  }
  Extra& x = it->second;
  size_t off = 0;
  bool justDone = false;
  if (!x.headerDone) {
    off = x.parser.feed({data, len});
    if (off > 0) conn_.extendCredit(id, off);  // header bytes are ours, not the application's
    if (x.parser.failed() || (!x.parser.done() && fin)) {
      headerFailed(id, x.parser.failed() ? x.parser.error() : HeaderError::Truncated);
      return 0;
    }
    if (!x.parser.done()) return 0;
    x.headerDone = true;
    justDone = true;
  }
  StreamResponse resp;
  bool refused = false;
  if (justDone && !remoteStream(id)) {
    resp = x.parser.takeResponse();
    refused = resp.status < 200 || resp.status > 299;
  }
  if (off < len) {
    // A refusal's reason text, and bytes for a stream whose face is gone, are not read by anyone
    // (an inbound stream gets its face just below).
    if (refused || (s.face == nullptr && !(justDone && remoteStream(id)))) {
      conn_.extendCredit(id, len - off);
    } else {
      s.recvQ.append(data + off, len - off);  // credited as the application reads
      conn_.notify(s, true, false);
    }
  }
  if (fin) {
    s.remoteEnded = true;
    conn_.notify(s, true, false);
  }
  if (!justDone) return 0;
  if (remoteStream(id)) {
    deliverInbound(s, x.parser.takeRequest());
    return 0;
  }
  auto answer = std::move(x.answer);
  x.answer = nullptr;
  if (refused) {
    s.err = ECONNREFUSED;  // no tunnel: the face reads an error
    conn_.notify(s, true, true);
  }
  if (answer) answer(resp.status, resp.fields);
  return 0;
}

void MuxApp::ackedStreamData(int64_t id, uint64_t len) {
  StreamState* s = conn_.findStream(id);
  if (s == nullptr) return;
  s->sendBuf.ack(static_cast<size_t>(len));
  if (s->writeBlocked && !s->holdWrites && s->sendBuf.size() < conn_.writeCap()) {
    s->writeBlocked = false;
    conn_.notify(*s, false, true);
  }
}

void MuxApp::streamClosed(int64_t id, uint64_t code) {
  ready_.erase(id);
  MuxConnection::Answer answer;
  if (auto it = extra_.find(id); it != extra_.end()) {
    answer = std::move(it->second.answer);
    extra_.erase(it);
  }
  if ((id & 0x2) == 0 && remoteStream(id)) ngtcp2_conn_extend_max_streams_bidi(conn_.conn(), 1);
  if (StreamState* s = conn_.findStream(id)) {
    s->closed = true;
    if (s->face) {
      if ((!s->remoteEnded || code != kMuxNoError) && s->err == 0) s->err = ECONNRESET;
      conn_.notify(*s, true, true);
    } else {
      conn_.eraseStream(id);
    }
  }
  if (answer) answer(0, {});
}

void MuxApp::streamReset(int64_t id, uint64_t code) {
  if (StreamState* s = conn_.findStream(id)) {
    s->err = ECONNRESET;
    s->resetCode = code;
    conn_.notify(*s, true, true);
  }
}

void MuxApp::streamStopSending(int64_t id, uint64_t code) {
  ngtcp2_conn_shutdown_stream_write(conn_.conn(), 0, id, code);
  if (StreamState* s = conn_.findStream(id)) {
    s->err = EPIPE;
    conn_.notify(*s, false, true);
  }
}

int64_t MuxApp::nextStreamData(ngtcp2_vec* vecs, size_t maxv, size_t& nvecs, bool& fin) {
  nvecs = 0;
  fin = false;
  // Round robin, a packet at a time: the search starts after the stream served last, so parallel
  // streams share the connection instead of the lowest ID taking every packet until it runs dry.
  auto serve = [&](std::set<int64_t>::iterator it, bool wrapped) -> int64_t {
    while (it != ready_.end() && (!wrapped || *it <= lastServed_)) {
      StreamState* s = conn_.findStream(*it);
      if (s == nullptr || s->closed || s->finHanded) {
        it = ready_.erase(it);
        continue;
      }
      size_t total = 0;
      const size_t n = s->sendBuf.peekInto(vecs, maxv, total);
      const bool f = s->finQueued && total == s->sendBuf.unhanded();
      if (n == 0 && !f) {
        it = ready_.erase(it);
        continue;
      }
      nvecs = n;
      fin = f;
      finOffered_ = f ? s->id : -1;
      lastServed_ = s->id;
      return s->id;
    }
    return -1;
  };
  const int64_t id = serve(ready_.upper_bound(lastServed_), false);
  return id >= 0 ? id : serve(ready_.begin(), true);
}

void MuxApp::streamDataTaken(int64_t id, size_t n) {
  StreamState* s = conn_.findStream(id);
  if (s == nullptr) return;
  s->sendBuf.hand(n);
  if (finOffered_ == id && s->finQueued && s->sendBuf.unhanded() == 0) {
    s->finHanded = true;
    ready_.erase(id);
  }
  finOffered_ = -1;
}

// ---------------------------------------------------------------------------------------------
// QuicMux: the connection as the mesh sees it.

QuicMux::QuicMux(QuicCounters& counters, std::string name) : counters_(counters), name_(std::move(name)) {}

QuicMux::~QuicMux() {
  early_.clear();
  if (app_ != nullptr) app_->detachMux();
  if (conn_ != nullptr && !conn_->dead()) {
    conn_->onClosed = nullptr;
    conn_->closeNow();
  }
  // A dialled connection goes with its socket. One that died is already queued for deletion, and
  // its destructor still reaches the socket (its PacketIo): the socket goes after it.
  if (sock_ && sock_->conn() == nullptr) {
    Reactor& r = sock_->reactor();
    deleteLater(r, std::move(sock_));
  }
  sock_.reset();
}

void QuicMux::attach(QuicConn& c, std::unique_ptr<ClientSocket> sock) {
  conn_ = &c;
  sock_ = std::move(sock);
  peerAddr_ = c.peer();
  localAddr_ = c.local();
  c.onClosed = [this](std::string_view why) { appGone(why); };
}

void QuicMux::attachServer(QuicConn& c, MuxApp& app) {
  conn_ = &c;
  app_ = &app;
  peerAddr_ = c.peer();
  localAddr_ = c.local();
  takeOutcome();
  c.onClosed = [this](std::string_view why) { appGone(why); };
}

void QuicMux::takeOutcome() {
  const TlsOutcome& o = conn_->tlsOutcome();
  if (o.peer) peer_ = std::make_unique<PeerIdentity>(*o.peer);
  alpn_ = o.alpn;
}

void QuicMux::setCallbacks(MuxConnectionCallbacks* cb) {
  cb_ = cb;
  if (cb_ == nullptr) return;
  auto early = std::move(early_);
  early_.clear();
  for (auto& in : early) cb_->onMuxStream(*this, std::move(in));
}

StreamPtr QuicMux::open(const std::string& authority, const MuxFields& fields, Answer answer) {
  if (!canOpen()) return nullptr;
  return app_->open(authority, fields, std::move(answer));
}

bool QuicMux::canOpen() const {
  return ready() && app_ != nullptr && !app_->goingAway() && ngtcp2_conn_get_streams_bidi_left(conn_->conn()) > 0;
}

void QuicMux::goAway() {
  if (conn_ != nullptr && !conn_->dead()) conn_->drain();
}

void QuicMux::close() {
  cb_ = nullptr;
  ready_ = false;
  if (conn_ != nullptr && !conn_->dead()) {
    conn_->onClosed = nullptr;
    conn_->closeNow();
  }
}

void QuicMux::appReady(MuxApp& app) {
  if (gone_) return;
  app_ = &app;
  if (conn_ == nullptr || conn_->dead()) return;
  takeOutcome();
  ready_ = true;
  if (cb_ != nullptr && !conn_->isServer()) cb_->onMuxReady(*this);
}

void QuicMux::appStream(MuxInbound in) {
  if (cb_ == nullptr) {
    early_.push_back(std::move(in));
    return;
  }
  cb_->onMuxStream(*this, std::move(in));
}

void QuicMux::appGone(std::string_view why) {
  if (gone_) return;
  gone_ = true;
  if (app_ != nullptr) app_->detachMux();  // the application may outlive this call (freed by its PacketIo)
  app_ = nullptr;
  early_.clear();
  const bool handshook = ready_;
  ready_ = false;
  if (conn_ != nullptr) {
    conn_->onClosed = nullptr;
    conn_ = nullptr;  // freed by its PacketIo
  }
  if (cb_ == nullptr) return;
  MuxConnectionCallbacks* cb = cb_;
  cb_ = nullptr;
  std::string detail = "QUIC connection " + std::string(handshook ? "" : "(before its handshake completed) ") +
                       "with " + peerAddr_.str() + " ended: " + std::string(why);
  cb->onMuxClosed(*this, handshook ? Errc::Reset : Errc::ConnectRefused, detail);
}

// ---------------------------------------------------------------------------------------------
// Transport "quic".

Result<MuxConnectionPtr> QuicMuxTransport::dial(WorkerContext& w, const MuxDialParams& p, MuxConnectionCallbacks& cb) {
  const TlsProviderPtr& tls = w.tls();
  if (!tls) return makeError(Errc::AuthFailed, "mesh over QUIC: no TLS credentials loaded");
  TlsSessionPtr ts = tls->clientSession(p.tls, p.sni, "quic|" + p.sni + "@" + p.address.str());
  if (!ts) return makeError(Errc::AuthFailed, "mesh over QUIC: no TLS context for these settings (reload in progress?)");
  auto sock = ClientSocket::open(w.reactor(), shared_.counters, p.address, &w);
  if (!sock) return sock.error();
  auto mux = std::make_unique<QuicMux>(shared_.counters, p.name);
  mux->setCallbacks(&cb);
  ClientParams cp;
  cp.tuning.handshakeTimeout = p.handshakeTimeout;
  cp.tuning.idleTimeout = p.idleTimeout;
  cp.tuning.maxStreams = p.maxStreams;  // the streams the peer may open to us (a gateway, to its node)
  cp.tuning.streamWindow = p.streamWindow;
  cp.tuning.connectionWindow = std::max(p.connectionWindow, p.streamWindow);
  cp.tls = std::move(ts);
  cp.sni = p.sni;
  cp.alpn = p.tls.alpn.empty() ? std::string(kAlpnMesh) : p.tls.alpn.front();  // ugate, or ugater (association)
  cp.name = p.name;
  QuicMux* m = mux.get();
  cp.makeApp = [m](QuicConn& c) { return std::make_unique<MuxApp>(c, m); };
  auto c = (*sock)->connect(std::move(cp));
  if (!c) return c.error();
  mux->attach(**c, std::move(*sock));
  return MuxConnectionPtr(std::move(mux));
}

}  // namespace ugate::quic

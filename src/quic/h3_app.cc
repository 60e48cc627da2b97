#include "quic/h3_app.h"

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include <ugate/config.h>
#include <ugate/http_endpoint.h>
#include <ugate/listener_stats.h>
#include <ugate/module.h>
#include <ugate/router.h>
#include <ugate/tunnel.h>
#include <ugate/worker_context.h>

#include "http/trace_context.h"
#include "quic/h3_origin.h"
#include "quic/h3_upstream.h"
#include "quic/lib_memory.h"
#include "quic/quic_options.h"

namespace ugate::quic {

namespace {

constexpr uint64_t kH3NoError = 0x100;
constexpr uint64_t kH3RequestRejected = 0x10b;
constexpr uint64_t kH3RequestCancelled = 0x10c;
constexpr size_t kMaxHeaderBytes = 16 * 1024;
constexpr std::string_view kErrorHeader = "x-ugate-error";

std::string_view rcbuf(nghttp3_rcbuf* b) {
  nghttp3_vec v = nghttp3_rcbuf_get_buf(b);
  return {reinterpret_cast<const char*>(v.base), v.len};
}

nghttp3_nv nv(std::string_view n, std::string_view v) {
  nghttp3_nv x;
  x.name = reinterpret_cast<uint8_t*>(const_cast<char*>(n.data()));
  x.namelen = n.size();
  x.value = reinterpret_cast<uint8_t*>(const_cast<char*>(v.data()));
  x.valuelen = v.size();
  x.flags = NGHTTP3_NV_FLAG_NONE;
  return x;
}

bool clientBidi(int64_t id) { return (id & 0x3) == 0; }

}  // namespace

H3Base::~H3Base() {
  if (h3_ != nullptr) nghttp3_conn_del(h3_);
}

bool H3Base::setup(bool server) {
  nghttp3_callbacks cb{};
  cb.acked_stream_data = cbAckedStreamData;
  cb.stream_close = cbStreamClose;
  cb.recv_data = cbRecvData;
  cb.deferred_consume = cbDeferredConsume;
  cb.begin_headers = cbBeginHeaders;
  cb.recv_header = cbRecvHeader;
  cb.end_headers = cbEndHeaders;
  cb.end_stream = cbEndStream;
  cb.stop_sending = cbStopSending;
  cb.reset_stream = cbResetStream;
  nghttp3_settings settings;
  nghttp3_settings_default(&settings);
  settings.qpack_max_dtable_capacity = 0;  // no dynamic table: nothing to keep per connection
  settings.qpack_blocked_streams = 0;
  settings.max_field_section_size = kMaxHeaderBytes;
  int rv = server ? nghttp3_conn_server_new(&h3_, &cb, &settings, nghttp3Mem(), this)
                  : nghttp3_conn_client_new(&h3_, &cb, &settings, nghttp3Mem(), this);
  if (rv != 0) return false;
  if (server) {
    const ngtcp2_transport_params* params = ngtcp2_conn_get_local_transport_params(conn_.conn());
    nghttp3_conn_set_max_client_streams_bidi(h3_, params->initial_max_streams_bidi);
  }
  int64_t ctrl = -1, enc = -1, dec = -1;
  if (ngtcp2_conn_open_uni_stream(conn_.conn(), &ctrl, nullptr) != 0 ||
      ngtcp2_conn_open_uni_stream(conn_.conn(), &enc, nullptr) != 0 ||
      ngtcp2_conn_open_uni_stream(conn_.conn(), &dec, nullptr) != 0) {
    return false;
  }
  return nghttp3_conn_bind_control_stream(h3_, ctrl) == 0 && nghttp3_conn_bind_qpack_streams(h3_, enc, dec) == 0;
}

// ---------------------------------------------------------------------------------------------
// ngtcp2 → nghttp3

int H3Base::recvStreamData(int64_t id, const uint8_t* data, size_t len, bool fin) {
  nghttp3_ssize n = nghttp3_conn_read_stream(h3_, id, data, len, fin ? 1 : 0);
  if (n < 0) {
    spdlog::debug("quic: HTTP/3 error on stream {}: {}", id, nghttp3_strerror(static_cast<int>(n)));
    conn_.io().counters().streamErrors.fetch_add(1, std::memory_order_relaxed);
    conn_.closeWithAppError(nghttp3_err_infer_quic_app_error_code(static_cast<int>(n)), "HTTP/3 error");
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  conn_.extendCredit(id, static_cast<size_t>(n));  // framing nghttp3 consumed itself
  return 0;
}

void H3Base::ackedStreamData(int64_t id, uint64_t len) { nghttp3_conn_add_ack_offset(h3_, id, len); }

void H3Base::streamClosed(int64_t id, uint64_t code) {
  int rv = nghttp3_conn_close_stream(h3_, id, code);
  if (rv != 0 && rv != NGHTTP3_ERR_STREAM_NOT_FOUND) {
    conn_.closeWithAppError(nghttp3_err_infer_quic_app_error_code(rv), "HTTP/3 stream close");
    return;
  }
  if (clientBidi(id)) ngtcp2_conn_extend_max_streams_bidi(conn_.conn(), 1);
}

void H3Base::streamReset(int64_t id, uint64_t code) {
  (void)code;
  nghttp3_conn_shutdown_stream_read(h3_, id);
  if (StreamState* s = conn_.findStream(id)) {
    s->err = ECONNRESET;
    s->resetCode = code;
    conn_.notify(*s, true, true);
  }
}

void H3Base::streamStopSending(int64_t id, uint64_t code) {
  (void)code;
  nghttp3_conn_shutdown_stream_read(h3_, id);
  if (StreamState* s = conn_.findStream(id)) {
    s->err = EPIPE;
    conn_.notify(*s, false, true);
  }
}

void H3Base::extendMaxStreamData(int64_t id) { nghttp3_conn_unblock_stream(h3_, id); }

void H3Base::resume(int64_t id) { nghttp3_conn_resume_stream(h3_, id); }

void H3Base::extendMaxRemoteStreams(uint64_t maxStreams) {
  if (conn_.isServer()) nghttp3_conn_set_max_client_streams_bidi(h3_, maxStreams);
}

int64_t H3Base::nextStreamData(ngtcp2_vec* vecs, size_t maxv, size_t& nvecs, bool& fin) {
  int64_t id = -1;
  int f = 0;
  static_assert(sizeof(nghttp3_vec) == sizeof(ngtcp2_vec));
  nghttp3_ssize n = nghttp3_conn_writev_stream(h3_, &id, &f, reinterpret_cast<nghttp3_vec*>(vecs), maxv);
  if (n < 0) {
    conn_.closeWithAppError(nghttp3_err_infer_quic_app_error_code(static_cast<int>(n)), "HTTP/3 write");
    nvecs = 0;
    return -1;
  }
  nvecs = static_cast<size_t>(n);
  fin = f != 0;
  return id;
}

void H3Base::streamDataTaken(int64_t id, size_t n) { nghttp3_conn_add_write_offset(h3_, id, n); }
void H3Base::streamBlocked(int64_t id) { nghttp3_conn_block_stream(h3_, id); }
void H3Base::streamShutWrite(int64_t id) { nghttp3_conn_shutdown_stream_write(h3_, id); }

void H3Base::drain() {
  if (h3_ != nullptr) nghttp3_conn_shutdown(h3_);  // GOAWAY: no new requests, the open ones go on
}

// ---------------------------------------------------------------------------------------------
// Requests.

void H3Server::headersDone(StreamState& s) {
  conn_.io().counters().streamsOpened.fetch_add(1, std::memory_order_relaxed);
  if (s.headerBytes > kMaxHeaderBytes) {
    respond(s, 431, {}, "request header fields too large\n", false);
    return;
  }
  if (s.method == "CONNECT" && s.protocol.empty()) {
    startTunnel(s);
    return;
  }
  if ((s.method == "GET" || s.method == "HEAD") && s.path == "/healthz") {
    respond(s, 200, {{"content-type", "text/plain"}}, s.method == "HEAD" ? "" : "ok\n", false);
    return;
  }
  if (startLocal(s)) return;
  startOrigin(s);
}

// ---------------------------------------------------------------------------------------------
// Requests served in process (ugate/http_endpoint.h): the listener's "push".

/**
 * LocalRequest: the HttpResponder of one request stream served in process; owns the service's
 * exchange. It finds its stream by id on each call (the connection may have dropped it).
 */
class H3Server::LocalRequest final : public HttpResponder {
 public:
  LocalRequest(H3Server& h3, int64_t id) : h3_(h3), id_(id) {}
  std::unique_ptr<HttpExchange> ex;
  bool done{false};  // answered (or finished): the stream takes no more from the service

  void respond(int status, const Headers& headers, std::string body) override {
    StreamState* s = h3_.conn_.findStream(id_);
    if (done) return;
    done = true;
    if (s != nullptr) h3_.respond(*s, status, headers, std::move(body), false);
    h3_.localDone(id_, false);
  }
  void startStream(int status, const Headers& headers) override {
    StreamState* s = h3_.conn_.findStream(id_);
    if (done || s == nullptr) return;
    if (!h3_.respondOrigin(*s, status, headers, true)) {
      done = true;
      h3_.localDone(id_, true);
    }
  }
  void send(std::string_view bytes) override {
    StreamState* s = h3_.conn_.findStream(id_);
    if (done || s == nullptr || bytes.empty()) return;
    // Sent as the client's flow control allows (the service bounds what is in flight to a
    // subscriber, as over HTTP/2 where these bytes would wait in the stream's buffer).
    s->sendBuf.append(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    h3_.resume(id_);
    h3_.conn_.dataReady(*s);
  }
  void finish() override {
    StreamState* s = h3_.conn_.findStream(id_);
    if (done) return;
    done = true;
    if (s != nullptr) {
      s->finQueued = true;
      h3_.resume(id_);
      h3_.conn_.dataReady(*s);
    }
    h3_.localDone(id_, false);
  }

 private:
  H3Server& h3_;
  int64_t id_;
};

bool H3Server::startLocal(StreamState& s) {
  WorkerContext* w = conn_.io().worker();
  const ListenerConfig* l = conn_.io().listenerConfig();
  if (w == nullptr || l == nullptr || s.method == "CONNECT") return false;
  auto o = std::dynamic_pointer_cast<const QuicListenerOptions>(l->options);
  if (!o || o->push.empty()) return false;  // secure by default: only what the config names
  HttpEndpoint* ep = nullptr;
  for (const ModulePtr& m : modules().list()) {
    auto* p = dynamic_cast<HttpEndpointProvider*>(w->moduleWorker(*m));
    if (p != nullptr && (ep = p->httpEndpoint(o->push)) != nullptr) break;
  }
  if (ep == nullptr || !ep->serves(s.path)) return false;
  HttpEndpointRequest req;
  req.protocol = "h3";
  req.method = s.method;
  req.target = s.path;
  req.authority = s.authority;
  req.headers = s.headers;
  req.source = conn_.peer().ip();
  if (const TlsOutcome& tls = conn_.tlsOutcome(); tls.peer) req.peer = *tls.peer;
  auto owned = std::make_unique<LocalRequest>(*this, s.id);
  LocalRequest* lr = owned.get();
  locals_[s.id] = std::move(owned);
  lr->ex = ep->open(std::move(req), *lr);  // may answer at once (lr then goes at turn end)
  if (!lr->done && s.remoteEnded) lr->ex->end();
  return true;
}

bool H3Server::takeBody(StreamState& s, const uint8_t* data, size_t len) {
  auto it = locals_.find(s.id);
  if (it == locals_.end()) return false;
  conn_.extendCredit(s.id, len);  // the service keeps the body (up to its limit, then 413)
  LocalRequest& lr = *it->second;
  if (!lr.done && lr.ex) lr.ex->body({reinterpret_cast<const char*>(data), len});
  return true;
}

void H3Server::bodyEnded(StreamState& s) {
  auto it = locals_.find(s.id);
  if (it == locals_.end()) return;
  LocalRequest& lr = *it->second;
  if (!lr.done && lr.ex) lr.ex->end();
}

void H3Server::localDone(int64_t id, bool reset) {
  auto it = locals_.find(id);
  if (it == locals_.end()) return;
  std::unique_ptr<LocalRequest> lr = std::move(it->second);
  locals_.erase(it);
  lr->done = true;
  if (reset) {
    if (StreamState* s = conn_.findStream(id)) resetStream(*s, kH3RequestCancelled);
  }
  deleteLater(conn_.io().reactor(), std::move(lr));  // its caller may be on the stack
}

void H3Server::streamClosed(int64_t id, uint64_t code) {
  localDone(id, false);
  H3Base::streamClosed(id, code);
}

void H3Server::streamReset(int64_t id, uint64_t code) {
  // The client cancelled the request (or stopped a delivery stream): the service forgets it.
  if (locals_.count(id) != 0) localDone(id, true);
  H3Base::streamReset(id, code);
}

void H3Server::streamStopSending(int64_t id, uint64_t code) {
  if (locals_.count(id) != 0) localDone(id, true);
  H3Base::streamStopSending(id, code);
}

StreamMeta H3Server::requestMeta(WorkerContext& w, const ListenerConfig& l) const {
  StreamMeta meta;
  meta.id = w.nextStreamId();
  meta.kind = StreamKind::H3;
  meta.listener = l.name;
  meta.source = conn_.peer();
  meta.local = conn_.local();
  meta.start = w.reactor().now();
  meta.alpn = "h3";
  const TlsOutcome& tls = conn_.tlsOutcome();
  meta.sni = tls.sni;
  if (tls.peer) meta.peer = std::make_unique<PeerIdentity>(*tls.peer);
  return meta;
}

void H3Server::startOrigin(StreamState& s) {
  if (conn_.io().worker() == nullptr || conn_.io().listenerConfig() == nullptr) {
    respond(s, 404, {{"content-type", "text/plain"}}, "no HTTP origin is routed here\n", false);
    return;
  }
  WorkerContext& w = *conn_.io().worker();
  const ListenerConfig& l = *conn_.io().listenerConfig();
  StreamMeta meta = requestMeta(w, l);
  // The origin is chosen by :authority (host, and port, 443 when absent) through the routes.
  std::string authority = s.authority;
  auto hp = HostPort::parse(authority);
  if (!hp) hp = HostPort::parse(authority + ":443");
  if (!hp || s.method.empty() || (s.path.empty() && s.method != "OPTIONS")) {
    respond(s, 400, {{"content-type", "text/plain"}}, "bad request: :method, :path and :authority needed\n", false);
    return;
  }
  meta.host = hp->host;
  meta.port = hp->port;
  if (auto a = SocketAddress::fromIp(hp->host, hp->port)) meta.originalDst = *a;
  const RouteDecision d = w.router().route(meta);
  const bool viaRoute = !d.route.empty() && d.http;
  const bool viaListener = d.route.empty() && l.to.type == Target::Type::HostPort;
  if (d.action == RouteDecision::Action::Reject) {
    respond(s, 403, {{"content-type", "text/plain"}, {std::string(kErrorHeader), "route_rejected"}},
            "rejected by a route\n", false);
    return;
  }
  if (!viaRoute && !viaListener) {
    respond(s, 404, {{"content-type", "text/plain"}}, "no HTTP origin is routed here\n", false);
    return;
  }
  const LimitsConfig& lim = w.config().limits;
  if (viaRoute && d.upstreamQuic && d.action == RouteDecision::Action::Dial) {
    // An HTTP/3 origin: relayed over a QUIC connection of ours (h3_upstream.h), no core session.
    meta.route = std::string(d.route);
    H3Upstream::Params p;
    p.target = d.target;
    p.tls = d.upstreamTls;
    p.connectTimeout = l.connectTimeout ? *l.connectTimeout : lim.connectTimeout;
    p.idleTimeout = l.idleTimeout ? *l.idleTimeout : lim.idleTimeout;
    auto up = std::make_unique<H3Upstream>(w, *this, conn_, s, std::move(meta), std::move(p));
    H3Upstream* u = up.get();
    upstreams_[s.id] = std::move(up);
    u->start();
    return;
  }
  SessionStart start;
  start.connectTimeout = l.connectTimeout ? *l.connectTimeout : lim.connectTimeout;
  start.idleTimeout = l.idleTimeout ? *l.idleTimeout : lim.idleTimeout;
  start.sniffTimeout = lim.sniffTimeout;
  s.tunnel = true;  // request body bytes queue for the face (and are credited as it reads them)
  auto face = std::make_unique<OriginFace>(&conn_, &s, *this, conn_.peer().ip());
  OriginFace* f = face.get();
  start.onResult = [f](Errc e, const StreamMeta&) {
    if (e == Errc::Ok) return;  // the origin answers through the face
    StreamState* st = f->state();
    auto* c = static_cast<QuicConn*>(f->host());
    if (st == nullptr || c == nullptr) return;
    if (auto* h3 = dynamic_cast<H3Server*>(c->app())) h3->answerOrigin(*st, e);
  };
  w.startSession(std::move(face), std::move(meta), std::move(start));
}

void H3Server::answerOrigin(StreamState& s, Errc e) {
  respond(s, tunnelStatus(e), {{std::string(kErrorHeader), std::string(errcReason(e))}, {"content-type", "text/plain"}},
          std::string(errcReason(e)) + "\n", false);
}

bool H3Server::respondOrigin(StreamState& s, int status, const H3Headers& headers, bool body) {
  if (s.responded) return false;
  s.responded = true;
  const std::string st = std::to_string(status);
  std::vector<nghttp3_nv> nva;
  nva.reserve(headers.size() + 1);
  nva.push_back(nv(":status", st));
  for (const auto& [n, v] : headers) nva.push_back(nv(n, v));
  if (!body) s.finQueued = true;
  nghttp3_data_reader dr{readData};
  if (nghttp3_conn_submit_response(h3_, s.id, nva.data(), nva.size(), body ? &dr : nullptr) != 0) return false;
  conn_.wake();
  return true;
}

H3Server::H3Server(QuicConn& c) : H3Base(c) {}
H3Server::~H3Server() = default;  // relays still running end with the connection (their faces are detached)

void H3Server::upstreamDone(int64_t id) {
  auto it = upstreams_.find(id);
  if (it == upstreams_.end()) return;
  std::unique_ptr<H3Upstream> u = std::move(it->second);
  upstreams_.erase(it);
  deleteLater(conn_.io().reactor(), std::move(u));
}

void H3Server::resetStream(StreamState& s, uint64_t code) {
  ngtcp2_conn_shutdown_stream(conn_.conn(), 0, s.id, code);
  conn_.wake();
}

void H3Server::respond(StreamState& s, int status, const H3Headers& extra,
                       std::string body, bool keepOpen) {
  if (s.responded) return;
  s.responded = true;
  const std::string st = std::to_string(status);
  std::vector<nghttp3_nv> nva;
  nva.reserve(extra.size() + 3);
  nva.push_back(nv(":status", st));
  const std::string len = std::to_string(body.size());
  if (!keepOpen) nva.push_back(nv("content-length", len));
  for (const auto& [n, v] : extra) nva.push_back(nv(n, v));
  if (!body.empty()) s.sendBuf.append(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  if (!keepOpen) s.finQueued = true;
  nghttp3_data_reader dr{readData};
  const bool withBody = keepOpen || !body.empty();
  int rv = nghttp3_conn_submit_response(h3_, s.id, nva.data(), nva.size(), withBody ? &dr : nullptr);
  if (rv != 0) {
    ngtcp2_conn_shutdown_stream(conn_.conn(), 0, s.id, kH3RequestRejected);
    return;
  }
  if (!keepOpen && !s.remoteEnded) {
    // A final answer: the rest of the request body is not wanted (RFC 9114 §4.1.2).
    ngtcp2_conn_shutdown_stream_read(conn_.conn(), 0, s.id, kH3NoError);
  }
  conn_.wake();
}

void H3Server::startTunnel(StreamState& s) {
  if (conn_.io().worker() == nullptr || conn_.io().listenerConfig() == nullptr) {
    respond(s, 501, {}, "no tunnels here\n", false);
    return;
  }
  WorkerContext& w = *conn_.io().worker();
  const ListenerConfig& l = *conn_.io().listenerConfig();
  StreamMeta meta = requestMeta(w, l);
  auto refuse = [&](int status, Errc why, const std::string& detail) {
    ListenerStats& ls = w.stats(meta.listener);
    ls.accepted.add();
    ls.closes[static_cast<size_t>(why)].add();
    if (w.logBudget()) {
      spdlog::warn("quic {}: CONNECT {} from {}: {} {}: {}", l.name, s.authority.substr(0, 256), meta.source.str(),
                   status, errcReason(why), detail);
    }
    respond(s, status, {{std::string(kErrorHeader), std::string(errcReason(why))}}, detail + "\n", false);
    if (meta.host.empty()) meta.host = s.authority.substr(0, 256);
    meta.closeReason = why;
    meta.closeDetail = detail;
    w.accessLog().log(meta);
  };
  auto hp = HostPort::parse(s.authority);
  if (!hp || !s.path.empty() || !s.scheme.empty()) {
    return refuse(400, Errc::ProtocolError, "CONNECT needs :authority host:port and no :scheme or :path");
  }
  meta.host = hp->host;
  meta.port = hp->port;
  if (auto a = SocketAddress::fromIp(hp->host, hp->port)) meta.originalDst = *a;
  // Trace context travels in the metadata (malformed fields are dropped, as on the mesh).
  auto field = [&s](std::string_view name) {
    std::string out;
    for (const auto& [n, v] : s.headers) {
      if (n != name) continue;
      if (!out.empty()) out += ',';
      out += v;
    }
    return out;
  };
  for (http::TraceField& f : http::takeTraceContext(field)) {
    if (f.why) continue;
    if (!meta.headers) meta.headers = std::make_unique<std::vector<std::pair<std::string, std::string>>>();
    meta.headers->emplace_back(std::string(f.name), std::move(f.value));
  }
  // Not an open proxy: a CONNECT goes where a route (or the listener's own `to`) says, nowhere else.
  const RouteDecision d = w.router().route(meta);
  if (d.action == RouteDecision::Action::Reject) return refuse(403, Errc::RouteRejected, "rejected by a route");
  if (d.route.empty() && l.to.type == Target::Type::None) {
    return refuse(403, Errc::RouteRejected, "no route allows " + hp->str() + " from listener " + l.name);
  }
  const LimitsConfig& lim = w.config().limits;
  SessionStart start;
  start.connectTimeout = l.connectTimeout ? *l.connectTimeout : lim.connectTimeout;
  start.idleTimeout = l.idleTimeout ? *l.idleTimeout : lim.idleTimeout;
  start.sniffTimeout = lim.sniffTimeout;
  s.tunnel = true;
  auto face = std::make_unique<QuicStream>(&conn_, &s);
  QuicStream* f = face.get();
  start.onResult = [f](Errc e, const StreamMeta&) {
    StreamState* st = f->state();
    auto* c = static_cast<QuicConn*>(f->host());
    if (st == nullptr || c == nullptr) return;  // the connection went away meanwhile
    if (auto* h3 = dynamic_cast<H3Server*>(c->app())) h3->answerTunnel(*st, e);
  };
  w.startSession(std::move(face), std::move(meta), std::move(start));
}

void H3Server::answerTunnel(StreamState& s, Errc e) {
  if (e == Errc::Ok) {
    respond(s, 200, {}, "", true);
    return;
  }
  respond(s, tunnelStatus(e), {{std::string(kErrorHeader), std::string(errcReason(e))}}, "", false);
}

// ---------------------------------------------------------------------------------------------
// Client

bool H3Client::start() {
  if (!setup(false)) return false;
  if (onReady) conn_.io().reactor().defer([this] {  // after the handshake callback returned
    if (onReady) onReady();
  });
  return true;
}

std::unique_ptr<QuicStream> H3Client::connectTunnel(const std::string& authority, const H3Headers& extra,
                                                    std::function<void(int, const H3Headers&)> onResponse) {
  if (h3_ == nullptr) return nullptr;
  int64_t id = -1;
  if (ngtcp2_conn_open_bidi_stream(conn_.conn(), &id, nullptr) != 0) return nullptr;
  StreamState& s = conn_.stream(id);
  s.tunnel = true;
  s.method = "CONNECT";
  s.authority = authority;
  std::vector<nghttp3_nv> nva;
  nva.push_back(nv(":method", "CONNECT"));
  nva.push_back(nv(":authority", s.authority));
  for (const auto& [n, v] : extra) nva.push_back(nv(n, v));
  nghttp3_data_reader dr{readData};
  if (nghttp3_conn_submit_request(h3_, id, nva.data(), nva.size(), &dr, &s) != 0) {
    ngtcp2_conn_shutdown_stream(conn_.conn(), 0, id, kH3RequestRejected);
    return nullptr;
  }
  waiting_[id] = Waiting{std::move(onResponse), true};
  auto face = std::make_unique<QuicStream>(&conn_, &s);
  conn_.wake();
  return face;
}

std::unique_ptr<QuicStream> H3Client::request(const H3Headers& head, bool body,
                                              std::function<void(int, const H3Headers&)> onResponse) {
  if (h3_ == nullptr) return nullptr;
  int64_t id = -1;
  if (ngtcp2_conn_open_bidi_stream(conn_.conn(), &id, nullptr) != 0) return nullptr;
  StreamState& s = conn_.stream(id);
  s.tunnel = true;  // response body bytes queue for the face (credited as it reads them)
  std::vector<nghttp3_nv> nva;
  nva.reserve(head.size());
  for (const auto& [n, v] : head) nva.push_back(nv(n, v));
  if (!body) s.finQueued = true;
  nghttp3_data_reader dr{readData};
  if (nghttp3_conn_submit_request(h3_, id, nva.data(), nva.size(), body ? &dr : nullptr, &s) != 0) {
    ngtcp2_conn_shutdown_stream(conn_.conn(), 0, id, kH3RequestRejected);
    return nullptr;
  }
  waiting_[id] = Waiting{std::move(onResponse), false};
  auto face = std::make_unique<QuicStream>(&conn_, &s);
  conn_.wake();
  return face;
}

void H3Client::headersDone(StreamState& s) {
  auto it = waiting_.find(s.id);
  if (it == waiting_.end()) return;
  if (!it->second.tunnel && s.status >= 100 && s.status < 200) {
    s.headers.clear();  // an interim answer: the final one follows
    s.headerBytes = 0;
    return;
  }
  const bool tunnel = it->second.tunnel;
  auto cb = std::move(it->second.cb);
  waiting_.erase(it);
  if (tunnel && (s.status < 200 || s.status > 299)) {
    s.err = ECONNREFUSED;  // no tunnel: the face reads an error once it has the answer
    conn_.notify(s, true, true);
  }
  if (cb) cb(s.status, s.headers);
}

void H3Client::streamClosed(int64_t id, uint64_t code) {
  auto it = waiting_.find(id);
  std::function<void(int, const H3Headers&)> cb;
  if (it != waiting_.end()) {
    cb = std::move(it->second.cb);
    waiting_.erase(it);
  }
  H3Base::streamClosed(id, code);
  if (cb) cb(0, {});
}

// ---------------------------------------------------------------------------------------------
// nghttp3 callbacks

int H3Base::cbAckedStreamData(nghttp3_conn* c, int64_t id, uint64_t len, void* ud, void* sud) {
  (void)c, (void)id;
  auto* self = static_cast<H3Base*>(ud);
  auto* s = static_cast<StreamState*>(sud);
  if (s == nullptr) return 0;
  s->sendBuf.ack(static_cast<size_t>(len));
  if (s->writeBlocked && s->sendBuf.size() < self->conn_.writeCap()) {
    s->writeBlocked = false;
    self->conn_.notify(*s, false, true);
  }
  return 0;
}

int H3Base::cbStreamClose(nghttp3_conn* c, int64_t id, uint64_t code, void* ud, void* sud) {
  (void)c, (void)sud;
  auto* self = static_cast<H3Base*>(ud);
  StreamState* s = self->conn_.findStream(id);
  if (s == nullptr) return 0;
  s->closed = true;
  if (s->face) {
    if (!s->remoteEnded || code != kH3NoError) {
      if (s->err == 0) s->err = ECONNRESET;
    }
    self->conn_.notify(*s, true, true);
    return 0;  // erased when the face is released
  }
  self->conn_.eraseStream(id);
  return 0;
}

int H3Base::cbRecvData(nghttp3_conn* c, int64_t id, const uint8_t* data, size_t len, void* ud, void* sud) {
  (void)c;
  auto* self = static_cast<H3Base*>(ud);
  auto* s = static_cast<StreamState*>(sud);
  if (s != nullptr && self->takeBody(*s, data, len)) return 0;
  if (s == nullptr || !s->tunnel || s->face == nullptr) {
    self->conn_.extendCredit(id, len);  // a body nobody reads: credit it at once
    return 0;
  }
  s->recvQ.append(data, len);  // credited when the session reads it (backpressure)
  self->conn_.notify(*s, true, false);
  return 0;
}

int H3Base::cbDeferredConsume(nghttp3_conn* c, int64_t id, size_t n, void* ud, void* sud) {
  (void)c, (void)sud;
  static_cast<H3Base*>(ud)->conn_.extendCredit(id, n);
  return 0;
}

int H3Base::cbBeginHeaders(nghttp3_conn* c, int64_t id, void* ud, void* sud) {
  (void)sud;
  auto* self = static_cast<H3Base*>(ud);
  StreamState& s = self->conn_.stream(id);
  nghttp3_conn_set_stream_user_data(c, id, &s);
  return 0;
}

int H3Base::cbRecvHeader(nghttp3_conn* c, int64_t id, int32_t token, nghttp3_rcbuf* name, nghttp3_rcbuf* value,
                           uint8_t flags, void* ud, void* sud) {
  (void)c, (void)id, (void)flags, (void)ud;
  auto* s = static_cast<StreamState*>(sud);
  if (s == nullptr) return 0;
  std::string_view n = rcbuf(name), v = rcbuf(value);
  s->headerBytes += n.size() + v.size() + 32;
  if (s->headerBytes > kMaxHeaderBytes) return 0;  // answered 431 at end_headers
  switch (token) {
    case NGHTTP3_QPACK_TOKEN__METHOD: s->method = v; break;
    case NGHTTP3_QPACK_TOKEN__SCHEME: s->scheme = v; break;
    case NGHTTP3_QPACK_TOKEN__AUTHORITY: s->authority = v; break;
    case NGHTTP3_QPACK_TOKEN__PATH: s->path = v; break;
    case NGHTTP3_QPACK_TOKEN__PROTOCOL: s->protocol = v; break;
    case NGHTTP3_QPACK_TOKEN__STATUS: {
      int st = 0;
      for (char ch : v) st = st * 10 + (ch - '0');  // nghttp3 checked it is 3 digits
      s->status = st;
      break;
    }
    default:
      if (s->authority.empty() && n == "host") s->authority = v;
      s->headers.emplace_back(n, v);
  }
  return 0;
}

int H3Base::cbEndHeaders(nghttp3_conn* c, int64_t id, int fin, void* ud, void* sud) {
  (void)c, (void)id;
  auto* self = static_cast<H3Base*>(ud);
  auto* s = static_cast<StreamState*>(sud);
  if (s == nullptr) return 0;
  s->headersDone = true;
  if (fin) s->remoteEnded = true;
  self->headersDone(*s);
  return 0;
}

int H3Base::cbEndStream(nghttp3_conn* c, int64_t id, void* ud, void* sud) {
  (void)c, (void)id;
  auto* self = static_cast<H3Base*>(ud);
  auto* s = static_cast<StreamState*>(sud);
  if (s == nullptr) return 0;
  s->remoteEnded = true;
  self->bodyEnded(*s);
  self->conn_.notify(*s, true, false);
  return 0;
}

int H3Base::cbStopSending(nghttp3_conn* c, int64_t id, uint64_t code, void* ud, void* sud) {
  (void)c, (void)sud;
  ngtcp2_conn_shutdown_stream_read(static_cast<H3Base*>(ud)->conn_.conn(), 0, id, code);
  return 0;
}

int H3Base::cbResetStream(nghttp3_conn* c, int64_t id, uint64_t code, void* ud, void* sud) {
  (void)c, (void)sud;
  auto* self = static_cast<H3Base*>(ud);
  // nghttp3 resets a stream it found malformed (H3_MESSAGE_ERROR, ...): that stream only.
  self->conn_.io().counters().streamErrors.fetch_add(1, std::memory_order_relaxed);
  if (self->conn_.io().logBudget()) {
    spdlog::warn("quic {}: HTTP/3 {} stream {} with {}: malformed; reset with 0x{:x}", self->conn_.name(),
                 self->conn_.isServer() ? "request" : "response", id, self->conn_.peer().str(), code);
  }
  ngtcp2_conn_shutdown_stream_write(self->conn_.conn(), 0, id, code);
  return 0;
}

nghttp3_ssize H3Base::readData(nghttp3_conn* c, int64_t id, nghttp3_vec* vec, size_t veccnt, uint32_t* pflags,
                                 void* ud, void* sud) {
  (void)c, (void)id, (void)ud;
  auto* s = static_cast<StreamState*>(sud);
  if (s == nullptr) {
    *pflags |= NGHTTP3_DATA_FLAG_EOF;
    return 0;
  }
  size_t total = 0;
  const size_t n = s->sendBuf.peekInto(vec, veccnt, total);
  s->sendBuf.hand(total);  // nghttp3 holds them now, until acknowledged
  if (s->finQueued && s->sendBuf.unhanded() == 0) {
    *pflags |= NGHTTP3_DATA_FLAG_EOF;
    s->finHanded = true;
  } else if (n == 0) {
    return NGHTTP3_ERR_WOULDBLOCK;
  }
  return static_cast<nghttp3_ssize>(n);
}

}  // namespace ugate::quic

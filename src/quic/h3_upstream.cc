#include "quic/h3_upstream.h"

#include <spdlog/spdlog.h>

#include <ugate/access_log_sink.h>
#include <ugate/listener_stats.h>
#include <ugate/reactor.h>
#include <ugate/tls_provider.h>
#include <ugate/tunnel.h>
#include <ugate/worker_context.h>

#include "quic/client_socket.h"
#include "quic/h3_app.h"
#include "quic/quic_conn.h"

namespace ugate::quic {

namespace {
constexpr uint64_t kH3InternalError = 0x102;
constexpr std::string_view kForwardedFor = "x-forwarded-for";
constexpr std::string_view kForwardedProto = "x-forwarded-proto";
}  // namespace

H3Upstream::H3Upstream(WorkerContext& w, H3Server& h3, QuicConn& down, StreamState& s, StreamMeta meta, Params p)
    : w_(w), h3_(h3), counters_(down.io().counters()), id_(s.id), meta_(std::move(meta)), p_(std::move(p)) {
  s.tunnel = true;       // request body bytes queue for the face (credited as the splicer reads them)
  s.holdWrites = true;   // no response bytes before the origin's response head
  down_ = std::make_unique<QuicStream>(&down, &s);
  meta_.upstream = p_.target.str();
}

H3Upstream::~H3Upstream() {
  if (splicer_) splicer_->stop();
  splicer_.reset();
  query_.reset();
  if (sock_ && sock_->conn() != nullptr) sock_->conn()->onClosed = nullptr;
  const bool clean = done_ && meta_.closeReason == Errc::Ok;  // else reset what is still open
  if (up_) up_->close(!clean);
  up_.reset();
  if (down_) down_->close(!clean);
  down_.reset();
  // A live connection goes with its socket (CONNECTION_CLOSE). One that died is already queued for
  // deletion and its destructor still reaches the socket (its PacketIo): the socket goes after it.
  if (sock_ && sock_->conn() == nullptr) {
    Reactor& r = sock_->reactor();
    deleteLater(r, std::move(sock_));
  }
  sock_.reset();
}

std::vector<std::pair<std::string, std::string>> H3Upstream::requestHead(const StreamState& s,
                                                                          const std::string& clientIp) {
  std::vector<std::pair<std::string, std::string>> h;
  h.reserve(s.headers.size() + 6);
  h.emplace_back(":method", s.method);
  h.emplace_back(":scheme", "https");
  h.emplace_back(":authority", s.authority);
  if (!s.path.empty()) h.emplace_back(":path", s.path);
  std::string xff;
  for (const auto& [n, v] : s.headers) {
    if (n == kForwardedFor) {
      xff = xff.empty() ? v : xff + ", " + v;
      continue;
    }
    if (n == kForwardedProto || n == "host") continue;  // ours replaces it; :authority says the host
    h.emplace_back(n, v);
  }
  h.emplace_back(std::string(kForwardedFor), xff.empty() ? clientIp : xff + ", " + clientIp);
  h.emplace_back(std::string(kForwardedProto), "https");
  return h;
}

void H3Upstream::start() {
  counters_.h3UpstreamRequests.fetch_add(1, std::memory_order_relaxed);
  query_ = w_.resolver().resolve(p_.target.host, p_.target.port,
                                 [this](Result<std::vector<SocketAddress>> r) { onResolved(std::move(r)); });
}

void H3Upstream::onResolved(Result<std::vector<SocketAddress>> r) {
  if (done_) return;
  if (!r || r->empty()) {
    fail(Errc::DnsFailure, "cannot resolve " + p_.target.host + (r ? std::string() : ": " + r.error().detail));
    return;
  }
  auto* down = static_cast<QuicConn*>(down_->host());
  if (down == nullptr) return finish(Errc::Reset, "the client's connection went away");
  const SocketAddress addr = r->front();
  meta_.upstreamAddr = addr;
  const TlsProviderPtr& tls = w_.tls();
  if (!tls || !p_.tls) return fail(Errc::AuthFailed, "no TLS credentials loaded");
  const std::string sni = !p_.tls->sni.empty()                          ? p_.tls->sni
                          : SocketAddress::fromIp(p_.target.host, 0) ? std::string()
                                                                       : p_.target.host;
  TlsSessionPtr ts = tls->clientSession(*p_.tls, sni, "h3|" + sni + "@" + addr.str());
  if (!ts) return fail(Errc::AuthFailed, "no TLS context for the route's upstreamTls (reload in progress?)");
  auto sock = ClientSocket::open(w_.reactor(), counters_, addr, &w_);
  if (!sock) return fail(sock.error().code, sock.error().detail);
  sock_ = std::move(*sock);
  ClientParams cp;
  cp.tuning.handshakeTimeout = p_.connectTimeout;
  cp.tuning.idleTimeout = p_.idleTimeout;
  cp.tls = std::move(ts);
  cp.sni = sni;
  cp.alpn = p_.tls->alpn.empty() ? std::string("h3") : p_.tls->alpn.front();
  cp.name = "h3 upstream " + p_.target.str();
  cp.makeApp = [this](QuicConn& c) {
    auto app = std::make_unique<H3Client>(c);
    app->onReady = [this] { onReady(); };
    return app;
  };
  auto c = sock_->connect(std::move(cp));
  if (!c) return fail(Errc::ProtocolError, "QUIC connection to the origin: " + c.error().detail);
  (*c)->onClosed = [this](std::string_view why) { onUpstreamClosed(why); };
}

void H3Upstream::onReady() {
  if (done_ || !sock_ || sock_->conn() == nullptr) return;
  auto* app = dynamic_cast<H3Client*>(sock_->conn()->app());
  StreamState* s = down_->state();
  if (app == nullptr || s == nullptr) return finish(Errc::Reset, "the client's stream went away");
  const bool body = !(s->remoteEnded && s->recvQ.empty());
  auto* down = static_cast<QuicConn*>(down_->host());
  up_ = app->request(requestHead(*s, down->peer().ip()), body,
                     [this](int status, const H3Headers& h) { onResponse(status, h); });
  if (!up_) return fail(Errc::ResourceExhausted, "the origin allows no new request stream");
  splicer_ = std::make_unique<Splicer>(w_.spliceContext(), *down_, *up_, *this);
  splicer_->start();
}

void H3Upstream::onResponse(int status, const H3Headers& headers) {
  if (done_) return;
  if (status == 0) return fail(Errc::Reset, "the origin ended the request stream without a response");
  StreamState* s = down_->state();
  if (s == nullptr) return;  // the splicer hears of it
  StreamState* u = up_ ? up_->state() : nullptr;
  const bool body = u == nullptr || !u->remoteEnded || !u->recvQ.empty();
  answered_ = true;
  if (!h3_.respondOrigin(*s, status, headers, body)) {
    return finish(Errc::ProtocolError, "the response head could not be sent to the client");
  }
  s->holdWrites = false;
  if (s->writeBlocked) {
    s->writeBlocked = false;
    static_cast<QuicConn*>(down_->host())->notify(*s, false, true);
  }
}

void H3Upstream::onUpstreamClosed(std::string_view why) {
  if (done_ || answered_) return;  // after the answer, the splicer hears of it from the faces
  const bool handshake = sock_ && sock_->conn() != nullptr && sock_->conn()->handshakeDone();
  if (why == "handshake timeout") return fail(Errc::HandshakeTimeout, "no QUIC handshake with the origin in time");
  if (why == ClientSocket::kRefused) return fail(Errc::ConnectRefused, "the origin's UDP port is closed: " + std::string(why));
  fail(handshake ? Errc::Reset : Errc::ProtocolError,
       std::string(handshake ? "the origin's connection ended before it answered: "
                             : "QUIC/TLS handshake with the origin failed: ") +
           std::string(why));
}

void H3Upstream::fail(Errc e, const std::string& detail) {
  if (done_) return;
  if (StreamState* s = down_ ? down_->state() : nullptr) {
    if (!answered_) {
      answered_ = true;
      s->holdWrites = false;
      h3_.answerOrigin(*s, e);
    } else {
      h3_.resetStream(*s, kH3InternalError);
    }
  }
  counters_.h3UpstreamErrors.fetch_add(1, std::memory_order_relaxed);
  if (w_.logBudget()) {
    spdlog::warn("quic {}: request for {}:{} from {} to HTTP/3 origin {} (route {}): {}: {}", meta_.listener,
                 meta_.host, meta_.port, meta_.source.str(), p_.target.str(), meta_.route, errcReason(e), detail);
  }
  finish(e, detail);
}

void H3Upstream::finish(Errc e, const std::string& detail) {
  if (done_) return;
  done_ = true;
  if (splicer_) {
    meta_.bytesFromClient = splicer_->bytesAtoB();
    meta_.bytesToClient = splicer_->bytesBtoA();
    splicer_->stop();
  }
  if (sock_ && sock_->conn() != nullptr) sock_->conn()->onClosed = nullptr;
  query_.reset();
  meta_.closeReason = e;
  if (e != Errc::Ok) meta_.closeDetail = detail;
  ListenerStats& ls = w_.stats(meta_.listener);
  ls.accepted.add();
  ls.closes[static_cast<size_t>(e)].add();
  w_.accessLog().log(meta_);
  h3_.upstreamDone(id_);  // frees this at the end of the turn
}

void H3Upstream::onSpliceDone() { finish(Errc::Ok, ""); }

void H3Upstream::onSpliceError(Errc reason, bool clientSide) {
  if (clientSide) return finish(reason, "the client's stream failed");
  fail(reason, "the origin's stream failed");
}

}  // namespace ugate::quic

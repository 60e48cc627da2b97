// HttpsCall (push_client.h): one HTTPS/1.1 request over a given transport.
#include "webpush/push_client.h"

#include <cctype>
#include <cstring>

#include "auth/peer_verifier.h"
#include "http/http1_response.h"

namespace ugate::webpush {

HttpsCall::HttpsCall(Reactor& r, auth::TlsContextPtr tls, std::string host, std::string method, std::string path,
                     std::vector<http::Header> reqHeaders, std::string reqBody, OnBody onBody, OnDone onDone)
    : r_(r), tlsCtx_(std::move(tls)), onBody_(std::move(onBody)), onDone_(std::move(onDone)),
      parser_(std::make_unique<http::ResponseParser>()), alive_(std::make_shared<bool>(true)) {
  const int64_t len = reqBody.empty() && (method == "GET" || method == "DELETE") ? http::kNoBody
                                                                                : static_cast<int64_t>(reqBody.size());
  out_ = http::formatRequestHead(method, path, host, reqHeaders, len, false) + reqBody;
}

HttpsCall::~HttpsCall() {
  *alive_ = false;
  if (tls_ && !done_) tls_->close(true);
}

std::string HttpsCall::header(std::string_view lower) const {
  for (const auto& h : headers) {
    std::string n = h.name;
    for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (n == lower) return h.value;
  }
  return "";
}

void HttpsCall::start(StreamPtr transport, const std::string& sni) {
  auth::TlsStreamOptions o;
  o.sni = sni;
  o.reactor = &r_;
  o.handshakeTimeout = Duration(10'000);
  o.onHandshake = [this, alive = alive_](const auth::TlsHandshakeInfo& info) {
    // After the handshake the request goes out: a transport whose writability is an edge already
    // seen (a mesh stream) signals nothing more.
    r_.defer([this, alive, ok = info.ok(), d = info.detail] {
      if (!*alive) return;
      if (!ok) return finish("TLS: " + d);
      flush();
    });
  };
  tls_ = auth::TlsStream::create(std::move(transport), tlsCtx_, std::move(o));
  tls_->setCallbacks(this);
  tls_->start();
  flush();
}

void HttpsCall::cancel() {
  if (done_) return;
  done_ = true;
  if (tls_) tls_->close(true);
}

void HttpsCall::flush() {
  while (!done_ && !out_.empty()) {
    IoResult w = tls_->write(reinterpret_cast<const uint8_t*>(out_.data()), out_.size());
    if (w.wouldBlock()) return;
    if (!w.ok()) return finish("write: " + std::string(std::strerror(w.err)));
    out_.erase(0, static_cast<size_t>(w.value));
  }
}

void HttpsCall::onStreamReadable(Stream&) {
  uint8_t buf[16384];
  while (!done_) {
    IoResult rd = tls_->read(buf, sizeof buf);
    if (rd.wouldBlock()) return;
    if (!rd.ok()) {
      return finish("read: " + (tls_->lastError().empty() ? std::string(std::strerror(rd.err)) : tls_->lastError()));
    }
    if (rd.value == 0) {
      http::ResponseStep st = parser_->finish();
      if (st.event == http::ResponseEvent::End) return finish("");
      return finish("the server closed the connection: " + std::string(parser_->error()));
    }
    in_.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(rd.value));
    parse();
  }
}

void HttpsCall::parse() {
  while (!done_) {
    http::ResponseStep st = parser_->next({reinterpret_cast<const uint8_t*>(in_.data()), in_.size()});
    if (st.event == http::ResponseEvent::Body) {
      std::string_view chunk(reinterpret_cast<const char*>(st.body.data()), st.body.size());
      if (onBody_) onBody_(chunk);
      else body.append(chunk);
    }
    in_.erase(0, st.consumed);
    if (st.event == http::ResponseEvent::Head) {
      status = parser_->response().status;
      headers = parser_->response().headers;
    } else if (st.event == http::ResponseEvent::End) {
      return finish("");
    } else if (st.event == http::ResponseEvent::Error) {
      return finish("bad response: " + std::string(parser_->error()));
    } else if (st.event == http::ResponseEvent::NeedMore) {
      return;
    }
  }
}

void HttpsCall::finish(std::string why) {
  if (done_) return;
  done_ = true;
  error = std::move(why);
  if (tls_) tls_->close(false);
  onDone_(*this);
}

}  // namespace ugate::webpush

namespace ugate::webpush {

Result<auth::TlsContextPtr> httpsClientContext(const std::string& rootsPem, const std::string& pinnedId, bool insecure,
                                               const std::string& certChainPem, const std::string& keyPem) {
  auth::PeerVerifyConfig pv;
  if (!rootsPem.empty()) pv.rootsPem = rootsPem;
  else if (!pinnedId.empty()) pv.pinnedIds = {pinnedId};
  else if (insecure) pv.acceptAny = true;
  else return makeError(Errc::InvalidArgument, "no way to check the push service's certificate");
  auto verifier = auth::PeerVerifier::create(pv);
  if (!verifier) return verifier.error();
  auth::TlsContextConfig c;
  c.server = false;
  c.verifier = *verifier;
  c.certChainPem = certChainPem;
  c.keyPem = keyPem;
  c.alpn = {"http/1.1"};
  c.tls13Only = false;
  auto ctx = auth::TlsContext::create(std::move(c));
  if (!ctx) return ctx.error();
  return *ctx;
}

}  // namespace ugate::webpush

#include "core/health_check.h"

#include <cstring>

#include <ugate/socket_util.h>

namespace ugate {

namespace {
constexpr size_t kMaxResponseHead = 1024;  // the status line must come within this
}  // namespace

int httpStatusOf(std::string_view r) {
  size_t eol = r.find('\n');
  if (eol == std::string_view::npos) return r.size() > kMaxResponseHead ? 0 : -1;
  std::string_view line = r.substr(0, eol);
  if (!line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ') return 0;
  int code = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return 0;
    code = code * 10 + (line[i] - '0');
  }
  return code;
}

HealthProbe::HealthProbe(Reactor& r, const SocketAddress& a, const HealthCheckConfig& hc,
                         const std::string& hostHeader, Done done)
    : reactor_(r), addr_(a), http_(hc.kind == HealthCheckConfig::Kind::Http), done_(std::move(done)) {
  if (http_) {
    request_ = "GET " + hc.path + " HTTP/1.1\r\nHost: " + hostHeader +
               "\r\nUser-Agent: ugated-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  }
  timer_ = reactor_.createTimer([this, t = hc.timeout] {
    finish(false, "no answer within " + std::to_string(t.count()) + " ms");
  });
  timer_->enable(hc.timeout);
}

HealthProbe::~HealthProbe() {
  *alive_ = false;
  if (stream_) stream_->close(true);
}

void HealthProbe::start() {
  auto fd = startConnect(addr_);
  if (!fd) {
    finish(false, fd.error().detail);
    return;
  }
  stream_ = std::make_unique<TcpStream>(reactor_, *fd, [this](int err) { onConnected(err); });
}

void HealthProbe::onConnected(int err) {
  if (finished_) return;
  if (err != 0) {
    finish(false, std::string("connect: ") + strerror(err));
    return;
  }
  if (!http_) {
    finish(true, "");
    return;
  }
  stream_->setCallbacks(this);
  sendRequest();
}

void HealthProbe::sendRequest() {
  while (!finished_ && written_ < request_.size()) {
    IoResult w = stream_->write(reinterpret_cast<const uint8_t*>(request_.data()) + written_,
                                request_.size() - written_);
    if (w.wouldBlock()) return;
    if (!w.ok()) {
      finish(false, std::string("send: ") + strerror(w.err));
      return;
    }
    written_ += static_cast<size_t>(w.value);
  }
}

void HealthProbe::onStreamWritable(Stream&) { sendRequest(); }

void HealthProbe::onStreamReadable(Stream&) {
  while (!finished_) {
    uint8_t buf[512];
    IoResult r = stream_->read(buf, sizeof(buf));
    if (r.wouldBlock()) return;
    if (!r.ok()) {
      finish(false, std::string("receive: ") + strerror(r.err));
      return;
    }
    if (r.value == 0) {
      finish(false, "closed before a status line");
      return;
    }
    response_.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(r.value));
    int code = httpStatusOf(response_);
    if (code < 0) continue;
    if (code == 0) {
      finish(false, "not an HTTP/1.x response");
    } else if (code >= 200 && code < 300) {
      finish(true, "");
    } else {
      finish(false, "HTTP status " + std::to_string(code));
    }
  }
}

void HealthProbe::finish(bool ok, std::string why) {
  if (finished_) return;
  finished_ = true;
  timer_->disable();
  if (stream_) {
    stream_->setCallbacks(nullptr);
    stream_->close(!ok);
    deleteLater(reactor_, std::move(stream_));  // we may be inside its callback
  }
  // Report from a later point of this turn: the owner may destroy this probe in done_.
  reactor_.defer([this, alive = alive_, ok, why = std::move(why)] {
    if (*alive) done_(ok, why);
  });
}

}  // namespace ugate

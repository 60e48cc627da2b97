#include "xds/grpc_server.h"

#include <spdlog/spdlog.h>

#include <array>

namespace ugate::xds::grpc {

namespace {

constexpr std::string_view kContentType = "application/grpc";
// kMaxArmedTimeout: a grpc-timeout beyond this (up to ~11 400 years) arms no timer at all.
constexpr auto kMaxArmedTimeout = std::chrono::hours(24 * 365);

}  // namespace

void refuseCall(http::H2Stream& stream, const Status& status, const http::Headers& extra) {
  http::Headers h{{"content-type", std::string(kContentType)}};
  h.insert(h.end(), extra.begin(), extra.end());
  stream.respond(200, h);
  stream.sendTrailers(statusTrailers(status));
}

ServerCall::ServerCall(Server& server, Reactor& r, http::H2StreamPtr stream,
                       uint32_t maxRecvMessageBytes)
    : server_(server), reactor_(r), stream_(std::move(stream)), decoder_(maxRecvMessageBytes) {}

ServerCall::~ServerCall() {
  if (stream_) {
    stream_->setCallbacks(nullptr);
    // A call that never finished (the Server went away): destroying the stream resets it.
  }
}

void ServerCall::start(CallHandlerPtr handler, std::optional<std::chrono::nanoseconds> timeout) {
  handler_ = std::move(handler);
  stream_->respond(200, {{"content-type", std::string(kContentType)}});
  if (timeout && *timeout < kMaxArmedTimeout) {
    const auto ms = std::chrono::ceil<Duration>(*timeout);
    deadline_ = reactor_.now() + ms;
    deadlineTimer_ = reactor_.createTimer([this] {
      finish({Code::DeadlineExceeded, "deadline exceeded"});
    });
    deadlineTimer_->enable(ms);
  }
  stream_->setCallbacks(this);
  readSome();
}

void ServerCall::onStreamReadable(Stream&) { readSome(); }

void ServerCall::onStreamWritable(Stream&) { flush(); }

void ServerCall::readSome() {
  if (reading_) return;
  reading_ = true;
  std::array<uint8_t, 16384> buf;
  std::string message;
  while (!done_ && !finishing_ && !halfClosed_) {
    const IoResult r = stream_->read(buf.data(), buf.size());
    if (r.wouldBlock()) break;
    if (!r.ok()) {
      // Reset by the client (CANCEL when it gave up) or the connection died: no trailers.
      const uint32_t code = stream_->resetCode();
      end({code != 0 ? codeFromH2Error(code) : Code::Cancelled,
           code != 0 ? "stream reset by the client" : "connection lost"});
      break;
    }
    if (r.value == 0) {
      halfClosed_ = true;
      const Status s = decoder_.finish();
      if (!s.ok()) {
        finish(s);
      } else {
        handler_->onHalfClose(*this);
      }
      break;
    }
    std::span<const uint8_t> in(buf.data(), static_cast<size_t>(r.value));
    while (!done_ && !finishing_) {
      const auto o = decoder_.decode(in, message);
      if (o == MessageDecoder::Outcome::NeedMore) break;
      if (o == MessageDecoder::Outcome::Failed) {
        finish(decoder_.status());
        break;
      }
      handler_->onMessage(*this, std::move(message));
      message.clear();
    }
  }
  reading_ = false;
}

bool ServerCall::send(std::string_view message) {
  if (done_ || finishing_) return false;
  if (outOff_ == out_.size()) {
    out_.clear();
    outOff_ = 0;
  }
  appendMessage(out_, message);
  flush();
  return true;
}

void ServerCall::finish(Status status) {
  if (done_ || finishing_) return;
  finishing_ = true;
  final_ = std::move(status);
  if (deadlineTimer_) deadlineTimer_->disable();
  flush();
}

void ServerCall::flush() {
  if (done_) return;
  while (outOff_ < out_.size()) {
    const IoResult r = stream_->write(reinterpret_cast<const uint8_t*>(out_.data()) + outOff_,
                                      out_.size() - outOff_);
    if (r.wouldBlock()) return;  // onStreamWritable resumes
    if (!r.ok()) {
      end({Code::Cancelled, "stream closed while sending"});
      return;
    }
    outOff_ += static_cast<size_t>(r.value);
  }
  if (finishing_) {
    stream_->sendTrailers(statusTrailers(final_));
    end(final_);
  }
}

void ServerCall::end(const Status& status) {
  if (done_) return;
  done_ = true;
  if (deadlineTimer_) deadlineTimer_->disable();
  stream_->setCallbacks(nullptr);
  if (!status.ok()) {
    spdlog::debug("grpc: {}: {} {}", stream_->path(), codeName(status.code), status.message);
  }
  if (handler_) handler_->onDone(*this, status);
  server_.release(*this);
}

Server::~Server() {
  // Streams reset (CANCEL) as their calls go; a call already released sits in the reactor's
  // deferred list and never touches the Server again.
  calls_.clear();
}

void Server::addMethod(std::string path, MethodFactory f) {
  methods_[std::move(path)] = std::move(f);
}

void Server::release(ServerCall& call) {
  auto it = calls_.find(&call);
  if (it == calls_.end()) return;
  std::unique_ptr<ServerCall> p = std::move(it->second);
  calls_.erase(it);
  reactor_.deferredDelete(std::move(p));
}

void Server::handle(http::H2StreamPtr stream) {
  if (stream->method() != "POST") {
    stream->respond(405, {{"allow", "POST"}});
    return;  // dropping it sends the 405, then resets what the client still sends
  }
  if (!isGrpcContentType(stream->header("content-type"))) {
    stream->respond(415, {{"content-type", "text/plain"}},
                    "gRPC requires content-type application/grpc\n");
    return;
  }
  if (stream->header("te") != "trailers") {
    // Clients send it to detect proxies that would drop the trailers carrying the status.
    refuseCall(*stream, {Code::Internal, "te: trailers is required"});
    return;
  }
  if (!acceptsEncoding(stream->header("grpc-encoding"))) {
    refuseCall(*stream,
               {Code::Unimplemented,
                "grpc-encoding " + stream->header("grpc-encoding") + " is not supported"},
               {{"grpc-accept-encoding", "identity"}});
    return;
  }
  std::optional<std::chrono::nanoseconds> timeout;
  if (const std::string t = stream->header("grpc-timeout"); !t.empty()) {
    auto parsed = parseTimeout(t);
    if (!parsed) {
      refuseCall(*stream, {Code::Internal, "malformed grpc-timeout: " + parsed.error().detail});
      return;
    }
    timeout = *parsed;
  }
  auto m = methods_.find(stream->path());
  if (m == methods_.end()) {
    refuseCall(*stream, {Code::Unimplemented, "unknown method " + stream->path()});
    return;
  }
  auto owned =
      std::make_unique<ServerCall>(*this, reactor_, std::move(stream), opts_.maxRecvMessageBytes);
  ServerCall& call = *owned;
  CallHandlerPtr handler = m->second(call);
  if (!handler) {
    refuseCall(*call.stream_, {Code::Unimplemented, "method " + call.path() + " not served now"});
    return;
  }
  calls_.emplace(&call, std::move(owned));
  call.start(std::move(handler), timeout);
}

}  // namespace ugate::xds::grpc

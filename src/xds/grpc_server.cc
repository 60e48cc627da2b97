#include "xds/grpc_server.h"

#include <spdlog/spdlog.h>

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
  const ReadEnd e = readMessages(
      *stream_, decoder_, [this] { return !done_ && !finishing_ && !halfClosed_; },
      [this](std::string m) { handler_->onMessage(*this, std::move(m)); });
  reading_ = false;
  switch (e) {
    case ReadEnd::Error:  // the client cancelled (RST_STREAM) or the connection died: no trailers
      end(lostStreamStatus(stream_->resetCode(), Code::Cancelled, "client"));
      break;
    case ReadEnd::Eof: {
      halfClosed_ = true;
      const Status s = decoder_.finish();
      if (!s.ok()) {
        finish(s);
      } else {
        handler_->onHalfClose(*this);
      }
      break;
    }
    case ReadEnd::BadMessage:
      finish(decoder_.status());
      break;
    case ReadEnd::WouldBlock:
    case ReadEnd::Stopped:
      break;
  }
}

bool ServerCall::send(std::string_view message) {
  if (done_ || finishing_) return false;
  writer_.push(message);
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
  const IoResult r = writer_.flush(*stream_);
  if (r.wouldBlock()) return;  // onStreamWritable resumes
  if (!r.ok()) {
    end({Code::Cancelled, "stream closed while sending"});
    return;
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

#include "xds/grpc_client.h"

namespace ugate::xds::grpc {

ClientCall::ClientCall(Reactor& r, const ClientCallOptions& o, ClientCallHandler& h)
    : reactor_(r), handler_(h), decoder_(o.maxRecvMessageBytes) {}

std::unique_ptr<ClientCall> ClientCall::start(Reactor& r, http::H2Connection& conn,
                                              std::string_view path, const ClientCallOptions& o,
                                              ClientCallHandler& h) {
  auto call = std::make_unique<ClientCall>(r, o, h);
  http::Headers headers{{"content-type", "application/grpc"}, {"te", "trailers"}};
  if (o.timeout) headers.emplace_back("grpc-timeout", encodeTimeout(*o.timeout));
  headers.insert(headers.end(), o.metadata.begin(), o.metadata.end());
  ClientCall* raw = call.get();
  call->stream_ = conn.request("POST", o.scheme, o.authority, std::string(path), headers,
                               [raw](http::H2Stream& s) { raw->onResponse(s); });
  if (!call->stream_) return nullptr;
  call->stream_->setCallbacks(call.get());
  if (o.timeout) {
    call->deadlineTimer_ = r.createTimer([raw] {
      raw->fail({Code::DeadlineExceeded, "deadline exceeded"});
    });
    call->deadlineTimer_->enable(std::chrono::ceil<Duration>(*o.timeout));
  }
  return call;
}

ClientCall::~ClientCall() {
  // A call destroyed before it ended: destroying the open stream resets it (CANCEL).
  if (stream_) stream_->setCallbacks(nullptr);
}

void ClientCall::onResponse(http::H2Stream& s) {
  if (done_) return;
  if (s.status() == 0) {
    const uint32_t code = s.resetCode();
    end({code != 0 ? codeFromH2Error(code) : Code::Unavailable,
         code != 0 ? "stream reset before the response" : "connection lost before the response"});
    return;
  }
  if (s.status() != 200) {
    fail({codeFromHttpStatus(s.status()), "HTTP status " + std::to_string(s.status())});
    return;
  }
  if (!isGrpcContentType(s.header("content-type"))) {
    fail({Code::Unknown, "response content-type '" + s.header("content-type") + "'"});
    return;
  }
  responded_ = true;
  readSome();
}

void ClientCall::onStreamReadable(Stream&) { readSome(); }

void ClientCall::onStreamWritable(Stream&) { flush(); }

void ClientCall::readSome() {
  if (reading_ || !responded_) return;
  reading_ = true;
  const ReadEnd e = readMessages(
      *stream_, decoder_, [this] { return !done_; },
      [this](std::string m) { handler_.onMessage(*this, std::move(m)); });
  reading_ = false;
  switch (e) {
    case ReadEnd::Error:
      end(lostStreamStatus(stream_->resetCode(), Code::Unavailable, "server"));
      break;
    case ReadEnd::Eof: {
      Status s = decoder_.finish();
      if (s.ok()) {
        // Trailers, or a Trailers-Only response (grpc-status among the headers).
        s = statusFromTrailers(stream_->trailers().empty() ? stream_->headers()
                                                           : stream_->trailers());
      }
      end(s);
      break;
    }
    case ReadEnd::BadMessage:
      fail(decoder_.status());
      break;
    case ReadEnd::WouldBlock:
    case ReadEnd::Stopped:
      break;
  }
}

bool ClientCall::send(std::string_view message) {
  if (done_ || sendClosed_) return false;
  writer_.push(message);
  flush();
  return true;
}

void ClientCall::closeSend() {
  if (done_ || sendClosed_) return;
  sendClosed_ = true;
  flush();
}

void ClientCall::cancel() { fail({Code::Cancelled, "cancelled by the client"}); }

void ClientCall::flush() {
  if (done_) return;
  const IoResult r = writer_.flush(*stream_);
  // Blocked: onStreamWritable resumes. Failed: the server ended or reset the call, and the read
  // side reports its status.
  if (!r.ok()) return;
  if (sendClosed_ && !shutdownSent_) {
    shutdownSent_ = true;
    stream_->shutdownWrite();
  }
}

void ClientCall::fail(const Status& status) {
  if (done_) return;
  stream_->setCallbacks(nullptr);
  stream_->close(true);  // RST_STREAM(CANCEL) unless it already closed both ways
  end(status);
}

void ClientCall::end(const Status& status) {
  if (done_) return;
  done_ = true;
  if (deadlineTimer_) deadlineTimer_->disable();
  stream_->setCallbacks(nullptr);
  handler_.onDone(*this, status);
}

}  // namespace ugate::xds::grpc

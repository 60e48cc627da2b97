#include "xds/grpc_stream.h"

#include <array>
#include <span>

namespace ugate::xds::grpc {

ReadEnd readMessages(Stream& s, MessageDecoder& d, const std::function<bool()>& keepGoing,
                     const std::function<void(std::string)>& onMessage) {
  std::array<uint8_t, 16384> buf;
  std::string message;
  while (keepGoing()) {
    const IoResult r = s.read(buf.data(), buf.size());
    if (r.wouldBlock()) return ReadEnd::WouldBlock;
    if (!r.ok()) return ReadEnd::Error;
    if (r.value == 0) return ReadEnd::Eof;
    std::span<const uint8_t> in(buf.data(), static_cast<size_t>(r.value));
    while (keepGoing()) {
      const auto o = d.decode(in, message);
      if (o == MessageDecoder::Outcome::NeedMore) break;
      if (o == MessageDecoder::Outcome::Failed) return ReadEnd::BadMessage;
      onMessage(std::move(message));
      message.clear();
    }
  }
  return ReadEnd::Stopped;
}

Status lostStreamStatus(uint32_t resetCode, Code noReset, std::string_view who) {
  if (resetCode != 0)
    return {codeFromH2Error(resetCode), "stream reset by the " + std::string(who)};
  return {noReset, "connection lost"};
}

void MessageWriter::push(std::string_view message) {
  if (off_ == out_.size()) {
    out_.clear();
    off_ = 0;
  }
  appendMessage(out_, message);
}

IoResult MessageWriter::flush(Stream& s) {
  while (off_ < out_.size()) {
    const IoResult r =
        s.write(reinterpret_cast<const uint8_t*>(out_.data()) + off_, out_.size() - off_);
    if (!r.ok()) {
      if (!r.wouldBlock()) {
        out_.clear();
        off_ = 0;
      }
      return r;
    }
    off_ += static_cast<size_t>(r.value);
  }
  return IoResult{0, 0};
}

}  // namespace ugate::xds::grpc

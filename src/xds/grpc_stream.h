#pragma once
// What the client and server gRPC calls (grpc_client.h, grpc_server.h) share about moving
// length-prefixed messages over a ugate::Stream (an HTTP/2 stream): reading whole messages until
// the stream would block, ends or fails, and a queue of framed messages written as the stream
// takes them (backpressure). No policy here: each call decides what an end or failure means.
#include <ugate/result.h>
#include <ugate/stream.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "xds/grpc_frame.h"
#include "xds/grpc_status.h"

namespace ugate::xds::grpc {

/** ReadEnd: why readMessages returned. */
enum class ReadEnd : uint8_t {
  WouldBlock,  // wait for the stream's readable callback
  Eof,         // the peer ended its side (END_STREAM): check MessageDecoder::finish()
  Error,       // reset or connection lost: see the stream's reset code
  BadMessage,  // the decoder failed: MessageDecoder::status()
  Stopped,     // keepGoing() turned false (the call is ending)
};

/**
 * readMessages reads `s` and hands every whole message to `onMessage` as long as `keepGoing()`
 * holds (it is checked before each read and each message, so a callback may end the call).
 */
ReadEnd readMessages(Stream& s, MessageDecoder& d, const std::function<bool()>& keepGoing,
                     const std::function<void(std::string)>& onMessage);

/**
 * lostStreamStatus: the status of a call whose stream failed: from the RST_STREAM code when the
 * peer reset it (`resetCode` != 0), else `noReset` (the connection went away).
 */
Status lostStreamStatus(uint32_t resetCode, Code noReset, std::string_view who);

/** MessageWriter: framed messages waiting for room in a stream (unbounded; see queuedBytes()). */
class MessageWriter {
 public:
  /** push frames `message` behind those queued. */
  void push(std::string_view message);
  /**
   * flush writes what the stream takes. @return ok() with value 0 when everything is written,
   * wouldBlock() when the stream is full (its writable callback resumes), else the write error
   * (the queue is then dropped).
   */
  IoResult flush(Stream& s);
  /** queuedBytes: bytes not yet written. */
  size_t queuedBytes() const { return out_.size() - off_; }

 private:
  std::string out_;  // out_: framed messages; bytes before off_ are written
  size_t off_{0};
};

}  // namespace ugate::xds::grpc

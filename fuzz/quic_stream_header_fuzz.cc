// libFuzzer target for the header that opens a stream of the mesh over QUIC (src/quic/stream_header).
// Byte 0 picks request or response (bit 0) and a split size (bits 1-4); the rest is the stream's
// bytes. Fed once whole and once in pieces: both must end the same way with the same consumed
// count. A parsed header re-encodes and parses back to the same fields.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "quic/stream_header.h"

namespace {

using namespace ugate::quic;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Outcome {
  bool done{false};
  bool failed{false};
  HeaderError error{HeaderError::None};
  size_t used{0};
};

Outcome run(StreamHeaderParser& p, std::span<const uint8_t> in, size_t split) {
  Outcome o;
  size_t pos = 0;
  while (pos < in.size() && !p.done() && !p.failed()) {
    size_t n = std::min(split, in.size() - pos);
    size_t used = p.feed(in.subspan(pos, n));
    check(used <= n);
    o.used += used;
    if (used < n) break;  // the header ended (or failed) inside this piece
    pos += n;
  }
  o.done = p.done();
  o.failed = p.failed();
  o.error = p.error();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool response = data[0] & 1;
  const size_t split = 1 + ((data[0] >> 1) & 0x0f);
  std::span<const uint8_t> in(data + 1, size - 1);
  const auto kind = response ? StreamHeaderParser::Kind::Response : StreamHeaderParser::Kind::Request;
  const StreamHeaderLimits lim{.maxHeaderBytes = 2048, .maxFields = 16};

  StreamHeaderParser whole(kind, lim), pieces(kind, lim);
  Outcome a = run(whole, in, in.size() ? in.size() : 1);
  Outcome b = run(pieces, in, split);
  check(a.done == b.done && a.failed == b.failed && a.error == b.error);
  if (a.done) check(a.used == b.used);
  if (!a.done) return 0;

  std::vector<uint8_t> again;
  if (response) {
    StreamResponse r = whole.takeResponse();
    encodeResponse(r, again);
    StreamHeaderParser p(kind, lim);
    check(p.feed(again) == again.size() && p.done());
    StreamResponse r2 = p.takeResponse();
    check(r2.status == r.status && r2.fields == r.fields);
  } else {
    StreamRequest r = whole.takeRequest();
    encodeRequest(r, again);
    StreamHeaderParser p(kind, lim);
    check(p.feed(again) == again.size() && p.done());
    StreamRequest r2 = p.takeRequest();
    check(r2.authority == r.authority && r2.fields == r.fields);
  }
  return 0;
}

// libFuzzer target for the gRPC wire (src/xds/grpc_frame.h, grpc_status.h). The first byte picks
// the chunk size the DATA bytes arrive in (1..64) and a small message limit or the default; the
// rest is the bytes of one gRPC stream. Contract checked: no crash, overread or unbounded buffering
// on any input; every message decoded is within the limit and re-encodes to exactly the bytes it
// came from; a failure is one of the statuses the spec asks for (UNIMPLEMENTED, INTERNAL,
// RESOURCE_EXHAUSTED) and is final. The same bytes also go through grpc-timeout parsing (an
// accepted value re-encodes to a value not shorter), grpc-status parsing and the grpc-message
// percent-encoding round trip.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "xds/grpc_frame.h"
#include "xds/grpc_status.h"

namespace {

using namespace ugate::xds::grpc;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = (data[0] & 0x3f) + 1;
  const uint32_t limit = (data[0] & 0x40) ? 32 : kDefaultMaxMessageBytes;
  std::span<const uint8_t> stream(data + 1, size - 1);
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  MessageDecoder d(limit);
  std::string reencoded;
  std::string m;
  bool failed = false;
  for (size_t off = 0; off < stream.size() && !failed; off += chunk) {
    std::span<const uint8_t> in = stream.subspan(off, std::min(chunk, stream.size() - off));
    while (true) {
      const auto r = d.decode(in, m);
      if (r == MessageDecoder::Outcome::Message) {
        check(m.size() <= limit);
        appendMessage(reencoded, m);
        continue;
      }
      if (r == MessageDecoder::Outcome::NeedMore) {
        check(in.empty());
      } else {
        failed = true;
        const Code c = d.status().code;
        check(c == Code::Unimplemented || c == Code::Internal || c == Code::ResourceExhausted);
      }
      break;
    }
  }
  // Whole messages came back byte for byte, in order.
  check(reencoded.size() <= text.size() && text.substr(0, reencoded.size()) == reencoded);
  if (failed) {
    std::span<const uint8_t> more(data, size);
    check(d.decode(more, m) == MessageDecoder::Outcome::Failed);
    check(!d.finish().ok());
  } else {
    check(d.finish().ok() == (reencoded.size() == text.size()));
  }

  if (auto t = parseTimeout(text)) {
    auto back = parseTimeout(encodeTimeout(*t));
    check(back && *back >= *t);
  }
  const Code c = parseCode(text);
  check(static_cast<int>(c) <= kMaxCode);
  check(percentDecode(percentEncode(text)) == text);
  const std::string enc = percentEncode(text);
  for (char ch : enc) check(ch >= 0x20 && ch <= 0x7e);
  (void)percentDecode(text);
  (void)isGrpcContentType(text);
  return 0;
}

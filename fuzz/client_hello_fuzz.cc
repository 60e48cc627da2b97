// libFuzzer target for the TLS ClientHello parser (src/sni/client_hello_parser.cc).
// The first input byte picks a segment size and the second a cap; the rest is the client's stream.
// Contract checked: feeding the stream in segments gives exactly the one-shot result; Done never
// consumes more than the cap or the input; a Done hello's SNI is a lower-case DNS name.
#include <cstddef>
#include <cstdint>
#include <span>

#include "sni/client_hello_parser.h"

namespace {

using ugate::sni::ClientHelloParser;
using ugate::sni::HelloStatus;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) {
    return 0;
  }
  const size_t segment = 1 + data[0] % 64;
  const size_t cap = data[1] & 1 ? 16384 : 256 + size_t{data[1]} * 8;
  std::span<const uint8_t> in(data + 2, size - 2);

  ClientHelloParser whole(cap);
  whole.feed(in);

  ClientHelloParser pieces(cap);
  for (size_t off = 0; off < in.size() && pieces.status() == HelloStatus::NeedMore;
       off += segment) {
    pieces.feed(in.subspan(off, std::min(segment, in.size() - off)));
  }
  check(whole.status() == pieces.status());
  check(whole.error() == pieces.error());
  check(whole.info().sni == pieces.info().sni);
  check(whole.info().alpn == pieces.info().alpn);
  check(whole.info().ech == pieces.info().ech);
  check(whole.consumed() <= in.size());
  if (whole.status() == HelloStatus::Done) {
    check(whole.consumed() <= cap);
    check(whole.consumed() == pieces.consumed());
    check(whole.info().sni.size() <= 253);
    for (char c : whole.info().sni) {
      check(c != '.' || !whole.info().sni.empty());
      check(!(c >= 'A' && c <= 'Z'));
    }
    for (const auto& a : whole.info().alpn) check(!a.empty());
  }
  return 0;
}

// libFuzzer target for the PROXY protocol v1/v2 decoder and encoder (src/sni/proxy_protocol.cc).
// Contract checked: a Done header consumes no more than the input; every strict prefix of a Done
// header needs more (it never decides early on a different answer); re-encoding a decoded v2 PROXY
// header of TCP4/TCP6 decodes to the same addresses and TLVs.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/proxy_protocol.h"

namespace {

using namespace ugate;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  ProxyParseResult r = parseProxyHeader(in, 16 + 65535);
  if (r.status != ProxyStatus::Done) {
    return 0;
  }
  check(r.consumed > 0 && r.consumed <= size);
  // A few prefixes (all of them for short headers): none may be Done or a different error.
  size_t step = r.consumed > 256 ? r.consumed / 64 : 1;
  for (size_t n = 0; n < r.consumed; n += step) {
    ProxyParseResult p = parseProxyHeader(in.first(n), 16 + 65535);
    check(p.status == ProxyStatus::NeedMore);
  }
  const ProxyHeader& h = r.header;
  if (h.version == 2 && !h.local && h.source.valid()) {
    ProxyV2Tlvs t;
    t.authority = h.authority;
    t.alpn = h.alpn;
    t.uniqueId = h.uniqueId;
    t.crc32c = true;
    std::string enc = encodeProxyV2(h.source, h.destination, t);
    ProxyParseResult again =
        parseProxyHeader({reinterpret_cast<const uint8_t*>(enc.data()), enc.size()}, 16 + 65535);
    check(again.status == ProxyStatus::Done);
    check(again.consumed == enc.size());
    check(again.header.source == h.source && again.header.destination == h.destination);
    check(again.header.authority == h.authority && again.header.alpn == h.alpn);
    check(again.header.crc32cChecked);
  }
  if (h.version == 1 && !h.unknown) {
    std::string enc = encodeProxyV1(h.source, h.destination);
    ProxyParseResult again =
        parseProxyHeader({reinterpret_cast<const uint8_t*>(enc.data()), enc.size()});
    check(again.status == ProxyStatus::Done && again.consumed == enc.size());
    check(again.header.source == h.source && again.header.destination == h.destination);
  }
  return 0;
}

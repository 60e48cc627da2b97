// libFuzzer target for ugate.v1.Message (src/xds/message_convert.h): the input is a mailbox's bytes
// as an ADS server or relay sends them. Contract: no crash or overread on any input; what parses
// is valid (every envelope an aes128gcm Web Push body) and re-encodes to bytes that parse to the same
// mailbox; checkAes128gcm on the raw input never crashes either.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "xds/message_convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)ugate::xds::checkAes128gcm(in);
  auto m = ugate::xds::parseMailbox(in);
  if (!m) return 0;
  if (!ugate::xds::checkRecipient(m->recipient)) __builtin_trap();
  for (const auto& e : m->envelopes) {
    if (!ugate::xds::checkEnvelope(e)) __builtin_trap();
  }
  auto again = ugate::xds::parseMailbox(ugate::xds::encodeMailbox(*m));
  if (!again || !(*again == *m)) __builtin_trap();
  return 0;
}

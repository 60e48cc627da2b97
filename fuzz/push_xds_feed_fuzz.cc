// libFuzzer target for what a node takes from an xDS mailbox (src/webpush/push_xds_feed.h): the
// envelope id ("<seq>.<sid>.<mid>") and its TTL fields come from the network. Contract: no crash on
// any input; an id that splits has two capability ids and ends with their suffix (what the gateway
// removes it by); a stored message made of it names that sid and mid and is not expired.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "webpush/push_api.h"
#include "webpush/push_xds_feed.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ugate::webpush;
  if (size < 12) return 0;
  uint32_t ttl;
  int64_t now;
  std::memcpy(&ttl, data, 4);
  std::memcpy(&now, data + 4, 8);
  now &= (int64_t{1} << 50) - 1;  // a wall clock in ms, not negative
  const std::string id(reinterpret_cast<const char*>(data) + 12, size - 12);
  auto parts = splitEnvelopeId(id);
  if (parts) {
    if (!isId(parts->first) || !isId(parts->second)) __builtin_trap();
    if (!id.ends_with(envelopeSuffix(parts->first, parts->second))) __builtin_trap();
  }
  ugate::BoxedMessage b{std::string(52, 'A'), id, "c", ttl, "high", now - 1000};
  auto m = storedFromEnvelope(b, now);
  if (m) {
    if (!parts || m->subscription != parts->first || m->id != parts->second) __builtin_trap();
    if (m->expiresMs <= now || m->ttlSeconds <= 0) __builtin_trap();
  }
  return 0;
}

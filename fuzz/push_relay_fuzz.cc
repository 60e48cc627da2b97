// libFuzzer target for what a node behind NAT reads from its gateway (src/webpush/push_relay_wire.h):
// the input is fed to an SseReader in two pieces (split at the first byte's value), every event it
// yields goes through parseRelayedEvent, and the whole input through parseSubscribeReply.
// Properties: events never exceed the reader's limit; a parsed message has an id, a topic of at most
// 32 characters, a TTL ≥ 0, a body within maxBody and expires no earlier than it was received; a
// parsed subscription has a non-empty sid and token and an https endpoint ending in its token.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "webpush/push_relay_wire.h"

namespace {

using namespace ugate::webpush;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr size_t kLimit = 2048;
  SseReader r(kLimit);
  std::vector<std::string> events;
  const size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  if (r.feed(in.substr(0, cut), events)) r.feed(in.substr(cut), events);
  for (const auto& e : events) {
    check(e.size() <= kLimit);
    if (auto m = parseRelayedEvent(e, 1000, 4096)) {
      check(!m->id.empty() && m->topic.size() <= 32 && m->ttlSeconds >= 0 && m->body.size() <= 4096);
      check(m->expiresMs >= m->receivedMs && !m->encoding.empty());
    }
  }
  if (auto s = parseSubscribeReply(in)) {
    check(!s->sid.empty() && !s->token.empty() && s->endpoint.starts_with("https://"));
    check(s->endpoint.ends_with("/push/" + s->token));
  }
  return 0;
}

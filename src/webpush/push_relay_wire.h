#pragma once
// The bytes a node behind NAT reads from its gateway's push service (push_relay.h): the SSE
// delivery stream split into events, each event's JSON turned back into a StoredMessage, and the
// answer to POST /subscribe. Sans-I/O; every input is untrusted (fuzzed by fuzz/push_relay_fuzz.cc).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webpush/push_store.h"

namespace ugate::webpush {

/**
 * SseReader: splits a text/event-stream (what PushWorker sends: `id:`, `event:`, `data:` lines,
 * comment keepalives, events ended by an empty line) into the data of each event. LF and CRLF line
 * ends are accepted. An event or line longer than `maxEvent` bytes ends the stream (feed false).
 */
class SseReader {
 public:
  explicit SseReader(size_t maxEvent = 16384) : maxEvent_(maxEvent) {}
  /** feed appends bytes; the data of each event completed by them goes to `events`. */
  bool feed(std::string_view bytes, std::vector<std::string>& events);

 private:
  size_t maxEvent_;
  std::string line_;   // the line being read
  std::string data_;   // the data of the event being read
  bool hasData_{false};
};

/**
 * parseRelayedEvent: one event's data (`{"id","topic","urgency","ttl","encoding","body"}`, the body
 * base64url) as the message to store on this node: the same id (so a redelivery is recognised),
 * the remaining TTL counted from nowMs, the encrypted body unchanged. nullopt when anything is
 * missing or malformed: an id that is not an id, a topic over 32 characters, an unknown urgency, a
 * negative TTL, a body that is not base64url or longer than maxBody.
 */
std::optional<StoredMessage> parseRelayedEvent(std::string_view data, int64_t nowMs, size_t maxBody);

/** SubscribeReply: what the gateway's POST /subscribe answered (201's JSON body). */
struct SubscribeReply {
  std::string endpoint;  // absolute push URL at the gateway (…/push/<token>)
  std::string sid;       // the receive capability (`/s/<sid>`)
  std::string token;     // the push capability (the endpoint's last segment)
};
/** parseSubscribeReply: nullopt unless endpoint is https://…/push/<token> and receive is /s/<sid>. */
std::optional<SubscribeReply> parseSubscribeReply(std::string_view body);

}  // namespace ugate::webpush

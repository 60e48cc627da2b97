#pragma once
// The push service's HTTP contract (RFC 8030 §4-§6, issue 18 §2), sans I/O: which resource a request
// names, the checks of a push request's headers (TTL, Urgency, Topic, Content-Encoding, size), the
// subscribe request's JSON body, the receive request's urgency filter, and the bytes answered (the
// subscribe JSON, one SSE event per message). Every input is untrusted; nothing here does I/O or
// reads a clock. push_service.cc runs these against the store; fuzz/push_api_fuzz.cc fuzzes them.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "webpush/ece_crypto.h"
#include "webpush/push_store.h"

namespace ugate::webpush {

/** HeaderList: request header fields, names lower-cased (HTTP/2 form). */
using HeaderList = std::vector<std::pair<std::string, std::string>>;
/** headerValue: the first value of `lowerName`, or nullopt. */
std::optional<std::string_view> headerValue(const HeaderList& h, std::string_view lowerName);

/** Refusal: a request answered with an error status; `reason` is a stable snake_case label. */
struct Refusal {
  int status{400};
  std::string reason;  // the metric label and log keyword ("missing_ttl")
  std::string detail;  // a sentence for the log and the response body
};

/** Resource: what a request names. */
enum class Resource : uint8_t {
  Subscribe,           // POST /subscribe
  Push,                // POST /push/<token>
  Receive,             // GET /s/<sid>
  Unsubscribe,         // DELETE /s/<sid>
  DeleteMessage,       // DELETE /m/<mid>
  Publish,             // POST /topic/<node>/<name> (pub/sub; id = the topic's full name)
  ReceiptSubscribe,    // POST /receipts/<token> (RFC 8030 §5.1: the receipt subscribe resource)
  ReceiptReceive,      // GET /r/<rsid> (the receipt subscription, read as SSE)
  ReceiptUnsubscribe,  // DELETE /r/<rsid>
  ReceiptAck,          // DELETE /r/<rsid>/<seq> (the application server is done with one receipt)
};

/**
 * ApiTarget: a request matched to a resource; `id` is the token, sid, mid or rsid; `query` without
 * '?'; `seq` the receipt of a ReceiptAck.
 */
struct ApiTarget {
  Resource resource{Resource::Subscribe};
  std::string id;
  std::string query;
  int64_t seq{0};
};

/** kMaxIdLength: longer capabilities in a path are not ours (404 without a store lookup). */
constexpr size_t kMaxIdLength = 64;

/**
 * matchTarget maps a request line to a resource: 404 for an unknown path or a malformed id (ids
 * are 1..64 base64url characters), 405 (detail = the Allow value) for a known path with another
 * method.
 */
std::variant<ApiTarget, Refusal> matchTarget(std::string_view method, std::string_view target);

/** PushLimits: the `webpush` settings a push request is checked against. */
struct PushLimits {
  int64_t maxTtl{30 * 86400};
  size_t maxBody{4096};
};

/** PushHeaders: a push request's checked headers. */
struct PushHeaders {
  int64_t ttl{0};          // effective (clamped to maxTtl), echoed in the TTL response header
  bool clamped{false};
  Urgency urgency{Urgency::Normal};
  std::string topic;       // "" = none
  std::string encoding;    // Content-Encoding ("aes128gcm", "aesgcm"; "" for an empty body)
};

/** kMaxTopicLength: RFC 8030 §5.4 (a Topic is at most 32 base64url characters). */
constexpr size_t kMaxTopicLength = 32;

/**
 * checkPushHeaders: TTL mandatory (400 missing_ttl / bad_ttl; clamped to maxTtl), Urgency one of
 * very-low, low, normal, high (400 bad_urgency), Topic ≤ 32 base64url characters (400 bad_topic),
 * a non-empty body needs Content-Encoding aes128gcm or aesgcm (400 bad_encoding), and at most
 * maxBody bytes (413 too_large; `bodySize` is the body's or the announced Content-Length).
 */
std::variant<PushHeaders, Refusal> checkPushHeaders(const HeaderList& h, size_t bodySize, const PushLimits& l);

/** parseUrgency: "very-low" | "low" | "normal" | "high" (ASCII case-insensitive). */
std::optional<Urgency> parseUrgency(std::string_view v);
std::string_view urgencyName(Urgency u);

/** SubscribeRequest: a POST /subscribe body. */
struct SubscribeRequest {
  Bytes applicationServerKey;  // 65-byte uncompressed P-256 point; empty = unrestricted
  std::string topic;           // pub/sub: the topic's full name `<node>/<name>` ("" = none)
  Bytes p256dh;                // with a topic: the subscriber's key (65-byte point) and
  Bytes auth;                  // auth secret (16 bytes), so the publishing node encrypts for it
  bool deliverXds{false};      // "deliver": "xds": messages go to the subscribing node as xDS resources
  std::string mailbox;         // "topic:<t>": with deliver xds, messages go to that topic mailbox; without,
                               // a local subscription filled from it (push_xds_feed.h); "" = none
};

/**
 * isTopicMailbox: "topic:" then 1..32 URL-safe base64 characters (RFC 8030 §5.4's topic alphabet),
 * the name of a ugate.v1.Message topic mailbox (as ugate::xds::checkRecipient).
 */
bool isTopicMailbox(std::string_view s);

/**
 * isTopicName: `<node>/<name>`: a node name of 1..63 characters [A-Za-z0-9._-], then a name of 1..32
 * base64url characters.
 */
bool isTopicName(std::string_view s);

/**
 * parseSubscribeBody: empty, or a JSON object whose optional "applicationServerKey" is the
 * base64url of an uncompressed P-256 point (400 bad_application_server_key; other JSON: 400
 * bad_json). A "topic" (400 bad_topic unless isTopicName) needs "keys": {"p256dh", "auth"} as in a
 * PushSubscription (400 bad_keys), since the publishing node encrypts each copy (RFC 8291).
 * "deliver": "xds" (push_xds_feed.cc) asks for delivery as ugate.v1.Message resources (400
 * bad_deliver for another value or beside a topic). "mailbox": "topic:<t>" (isTopicMailbox; 400
 * bad_mailbox otherwise, or beside a topic) names a topic mailbox (push_xds_feed.h).
 */
std::variant<SubscribeRequest, Refusal> parseSubscribeBody(std::string_view body);

/** ReceiveRequest: a GET /s/<sid>'s parameters. */
struct ReceiveRequest {
  Urgency minUrgency{Urgency::VeryLow};  // `urgency=` query parameter (RFC 8030 §5.3 filter)
  std::string lastEventId;               // Last-Event-ID: a message id delivered before
};

/**
 * checkReceiveRequest: Accept must allow text/event-stream (406 not_event_stream); the query's
 * `urgency` must be a known level (400 bad_urgency); Last-Event-ID, when present, must look like a
 * message id (else ignored: a client's garbage must not fail its delivery stream).
 */
std::variant<ReceiveRequest, Refusal> checkReceiveRequest(const HeaderList& h, std::string_view query);

// ---- Receipts (RFC 8030 §5.1) and Prefer (RFC 7240) -----------------------------------------------

/** kReceiptRel: the link relation of the receipt subscribe resource (RFC 8030 §5.1, §9.1). */
inline constexpr std::string_view kReceiptRel = "urn:ietf:params:push:receipt";
// Limits: kMaxReceiptSubscriptions and kMaxStoredReceipts (push_store.h).

/**
 * parsePushReceipt: a Push-Receipt header value (RFC 8030 §5.1: the URI of a receipt subscription)
 * → the receipt subscription's id. Accepted: the path `/r/<rsid>`, or an absolute URI whose origin
 * is `origin` (ASCII case-insensitive; "https://host[:port]", no trailing '/') followed by that
 * path; surrounding spaces are ignored. Anything else: 400 bad_push_receipt (another host's URI
 * names no receipt subscription of ours).
 */
std::variant<std::string, Refusal> parsePushReceipt(std::string_view value, std::string_view origin);

/** Preferences: what a request's Prefer header fields ask for (RFC 7240). */
struct Preferences {
  bool respondAsync{false};  // "respond-async" (RFC 7240 §4.1)
  int64_t wait{-1};          // "wait=<seconds>" (§4.3), -1 = absent
};
/**
 * parsePrefer: one Prefer field value: comma-separated preferences `token [= word] *(; param)`,
 * names case-insensitive. Unknown or malformed preferences are ignored, as RFC 7240 §2 asks.
 */
void parsePrefer(std::string_view value, Preferences& out);
/** preferences: every Prefer field of h, parsed. */
Preferences preferences(const HeaderList& h);

/**
 * receiptSseEvent: `id: <seq>`, `event: receipt`, and a data line of JSON: {"message": "/m/<mid>"
 * (the acknowledged push message resource, as the push answer's Location named it), "acknowledged":
 * the time in ms since the epoch, "ack": "/r/<rsid>/<seq>" (DELETE it when done)}.
 */
std::string receiptSseEvent(std::string_view rsid, int64_t seq, std::string_view mid, int64_t ackedMs);

/** isId: 1..kMaxIdLength base64url characters. */
bool isId(std::string_view s);
/** newId: a fresh capability of `bytes` random bytes (≥ 16: 128 bits), base64url. */
std::string newId(size_t bytes = 18);
/**
 * newMessageId: a message's capability: the low 48 bits of nowMs in 12 hex digits, then 18 random
 * bytes (144 bits) in base64url (36 characters). Ids made later sort after earlier ones, so the store's unique
 * index on them grows at its end instead of dirtying a random page per message (one page for a
 * whole batch). The prefix tells only the receive time, which the sender and subscriber know.
 */
std::string newMessageId(int64_t nowMs);

/** subscribeJson: the POST /subscribe answer {"endpoint": ..., "receive": ...}. */
std::string subscribeJson(std::string_view endpoint, std::string_view receivePath);

/**
 * sseEvent: one message as a Server-Sent Event: `id: <mid>`, `event: push` and one `data:` line of
 * JSON (id, topic, urgency, ttl: seconds left at nowMs, encoding, body: base64url).
 */
std::string sseEvent(const StoredMessage& m, int64_t nowMs);
/** sseComment: a comment line (keepalive). */
inline constexpr std::string_view kSseKeepalive = ": keepalive\n\n";

/**
 * TokenBucket: `rate` tokens per second up to `burst`; time passed in (milliseconds). A bucket
 * with rate 0 never limits.
 */
class TokenBucket {
 public:
  TokenBucket() = default;
  TokenBucket(double rate, double burst, int64_t nowMs) : rate_(rate), burst_(burst), tokens_(burst), lastMs_(nowMs) {}
  /** take one token; false (and `retryAfterSeconds`, ≥ 1) when none is left. */
  bool take(int64_t nowMs, int64_t& retryAfterSeconds);
  /** full: the bucket is back to its burst at nowMs (it can be forgotten). */
  bool full(int64_t nowMs) const;

 private:
  void refill(int64_t nowMs);
  double rate_{0};
  double burst_{0};
  double tokens_{0};
  int64_t lastMs_{0};
};

}  // namespace ugate::webpush

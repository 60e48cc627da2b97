#pragma once
// Delivery over xDS (issue 19 §2 "Messages"; push_xds_feed.cc): a node N subscribes at its gateway
// G with `"deliver": "xds"`; G's messages for that subscription are committed in G's store as any
// other and also posted into the process-wide MessageBox (include/ugate/message_box.h), which G's ADS
// server publishes as ugate.v1.Message resources, one mailbox per node; N's ADS client (with
// `xds.client.messages`) hands what arrives to N's push service through the box's inbox, which
// stores it for N's local subscribers and acknowledges it at G (DELETE /m/<mid>), after which G drops
// it from its store and from the box. Only ciphertext ever leaves G: the aes128gcm body as sent.
//
// Topic mailboxes: a subscription made at G with `"deliver": "xds", "mailbox": "topic:<t>"` has its
// messages (encrypted once, to a key pair its readers share) posted under recipient "topic:<t>";
// they are not acknowledged (many readers) and stay until their TTL. At N, `{"mailbox":
// "topic:<t>"}` makes a local subscription filled from that mailbox (t must be one of
// `xds.client.messages.topics`); each envelope is stored once per such subscription (its gateway
// sequence, StoredMessage::upstreamSeq, is recorded in the store), and never acknowledged at G.
//
// Markers in a subscription's `topic` column (never a pub/sub topic, which has a '/'):
//   G: "xds:<N's node ID>"  (its messages go into the box for N)
//   G: "xds:topic:<t>"      (its messages go into topic mailbox t)
//   N: "xds"                (the local copy: filled from xDS; the gateway relay does not stream it)
//   N: "xds-read:topic:<t>" (a local subscription filled from topic mailbox t; nothing at G)
// An envelope's id is "<seq>.<sid>.<mid>" (seq: G's store sequence in 16 hex digits, so that a
// mailbox, ordered by id, is in the order G committed them): N finds the subscription it belongs
// to, and G the message.
// Sans-I/O helpers here; the PushWorker parts are declared in push_service.h.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ugate/message_box.h>

#include "webpush/push_store.h"

namespace ugate::webpush {

inline constexpr std::string_view kXdsTopicPrefix = "xds:";
inline constexpr std::string_view kXdsLocalTopic = "xds";
inline constexpr std::string_view kXdsReadPrefix = "xds-read:";

/** xdsRecipient: G side: the node a subscription's messages are posted for, or nullopt. */
std::optional<std::string> xdsRecipient(const Subscription& s);
/** isXdsLocal: N side: a subscription filled from xDS, its node mailbox or a topic's (the relay does not stream it). */
inline bool isXdsLocal(const Subscription& s) { return s.topic == kXdsLocalTopic || s.topic.starts_with(kXdsReadPrefix); }
/** xdsReadMarker: N side: the topic column of a local subscription filled from `mailbox` ("topic:<t>"). */
inline std::string xdsReadMarker(std::string_view mailbox) { return std::string(kXdsReadPrefix) + std::string(mailbox); }
/** callerNodeId: the node ID (52 base32 characters) among a client certificate's identities, or nullopt. */
std::optional<std::string> callerNodeId(const std::vector<std::string>& peer);
/** envelopeId: "<seq in 16 hex digits>.<sid>.<mid>". */
std::string envelopeId(int64_t seq, std::string_view sid, std::string_view mid);
/** envelopeSuffix: ".<sid>.<mid>", what envelopeId ends with whatever the seq (G removes by it). */
std::string envelopeSuffix(std::string_view sid, std::string_view mid);
/**
 * splitEnvelopeId: sid and mid of an envelope id (untrusted: 16 hex digits, then two ids as isId
 * says), or nullopt.
 */
std::optional<std::pair<std::string, std::string>> splitEnvelopeId(std::string_view id);
/** envelopeSeq: the gateway's sequence an envelope id starts with (checked as splitEnvelopeId), or nullopt. */
std::optional<int64_t> envelopeSeq(std::string_view id);
/** boxedFor: G side: stored message m (its seq set) as a boxed message for recipient. */
BoxedMessage boxedFor(const std::string& recipient, const StoredMessage& m);
/**
 * storedFromEnvelope: N side: an envelope that arrived (already checked by parseMailbox: an
 * aes128gcm body, a valid urgency) as a message of the local subscription its id names, with what
 * is left of its TTL at nowMs; nullopt when its id is not "<seq>.<sid>.<mid>" or it has expired.
 */
std::optional<StoredMessage> storedFromEnvelope(const BoxedMessage& b, int64_t nowMs);

}  // namespace ugate::webpush

#pragma once
// The `webpush` config section and the `push` listener kind's settings (docs/CONFIG.md, "webpush").
// Parsed by webpush_config.cc, the only file of the service that sees the config's JSON.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/config.h>
#include <ugate/listener.h>
#include <ugate/socket_address.h>
#include <ugate/time.h>

#include "webpush/push_store.h"

namespace ugate::webpush {

/**
 * GatewayConfig: `webpush.gateway`, for a node behind NAT whose subscriptions live at a gateway's
 * push service, reached through the mesh (push_relay.h).
 */
struct GatewayConfig {
  HostPort target;          // the gateway's push listener as a mesh authority ("gw1.mesh:8443")
  std::string via;          // the mesh gateway to open the streams through ("" = the dialer's choice)
  std::string peerId;       // the push listener's certificate must carry this node ID, or
  std::string rootsFile;    // chain to these roots (PEM file)
  Duration retryMin{500};   // delivery stream reconnect backoff
  Duration retryMax{30'000};
};

/** TopicConfig: one entry of `webpush.topics` (pub/sub, push_topics.cc). */
struct TopicConfig {
  std::string name;                     // the name under this node: the topic is `<node.name>/<name>`
  std::vector<std::string> publishers;  // VAPID public keys (raw 65-byte points) allowed to publish
  std::vector<std::string> identities;  // mesh identities (node ID or SPIFFE ID of a verified client
                                        // certificate) allowed to publish without VAPID
  double rate{10};                      // publishes per second (token bucket; 429 beyond)
  double burst{20};
  size_t maxSubscribers{1000};          // subscriptions at most (429 topic_full beyond)
  int64_t maxQueued{1000};              // a subscriber with this many stored messages gets no new copy
};

/** WebpushConfig: the `webpush` section (defaults when absent). */
struct WebpushConfig final : ModuleConfig {
  std::string store;                    // the SQLite file; "" = <node.dataDir>/webpush.db
  SyncMode sync{SyncMode::Full};
  size_t storeBatch{PushStore::kMaxBatch};  // store operations per transaction at most (1: one fsync each)
  int64_t maxTtlSeconds{30 * 86400};
  size_t maxBody{4096};                 // ≥ 4096 (RFC 8030 §7.2)
  int64_t subscriptionTtlSeconds{60 * 86400};
  uint32_t maxInFlight{100};            // unacknowledged messages per subscriber stream
  double subscriptionRate{10};          // messages per second per subscription (0 = no limit)
  double subscriptionBurst{100};
  double sourceRate{1000};              // requests per second per client address (0 = no limit)
  double sourceBurst{2000};
  Duration keepalive{25'000};           // SSE comment keepalive interval
  Duration sweepInterval{60'000};       // expired messages and idle subscriptions
  std::string publicUrl;                // origin of endpoints ("https://push.example.net"); "" = from Host
  std::optional<GatewayConfig> gateway;  // set: subscriptions are made and kept at this gateway
  std::vector<TopicConfig> topics;       // pub/sub topics this node publishes
  /** topic: the entry for full name `<node>/<name>` when node is this node's name, else null. */
  const TopicConfig* topic(std::string_view nodeName, std::string_view fullName) const;
};

/** webpushConfig: c's `webpush` section, or the defaults. */
const WebpushConfig& webpushConfig(const Config& c);
/** storePath: where the store lives for config c. */
std::string storePath(const Config& c);

/** pushKindSpec: listener kind `push` (HTTPS, h2 and http/1.1; no client certificate by default). */
ListenerKindSpec pushKindSpec();

}  // namespace ugate::webpush

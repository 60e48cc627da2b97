#pragma once
// The webpush module: the RFC 8030 push service (listener kind `push`, section `webpush`). What the
// workers share lives here: the durable store (push_store.h, its own thread), who is listening
// for which subscription (so a message accepted on one worker wakes its subscriber on another),
// the rate limiters and the counters of /stats. Requests are served by push_service.h on the
// worker that accepted the connection (push_http.h).
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <ugate/module.h>
#include <ugate/reactor.h>

#include "webpush/push_api.h"
#include "webpush/push_store.h"

namespace ugate::webpush {

/** PushCounters: relaxed atomics written by the workers and the store thread, read by /stats. */
struct PushCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> subscriptionsCreated{0};
  std::atomic<uint64_t> subscriptionsDeleted{0};
  std::atomic<uint64_t> subscriptionsSwept{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> acked{0};     // deleted by the subscriber while in flight to it
  std::atomic<uint64_t> deleted{0};   // every DELETE /m/<mid> that removed a message
  std::atomic<uint64_t> expired{0};   // swept after their TTL, or TTL 0 with nobody listening
  std::atomic<int64_t> subscribers{0};  // SSE delivery streams open now
  std::atomic<int64_t> storedSubscriptions{-1};  // at the last sweep (-1: none yet)
  std::atomic<int64_t> storedMessages{-1};
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> h2Connections{0};
  std::atomic<uint64_t> h3Requests{0};  // requests over HTTP/3 (a quic listener's "push", push_local.h)
  std::atomic<uint64_t> tlsFailures{0};
  // A node behind NAT (webpush.gateway, push_relay.h):
  std::atomic<uint64_t> relayed{0};          // messages taken from the gateway and stored here
  std::atomic<uint64_t> relayedAgain{0};     // ... that were stored here already (a lost ack)
  std::atomic<uint64_t> relayAcks{0};        // acknowledgements the gateway took
  std::atomic<uint64_t> relayReconnects{0};  // delivery streams at the gateway that ended
  std::atomic<uint64_t> topicCopiesSkipped{0};  // topic copies not made: the subscriber had maxQueued
  // Receipts (RFC 8030 §5.1):
  std::atomic<uint64_t> receiptSubscriptionsCreated{0};
  std::atomic<uint64_t> receiptSubscriptionsDeleted{0};
  std::atomic<uint64_t> receiptsRequested{0};     // messages accepted with a Push-Receipt
  std::atomic<uint64_t> receiptsStored{0};        // acknowledged messages whose receipt was stored
  std::atomic<uint64_t> receiptsDropped{0};       // ... not stored: the receipt subscription was full
  std::atomic<uint64_t> receiptsNotDelivered{0};  // deleted before any delivery (a cancel): no receipt
  std::atomic<uint64_t> receiptsDelivered{0};     // sent on a receipt stream (again after a reconnect too)
  std::atomic<uint64_t> receiptsAcked{0};         // deleted by the application server (DELETE /r/<rsid>/<seq>)
  // Delivery over xDS (push_xds_feed.h):
  std::atomic<uint64_t> xdsPosted{0};  // messages posted into the MessageBox (G)
  std::atomic<uint64_t> xdsTaken{0};   // messages taken from an ADS client's mailbox and committed here (N)
  /** rejected: requests refused, by reason (a mutex: refusals are not the hot path). */
  void reject(std::string_view reason);
  std::map<std::string, uint64_t, std::less<>> rejected() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t, std::less<>> rejected_;
};

class PushWorker;

/**
 * Mailbox: how the store thread and other workers reach one worker: post() runs fn on its
 * reactor while the worker lives, and drops it afterwards.
 */
class Mailbox {
 public:
  Mailbox(Reactor& r, PushWorker& w) : reactor_(&r), worker_(&w) {}
  void post(std::function<void(PushWorker&)> fn);
  /** close: the worker is going away; later posts are dropped. */
  void close();

 private:
  std::mutex mu_;
  Reactor* reactor_;
  PushWorker* worker_;
};
using MailboxPtr = std::shared_ptr<Mailbox>;

/** PushShared: the state every worker of the push service shares. Thread-safe. */
class PushShared {
 public:
  /**
   * ensureStore opens the store at `path` unless it is open (the first config with a push listener
   * decides the file: a reload that moves it needs a restart). Error: the path and the cause.
   */
  Result<void> ensureStore(const std::string& path, SyncMode sync, size_t maxBatch = PushStore::kMaxBatch);
  /** store: the open store, or null. */
  PushStore* store() const { return store_.load(std::memory_order_acquire); }

  /** listen / unlisten: delivery stream `stream` on `mb`'s worker follows subscription sid. */
  void listen(const std::string& sid, const MailboxPtr& mb, uint64_t stream);
  void unlisten(const std::string& sid, uint64_t stream);
  bool listened(const std::string& sid) const;
  /**
   * notify wakes every delivery stream of sid: new messages (ackedMid ""), an acknowledged or
   * cancelled message, or the subscription is gone. `topic`: the new message had this topic, so it
   * replaced (deleted) any earlier one of that topic, which will never be acknowledged.
   */
  void notify(const std::string& sid, const std::string& ackedMid, bool gone, const std::string& topic = "");

  /** allowSource / allowSubscription: one token of the key's bucket, else retryAfter seconds. */
  bool allowSource(const std::string& key, double rate, double burst, int64_t nowMs, int64_t& retryAfter);
  bool allowSubscription(const std::string& key, double rate, double burst, int64_t nowMs, int64_t& retryAfter);
  /** forgetIdleBuckets drops buckets that are full again (they would allow a burst anyway). */
  void forgetIdleBuckets(int64_t nowMs);

  /**
   * setRelayHome: worker `index`'s relay (push_relay.h) exists; worker 0's keeps the delivery
   * streams at the gateway. followAtRelay asks it to follow sid (from any worker).
   */
  void setRelayHome(int index, const MailboxPtr& mb);
  void followAtRelay(const std::string& sid);

  PushCounters& counters() { return counters_; }
  const PushCounters& counters() const { return counters_; }

 private:
  struct Listener {
    MailboxPtr mailbox;
    uint64_t stream;
  };
  static bool allow(std::unordered_map<std::string, TokenBucket>& m, const std::string& key, double rate,
                    double burst, int64_t nowMs, int64_t& retryAfter);

  std::mutex storeMu_;
  std::unique_ptr<PushStore> owned_;
  std::atomic<PushStore*> store_{nullptr};
  mutable std::mutex listenMu_;
  std::unordered_multimap<std::string, Listener> listeners_;
  std::mutex rateMu_;
  std::unordered_map<std::string, TokenBucket> bySource_;
  std::unordered_map<std::string, TokenBucket> bySubscription_;
  PushCounters counters_;
  std::mutex relayMu_;
  MailboxPtr relayHome_;
};

class WebpushModule final : public Module {
 public:
  std::string_view name() const override { return "webpush"; }
  void registerKinds(ListenerKindRegistry& kinds) override;
  std::vector<std::string> configSections() const override;
  void parseConfig(const nlohmann::json& root, Config& c, cfgjson::ConfigErrors& errs) const override;
  /** newWorker opens the store first when the config has a push listener (a failure ends startup). */
  ModuleWorkerPtr newWorker(WorkerContext& w) override;
  void renderMetrics(MetricsWriter& out) const override;

 private:
  PushShared shared_;
};

}  // namespace ugate::webpush

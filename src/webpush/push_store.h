#pragma once
// PushStore: the push service's durable store (RFC 8030 §5: a push service stores a message until
// it is delivered and acknowledged or its TTL runs out). SQLite in WAL mode, one file in
// node.dataDir, owned by one store thread: every call queues an operation and returns at once, and
// the store thread runs what is queued as one transaction (group commit: one fsync for a whole
// batch), then calls each operation's completion on the store thread. A completion never runs before
// the transaction holding its operation is committed, so "201 Created" sent from a completion means
// the message is on disk (`sync: full`: survives power loss; `normal`: survives a crash of the
// process, not of the machine). Reactor threads never touch the database; a caller posts the
// completion's result back to its own reactor.
//
// A message belongs to one subscription; `topic` (RFC 8030 §5.4) replaces the subscription's pending
// message of the same topic; messages are returned oldest first, by a store-wide sequence that a
// subscriber resumes from. sweep() removes expired messages and subscriptions unused for longer
// than a given time. open() checks the file (quick_check) and refuses a corrupt or foreign one.
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <ugate/result.h>
#include <ugate/stats.h>

namespace ugate::webpush {

/** SyncMode: `webpush.sync`. */
enum class SyncMode : uint8_t {
  Full,    // PRAGMA synchronous=FULL: a committed message survives power loss
  Normal,  // PRAGMA synchronous=NORMAL (WAL): survives a crash of the process, may lose the last
           // commits on power loss
};

/** Subscription: one push subscription (RFC 8030 §4). */
struct Subscription {
  std::string id;           // the receive resource's capability (`/s/<id>`)
  std::string token;        // the push resource's capability (`/push/<token>`)
  std::string appServerKey;  // RFC 8292 §3 restriction: the raw P-256 public key ("" = unrestricted)
  std::string topic;        // pub/sub topic it follows ("" = none)
  int64_t createdMs{0};
  int64_t usedMs{0};        // last push or delivery (for webpush.subscriptionTtl)
};

/** Urgency (RFC 8030 §5.3), in filter order. */
enum class Urgency : uint8_t { VeryLow = 0, Low = 1, Normal = 2, High = 3 };

/** StoredMessage: a push message as stored (the body is the encrypted payload, never decrypted here). */
struct StoredMessage {
  std::string id;           // the message resource's capability (`/m/<id>`)
  std::string subscription;
  int64_t seq{0};           // store-wide order, assigned by put (resume point of a subscriber)
  std::string topic;        // "" = none
  Urgency urgency{Urgency::Normal};
  int64_t ttlSeconds{0};
  int64_t receivedMs{0};
  int64_t expiresMs{0};
  std::string encoding;     // Content-Encoding as sent ("aes128gcm")
  std::string body;
  // receipt: the receipt subscription (RFC 8030 §5.1, `/r/<rsid>`) the sender asked a receipt on,
  // "" = none. put checks it belongs to `subscription`; message and pending read it back.
  std::string receipt;
  // upstreamSeq: > 0 for a copy of a topic mailbox's envelope (push_xds_feed.h): its sequence at
  // the gateway. put records it per subscription (until an hour past the message's expiry) and
  // refuses (AlreadyExists) one taken before, so a mailbox received again (after a restart here,
  // or after the copy was acknowledged) delivers nothing twice, in whatever order envelopes come.
  int64_t upstreamSeq{0};
};

/** kMaxReceiptSubscriptions: receipt subscriptions per push subscription (addReceiptSubscription). */
constexpr size_t kMaxReceiptSubscriptions = 16;
/** kMaxStoredReceipts: unacknowledged receipts kept per receipt subscription (put, acknowledge). */
constexpr size_t kMaxStoredReceipts = 1000;

/** StoredReceipt: one push message receipt (RFC 8030 §5.1) waiting for its application server. */
struct StoredReceipt {
  int64_t seq{0};      // store-wide order: the SSE event id, and the ack path /r/<rsid>/<seq>
  std::string rsid;    // its receipt subscription
  std::string mid;     // the acknowledged message (`/m/<mid>`; the message itself is gone)
  int64_t ackedMs{0};  // when the user agent acknowledged it
};

/** ReceiptSubAdd: what addReceiptSubscription did. */
enum class ReceiptSubAdd : uint8_t { Added, NoSubscription, Full };

/** Acked: what acknowledge did. */
struct Acked {
  bool removed{false};  // the message existed and is gone now
  std::string rsid;     // it asked for a receipt on this receipt subscription ("" = none)
  int64_t seq{0};       // > 0: the receipt stored (the message had been delivered)
  bool dropped{false};  // a receipt was due but its receipt subscription held kMaxStoredReceipts
};

/** StoreStats: written by the store thread, read anywhere (relaxed atomics). */
struct StoreStats {
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> operations{0};
  std::atomic<uint64_t> failedCommits{0};
  std::atomic<uint64_t> largestBatch{0};
  std::atomic<uint64_t> lastBatch{0};  // operations in the last transaction
  std::atomic<uint64_t> lastCommitMicros{0};
  std::atomic<uint64_t> commitMicrosTotal{0};
  mutable std::atomic<uint64_t> cacheHits{0};    // cachedSubscription found it
  mutable std::atomic<uint64_t> cacheMisses{0};  // ... did not (the caller asks the store)
  LatencyHistogram commitLatency;  // commitLatency: each transaction, BEGIN to COMMIT (fsync included)
  SyncMode sync{SyncMode::Full};
};

class PushStore {
 public:
  template <typename T>
  using Done = std::function<void(Result<T>)>;

  /**
   * open opens (creating when absent) the store at `path` on the calling thread and starts the
   * store thread. Errors name the file and the cause: not a database, corrupt (quick_check), a
   * schema of another version, WAL refused. `maxBatch`: operations per transaction at most (1 makes
   * a store with one commit, one fsync, per operation: the benchmark's baseline).
   */
  static Result<std::unique_ptr<PushStore>> open(const std::string& path, SyncMode sync,
                                                 size_t maxBatch = kMaxBatch);
  /** The destructor runs what is queued, then stops the store thread. */
  ~PushStore();
  PushStore(const PushStore&) = delete;
  PushStore& operator=(const PushStore&) = delete;

  /** addSubscription stores s (its id and token must be new: AlreadyExists otherwise). */
  void addSubscription(Subscription s, Done<void> done);
  /** removeSubscription deletes it and its messages; false when there was none. */
  void removeSubscription(std::string id, Done<bool> done);
  /** subscriptionByToken / subscriptionById: nullopt when unknown. */
  void subscriptionByToken(std::string token, Done<std::optional<Subscription>> done);
  void subscriptionById(std::string id, Done<std::optional<Subscription>> done);
  /**
   * cachedSubscription: the subscription of `token` from a memory cache, without a store round trip
   * (any thread; nullopt: not cached, ask subscriptionByToken). The cache holds subscriptions added,
   * or found by subscriptionByToken/Id, since open, at most kCacheMax; the store thread drops an
   * entry when its subscription is removed (before the DELETE runs, so a put queued after it finds
   * no subscription), clears it all when a sweep removes subscriptions or a commit fails. A hit may
   * still be removed by an operation queued meanwhile: put then reports NotFound. `usedMs` of a
   * cached copy is not kept current.
   */
  std::optional<Subscription> cachedSubscription(const std::string& token) const;
  /**
   * tokenGone: true when `token` belonged to a subscription that was removed (unsubscribed or swept):
   * a tombstone kept for another idle period after its last use, so that senders get 410, not 404.
   */
  void tokenGone(std::string token, Done<bool> done);
  /**
   * put stores m (its seq is assigned and returned) and marks the subscription used at
   * m.receivedMs (written only when the stored mark is older than kTouchGranularityMs, so most puts
   * change no subscription row or index); with a topic, the subscription's pending message of that topic is replaced.
   * NotFound when the subscription does not exist. With m.receipt: InvalidArgument when that is
   * not a receipt subscription of m.subscription, ResourceExhausted when it holds kMaxStoredReceipts.
   */
  void put(StoredMessage m, Done<int64_t> done);
  /** remove deletes message id (an acknowledgement or a cancel); false when there was none. */
  void remove(std::string id, Done<bool> done);
  /**
   * acknowledge deletes message id (DELETE /m/<mid>: a user agent's acknowledgement, RFC 8030 §6.2,
   * or a sender's cancel) and, in the same transaction, when the message asked for a receipt and had
   * been delivered (markDelivered), stores the receipt (unless its receipt subscription already
   * holds maxReceipts: then `dropped`). A message never delivered gets no receipt: deleting it is a
   * cancel, not an acknowledgement.
   */
  void acknowledge(std::string id, int64_t nowMs, size_t maxReceipts, Done<Acked> done);
  /** markDelivered: messages sent on a delivery stream that asked for receipts (acknowledge reads it). */
  void markDelivered(std::vector<std::string> ids, Done<void> done);
  /**
   * addReceiptSubscription: a receipt subscription `rsid` of the push subscription whose push
   * resource is `token` (RFC 8030 §5.1), unless it has maxPerSubscription already (Full) or there is
   * no such subscription. It goes with its push subscription (removed, swept).
   */
  void addReceiptSubscription(std::string token, std::string rsid, int64_t nowMs, size_t maxPerSubscription,
                              Done<ReceiptSubAdd> done);
  /** removeReceiptSubscription deletes it and its receipts; false when there was none. */
  void removeReceiptSubscription(std::string rsid, Done<bool> done);
  /** receiptSubscription: the push subscription id of receipt subscription rsid (nullopt: none). */
  void receiptSubscription(std::string rsid, Done<std::optional<std::string>> done);
  /** receipts: rsid's stored receipts with seq > afterSeq, oldest first, at most limit. */
  void receipts(std::string rsid, int64_t afterSeq, size_t limit, Done<std::vector<StoredReceipt>> done);
  /** removeReceipt: the application server is done with receipt seq of rsid; false when there was none. */
  void removeReceipt(std::string rsid, int64_t seq, Done<bool> done);
  /** message: one message by id (nullopt: none). */
  void message(std::string id, Done<std::optional<StoredMessage>> done);
  /**
   * subscriptionIds: every stored subscription's id, oldest first (a node's relay follows them);
   * with `topic`, only those whose topic column is exactly that (or, with `topicPrefix`, begins with it).
   */
  void subscriptionIds(Done<std::vector<std::string>> done, std::optional<std::string> topic = std::nullopt,
                       bool topicPrefix = false);
  /** setTopicKeys: a topic subscription's p256dh and auth (pub/sub encrypts for it). */
  void setTopicKeys(std::string sid, std::string p256dh, std::string authSecret, Done<void> done);
  /** TopicSubscriber: a subscription of a topic with its keys. */
  struct TopicSubscriber {
    std::string id;
    std::string p256dh;
    std::string auth;
    int64_t queued{0};  // its messages stored now (not yet acknowledged or expired)
  };
  /** topicSubscribers: the subscriptions of `topic` that have keys, oldest first, at most limit. */
  void topicSubscribers(std::string topic, size_t limit, Done<std::vector<TopicSubscriber>> done);
  /**
   * pending: subscription's messages with seq > afterSeq, not expired at nowMs and at least
   * minUrgency, oldest first, at most limit.
   */
  void pending(std::string subscription, int64_t afterSeq, int64_t nowMs, Urgency minUrgency, size_t limit,
               Done<std::vector<StoredMessage>> done);
  struct Swept {
    uint64_t messages{0};
    uint64_t subscriptions{0};
    uint64_t subscriptionsLeft{0};  // stored after the sweep
    uint64_t messagesLeft{0};
  };
  /**
   * sweep deletes messages expired at nowMs, subscriptions not used since nowMs - idleMs, and
   * tombstones (tokenGone) of subscriptions not used since nowMs - 2 * idleMs; counts what is left.
   */
  void sweep(int64_t nowMs, int64_t idleMs, Done<Swept> done);

  const StoreStats& stats() const { return stats_; }
  const std::string& path() const { return path_; }
  /** kMaxBatch: operations per transaction at most, by default. */
  static constexpr size_t kMaxBatch = 512;
  /** kCacheMax: subscriptions cachedSubscription holds at most (an arbitrary one makes room). */
  static constexpr size_t kCacheMax = 100'000;
  /** kTouchGranularityMs: how stale a subscription's last use may be stored (vs subscriptionTtl). */
  static constexpr int64_t kTouchGranularityMs = 60'000;

 private:
  struct Op {
    // run: inside the batch's transaction (a savepoint of its own); false: its changes are undone.
    std::function<bool(PushStore&)> run;
    // finish: after the commit (ok) or its failure (the error), on the store thread.
    std::function<void(const Result<void>&)> finish;
    // savepoint: run may fail after changing rows, which must then be undone. An operation that
    // only reads, or changes rows in one statement (a failed statement undoes itself), needs none.
    bool savepoint{true};
  };
  PushStore(std::string path, sqlite3* db, size_t maxBatch);
  void enqueue(Op op);
  /**
   * deleteByKey runs `sql` (a DELETE with ?1 = key); done(true) when a row went. `uncache`: key is a
   * subscription id, dropped from the cache first.
   */
  void deleteByKey(const char* sql, std::string key, const char* what, Done<bool> done, bool uncache = false);
  /** findSubscription runs `sql` (a SELECT of one subscription by ?1 = key). */
  void findSubscription(const char* sql, std::string key, Done<std::optional<Subscription>> done);
  // The subscription cache (cachedSubscription): filled and emptied on the store thread.
  void cacheSubscription(const Subscription& s);
  void uncacheSubscription(const std::string& id);
  void clearCache();
  void loop();
  void runBatch(std::deque<Op>& batch);
  /** stmt: the prepared statement for sql (prepared once, reset for reuse). */
  sqlite3_stmt* stmt(const char* sql);
  Result<void> exec(const char* sql);
  /** step runs a prepared statement without results (stmt(sql)); false on an error. */
  bool step(const char* sql);
  Error dbError(std::string_view what) const;

  std::string path_;
  sqlite3* db_;
  size_t maxBatch_;
  std::unordered_map<const char*, sqlite3_stmt*> stmts_;  // by the address of the SQL literal
  std::mutex mu_;  // mu_ guards queue_ and stopping_
  std::condition_variable cv_;
  std::deque<Op> queue_;
  bool stopping_{false};
  StoreStats stats_;
  mutable std::shared_mutex cacheMu_;  // cacheMu_ guards byToken_ and tokenOf_
  std::unordered_map<std::string, Subscription> byToken_;
  std::unordered_map<std::string, std::string> tokenOf_;  // subscription id → token, for removals
  std::thread thread_;
};

}  // namespace ugate::webpush

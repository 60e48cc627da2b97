#include "webpush/webpush_module.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <spdlog/spdlog.h>

#include <ugate/config.h>
#include <ugate/listener.h>
#include <ugate/metrics.h>
#include <ugate/worker_context.h>

#include "webpush/push_relay.h"
#include "webpush/push_service.h"
#include "webpush/webpush_config.h"

namespace ugate::webpush {

// ---- PushCounters --------------------------------------------------------------------------------

void PushCounters::reject(std::string_view reason) {
  std::lock_guard lock(mu_);
  auto it = rejected_.find(reason);
  if (it == rejected_.end()) it = rejected_.emplace(std::string(reason), 0).first;
  ++it->second;
}

std::map<std::string, uint64_t, std::less<>> PushCounters::rejected() const {
  std::lock_guard lock(mu_);
  return rejected_;
}

// ---- Mailbox -------------------------------------------------------------------------------------

void Mailbox::post(std::function<void(PushWorker&)> fn) {
  std::lock_guard lock(mu_);
  if (worker_ == nullptr) return;
  PushWorker* w = worker_;
  reactor_->post([w, fn = std::move(fn)]() mutable { fn(*w); });
}

void Mailbox::close() {
  std::lock_guard lock(mu_);
  worker_ = nullptr;
}

// ---- PushShared ----------------------------------------------------------------------------------

Result<void> PushShared::ensureStore(const std::string& path, SyncMode sync, size_t maxBatch) {
  std::lock_guard lock(storeMu_);
  if (owned_) return {};
  // node.dataDir may not exist yet on a first start (the credentials are made there later).
  const auto dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return makeError(Errc::Io, "webpush store " + path + ": cannot create " + dir.string() + ": " + ec.message());
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  }
  auto st = PushStore::open(path, sync, maxBatch);
  if (!st) return st.error();
  owned_ = std::move(*st);
  store_.store(owned_.get(), std::memory_order_release);
  spdlog::info("webpush: store {} (sync {}, at most {} operations per transaction)", path,
               sync == SyncMode::Full ? "full" : "normal", maxBatch);
  return {};
}

void PushShared::listen(const std::string& sid, const MailboxPtr& mb, uint64_t stream) {
  std::lock_guard lock(listenMu_);
  listeners_.emplace(sid, Listener{mb, stream});
}

void PushShared::unlisten(const std::string& sid, uint64_t stream) {
  std::lock_guard lock(listenMu_);
  auto [b, e] = listeners_.equal_range(sid);
  for (auto it = b; it != e; ++it) {
    if (it->second.stream == stream) {
      listeners_.erase(it);
      return;
    }
  }
}

bool PushShared::listened(const std::string& sid) const {
  std::lock_guard lock(listenMu_);
  return listeners_.count(sid) > 0;
}

void PushShared::setRelayHome(int index, const MailboxPtr& mb) {
  if (index != 0) return;
  std::lock_guard lock(relayMu_);
  relayHome_ = mb;
}

void PushShared::followAtRelay(const std::string& sid) {
  MailboxPtr home;
  {
    std::lock_guard lock(relayMu_);
    home = relayHome_;
  }
  if (home) home->post([sid](PushWorker& w) {
    if (PushRelay* r = w.relay()) r->follow(sid);
  });
}

void PushShared::notify(const std::string& sid, const std::string& ackedMid, bool gone, const std::string& topic) {
  std::lock_guard lock(listenMu_);
  auto [b, e] = listeners_.equal_range(sid);
  for (auto it = b; it != e; ++it) {
    it->second.mailbox->post(
        [stream = it->second.stream, ackedMid, gone, topic](PushWorker& w) { w.wake(stream, ackedMid, gone, topic); });
  }
}

bool PushShared::allow(std::unordered_map<std::string, TokenBucket>& m, const std::string& key, double rate,
                       double burst, int64_t nowMs, int64_t& retryAfter) {
  if (rate <= 0) return true;
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(key, TokenBucket(rate, burst, nowMs)).first;
  return it->second.take(nowMs, retryAfter);
}

bool PushShared::allowSource(const std::string& key, double rate, double burst, int64_t nowMs, int64_t& retryAfter) {
  std::lock_guard lock(rateMu_);
  return allow(bySource_, key, rate, burst, nowMs, retryAfter);
}

bool PushShared::allowSubscription(const std::string& key, double rate, double burst, int64_t nowMs,
                                   int64_t& retryAfter) {
  std::lock_guard lock(rateMu_);
  return allow(bySubscription_, key, rate, burst, nowMs, retryAfter);
}

void PushShared::forgetIdleBuckets(int64_t nowMs) {
  std::lock_guard lock(rateMu_);
  std::erase_if(bySource_, [nowMs](const auto& kv) { return kv.second.full(nowMs); });
  std::erase_if(bySubscription_, [nowMs](const auto& kv) { return kv.second.full(nowMs); });
}

// ---- WebpushModule -------------------------------------------------------------------------------

void WebpushModule::registerKinds(ListenerKindRegistry& kinds) {
  ListenerKindSpec k = pushKindSpec();
  k.acceptConnection = [this](WorkerContext& w, const ListenerConfig& l, int fd, StreamMeta meta) {
    auto* pw = static_cast<PushWorker*>(w.moduleWorker(*this));
    if (pw == nullptr) {
      ::close(fd);
      return;
    }
    pw->accept(l, fd, std::move(meta));
  };
  kinds.add(std::move(k));
}

ModuleWorkerPtr WebpushModule::newWorker(WorkerContext& w) {
  const Config& cfg = w.config();
  bool serves = false;
  for (const auto& l : cfg.listeners) serves = serves || l.kind == "push";
  // Startup (main thread, before the workers run): a store that cannot be opened is fatal, never a
  // service that answers 201 without keeping the messages. Without a push listener it is opened by
  // the reload that adds one (PushWorker::configApplied).
  if (!serves) return std::make_unique<PushWorker>(w, shared_);
  if (auto r = shared_.ensureStore(storePath(cfg), webpushConfig(cfg).sync, webpushConfig(cfg).storeBatch); !r) {
    spdlog::critical("webpush: {}", r.error().detail);
    std::exit(1);
  }
  return std::make_unique<PushWorker>(w, shared_);
}

void WebpushModule::renderMetrics(MetricsWriter& out) const {
  const PushCounters& c = shared_.counters();
  auto load = [](const auto& a) { return a.load(std::memory_order_relaxed); };
  out.counter("ugate_webpush_requests_total", "Requests to the push service.", load(c.requests));
  out.counter("ugate_webpush_connections_total", "Connections to push listeners (TLS done).", load(c.connections));
  out.counter("ugate_webpush_h2_connections_total", "Push connections that chose HTTP/2.", load(c.h2Connections));
  out.counter("ugate_webpush_h3_requests_total", "Push requests over HTTP/3 (quic listeners with \"push\").",
              load(c.h3Requests));
  out.counter("ugate_webpush_tls_failures_total", "Push connections whose TLS handshake failed.", load(c.tlsFailures));
  out.counter("ugate_webpush_subscriptions_created_total", "Subscriptions created (POST /subscribe).",
              load(c.subscriptionsCreated));
  out.counter("ugate_webpush_subscriptions_deleted_total", "Subscriptions removed by DELETE /s/<sid>.",
              load(c.subscriptionsDeleted));
  out.counter("ugate_webpush_subscriptions_swept_total", "Subscriptions removed after webpush.subscriptionTtl unused.",
              load(c.subscriptionsSwept));
  out.counter("ugate_webpush_messages_accepted_total", "Push messages answered 201 (committed to the store).",
              load(c.accepted));
  out.counter("ugate_webpush_messages_delivered_total", "Push messages sent on a delivery stream (redeliveries too).",
              load(c.delivered));
  out.counter("ugate_webpush_messages_acked_total", "Messages deleted by the subscriber while in flight to it.",
              load(c.acked));
  out.counter("ugate_webpush_messages_deleted_total", "Messages deleted by DELETE /m/<mid> (acks and cancels).",
              load(c.deleted));
  out.counter("ugate_webpush_messages_expired_total", "Messages dropped after their TTL.", load(c.expired));
  out.counter("ugate_webpush_gateway_relayed_total", "Messages taken from the gateway (webpush.gateway) and stored here.",
              load(c.relayed));
  out.counter("ugate_webpush_gateway_relayed_again_total", "Messages from the gateway that were stored here already.",
              load(c.relayedAgain));
  out.counter("ugate_webpush_gateway_acks_total", "Acknowledgements the gateway took.", load(c.relayAcks));
  out.counter("ugate_webpush_gateway_reconnects_total", "Delivery streams at the gateway that ended (then reopened).",
              load(c.relayReconnects));
  out.counter("ugate_webpush_topic_copies_skipped_total",
              "Topic copies not made because the subscriber already had the topic's maxQueued messages stored.",
              load(c.topicCopiesSkipped));
  out.counter("ugate_webpush_receipt_subscriptions_created_total", "Receipt subscriptions created (POST /receipts/<token>).",
              load(c.receiptSubscriptionsCreated));
  out.counter("ugate_webpush_receipt_subscriptions_deleted_total", "Receipt subscriptions removed by DELETE /r/<rsid>.",
              load(c.receiptSubscriptionsDeleted));
  out.counter("ugate_webpush_receipts_requested_total", "Push messages accepted with a Push-Receipt.",
              load(c.receiptsRequested));
  out.counter("ugate_webpush_receipts_stored_total", "Receipts stored when the user agent acknowledged the message.",
              load(c.receiptsStored));
  out.counter("ugate_webpush_receipts_dropped_total", "Receipts not stored: the receipt subscription held its maximum.",
              load(c.receiptsDropped));
  out.counter("ugate_webpush_receipts_cancelled_total",
              "Messages with a Push-Receipt deleted before any delivery (no receipt).", load(c.receiptsNotDelivered));
  out.counter("ugate_webpush_receipts_delivered_total", "Receipts sent on a receipt stream (resends too).",
              load(c.receiptsDelivered));
  out.counter("ugate_webpush_receipts_acked_total", "Receipts deleted by the application server.", load(c.receiptsAcked));
  out.counter("ugate_webpush_xds_posted_total",
              "Messages of deliver-xds subscriptions posted for their node as ugate.v1.Message resources.",
              load(c.xdsPosted));
  out.counter("ugate_webpush_xds_taken_total", "Messages that arrived over xDS (xds.client.messages) and are stored here.",
              load(c.xdsTaken));
  out.family("ugate_webpush_rejected_total", "counter", "Requests refused, by reason.");
  for (const auto& [reason, n] : c.rejected()) out.sample("ugate_webpush_rejected_total", {{"reason", reason}}, n);
  out.gauge("ugate_webpush_subscribers_connected", "Delivery streams (GET /s/<sid>) open now.", load(c.subscribers));
  if (load(c.storedSubscriptions) >= 0) {
    out.gauge("ugate_webpush_subscriptions", "Subscriptions in the store (at the last sweep).", load(c.storedSubscriptions));
    out.gauge("ugate_webpush_messages_stored", "Messages in the store (at the last sweep).", load(c.storedMessages));
  }
  PushStore* st = shared_.store();
  if (st == nullptr) return;
  const StoreStats& s = st->stats();
  out.counter("ugate_webpush_store_commits_total", "Store transactions committed (group commits).", load(s.commits));
  out.counter("ugate_webpush_store_operations_total", "Store operations run.", load(s.operations));
  out.counter("ugate_webpush_store_failed_commits_total", "Store transactions that failed.", load(s.failedCommits));
  out.gauge("ugate_webpush_store_batch_largest", "Most operations in one transaction so far.", load(s.largestBatch));
  out.gauge("ugate_webpush_store_batch_last", "Operations in the last transaction.", load(s.lastBatch));
  out.counter("ugate_webpush_subscription_cache_hits_total", "Pushes whose subscription came from the memory cache.",
              load(s.cacheHits));
  out.counter("ugate_webpush_subscription_cache_misses_total", "Pushes that looked their subscription up in the store.",
              load(s.cacheMisses));
  out.counter("ugate_webpush_store_commit_microseconds_total", "Time spent in store transactions.",
              load(s.commitMicrosTotal));
  out.gauge("ugate_webpush_store_commit_last_microseconds", "Duration of the last store transaction.",
            load(s.lastCommitMicros));
  HistogramValues h;
  h.add(s.commitLatency);
  out.family("ugate_webpush_store_commit_seconds", "histogram",
             "Store transactions (group commits), BEGIN to COMMIT including the fsync.");
  out.latency("ugate_webpush_store_commit_seconds", {"sync", s.sync == SyncMode::Full ? "full" : "normal"}, h);
}

}  // namespace ugate::webpush

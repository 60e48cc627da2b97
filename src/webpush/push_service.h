#pragma once
// PushWorker: the push service on one worker. It answers the requests its connections
// (push_http.h) hand it, one Exchange each, against the store: every store call returns at once and
// its completion is posted back to this worker's reactor (Mailbox), where the exchange is looked up
// again by id (the client may have gone meanwhile). Delivery streams (GET /s/<sid>, SSE) are
// registered in PushShared so a message accepted or acknowledged on any worker wakes them.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <ugate/http_endpoint.h>
#include <ugate/message_box.h>
#include <ugate/module.h>
#include <ugate/reactor.h>
#include <ugate/worker_context.h>

#include "webpush/push_api.h"
#include "webpush/webpush_config.h"
#include "webpush/webpush_module.h"

namespace ugate::webpush {

/** RequestInfo: one HTTP request as the service sees it (HTTP/1.1 and HTTP/2 alike). */
struct RequestInfo {
  std::string method;
  std::string target;     // path and query
  std::string authority;  // Host / :authority
  HeaderList headers;     // names lower-cased
  std::string body;
  std::string source;     // the client's IP address (rate limits, logs)
  std::vector<std::string> peer;  // the client certificate's verified identity (node ID, SPIFFE ID), if any
};

/**
 * Exchange: one request and its answer, owned by its connection; registered with the worker while
 * it lives. The worker calls respond() once, or startEvents() then sendEvents() any number of times
 * (a delivery stream) until endEvents() or the client goes.
 */
class Exchange {
 public:
  Exchange(PushWorker& w, RequestInfo req);
  virtual ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;
  uint64_t id() const { return id_; }
  const RequestInfo& request() const { return req_; }
  RequestInfo& request() { return req_; }
  /** respond: the final answer (a body with Content-Length). */
  virtual void respond(int status, HeaderList headers, std::string body) = 0;
  /** startEvents: 200, text/event-stream; the response stays open. */
  virtual void startEvents() = 0;
  virtual void sendEvents(std::string_view bytes) = 0;
  /** endEvents: end the event stream (the subscription is gone, or drain). */
  virtual void endEvents() = 0;
  /**
   * detach: the worker forgets this exchange now (its connection ended it, or it is about to be
   * freed later in this loop turn); the destructor then no longer touches the worker, which may be
   * gone by the time a deferred deletion runs at shutdown.
   */
  void detach();

 protected:
  PushWorker& worker_;

 private:
  uint64_t id_;
  RequestInfo req_;
  bool detached_{false};
};

class PushConn;
class PushRelay;

class PushWorker final : public ModuleWorker, public HttpEndpointProvider {
 public:
  PushWorker(WorkerContext& w, PushShared& shared);
  ~PushWorker() override;

  /** accept: a connection on a push listener (TLS, then HTTP/1.1 or HTTP/2 by ALPN). */
  void accept(const ListenerConfig& l, int fd, StreamMeta meta);
  /** handle: a complete request (body read) on exchange ex. */
  void handle(Exchange& ex);
  /** refuse answers ex with an error status and counts and logs the reason. */
  void refuse(Exchange& ex, const Refusal& r, HeaderList extra = {});
  /** refused: a request the connection refused itself (bad framing): count and log. */
  void refused(const std::string& source, const Refusal& r);
  /** wake: (on this worker) delivery stream `stream`'s subscription changed (PushShared::notify). */
  void wake(uint64_t stream, const std::string& ackedMid, bool gone, const std::string& topic = "");

  // Connection bookkeeping (push_http.cc).
  uint64_t registerExchange(Exchange& ex);
  void forgetExchange(uint64_t id);
  /** connectionDone: connection `c` ended; it is freed at the end of this loop turn. */
  void connectionDone(PushConn* c);

  WorkerContext& ctx() { return w_; }
  const MailboxPtr& mailbox() const { return mailbox_; }
  /** relay: this worker's side of `webpush.gateway` (push_relay.h), null without one. */
  PushRelay* relay() { return relay_.get(); }
  const WebpushConfig& config() const;
  PushShared& shared() { return shared_; }
  PushCounters& counters() { return shared_.counters(); }
  int64_t wallMs() const;

  // ugate::ModuleWorker
  void configApplied(const Config& cfg) override;
  void drain() override;
  // ugate::HttpEndpointProvider (push_local.cc): the push listeners' service for other front ends.
  HttpEndpoint* httpEndpoint(std::string_view listener) override;

 private:
  /** Subscriber: one open delivery stream. */
  struct Subscriber {
    std::string sid;
    Urgency minUrgency{Urgency::VeryLow};
    int64_t lastSeq{0};
    struct InFlight {
      int64_t expiresMs{0};
      std::string topic;
    };
    std::unordered_map<std::string, InFlight> inFlight;  // by mid
    bool fetching{false};
    bool again{false};
    TimerPtr keepalive;
  };
  /** ReceiptStream: one open receipt delivery stream (GET /r/<rsid>, RFC 8030 §5.1). */
  struct ReceiptStream {
    std::string rsid;
    std::string sid;  // its push subscription
    int64_t lastSeq{0};
    bool fetching{false};
    bool again{false};
    TimerPtr keepalive;
  };
  template <typename T, typename F>
  PushStore::Done<T> back(F f);
  Exchange* find(uint64_t id);
  // Receipts (push_service.cc): the receipt subscribe resource, a receipt subscription read as SSE,
  // deleted, and one receipt acknowledged.
  void receiptSubscribe(Exchange& ex, PushStore& st, const std::string& token);
  void receiptReceive(Exchange& ex, PushStore& st, const std::string& rsid, const std::string& query);
  void fetchReceipts(uint64_t exId);
  void receiptUnsubscribe(Exchange& ex, PushStore& st, const std::string& rsid);
  void receiptAck(Exchange& ex, PushStore& st, const std::string& rsid, int64_t seq);
  std::string origin(const Exchange& ex) const;
  void subscribe(Exchange& ex, PushStore& st);
  /** subscribed: the 201 answer to POST /subscribe (receive /s/<sid>, push resource at endpoint). */
  void subscribed(uint64_t exId, const std::string& sid, const std::string& endpoint, const std::string& link,
                  const std::string& receiptLink = "");
  // Pub/sub (push_topics.cc): a topic subscription, and POST /topic/<node>/<name>.
  void subscribeTopic(Exchange& ex, PushStore& st, const SubscribeRequest& req);
  void publish(Exchange& ex, PushStore& st, const std::string& topic);
  /** checkPublisher: the VAPID credentials in authz against topic tc's publishers (a refusal, or none). */
  std::optional<Refusal> checkPublisher(const Exchange& ex, const TopicConfig& tc, const std::string& topic,
                                        std::string_view authz, int64_t now) const;
  struct FanOut;
  void fanOut(std::shared_ptr<FanOut> f);
  /** subscribeAtGateway: POST /subscribe through the relay, then the same subscription here. */
  void subscribeAtGateway(Exchange& ex, PushStore& st, const SubscribeRequest& req);
  // Delivery over xDS (push_xds_feed.{h,cc}): "deliver": "xds" subscriptions, both ends.
  void subscribeXds(Exchange& ex, PushStore& st, const SubscribeRequest& req);
  /** postToXds: committed message m (store sequence seq) for node `to` into the MessageBox. */
  void postToXds(const std::string& to, StoredMessage m, int64_t seq);
  /** xdsGone: message mid (or, mid "", every message) of sid leaves the MessageBox. */
  void xdsGone(const std::string& sid, const std::string& mid);
  void repostXds();
  void repost(const std::string& to, const std::vector<StoredMessage>& msgs);
  void takeFromXds(std::vector<BoxedMessage> msgs);
  /** subscribeMailbox: N: a local subscription filled from topic mailbox req.mailbox. */
  void subscribeMailbox(Exchange& ex, PushStore& st, const SubscribeRequest& req);
  /** takeFromTopic: N: a topic mailbox's envelope, stored for each local subscription bound to it. */
  void takeFromTopic(BoxedMessage b);
  void push(Exchange& ex, PushStore& st, const std::string& token);
  void pushTo(uint64_t exId, const Subscription& sub);
  void receive(Exchange& ex, PushStore& st, const std::string& sid, const std::string& query);
  void startDelivery(uint64_t exId, const std::string& sid, const ReceiveRequest& rr);
  void fetch(uint64_t exId);
  /** keepaliveTimer: an SSE comment on delivery or receipt stream exId every webpush.keepalive. */
  TimerPtr keepaliveTimer(uint64_t exId);
  void unsubscribe(Exchange& ex, PushStore& st, const std::string& sid);
  void deleteMessage(Exchange& ex, PushStore& st, const std::string& mid);
  void storeFailed(uint64_t exId, const Error& e, std::string_view what);
  void sweep();

  WorkerContext& w_;
  PushShared& shared_;
  MailboxPtr mailbox_;
  uint64_t nextExchange_{1};
  std::unordered_map<uint64_t, Exchange*> exchanges_;
  std::unordered_map<uint64_t, Subscriber> subscribers_;
  std::unordered_map<uint64_t, ReceiptStream> receiptStreams_;  // by exchange id
  std::unordered_map<PushConn*, std::unique_ptr<PushConn>> conns_;
  TimerPtr sweepTimer_;
  std::unique_ptr<PushRelay> relay_;
  bool draining_{false};
  std::map<std::string, std::unique_ptr<HttpEndpoint>, std::less<>> endpoints_;  // push_local.cc
};

// back: a store completion that runs f on this worker (push_service.cc, push_topics.cc).
template <typename T, typename F>
PushStore::Done<T> PushWorker::back(F f) {
  return [mb = mailbox_, f = std::move(f)](Result<T> r) mutable {
    mb->post([f = std::move(f), r = std::move(r)](PushWorker&) mutable { f(std::move(r)); });
  };
}

}  // namespace ugate::webpush

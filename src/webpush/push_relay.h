#pragma once
// PushRelay: the push service of a node behind NAT (`webpush.gateway`). Such a node cannot be
// reached by application servers, so its subscriptions live at a gateway's push service, which
// stores their messages durably while the node is away; the node keeps each subscription in its
// own store under the same id and pulls the messages in over the mesh:
// - POST /subscribe at the node becomes a POST /subscribe at the gateway; the node stores the
//   subscription under the gateway's sid and token and answers with the gateway's endpoint (what
//   application servers push to) and its own /s/<sid> (where its local subscribers read).
// - For every stored subscription one worker (worker 0) keeps a delivery stream at the gateway
//   (GET /s/<sid>, SSE) open; each message is stored here under the gateway's message id and, once
//   committed, acknowledged at the gateway (DELETE /m/<mid>), which then forgets it. A message the
//   node had not committed stays at the gateway and comes again on the next stream; one stored here
//   twice (acknowledgement lost) is recognised by its id. So the gateway's TTL, ack and redelivery
//   rules carry over unchanged, and local subscribers see the same ids end to end.
// - Every request is HTTPS/1.1 on a stream the node opens through the worker's TunnelDialer
//   (include/ugate/tunnel.h) to `target` (the gateway's push listener as `<gw>.mesh:<port>`): the
//   mesh carries it over the connection the node dialled out, so no port of the node is reachable.
// A stream that ends is opened again after a backoff (retryMin doubling up to retryMax); a 404 or
// 410 for a subscription means the gateway no longer has it: it is removed here too.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <ugate/reactor.h>
#include <ugate/tunnel.h>

#include "auth/tls_stream.h"
#include "http/http1_parser.h"
#include "webpush/push_relay_wire.h"
#include "webpush/webpush_config.h"

namespace ugate::webpush {

class PushWorker;
class HttpsCall;

/** kRelayListener: the listener name the relay's streams carry in their StreamMeta (routes, logs). */
inline constexpr std::string_view kRelayListener = "webpush-gateway";

/** PushRelay: one worker's side of the gateway (see above); lives on that worker's reactor. */
class PushRelay {
 public:
  /** create: null and a logged error when the gateway's trust cannot be loaded. */
  static std::unique_ptr<PushRelay> create(PushWorker& w, const GatewayConfig& g);
  PushRelay(PushWorker& w, GatewayConfig g, auth::TlsContextPtr tls);
  ~PushRelay();
  PushRelay(const PushRelay&) = delete;
  PushRelay& operator=(const PushRelay&) = delete;

  /** SubscribeDone: the gateway's status (0: not reached, `error` says why) and its parsed answer. */
  using SubscribeDone = std::function<void(int status, std::optional<SubscribeReply> reply, const std::string& error)>;
  /** subscribe: POST /subscribe at the gateway with the client's body. */
  void subscribe(std::string body, SubscribeDone done);
  /** unsubscribe: DELETE /s/<sid> at the gateway (best effort; the stream then ends by itself). */
  void unsubscribe(const std::string& sid);
  /** follow: keep a delivery stream for sid open (no-op when one is kept already). */
  void follow(const std::string& sid);
  /** followStored: follow every subscription in the store. */
  void followStored();
  /** stored: (from the store) message `mid` of sid is committed here, or failed. */
  void stored(const std::string& sid, const std::string& mid, const Result<int64_t>& r);
  /** stop: drain: end every stream and call; nothing new starts. */
  void stop();
  size_t following() const { return followers_.size(); }

 private:
  struct Call {
    std::unique_ptr<HttpsCall> http;
    TunnelRequestPtr opening;
  };
  struct Follower {
    uint64_t call{0};
    TimerPtr retry;
    Duration backoff{0};
    SseReader sse;
    bool stopped{false};
  };
  using OnBody = std::function<void(std::string_view)>;
  using OnDone = std::function<void(HttpsCall&)>;
  /** request starts one HTTPS/1.1 call to the gateway through the mesh; its id. */
  uint64_t request(const std::string& method, const std::string& path, std::vector<http::Header> headers,
                   std::string body, OnBody onBody, OnDone onDone);
  /** forget: call id is done; freed at the end of this loop turn. */
  void forget(uint64_t id);
  void connect(const std::string& sid);
  void onEvents(const std::string& sid, std::string_view bytes);
  void streamEnded(const std::string& sid, int status, const std::string& error);
  void ack(const std::string& mid);
  /** retryAck: acknowledge mid again after a backoff (retryMin doubling to retryMax). */
  void retryAck(const std::string& mid);
  /** forgetAck: no more retries for mid (taken, or refused for good). */
  void forgetAck(const std::string& mid);
  void drop(const std::string& sid);

  PushWorker& w_;
  GatewayConfig g_;
  auth::TlsContextPtr tls_;
  uint64_t nextCall_{1};
  std::unordered_map<uint64_t, Call> calls_;
  std::unordered_map<std::string, Follower> followers_;
  struct AckRetry {
    TimerPtr timer;
    Duration backoff{0};
  };
  std::unordered_map<std::string, AckRetry> ackRetries_;  // acknowledgements the gateway has not taken yet
  std::shared_ptr<bool> alive_;
  bool stopped_{false};
};

}  // namespace ugate::webpush

#pragma once
// ProxySession: one accepted connection from accept to close: route -> resolve -> connect -> splice.
#include <memory>
#include <optional>
#include <vector>

#include <ugate/dns.h>
#include <ugate/front_door.h>
#include <ugate/reactor.h>
#include <ugate/stream.h>

#include "core/listener_stats.h"
#include "core/splicer.h"
#include "core/tcp_stream.h"

namespace ugate {

class Worker;
struct ListenerConfig;

class ProxySession final : public DeferredDeletable, private SplicerCallbacks, private StreamCallbacks {
 public:
  struct Timeouts {
    Duration connect;
    Duration idle;
    Duration sniff;
  };
  /**
   * frontDoor may be null (plain forward: route at once). acceptProxyProtocol: the client (a load
   * balancer) sends a PROXY v1/v2 header first; it is read and applied before anything else.
   */
  ProxySession(Worker& w, ListenerStats& stats, StreamPtr client, StreamMeta meta, FrontDoorPtr frontDoor,
               Timeouts t, bool acceptProxyProtocol = false);
  ~ProxySession() override;

  /** start routes the stream and dials the upstream. */
  void start();
  /** close ends the session: logs, counts and hands itself to deferred deletion. */
  void close(Errc reason, std::string detail, bool abort);
  const StreamMeta& meta() const { return meta_; }
  bool closed() const { return closed_; }

  // Intrusive list of a worker's live sessions (for drain and force-close).
  ProxySession* prev{nullptr};
  ProxySession* next{nullptr};

 private:
  // ugate::SplicerCallbacks
  void onSpliceDone() override;
  void onSpliceError(Errc reason, bool clientSide) override;

  // ugate::StreamCallbacks (client, while the front door reads its handshake)
  void onStreamReadable(Stream& s) override;
  void onStreamWritable(Stream&) override {}

  /** routeAndDial asks the router, unless the front door chose the destination (forced). */
  void routeAndDial(const HostPort* forced = nullptr);
  /** readHandshake reads client bytes into sniffed_ and hands them to the current phase. */
  void readHandshake();
  /** proxyHeaderPhase: PROXY header; returns false when the session closed. */
  bool proxyHeaderPhase();
  /** frontDoorPhase runs the front door over sniffed_; returns true when it wants more bytes. */
  bool frontDoorPhase();
  /** handshakeDone: no more client bytes are needed before routing. */
  void handshakeDone(const HostPort* forced = nullptr);
  /** fail ends the session; with a front door its error reply goes to the client first. */
  void fail(Errc reason, std::string detail);
  bool sendToClient(const std::string& bytes);
  void dial(const HostPort& hp);
  void connectNext();
  /**
   * waitForFd: the upstream socket could not be created for lack of descriptors. Keeps the client,
   * pauses the worker's listeners and retries every 100 ms within the connect timeout; false when
   * that time is used up.
   */
  bool waitForFd(const Error& e);
  void stopWaitingForFd();
  void onConnected(int err);
  void onTimer();
  void syncBytes();

  Worker& worker_;
  ListenerStats& stats_;
  StreamPtr client_;
  StreamPtr upstream_;
  StreamMeta meta_;
  std::unique_ptr<Splicer> splicer_;
  TimerPtr timer_;
  DnsQueryPtr dns_;
  std::vector<SocketAddress> candidates_;  // resolved addresses still to try
  size_t nextCandidate_{0};
  Error lastConnectError_;
  FrontDoorPtr frontDoor_;
  std::string sniffed_;  // sniffed_: client bytes read before routing (front doors only)
  Timeouts timeouts_;
  bool awaitProxyHeader_{false};  // awaitProxyHeader_: the PROXY header has not been read yet
  uint8_t sendProxyHeader_{0};    // sendProxyHeader_: PROXY version to send upstream (0 = none)
  bool closed_{false};
  bool waitingForFd_{false};  // waitingForFd_: the timer retries connectNext() (out of descriptors)
  uint16_t fdRetries_{0};
};

}  // namespace ugate

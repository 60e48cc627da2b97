#pragma once
// UdpForwarder: the per-worker handler of a `udp` or `udp-tproxy` listener. Each client address (and,
// for TPROXY, original destination) is a flow: a Stream of datagrams with its own connected upstream
// socket, its StreamMeta (addresses, bytes, packets) and one access-log line when it ends. Replies
// return through the listening socket (from the address the client reached) or, for TPROXY, through
// a transparent socket bound to the original destination, so they come from where the client sent.
// Flows expire after `idleTimeout` without a datagram and, over `maxFlows`, the least recently used
// one is evicted. Datagrams move in batches (recvmmsg/sendmmsg) without a copy.
#include <memory>
#include <string>

#include <ugate/reactor.h>
#include <ugate/worker_context.h>

#include <ugate/listener.h>
#include <ugate/listener_stats.h>
#include <ugate/datagram_io.h>
#include <ugate/flow_table.h>
#include "udp/udp_options.h"

namespace ugate::udp {

class UdpForwarder final : public DatagramHandler, private IoWatcher {
 public:
  /** Takes ownership of fd (bound, non-blocking); runs on w's thread. */
  UdpForwarder(WorkerContext& w, const ListenerConfig& cfg, int fd);
  /** Ends every flow (reason `shutdown`, logged) and closes the socket. */
  ~UdpForwarder() override;

  // ugate::DatagramHandler
  void setConfig(const ListenerConfig& cfg) override;

  size_t flowsForTest() const { return table_.size(); }

 private:
  class Flow;
  friend class Flow;

  // ugate::IoWatcher (the listening socket)
  void onIoEvent(uint32_t events) override;

  /** readClients moves client datagrams to their flows, a bounded number per wake-up. */
  void readClients();
  /** flowFor finds or creates the flow of a datagram; null when it is dropped (counted). */
  Flow* flowFor(const Datagram& d);
  Flow* createFlow(const FlowKey& key, const Datagram& d);
  /** closeFlow ends a flow: counters, access log, and deletion at the end of the loop turn. */
  void closeFlow(Flow* f, Errc reason, std::string detail);
  void sendUpstream(Flow* f);  // flushes sendBatch_ to f's upstream socket
  void armExpiry();
  void onExpiry();
  void drop(Errc reason, uint64_t n = 1);
  const UdpOptions& options() const;

  WorkerContext& worker_;
  const ListenerConfig* cfg_;
  UdpOptionsPtr opts_;
  int fd_;
  SocketAddress bound_;
  bool tproxy_;
  bool pktInfo_;  // pktInfo_: wildcard bind; each flow replies from the address its client reached
  ListenerStats& stats_;
  FlowTable table_;
  TimerPtr expiry_;
  SendBatch sendBatch_;
  uint32_t kernelDrops_{0};  // kernelDrops_: the listening socket's SO_RXQ_OVFL, already counted
};

}  // namespace ugate::udp

#pragma once
// QuicEndpoint: a `quic` listener's UDP socket on one worker (one SO_REUSEPORT socket per worker).
// Reads datagrams in batches, sends each to the connection that owns its destination CID (this
// worker's, or handed to the worker the CID names), accepts new connections from client Initials
// (address validation by Retry when configured or under load, limits), answers unknown versions with
// Version Negotiation and packets for connections that are gone with a stateless reset, and sends
// the packets connections build in batches (sendmmsg).
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <ugate/datagram_io.h>
#include <ugate/listener.h>
#include <ugate/reactor.h>
#include <ugate/socket_address.h>

#include "quic/quic_options.h"
#include "quic/server_conn.h"

namespace ugate {
class WorkerContext;
struct ListenerConfig;
}  // namespace ugate

namespace ugate::quic {

class QuicWorker;

class QuicEndpoint final : public DatagramHandler, private IoWatcher {
 public:
  QuicEndpoint(WorkerContext& w, QuicWorker& qw, const ListenerConfig& l, int fd);
  ~QuicEndpoint() override;

  // DatagramHandler
  void setConfig(const ListenerConfig& cfg) override;

  const ListenerConfig& config() const { return *cfg_; }
  const QuicTuning& tuning() const;
  QuicWorker& quicWorker() { return qw_; }
  WorkerContext& worker() { return w_; }
  const std::string& name() const { return name_; }

  /** datagram: one received datagram (also one handed over from another worker). */
  void datagram(const uint8_t* data, size_t len, const PathAddrs& path, uint8_t ecn);
  /** txSlot: room for one packet to send (kMaxPacket bytes); commit it with send(). */
  uint8_t* txSlot();
  void send(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from);
  /** flushTx sends every queued packet. */
  void flushTx();
  /** schedule: c has something to write: flush it at the end of this turn (once). */
  void schedule(ServerConn* c);
  /** runPending flushes every scheduled connection, sends the packets, frees dead connections. */
  void runPending();
  /** connDied: c is dead; it is deleted at the end of the turn. */
  void connDied(ServerConn* c);
  /** handshaking: connections of this endpoint not through their handshake (Retry under load). */
  size_t handshaking() const;
  void drain();
  size_t connections() const { return conns_.size(); }

  static constexpr size_t kMaxPacket = 1500;

 private:
  void onIoEvent(uint32_t events) override;
  void sweep();
  void acceptInitial(const uint8_t* data, size_t len, const PathAddrs& path);
  void sendVersionNegotiation(const ngtcp2_version_cid& vc, const PathAddrs& path);
  void sendRetry(const ngtcp2_pkt_hd& hd, const PathAddrs& path);
  void sendInitialClose(const ngtcp2_pkt_hd& hd, const PathAddrs& path, uint64_t code);
  void sendStatelessReset(const ngtcp2_version_cid& vc, size_t len, const PathAddrs& path);

  WorkerContext& w_;
  QuicWorker& qw_;
  const ListenerConfig* cfg_;
  std::string name_;
  int fd_;
  bool wildcard_{false};
  udp::SendBatch tx_;
  std::vector<std::unique_ptr<uint8_t[]>> txSlots_;  // kBatch slots, reused after each flush
  unsigned txUsed_{0};
  std::unordered_map<ServerConn*, std::unique_ptr<ServerConn>> conns_;
  TimerPtr flushTimer_;
  std::vector<ServerConn*> pending_;
  unsigned resetsThisTick_{0};
  MonotonicTime resetTick_{};
};

}  // namespace ugate::quic

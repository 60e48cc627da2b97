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
#include "quic/quic_conn.h"
#include "quic/tx_queue.h"

namespace ugate {
class WorkerContext;
struct ListenerConfig;
}  // namespace ugate

namespace ugate::quic {

class QuicWorker;

class QuicEndpoint final : public DatagramHandler, public PacketIo, private IoWatcher {
 public:
  QuicEndpoint(WorkerContext& w, QuicWorker& qw, const ListenerConfig& l, int fd);
  ~QuicEndpoint() override;

  // DatagramHandler
  void setConfig(const ListenerConfig& cfg) override;

  const ListenerConfig& config() const { return *cfg_; }
  /** localPort: the port the socket is bound to (the kernel's choice for port 0). */
  uint16_t localPort() const;
  const QuicTuning& tuning() const;
  QuicWorker& quicWorker() { return qw_; }
  const std::string& name() const { return name_; }

  /** datagram: one received datagram (also one handed over from another worker). */
  void datagram(const uint8_t* data, size_t len, const PathAddrs& path, uint8_t ecn);
  /** runPending flushes every scheduled connection, sends the packets, frees dead connections. */
  void runPending();
  /** flushTx sends every queued packet. */
  void flushTx();
  /** handshaking: connections of this endpoint not through their handshake (Retry under load). */
  size_t handshaking() const;
  /** drain: GOAWAY on every connection (they close when their streams end); no new connections. */
  void drain();
  bool drainsInPlace() const override { return true; }
  size_t openFlows() const override { return conns_.size(); }
  size_t connections() const { return conns_.size(); }

  // PacketIo
  Reactor& reactor() override;
  QuicCounters& counters() override;
  bool logBudget() override;
  uint8_t* txSlot() override;
  void send(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from) override;
  void sendEcn(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from, uint8_t ecn) override;
  void schedule(QuicConn* c) override;
  void connDied(QuicConn* c) override;
  void newCid(std::span<uint8_t, CidCodec::kLen> out) override;
  void addCid(std::string_view cid, QuicConn* c) override;
  void removeCid(std::string_view cid) override;
  std::span<const uint8_t> resetSecret() override;
  std::span<const uint8_t> tokenSecret() override;
  WorkerContext* worker() override { return &w_; }
  const ListenerConfig* listenerConfig() const override { return cfg_; }


 private:
  void onIoEvent(uint32_t events) override;
  void sweep();
  void acceptInitial(const uint8_t* data, size_t len, const PathAddrs& path, uint8_t ecn);
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
  bool draining_{false};  // drain() ran: Initials are refused
  uint8_t recvFlags_{0};  // udp::RecvFlags this socket's datagrams carry (PKTINFO, TOS, GRO)
  /** tx_: the packets this turn's connections built, sent as GSO trains (tx_queue.h). */
  TxQueue tx_;
  std::unordered_map<QuicConn*, std::unique_ptr<QuicConn>> conns_;
  TimerPtr flushTimer_;
  std::vector<QuicConn*> pending_;
  std::vector<QuicConn*> died_;  // connections that died since the last sweep (connDied): freed there
  unsigned resetsThisTick_{0};
  MonotonicTime resetTick_{};
};

}  // namespace ugate::quic

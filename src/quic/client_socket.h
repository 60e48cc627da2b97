#pragma once
// ClientSocket: the UDP socket of one QUIC connection we open (a connected socket on an ephemeral
// port) and the PacketIo of that connection: it reads the socket into the connection, sends what
// the connection builds, flushes it at the end of each turn and frees it when it dies. Runs on one
// reactor. Owns its connection.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ugate/reactor.h>
#include <ugate/result.h>
#include <ugate/socket_address.h>

#include "quic/quic_conn.h"
#include "quic/tx_queue.h"

namespace ugate::quic {

class ClientSocket final : public PacketIo, private IoWatcher {
 public:
  /** kRefused: the reason a connection ends with when ICMP says the server's port is closed. */
  static const char kRefused[];
  /**
   * open makes a UDP socket connected to server (non-blocking, on r). worker: the core worker when
   * inside ugated (sessions, log budget), else null. counters must outlive the socket.
   */
  static Result<std::unique_ptr<ClientSocket>> open(Reactor& r, QuicCounters& counters, const SocketAddress& server,
                                                    WorkerContext* worker = nullptr);
  ~ClientSocket() override;

  /** connect creates the connection (p.path is filled in) and sends its first flight. */
  Result<QuicConn*> connect(ClientParams p);
  /** conn: the connection, null before connect() and once it died and was freed. */
  QuicConn* conn() const { return conn_.get(); }
  const SocketAddress& local() const { return local_; }

  // PacketIo
  Reactor& reactor() override { return r_; }
  QuicCounters& counters() override { return counters_; }
  bool logBudget() override;
  uint8_t* txSlot() override;
  void send(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from) override;
  void sendEcn(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from, uint8_t ecn) override;
  void schedule(QuicConn* c) override;
  void connDied(QuicConn* c) override;
  void newCid(std::span<uint8_t, CidCodec::kLen> out) override;
  std::span<const uint8_t> resetSecret() override { return resetSecret_; }
  WorkerContext* worker() override { return worker_; }

 private:
  ClientSocket(Reactor& r, QuicCounters& counters, int fd, SocketAddress server, SocketAddress local,
               WorkerContext* worker);
  void onIoEvent(uint32_t events) override;
  void runPending();

  Reactor& r_;
  QuicCounters& counters_;
  int fd_;
  SocketAddress server_;
  SocketAddress local_;
  WorkerContext* worker_;
  std::unique_ptr<QuicConn> conn_;
  TxQueue tx_;             // packets built this turn, sent as GSO trains at its end
  uint8_t recvFlags_{0};   // udp::RecvFlags: TOS, and GRO when the kernel took it
  bool pending_{false};
  bool inRun_{false};      // inside runPending (which flushes tx_ when done)
  TimerPtr flushTimer_;
  std::array<uint8_t, 32> resetSecret_{};
};

}  // namespace ugate::quic

#pragma once
// TxQueue: the packets a socket's connections build in one turn, sent in batches. Packets are built
// back to back in an arena; consecutive packets to one path with the same size (the last may be
// shorter) form a train sent as one GSO message (UDP_SEGMENT), and the messages go out with one
// sendmmsg. Used by the listener's endpoint (many connections, one socket) and by a client socket
// (one connected socket). One thread.
#include <cstddef>
#include <cstdint>
#include <memory>

#include <ugate/datagram_io.h>
#include <ugate/socket_address.h>

namespace ugate::quic {

class TxQueue {
 public:
  /**
   * arenaBytes: packets built per flush at most (then sent). keepArena false: the arena is
   * allocated when a packet is built and freed by a flush of a few packets (a client socket:
   * nothing held idle, no allocation per flush during a bulk transfer).
   */
  explicit TxQueue(size_t arenaBytes, bool keepArena = true);

  /**
   * slot: room for one packet of up to maxPacket bytes, after flushing on fd when the arena or the
   * batch is full. push() commits it.
   */
  uint8_t* slot(int fd, size_t maxPacket);
  /**
   * push queues len bytes built in `slot` (the last slot() result) for `to` (from `from`: a source
   * address, or none), marked with the ECN codepoint `ecn` (0: not ECN-capable).
   */
  void push(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from, uint8_t ecn = 0);
  /** flush sends what is queued on fd. Returns whether the kernel just refused GSO (then it is off). */
  bool flush(int fd);
  bool empty() const { return cursor_ == 0; }

 private:
  void commitTrain();
  struct Train {
    bool open{false};
    bool closed{false};  // a shorter packet ended it
    size_t start{0};     // offset in arena_
    size_t bytes{0};
    size_t seg{0};
    unsigned count{0};
    uint8_t ecn{0};  // one codepoint per message (the TOS cmsg applies to every segment)
    SocketAddress to, from;
  };
  const size_t arenaBytes_;
  const bool keepArena_;
  udp::SendBatch tx_;
  std::unique_ptr<uint8_t[]> arena_;
  size_t cursor_{0};
  unsigned queued_{0};  // packets pushed since the last flush
  Train train_;
  bool gso_{true};  // off once the kernel refused a segmented send (EIO)
};

}  // namespace ugate::quic

// TxQueue (tx_queue.h): packet trains in an arena, sent as GSO messages with sendmmsg.
#include "quic/tx_queue.h"

namespace ugate::quic {

namespace {
constexpr unsigned kMaxSegments = 64;   // UDP_SEGMENT allows 64 segments per message
constexpr size_t kMaxGsoBytes = 65000;  // and one UDP payload's worth of bytes
constexpr unsigned kKeepArenaAbove = 8;  // packets per flush from which a client keeps its arena
}  // namespace

TxQueue::TxQueue(size_t arenaBytes, bool keepArena) : arenaBytes_(arenaBytes), keepArena_(keepArena) {
  if (keepArena_) arena_ = std::make_unique_for_overwrite<uint8_t[]>(arenaBytes_);
}

uint8_t* TxQueue::slot(int fd, size_t maxPacket) {
  if (cursor_ + maxPacket > arenaBytes_ || (tx_.full() && !train_.open) || (tx_.size() + 1 >= udp::kBatch)) flush(fd);
  if (!arena_) arena_ = std::make_unique_for_overwrite<uint8_t[]>(arenaBytes_);
  return arena_.get() + cursor_;
}

void TxQueue::push(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from, uint8_t ecn) {
  const size_t at = static_cast<size_t>(slot - arena_.get());  // == cursor_: slot() gave it
  Train& t = train_;
  const bool joins = gso_ && t.open && !t.closed && at == t.start + t.bytes && len <= t.seg &&
                     t.count < kMaxSegments && t.bytes + len <= kMaxGsoBytes && t.ecn == ecn && t.to == to &&
                     t.from == from;
  if (joins) {
    t.bytes += len;
    ++t.count;
    if (len < t.seg) t.closed = true;  // only the last segment may be shorter
  } else {
    commitTrain();
    t.open = true;
    t.closed = false;
    t.start = at;
    t.bytes = len;
    t.seg = len;
    t.count = 1;
    t.ecn = ecn;
    t.to = to;
    t.from = from;
  }
  cursor_ = at + len;
  ++queued_;
}

void TxQueue::commitTrain() {
  if (!train_.open) return;
  train_.open = false;
  tx_.addSegmented(arena_.get() + train_.start, train_.bytes,
                   train_.count > 1 ? static_cast<uint16_t>(train_.seg) : 0, train_.to, train_.from, train_.ecn);
}

bool TxQueue::flush(int fd) {
  commitTrain();
  bool refused = false;
  if (tx_.size() > 0) {
    udp::SendBatch::Outcome o = tx_.flush(fd);
    if (o.gsoRefused && gso_) {
      gso_ = false;
      refused = true;
    }
  }
  cursor_ = 0;
  // A client socket frees its arena when traffic is light (an idle connection's ACK or PING), and
  // keeps it through a bulk transfer instead of allocating it again for every flush.
  if (!keepArena_ && queued_ < kKeepArenaAbove) arena_.reset();
  queued_ = 0;
  return refused;
}

}  // namespace ugate::quic

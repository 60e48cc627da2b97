#pragma once
// SendBuffer: a QUIC stream's outgoing bytes. ngtcp2 and nghttp3 do not copy stream data: they point
// into it until the peer acknowledges it (a lost packet is rebuilt from the same bytes). So bytes
// stay in fixed blocks that never move, in three parts: acknowledged (freed), handed to the stack
// (kept for retransmission), and not yet handed.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace ugate::quic {

/** ByteVec: one contiguous piece (layout-compatible use with ngtcp2_vec / nghttp3_vec by the caller). */
struct ByteVec {
  const uint8_t* base;
  size_t len;
};

class SendBuffer {
 public:
  static constexpr size_t kBlock = 16 * 1024;

  /** size: bytes not yet acknowledged (handed + unhanded): what counts against the stream's cap. */
  size_t size() const { return end_ - acked_; }
  /** unhanded: bytes not yet given to the stack. */
  size_t unhanded() const { return end_ - handed_; }
  uint64_t handedOffset() const { return handed_; }

  void append(const uint8_t* p, size_t n) {
    while (n > 0) {
      // inBlock: bytes used in the last block.
      size_t inBlock = blocks_.empty() ? kBlock : static_cast<size_t>(end_ - base_ - (blocks_.size() - 1) * kBlock);
      if (inBlock == kBlock) {
        // A block the stream freed before (acknowledged), else a new one; never zero-filled:
        // every byte of it is written before it is read.
        blocks_.push_back(spare_ ? std::move(spare_) : std::make_unique_for_overwrite<uint8_t[]>(kBlock));
        inBlock = 0;
      }
      size_t take = n < kBlock - inBlock ? n : kBlock - inBlock;
      std::memcpy(blocks_.back().get() + inBlock, p, take);
      p += take;
      n -= take;
      end_ += take;
    }
  }

  /**
   * peek fills up to maxv pieces of unhanded bytes, in order; returns how many. The pointers stay
   * valid until those bytes are acknowledged.
   */
  size_t peek(ByteVec* v, size_t maxv) const {
    size_t k = 0;
    uint64_t off = handed_;
    while (k < maxv && off < end_) {
      const uint64_t rel = off - base_;
      const size_t bi = static_cast<size_t>(rel / kBlock);
      const size_t within = static_cast<size_t>(rel % kBlock);
      const uint64_t blockEnd = base_ + (bi + 1) * kBlock;
      const size_t len = static_cast<size_t>((end_ < blockEnd ? end_ : blockEnd) - off);
      v[k++] = ByteVec{blocks_[bi].get() + within, len};
      off += len;
    }
    return k;
  }

  /**
   * peekInto fills up to maxv (at most 16) pieces into `out`, an array of ngtcp2_vec or
   * nghttp3_vec (both {uint8_t* base; size_t len}); returns how many, and their bytes in `total`.
   */
  template <class Vec>
  size_t peekInto(Vec* out, size_t maxv, size_t& total) const {
    ByteVec tmp[16];
    const size_t n = peek(tmp, maxv < 16 ? maxv : 16);
    total = 0;
    for (size_t i = 0; i < n; ++i) {
      out[i].base = const_cast<uint8_t*>(tmp[i].base);
      out[i].len = tmp[i].len;
      total += tmp[i].len;
    }
    return n;
  }

  /** hand: n bytes (from the front of the unhanded part) were given to the stack. */
  void hand(size_t n) { handed_ += n; }
  /** rewind: the stack gave back bytes it had been handed (a stream reset): none are pending now. */
  void unhandAll() { handed_ = acked_; }

  /** ack: the peer acknowledged n more bytes (in order from the front); whole blocks are freed. */
  void ack(size_t n) {
    acked_ += n;
    while (!blocks_.empty() && acked_ - base_ >= kBlock) {
      // Keep one acknowledged block for the next append (a bulk transfer then allocates nothing).
      if (!spare_) spare_ = std::move(blocks_.front());
      blocks_.erase(blocks_.begin());  // a few pointers move: a stream holds ≤ 21 blocks
      base_ += kBlock;
    }
    if (acked_ == end_) {  // everything acknowledged: an idle stream holds no block at all
      blocks_.clear();
      spare_.reset();
      base_ = end_ = acked_;
      handed_ = acked_;
    }
  }

  void clear() {
    blocks_.clear();
    spare_.reset();
    base_ = acked_ = handed_ = end_;
  }

 private:
  // A vector, not a deque: it allocates nothing until the first block (a deque allocates a 512-byte
  // node and its map up front, for every stream, idle or not).
  std::vector<std::unique_ptr<uint8_t[]>> blocks_;
  std::unique_ptr<uint8_t[]> spare_;  // one acknowledged block kept for reuse while data flows
  uint64_t base_{0};    // stream offset of blocks_.front()[0]
  uint64_t acked_{0};   // stream offset acknowledged up to
  uint64_t handed_{0};  // stream offset handed to the stack up to
  uint64_t end_{0};     // stream offset of the next byte appended
};

}  // namespace ugate::quic

#pragma once
// Byte containers of the HTTP/2 data path: ChunkQueue, a FIFO of bytes in 16 KiB blocks that come
// from (and go back to) a ChunkPool, so a busy stream reuses the same few blocks and an idle one
// holds none; and ByteBuf, a growable contiguous buffer for batched transport output.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace ugate::http {

/** ChunkBlock: one pooled block; bytes [begin, end) of data are live. */
struct ChunkBlock {
  static constexpr size_t kCapacity = 16 * 1024 - sizeof(void*) - 2 * sizeof(uint32_t);
  ChunkBlock* next{nullptr};
  uint32_t begin{0};
  uint32_t end{0};
  uint8_t data[kCapacity];
};

/**
 * ChunkPool: free blocks kept for reuse, at most maxFree of them (the rest are freed). Single
 * thread; owned by one connection.
 */
class ChunkPool {
 public:
  explicit ChunkPool(size_t maxFree) : maxFree_(maxFree) {}
  ~ChunkPool() { trim(); }
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;

  ChunkBlock* get();
  void put(ChunkBlock* b);
  /** trim frees every pooled block (e.g. when the connection goes idle). */
  void trim();
  size_t pooled() const { return nfree_; }

 private:
  ChunkBlock* free_{nullptr};
  size_t nfree_{0};
  size_t maxFree_;
};

/**
 * ChunkQueue: a byte FIFO. Blocks come from the pool given to setPool(), or from the heap when it
 * is null (a stream that outlived its connection). Appending copies once; reading copies out once.
 */
class ChunkQueue {
 public:
  ChunkQueue() = default;
  ~ChunkQueue() { clear(); }
  ChunkQueue(const ChunkQueue&) = delete;
  ChunkQueue& operator=(const ChunkQueue&) = delete;

  void setPool(ChunkPool* p) { pool_ = p; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void append(const uint8_t* p, size_t n);
  /** read copies up to n bytes to out and drops them; returns the count. */
  size_t read(uint8_t* out, size_t n);
  /** clear drops every byte (blocks go back to the pool). */
  void clear();

 private:
  void release(ChunkBlock* b);

  ChunkPool* pool_{nullptr};
  ChunkBlock* head_{nullptr};
  ChunkBlock* tail_{nullptr};
  size_t size_{0};
};

/** ByteBuf: contiguous bytes [off, off+len) in a buffer that grows by doubling and is never zeroed. */
class ByteBuf {
 public:
  uint8_t* data() { return buf_.get() + off_; }
  size_t size() const { return len_; }
  bool empty() const { return len_ == 0; }
  size_t capacity() const { return cap_; }
  void append(const uint8_t* p, size_t n);
  /** tail returns room for n more bytes at the end; commit(n) then makes them live. */
  uint8_t* tail(size_t n);
  void commit(size_t n) { len_ += n; }
  void consume(size_t n);
  void clear() { off_ = len_ = 0; }
  /** reset frees the memory. */
  void reset();

 private:
  std::unique_ptr<uint8_t[]> buf_;
  size_t cap_{0};
  size_t off_{0};
  size_t len_{0};
};

}  // namespace ugate::http

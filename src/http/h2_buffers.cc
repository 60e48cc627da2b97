#include "http/h2_buffers.h"

#include <algorithm>
#include <cstring>

namespace ugate::http {

ChunkBlock* ChunkPool::get() {
  if (free_ == nullptr) return new ChunkBlock;
  ChunkBlock* b = free_;
  free_ = b->next;
  --nfree_;
  b->next = nullptr;
  b->begin = b->end = 0;
  return b;
}

void ChunkPool::put(ChunkBlock* b) {
  if (nfree_ >= maxFree_) {
    delete b;
    return;
  }
  b->next = free_;
  free_ = b;
  ++nfree_;
}

void ChunkPool::trim() {
  while (free_ != nullptr) {
    ChunkBlock* b = free_;
    free_ = b->next;
    delete b;
  }
  nfree_ = 0;
}

void ChunkQueue::release(ChunkBlock* b) {
  if (pool_ != nullptr) {
    pool_->put(b);
  } else {
    delete b;
  }
}

void ChunkQueue::append(const uint8_t* p, size_t n) {
  size_ += n;
  while (n > 0) {
    if (tail_ == nullptr || tail_->end == ChunkBlock::kCapacity) {
      ChunkBlock* b = pool_ != nullptr ? pool_->get() : new ChunkBlock;
      b->next = nullptr;
      b->begin = b->end = 0;
      if (tail_ != nullptr) {
        tail_->next = b;
      } else {
        head_ = b;
      }
      tail_ = b;
    }
    size_t k = std::min(n, ChunkBlock::kCapacity - tail_->end);
    memcpy(tail_->data + tail_->end, p, k);
    tail_->end += static_cast<uint32_t>(k);
    p += k;
    n -= k;
  }
}

size_t ChunkQueue::read(uint8_t* out, size_t n) {
  size_t done = 0;
  while (done < n && head_ != nullptr) {
    size_t k = std::min(n - done, static_cast<size_t>(head_->end - head_->begin));
    memcpy(out + done, head_->data + head_->begin, k);
    head_->begin += static_cast<uint32_t>(k);
    done += k;
    if (head_->begin == head_->end) {
      ChunkBlock* b = head_;
      head_ = b->next;
      if (head_ == nullptr) tail_ = nullptr;
      release(b);
    }
  }
  size_ -= done;
  return done;
}

void ChunkQueue::clear() {
  while (head_ != nullptr) {
    ChunkBlock* b = head_;
    head_ = b->next;
    release(b);
  }
  tail_ = nullptr;
  size_ = 0;
}

uint8_t* ByteBuf::tail(size_t n) {
  if (off_ + len_ + n > cap_) {
    if (len_ + n <= cap_ && off_ > 0) {
      memmove(buf_.get(), buf_.get() + off_, len_);  // room at the front: slide down
    } else {
      size_t cap = std::max<size_t>(cap_ * 2, std::max<size_t>(len_ + n, 4096));
      std::unique_ptr<uint8_t[]> nb(new uint8_t[cap]);
      if (len_ > 0) memcpy(nb.get(), buf_.get() + off_, len_);
      buf_ = std::move(nb);
      cap_ = cap;
    }
    off_ = 0;
  }
  return buf_.get() + off_ + len_;
}

void ByteBuf::append(const uint8_t* p, size_t n) {
  if (n == 0) return;
  memcpy(tail(n), p, n);
  len_ += n;
}

void ByteBuf::consume(size_t n) {
  n = std::min(n, len_);
  off_ += n;
  len_ -= n;
  if (len_ == 0) off_ = 0;
}

void ByteBuf::reset() {
  buf_.reset();
  cap_ = off_ = len_ = 0;
}

}  // namespace ugate::http

#include "core/timer_queue.h"

namespace ugate {

TimerImpl::~TimerImpl() { disable(); }
void TimerImpl::enable(Duration d) { q_.schedule(this, q_.now() + d); }
void TimerImpl::enableAt(MonotonicTime t) { q_.schedule(this, t); }
void TimerImpl::disable() {
  if (heapIndex_ != kNotQueued) {
    q_.remove(this);
  }
}

std::optional<MonotonicTime> TimerQueue::nextExpiry() const {
  if (heap_.empty()) {
    return std::nullopt;
  }
  return heap_[0]->when_;
}

void TimerQueue::schedule(TimerImpl* t, MonotonicTime when) {
  if (t->heapIndex_ != TimerImpl::kNotQueued) {
    remove(t);
  }
  t->when_ = when;
  t->seq_ = ++seq_;
  heap_.push_back(t);
  t->heapIndex_ = heap_.size() - 1;
  siftUp(heap_.size() - 1);
}

void TimerQueue::remove(TimerImpl* t) {
  size_t i = t->heapIndex_;
  t->heapIndex_ = TimerImpl::kNotQueued;
  TimerImpl* last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) {
    return;  // it was the last element
  }
  place(i, last);
  if (i > 0 && less(last, heap_[(i - 1) / 4])) {
    siftUp(i);
  } else {
    siftDown(i);
  }
}

void TimerQueue::siftUp(size_t i) {
  TimerImpl* t = heap_[i];
  while (i > 0) {
    size_t parent = (i - 1) / 4;
    if (!less(t, heap_[parent])) {
      break;
    }
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, t);
}

void TimerQueue::siftDown(size_t i) {
  TimerImpl* t = heap_[i];
  const size_t n = heap_.size();
  for (;;) {
    size_t first = 4 * i + 1;
    if (first >= n) {
      break;
    }
    size_t best = first;
    size_t end = first + 4 < n ? first + 4 : n;
    for (size_t c = first + 1; c < end; ++c) {
      if (less(heap_[c], heap_[best])) {
        best = c;
      }
    }
    if (!less(heap_[best], t)) {
      break;
    }
    place(i, heap_[best]);
    i = best;
  }
  place(i, t);
}

size_t TimerQueue::runExpired(MonotonicTime now, size_t maxRun) {
  now_ = now;
  size_t fired = 0;
  while (fired < maxRun && !heap_.empty() && heap_[0]->when_ <= now) {
    TimerImpl* t = heap_[0];
    remove(t);
    ++fired;
    // The callback may destroy t: copy nothing from t after this call.
    t->cb_();
  }
  return fired;
}

}  // namespace ugate

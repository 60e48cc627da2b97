#include "xds/decode_thread.h"

#include <pthread.h>

namespace ugate::xds {

bool ReactorLink::post(std::function<void()> fn) {
  std::lock_guard<std::mutex> l(mu_);
  if (!r_) return false;
  r_->post(std::move(fn));
  return true;
}

void ReactorLink::cut() {
  std::lock_guard<std::mutex> l(mu_);
  r_ = nullptr;
}

bool ReactorLink::alive() {
  std::lock_guard<std::mutex> l(mu_);
  return r_ != nullptr;
}

DecodeThread::~DecodeThread() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void DecodeThread::run(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    queue_.push_back(std::move(job));
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  }
  cv_.notify_one();
}

void DecodeThread::loop() {
  pthread_setname_np(pthread_self(), "ugate-xdsdecode");
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

}  // namespace ugate::xds

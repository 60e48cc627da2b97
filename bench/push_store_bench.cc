// push_store_bench: messages/s the push store commits durably (src/webpush/push_store.h), group
// commit against one transaction (one fsync) per message, same run, same disk.
//
//   build/bench/push_store_bench [DIR] [SECONDS]    (DIR: where the store files go; default /tmp)
//
// W writer threads (the HTTP side of the push service: each accepted message becomes a put whose
// completion would send the 201) keep up to 64 puts each in flight for SECONDS; counted are puts
// whose completion came back committed. Modes: sync full and normal, with group commit (up to 512
// per transaction) and with one message per transaction. Each message: a 3 KiB body (a typical
// encrypted payload), a TTL, no topic. Not a test: nothing is asserted.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "webpush/push_store.h"

using namespace ugate::webpush;

namespace {

struct Outcome {
  double perSecond{0};
  uint64_t commits{0};
  double meanBatch{0};
  double meanCommitMs{0};
};

Outcome run(const std::string& dir, SyncMode sync, size_t maxBatch, int seconds, int writers) {
  const std::string path = dir + "/push_store_bench." + std::to_string(getpid()) + ".db";
  unlink(path.c_str());
  auto st = PushStore::open(path, sync, maxBatch);
  if (!st) {
    fprintf(stderr, "%s\n", st.error().detail.c_str());
    exit(1);
  }
  PushStore& s = **st;
  Subscription sub;
  sub.id = "bench";
  sub.token = "bench-token";
  std::mutex mu;
  std::condition_variable cv;
  bool added = false;
  s.addSubscription(sub, [&](ugate::Result<void>) {
    std::lock_guard<std::mutex> l(mu);
    added = true;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return added; });
  }
  const std::string body(3072, 'x');
  std::atomic<uint64_t> committed{0};
  std::atomic<bool> stop{false};
  const uint64_t commits0 = s.stats().commits.load();
  const uint64_t ops0 = s.stats().operations.load();
  const uint64_t micros0 = s.stats().commitMicrosTotal.load();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      // Up to 64 puts in flight; the writer sleeps on the semaphore (no spinning: the store thread
      // needs the CPU).
      std::counting_semaphore<64> slots(64);
      std::atomic<int> inFlight{0};
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!slots.try_acquire_for(std::chrono::milliseconds(50))) continue;
        StoredMessage m;
        m.id = std::to_string(w) + "-" + std::to_string(n++);
        m.subscription = "bench";
        m.ttlSeconds = 3600;
        m.expiresMs = 1LL << 50;
        m.encoding = "aes128gcm";
        m.body = body;
        inFlight.fetch_add(1);
        s.put(std::move(m), [&](ugate::Result<int64_t> r) {
          if (r) committed.fetch_add(1, std::memory_order_relaxed);
          slots.release();  // before the count: the writer leaves (and its semaphore goes) at 0
          inFlight.fetch_sub(1);
        });
      }
      while (inFlight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Outcome o;
  o.perSecond = static_cast<double>(committed.load()) / secs;
  o.commits = s.stats().commits.load() - commits0;
  const uint64_t ops = s.stats().operations.load() - ops0;
  o.meanBatch = o.commits ? static_cast<double>(ops) / static_cast<double>(o.commits) : 0;
  o.meanCommitMs = o.commits ? static_cast<double>(s.stats().commitMicrosTotal.load() - micros0) / 1000.0 /
                                   static_cast<double>(o.commits)
                             : 0;
  st->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) unlink((path + suffix).c_str());
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/tmp";
  const int seconds = argc > 2 ? atoi(argv[2]) : 3;
  const int writers = 4;
  printf("| mode | messages/s committed | commits | mean batch | mean commit ms |\n|---|---|---|---|---|\n");
  for (SyncMode sync : {SyncMode::Full, SyncMode::Normal}) {
    for (size_t batch : {PushStore::kMaxBatch, size_t{1}}) {
      Outcome o = run(dir, sync, batch, seconds, writers);
      printf("| sync %s, %s | %.0f | %llu | %.1f | %.2f |\n", sync == SyncMode::Full ? "full" : "normal",
             batch == 1 ? "one message per transaction" : "group commit", o.perSecond,
             static_cast<unsigned long long>(o.commits), o.meanBatch, o.meanCommitMs);
      fflush(stdout);
    }
  }
  return 0;
}

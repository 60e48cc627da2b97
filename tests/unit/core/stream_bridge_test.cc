// StreamBridge across two reactor threads: both directions at once with backpressure (a ring much
// smaller than the transfer), every byte verified, FIN in each direction, and abort as a reset.
// Ring storage: none while idle, held while bytes are in flight, released once drained and idle,
// over many send/drain cycles and under concurrent random-size transfers.
#include <ugate/stream_bridge.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

namespace ugate {
namespace {

uint8_t patternByte(uint64_t i, uint8_t seed) { return static_cast<uint8_t>((i * 131 + seed) ^ (i >> 9)); }

// Pump: on its reactor thread, writes `toSend` pattern bytes then FIN, and reads until EOF,
// checking the peer's pattern and an FNV-1a checksum of each direction. The hooks let RandomPump
// vary the sizes and hold off reading or writing for a while.
struct Pump : StreamCallbacks {
  Pump(Stream& stream, uint64_t bytes, uint8_t mySeed, uint8_t peerSeed)
      : s(stream), toSend(bytes), sendSeed(mySeed), recvSeed(peerSeed) {}
  virtual ~Pump() = default;
  Stream& s;
  uint64_t toSend, sent = 0, received = 0;
  uint8_t sendSeed, recvSeed;
  bool finSent = false, eof = false, corrupt = false;
  int err = 0;
  uint64_t eagainWrites = 0;
  uint64_t sentSum = kFnvBasis, recvSum = kFnvBasis;
  std::promise<void> done;
  bool reported = false;

  static constexpr uint64_t kFnvBasis = 1469598103934665603ull;
  static void fnv(uint64_t& h, uint8_t b) { h = (h ^ b) * 1099511628211ull; }
  static constexpr size_t kMaxRead = 9000, kMaxWrite = 20000;
  virtual size_t nextReadSize() { return 7919; }  // odd size: reads straddle the ring's wrap point
  virtual size_t nextWriteSize() { return 5003; }
  virtual bool holdReads() { return false; }   // asked before each read
  virtual bool holdWrites() { return false; }  // asked before each write

  void onStreamReadable(Stream&) override {
    uint8_t buf[kMaxRead];
    while (!eof && err == 0 && !holdReads()) {
      IoResult r = s.read(buf, nextReadSize());
      if (r.wouldBlock()) break;
      if (!r.ok()) {
        err = r.err;
        break;
      }
      if (r.value == 0) {
        eof = true;
        break;
      }
      for (int64_t i = 0; i < r.value; ++i) {
        if (buf[i] != patternByte(received + static_cast<uint64_t>(i), recvSeed)) corrupt = true;
        fnv(recvSum, buf[i]);
      }
      received += static_cast<uint64_t>(r.value);
    }
    check();
  }
  void onStreamWritable(Stream&) override {
    uint8_t buf[kMaxWrite];
    while (sent < toSend && err == 0 && !holdWrites()) {
      size_t n = std::min<uint64_t>(nextWriteSize(), toSend - sent);
      for (size_t i = 0; i < n; ++i) buf[i] = patternByte(sent + i, sendSeed);
      IoResult w = s.write(buf, n);
      if (w.wouldBlock()) {
        ++eagainWrites;
        break;
      }
      if (!w.ok()) {
        err = w.err;
        break;
      }
      for (int64_t i = 0; i < w.value; ++i) fnv(sentSum, buf[i]);
      sent += static_cast<uint64_t>(w.value);
    }
    if (sent == toSend && !finSent) {
      finSent = true;
      s.shutdownWrite();
    }
    check();
  }
  void check() {
    if (!reported && ((eof && finSent) || err != 0)) {
      reported = true;
      done.set_value();
    }
  }
};

struct Side {
  ReactorPtr reactor = newReactor(realTimeSource(), 0);
  std::thread thread;
  void run() {
    thread = std::thread([this] { reactor->run(); });
  }
  void stop() {
    reactor->post([r = reactor.get()] { r->exit(); });
    thread.join();
  }
};

TEST(StreamBridgeTest, BothDirectionsWithBackpressureEveryByteAndFin) {
  Side a, b;
  auto [ea, eb] = makeStreamBridge(*a.reactor, *b.reactor, 4096);
  const uint64_t kBytes = 8u << 20;
  Pump pa(*ea, kBytes, 1, 2), pb(*eb, kBytes / 2, 2, 1);
  auto fa = pa.done.get_future();
  auto fb = pb.done.get_future();
  a.run();
  b.run();
  a.reactor->post([&] {
    ea->setCallbacks(&pa);
    pa.onStreamWritable(*ea);
    pa.onStreamReadable(*ea);
  });
  b.reactor->post([&] {
    eb->setCallbacks(&pb);
    pb.onStreamWritable(*eb);
    pb.onStreamReadable(*eb);
  });
  ASSERT_EQ(fa.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  ASSERT_EQ(fb.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  // Destroy each end on its own thread.
  std::promise<void> ga, gb;
  a.reactor->post([&] { ea.reset(); ga.set_value(); });
  b.reactor->post([&] { eb.reset(); gb.set_value(); });
  ga.get_future().wait();
  gb.get_future().wait();
  a.stop();
  b.stop();
  EXPECT_EQ(pa.err, 0);
  EXPECT_EQ(pb.err, 0);
  EXPECT_EQ(pb.received, kBytes);
  EXPECT_EQ(pa.received, kBytes / 2);
  EXPECT_FALSE(pa.corrupt);
  EXPECT_FALSE(pb.corrupt);
  EXPECT_TRUE(pa.eof);
  EXPECT_TRUE(pb.eof);
  EXPECT_GT(pa.eagainWrites, 0u);  // a 4 KiB ring cannot take 8 MiB at once: backpressure happened
}

TEST(StreamBridgeTest, AbortResetsThePeerAndDestroyingFirstIsSafe) {
  Side a, b;
  auto [ea, eb] = makeStreamBridge(*a.reactor, *b.reactor, 4096);
  Pump pb(*eb, 1u << 20, 2, 1);
  auto fb = pb.done.get_future();
  a.run();
  b.run();
  b.reactor->post([&] {
    eb->setCallbacks(&pb);
    pb.onStreamWritable(*eb);
  });
  std::promise<void> ga;
  a.reactor->post([&] {
    ea->close(true);  // the peer must see a reset, not a clean EOF
    ea.reset();
    ga.set_value();
  });
  ga.get_future().wait();
  ASSERT_EQ(fb.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  std::promise<void> gb;
  b.reactor->post([&] { eb.reset(); gb.set_value(); });
  gb.get_future().wait();
  a.stop();
  b.stop();
  EXPECT_EQ(pb.err, ECONNRESET);
}


// ---------------------------------------------------------------------------------------------
// Ring storage: allocated on the first write, released once the direction is drained and idle.

template <typename F>
void onThread(Reactor& r, F&& fn) {
  std::promise<void> p;
  r.post([&] {
    fn();
    p.set_value();
  });
  p.get_future().wait();
}

// eventually polls pred until it holds; false after 20 s (a bound, not a timing assertion).
bool eventually(const std::function<bool()>& pred) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Two running reactors and a bridge with a 4 KiB ring that releases after 1 ms of idleness.
struct BridgePair {
  Side a, b;
  StreamPtr ea, eb;
  BridgePair() {
    std::tie(ea, eb) = makeStreamBridge(*a.reactor, *b.reactor, kCap, Duration(1));
    a.run();
    b.run();
  }
  ~BridgePair() {
    onThread(*a.reactor, [&] { ea.reset(); });
    onThread(*b.reactor, [&] { eb.reset(); });
    a.stop();
    b.stop();
  }
  // send writes the pattern bytes [from, from+n) on a (they fit: the ring is empty or has room).
  int64_t send(uint64_t from, size_t n) {
    std::vector<uint8_t> buf(n);
    for (size_t i = 0; i < n; ++i) buf[i] = patternByte(from + i, 1);
    IoResult w;
    onThread(*a.reactor, [&] { w = ea->write(buf.data(), n); });
    return w.ok() ? w.value : -w.err;
  }
  // drain reads on b until EAGAIN or EOF; returns the bytes; `ok` turns false on a wrong byte.
  uint64_t drain(uint64_t from, bool& ok, bool* eof = nullptr) {
    uint64_t got = 0;
    onThread(*b.reactor, [&] {
      uint8_t buf[kCap];
      for (;;) {
        IoResult r = eb->read(buf, sizeof(buf));
        if (!r.ok() || r.value == 0) {
          if (eof != nullptr) *eof = r.ok();
          break;
        }
        for (int64_t i = 0; i < r.value; ++i) {
          ok = ok && buf[i] == patternByte(from + got + static_cast<uint64_t>(i), 1);
        }
        got += static_cast<uint64_t>(r.value);
      }
    });
    return got;
  }
  size_t sending() const { return streamBridgeStorageForTest(*ea).sending; }
  static constexpr size_t kCap = 4096;
};

TEST(StreamBridgeTest, NoStorageWhileIdleHeldWhileBytesAreInFlightReleasedWhenDrained) {
  StreamBridgeStats& st = streamBridgeStats();
  const int64_t bytes0 = st.bufferBytes.load();
  const int64_t bridges0 = st.bridges.load();
  {
    BridgePair p;
    EXPECT_EQ(st.bridges.load(), bridges0 + 1);
    // Opened, nothing written: no storage either way, seen from either end.
    EXPECT_EQ(streamBridgeStorageForTest(*p.ea).sending, 0u);
    EXPECT_EQ(streamBridgeStorageForTest(*p.ea).receiving, 0u);
    EXPECT_EQ(streamBridgeStorageForTest(*p.eb).sending, 0u);
    EXPECT_EQ(st.bufferBytes.load(), bytes0);
    bool ok = true;
    EXPECT_EQ(p.drain(0, ok), 0u);  // an empty read allocates nothing either

    uint64_t pos = 0;
    for (size_t n : {1000u, 3000u}) {  // the second round starts mid-ring, in fresh storage
      ASSERT_EQ(p.send(pos, n), static_cast<int64_t>(n));
      EXPECT_EQ(p.sending(), BridgePair::kCap);
      EXPECT_EQ(streamBridgeStorageForTest(*p.eb).receiving, BridgePair::kCap);
      EXPECT_EQ(streamBridgeStorageForTest(*p.eb).sending, 0u);  // the other direction stays idle
      EXPECT_EQ(st.bufferBytes.load(), bytes0 + static_cast<int64_t>(BridgePair::kCap));
      // Unread bytes keep their storage however long they wait (many 1 ms idle ticks here).
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      EXPECT_EQ(p.sending(), BridgePair::kCap);
      EXPECT_EQ(p.drain(pos, ok), n);
      EXPECT_TRUE(ok);
      pos += n;
      // The storage goes first, the gauge right after it (on a's thread).
      ASSERT_TRUE(eventually([&] { return p.sending() == 0 && st.bufferBytes.load() == bytes0; }));
    }
  }
  EXPECT_EQ(st.bufferBytes.load(), bytes0);
  EXPECT_EQ(st.bridges.load(), bridges0);
}

TEST(StreamBridgeTest, ManySendDrainCyclesKeepEveryByte) {
  StreamBridgeStats& st = streamBridgeStats();
  const int64_t bytes0 = st.bufferBytes.load();
  const uint64_t allocs0 = st.bufferAllocs.load();
  uint64_t waits = 0;
  {
    BridgePair p;
    std::mt19937 rng(7);
    uint64_t pos = 0;
    bool ok = true;
    for (int cycle = 0; cycle < 300; ++cycle) {
      const size_t n = 1 + rng() % BridgePair::kCap;  // up to a full ring, across the wrap point
      ASSERT_EQ(p.send(pos, n), static_cast<int64_t>(n)) << "cycle " << cycle;
      ASSERT_EQ(p.drain(pos, ok), n) << "cycle " << cycle;
      ASSERT_TRUE(ok) << "cycle " << cycle;
      pos += n;
      // Every third cycle waits for the release; the others write again at once, racing the
      // release tick (either the old storage or a new one takes the bytes).
      if (cycle % 3 == 0) {
        ASSERT_TRUE(eventually([&] { return p.sending() == 0; })) << "cycle " << cycle;
        ++waits;
      }
    }
    ASSERT_TRUE(eventually([&] { return p.sending() == 0; }));
  }
  EXPECT_GE(st.bufferAllocs.load() - allocs0, waits);
  EXPECT_EQ(st.bufferBytes.load(), bytes0);
}

TEST(StreamBridgeTest, ConsumerGoneReleasesUnreadBytes) {
  StreamBridgeStats& st = streamBridgeStats();
  const int64_t bytes0 = st.bufferBytes.load();
  BridgePair p;
  ASSERT_EQ(p.send(0, 1000), 1000);
  onThread(*p.b.reactor, [&] { p.eb.reset(); });  // destroyed without reading: an abort
  ASSERT_TRUE(eventually([&] { return st.bufferBytes.load() == bytes0; }));
  EXPECT_EQ(p.sending(), 0u);
  EXPECT_EQ(p.send(1000, 10), -ECONNRESET);
  EXPECT_EQ(p.sending(), 0u);  // a refused write allocates nothing
}

TEST(StreamBridgeTest, ProducerGoneLeavesItsBytesReadableThenTheyGoWithThePair) {
  StreamBridgeStats& st = streamBridgeStats();
  const int64_t bytes0 = st.bufferBytes.load();
  {
    BridgePair p;
    ASSERT_EQ(p.send(0, 1000), 1000);
    onThread(*p.a.reactor, [&] {
      p.ea->close(false);
      p.ea.reset();
    });
    EXPECT_EQ(st.bufferBytes.load(), bytes0 + static_cast<int64_t>(BridgePair::kCap));
    bool ok = true, eof = false;
    EXPECT_EQ(p.drain(0, ok, &eof), 1000u);
    EXPECT_TRUE(ok);
    EXPECT_TRUE(eof);
  }
  EXPECT_EQ(st.bufferBytes.load(), bytes0);
}

// RandomPump: a Pump with random write and read sizes. Every 25th write it stops until its
// outgoing ring was released (the peer keeps draining), so storage is freed and allocated again
// mid-transfer; now and then the reader pauses for a few ms.
struct RandomPump : Pump {
  RandomPump(Reactor& r, Stream& stream, uint64_t bytes, uint8_t mySeed, uint8_t peerSeed,
             uint32_t rngSeed)
      : Pump(stream, bytes, mySeed, peerSeed), reactor(r), rng(rngSeed) {}
  Reactor& reactor;
  std::mt19937 rng;
  uint64_t writes = 0, releaseWaits = 0;
  bool waitingRelease = false, readPaused = false;
  TimerPtr releasePoll, readPause;

  size_t nextReadSize() override { return 1 + rng() % kMaxRead; }
  size_t nextWriteSize() override { return 1 + rng() % kMaxWrite; }
  bool holdReads() override {
    if (!readPaused && rng() % 32 == 0) {
      readPaused = true;
      readPause->enable(Duration(1 + rng() % 3));
    }
    return readPaused;
  }
  bool holdWrites() override {
    if (!waitingRelease && ++writes % 25 == 0) {
      waitingRelease = true;  // resumed by releasePoll once the ring's storage is gone
      releasePoll->enable(Duration(1));
    }
    return waitingRelease;
  }

  // start runs on the pump's reactor thread.
  void start() {
    releasePoll = reactor.createTimer([this] {
      if (streamBridgeStorageForTest(s).sending != 0) {
        releasePoll->enable(Duration(1));
        return;
      }
      ++releaseWaits;
      waitingRelease = false;
      onStreamWritable(s);
    });
    readPause = reactor.createTimer([this] {
      readPaused = false;
      onStreamReadable(s);
    });
    s.setCallbacks(this);
    onStreamWritable(s);
    onStreamReadable(s);
  }
  void stopTimers() {
    releasePoll.reset();
    readPause.reset();
  }
};

TEST(StreamBridgeTest, ConcurrentRandomSizesWithReleasesMidTransferEveryByteChecked) {
  StreamBridgeStats& st = streamBridgeStats();
  const int64_t bytes0 = st.bufferBytes.load();
  const uint64_t allocs0 = st.bufferAllocs.load();
  Side a, b;
  auto [ea, eb] = makeStreamBridge(*a.reactor, *b.reactor, 4096, Duration(1));
  RandomPump pa(*a.reactor, *ea, 3u << 20, 1, 2, 11), pb(*b.reactor, *eb, 2u << 20, 2, 1, 12);
  auto fa = pa.done.get_future();
  auto fb = pb.done.get_future();
  a.run();
  b.run();
  a.reactor->post([&] { pa.start(); });
  b.reactor->post([&] { pb.start(); });
  ASSERT_EQ(fa.wait_for(std::chrono::seconds(120)), std::future_status::ready);
  ASSERT_EQ(fb.wait_for(std::chrono::seconds(120)), std::future_status::ready);
  onThread(*a.reactor, [&] {
    pa.stopTimers();
    ea.reset();
  });
  onThread(*b.reactor, [&] {
    pb.stopTimers();
    eb.reset();
  });
  a.stop();
  b.stop();
  EXPECT_EQ(pa.err, 0);
  EXPECT_EQ(pb.err, 0);
  EXPECT_EQ(pb.received, 3u << 20);
  EXPECT_EQ(pa.received, 2u << 20);
  EXPECT_FALSE(pa.corrupt);
  EXPECT_FALSE(pb.corrupt);
  EXPECT_EQ(pa.sentSum, pb.recvSum);
  EXPECT_EQ(pb.sentSum, pa.recvSum);
  EXPECT_TRUE(pa.eof);
  EXPECT_TRUE(pb.eof);
  // Each pause for a release was followed by more writes: a new allocation each, plus the first.
  EXPECT_GT(pa.releaseWaits, 0u);
  EXPECT_GT(pb.releaseWaits, 0u);
  EXPECT_GE(st.bufferAllocs.load() - allocs0, pa.releaseWaits + pb.releaseWaits + 2);
  EXPECT_EQ(st.bufferBytes.load(), bytes0);
}

}  // namespace
}  // namespace ugate

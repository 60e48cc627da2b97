// StreamBridge across two reactor threads: both directions at once with backpressure (a ring much
// smaller than the transfer), every byte verified, FIN in each direction, and abort as a reset.
#include "core/stream_bridge.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace ugate {
namespace {

uint8_t patternByte(uint64_t i, uint8_t seed) { return static_cast<uint8_t>((i * 131 + seed) ^ (i >> 9)); }

// Pump: on its reactor thread, writes `toSend` pattern bytes then FIN, and reads until EOF,
// checking the peer's pattern.
struct Pump : StreamCallbacks {
  Pump(Stream& stream, uint64_t bytes, uint8_t mySeed, uint8_t peerSeed)
      : s(stream), toSend(bytes), sendSeed(mySeed), recvSeed(peerSeed) {}
  Stream& s;
  uint64_t toSend, sent = 0, received = 0;
  uint8_t sendSeed, recvSeed;
  bool finSent = false, eof = false, corrupt = false;
  int err = 0;
  uint64_t eagainWrites = 0;
  std::promise<void> done;
  bool reported = false;

  void onStreamReadable(Stream&) override {
    uint8_t buf[7919];  // odd size: reads straddle the ring's wrap point
    while (!eof && err == 0) {
      IoResult r = s.read(buf, sizeof(buf));
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
      }
      received += static_cast<uint64_t>(r.value);
    }
    check();
  }
  void onStreamWritable(Stream&) override {
    uint8_t buf[5003];
    while (sent < toSend && err == 0) {
      size_t n = std::min<uint64_t>(sizeof(buf), toSend - sent);
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

}  // namespace
}  // namespace ugate

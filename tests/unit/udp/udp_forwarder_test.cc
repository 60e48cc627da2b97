// UdpForwarder driven through the production path (Worker::applyConfig -> the kind's datagram
// handler factory) on a worker whose reactor runs on a simulated clock: real UDP sockets on
// loopback, time advanced by the test, never slept on.
#include "udp/udp_forwarder.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <future>
#include <string>
#include <vector>

#include <ugate/config.h>
#include <ugate/socket_util.h>
#include "core/worker.h"
#include "test_common/simulated_time.h"
#include "test_common/test_util.h"
#include "udp/udp_module.h"

namespace ugate::udp {
namespace {

using test::udpExchange;
using test::udpSocket;
using test::UdpEchoServer;

class UdpForwarderTest : public testing::Test {
 protected:
  void SetUp() override { registerUdpModule(listenerKinds()); }
  void TearDown() override {
    if (worker_) {
      worker_->join();
      worker_.reset();
    }
    if (logFd_ >= 0) close(logFd_);
  }

  /** start runs a worker with one udp listener on 127.0.0.1:0 (`extra` adds listener keys). */
  void start(const std::string& to, const std::string& extra = "", const std::string& routes = "[]") {
    std::string json = R"({"listeners": [{"name": "u", "kind": "udp", "address": "127.0.0.1:0", "to": ")" +
                       to + "\"" + extra + R"(}], "routes": )" + routes + "}";
    auto cfg = parseConfig(json, "test");
    ASSERT_TRUE(cfg) << cfg.error().detail;
    cfg_ = *cfg;
    const ListenerConfig& l = cfg_->listeners[0];
    auto fd = openDatagramSocket(l.address, true, [&l](int f) { return l.spec->configureListenSocket(f, l); });
    ASSERT_TRUE(fd) << fd.error().detail;
    port_ = localAddress(*fd).port();
    logPath_ = dir_.path() + "/access.log";
    logFd_ = ::open(logPath_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    worker_ = std::make_unique<Worker>(0, cfg_, 0, logFd_, time_);
    worker_->startThread();
    onWorker([&, f = *fd] { worker_->applyConfig(cfg_, {ListenSocket{"u", f}}); });
  }
  /** onWorker runs fn on the worker's thread and waits for it (and for the turn's timers before it). */
  void onWorker(std::function<void()> fn) {
    std::promise<void> done;
    worker_->reactor().post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  ListenerStatsValues stats() {
    WorkerStatsSnapshot s;
    onWorker([&] {
      worker_->accessLog().flush();
      worker_->snapshotStats(s);
    });
    return s.listeners["u"];
  }
  /** advance moves the simulated clock and lets the worker run its expired timers. */
  void advance(Duration d) {
    time_.advance(d);
    onWorker([] {});
  }
  std::string accessLog() {
    onWorker([&] { worker_->accessLog().flush(); });
    std::ifstream f(logPath_);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  static size_t count(const std::string& hay, const std::string& needle) {
    size_t n = 0;
    for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
  }

  test::TempDir dir_;
  test::SimulatedTime time_;
  ConfigPtr cfg_;
  std::unique_ptr<Worker> worker_;
  uint16_t port_{0};
  std::string logPath_;
  int logFd_{-1};
};

TEST_F(UdpForwarderTest, ManyFlowsEveryDatagramChecked) {
  UdpEchoServer echo;
  start("127.0.0.1:" + std::to_string(echo.port()));
  constexpr int kFlows = 40, kPerFlow = 25;
  std::vector<int> socks;
  for (int i = 0; i < kFlows; ++i) socks.push_back(udpSocket(port_));
  int ok = 0;
  for (int round = 0; round < kPerFlow; ++round) {
    for (int i = 0; i < kFlows; ++i) {
      std::string out = "flow " + std::to_string(i) + " seq " + std::to_string(round) + " " +
                        test::pattern(static_cast<size_t>(round * 37 + i), static_cast<uint32_t>(i));
      std::string in;
      if (udpExchange(socks[i], out, in) && in == out) ++ok;
    }
  }
  EXPECT_EQ(ok, kFlows * kPerFlow);
  EXPECT_EQ(echo.peers(), static_cast<size_t>(kFlows));  // one upstream socket per client
  ListenerStatsValues s = stats();
  EXPECT_EQ(s.accepted, static_cast<uint64_t>(kFlows));
  EXPECT_EQ(s.active, kFlows);
  EXPECT_EQ(s.packetsIn, static_cast<uint64_t>(kFlows * kPerFlow));
  EXPECT_EQ(s.packetsOut, static_cast<uint64_t>(kFlows * kPerFlow));
  EXPECT_EQ(s.bytesIn, s.bytesOut);
  for (int fd : socks) close(fd);
}

TEST_F(UdpForwarderTest, EmptyAndLargestDatagrams) {
  UdpEchoServer echo;
  start("127.0.0.1:" + std::to_string(echo.port()));
  int fd = udpSocket(port_);
  std::string in = "x";
  ASSERT_TRUE(udpExchange(fd, "", in));
  EXPECT_EQ(in, "");
  const std::string big = test::pattern(65507, 42);  // the largest UDP payload over IPv4
  ASSERT_TRUE(udpExchange(fd, big, in));
  EXPECT_EQ(in.size(), big.size());
  EXPECT_TRUE(in == big);
  ASSERT_TRUE(udpExchange(fd, "", in));
  EXPECT_EQ(in, "");
  ListenerStatsValues s = stats();
  EXPECT_EQ(s.packetsIn, 3u);
  EXPECT_EQ(s.packetsOut, 3u);
  EXPECT_EQ(s.bytesIn, 65507u);
  EXPECT_EQ(s.accepted, 1u);
  close(fd);
}

TEST_F(UdpForwarderTest, IdleExpiryUnderSimulatedTime) {
  UdpEchoServer echo;
  start("127.0.0.1:" + std::to_string(echo.port()), R"(, "idleTimeout": "60s")");
  int a = udpSocket(port_), b = udpSocket(port_), c = udpSocket(port_);
  std::string in;
  ASSERT_TRUE(udpExchange(a, "a1", in));
  advance(10s);
  ASSERT_TRUE(udpExchange(b, "b1", in));
  advance(10s);
  ASSERT_TRUE(udpExchange(c, "c1", in));
  advance(39s);  // t=59s: nothing is 60 s idle yet
  EXPECT_EQ(stats().active, 3);
  ASSERT_TRUE(udpExchange(a, "a2", in));  // a active again at 59 s
  advance(2s);                              // t=61s
  EXPECT_EQ(stats().active, 3);             // b idle since 10 s: 51 s
  advance(10s);                             // t=71s: b (61 s idle) goes
  ListenerStatsValues s = stats();
  EXPECT_EQ(s.active, 2);
  EXPECT_EQ(s.closes[static_cast<size_t>(Errc::IdleTimeout)], 1u);
  advance(10s);  // t=81s: c (61 s) goes
  EXPECT_EQ(stats().active, 1);
  advance(38s);  // t=119s: a idle 60 s exactly
  s = stats();
  EXPECT_EQ(s.active, 0);
  EXPECT_EQ(s.closes[static_cast<size_t>(Errc::IdleTimeout)], 3u);
  std::string log = accessLog();
  EXPECT_EQ(count(log, "\"kind\":\"udp-flow\""), 3u) << log;
  EXPECT_EQ(count(log, "\"close\":\"idle_timeout\""), 3u) << log;
  EXPECT_NE(log.find("\"bytes_in\":4,\"bytes_out\":4,\"packets_in\":2,\"packets_out\":2"), std::string::npos)
      << log;
  // A client whose flow expired gets a new flow, and an answer.
  ASSERT_TRUE(udpExchange(b, "b2", in));
  EXPECT_EQ(in, "b2");
  EXPECT_EQ(stats().accepted, 4u);
  close(a);
  close(b);
  close(c);
}

TEST_F(UdpForwarderTest, FlowCapEvictsLeastRecentlyUsed) {
  UdpEchoServer echo;
  start("127.0.0.1:" + std::to_string(echo.port()), R"(, "maxFlows": 3)");
  int s[5];
  std::string in;
  for (int i = 0; i < 3; ++i) {
    s[i] = udpSocket(port_);
    ASSERT_TRUE(udpExchange(s[i], "hello", in));
    advance(1s);
  }
  ASSERT_TRUE(udpExchange(s[0], "again", in));  // s[1] is now the least recently used
  advance(1s);
  s[3] = udpSocket(port_);
  ASSERT_TRUE(udpExchange(s[3], "new", in));
  EXPECT_EQ(in, "new");
  ListenerStatsValues st = stats();
  EXPECT_EQ(st.active, 3);
  EXPECT_EQ(st.closes[static_cast<size_t>(Errc::ResourceExhausted)], 1u);
  std::string log = accessLog();
  ASSERT_EQ(count(log, "\"close\":\"resource_exhausted\""), 1u) << log;
  // The evicted flow is s[1]'s: its line carries its one exchange.
  EXPECT_NE(log.find("\"packets_in\":1,\"packets_out\":1"), std::string::npos) << log;
  EXPECT_NE(log.find("evicted: maxFlows 3"), std::string::npos) << log;
  // s[0] keeps its flow; s[1] comes back on a new one, evicting s[2].
  ASSERT_TRUE(udpExchange(s[0], "still", in));
  ASSERT_TRUE(udpExchange(s[1], "back", in));
  EXPECT_EQ(in, "back");
  st = stats();
  EXPECT_EQ(st.accepted, 5u);
  EXPECT_EQ(st.closes[static_cast<size_t>(Errc::ResourceExhausted)], 2u);
  for (int i = 0; i < 4; ++i) close(s[i]);
}

TEST_F(UdpForwarderTest, ReloadKeepsFlowsAndAppliesNewLimits) {
  UdpEchoServer echo;
  const std::string to = "127.0.0.1:" + std::to_string(echo.port());
  start(to, R"(, "maxFlows": 3)");
  int s[3];
  std::string in;
  for (int i = 0; i < 3; ++i) {
    s[i] = udpSocket(port_);
    ASSERT_TRUE(udpExchange(s[i], "hi", in));
    advance(1s);
  }
  // A new snapshot for the same socket (no new fd): flows stay, the lower cap evicts the oldest two.
  auto next = parseConfig(R"({"listeners": [{"name": "u", "kind": "udp", "address": "127.0.0.1:0", "to": ")" +
                              to + R"(", "maxFlows": 1, "idleTimeout": "5s"}]})",
                          "reload");
  ASSERT_TRUE(next) << next.error().detail;
  onWorker([&] { worker_->applyConfig(*next, {}); });
  cfg_ = *next;
  ListenerStatsValues st = stats();
  EXPECT_EQ(st.active, 1);
  EXPECT_EQ(st.closes[static_cast<size_t>(Errc::ResourceExhausted)], 2u);
  ASSERT_TRUE(udpExchange(s[2], "kept", in));  // the newest flow is the one kept
  EXPECT_EQ(in, "kept");
  EXPECT_EQ(stats().accepted, 3u);
  advance(5s);  // the new idle timeout applies to it
  EXPECT_EQ(stats().active, 0);
  for (int fd : s) close(fd);
}

TEST_F(UdpForwarderTest, RejectedByRouteIsDroppedAndCounted) {
  UdpEchoServer echo;
  start("127.0.0.1:" + std::to_string(echo.port()), "",
        R"([{"match": {"listener": "u"}, "to": "reject"}])");
  int fd = udpSocket(port_, "127.0.0.1", 300);
  std::string in;
  EXPECT_FALSE(udpExchange(fd, "nope", in));
  ListenerStatsValues s = stats();
  EXPECT_EQ(s.accepted, 0u);
  EXPECT_EQ(s.drops[static_cast<size_t>(Errc::RouteRejected)], 1u);
  EXPECT_EQ(echo.received(), 0);
  close(fd);
}

TEST_F(UdpForwarderTest, ShutdownLogsOpenFlows) {
  UdpEchoServer echo;
  start("127.0.0.1:" + std::to_string(echo.port()));
  int fd = udpSocket(port_);
  std::string in;
  ASSERT_TRUE(udpExchange(fd, "x", in));
  onWorker([&] { worker_->stopListening(); });
  ListenerStatsValues s = stats();
  EXPECT_EQ(s.active, 0);
  EXPECT_EQ(s.closes[static_cast<size_t>(Errc::Shutdown)], 1u);
  EXPECT_EQ(count(accessLog(), "\"close\":\"shutdown\""), 1u);
  close(fd);
}

}  // namespace
}  // namespace ugate::udp

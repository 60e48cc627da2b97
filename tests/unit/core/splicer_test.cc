// Splicer over real sockets: a reactor thread runs the splicer between two TcpStreams; the test
// thread(s) play the client and the upstream with blocking I/O on the outer ends.
//
//   client peer (outer) <-> [a: TcpStream] == Splicer == [b: TcpStream] <-> upstream peer (outer)
#include <ugate/splicer.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <ugate/pipe_pool.h>
#include <ugate/socket_util.h>
#include <ugate/tcp_stream.h>
#include "test_common/test_util.h"

namespace ugate {
namespace {

using Mode = SpliceContext::Mode;
using Clock = std::chrono::steady_clock;

enum class Transport { Tcp, Unix };

const char* modeName(Mode m) {
  switch (m) {
    case Mode::Auto:
      return "Auto";
    case Mode::Always:
      return "Always";
    case Mode::Never:
      return "Never";
  }
  return "?";
}

void setBuffers(int fd, int bytes) {
  if (bytes > 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
  }
}

void setNonBlocking(int fd, bool on) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

// SocketPair: `inner` (non-blocking) goes to a TcpStream, `outer` (blocking) is the test's peer.
struct SocketPair {
  int inner{-1};
  int outer{-1};
};

SocketPair makePair(Transport t, int bufBytes) {
  SocketPair p;
  if (t == Transport::Unix) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      ADD_FAILURE() << "socketpair: " << strerror(errno);
      return p;
    }
    setBuffers(fds[0], bufBytes);
    setBuffers(fds[1], bufBytes);
    setNonBlocking(fds[0], true);
    p.inner = fds[0];
    p.outer = fds[1];
    return p;
  }
  // Loopback TCP: buffer sizes are set before listen/connect so they bound the window too.
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  setBuffers(l, bufBytes);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(l, 1) != 0 ||
      getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ADD_FAILURE() << "listen: " << strerror(errno);
    close(l);
    return p;
  }
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  setBuffers(c, bufBytes);
  if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ADD_FAILURE() << "connect: " << strerror(errno);
    close(c);
    close(l);
    return p;
  }
  int s = accept4(l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  close(l);
  setNoDelay(c);
  setNoDelay(s);
  p.inner = s;
  p.outer = c;
  return p;
}

// readUntilEof reads from a blocking fd until EOF. nullopt on timeout or error.
std::optional<std::string> readUntilEof(int fd, int timeoutMs = 5000) {
  std::string out;
  char buf[65536];
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, left) != 1) {
      return std::nullopt;
    }
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return std::nullopt;
    }
    if (n == 0) {
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

// Harness owns a reactor thread, the splice context and the two streams joined by a Splicer.
class Harness : public SplicerCallbacks {
 public:
  Harness(Transport t, Mode mode, size_t scratchBytes = 16 * 1024, int bufBytes = 0,
          size_t pipeBytes = 64 * 1024)
      : pipes_(pipeBytes, 4), scratch_(scratchBytes) {
    client_ = makePair(t, bufBytes);
    upstream_ = makePair(t, bufBytes);
    ctx_ = std::make_unique<SpliceContext>(
        SpliceContext{*reactor_, pipes_, scratch_.data(), scratch_.size(), mode});
    thread_ = std::thread([this] { reactor_->run(); });
  }

  ~Harness() override {
    onReactor([this] {
      splicer_.reset();
      a_.reset();
      b_.reset();
    });
    reactor_->exit();
    thread_.join();
    closeOuter(client_.outer);
    closeOuter(upstream_.outer);
  }

  // start builds the streams and the splicer on the reactor thread.
  // beforeStart runs on the reactor thread between construction and start() (e.g. setPrefix).
  void start(std::function<void(Splicer&)> beforeStart = nullptr) {
    onReactor([this, beforeStart] {
      a_ = std::make_unique<TcpStream>(*reactor_, client_.inner);
      b_ = std::make_unique<TcpStream>(*reactor_, upstream_.inner);
      splicer_ = std::make_unique<Splicer>(*ctx_, *a_, *b_, *this);
      if (beforeStart) {
        beforeStart(*splicer_);
      }
      splicer_->start();
    });
  }

  // onReactor runs fn on the reactor thread and waits for it.
  void onReactor(std::function<void()> fn) {
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    reactor_->post([fn = std::move(fn), done] {
      fn();
      done->set_value();
    });
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "reactor stuck";
  }

  uint64_t bytesAtoB() {
    uint64_t v = 0;
    onReactor([&] { v = splicer_->bytesAtoB(); });
    return v;
  }
  uint64_t bytesBtoA() {
    uint64_t v = 0;
    onReactor([&] { v = splicer_->bytesBtoA(); });
    return v;
  }
  bool usedSplice() {
    bool v = false;
    onReactor([&] { v = splicer_->usedSplice(); });
    return v;
  }

  int clientPeer() const { return client_.outer; }
  int upstreamPeer() const { return upstream_.outer; }
  int clientInner() const { return client_.inner; }
  int upstreamInner() const { return upstream_.inner; }
  void closeOuter(int& fd) {
    if (fd >= 0) {
      close(fd);
      fd = -1;
    }
  }
  int& clientPeerRef() { return client_.outer; }
  int& upstreamPeerRef() { return upstream_.outer; }

  // ugate::SplicerCallbacks (reactor thread)
  void onSpliceDone() override {
    // As every owner does: close both streams (the last FIN may be left to close(), see splicer.h).
    a_->close(false);
    b_->close(false);
    done_.fetch_add(1);
  }
  void onSpliceError(Errc reason, bool clientSide) override {
    reason_.store(static_cast<int>(reason));
    clientSide_.store(clientSide);
    errors_.fetch_add(1);
  }

  std::atomic<int> done_{0};
  std::atomic<int> errors_{0};
  std::atomic<int> reason_{-1};
  std::atomic<bool> clientSide_{false};

 private:
  ReactorPtr reactor_ = newReactor(realTimeSource(), 0);
  PipePool pipes_;
  std::vector<uint8_t> scratch_;
  std::unique_ptr<SpliceContext> ctx_;
  SocketPair client_;
  SocketPair upstream_;
  std::unique_ptr<TcpStream> a_;
  std::unique_ptr<TcpStream> b_;
  std::unique_ptr<Splicer> splicer_;
  std::thread thread_;
};

class SplicerTestBase {
 public:
  static void ignoreSigpipe() {
    // splice(2) into a socket whose peer is gone raises SIGPIPE (there is no MSG_NOSIGNAL for
    // splice); ugated ignores SIGPIPE at startup, so the test process does too.
    signal(SIGPIPE, SIG_IGN);
  }
};

// ---------------------------------------------------------------------------------------------
// Bulk transfer both ways, every mode and transport: exact bytes, half-close, done.

struct BulkParam {
  Transport transport;
  Mode mode;
};

class SplicerBulkTest : public testing::TestWithParam<BulkParam> {
 protected:
  static void SetUpTestSuite() { SplicerTestBase::ignoreSigpipe(); }
};

TEST_P(SplicerBulkTest, BothDirectionsDeliverExactBytes) {
  const BulkParam p = GetParam();
  Harness h(p.transport, p.mode, 16 * 1024);
  h.start();
  const std::string up = test::pattern((3u << 19) + 13, 1);   // 1.5 MiB + 13 client -> upstream
  const std::string down = test::pattern((5u << 18) + 7, 2);  // 1.25 MiB + 7 upstream -> client
  std::optional<std::string> gotUp, gotDown;
  std::atomic<bool> wroteUp{false}, wroteDown{false};
  std::thread clientWriter([&] {
    wroteUp = test::writeAll(h.clientPeer(), up.data(), up.size());
    shutdown(h.clientPeer(), SHUT_WR);
  });
  std::thread upstreamWriter([&] {
    wroteDown = test::writeAll(h.upstreamPeer(), down.data(), down.size());
    shutdown(h.upstreamPeer(), SHUT_WR);
  });
  std::thread upstreamReader([&] { gotUp = readUntilEof(h.upstreamPeer()); });
  std::thread clientReader([&] { gotDown = readUntilEof(h.clientPeer()); });
  clientWriter.join();
  upstreamWriter.join();
  upstreamReader.join();
  clientReader.join();
  EXPECT_TRUE(wroteUp);
  EXPECT_TRUE(wroteDown);
  ASSERT_TRUE(gotUp.has_value()) << "upstream never saw EOF";
  ASSERT_TRUE(gotDown.has_value()) << "client never saw EOF";
  ASSERT_EQ(gotUp->size(), up.size());
  ASSERT_EQ(gotDown->size(), down.size());
  EXPECT_EQ(test::fnv1a64(gotUp->data(), gotUp->size()), test::fnv1a64(up.data(), up.size()));
  EXPECT_EQ(test::fnv1a64(gotDown->data(), gotDown->size()),
            test::fnv1a64(down.data(), down.size()));
  EXPECT_TRUE(*gotUp == up);
  EXPECT_TRUE(*gotDown == down);

  ASSERT_TRUE(test::waitFor([&] { return h.done_.load() > 0; }, 3000)) << "no onSpliceDone";
  EXPECT_EQ(h.done_.load(), 1);
  EXPECT_EQ(h.errors_.load(), 0);
  EXPECT_EQ(h.bytesAtoB(), up.size());
  EXPECT_EQ(h.bytesBtoA(), down.size());
  if (p.mode == Mode::Never) {
    EXPECT_FALSE(h.usedSplice());
  } else {
    EXPECT_TRUE(h.usedSplice()) << modeName(p.mode) << " mode must splice socket to socket";
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllModes, SplicerBulkTest,
    testing::Values(BulkParam{Transport::Tcp, Mode::Never}, BulkParam{Transport::Tcp, Mode::Always},
                    BulkParam{Transport::Tcp, Mode::Auto}, BulkParam{Transport::Unix, Mode::Never},
                    BulkParam{Transport::Unix, Mode::Always},
                    BulkParam{Transport::Unix, Mode::Auto}),
    [](const testing::TestParamInfo<BulkParam>& i) {
      return std::string(i.param.transport == Transport::Tcp ? "Tcp" : "Unix") +
             modeName(i.param.mode);
    });

// ---------------------------------------------------------------------------------------------
// Half-close and small exchanges.

class SplicerModeTest : public testing::TestWithParam<Mode> {
 protected:
  static void SetUpTestSuite() { SplicerTestBase::ignoreSigpipe(); }
};

TEST_P(SplicerModeTest, HalfCloseIsForwardedWhileTheOtherDirectionContinues) {
  Harness h(Transport::Tcp, GetParam());
  h.start();
  ASSERT_TRUE(test::writeAll(h.clientPeer(), "hello", 5));
  ASSERT_EQ(shutdown(h.clientPeer(), SHUT_WR), 0);

  // The upstream sees the bytes, then EOF: the client's FIN was forwarded as a shutdown.
  auto got = readUntilEof(h.upstreamPeer(), 3000);
  ASSERT_TRUE(got.has_value()) << "client EOF was not forwarded to the upstream";
  EXPECT_EQ(*got, "hello");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(h.done_.load(), 0) << "done before the upstream finished";
  EXPECT_EQ(h.errors_.load(), 0);

  // The other direction keeps working after the half-close, with bulk data too.
  const std::string reply = test::pattern(300 * 1024 + 3, 9);
  std::optional<std::string> atClient;
  std::thread reader([&] { atClient = readUntilEof(h.clientPeer(), 5000); });
  ASSERT_TRUE(test::writeAll(h.upstreamPeer(), reply.data(), reply.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(h.done_.load(), 0);
  ASSERT_EQ(shutdown(h.upstreamPeer(), SHUT_WR), 0);
  reader.join();
  ASSERT_TRUE(atClient.has_value()) << "upstream EOF was not forwarded to the client";
  EXPECT_EQ(atClient->size(), reply.size());
  EXPECT_TRUE(*atClient == reply);

  ASSERT_TRUE(test::waitFor([&] { return h.done_.load() > 0; }, 3000));
  EXPECT_EQ(h.done_.load(), 1);
  EXPECT_EQ(h.errors_.load(), 0);
  EXPECT_EQ(h.bytesAtoB(), 5u);
  EXPECT_EQ(h.bytesBtoA(), reply.size());
}

TEST_P(SplicerModeTest, UpstreamHalfCloseFirst) {
  Harness h(Transport::Unix, GetParam());
  h.start();
  ASSERT_TRUE(test::writeAll(h.upstreamPeer(), "banner\n", 7));
  ASSERT_EQ(shutdown(h.upstreamPeer(), SHUT_WR), 0);
  auto got = readUntilEof(h.clientPeer(), 3000);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, "banner\n");
  EXPECT_EQ(h.done_.load(), 0);
  ASSERT_TRUE(test::writeAll(h.clientPeer(), "request", 7));
  ASSERT_EQ(shutdown(h.clientPeer(), SHUT_WR), 0);
  got = readUntilEof(h.upstreamPeer(), 3000);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, "request");
  ASSERT_TRUE(test::waitFor([&] { return h.done_.load() > 0; }, 3000));
  EXPECT_EQ(h.errors_.load(), 0);
}

TEST_P(SplicerModeTest, PingPongSmallMessages) {
  Harness h(Transport::Tcp, GetParam(), 16 * 1024);
  h.start();
  for (int i = 0; i < 20; ++i) {
    std::string req = "request-" + std::to_string(i);
    ASSERT_TRUE(test::writeAll(h.clientPeer(), req.data(), req.size()));
    std::string buf(req.size(), '\0');
    ASSERT_TRUE(test::readN(h.upstreamPeer(), buf.data(), buf.size(), 3000)) << i;
    EXPECT_EQ(buf, req);
    std::string resp =
        "response-" + std::to_string(i) + std::string(static_cast<size_t>(i) * 50, 'x');
    ASSERT_TRUE(test::writeAll(h.upstreamPeer(), resp.data(), resp.size()));
    std::string rbuf(resp.size(), '\0');
    ASSERT_TRUE(test::readN(h.clientPeer(), rbuf.data(), rbuf.size(), 3000)) << i;
    EXPECT_EQ(rbuf, resp);
  }
  EXPECT_EQ(h.errors_.load(), 0);
  EXPECT_EQ(h.done_.load(), 0);
  if (GetParam() == Mode::Auto) {
    EXPECT_FALSE(h.usedSplice()) << "small exchanges should stay on the copy path in Auto mode";
  }
}

// TCP urgent data (MSG_OOB, e.g. telnet's interrupt): the urgent byte is out of band and not
// forwarded, but every in-band byte after it must be, then the EOF. recv(2) stops short at the
// mark and splice(2) reports 0 or EAGAIN there; neither may end or stall the direction.
TEST_P(SplicerModeTest, UrgentDataNeitherTruncatesNorStalls) {
  Harness h(Transport::Tcp, GetParam());
  h.start();
  const std::string before = test::pattern(200 * 1024, 7);
  const std::string after = test::pattern(150 * 1024, 8);
  std::optional<std::string> atUpstream;
  std::thread upReader([&] { atUpstream = readUntilEof(h.upstreamPeer()); });
  ASSERT_TRUE(test::writeAll(h.clientPeer(), before.data(), before.size()));
  ASSERT_EQ(send(h.clientPeer(), "!", 1, MSG_OOB), 1);
  ASSERT_TRUE(test::writeAll(h.clientPeer(), after.data(), after.size()));
  shutdown(h.clientPeer(), SHUT_WR);
  upReader.join();
  ASSERT_TRUE(atUpstream.has_value()) << "the direction stalled at the urgent mark";
  ASSERT_EQ(atUpstream->size(), before.size() + after.size());
  EXPECT_TRUE(*atUpstream == before + after);
  shutdown(h.upstreamPeer(), SHUT_WR);
  ASSERT_TRUE(test::waitFor([&] { return h.done_.load() > 0; }, 3000));
  EXPECT_EQ(h.errors_.load(), 0);
}

TEST_P(SplicerModeTest, DataPendingBeforeStartIsForwarded) {
  Harness h(Transport::Tcp, GetParam());
  const std::string early = test::pattern(100 * 1024, 4);
  ASSERT_TRUE(test::writeAll(h.clientPeer(), early.data(), early.size()));
  ASSERT_EQ(shutdown(h.clientPeer(), SHUT_WR), 0);
  h.start();
  auto got = readUntilEof(h.upstreamPeer(), 3000);
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(*got == early);
}

TEST_P(SplicerModeTest, PrefixesAreWrittenFirstInEachDirection) {
  Harness h(Transport::Tcp, GetParam(), 16 * 1024, 64 * 1024);
  // A prefix larger than the scratch buffer and the socket buffers, so it cannot go out at once.
  const std::string peeked = test::pattern(700 * 1024 + 1, 5);
  const std::string reply = "REPLY-OK";
  h.start([&](Splicer& s) {
    s.setPrefix(0, reinterpret_cast<const uint8_t*>(peeked.data()), peeked.size());
    s.setPrefix(1, reinterpret_cast<const uint8_t*>(reply.data()), reply.size());
    s.setPrefix(1, nullptr, 0);  // an empty prefix changes nothing
  });
  const std::string fromClient = test::pattern(200 * 1024, 6);
  const std::string fromUpstream = "upstream-data";
  std::optional<std::string> atUpstream, atClient;
  std::thread upReader([&] { atUpstream = readUntilEof(h.upstreamPeer()); });
  std::thread clientReader([&] { atClient = readUntilEof(h.clientPeer()); });
  ASSERT_TRUE(test::writeAll(h.clientPeer(), fromClient.data(), fromClient.size()));
  shutdown(h.clientPeer(), SHUT_WR);
  ASSERT_TRUE(test::writeAll(h.upstreamPeer(), fromUpstream.data(), fromUpstream.size()));
  shutdown(h.upstreamPeer(), SHUT_WR);
  upReader.join();
  clientReader.join();
  ASSERT_TRUE(atUpstream.has_value());
  ASSERT_TRUE(atClient.has_value());
  ASSERT_EQ(atUpstream->size(), peeked.size() + fromClient.size());
  EXPECT_TRUE(*atUpstream == peeked + fromClient) << "prefix and stream bytes out of order";
  EXPECT_EQ(*atClient, reply + fromUpstream);
  ASSERT_TRUE(test::waitFor([&] { return h.done_.load() > 0; }, 3000));
  EXPECT_EQ(h.errors_.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, SplicerModeTest,
                         testing::Values(Mode::Never, Mode::Always, Mode::Auto),
                         [](const testing::TestParamInfo<Mode>& i) {
                           return std::string(modeName(i.param));
                         });

// ---------------------------------------------------------------------------------------------
// Peer resets (loopback TCP, RST via SO_LINGER 0).

struct ResetParam {
  Mode mode;
  bool clientResets;
};

class SplicerResetTest : public testing::TestWithParam<ResetParam> {
 protected:
  static void SetUpTestSuite() { SplicerTestBase::ignoreSigpipe(); }
};

TEST_P(SplicerResetTest, PeerResetReportsErrorWithSide) {
  const ResetParam p = GetParam();
  Harness h(Transport::Tcp, p.mode);
  h.start();
  // Some traffic first, so the splicer is mid-stream when the reset lands.
  ASSERT_TRUE(test::writeAll(h.clientPeer(), "ping", 4));
  char buf[4];
  ASSERT_TRUE(test::readN(h.upstreamPeer(), buf, 4, 3000));
  ASSERT_TRUE(test::writeAll(h.upstreamPeer(), "pong", 4));
  ASSERT_TRUE(test::readN(h.clientPeer(), buf, 4, 3000));

  int& victim = p.clientResets ? h.clientPeerRef() : h.upstreamPeerRef();
  closeAbort(victim);
  victim = -1;

  ASSERT_TRUE(test::waitFor([&] { return h.errors_.load() > 0; }, 3000)) << "reset not reported";
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(h.errors_.load(), 1) << "onSpliceError must be reported once";
  EXPECT_EQ(h.done_.load(), 0);
  EXPECT_EQ(h.reason_.load(), static_cast<int>(Errc::Reset));
  EXPECT_EQ(h.clientSide_.load(), p.clientResets) << "wrong side blamed";
}

INSTANTIATE_TEST_SUITE_P(
    Sides, SplicerResetTest,
    testing::Values(ResetParam{Mode::Never, true}, ResetParam{Mode::Never, false},
                    ResetParam{Mode::Always, true}, ResetParam{Mode::Always, false},
                    ResetParam{Mode::Auto, true}, ResetParam{Mode::Auto, false}),
    [](const testing::TestParamInfo<ResetParam>& i) {
      return std::string(modeName(i.param.mode)) + (i.param.clientResets ? "Client" : "Upstream");
    });

// A reset of the destination while bytes are flowing towards it: the failed write blames the
// destination's side.
TEST_P(SplicerResetTest, ResetOfDestinationDuringBulkWriteBlamesDestination) {
  const ResetParam p = GetParam();
  Harness h(Transport::Tcp, p.mode, 16 * 1024, 64 * 1024);
  h.start();
  // Bytes flow towards the side that resets; the other side keeps sending.
  int sender = p.clientResets ? h.upstreamPeer() : h.clientPeer();
  int& victim = p.clientResets ? h.clientPeerRef() : h.upstreamPeerRef();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    setNonBlocking(sender, true);
    std::string chunk = test::pattern(64 * 1024, 3);
    while (!stop.load()) {
      ssize_t n = send(sender, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) {
        break;
      }
      if (n < 0) {
        pollfd pf{sender, POLLOUT, 0};
        poll(&pf, 1, 10);
      }
    }
  });
  // Let the destination's buffers fill (it never reads), then reset it.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  closeAbort(victim);
  victim = -1;
  bool reported = test::waitFor([&] { return h.errors_.load() > 0; }, 3000);
  stop = true;
  writer.join();
  ASSERT_TRUE(reported);
  EXPECT_EQ(h.errors_.load(), 1);
  EXPECT_EQ(h.reason_.load(), static_cast<int>(Errc::Reset));
  EXPECT_EQ(h.clientSide_.load(), p.clientResets);
}

// ---------------------------------------------------------------------------------------------
// Backpressure: the destination peer stops reading; the splicer must stop reading the source so
// the source's kernel buffer fills and the sender blocks. Once the peer reads, everything flows.

struct BackpressureParam {
  Transport transport;
  Mode mode;
  bool clientToUpstream;
};

class SplicerBackpressureTest : public testing::TestWithParam<BackpressureParam> {
 protected:
  static void SetUpTestSuite() { SplicerTestBase::ignoreSigpipe(); }
};

TEST_P(SplicerBackpressureTest, StopsReadingWhenDestinationIsFullAndResumes) {
  const BackpressureParam p = GetParam();
  constexpr int kBuf = 64 * 1024;  // requested SO_SNDBUF/SO_RCVBUF (the kernel doubles it)
  constexpr size_t kScratch = 16 * 1024;
  constexpr size_t kPipe = 64 * 1024;
  constexpr size_t kTotal = 8u << 20;  // what the sender wants to send in the end
  Harness h(p.transport, p.mode, kScratch, kBuf, kPipe);
  h.start();
  const int src = p.clientToUpstream ? h.clientPeer() : h.upstreamPeer();
  const int dst = p.clientToUpstream ? h.upstreamPeer() : h.clientPeer();
  const int srcInner = p.clientToUpstream ? h.clientInner() : h.upstreamInner();
  auto moved = [&] { return p.clientToUpstream ? h.bytesAtoB() : h.bytesBtoA(); };
  const std::string data = test::pattern(kTotal, 77);

  // Send without blocking until the sender has been stuck for 150 ms.
  setNonBlocking(src, true);
  size_t sent = 0;
  auto lastProgress = Clock::now();
  while (sent < kTotal && Clock::now() - lastProgress < std::chrono::milliseconds(150)) {
    ssize_t n =
        send(src, data.data() + sent, std::min<size_t>(64 * 1024, kTotal - sent), MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      lastProgress = Clock::now();
    } else {
      ASSERT_TRUE(n < 0 && errno == EAGAIN) << strerror(errno);
      pollfd pf{src, POLLOUT, 0};
      poll(&pf, 1, 20);
    }
  }
  ASSERT_LT(sent, kTotal) << "the sender never blocked: no backpressure";

  // The splicer has stopped: what went to the destination is bounded by its socket buffers, not
  // by what was offered, and stays so while the destination does not read.
  uint64_t movedAtStall = moved();
  EXPECT_GT(movedAtStall, 0u);
  EXPECT_LE(movedAtStall, 1u << 20) << "sent " << sent;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const uint64_t movedLater = moved();
  EXPECT_LE(movedLater, 1u << 20) << "bytes kept moving to a peer that does not read";
  if (p.transport == Transport::Unix) {
    // AF_UNIX accounting is exact; (loopback TCP may still open its window a little as the
    // receiver collapses its queue, which is the kernel's business, not the splicer's).
    EXPECT_EQ(movedLater, movedAtStall) << "bytes kept moving to a peer that does not read";
  }
  // The splicer left bytes unread in the source socket: the source kernel buffer is full.
  int unread = 0;
  ASSERT_EQ(ioctl(srcInner, FIONREAD, &unread), 0);
  EXPECT_GT(unread, 0) << "the source was drained into userland instead of being left queued";
  // Everything accepted from the sender is accounted for by buffers of bounded size.
  EXPECT_LE(sent - movedAtStall, static_cast<uint64_t>(unread) + (512u << 10));
  EXPECT_EQ(h.errors_.load(), 0);

  // The destination reads: the splicer resumes and every byte arrives in order.
  std::optional<std::string> received;
  std::thread reader([&] { received = readUntilEof(dst, 8000); });
  setNonBlocking(src, false);
  ASSERT_TRUE(test::writeAll(src, data.data() + sent, kTotal - sent));
  ASSERT_EQ(shutdown(src, SHUT_WR), 0);
  reader.join();
  ASSERT_TRUE(received.has_value()) << "transfer did not complete after the peer resumed reading";
  ASSERT_EQ(received->size(), kTotal);
  EXPECT_EQ(test::fnv1a64(received->data(), received->size()),
            test::fnv1a64(data.data(), data.size()));
  EXPECT_EQ(moved(), kTotal);
  EXPECT_EQ(h.errors_.load(), 0);
  if (p.mode == Mode::Always) {
    EXPECT_TRUE(h.usedSplice());
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, SplicerBackpressureTest,
                         testing::Values(BackpressureParam{Transport::Tcp, Mode::Never, true},
                                         BackpressureParam{Transport::Tcp, Mode::Always, true},
                                         BackpressureParam{Transport::Tcp, Mode::Auto, false},
                                         BackpressureParam{Transport::Unix, Mode::Never, false},
                                         BackpressureParam{Transport::Unix, Mode::Always, false},
                                         BackpressureParam{Transport::Unix, Mode::Auto, true}),
                         [](const testing::TestParamInfo<BackpressureParam>& i) {
                           return std::string(i.param.transport == Transport::Tcp ? "Tcp"
                                                                                  : "Unix") +
                                  modeName(i.param.mode) +
                                  (i.param.clientToUpstream ? "ClientToUpstream"
                                                            : "UpstreamToClient");
                         });

}  // namespace
}  // namespace ugate

// H2Connection against a hand-driven peer on a raw socket: keepalive (a peer that never answers
// PING is declared dead; one that answers keeps the connection), and bad input (a malformed
// frame, a bad preface, a flow-control violation on one stream) answered with the right frames.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <ugate/tcp_stream.h>
#include "http/h2_connection.h"
#include "test_common/test_util.h"
#include "unit/http/h2_test_util.h"

namespace ugate::http {
namespace {

using test::Closed;

constexpr uint8_t kData = 0, kHeaders = 1, kRstStream = 3, kSettings = 4, kPing = 6, kGoaway = 7;
constexpr uint8_t kEndStream = 1, kAck = 1, kEndHeaders = 4;
const std::string kClientMagic = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  const size_t n = payload.size();
  f.push_back(static_cast<char>(n >> 16));
  f.push_back(static_cast<char>(n >> 8));
  f.push_back(static_cast<char>(n));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  for (int s = 24; s >= 0; s -= 8) f.push_back(static_cast<char>(stream >> s));
  return f + payload;
}

// connectHeaders: an HPACK block (literal fields with indexed names, no Huffman) for CONNECT.
std::string connectHeaders(const std::string& authority) {
  std::string b;
  b.push_back(0x02);  // :method (static index 2), literal without indexing
  b.push_back(7);
  b += "CONNECT";
  b.push_back(0x01);  // :authority (static index 1)
  b.push_back(static_cast<char>(authority.size()));
  b += authority;
  return b;
}

struct Frame {
  uint8_t type;
  uint8_t flags;
  uint32_t stream;
  std::string payload;
};

uint32_t be32(const std::string& s, size_t off) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(s[off])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[off + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[off + 2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(s[off + 3]));
}

// RawPeer: the test thread's end of the socketpair, blocking, speaking frames by hand.
class RawPeer {
 public:
  /** skipMagic: the other end is a client, whose bytes start with the 24-byte connection preface. */
  RawPeer(int fd, bool skipMagic) : fd_(fd), magicLeft_(skipMagic ? kClientMagic.size() : 0) {
    int fl = fcntl(fd_, F_GETFL);
    fcntl(fd_, F_SETFL, fl & ~O_NONBLOCK);
  }
  ~RawPeer() { ::close(fd_); }
  void send(const std::string& bytes) { ASSERT_TRUE(ugate::test::writeAll(fd_, bytes.data(), bytes.size())); }
  /** readFrames reads until pred matches a frame, EOF or timeout; returns every frame seen. */
  std::vector<Frame> readFrames(const std::function<bool(const Frame&)>& until, int timeoutMs = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
      if (magicLeft_ > 0) {
        size_t k = std::min(magicLeft_, buf_.size());
        EXPECT_EQ(buf_.substr(0, k), kClientMagic.substr(kClientMagic.size() - magicLeft_, k));
        buf_.erase(0, k);
        magicLeft_ -= k;
      }
      while (magicLeft_ == 0 && buf_.size() >= 9) {
        size_t n = (static_cast<uint8_t>(buf_[0]) << 16) | (static_cast<uint8_t>(buf_[1]) << 8) |
                   static_cast<uint8_t>(buf_[2]);
        if (buf_.size() < 9 + n) break;
        Frame f{static_cast<uint8_t>(buf_[3]), static_cast<uint8_t>(buf_[4]), be32(buf_, 5) & 0x7fffffff,
                buf_.substr(9, n)};
        buf_.erase(0, 9 + n);
        frames_.push_back(f);
        if (until && until(f)) return frames_;
      }
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      pollfd p{fd_, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, left) != 1) return frames_;
      char tmp[65536];
      ssize_t r = recv(fd_, tmp, sizeof(tmp), 0);
      if (r <= 0) {
        eof_ = true;
        return frames_;
      }
      buf_.append(tmp, static_cast<size_t>(r));
    }
  }
  bool eof() const { return eof_; }

 private:
  int fd_;
  size_t magicLeft_;
  std::string buf_;
  std::vector<Frame> frames_;
  bool eof_{false};
};

// One H2Connection on a reactor thread, its transport's other end given to a RawPeer.
class RawFixture : public H2ConnectionCallbacks {
 public:
  RawFixture(H2Connection::Role role, H2Options o) {
    o.stats = &stats;
    int fds[2];
    test::socketPair(fds);
    peer = std::make_unique<RawPeer>(fds[1], role == H2Connection::Role::Client);
    rt.run([&] {
      conn = H2Connection::create(rt.reactor(), std::make_unique<TcpStream>(rt.reactor(), fds[0]), role, o, *this);
      conn->start();
    });
  }
  ~RawFixture() override {
    rt.run([&] {
      requests.clear();
      conn.reset();
    });
  }
  void onRequest(H2Connection&, H2StreamPtr s) override {
    s->respond(200);
    requests.push_back(std::move(s));
  }
  void onConnectionClosed(H2Connection&, Errc reason, const std::string& detail) override {
    closed.happened = true;
    closed.reason = reason;
    closed.detail = detail;
  }
  test::ReactorThread rt;
  H2Stats stats;
  std::unique_ptr<RawPeer> peer;
  H2ConnectionPtr conn;
  std::vector<H2StreamPtr> requests;
  Closed closed;
};

H2Options fastPing() {
  H2Options o;
  o.pingInterval = Duration{50};
  o.pingTimeout = Duration{100};
  return o;
}

TEST(H2KeepaliveTest, ClientDeclaresASilentServerDead) {
  RawFixture f(H2Connection::Role::Client, fastPing());
  f.peer->send(frame(kSettings, 0, 0, ""));  // a valid server preface, then silence
  auto frames = f.peer->readFrames([](const Frame& fr) { return fr.type == kPing && !(fr.flags & kAck); });
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().type, kPing) << "no keepalive PING was sent";
  ASSERT_TRUE(f.rt.waitFor([&] { return f.closed.happened; }));
  f.rt.run([&] {
    EXPECT_EQ(f.closed.reason, Errc::IdleTimeout);
    EXPECT_NE(f.closed.detail.find("PING"), std::string::npos) << f.closed.detail;
    EXPECT_EQ(f.stats.pingTimeouts.value(), 1u);
    EXPECT_TRUE(f.conn->closed());
  });
}

TEST(H2KeepaliveTest, ServerDeclaresASilentClientDead) {
  RawFixture f(H2Connection::Role::Server, fastPing());
  f.peer->send(kClientMagic + frame(kSettings, 0, 0, ""));
  ASSERT_TRUE(f.rt.waitFor([&] { return f.closed.happened; }));
  f.rt.run([&] {
    EXPECT_EQ(f.closed.reason, Errc::IdleTimeout);
    EXPECT_EQ(f.stats.pingTimeouts.value(), 1u);
  });
}

TEST(H2KeepaliveTest, AnsweredPingsKeepTheConnection) {
  H2Options o;
  o.pingInterval = Duration{20};
  o.pingTimeout = Duration{2000};
  RawFixture f(H2Connection::Role::Client, o);
  f.peer->send(frame(kSettings, 0, 0, ""));
  int answered = 0;
  // Answer five PINGs: each comes after an interval of silence (PING ACKs are the only traffic).
  f.peer->readFrames([&](const Frame& fr) {
    if (fr.type == kPing && !(fr.flags & kAck)) {
      f.peer->send(frame(kPing, kAck, 0, fr.payload));
      ++answered;
    }
    return answered == 5;
  });
  EXPECT_EQ(answered, 5);
  f.rt.run([&] {
    EXPECT_FALSE(f.closed.happened) << f.closed.detail;
    EXPECT_EQ(f.stats.pingTimeouts.value(), 0u);
  });
}

TEST(H2ProtocolErrorTest, DataOnStreamZeroGetsGoawayProtocolError) {
  RawFixture f(H2Connection::Role::Server, {});
  f.peer->send(kClientMagic + frame(kSettings, 0, 0, "") + frame(kData, 0, 0, "oops"));
  auto frames = f.peer->readFrames([](const Frame& fr) { return fr.type == kGoaway; });
  ASSERT_FALSE(frames.empty());
  ASSERT_EQ(frames.back().type, kGoaway);
  EXPECT_EQ(be32(frames.back().payload, 4), 1u);  // PROTOCOL_ERROR
  f.peer->readFrames(nullptr, 5000);
  EXPECT_TRUE(f.peer->eof());  // and the transport is closed
  ASSERT_TRUE(f.rt.waitFor([&] { return f.closed.happened; }));
  f.rt.run([&] {
    EXPECT_EQ(f.closed.reason, Errc::ProtocolError);
    EXPECT_NE(f.closed.detail.find("PROTOCOL_ERROR"), std::string::npos) << f.closed.detail;
    EXPECT_EQ(f.stats.protocolErrors.value(), 1u);
  });
}

TEST(H2ProtocolErrorTest, BadPrefaceIsAProtocolError) {
  RawFixture f(H2Connection::Role::Server, {});
  f.peer->send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  f.peer->readFrames(nullptr, 5000);
  EXPECT_TRUE(f.peer->eof());
  ASSERT_TRUE(f.rt.waitFor([&] { return f.closed.happened; }));
  f.rt.run([&] {
    EXPECT_EQ(f.closed.reason, Errc::ProtocolError);
    EXPECT_NE(f.closed.detail.find("preface"), std::string::npos) << f.closed.detail;
  });
}

// A peer overrunning one stream's window: that stream is reset, the connection carries on.
TEST(H2ProtocolErrorTest, FlowControlViolationResetsOnlyThatStream) {
  H2Options o;
  o.streamWindow = 65535;
  RawFixture f(H2Connection::Role::Server, o);
  f.peer->send(kClientMagic + frame(kSettings, 0, 0, "") +
               frame(kHeaders, kEndHeaders, 1, connectHeaders("x.test:443")));
  auto frames = f.peer->readFrames([](const Frame& fr) { return fr.type == kHeaders && fr.stream == 1; });
  ASSERT_FALSE(frames.empty());
  ASSERT_EQ(frames.back().type, kHeaders);  // the CONNECT was delivered and answered
  std::string in;
  const std::string chunk(16384, 'd');
  for (int i = 0; i < 5; ++i) in += frame(kData, 0, 1, chunk);  // 81920 > 65535
  f.peer->send(in);
  frames = f.peer->readFrames([](const Frame& fr) { return fr.type == kRstStream; });
  ASSERT_EQ(frames.back().type, kRstStream);
  EXPECT_EQ(frames.back().stream, 1u);
  EXPECT_EQ(be32(frames.back().payload, 0), 3u);  // FLOW_CONTROL_ERROR
  // The connection is alive: a PING is answered.
  f.peer->send(frame(kPing, 0, 0, "12345678"));
  frames = f.peer->readFrames([](const Frame& fr) { return fr.type == kPing && (fr.flags & kAck); });
  ASSERT_EQ(frames.back().type, kPing);
  EXPECT_EQ(frames.back().payload, "12345678");
  f.rt.run([&] {
    EXPECT_FALSE(f.closed.happened);
    ASSERT_EQ(f.requests.size(), 1u);
    uint8_t b[16];
    EXPECT_EQ(f.requests[0]->read(b, sizeof(b)).err, ECONNRESET);
  });
}

TEST(H2ProtocolErrorTest, PeerGoawayWithErrorIsReported) {
  RawFixture f(H2Connection::Role::Client, {});
  std::string payload(8, '\0');
  payload[7] = 2;  // INTERNAL_ERROR, last stream 0
  f.peer->send(frame(kSettings, 0, 0, "") + frame(kGoaway, 0, 0, payload + "overloaded"));
  ASSERT_TRUE(f.rt.waitFor([&] { return f.closed.happened; }));
  f.rt.run([&] {
    EXPECT_EQ(f.closed.reason, Errc::Reset);
    EXPECT_NE(f.closed.detail.find("INTERNAL_ERROR"), std::string::npos) << f.closed.detail;
    EXPECT_NE(f.closed.detail.find("overloaded"), std::string::npos) << f.closed.detail;
    EXPECT_FALSE(f.conn->canOpenStream());
  });
}

}  // namespace
}  // namespace ugate::http

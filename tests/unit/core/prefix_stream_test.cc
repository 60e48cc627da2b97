// PrefixStream over a real socket: the bytes already read come first, then the socket's; writes,
// readiness callbacks and the splice fd pass through once the prefix is spent.
#include "core/prefix_stream.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include <ugate/tcp_stream.h>

namespace ugate {
namespace {

struct Recorder : StreamCallbacks {
  int readable = 0;
  int writable = 0;
  void onStreamReadable(Stream&) override { ++readable; }
  void onStreamWritable(Stream&) override { ++writable; }
};

std::string readSome(Stream& s, size_t len) {
  std::string out(len, '\0');
  IoResult r = s.read(reinterpret_cast<uint8_t*>(out.data()), len);
  if (!r.ok()) return "<err " + std::to_string(r.err) + ">";
  out.resize(static_cast<size_t>(r.value));
  return out;
}

TEST(PrefixStreamTest, PrefixFirstThenTheSocketAndWritesPassThrough) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  ReactorPtr r = newReactor(realTimeSource(), 0);
  auto inner = std::make_unique<TcpStream>(*r, fds[0]);
  const int innerFd = inner->spliceFd();
  PrefixStream s(std::move(inner), "hello ");
  Recorder rec;
  s.setCallbacks(&rec);
  EXPECT_TRUE(s.readReady());
  EXPECT_EQ(s.spliceFd(), -1);  // bytes in userland: no zero-copy yet

  EXPECT_EQ(readSome(s, 3), "hel");
  EXPECT_EQ(readSome(s, 100), "lo ");  // the rest of the prefix, never mixed with socket bytes
  EXPECT_EQ(s.spliceFd(), innerFd);
  IoResult blocked = s.read(reinterpret_cast<uint8_t*>(&rec), 1);
  EXPECT_TRUE(blocked.wouldBlock());
  EXPECT_FALSE(s.readReady());

  ASSERT_EQ(write(fds[1], "world", 5), 5);
  r->post([&r] { r->exit(); });
  r->run();  // delivers the socket's readiness through the wrapper
  EXPECT_GE(rec.readable, 1);
  EXPECT_TRUE(s.readReady());
  EXPECT_EQ(readSome(s, 100), "world");

  IoResult w = s.write(reinterpret_cast<const uint8_t*>("back"), 4);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.value, 4);
  char buf[8] = {};
  EXPECT_EQ(read(fds[1], buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(buf, 4), "back");

  s.shutdownWrite();
  EXPECT_EQ(read(fds[1], buf, sizeof(buf)), 0);  // FIN reached the peer
  s.close(false);
  close(fds[1]);
}

TEST(PrefixStreamTest, EmptyPrefixIsTransparent) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  ReactorPtr r = newReactor(realTimeSource(), 0);
  auto inner = std::make_unique<TcpStream>(*r, fds[0]);
  const int innerFd = inner->spliceFd();
  PrefixStream s(std::move(inner), "");
  EXPECT_EQ(s.spliceFd(), innerFd);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  EXPECT_EQ(readSome(s, 10), "x");
  s.close(true);
  close(fds[1]);
}

}  // namespace
}  // namespace ugate

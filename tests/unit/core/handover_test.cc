// The upgrade handover's messages (core/handover.h) and its channel (core/handover_channel.h):
// every message round-trips; every malformed one is refused with a reason, never half-read; and
// descriptors cross a real socket pair beside their message.
#include "core/handover.h"
#include "core/handover_channel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace ugate::handover {
namespace {

SessionRecord sampleSession() {
  SessionRecord s;
  s.id = 0x123456789abcULL;
  s.kind = StreamKind::Socks5;
  s.listener = "socks";
  s.source = *SocketAddress::parse("127.0.0.1:40000");
  s.local = *SocketAddress::parse("[::1]:1080");
  s.upstreamAddr = *SocketAddress::parse("10.1.2.3:443");
  s.host = "example.test";
  s.port = 443;
  s.sni = "example.test";
  s.alpn = "h2,http/1.1";
  s.route = "web";
  s.upstream = "example.test:443";
  s.headers = {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}};
  s.ageMicros = 1'500'000;
  s.dir[0].bytes = 1000;
  s.dir[0].hasPipe = true;
  s.dir[0].inPipe = 4096;
  s.dir[1].bytes = 77;
  s.dir[1].finished = true;
  s.dir[1].parked = std::string("\0parked\xff", 8);
  return s;
}

TEST(Handover, SessionRoundTrips) {
  const SessionRecord s = sampleSession();
  const std::string wire = encode(s);
  ASSERT_EQ(*peekType(wire), Type::Session);
  auto d = decodeSession(wire);
  ASSERT_TRUE(d) << d.error().detail;
  EXPECT_EQ(d->id, s.id);
  EXPECT_EQ(d->kind, s.kind);
  EXPECT_EQ(d->listener, s.listener);
  EXPECT_EQ(d->source, s.source);
  EXPECT_EQ(d->local, s.local);
  EXPECT_FALSE(d->originalDst.valid());
  EXPECT_EQ(d->upstreamAddr, s.upstreamAddr);
  EXPECT_EQ(d->host, s.host);
  EXPECT_EQ(d->port, 443);
  EXPECT_EQ(d->alpn, s.alpn);
  EXPECT_EQ(d->route, s.route);
  EXPECT_EQ(d->upstream, s.upstream);
  EXPECT_EQ(d->headers, s.headers);
  EXPECT_EQ(d->ageMicros, s.ageMicros);
  EXPECT_EQ(d->dir[0].inPipe, 4096u);
  EXPECT_TRUE(d->dir[0].hasPipe);
  EXPECT_FALSE(d->dir[0].finished);
  EXPECT_TRUE(d->dir[1].finished);
  EXPECT_EQ(d->dir[1].parked, s.dir[1].parked);
  EXPECT_EQ(d->dir[1].bytes, 77u);
  EXPECT_EQ(d->fdCount(), 4u);  // client, upstream, one pipe's two ends
}

TEST(Handover, OtherMessagesRoundTrip) {
  Hello h;
  h.pid = 4242;
  h.listeners = {"fwd", "socks", ""};
  auto hd = decodeHello(encode(h));
  ASSERT_TRUE(hd) << hd.error().detail;
  EXPECT_EQ(hd->version, kVersion);
  EXPECT_EQ(hd->pid, 4242);
  EXPECT_EQ(hd->listeners, h.listeners);

  ListenerSocket l{"quic", "[::]:443", true, 3};
  auto ld = decodeListener(encode(l));
  ASSERT_TRUE(ld) << ld.error().detail;
  EXPECT_EQ(ld->name, "quic");
  EXPECT_EQ(ld->address, "[::]:443");
  EXPECT_TRUE(ld->datagram);
  EXPECT_EQ(ld->worker, 3);

  auto ed = decodeEndpoint(encode(Endpoint{false, "127.0.0.1:15021"}));
  ASSERT_TRUE(ed);
  EXPECT_FALSE(ed->admin);
  EXPECT_EQ(ed->address, "127.0.0.1:15021");

  auto ad = decodeDoneAck(encode(DoneAck{1000, 2}));
  ASSERT_TRUE(ad);
  EXPECT_EQ(ad->adopted, 1000u);
  EXPECT_EQ(ad->refused, 2u);

  for (Type t : {Type::ListenersEnd, Type::Listening, Type::Done}) {
    auto p = peekType(encodeBare(t));
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, t);
    EXPECT_FALSE(peekType(encodeBare(t) + "x")) << typeName(t) << " with a trailing byte";
  }
}

TEST(Handover, EveryTruncationIsRefused) {
  const std::string wire = encode(sampleSession());
  for (size_t n = 0; n < wire.size(); ++n) {
    auto d = decodeSession(std::string_view(wire).substr(0, n));
    EXPECT_FALSE(d) << "accepted " << n << " of " << wire.size() << " bytes";
  }
  auto extra = decodeSession(wire + "!");
  ASSERT_FALSE(extra);
  EXPECT_NE(extra.error().detail.find("after the end"), std::string::npos) << extra.error().detail;
}

TEST(Handover, MalformedFieldsAreRefusedWithTheReason) {
  EXPECT_FALSE(peekType(""));
  EXPECT_FALSE(peekType(std::string(1, '\x09')));
  EXPECT_FALSE(peekType(std::string(1, '\0')));
  // A message of another type.
  auto wrong = decodeSession(encode(Hello{}));
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().detail.find("not a session"), std::string::npos) << wrong.error().detail;
  // A flag that is neither 0 nor 1 (the listener's datagram flag sits after two strings).
  std::string l = encode(ListenerSocket{"a", "b", false, 0});
  l[1 + 4 + 1 + 4 + 1] = 2;
  auto lf = decodeListener(l);
  ASSERT_FALSE(lf);
  EXPECT_NE(lf.error().detail.find("flag"), std::string::npos) << lf.error().detail;
  // A string longer than its limit.
  Hello big;
  big.listeners = {std::string(5000, 'x')};
  auto bf = decodeHello(encode(big));
  ASSERT_FALSE(bf);
  EXPECT_NE(bf.error().detail.find("exceeds its limit"), std::string::npos) << bf.error().detail;
  // Bytes said to be in a pipe that does not travel.
  SessionRecord s = sampleSession();
  s.dir[0].hasPipe = false;
  auto pf = decodeSession(encode(s));
  ASSERT_FALSE(pf);
  EXPECT_NE(pf.error().detail.find("pipe"), std::string::npos) << pf.error().detail;
  // An address whose length does not fit its family.
  std::string a = encode(sampleSession());
  const size_t addrAt = 1 + 8 + 1 + 4 + 5;  // type, id, kind, listener "socks"
  ASSERT_EQ(static_cast<uint8_t>(a[addrAt]), sizeof(sockaddr_in));
  a[addrAt] = 7;
  EXPECT_FALSE(decodeSession(a));
}

ino_t inodeOf(int fd) {
  struct stat st {};
  fstat(fd, &st);
  return st.st_ino;
}

TEST(HandoverChannel, MessagesCarryDescriptors) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  Channel a(sv[0]), b(sv[1]);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  ASSERT_EQ(write(p[1], "inflight", 8), 8);
  const std::string msg = encode(sampleSession());
  ASSERT_TRUE(a.send(msg, {p[0], p[1]}));
  std::vector<int> fds;
  auto got = b.recv(fds, 1000);
  ASSERT_TRUE(got) << got.error().detail;
  EXPECT_EQ(*got, msg);
  ASSERT_EQ(fds.size(), 2u);
  EXPECT_EQ(inodeOf(fds[0]), inodeOf(p[0]));
  EXPECT_EQ(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  close(p[0]);
  close(p[1]);
  char buf[16];
  ASSERT_EQ(read(fds[0], buf, sizeof(buf)), 8);  // the bytes in the pipe came along
  EXPECT_EQ(std::string(buf, 8), "inflight");
  for (int fd : fds) close(fd);

  // Nothing sent: a timeout with its reason; the other side gone: Shutdown.
  fds.clear();
  auto none = b.recv(fds, 10);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::ConnectTimeout);
}

TEST(HandoverChannel, PeerGoneIsShutdown) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  Channel b(sv[1]);
  close(sv[0]);
  std::vector<int> fds;
  auto r = b.recv(fds, 1000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Shutdown);
  EXPECT_NE(r.error().detail.find("closed the channel"), std::string::npos);
  EXPECT_FALSE(b.send("x"));
}

}  // namespace
}  // namespace ugate::handover

// startConnect's upstream socket options and openListenSocket's pre-bind hook, on loopback.
#include <ugate/socket_util.h>

#include "core/port_holders.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

namespace ugate {
namespace {

struct Listening {
  int fd{-1};
  SocketAddress addr;
  explicit Listening(const char* ip) {
    auto r = openListenSocket(*SocketAddress::fromIp(ip, 0), 16, false);
    EXPECT_TRUE(r) << (r ? "" : r.error().detail);
    if (r) {
      fd = *r;
      addr = localAddress(fd);
    }
  }
  ~Listening() {
    if (fd >= 0) close(fd);
  }
  // acceptPeer waits for one connection and returns the client's address as the server sees it.
  SocketAddress acceptPeer() const {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return {};
    int c = accept(fd, nullptr, nullptr);
    if (c < 0) return {};
    SocketAddress peer = peerAddress(c);
    close(c);
    return peer;
  }
};

TEST(StartConnect, BindsTheRequestedSource) {
  Listening l("127.0.0.1");
  ConnectOptions o;
  o.source = *SocketAddress::fromIp("127.0.0.6", 0);
  auto fd = startConnect(l.addr, o);
  ASSERT_TRUE(fd) << fd.error().detail;
  SocketAddress peer = l.acceptPeer();
  close(*fd);
  EXPECT_EQ(peer.ip(), "127.0.0.6");
  EXPECT_NE(peer.port(), 0) << "port 0 means: the kernel picks one at connect()";
}

TEST(StartConnect, SourceOfAnotherFamilyIsAnError) {
  ConnectOptions o;
  o.source = *SocketAddress::fromIp("::1", 0);
  auto fd = startConnect(*SocketAddress::parse("127.0.0.1:9"), o);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code, Errc::InvalidArgument);
  EXPECT_EQ(fd.error().detail,
            "source [::1]:0 and destination 127.0.0.1:9 are of different families");
}

TEST(StartConnect, ASourceThatIsNotLocalNeedsTransparency) {
  ConnectOptions o;
  o.source = *SocketAddress::fromIp("192.0.2.1", 0);
  auto fd = startConnect(*SocketAddress::parse("127.0.0.1:9"), o);
  ASSERT_FALSE(fd);
  EXPECT_NE(fd.error().detail.find("bind 192.0.2.1:0: "), std::string::npos) << fd.error().detail;
}

TEST(StartConnect, MarkIsSetOrRefusedWithTheReason) {
  Listening l("127.0.0.1");
  ConnectOptions o;
  o.mark = 1337;
  auto fd = startConnect(l.addr, o);
  if (!fd) {
    // Without CAP_NET_ADMIN the error says what is missing.
    EXPECT_EQ(fd.error().detail, "SO_MARK: Operation not permitted (needs CAP_NET_ADMIN)");
    GTEST_SKIP() << "no CAP_NET_ADMIN here";
  }
  uint32_t mark = 0;
  socklen_t len = sizeof(mark);
  ASSERT_EQ(getsockopt(*fd, SOL_SOCKET, SO_MARK, &mark, &len), 0);
  EXPECT_EQ(mark, 1337u);
  close(*fd);
}

TEST(OpenListenSocket, BeforeBindRunsOnTheFreshSocketAndItsErrorWins) {
  int seen = -1;
  auto fd =
      openListenSocket(*SocketAddress::parse("127.0.0.1:0"), 4, false, [&](int s) -> Result<void> {
        seen = s;
        return {};
      });
  ASSERT_TRUE(fd);
  EXPECT_EQ(seen, *fd);
  close(*fd);
  auto bad = openListenSocket(
      *SocketAddress::parse("127.0.0.1:0"), 4, false,
      [](int) -> Result<void> { return makeError(Errc::AuthFailed, "IP_TRANSPARENT: no"); });
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::AuthFailed);
  EXPECT_EQ(bad.error().detail, "IP_TRANSPARENT: no");
}

// ---------------------------------------------------------------------------------------------
// probeBind and findPortUse: the double-bind check (src/ugated/preflight.cc).

TEST(ProbeBind, SeesAReusePortListenerThatTheRealBindWouldSilentlyJoin) {
  auto held = openListenSocket(*SocketAddress::parse("127.0.0.1:0"), 4, /*reusePort=*/true);
  ASSERT_TRUE(held);
  const SocketAddress addr = localAddress(*held);
  // The problem: a second SO_REUSEPORT bind of the same user succeeds.
  auto joined = openListenSocket(addr, 4, /*reusePort=*/true);
  ASSERT_TRUE(joined) << joined.error().detail;
  close(*joined);
  // The probe does not join: EADDRINUSE, reported like a bind error.
  BindProbe p = probeBind(addr, /*datagram=*/false, /*reusePort=*/false);
  EXPECT_EQ(p.err, EADDRINUSE);
  EXPECT_EQ(p.error.code, Errc::AlreadyExists);
  EXPECT_EQ(p.error.detail, "bind " + addr.str() + ": Address already in use");
  // sharePort's probe joins (bind only, never listening): it would succeed.
  EXPECT_TRUE(probeBind(addr, false, /*reusePort=*/true).ok());
  // The holder is this process, and only this one.
  PortUse use = findPortUse(addr, false);
  EXPECT_TRUE(use.self);
  EXPECT_FALSE(use.others);
  // A wildcard bind of the port overlaps it too.
  PortUse any = findPortUse(*SocketAddress::fromIp("0.0.0.0", addr.port()), false);
  EXPECT_TRUE(any.self);
  close(*held);
  EXPECT_TRUE(probeBind(addr, false, false).ok());
  EXPECT_FALSE(findPortUse(addr, false).self);
}

TEST(ProbeBind, UdpProbeIsNotFooledBySoReuseAddr) {
  // Two UDP sockets that both set SO_REUSEADDR share a port: the probe must not set it.
  auto held = openDatagramSocket(*SocketAddress::parse("127.0.0.1:0"), /*reusePort=*/true);
  ASSERT_TRUE(held);
  const SocketAddress addr = localAddress(*held);
  BindProbe p = probeBind(addr, /*datagram=*/true, false);
  EXPECT_EQ(p.err, EADDRINUSE);
  EXPECT_EQ(p.error.detail, "bind udp " + addr.str() + ": Address already in use");
  EXPECT_TRUE(findPortUse(addr, true).self);
  EXPECT_FALSE(findPortUse(addr, false).self);  // no TCP socket there
  close(*held);
  EXPECT_TRUE(probeBind(addr, true, false).ok());
}

TEST(ProbeBind, ReportsOtherBindErrorsAsTheRealBindWould) {
  // 192.0.2.1 (TEST-NET-1) is no address of this host.
  BindProbe p = probeBind(*SocketAddress::parse("192.0.2.1:80"), false, false);
  EXPECT_EQ(p.err, EADDRNOTAVAIL);
  EXPECT_EQ(p.error.detail, "bind 192.0.2.1:80: Cannot assign requested address");
  BindProbe hook = probeBind(*SocketAddress::parse("127.0.0.1:0"), false, false,
                             [](int) -> Result<void> { return makeError(Errc::AuthFailed, "IP_TRANSPARENT: no"); });
  EXPECT_EQ(hook.err, -1);
  EXPECT_EQ(hook.error.detail, "IP_TRANSPARENT: no");
}

}  // namespace
}  // namespace ugate

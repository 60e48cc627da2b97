// The ancillary-data helpers of datagram_io (sans I/O): what recvmmsg hands back (GRO segment size,
// TOS / traffic class, packet info) and what a sent message carries (source address, ECN, GSO).
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include <ugate/datagram_io.h>

namespace ugate::udp {
namespace {

/** Cmsgs: a hand-built control buffer, as the kernel would fill it. */
class Cmsgs {
 public:
  template <typename T>
  Cmsgs& add(int level, int type, const T& v) {
    return addBytes(level, type, &v, sizeof(v));
  }
  Cmsgs& addBytes(int level, int type, const void* p, size_t n) {
    const size_t at = buf_.size();
    buf_.resize(at + CMSG_SPACE(n));
    auto* c = reinterpret_cast<cmsghdr*>(buf_.data() + at);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(n);
    std::memcpy(CMSG_DATA(c), p, n);
    return *this;
  }
  msghdr header() {
    msghdr h{};
    h.msg_control = buf_.empty() ? nullptr : buf_.data();
    h.msg_controllen = buf_.size();
    return h;
  }

 private:
  std::vector<uint8_t> buf_;  // heap storage: aligned for cmsghdr
};

TEST(DatagramCmsg, GroSegmentSizeAndTos) {
  Cmsgs c;
  c.add<int>(SOL_UDP, UDP_GRO, 1252).add<uint8_t>(SOL_IP, IP_TOS, uint8_t{0x02});
  msghdr h = c.header();
  Datagram d;
  uint32_t overflow = 0;
  parseRecvCmsgs(h, d, overflow);
  EXPECT_EQ(d.segSize, 1252);
  EXPECT_EQ(d.tos, 0x02);  // ECT(0)
  EXPECT_EQ(overflow, 0u);
}

TEST(DatagramCmsg, TrafficClassIsAnInt) {
  Cmsgs c;
  c.add<int>(SOL_IPV6, IPV6_TCLASS, 0xb9);  // DSCP 46 + CE
  msghdr h = c.header();
  Datagram d;
  uint32_t overflow = 0;
  parseRecvCmsgs(h, d, overflow);
  EXPECT_EQ(d.tos, 0xb9);
  EXPECT_EQ(d.tos & 0x03, 0x01);
  EXPECT_EQ(d.segSize, 0);
}

TEST(DatagramCmsg, PacketInfoAndOverflowBesideGro) {
  in_pktinfo pi{};
  pi.ipi_addr.s_addr = htonl(0x7f000002);
  Cmsgs c;
  c.add<uint32_t>(SOL_SOCKET, SO_RXQ_OVFL, 7u).add(SOL_IP, IP_PKTINFO, pi).add<int>(SOL_UDP, UDP_GRO, 1200);
  msghdr h = c.header();
  Datagram d;
  uint32_t overflow = 0;
  parseRecvCmsgs(h, d, overflow);
  EXPECT_EQ(overflow, 7u);
  EXPECT_EQ(d.local.str(), "127.0.0.2:0");
  EXPECT_EQ(d.segSize, 1200);
}

TEST(DatagramCmsg, OutOfRangeGroSizeIsOneDatagram) {
  for (int bad : {0, -5, 70000}) {
    Cmsgs c;
    c.add<int>(SOL_UDP, UDP_GRO, bad);
    msghdr h = c.header();
    Datagram d;
    uint32_t overflow = 0;
    parseRecvCmsgs(h, d, overflow);
    EXPECT_EQ(d.segSize, 0) << bad;
  }
}

TEST(DatagramCmsg, TruncatedCmsgsAreIgnored) {
  Cmsgs c;
  const uint8_t half[2] = {1, 2};
  c.addBytes(SOL_IP, IP_PKTINFO, half, sizeof(half));  // shorter than in_pktinfo
  msghdr h = c.header();
  Datagram d;
  uint32_t overflow = 0;
  parseRecvCmsgs(h, d, overflow);
  EXPECT_FALSE(d.local.valid());
}

/** cmsgsOf lists (level, type, first int-or-byte value) of a built control buffer. */
struct Seen {
  int level, type;
  size_t len;
  const uint8_t* data;
};
std::vector<Seen> cmsgsOf(uint8_t* buf, size_t len) {
  msghdr h{};
  h.msg_control = buf;
  h.msg_controllen = len;
  std::vector<Seen> out;
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
    out.push_back({c->cmsg_level, c->cmsg_type, c->cmsg_len - CMSG_LEN(0), CMSG_DATA(c)});
  }
  return out;
}

TEST(DatagramCmsg, BuildNothing) {
  alignas(cmsghdr) uint8_t buf[kSendCmsgSpace];
  EXPECT_EQ(buildSendCmsgs(buf, AF_INET, SocketAddress{}, 0, 0), 0u);
}

TEST(DatagramCmsg, BuildSourceEcnAndSegmentV4) {
  alignas(cmsghdr) uint8_t buf[kSendCmsgSpace];
  auto from = SocketAddress::parse("127.0.0.3:0");
  ASSERT_TRUE(from);
  const size_t n = buildSendCmsgs(buf, AF_INET, *from, 0x02, 1252);
  ASSERT_LE(n, kSendCmsgSpace);
  auto seen = cmsgsOf(buf, n);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].level, SOL_IP);
  EXPECT_EQ(seen[0].type, IP_PKTINFO);
  in_pktinfo pi;
  std::memcpy(&pi, seen[0].data, sizeof(pi));
  EXPECT_EQ(ntohl(pi.ipi_spec_dst.s_addr), 0x7f000003u);
  EXPECT_EQ(seen[1].level, SOL_IP);
  EXPECT_EQ(seen[1].type, IP_TOS);
  int tos;
  std::memcpy(&tos, seen[1].data, sizeof(tos));
  EXPECT_EQ(tos, 0x02);
  // UDP_SEGMENT last: SendBatch drops it alone when the kernel refuses GSO.
  EXPECT_EQ(seen[2].level, SOL_UDP);
  EXPECT_EQ(seen[2].type, UDP_SEGMENT);
  uint16_t seg;
  std::memcpy(&seg, seen[2].data, sizeof(seg));
  EXPECT_EQ(seg, 1252);
  EXPECT_EQ(n - CMSG_SPACE(sizeof(uint16_t)), CMSG_SPACE(sizeof(in_pktinfo)) + CMSG_SPACE(sizeof(int)));
}

TEST(DatagramCmsg, BuildTrafficClassV6WithoutSource) {
  alignas(cmsghdr) uint8_t buf[kSendCmsgSpace];
  const size_t n = buildSendCmsgs(buf, AF_INET6, SocketAddress{}, 0x01, 0);
  auto seen = cmsgsOf(buf, n);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].level, SOL_IPV6);
  EXPECT_EQ(seen[0].type, IPV6_TCLASS);
  int tc;
  std::memcpy(&tc, seen[0].data, sizeof(tc));
  EXPECT_EQ(tc, 0x01);
}

TEST(DatagramCmsg, BuiltCmsgsParseBack) {
  // What one side marks is what the other side reads: TOS through the receive parser.
  alignas(cmsghdr) uint8_t buf[kSendCmsgSpace];
  const size_t n = buildSendCmsgs(buf, AF_INET6, SocketAddress{}, 0x03, 0);
  msghdr h{};
  h.msg_control = buf;
  h.msg_controllen = n;
  Datagram d;
  uint32_t overflow = 0;
  parseRecvCmsgs(h, d, overflow);
  EXPECT_EQ(d.tos, 0x03);
}

TEST(DatagramCmsg, ForEachSegmentSplitsACoalescedBuffer) {
  std::vector<uint8_t> b(1200 * 3 + 500);
  std::vector<std::pair<size_t, size_t>> got;
  forEachSegment(b.data(), b.size(), 1200, [&](const uint8_t* p, size_t n) {
    got.emplace_back(static_cast<size_t>(p - b.data()), n);
  });
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], (std::pair<size_t, size_t>{0, 1200}));
  EXPECT_EQ(got[2], (std::pair<size_t, size_t>{2400, 1200}));
  EXPECT_EQ(got[3], (std::pair<size_t, size_t>{3600, 500}));
  got.clear();
  forEachSegment(b.data(), 900, 0, [&](const uint8_t* p, size_t n) { got.emplace_back(p - b.data(), n); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second, 900u);
  got.clear();
  forEachSegment(b.data(), 900, 1200, [&](const uint8_t* p, size_t n) { got.emplace_back(p - b.data(), n); });
  ASSERT_EQ(got.size(), 1u);
}

/** Real sockets on loopback: GRO on a receiver, a GSO train with ECT(0) from a sender. */
TEST(DatagramCmsg, LoopbackGsoTrainArrivesSplittableWithEcn) {
  int rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int tx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(rx, 0);
  ASSERT_GE(tx, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t al = sizeof(a);
  getsockname(rx, reinterpret_cast<sockaddr*>(&a), &al);
  ASSERT_TRUE(setRecvOptions(rx, AF_INET, kRecvTos));
  const bool gro = enableGro(rx);
  auto to = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&a), al);
  std::vector<uint8_t> train(1000 * 4 + 300);
  for (size_t i = 0; i < train.size(); ++i) train[i] = static_cast<uint8_t>(i / 1000);
  SendBatch sb;
  ASSERT_TRUE(sb.addSegmented(train.data(), train.size(), 1000, to, SocketAddress{}, 0x02));
  auto o = sb.flush(tx);
  EXPECT_EQ(o.dropped, 0u);
  RecvBatch rb;
  std::vector<size_t> sizes;
  for (int tries = 0; tries < 200 && sizes.size() < 5; ++tries) {
    IoResult r = rb.recv(rx, static_cast<uint8_t>(kRecvTos | (gro ? kRecvGro : 0)));
    if (!r.ok() || r.value <= 0) {
      usleep(1000);
      continue;
    }
    for (int i = 0; i < r.value; ++i) {
      Datagram& d = rb[static_cast<size_t>(i)];
      EXPECT_EQ(d.tos & 0x03, 0x02);
      forEachSegment(d.data, d.len, d.segSize, [&](const uint8_t* p, size_t n) {
        EXPECT_EQ(p[0], static_cast<uint8_t>(sizes.size()));
        sizes.push_back(n);
      });
    }
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{1000, 1000, 1000, 1000, 300}));
  close(rx);
  close(tx);
}

}  // namespace
}  // namespace ugate::udp

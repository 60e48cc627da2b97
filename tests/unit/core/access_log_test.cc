// AccessLog::formatLine: one line of valid JSON per stream, checked by parsing it back.
#include "core/access_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace ugate {
namespace {

using json = nlohmann::json;
using std::chrono::microseconds;

const MonotonicTime kStart = MonotonicTime{} + std::chrono::hours(5);
// 2024-01-02T03:04:05.678Z
const std::chrono::system_clock::time_point kWall =
    std::chrono::system_clock::time_point{} + std::chrono::milliseconds(1704164645678LL);

SocketAddress addr(std::string_view s) { return *SocketAddress::parse(s); }

StreamMeta minimalMeta() {
  StreamMeta m;
  m.id = 42;
  m.kind = StreamKind::Tcp;
  m.listener = "in";
  m.source = addr("192.0.2.1:50000");
  m.local = addr("127.0.0.1:7000");
  m.start = kStart;
  return m;
}

std::string format(const StreamMeta& m, MonotonicTime now = kStart,
                   std::chrono::system_clock::time_point wall = kWall) {
  std::string out;
  AccessLog::formatLine(out, m, now, wall);
  return out;
}

// parseLine checks out is exactly one newline-terminated line and parses it.
json parseLine(const std::string& out) {
  EXPECT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n'), out.size() - 1) << "more than one line: " << out;
  try {
    return json::parse(out);
  } catch (const json::exception& e) {
    ADD_FAILURE() << "not valid JSON: " << e.what() << "\n" << out;
    return json();
  }
}

TEST(AccessLogTest, MinimalLineHasRequiredFieldsOnly) {
  json j = parseLine(format(minimalMeta(), kStart + microseconds(1500)));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["time"], "2024-01-02T03:04:05.678Z");
  EXPECT_EQ(j["id"], 42);
  EXPECT_EQ(j["kind"], "tcp");
  EXPECT_EQ(j["listener"], "in");
  EXPECT_EQ(j["src"], "192.0.2.1:50000");
  EXPECT_EQ(j["local"], "127.0.0.1:7000");
  EXPECT_EQ(j["route"], "");
  EXPECT_EQ(j["bytes_in"], 0);
  EXPECT_EQ(j["bytes_out"], 0);
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 1.5);
  EXPECT_EQ(j["close"], "ok");
  for (const char* optional : {"original_dst", "host", "sni", "alpn", "peer", "traceparent", "baggage",
                               "upstream", "upstream_addr", "detail"}) {
    EXPECT_FALSE(j.contains(optional)) << optional << " present although unset";
  }
  EXPECT_EQ(j.size(), 11u) << j.dump();
}

TEST(AccessLogTest, TraceContextCarriedAcrossTunnelsIsLogged) {
  StreamMeta m = minimalMeta();
  m.headers = std::make_unique<std::vector<std::pair<std::string, std::string>>>();
  // Other carried headers (the hop list, tracestate) stay out of the line.
  m.headers->emplace_back("x-ugate-hops", "AAAA");
  m.headers->emplace_back("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  m.headers->emplace_back("tracestate", "congo=t61rcWkgMzE");
  m.headers->emplace_back("baggage", "userId=alice,serverNode=DF%2028,isProduction=false");
  json j = parseLine(format(m));
  EXPECT_EQ(j["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(j["baggage"], "userId=alice,serverNode=DF%2028,isProduction=false");
  EXPECT_FALSE(j.contains("tracestate"));
  EXPECT_FALSE(j.contains("x-ugate-hops"));
  EXPECT_EQ(j.size(), 13u) << j.dump();

  // Only the one that is present appears; an empty carried list adds nothing.
  m.headers->erase(m.headers->begin() + 1);
  j = parseLine(format(m));
  EXPECT_FALSE(j.contains("traceparent"));
  EXPECT_EQ(j["baggage"], "userId=alice,serverNode=DF%2028,isProduction=false");
  m.headers->clear();
  EXPECT_EQ(parseLine(format(m)).size(), 11u);
}

TEST(AccessLogTest, FullLineHasEveryFieldWithExactValues) {
  StreamMeta m = minimalMeta();
  m.id = 18'446'744'073'709'551'615ULL;  // the full uint64 range survives
  m.kind = StreamKind::Socks5;
  m.listener = "socks";
  m.source = addr("[2001:db8::1]:40000");
  m.local = addr("[::1]:1080");
  m.originalDst = addr("198.51.100.7:443");
  m.host = "example.com";
  m.port = 443;
  m.sni = "www.example.com";
  m.alpn = "h2";
  m.peer = std::make_unique<PeerIdentity>();
  m.peer->nodeId = "node-a";
  m.peer->spiffe = "spiffe://td/ns/a/sa/b";
  m.route = "routes[3]";
  m.upstream = "example.com:443";
  m.upstreamAddr = addr("198.51.100.7:443");
  m.bytesFromClient = 123'456'789'012ULL;
  m.bytesToClient = 987;
  m.closeReason = Errc::Reset;
  m.closeDetail = "upstream reset";
  json j = parseLine(format(m, kStart + microseconds(1'234'567)));
  EXPECT_EQ(j["id"].get<uint64_t>(), 18'446'744'073'709'551'615ULL);
  EXPECT_EQ(j["kind"], "socks5");
  EXPECT_EQ(j["listener"], "socks");
  EXPECT_EQ(j["src"], "[2001:db8::1]:40000");
  EXPECT_EQ(j["local"], "[::1]:1080");
  EXPECT_EQ(j["original_dst"], "198.51.100.7:443");
  EXPECT_EQ(j["host"], "example.com:443");
  EXPECT_EQ(j["sni"], "www.example.com");
  EXPECT_EQ(j["alpn"], "h2");
  EXPECT_EQ(j["peer"], "node-a");
  EXPECT_EQ(j["route"], "routes[3]");
  EXPECT_EQ(j["upstream"], "example.com:443");
  EXPECT_EQ(j["upstream_addr"], "198.51.100.7:443");
  EXPECT_EQ(j["bytes_in"].get<uint64_t>(), 123'456'789'012ULL);
  EXPECT_EQ(j["bytes_out"], 987);
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 1234.567);
  EXPECT_EQ(j["close"], "reset");
  EXPECT_EQ(j["detail"], "upstream reset");
  EXPECT_EQ(j.size(), 19u) << j.dump();
}

TEST(AccessLogTest, DurationHasMillisecondResolutionWithThreeDecimals) {
  std::string out = format(minimalMeta(), kStart + microseconds(2'000'001));
  EXPECT_NE(out.find("\"duration_ms\":2000.001"), std::string::npos) << out;
  out = format(minimalMeta(), kStart);
  EXPECT_NE(out.find("\"duration_ms\":0.000"), std::string::npos) << out;
}

TEST(AccessLogTest, NegativeDurationClampsToZero) {
  json j = parseLine(format(minimalMeta(), kStart - std::chrono::seconds(3)));
  EXPECT_EQ(j["duration_ms"].get<double>(), 0.0);
}

TEST(AccessLogTest, PeerFallsBackToSpiffe) {
  StreamMeta m = minimalMeta();
  m.peer = std::make_unique<PeerIdentity>();
  m.peer->spiffe = "spiffe://td/ns/x/sa/y";
  json j = parseLine(format(m));
  EXPECT_EQ(j["peer"], "spiffe://td/ns/x/sa/y");
}

TEST(AccessLogTest, PeerIsTheSpiffeUriWhenARouteMatchedOnIt) {
  StreamMeta m = minimalMeta();
  m.peer = std::make_unique<PeerIdentity>();
  m.peer->nodeId = "NODEA";
  m.peer->spiffe = "spiffe://td/ns/x/sa/y";
  json j = parseLine(format(m));
  EXPECT_EQ(j["peer"], "NODEA");
  EXPECT_FALSE(j.contains("peer_id"));
  m.peerMatchedSpiffe = true;
  j = parseLine(format(m));
  EXPECT_EQ(j["peer"], "spiffe://td/ns/x/sa/y");
  EXPECT_EQ(j["peer_id"], "NODEA");
}

TEST(AccessLogTest, HostWithIpv6LiteralIsBracketed) {
  StreamMeta m = minimalMeta();
  m.host = "2001:db8::5";
  m.port = 8443;
  json j = parseLine(format(m));
  EXPECT_EQ(j["host"], "[2001:db8::5]:8443");
}

TEST(AccessLogTest, InvalidAddressesFormatAsEmpty) {
  StreamMeta m = minimalMeta();
  m.source = SocketAddress{};
  m.local = SocketAddress{};
  json j = parseLine(format(m));
  EXPECT_EQ(j["src"], "");
  EXPECT_EQ(j["local"], "");
}

TEST(AccessLogTest, CloseReasonsUseStableNames) {
  struct Case {
    Errc e;
    const char* name;
  };
  for (Case c :
       {Case{Errc::Ok, "ok"}, Case{Errc::ConnectRefused, "connect_refused"},
        Case{Errc::ConnectTimeout, "connect_timeout"}, Case{Errc::IdleTimeout, "idle_timeout"},
        Case{Errc::RouteRejected, "route_rejected"}, Case{Errc::NoRoute, "no_route"},
        Case{Errc::DnsFailure, "dns_failure"}, Case{Errc::Io, "io_error"}}) {
    StreamMeta m = minimalMeta();
    m.closeReason = c.e;
    EXPECT_EQ(parseLine(format(m))["close"], c.name);
  }
}

TEST(AccessLogTest, KindNames) {
  struct Case {
    StreamKind k;
    const char* name;
  };
  for (Case c : {Case{StreamKind::Tcp, "tcp"}, Case{StreamKind::HttpConnect, "http-connect"},
                 Case{StreamKind::Sni, "sni"}, Case{StreamKind::UdpFlow, "udp-flow"},
                 Case{StreamKind::Pipe, "pipe"}}) {
    StreamMeta m = minimalMeta();
    m.kind = c.k;
    EXPECT_EQ(parseLine(format(m))["kind"], c.name);
  }
}

TEST(AccessLogTest, EscapesQuotesBackslashesAndControlCharacters) {
  StreamMeta m = minimalMeta();
  const std::string nasty = std::string("a\"b\\c\nd\re\tf") + '\x01' + '\x1f' + '\x7f' +
                            "/\xc3\xa9" + std::string(1, '\0') + "end";
  m.listener = nasty;
  m.route = "\"},{\"injected\":true";
  m.sni = "sni\n{\"fake\":1}";
  m.closeDetail = std::string("x\by\fz");
  m.upstream = "u\\";
  std::string out = format(m);
  json j = parseLine(out);
  EXPECT_EQ(j["listener"].get<std::string>(), nasty);
  EXPECT_EQ(j["route"], "\"},{\"injected\":true");
  EXPECT_EQ(j["sni"], "sni\n{\"fake\":1}");
  EXPECT_EQ(j["detail"], "x\by\fz");
  EXPECT_EQ(j["upstream"], "u\\");
  EXPECT_FALSE(j.contains("injected"));
  EXPECT_FALSE(j.contains("fake"));
  // No raw control character is left in the line (other than its terminating newline).
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    EXPECT_GE(static_cast<unsigned char>(out[i]), 0x20) << "raw control byte at " << i;
  }
}

TEST(AccessLogTest, AppendJsonString) {
  std::string out = "prefix:";
  appendJsonString(out, "q\"\x02");
  EXPECT_EQ(out, "prefix:\"q\\\"\\u0002\"");
  out.clear();
  appendJsonString(out, "");
  EXPECT_EQ(out, "\"\"");
}

// Client-controlled names (SNI from a ClientHello, a SOCKS5 domain) may carry bytes that are not
// UTF-8. JSON text must be UTF-8 (RFC 8259 §8.1), so such bytes have to be escaped or replaced,
// or the line is rejected by strict readers (nlohmann::json, Python's json, Go's encoding/json
// replaces them silently).
// DISABLED: src/core/access_log.cc appendJsonString() copies every byte >= 0x20 verbatim, so a
// non-UTF-8 SNI or host produces a line that is not valid JSON.
TEST(AccessLogTest, NonUtf8BytesStillYieldValidJson) {
  StreamMeta m = minimalMeta();
  m.sni = "bad\xff\xfe.example";
  m.host = "\xc3";  // truncated two-byte sequence
  m.port = 80;
  std::string out = format(m);
  EXPECT_TRUE(json::accept(out)) << out;
}

TEST(AccessLogTest, AppendsToExistingBuffer) {
  std::string out;
  StreamMeta a = minimalMeta();
  StreamMeta b = minimalMeta();
  b.id = 43;
  AccessLog::formatLine(out, a, kStart, kWall);
  size_t first = out.size();
  AccessLog::formatLine(out, b, kStart, kWall);
  ASSERT_GT(out.size(), first);
  EXPECT_EQ(parseLine(out.substr(0, first))["id"], 42);
  EXPECT_EQ(parseLine(out.substr(first))["id"], 43);
}

TEST(AccessLogTest, TimeIsUtcWithMilliseconds) {
  json j = parseLine(format(minimalMeta(), kStart, std::chrono::system_clock::time_point{}));
  EXPECT_EQ(j["time"], "1970-01-01T00:00:00.000Z");
  j = parseLine(
      format(minimalMeta(), kStart,
             std::chrono::system_clock::time_point{} + std::chrono::milliseconds(951782400999LL)));
  EXPECT_EQ(j["time"], "2000-02-29T00:00:00.999Z");
}

// The buffered writer: lines are written at the end of the loop turn, not inline.
TEST(AccessLogTest, LogBuffersUntilEndOfTurn) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  ReactorPtr reactor = newReactor(realTimeSource(), 0);
  bool readableInline = true;
  {
    AccessLog log(*reactor, fds[1]);
    EXPECT_TRUE(log.enabled());
    reactor->post([&] {
      StreamMeta a = minimalMeta();
      a.start = reactor->now();
      log.log(a);
      a.id = 43;
      log.log(a);
      pollfd p{fds[0], POLLIN, 0};
      readableInline = poll(&p, 1, 0) == 1;
      reactor->post([&] { reactor->exit(); });
    });
    reactor->run();
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof(buf));
    ASSERT_GT(n, 0) << "nothing was flushed by the end of the turn";
    std::string out(buf, static_cast<size_t>(n));
    auto nl = out.find('\n');
    ASSERT_NE(nl, std::string::npos);
    EXPECT_EQ(parseLine(out.substr(0, nl + 1))["id"], 42);
    EXPECT_EQ(parseLine(out.substr(nl + 1))["id"], 43);
  }
  EXPECT_FALSE(readableInline) << "log() wrote inline instead of once per turn";
  close(fds[0]);
  close(fds[1]);
}

TEST(AccessLogTest, DisabledWritesNothing) {
  ReactorPtr reactor = newReactor(realTimeSource(), 0);
  AccessLog log(*reactor, -1);
  EXPECT_FALSE(log.enabled());
  log.log(minimalMeta());
  log.flush();
}

}  // namespace
}  // namespace ugate

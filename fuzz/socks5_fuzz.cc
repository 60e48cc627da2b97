// libFuzzer target for the SOCKS front door and codec. Byte 0 picks the options (bit 0: a user is
// configured) and a split size (bits 1-4); the rest is the client's byte stream. The stream is fed
// once whole and once in pieces the way ProxySession does: both must end the same way (the
// codec's result depends only on the bytes, never on how they were split). The UDP header codec
// is run on the same bytes and must round-trip what it parses.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "socks/socks_codec.h"
#include "socks/socks_front_door.h"
#include "socks/socks_udp_relay.h"

namespace {

using namespace ugate;
using namespace ugate::socks;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Outcome {
  int end{0};  // 0 need more, 1 routed, 2 closed, 3 served (UDP ASSOCIATE)
  std::string toClient;
  std::string rest;
  std::string host;
  uint16_t port{0};
  Errc reason{Errc::Ok};
};

Outcome drive(SocksOptionsPtr opts, std::span<const uint8_t> in, size_t step) {
  SocksFrontDoor fd(std::move(opts));
  StreamMeta meta;
  Outcome o;
  std::string buf;
  size_t pos = 0;
  while (pos < in.size() && o.end == 0) {
    size_t n = std::min(step, in.size() - pos);
    buf.append(reinterpret_cast<const char*>(in.data() + pos), n);
    pos += n;
    for (;;) {
      auto r = fd.onClientBytes({reinterpret_cast<const uint8_t*>(buf.data()), buf.size()}, meta);
      check(r.consumed <= buf.size());
      if (r.action == FrontDoorResult::Action::NeedMore) {
        break;
      }
      if (r.action == FrontDoorResult::Action::Reply) {
        check(r.consumed > 0 && !r.reply.empty());
        buf.erase(0, r.consumed);
        o.toClient += r.reply;
        if (buf.empty()) break;
        continue;
      }
      if (r.action == FrontDoorResult::Action::Serve) {  // UDP ASSOCIATE: the session serves it
        check(r.consumed > 0 && r.reply.empty());
        buf.erase(0, r.consumed);
        o.end = 3;
        break;
      }
      if (r.action == FrontDoorResult::Action::Close) {
        o.toClient += r.reply;
        o.reason = r.reason;
        check(r.reason != Errc::Ok);
        o.end = 2;
        break;
      }
      check(r.consumed > 0);
      buf.erase(0, r.consumed);
      o.end = 1;
      check(meta.port != 0 && !meta.host.empty());
      o.host = meta.host;
      o.port = meta.port;
      // Every outcome produces a reply of the right shape.
      for (Errc e : {Errc::Ok, Errc::ConnectRefused, Errc::DnsFailure, Errc::Io}) {
        std::string rep = fd.onUpstreamResult(meta, e);
        check(rep.size() == 8 || rep.size() == 10);
      }
      break;
    }
  }
  buf.append(reinterpret_cast<const char*>(in.data() + pos), in.size() - pos);
  o.rest = o.end == 1 || o.end == 3 ? buf : std::string();
  return o;
}

void fuzzUdp(std::span<const uint8_t> in) {
  // The relay's view of a client datagram agrees with the header codec.
  ClientDatagram cd = decodeClientDatagram(in);
  UdpHeader h;
  const bool parsed = parseUdpHeader(in, h) == Status::Done;
  check((cd.drop == Errc::ProtocolError) == !parsed);
  if (parsed) {
    check((cd.drop == Errc::NotSupported) == (h.frag != 0));
    if (cd.drop == Errc::Ok) check(cd.payloadOffset == h.headerLen && cd.dst.port != 0 && h.frag == 0);
    if (h.dst.type != AddressType::Domain) {
      // An answer's header from that address parses back to it.
      uint8_t out[24];
      size_t n = encodeReplyHeader(h.dst.socketAddress(), out);
      UdpHeader back;
      check(parseUdpHeader({out, n}, back) == Status::Done && back.headerLen == n && back.frag == 0);
      check(back.dst.port == h.dst.port && back.dst.hostString() == h.dst.hostString());
    }
  }
  if (!parsed) return;
  check(h.headerLen <= in.size() && h.headerLen >= 8);  // 8: a one-byte name
  std::string again = encodeUdpHeader(h.dst);
  UdpHeader h2;
  check(parseUdpHeader({reinterpret_cast<const uint8_t*>(again.data()), again.size()}, h2) == Status::Done);
  check(h2.headerLen == again.size() && h2.dst.port == h.dst.port && h2.dst.hostString() == h.dst.hostString());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t ctl = data[0];
  std::span<const uint8_t> in(data + 1, size - 1);
  auto opts = std::make_shared<SocksOptions>();
  if (ctl & 1) opts->users.push_back({"user", "pass"});
  const size_t step = ((ctl >> 1) & 15) + 1;
  Outcome whole = drive(opts, in, in.size() ? in.size() : 1);
  Outcome split = drive(opts, in, step);
  check(whole.end == split.end);
  check(whole.toClient == split.toClient);
  check(whole.rest == split.rest);
  check(whole.host == split.host && whole.port == split.port);
  check(whole.reason == split.reason);
  fuzzUdp(in);
  return 0;
}

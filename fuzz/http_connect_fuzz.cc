// libFuzzer target for the http-connect front door. Byte 0 picks the options (bit 0: a user is
// configured) and a split size (bits 1-4); the rest is the client's byte stream, fed whole and in
// pieces: both must end the same way. Any absolute-form request the parser accepts is rewritten,
// and the rewritten head must parse again as an origin-form request that says Connection: close.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "http/connect_proxy.h"
#include "http/http1_parser.h"

namespace {

using namespace ugate;
using namespace ugate::http;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Outcome {
  int end{0};
  std::string toClient;
  std::string host;
  uint16_t port{0};
  size_t consumed{0};
};

Outcome drive(ConnectProxyOptionsPtr opts, std::span<const uint8_t> in, size_t step) {
  ConnectProxyFrontDoor fd(std::move(opts));
  StreamMeta meta;
  Outcome o;
  size_t have = 0;
  while (have < in.size() && o.end == 0) {
    have = std::min(in.size(), have + step);
    auto r = fd.onClientBytes(in.subspan(0, have), meta);
    check(r.consumed <= have);
    check(r.action != FrontDoorResult::Action::Reply);
    if (r.action == FrontDoorResult::Action::Close) {
      check(!r.reply.empty() && r.reason != Errc::Ok);
      o.end = 2;
      o.toClient = r.reply;
    } else if (r.action == FrontDoorResult::Action::Route) {
      o.end = 1;
      o.consumed = r.consumed;
      check(meta.port != 0 && !meta.host.empty());
      o.host = meta.host;
      o.port = meta.port;
      // CONNECT answers 200; an absolute-form request is forwarded rewritten and the origin answers.
      if (r.forward.empty()) {
        check(fd.onUpstreamResult(meta, Errc::Ok).starts_with("HTTP/1.1 200 "));
      } else {
        check(fd.onUpstreamResult(meta, Errc::Ok).empty());
        check(r.forward.find("\r\nConnection: close\r\n") != std::string::npos);
      }
      check(fd.onUpstreamResult(meta, Errc::ConnectTimeout).starts_with("HTTP/1.1 504 "));
    } else if (have > fd.maxSniffBytes()) {
      break;  // the session would close: too large
    }
  }
  return o;
}

void fuzzRewrite(std::span<const uint8_t> in) {
  RequestParser p;
  size_t c = 0;
  if (p.feed(in, c) != ParseStatus::Done) return;
  const Request& req = p.request();
  if (req.method == "CONNECT" || req.target.empty() || req.target.front() == '/') return;
  auto f = rewriteAbsoluteForm(req, nullptr);
  if (!f) return;
  check(f->port != 0 && !f->host.empty());
  RequestParser q;
  size_t c2 = 0;
  ParseStatus s = q.feed({reinterpret_cast<const uint8_t*>(f->head.data()), f->head.size()}, c2);
  check(s == ParseStatus::Done && c2 == f->head.size());
  check(q.request().target.front() == '/');
  check(!q.request().keepAlive);
  check(q.request().method == req.method);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t ctl = data[0];
  std::span<const uint8_t> in(data + 1, size - 1);
  auto opts = std::make_shared<ConnectProxyOptions>();
  if (ctl & 1) opts->users.push_back({"user", "pass"});
  Outcome whole = drive(opts, in, in.size() ? in.size() : 1);
  Outcome split = drive(opts, in, ((ctl >> 1) & 15) + 1);
  // A stream larger than the sniff cap may end differently when fed whole; compare only below it.
  if (in.size() <= ConnectProxyFrontDoor::kMaxHeadBytes) {
    check(whole.end == split.end);
    check(whole.toClient == split.toClient);
    check(whole.host == split.host && whole.port == split.port && whole.consumed == split.consumed);
  }
  fuzzRewrite(in);
  return 0;
}

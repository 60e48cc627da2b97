// libFuzzer target for the push service's request checks (src/webpush/push_api.h), all fed
// untrusted bytes by clients: the input is split at '\n' into a method, a request target and
// "name: value" header lines up to an empty line, and the rest is the body. Every check runs:
// matchTarget, checkPushHeaders, parseSubscribeBody, checkReceiveRequest, and on every header value
// parsePushReceipt (RFC 8030 §5.1) and parsePrefer (RFC 7240). Properties: a refusal
// has a 4xx/5xx status, a reason and a detail; a matched id is a valid id; accepted push headers
// have a TTL within [0, maxTtl], a topic of at most 32 characters and no body over maxBody; a
// restricted subscription's key is a 65-byte point; an SSE event of anything has no bare newline
// inside its data line; a Push-Receipt gives a valid id or a 400; a receipt event of a matched
// receipt ack is one event.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "webpush/push_api.h"

namespace {

using namespace ugate::webpush;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void checkRefusal(const Refusal& r) { check(r.status >= 400 && r.status < 600 && !r.reason.empty() && !r.detail.empty()); }

std::string_view nextLine(std::string_view& in) {
  const size_t nl = in.find('\n');
  std::string_view line = in.substr(0, nl);
  in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string_view method = nextLine(in);
  const std::string_view target = nextLine(in);
  HeaderList headers;
  while (!in.empty()) {
    std::string_view line = nextLine(in);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  const std::string_view body = in;

  auto t = matchTarget(method, target);
  if (auto* r = std::get_if<Refusal>(&t)) {
    checkRefusal(*r);
  } else {
    const ApiTarget& a = std::get<ApiTarget>(t);
    check(a.resource == Resource::Subscribe ? a.id.empty() : a.resource == Resource::Publish ? isTopicName(a.id) : isId(a.id));
    auto rr = checkReceiveRequest(headers, a.query);
    if (auto* rr2 = std::get_if<Refusal>(&rr)) checkRefusal(*rr2);
    else check(std::get<ReceiveRequest>(rr).lastEventId.empty() || isId(std::get<ReceiveRequest>(rr).lastEventId));
  }
  const PushLimits limits{3600, 4096};
  auto h = checkPushHeaders(headers, body.size(), limits);
  if (auto* r = std::get_if<Refusal>(&h)) {
    checkRefusal(*r);
  } else {
    const PushHeaders& p = std::get<PushHeaders>(h);
    check(p.ttl >= 0 && p.ttl <= limits.maxTtl && p.topic.size() <= kMaxTopicLength && body.size() <= limits.maxBody);
    StoredMessage m;
    m.id = "x";
    m.topic = p.topic;
    m.encoding = p.encoding;
    m.body = std::string(body);
    const std::string ev = sseEvent(m, 0);
    const size_t at = ev.find("data: ");
    check(at != std::string::npos && ev.find('\n', at) == ev.size() - 2);
  }
  for (const auto& [name, value] : headers) {
    auto pr = parsePushReceipt(value, "https://push.example:8443");
    if (auto* r = std::get_if<Refusal>(&pr)) {
      check(r->status == 400 && r->reason == "bad_push_receipt");
    } else {
      check(isId(std::get<std::string>(pr)));
    }
    Preferences p;
    parsePrefer(value, p);
    check(p.wait >= -1 && p.wait <= 999'999'999);
  }
  (void)preferences(headers);
  if (auto* a = std::get_if<ApiTarget>(&t); a && a->resource == Resource::ReceiptAck) {
    check(a->seq >= 0 && isId(a->id));
    const std::string ev = receiptSseEvent(a->id, a->seq, a->id, 0);
    check(ev.find("\n\n") == ev.size() - 2);
  }
  auto s = parseSubscribeBody(body);
  if (auto* r = std::get_if<Refusal>(&s)) {
    checkRefusal(*r);
  } else {
    const SubscribeRequest& q = std::get<SubscribeRequest>(s);
    const auto& k = q.applicationServerKey;
    check(k.empty() || (k.size() == 65 && k[0] == 0x04));
    // A topic mailbox: well-formed, never beside a pub/sub topic.
    check(q.mailbox.empty() || (isTopicMailbox(q.mailbox) && q.topic.empty()));
  }
  return 0;
}

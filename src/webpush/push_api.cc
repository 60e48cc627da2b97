#include "webpush/push_api.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "auth/crypto.h"
#include "auth/encoding.h"

namespace ugate::webpush {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool isBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

Refusal refuse(int status, std::string reason, std::string detail) {
  return Refusal{status, std::move(reason), std::move(detail)};
}

// queryParam: the value of `name` in an application/x-www-form-urlencoded query (no decoding: the
// values we read are plain tokens), nullopt when absent.
std::optional<std::string_view> queryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
  }
  return std::nullopt;
}

std::string jsonString(std::string_view s) { return nlohmann::json(std::string(s)).dump(); }

}  // namespace

std::optional<std::string_view> headerValue(const HeaderList& h, std::string_view lowerName) {
  for (const auto& [n, v] : h) {
    if (n == lowerName) return std::string_view(v);
  }
  return std::nullopt;
}

bool isId(std::string_view s) {
  return !s.empty() && s.size() <= kMaxIdLength && std::all_of(s.begin(), s.end(), isBase64UrlChar);
}

bool isTopicMailbox(std::string_view s) {
  constexpr std::string_view kPrefix = "topic:";
  if (!s.starts_with(kPrefix)) return false;
  s.remove_prefix(kPrefix.size());
  return !s.empty() && s.size() <= 32 && std::all_of(s.begin(), s.end(), isBase64UrlChar);
}

std::string newId(size_t bytes) {
  std::vector<uint8_t> b(std::max<size_t>(bytes, 16));
  randomBytes(b);
  return auth::base64UrlEncode(b);
}

std::string newMessageId(int64_t nowMs) {
  // The time in lower-case hex (which sorts as its bytes do; base64url's alphabet does not).
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(12, '0');
  for (int i = 0; i < 12; ++i) out[static_cast<size_t>(11 - i)] = kHex[(static_cast<uint64_t>(nowMs) >> (4 * i)) & 15];
  std::vector<uint8_t> b(18);
  randomBytes(b);
  return out + auth::base64UrlEncode(b);
}

bool isTopicName(std::string_view s) {
  const size_t slash = s.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash > 63) return false;
  for (char c : s.substr(0, slash)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  const std::string_view name = s.substr(slash + 1);
  return isId(name) && name.size() <= kMaxTopicLength;
}

std::variant<ApiTarget, Refusal> matchTarget(std::string_view method, std::string_view target) {
  const size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  ApiTarget t;
  if (q != std::string_view::npos) t.query = std::string(target.substr(q + 1));
  auto methodIs = [&](std::string_view m) { return method == m; };
  auto notAllowed = [&](std::string allow) {
    return refuse(405, "method_not_allowed", std::move(allow));
  };
  if (path == "/subscribe") {
    if (!methodIs("POST")) return notAllowed("POST");
    t.resource = Resource::Subscribe;
    return t;
  }
  if (path.starts_with("/topic/")) {
    if (!isTopicName(path.substr(7))) return refuse(404, "unknown_topic", "not a topic name (<node>/<name>)");
    if (!methodIs("POST")) return notAllowed("POST");
    t.resource = Resource::Publish;
    t.id = std::string(path.substr(7));
    return t;
  }
  struct Prefix {
    std::string_view prefix;
    const char* allow;
  };
  if (path.starts_with("/r/")) {
    // /r/<rsid> (GET, DELETE) or /r/<rsid>/<seq> (DELETE: one receipt acknowledged).
    std::string_view rest = path.substr(3);
    const size_t slash = rest.find('/');
    std::string_view id = rest.substr(0, slash);
    if (!isId(id)) return refuse(404, "unknown_resource", "not a resource of this push service");
    t.id = std::string(id);
    if (slash != std::string_view::npos) {
      std::string_view seq = rest.substr(slash + 1);
      if (seq.empty() || seq.size() > 18 || !std::all_of(seq.begin(), seq.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return refuse(404, "unknown_resource", "not a resource of this push service");
      }
      for (char c : seq) t.seq = t.seq * 10 + (c - '0');
      if (!methodIs("DELETE")) return notAllowed("DELETE");
      t.resource = Resource::ReceiptAck;
      return t;
    }
    if (methodIs("GET")) {
      t.resource = Resource::ReceiptReceive;
    } else if (methodIs("DELETE")) {
      t.resource = Resource::ReceiptUnsubscribe;
    } else {
      return notAllowed("GET, DELETE");
    }
    return t;
  }
  static constexpr Prefix kPrefixes[] = {
      {"/push/", "POST"}, {"/s/", "GET, DELETE"}, {"/m/", "DELETE"}, {"/receipts/", "POST"}};
  for (const Prefix& p : kPrefixes) {
    if (path.substr(0, p.prefix.size()) != p.prefix) continue;
    std::string_view id = path.substr(p.prefix.size());
    if (!isId(id)) return refuse(404, "unknown_resource", "not a resource of this push service");
    t.id = std::string(id);
    if (p.prefix == "/push/" && methodIs("POST")) {
      t.resource = Resource::Push;
    } else if (p.prefix == "/s/" && methodIs("GET")) {
      t.resource = Resource::Receive;
    } else if (p.prefix == "/s/" && methodIs("DELETE")) {
      t.resource = Resource::Unsubscribe;
    } else if (p.prefix == "/m/" && methodIs("DELETE")) {
      t.resource = Resource::DeleteMessage;
    } else if (p.prefix == "/receipts/" && methodIs("POST")) {
      t.resource = Resource::ReceiptSubscribe;
    } else {
      return notAllowed(p.allow);
    }
    return t;
  }
  return refuse(404, "unknown_resource", "not a resource of this push service");
}

std::optional<Urgency> parseUrgency(std::string_view v) {
  if (iequals(v, "very-low")) return Urgency::VeryLow;
  if (iequals(v, "low")) return Urgency::Low;
  if (iequals(v, "normal")) return Urgency::Normal;
  if (iequals(v, "high")) return Urgency::High;
  return std::nullopt;
}

std::string_view urgencyName(Urgency u) {
  switch (u) {
    case Urgency::VeryLow: return "very-low";
    case Urgency::Low: return "low";
    case Urgency::Normal: return "normal";
    case Urgency::High: return "high";
  }
  return "normal";
}

std::variant<PushHeaders, Refusal> checkPushHeaders(const HeaderList& h, size_t bodySize, const PushLimits& l) {
  PushHeaders out;
  auto ttl = headerValue(h, "ttl");
  if (!ttl) return refuse(400, "missing_ttl", "TTL header is required (RFC 8030 §5.2)");
  if (ttl->empty() || ttl->size() > 18 || !std::all_of(ttl->begin(), ttl->end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return refuse(400, "bad_ttl", "TTL must be a number of seconds (1*DIGIT)");
  }
  int64_t t = 0;
  for (char c : *ttl) t = t * 10 + (c - '0');
  out.clamped = t > l.maxTtl;
  out.ttl = std::min(t, l.maxTtl);
  if (auto u = headerValue(h, "urgency")) {
    auto p = parseUrgency(*u);
    if (!p) return refuse(400, "bad_urgency", "Urgency must be very-low, low, normal or high");
    out.urgency = *p;
  }
  if (auto topic = headerValue(h, "topic")) {
    if (!isId(*topic) || topic->size() > kMaxTopicLength) {
      return refuse(400, "bad_topic", "Topic must be 1 to 32 base64url characters (RFC 8030 §5.4)");
    }
    out.topic = std::string(*topic);
  }
  if (bodySize > l.maxBody) {
    return refuse(413, "too_large",
                  "body of " + std::to_string(bodySize) + " bytes is over webpush.maxBody (" + std::to_string(l.maxBody) + ")");
  }
  if (bodySize > 0) {
    auto enc = headerValue(h, "content-encoding");
    if (!enc || !(iequals(*enc, "aes128gcm") || iequals(*enc, "aesgcm"))) {
      return refuse(400, "bad_encoding", "a push message body must be encrypted: Content-Encoding aes128gcm (RFC 8291)");
    }
    out.encoding = std::string(*enc);
    std::transform(out.encoding.begin(), out.encoding.end(), out.encoding.begin(), lower);
  }
  return out;
}

std::variant<SubscribeRequest, Refusal> parseSubscribeBody(std::string_view body) {
  SubscribeRequest out;
  if (std::all_of(body.begin(), body.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; })) {
    return out;
  }
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return refuse(400, "bad_json", "the subscribe body must be a JSON object");
  if (j.contains("topic")) {
    const auto& t = j["topic"];
    if (!t.is_string() || !isTopicName(t.get<std::string>())) {
      return refuse(400, "bad_topic", "topic must be <node>/<name> (a node name, '/', 1 to 32 base64url characters)");
    }
    out.topic = t.get<std::string>();
    const auto keys = j.find("keys");
    std::optional<std::vector<uint8_t>> p, a;
    if (keys != j.end() && keys->is_object()) {
      auto k = keys->find("p256dh");
      auto s = keys->find("auth");
      if (k != keys->end() && k->is_string()) p = auth::base64Decode(k->get<std::string>());
      if (s != keys->end() && s->is_string()) a = auth::base64Decode(s->get<std::string>());
    }
    if (!p || p->size() != 65 || !auth::isP256PublicKey(*p) || !a || a->size() != 16) {
      return refuse(400, "bad_keys",
                    "a topic subscription needs keys {\"p256dh\": a P-256 point, \"auth\": 16 bytes}, base64url");
    }
    out.p256dh = std::move(*p);
    out.auth = std::move(*a);
  }
  if (j.contains("applicationServerKey")) {
    const auto& k = j["applicationServerKey"];
    std::optional<std::vector<uint8_t>> key;
    if (k.is_string()) key = auth::base64Decode(k.get<std::string>());
    if (!key || key->size() != 65 || !auth::isP256PublicKey(*key)) {
      return refuse(400, "bad_application_server_key",
                    "applicationServerKey must be the base64url of an uncompressed P-256 public key (65 bytes)");
    }
    out.applicationServerKey = std::move(*key);
  }
  if (j.contains("deliver")) {
    const auto& d = j["deliver"];
    if (!d.is_string() || d.get<std::string>() != "xds" || !out.topic.empty()) {
      return refuse(400, "bad_deliver", "deliver must be \"xds\" (and not beside a topic)");
    }
    out.deliverXds = true;
  }
  if (j.contains("mailbox")) {
    const auto& mb = j["mailbox"];
    if (!mb.is_string() || !isTopicMailbox(mb.get<std::string>()) || !out.topic.empty()) {
      return refuse(400, "bad_mailbox", "mailbox must be topic:<1 to 32 base64url characters> (and not beside a topic)");
    }
    out.mailbox = mb.get<std::string>();
  }
  return out;
}

std::variant<ReceiveRequest, Refusal> checkReceiveRequest(const HeaderList& h, std::string_view query) {
  ReceiveRequest out;
  auto accept = headerValue(h, "accept");
  if (!accept || (accept->find("text/event-stream") == std::string_view::npos && accept->find("*/*") == std::string_view::npos)) {
    return refuse(406, "not_event_stream", "the receive resource answers Accept: text/event-stream");
  }
  if (auto u = queryParam(query, "urgency")) {
    auto p = parseUrgency(*u);
    if (!p) return refuse(400, "bad_urgency", "urgency must be very-low, low, normal or high");
    out.minUrgency = *p;
  }
  if (auto id = headerValue(h, "last-event-id"); id && isId(*id)) out.lastEventId = std::string(*id);
  return out;
}

std::string subscribeJson(std::string_view endpoint, std::string_view receivePath) {
  return "{\"endpoint\":" + jsonString(endpoint) + ",\"receive\":" + jsonString(receivePath) + "}\n";
}

std::string sseEvent(const StoredMessage& m, int64_t nowMs) {
  const int64_t left = std::max<int64_t>(0, (m.expiresMs - nowMs) / 1000);
  std::string out = "id: " + m.id + "\nevent: push\ndata: {\"id\":" + jsonString(m.id) +
                    ",\"topic\":" + jsonString(m.topic) + ",\"urgency\":\"" + std::string(urgencyName(m.urgency)) +
                    "\",\"ttl\":" + std::to_string(left) + ",\"encoding\":" + jsonString(m.encoding) +
                    ",\"body\":\"" +
                    auth::base64UrlEncode({reinterpret_cast<const uint8_t*>(m.body.data()), m.body.size()}) + "\"}\n\n";
  return out;
}

std::variant<std::string, Refusal> parsePushReceipt(std::string_view v, std::string_view origin) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  auto bad = [] {
    return refuse(400, "bad_push_receipt", "Push-Receipt must name a receipt subscription of this push service (/r/<id>)");
  };
  if (!v.starts_with("/")) {
    if (origin.empty() || v.size() < origin.size() || !iequals(v.substr(0, origin.size()), origin)) return bad();
    v.remove_prefix(origin.size());
  }
  if (!v.starts_with("/r/") || !isId(v.substr(3))) return bad();
  return std::string(v.substr(3));
}

void parsePrefer(std::string_view v, Preferences& out) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  while (!v.empty()) {
    const size_t comma = v.find(',');
    std::string_view pref = v.substr(0, comma);
    v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
    pref = trim(pref.substr(0, pref.find(';')));  // parameters: none we use
    const size_t eq = pref.find('=');
    const std::string_view name = trim(pref.substr(0, eq));
    std::string_view value = eq == std::string_view::npos ? std::string_view() : trim(pref.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (iequals(name, "respond-async") && eq == std::string_view::npos) {
      out.respondAsync = true;
    } else if (iequals(name, "wait") && !value.empty() && value.size() <= 9 &&
               std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      int64_t w = 0;
      for (char c : value) w = w * 10 + (c - '0');
      out.wait = w;
    }
  }
}

Preferences preferences(const HeaderList& h) {
  Preferences out;
  for (const auto& [n, v] : h) {
    if (n == "prefer") parsePrefer(v, out);
  }
  return out;
}

std::string receiptSseEvent(std::string_view rsid, int64_t seq, std::string_view mid, int64_t ackedMs) {
  const std::string s = std::to_string(seq);
  return "id: " + s + "\nevent: receipt\ndata: {\"message\":" + jsonString("/m/" + std::string(mid)) +
         ",\"acknowledged\":" + std::to_string(ackedMs) + ",\"ack\":" +
         jsonString("/r/" + std::string(rsid) + "/" + s) + "}\n\n";
}

void TokenBucket::refill(int64_t nowMs) {
  if (nowMs > lastMs_) {
    tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(nowMs - lastMs_) / 1000.0);
    lastMs_ = nowMs;
  }
}

bool TokenBucket::take(int64_t nowMs, int64_t& retryAfterSeconds) {
  if (rate_ <= 0) return true;
  refill(nowMs);
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return true;
  }
  retryAfterSeconds = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1.0 - tokens_) / rate_)));
  return false;
}

bool TokenBucket::full(int64_t nowMs) const {
  if (rate_ <= 0) return true;
  const double t = std::min(burst_, tokens_ + rate_ * static_cast<double>(std::max<int64_t>(0, nowMs - lastMs_)) / 1000.0);
  return t >= burst_;
}

}  // namespace ugate::webpush

// The gateway side's bytes as a node behind NAT reads them (push_relay_wire.h).
#include "webpush/push_relay_wire.h"

#include <nlohmann/json.hpp>

#include "auth/encoding.h"
#include "webpush/push_api.h"

namespace ugate::webpush {

namespace {
constexpr size_t kMaxTopic = 32;  // RFC 8030 §5.4, as checkPushHeaders enforces it
constexpr int64_t kMaxTtlSeconds = int64_t{10} * 365 * 86400;
}  // namespace

bool SseReader::feed(std::string_view bytes, std::vector<std::string>& events) {
  for (char c : bytes) {
    if (c != '\n') {
      if (line_.size() + data_.size() >= maxEvent_) return false;
      line_.push_back(c);
      continue;
    }
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_.empty()) {
      if (hasData_) events.push_back(std::move(data_));
      data_.clear();
      hasData_ = false;
      continue;
    }
    std::string_view l(line_);
    if (l.starts_with("data:")) {
      l.remove_prefix(5);
      if (l.starts_with(' ')) l.remove_prefix(1);
      if (hasData_) data_.push_back('\n');
      data_.append(l);
      hasData_ = true;
    }
    // `id:`, `event:`, `retry:` and comments (`:`) carry nothing the data does not.
    line_.clear();
  }
  return true;
}

std::optional<StoredMessage> parseRelayedEvent(std::string_view data, int64_t nowMs, size_t maxBody) {
  const nlohmann::json j = nlohmann::json::parse(data, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto str = [&](const char* k) -> std::optional<std::string> {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto id = str("id"), topic = str("topic"), urgency = str("urgency"), encoding = str("encoding"), body = str("body");
  auto ttl = j.find("ttl");
  if (!id || !topic || !urgency || !encoding || !body || ttl == j.end() || !ttl->is_number_integer()) return std::nullopt;
  if (!isId(*id) || topic->size() > kMaxTopic || encoding->empty() || encoding->size() > 64) return std::nullopt;
  for (char c : *topic) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return std::nullopt;
  }
  auto u = parseUrgency(*urgency);
  const int64_t t = ttl->get<int64_t>();
  if (!u || t < 0 || t > kMaxTtlSeconds) return std::nullopt;
  if (body->size() > (maxBody + 2) / 3 * 4 + 4) return std::nullopt;
  auto raw = auth::base64Decode(*body);
  if (!raw || raw->size() > maxBody) return std::nullopt;
  StoredMessage m;
  m.id = std::move(*id);
  m.topic = std::move(*topic);
  m.urgency = *u;
  m.ttlSeconds = t;
  m.receivedMs = nowMs;
  m.expiresMs = nowMs + t * 1000;
  m.encoding = std::move(*encoding);
  m.body.assign(raw->begin(), raw->end());
  return m;
}

std::optional<SubscribeReply> parseSubscribeReply(std::string_view body) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto e = j.find("endpoint");
  auto r = j.find("receive");
  if (e == j.end() || r == j.end() || !e->is_string() || !r->is_string()) return std::nullopt;
  SubscribeReply s;
  s.endpoint = e->get<std::string>();
  const std::string receive = r->get<std::string>();
  const size_t at = s.endpoint.rfind("/push/");
  if (!s.endpoint.starts_with("https://") || at == std::string::npos || at < 9) return std::nullopt;
  s.token = s.endpoint.substr(at + 6);
  if (!receive.starts_with("/s/")) return std::nullopt;
  s.sid = receive.substr(3);
  if (!isId(s.token) || !isId(s.sid)) return std::nullopt;
  return s;
}

}  // namespace ugate::webpush

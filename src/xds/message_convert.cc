#include "xds/message_convert.h"

#include <algorithm>

#include "ugate/v1/message.pb.h"
#include "xds/messages.h"

namespace ugate::xds {

namespace {

Error invalid(std::string why) { return Error{Errc::InvalidArgument, std::move(why)}; }

bool allOf(std::string_view s, bool (*ok)(char)) { return std::all_of(s.begin(), s.end(), ok); }

bool base32Char(char c) { return (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7'); }
bool base64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}
bool idChar(char c) { return base64UrlChar(c) || c == '.' || c == '~'; }

uint32_t be32(std::string_view b, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(b[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 8) | static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3]));
}

}  // namespace

Result<void> checkRecipient(std::string_view r) {
  if (r.size() == 52 && allOf(r, base32Char)) return {};
  constexpr std::string_view kTopic = "topic:";
  if (r.substr(0, kTopic.size()) == kTopic) {
    const std::string_view t = r.substr(kTopic.size());
    if (!t.empty() && t.size() <= 32 && allOf(t, base64UrlChar)) return {};
    return invalid("topic '" + std::string(t.substr(0, 40)) + "' is not 1-32 URL-safe base64 characters");
  }
  return invalid("recipient is neither a node ID (52 base32 characters) nor topic:<topic>");
}

Result<void> checkAes128gcm(std::string_view b) {
  // RFC 8188 §2.1: salt (16) | rs (4) | idlen (1) | keyid (idlen), then the records. RFC 8291 §4:
  // keyid is the sender's uncompressed P-256 key (65 bytes, 0x04 first) and there is one record.
  constexpr size_t kHeader = 16 + 4 + 1;
  constexpr size_t kMinRecord = 16 + 1;  // the tag and the padding delimiter
  if (b.size() > kMaxCiphertext) return invalid("ciphertext over " + std::to_string(kMaxCiphertext) + " bytes");
  if (b.size() < kHeader) return invalid("ciphertext shorter than an aes128gcm header");
  const uint32_t rs = be32(b, 16);
  const size_t idlen = static_cast<uint8_t>(b[20]);
  if (rs < 18) return invalid("aes128gcm record size " + std::to_string(rs) + " is under 18");
  if (idlen != 65 || b.size() < kHeader + idlen || static_cast<uint8_t>(b[kHeader]) != 0x04) {
    return invalid("aes128gcm keyid is not a 65-byte uncompressed P-256 key (Web Push)");
  }
  const size_t record = b.size() - kHeader - idlen;
  if (record < kMinRecord) return invalid("aes128gcm body has no record");
  if (record > rs) return invalid("aes128gcm body has more than one record (Web Push sends one)");
  return {};
}

Result<void> checkEnvelope(const RelayEnvelope& e) {
  if (e.id.empty() || e.id.size() > 128 || !allOf(e.id, idChar)) {
    return invalid("envelope id must be 1-128 characters of [A-Za-z0-9._~-]");
  }
  if (auto r = checkAes128gcm(e.ciphertext); !r) return invalid("envelope " + e.id + ": " + r.error().detail);
  if (!e.urgency.empty() && e.urgency != "very-low" && e.urgency != "low" && e.urgency != "normal" &&
      e.urgency != "high") {
    return invalid("envelope " + e.id + ": urgency is not very-low, low, normal or high");
  }
  return {};
}

Result<Mailbox> parseMailbox(std::string_view bytes) {
  ugate::v1::Message m;
  if (!parseMessage(bytes, m)) return invalid("not a ugate.v1.Message");
  Mailbox out;
  out.recipient = m.recipient();
  if (auto r = checkRecipient(out.recipient); !r) return r.error();
  if (static_cast<size_t>(m.envelopes_size()) > kMaxEnvelopes) {
    return invalid("mailbox " + out.recipient + ": over " + std::to_string(kMaxEnvelopes) + " envelopes");
  }
  out.envelopes.reserve(static_cast<size_t>(m.envelopes_size()));
  for (const auto& e : m.envelopes()) {
    if (e.content_encoding() != "aes128gcm") {
      return invalid("mailbox " + out.recipient + ": content_encoding is not aes128gcm");
    }
    RelayEnvelope r{e.id(), e.ciphertext(), e.ttl_seconds(), e.urgency(), e.created_unix_ms()};
    if (auto ok = checkEnvelope(r); !ok) return invalid("mailbox " + out.recipient + ": " + ok.error().detail);
    if (std::any_of(out.envelopes.begin(), out.envelopes.end(), [&](const RelayEnvelope& x) { return x.id == r.id; })) {
      return invalid("mailbox " + out.recipient + ": envelope " + r.id + " twice");
    }
    out.envelopes.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> mailboxNamesFor(std::string_view peer, const std::vector<std::string>& names,
                                         bool emptyIsWildcard, std::vector<std::string>& refused) {
  std::vector<std::string> out;
  auto add = [&](std::string_view n) {
    if (std::find(out.begin(), out.end(), n) == out.end()) out.emplace_back(n);
  };
  for (const std::string& n : names) {
    if (n == "*" || n == peer) {
      add(peer);
    } else if (n.starts_with("topic:")) {
      add(n);
    } else {
      refused.push_back(n);
    }
  }
  // Where an empty list is a wildcard (SotW; a first delta request), none left must not become one.
  if (out.empty() && emptyIsWildcard) add(peer);
  return out;
}

std::string encodeMailbox(const Mailbox& m) {
  ugate::v1::Message p;
  p.set_recipient(m.recipient);
  for (const RelayEnvelope& e : m.envelopes) {
    auto* x = p.add_envelopes();
    x->set_id(e.id);
    x->set_content_encoding("aes128gcm");
    x->set_ciphertext(e.ciphertext);
    x->set_ttl_seconds(e.ttlSeconds);
    x->set_urgency(e.urgency);
    x->set_created_unix_ms(e.createdUnixMs);
  }
  return serializeDeterministic(p);
}

}  // namespace ugate::xds

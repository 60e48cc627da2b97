#include "local/announcement.h"

#include <arpa/inet.h>

#include <cstring>

namespace ugate::local {

namespace {

void put16(auth::Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

void put64(auth::Bytes& b, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof(buf));
  return buf;
}

bool IpAddr::parse(std::string_view text, IpAddr& out) {
  std::string s(text);
  IpAddr a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = 4;
  } else if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = 6;
  } else {
    return false;
  }
  out = a;
  return true;
}

std::string_view rejectName(Reject r) {
  switch (r) {
    case Reject::None: return "none";
    case Reject::Truncated: return "truncated";
    case Reject::BadMagic: return "bad_magic";
    case Reject::BadVersion: return "bad_version";
    case Reject::BadLength: return "bad_length";
    case Reject::Malformed: return "malformed";
    case Reject::BadKey: return "bad_key";
    case Reject::IdMismatch: return "id_mismatch";
    case Reject::BadSignature: return "bad_signature";
    case Reject::TooOld: return "too_old";
    case Reject::TooNew: return "too_new";
    case Reject::Replay: return "replay";
    case Reject::Own: return "own";
    case Reject::RateLimited: return "rate_limited";
    case Reject::TableFull: return "table_full";
    case Reject::Count: break;
  }
  return "unknown";
}

bool validName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLen || name.front() == '-' || name.back() == '-') return false;
  for (char ch : name) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) return false;
  }
  return true;
}

Result<auth::Bytes> encodeAnnouncement(Announcement a, const auth::PrivateKey& key) {
  if (!key.valid()) return makeError(Errc::InvalidArgument, "discovery: no node key to sign with");
  if (!validName(a.name)) {
    return makeError(Errc::InvalidArgument, "discovery: name '" + a.name + "' is not a DNS label [a-z0-9-], 1-63 chars");
  }
  if (a.addresses.size() > kMaxAddresses) {
    return makeError(Errc::InvalidArgument, "discovery: more than " + std::to_string(kMaxAddresses) + " addresses");
  }
  a.publicKey = key.publicKey();
  a.nodeId = key.nodeId();
  auth::Bytes b;
  b.reserve(kMaxLen);
  b.push_back(kMagic0);
  b.push_back(kMagic1);
  b.push_back(kVersion);
  b.push_back(a.reply ? kFlagReply : 0);
  put16(b, 0);  // length, filled below
  put64(b, a.sequence);
  put64(b, static_cast<uint64_t>(a.timestampMs));
  put16(b, a.tcpPort);
  put16(b, a.quicPort);
  b.insert(b.end(), a.nodeId.begin(), a.nodeId.end());
  b.push_back(static_cast<uint8_t>(a.name.size()));
  b.insert(b.end(), a.name.begin(), a.name.end());
  b.push_back(static_cast<uint8_t>(a.addresses.size()));
  for (const IpAddr& ip : a.addresses) {
    b.push_back(ip.family == 6 ? 6 : 4);
    b.insert(b.end(), ip.bytes.begin(), ip.bytes.begin() + (ip.family == 6 ? 16 : 4));
  }
  b.insert(b.end(), a.publicKey.begin(), a.publicKey.end());
  const size_t total = b.size() + kSignatureLen;
  b[4] = static_cast<uint8_t>(total >> 8);
  b[5] = static_cast<uint8_t>(total);
  auto sig = key.signEs256(b);
  if (!sig) return sig.error();
  if (sig->size() != kSignatureLen) return makeError(Errc::ProtocolError, "discovery: unexpected signature size");
  b.insert(b.end(), sig->begin(), sig->end());
  return b;
}

Reject parseAnnouncement(std::span<const uint8_t> d, Announcement& out) {
  Announcement a;
  Reject r = parseUnverified(d, a);
  if (r == Reject::None) r = verifySignature(d);
  if (r == Reject::None) out = std::move(a);
  return r;
}

Reject verifySignature(std::span<const uint8_t> d) {
  if (d.size() < kMinLen) return Reject::Truncated;
  auto key = d.subspan(d.size() - kSignatureLen - auth::kPublicKeyLen, auth::kPublicKeyLen);
  return auth::verifyEs256(key, d.first(d.size() - kSignatureLen), d.subspan(d.size() - kSignatureLen))
             ? Reject::None
             : Reject::BadSignature;
}

Reject parseUnverified(std::span<const uint8_t> d, Announcement& out) {
  if (d.size() < 6) return Reject::Truncated;
  if (d[0] != kMagic0 || d[1] != kMagic1) return Reject::BadMagic;
  if (d[2] != kVersion) return Reject::BadVersion;
  const size_t len = get16(&d[4]);
  if (len < kMinLen || len > kMaxLen) return Reject::BadLength;
  if (d.size() < len) return Reject::Truncated;
  if (d.size() > len) return Reject::BadLength;
  const size_t bodyEnd = len - kSignatureLen - auth::kPublicKeyLen;  // where the key starts
  Announcement a;
  a.reply = (d[3] & kFlagReply) != 0;
  a.sequence = get64(&d[6]);
  a.timestampMs = static_cast<int64_t>(get64(&d[14]));
  a.tcpPort = get16(&d[22]);
  a.quicPort = get16(&d[24]);
  a.nodeId.assign(reinterpret_cast<const char*>(&d[kNodeIdOffset]), auth::kNodeIdLen);
  size_t off = kNameOffset;
  const size_t nameLen = d[off++];
  if (nameLen == 0 || nameLen > kMaxNameLen) return Reject::Malformed;
  if (off + nameLen + 1 > bodyEnd) return Reject::BadLength;
  a.name.assign(reinterpret_cast<const char*>(&d[off]), nameLen);
  if (!validName(a.name)) return Reject::Malformed;
  off += nameLen;
  const size_t count = d[off++];
  if (count > kMaxAddresses) return Reject::Malformed;
  for (size_t i = 0; i < count; ++i) {
    if (off + 1 > bodyEnd) return Reject::BadLength;
    IpAddr ip;
    ip.family = d[off++];
    if (ip.family != 4 && ip.family != 6) return Reject::Malformed;
    const size_t n = ip.family == 6 ? 16 : 4;
    if (off + n > bodyEnd) return Reject::BadLength;
    std::memcpy(ip.bytes.data(), &d[off], n);
    off += n;
    a.addresses.push_back(ip);
  }
  if (off != bodyEnd) return Reject::BadLength;
  auto key = d.subspan(bodyEnd, auth::kPublicKeyLen);
  if (!auth::isP256PublicKey(key)) return Reject::BadKey;
  if (auth::nodeIdFromPublicKey(key) != a.nodeId) return Reject::IdMismatch;
  a.publicKey.assign(key.begin(), key.end());
  out = std::move(a);
  return Reject::None;
}

}  // namespace ugate::local

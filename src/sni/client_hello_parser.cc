#include "sni/client_hello_parser.h"

#include <algorithm>
#include <bitset>

namespace ugate::sni {
namespace {

constexpr uint8_t kContentHandshake = 0x16;
constexpr uint8_t kHandshakeClientHello = 0x01;
constexpr uint16_t kExtServerName = 0x0000;
constexpr uint16_t kExtAlpn = 0x0010;
constexpr uint16_t kExtSupportedVersions = 0x002b;
constexpr uint16_t kExtPreSharedKey = 0x0029;
constexpr uint16_t kExtEch = 0xfe0d;
constexpr uint16_t kExtEchOuterExtensions = 0xfd00;

// Reader: bounds-checked big-endian reads over a span. A failed read leaves ok() false and returns
// 0; callers check ok() once after a group of reads.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : b_(b) {}
  bool ok() const { return ok_; }
  size_t left() const { return b_.size() - pos_; }
  bool empty() const { return pos_ == b_.size(); }
  uint8_t u8() { return static_cast<uint8_t>(take(1)); }
  uint16_t u16() { return static_cast<uint16_t>(take(2)); }
  std::span<const uint8_t> bytes(size_t n) {
    if (!ok_ || n > left()) {
      ok_ = false;
      return {};
    }
    auto s = b_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  uint32_t take(size_t n) {
    if (!ok_ || n > left()) {
      ok_ = false;
      return 0;
    }
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | b_[pos_ + i];
    pos_ += n;
    return v;
  }
  std::span<const uint8_t> b_;
  size_t pos_{0};
  bool ok_{true};
};

// hostNameError checks a server_name host_name (RFC 6066 §3: a DNS name, ASCII, no trailing dot,
// no literal IP) and lower-cases it into `out`.
HelloError checkHostName(std::span<const uint8_t> name, std::string& out) {
  if (name.empty() || name.size() > 253) return HelloError::InvalidHostName;
  out.resize(name.size());
  size_t labelLen = 0;
  bool allDigitsOrDots = true;
  for (size_t i = 0; i < name.size(); ++i) {
    uint8_t c = name[i];
    if (c == '.') {
      if (labelLen == 0) return HelloError::InvalidHostName;  // leading dot, "..", trailing dot
      labelLen = 0;
    } else {
      bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (!alnum && c != '-' && c != '_') return HelloError::InvalidHostName;
      if (++labelLen > 63) return HelloError::InvalidHostName;
      if (c < '0' || c > '9') allDigitsOrDots = false;
      if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c - 'A' + 'a');
    }
    out[i] = static_cast<char>(c);
  }
  if (labelLen == 0) return HelloError::InvalidHostName;    // trailing dot
  if (allDigitsOrDots) return HelloError::InvalidHostName;  // a literal IPv4 address
  return HelloError::None;
}

HelloError parseServerName(std::span<const uint8_t> data, ClientHelloInfo& info) {
  Reader r(data);
  uint16_t listLen = r.u16();
  if (!r.ok() || listLen == 0 || listLen != r.left()) return HelloError::BadServerName;
  bool haveHost = false;
  while (!r.empty()) {
    uint8_t type = r.u8();
    uint16_t len = r.u16();
    auto name = r.bytes(len);
    if (!r.ok()) return HelloError::BadServerName;
    if (type != 0) continue;  // other name types are tolerated and ignored
    if (haveHost) return HelloError::DuplicateServerName;
    haveHost = true;
    if (HelloError e = checkHostName(name, info.sni); e != HelloError::None) return e;
  }
  return HelloError::None;
}

HelloError parseAlpn(std::span<const uint8_t> data, ClientHelloInfo& info) {
  Reader r(data);
  uint16_t listLen = r.u16();
  if (!r.ok() || listLen < 2 || listLen != r.left()) return HelloError::BadAlpn;
  while (!r.empty()) {
    uint8_t len = r.u8();
    auto name = r.bytes(len);
    if (!r.ok()) return HelloError::BadAlpn;
    if (len == 0) return HelloError::EmptyAlpnName;
    info.alpn.emplace_back(reinterpret_cast<const char*>(name.data()), name.size());
  }
  return HelloError::None;
}

HelloError parseSupportedVersions(std::span<const uint8_t> data, ClientHelloInfo& info) {
  Reader r(data);
  uint8_t len = r.u8();
  if (!r.ok() || len < 2 || len % 2 != 0 || len != r.left())
    return HelloError::BadSupportedVersions;
  while (!r.empty()) {
    if (r.u16() == 0x0304) info.tls13 = true;
  }
  return HelloError::None;
}

// parseEch checks the ECHClientHello framing (RFC 9849 §5): outer = cipher_suite, config_id,
// enc<0..2^16-1>, payload<1..2^16-1>; inner = the type byte alone. The payload is not ours to read.
HelloError parseEch(std::span<const uint8_t> data, ClientHelloInfo& info) {
  Reader r(data);
  uint8_t type = r.u8();
  if (!r.ok()) return HelloError::BadEch;
  info.ech = true;
  if (type == 1) {
    info.echInner = true;
    return r.empty() ? HelloError::None : HelloError::BadEch;
  }
  if (type != 0) return HelloError::BadEch;
  r.u16();           // kdf_id
  r.u16();           // aead_id
  r.u8();            // config_id
  r.bytes(r.u16());  // enc
  uint16_t payloadLen = r.u16();
  r.bytes(payloadLen);
  if (!r.ok() || payloadLen == 0 || !r.empty()) return HelloError::BadEch;
  return HelloError::None;
}

HelloError parseBody(std::span<const uint8_t> body, ClientHelloInfo& info) {
  Reader r(body);
  info.legacyVersion = r.u16();
  if (!r.ok()) return HelloError::BadLength;
  if ((info.legacyVersion >> 8) != 3) return HelloError::BadHelloVersion;
  r.bytes(32);  // random
  uint8_t sidLen = r.u8();
  if (!r.ok()) return HelloError::BadLength;
  if (sidLen > 32) return HelloError::BadSessionId;
  r.bytes(sidLen);
  uint16_t csLen = r.u16();
  if (!r.ok()) return HelloError::BadLength;
  if (csLen < 2 || csLen % 2 != 0) return HelloError::BadCipherSuites;
  r.bytes(csLen);
  uint8_t compLen = r.u8();
  if (!r.ok()) return HelloError::BadLength;
  if (compLen < 1) return HelloError::BadCompression;
  r.bytes(compLen);
  if (!r.ok()) return HelloError::BadLength;
  if (r.empty()) return HelloError::None;  // a TLS 1.2-style hello without extensions
  uint16_t extLen = r.u16();
  if (!r.ok() || extLen != r.left()) return HelloError::BadLength;

  std::bitset<65536> seen;  // 8 KiB on the stack, only while parsing
  bool pskSeen = false;
  while (!r.empty()) {
    uint16_t type = r.u16();
    uint16_t len = r.u16();
    auto data = r.bytes(len);
    if (!r.ok()) return HelloError::BadLength;
    if (seen.test(type)) return HelloError::DuplicateExtension;
    seen.set(type);
    if (pskSeen) return HelloError::PskNotLast;
    ++info.extensionCount;
    HelloError e = HelloError::None;
    switch (type) {
      case kExtServerName:
        e = parseServerName(data, info);
        break;
      case kExtAlpn:
        e = parseAlpn(data, info);
        break;
      case kExtSupportedVersions:
        e = parseSupportedVersions(data, info);
        break;
      case kExtEch:
        e = parseEch(data, info);
        break;
      case kExtEchOuterExtensions:
        e = HelloError::EchOuterExtensions;
        break;
      case kExtPreSharedKey:
        pskSeen = true;
        break;
      default:
        break;  // GREASE (0x?a?a) and unknown extensions are skipped
    }
    if (e != HelloError::None) return e;
  }
  return HelloError::None;
}

}  // namespace

std::string_view helloErrorName(HelloError e) {
  switch (e) {
    case HelloError::None:
      return "none";
    case HelloError::NotHandshakeRecord:
      return "not_handshake_record";
    case HelloError::SslV2Hello:
      return "sslv2_hello";
    case HelloError::NotTlsVersion:
      return "not_tls_version";
    case HelloError::TooLarge:
      return "too_large";
    case HelloError::RecordTooLong:
      return "record_too_long";
    case HelloError::EmptyRecord:
      return "empty_record";
    case HelloError::InterleavedRecord:
      return "interleaved_record";
    case HelloError::BadRecordVersion:
      return "bad_record_version";
    case HelloError::NotClientHello:
      return "not_client_hello";
    case HelloError::TrailingData:
      return "trailing_data";
    case HelloError::BadHelloVersion:
      return "bad_hello_version";
    case HelloError::BadLength:
      return "bad_length";
    case HelloError::BadSessionId:
      return "bad_session_id";
    case HelloError::BadCipherSuites:
      return "bad_cipher_suites";
    case HelloError::BadCompression:
      return "bad_compression";
    case HelloError::DuplicateExtension:
      return "duplicate_extension";
    case HelloError::PskNotLast:
      return "psk_not_last";
    case HelloError::BadServerName:
      return "bad_server_name";
    case HelloError::DuplicateServerName:
      return "duplicate_server_name";
    case HelloError::InvalidHostName:
      return "invalid_host_name";
    case HelloError::BadAlpn:
      return "bad_alpn";
    case HelloError::EmptyAlpnName:
      return "empty_alpn_name";
    case HelloError::BadSupportedVersions:
      return "bad_supported_versions";
    case HelloError::BadEch:
      return "bad_ech";
    case HelloError::EchOuterExtensions:
      return "ech_outer_extensions";
  }
  return "unknown";
}

HelloStatus ClientHelloParser::fail(HelloStatus s, HelloError e) {
  status_ = s;
  error_ = e;
  hs_.clear();
  hs_.shrink_to_fit();
  return s;
}

HelloStatus ClientHelloParser::finish(std::span<const uint8_t> body) {
  HelloError e = parseBody(body, info_);
  hs_.clear();
  hs_.shrink_to_fit();
  if (e != HelloError::None) {
    info_ = {};
    return fail(HelloStatus::Error, e);
  }
  info_.wireBytes = consumed_;
  status_ = HelloStatus::Done;
  return status_;
}

// onHandshakeBytes runs after bytes were appended to hs_: checks the message header as soon as it
// is complete and finishes once the message is.
HelloStatus ClientHelloParser::onHandshakeBytes() {
  if (hsTotal_ == 0 && hs_.size() >= 4) {
    if (hs_[0] != kHandshakeClientHello)
      return fail(HelloStatus::Error, HelloError::NotClientHello);
    hsTotal_ = 4 + ((size_t{hs_[1]} << 16) | (size_t{hs_[2]} << 8) | hs_[3]);
    // Each record adds 5 header bytes: the least wire size the message can still take.
    if (hsTotal_ + 5 * info_.records > maxBytes_)
      return fail(HelloStatus::Error, HelloError::TooLarge);
  }
  if (hsTotal_ == 0) return HelloStatus::NeedMore;
  // The hello must end on a record boundary (a key change follows it): a record announcing more
  // than the message needs is refused as soon as its header is read.
  if (hs_.size() + recordLeft_ > hsTotal_)
    return fail(HelloStatus::Error, HelloError::TrailingData);
  if (hs_.size() == hsTotal_) {
    return finish(std::span<const uint8_t>(hs_).subspan(4, hsTotal_ - 4));
  }
  return HelloStatus::NeedMore;
}

HelloStatus ClientHelloParser::feed(std::span<const uint8_t> in) {
  if (status_ != HelloStatus::NeedMore) return status_;
  size_t i = 0;
  while (i < in.size()) {
    if (headerHave_ < 5) {
      uint8_t c = in[i];
      const bool first = info_.records == 0;
      if (headerHave_ == 0 && c != kContentHandshake) {
        if (!first) return fail(HelloStatus::Error, HelloError::InterleavedRecord);
        return fail(HelloStatus::NotTls,
                    (c & 0x80) ? HelloError::SslV2Hello : HelloError::NotHandshakeRecord);
      }
      if (headerHave_ == 1 && c != 3) {
        return first ? fail(HelloStatus::NotTls, HelloError::NotTlsVersion)
                     : fail(HelloStatus::Error, HelloError::BadRecordVersion);
      }
      header_[headerHave_++] = c;
      ++i;
      ++consumed_;
      if (headerHave_ < 5) continue;
      recordLeft_ = (size_t{header_[3]} << 8) | header_[4];
      ++info_.records;
      if (recordLeft_ == 0) return fail(HelloStatus::Error, HelloError::EmptyRecord);
      if (recordLeft_ > kMaxRecordLength)
        return fail(HelloStatus::Error, HelloError::RecordTooLong);
      // The whole record belongs to the hello (it ends on a record boundary), so it must fit.
      if (consumed_ + recordLeft_ > maxBytes_)
        return fail(HelloStatus::Error, HelloError::TooLarge);
      if (hsTotal_ != 0 && hs_.size() + recordLeft_ > hsTotal_) {
        return fail(HelloStatus::Error, HelloError::TrailingData);
      }
      continue;
    }
    size_t n = std::min(recordLeft_, in.size() - i);
    auto chunk = in.subspan(i, n);
    // Fast path: the first record is all here and holds exactly one whole ClientHello: parse it in
    // place, without copying.
    if (hs_.empty() && info_.records == 1 && n == recordLeft_ && n >= 4 &&
        chunk[0] == kHandshakeClientHello &&
        4 + ((size_t{chunk[1]} << 16) | (size_t{chunk[2]} << 8) | chunk[3]) == n) {
      consumed_ += n;
      recordLeft_ = 0;
      return finish(chunk.subspan(4));
    }
    hs_.insert(hs_.end(), chunk.begin(), chunk.end());
    i += n;
    consumed_ += n;
    recordLeft_ -= n;
    if (recordLeft_ == 0) headerHave_ = 0;  // next: another record header
    HelloStatus s = onHandshakeBytes();
    if (s != HelloStatus::NeedMore) return s;
  }
  return status_;
}

}  // namespace ugate::sni

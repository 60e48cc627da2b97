#include "quic/stream_header.h"

#include <algorithm>
#include <charconv>

namespace ugate::quic {

namespace {

constexpr uint64_t kVarintMax = (uint64_t{1} << 62) - 1;

std::string_view findField(const std::vector<HeaderField>& fields, std::string_view name) {
  for (const auto& [n, v] : fields) {
    if (n == name) return v;
  }
  return {};
}

bool tokenChar(unsigned char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= '0' && c <= '9') return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

void appendString(std::vector<uint8_t>& out, std::string_view s) {
  appendVarint(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

/** Reader: a cursor over the body; every read checks the bounds. */
struct Reader {
  std::span<const uint8_t> in;
  size_t pos{0};
  bool varint(uint64_t& v) {
    size_t n = readVarint(in.subspan(pos), v);
    if (n == 0) return false;
    pos += n;
    return true;
  }
  bool string(std::string& s) {
    uint64_t n = 0;
    if (!varint(n) || n > in.size() - pos) return false;
    s.assign(reinterpret_cast<const char*>(in.data() + pos), static_cast<size_t>(n));
    pos += static_cast<size_t>(n);
    return true;
  }
  bool atEnd() const { return pos == in.size(); }
};

void encodeFields(const std::vector<HeaderField>& fields, std::vector<uint8_t>& body) {
  for (const auto& [n, v] : fields) {
    appendString(body, n);
    appendString(body, v);
  }
}

void finish(const std::vector<uint8_t>& body, std::vector<uint8_t>& out) {
  appendVarint(out, body.size());
  out.insert(out.end(), body.begin(), body.end());
}

}  // namespace

std::string_view StreamRequest::field(std::string_view name) const { return findField(fields, name); }
std::string_view StreamResponse::field(std::string_view name) const { return findField(fields, name); }

std::string_view headerErrorReason(HeaderError e) {
  switch (e) {
    case HeaderError::None: return "none";
    case HeaderError::TooLarge: return "header_too_large";
    case HeaderError::BadVersion: return "bad_version";
    case HeaderError::Truncated: return "truncated";
    case HeaderError::BadAuthority: return "bad_authority";
    case HeaderError::BadStatus: return "bad_status";
    case HeaderError::BadName: return "bad_field_name";
    case HeaderError::BadValue: return "bad_field_value";
    case HeaderError::TooManyFields: return "too_many_fields";
    case HeaderError::kCount: break;
  }
  return "unknown";
}

size_t varintLen(uint64_t v) {
  if (v < 64) return 1;
  if (v < 16384) return 2;
  if (v < 1073741824) return 4;
  return 8;
}

void appendVarint(std::vector<uint8_t>& out, uint64_t v) {
  v = std::min(v, kVarintMax);
  const size_t n = varintLen(v);
  const uint8_t prefix = n == 1 ? 0x00 : n == 2 ? 0x40 : n == 4 ? 0x80 : 0xc0;
  for (size_t i = 0; i < n; ++i) {
    uint8_t b = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
    if (i == 0) b |= prefix;
    out.push_back(b);
  }
}

size_t readVarint(std::span<const uint8_t> in, uint64_t& v) {
  if (in.empty()) return 0;
  const size_t n = size_t{1} << (in[0] >> 6);
  if (in.size() < n) return 0;
  v = in[0] & 0x3f;
  for (size_t i = 1; i < n; ++i) v = (v << 8) | in[i];
  return n;
}

bool validFieldName(std::string_view n) {
  if (n.empty() || n.size() > 256) return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return tokenChar(static_cast<unsigned char>(c)); });
}

bool validFieldValue(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

bool validAuthority(std::string_view a) {
  if (a.empty() || a.size() > 255 + 8) return false;
  size_t colon = a.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == a.size()) return false;
  std::string_view host = a.substr(0, colon), port = a.substr(colon + 1);
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535) return false;
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
    return std::all_of(host.begin(), host.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
    });
  }
  if (host.size() > 255) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
  });
}

size_t StreamHeaderParser::fail(HeaderError e, size_t consumed) {
  state_ = State::Failed;
  error_ = e;
  buf_.clear();
  buf_.shrink_to_fit();
  return consumed;
}

size_t StreamHeaderParser::feed(std::span<const uint8_t> in) {
  size_t used = 0;
  if (state_ == State::Length) {
    // The prefix is at most 8 bytes: take them one at a time until the varint is whole.
    while (used < in.size()) {
      buf_.push_back(in[used++]);
      uint64_t len = 0;
      if (readVarint(buf_, len) == 0) continue;
      if (len > limits_.maxHeaderBytes) return fail(HeaderError::TooLarge, used);
      if (len < 2) return fail(HeaderError::Truncated, used);
      bodyLen_ = static_cast<size_t>(len);
      buf_.clear();
      buf_.reserve(bodyLen_);
      state_ = State::Body;
      break;
    }
  }
  if (state_ == State::Body) {
    size_t take = std::min(in.size() - used, bodyLen_ - buf_.size());
    buf_.insert(buf_.end(), in.begin() + static_cast<std::ptrdiff_t>(used),
                in.begin() + static_cast<std::ptrdiff_t>(used + take));
    used += take;
    if (buf_.size() == bodyLen_) {
      HeaderError e = parseBody();
      if (e != HeaderError::None) return fail(e, used);
      buf_.clear();
      buf_.shrink_to_fit();
      state_ = State::Done;
    }
  }
  return used;
}

HeaderError StreamHeaderParser::parseBody() {
  if (buf_[0] != kStreamHeaderVersion) return HeaderError::BadVersion;
  Reader r{std::span<const uint8_t>(buf_).subspan(1)};
  std::vector<HeaderField>* fields = nullptr;
  if (kind_ == Kind::Request) {
    if (!r.string(request_.authority)) return HeaderError::Truncated;
    if (!validAuthority(request_.authority)) return HeaderError::BadAuthority;
    fields = &request_.fields;
  } else {
    uint64_t status = 0;
    if (!r.varint(status)) return HeaderError::Truncated;
    if (status < 100 || status > 999) return HeaderError::BadStatus;
    response_.status = static_cast<uint16_t>(status);
    fields = &response_.fields;
  }
  while (!r.atEnd()) {
    if (fields->size() == limits_.maxFields) return HeaderError::TooManyFields;
    HeaderField f;
    if (!r.string(f.first) || !r.string(f.second)) return HeaderError::Truncated;
    if (!validFieldName(f.first)) return HeaderError::BadName;
    if (!validFieldValue(f.second)) return HeaderError::BadValue;
    fields->push_back(std::move(f));
  }
  return HeaderError::None;
}

void encodeRequest(const StreamRequest& r, std::vector<uint8_t>& out) {
  std::vector<uint8_t> body;
  body.reserve(64 + r.authority.size());
  body.push_back(kStreamHeaderVersion);
  appendString(body, r.authority);
  encodeFields(r.fields, body);
  finish(body, out);
}

void encodeResponse(const StreamResponse& r, std::vector<uint8_t>& out) {
  std::vector<uint8_t> body;
  body.push_back(kStreamHeaderVersion);
  appendVarint(body, r.status);
  encodeFields(r.fields, body);
  finish(body, out);
}

}  // namespace ugate::quic

#include "core/access_log.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace ugate {

namespace {
// utf8Len returns the length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one.
size_t utf8Len(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  }
  if (n == 3 && ((c == 0xE0 && b(i + 1) < 0xA0) || (c == 0xED && b(i + 1) > 0x9F))) return 0;  // overlong, surrogates
  if (n == 4 && ((c == 0xF0 && b(i + 1) < 0x90) || (c == 0xF4 && b(i + 1) > 0x8F))) return 0;  // overlong, > U+10FFFF
  return n;
}
}  // namespace

void appendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char b[8];
          snprintf(b, sizeof(b), "\\u%04x", c);
          out += b;
        } else if (c < 0x80) {
          out.push_back(static_cast<char>(c));
        } else if (size_t n = utf8Len(s, i)) {
          out.append(s.substr(i, n));  // valid UTF-8 passes through
          i += n - 1;
        } else {
          out += "\\ufffd";  // names come from clients: never let bad bytes break the JSON line
        }
    }
  }
  out.push_back('"');
}

void JsonFields::key(std::string_view k) {
  if (more_) out_ += sep_;
  more_ = true;
  out_.push_back('"');
  out_ += k;  // keys are ours: plain ASCII
  out_.push_back('"');
  out_ += colon_;
}

JsonFields& JsonFields::str(std::string_view k, std::string_view v) {
  key(k);
  appendJsonString(out_, v);
  return *this;
}

JsonFields& JsonFields::num(std::string_view k, int64_t v) {
  key(k);
  out_ += std::to_string(v);
  return *this;
}

JsonFields& JsonFields::unum(std::string_view k, uint64_t v) {
  key(k);
  out_ += std::to_string(v);
  return *this;
}

JsonFields& JsonFields::strs(std::string_view k, const std::vector<std::string>& v) {
  key(k);
  out_.push_back('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out_ += sep_;
    appendJsonString(out_, v[i]);
  }
  out_.push_back(']');
  return *this;
}

void AccessLog::formatLine(std::string& out, const StreamMeta& m, MonotonicTime now,
                           std::chrono::system_clock::time_point wall) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  tm t{};
  gmtime_r(&secs, &t);
  char ts[64];
  snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1,
           t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(ms % 1000));
  out += "{\"time\":\"";
  out += ts;
  out += "\"";
  JsonFields f(out, /*more=*/true);
  f.unum("id", m.id);
  f.str("kind", streamKindName(m.kind));
  f.str("listener", m.listener);
  f.str("src", m.source.str());
  f.str("local", m.local.str());
  if (m.originalDst.valid()) f.str("original_dst", m.originalDst.str());
  if (!m.host.empty()) f.str("host", HostPort{m.host, m.port}.str());
  if (!m.sni.empty()) f.str("sni", m.sni);
  if (!m.alpn.empty()) f.str("alpn", m.alpn);
  if (m.peer) {
    // The identity a route matched on; otherwise the node ID, or the SPIFFE URI when there is none.
    // When the SPIFFE URI is shown, the node ID (the key's hash) follows as peer_id.
    const bool spiffe = m.peer->nodeId.empty() || (m.peerMatchedSpiffe && !m.peer->spiffe.empty());
    f.str("peer", spiffe ? m.peer->spiffe : m.peer->nodeId);
    if (spiffe && !m.peer->nodeId.empty()) f.str("peer_id", m.peer->nodeId);
  }
  if (m.headers) {  // null for nearly every stream: the common line costs one test
    for (const auto& [k, v] : *m.headers) {
      if (k == "traceparent" || k == "baggage") f.str(k.c_str(), v);  // W3C trace context across hops
    }
  }
  f.str("route", m.route);
  if (!m.upstream.empty()) f.str("upstream", m.upstream);
  if (m.upstreamAddr.valid()) f.str("upstream_addr", m.upstreamAddr.str());
  f.unum("bytes_in", m.bytesFromClient);
  f.unum("bytes_out", m.bytesToClient);
  if (m.kind == StreamKind::UdpFlow || m.packetsFromClient || m.packetsToClient) {
    f.unum("packets_in", m.packetsFromClient);
    f.unum("packets_out", m.packetsToClient);
  }
  auto dur = std::chrono::duration_cast<std::chrono::microseconds>(now - m.start).count();
  char d[32];
  snprintf(d, sizeof(d), "%.3f", static_cast<double>(dur < 0 ? 0 : dur) / 1000.0);
  out += ",\"duration_ms\":";
  out += d;
  f.str("close", errcReason(m.closeReason));
  if (!m.closeDetail.empty()) f.str("detail", m.closeDetail);
  out += "}\n";
}

void AccessLog::log(const StreamMeta& meta) {
  if (fd_ < 0) return;
  formatLine(buf_, meta, reactor_.now(), std::chrono::system_clock::now());
  if (buf_.size() >= 64 * 1024) {
    flush();
  } else if (!flushScheduled_) {
    flushScheduled_ = true;
    reactor_.defer([this] { flush(); });
  }
}

void AccessLog::flush() {
  flushScheduled_ = false;
  size_t off = 0;
  while (fd_ >= 0 && off < buf_.size()) {
    ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
    if (n <= 0) break;  // a full pipe or disk: drop rather than block the worker
    off += static_cast<size_t>(n);
  }
  buf_.clear();
}

}  // namespace ugate

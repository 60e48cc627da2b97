#include "core/handover.h"

#include <cstring>

namespace ugate::handover {

namespace {

// Limits on what a decoder accepts (well above anything a real peer sends).
constexpr size_t kMaxString = 4096;
constexpr size_t kMaxItems = 4096;  // listeners in a Hello, headers in a session

class Writer {
 public:
  explicit Writer(Type t) { out_.push_back(static_cast<char>(t)); }
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) { fixed(v, 2); }
  void u32(uint32_t v) { fixed(v, 4); }
  void u64(uint64_t v) { fixed(v, 8); }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void addr(const SocketAddress& a) {
    if (!a.valid()) {
      u8(0);
      return;
    }
    u8(static_cast<uint8_t>(a.len()));
    out_.append(reinterpret_cast<const char*>(a.sa()), a.len());
  }
  std::string take() { return std::move(out_); }

 private:
  void fixed(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

class Reader {
 public:
  Reader(std::string_view in, Type want) : in_(in) {
    if (in_.empty() || static_cast<uint8_t>(in_[0]) != static_cast<uint8_t>(want)) {
      fail(std::string("not a ") + typeName(want) + " message");
    } else {
      in_.remove_prefix(1);
    }
  }
  uint8_t u8() { return static_cast<uint8_t>(fixed(1)); }
  uint16_t u16() { return static_cast<uint16_t>(fixed(2)); }
  uint32_t u32() { return static_cast<uint32_t>(fixed(4)); }
  uint64_t u64() { return fixed(8); }
  bool flag() {
    uint8_t v = u8();
    if (v > 1) fail("a flag is neither 0 nor 1");
    return v == 1;
  }
  std::string str(size_t max = kMaxString) {
    uint32_t n = u32();
    if (!ok()) return {};
    if (n > max) {
      fail("a field of " + std::to_string(n) + " bytes exceeds its limit of " + std::to_string(max));
      return {};
    }
    if (n > in_.size()) {
      fail("truncated");
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  SocketAddress addr() {
    uint8_t n = u8();
    if (!ok() || n == 0) return {};
    if (n != sizeof(sockaddr_in) && n != sizeof(sockaddr_in6)) {
      fail("an address of " + std::to_string(n) + " bytes");
      return {};
    }
    if (n > in_.size()) {
      fail("truncated");
      return {};
    }
    sockaddr_storage ss{};
    memcpy(&ss, in_.data(), n);
    in_.remove_prefix(n);
    const auto family = reinterpret_cast<const sockaddr*>(&ss)->sa_family;
    if ((family == AF_INET && n != sizeof(sockaddr_in)) || (family == AF_INET6 && n != sizeof(sockaddr_in6)) ||
        (family != AF_INET && family != AF_INET6)) {
      fail("an address of unknown family");
      return {};
    }
    return SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(&ss), n);
  }
  size_t count() {
    uint32_t n = u32();
    if (n > kMaxItems) fail("a list of " + std::to_string(n) + " items");
    return ok() ? n : 0;
  }
  bool ok() const { return error_.empty(); }
  void fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }
  /** finish: the result, or the first problem (trailing bytes are one). */
  template <class T>
  Result<T> finish(T&& v, Type t) {
    if (ok() && !in_.empty()) fail(std::to_string(in_.size()) + " bytes after the end");
    if (!ok()) return makeError(Errc::ProtocolError, std::string("handover ") + typeName(t) + ": " + error_);
    return std::forward<T>(v);
  }

 private:
  uint64_t fixed(int n) {
    if (!ok()) return 0;
    if (in_.size() < static_cast<size_t>(n)) {
      fail("truncated");
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(n);
    return v;
  }
  std::string_view in_;
  std::string error_;
};

}  // namespace

const char* typeName(Type t) {
  switch (t) {
    case Type::Hello: return "hello";
    case Type::Listener: return "listener";
    case Type::ListenersEnd: return "listeners_end";
    case Type::Listening: return "listening";
    case Type::Session: return "session";
    case Type::Endpoint: return "endpoint";
    case Type::Done: return "done";
    case Type::DoneAck: return "done_ack";
  }
  return "unknown";
}

std::string encode(const Hello& m) {
  Writer w(Type::Hello);
  w.u32(m.version);
  w.u32(static_cast<uint32_t>(m.pid));
  w.u32(static_cast<uint32_t>(m.listeners.size()));
  for (const auto& l : m.listeners) w.str(l);
  return w.take();
}

std::string encode(const ListenerSocket& m) {
  Writer w(Type::Listener);
  w.str(m.name);
  w.str(m.address);
  w.u8(m.datagram ? 1 : 0);
  w.u16(m.worker);
  return w.take();
}

std::string encode(const SessionRecord& m) {
  Writer w(Type::Session);
  w.u64(m.id);
  w.u8(static_cast<uint8_t>(m.kind));
  w.str(m.listener);
  w.addr(m.source);
  w.addr(m.local);
  w.addr(m.originalDst);
  w.addr(m.upstreamAddr);
  w.str(m.host);
  w.u16(m.port);
  w.str(m.sni);
  w.str(m.alpn);
  w.str(m.route);
  w.str(m.upstream);
  w.u32(static_cast<uint32_t>(m.headers.size()));
  for (const auto& [k, v] : m.headers) {
    w.str(k);
    w.str(v);
  }
  w.u64(m.ageMicros);
  for (const auto& d : m.dir) {
    w.u64(d.bytes);
    w.u32(d.inPipe);
    w.u8(d.hasPipe ? 1 : 0);
    w.u8(d.finished ? 1 : 0);
    w.str(d.parked);
  }
  return w.take();
}

std::string encode(const Endpoint& m) {
  Writer w(Type::Endpoint);
  w.u8(m.admin ? 1 : 0);
  w.str(m.address);
  return w.take();
}

std::string encode(const DoneAck& m) {
  Writer w(Type::DoneAck);
  w.u64(m.adopted);
  w.u64(m.refused);
  return w.take();
}

std::string encodeBare(Type t) { return Writer(t).take(); }

Result<Type> peekType(std::string_view msg) {
  if (msg.empty()) return makeError(Errc::ProtocolError, "handover: an empty message");
  const auto t = static_cast<uint8_t>(msg[0]);
  if (t < static_cast<uint8_t>(Type::Hello) || t > static_cast<uint8_t>(Type::DoneAck)) {
    return makeError(Errc::ProtocolError, "handover: unknown message type " + std::to_string(t));
  }
  const auto type = static_cast<Type>(t);
  if ((type == Type::ListenersEnd || type == Type::Listening || type == Type::Done) && msg.size() != 1) {
    return makeError(Errc::ProtocolError, std::string("handover ") + typeName(type) + ": bytes after the end");
  }
  return type;
}

Result<Hello> decodeHello(std::string_view msg) {
  Reader r(msg, Type::Hello);
  Hello h;
  h.version = r.u32();
  h.pid = static_cast<int32_t>(r.u32());
  const size_t n = r.count();
  for (size_t i = 0; i < n && r.ok(); ++i) h.listeners.push_back(r.str());
  return r.finish(std::move(h), Type::Hello);
}

Result<ListenerSocket> decodeListener(std::string_view msg) {
  Reader r(msg, Type::Listener);
  ListenerSocket l;
  l.name = r.str();
  l.address = r.str();
  l.datagram = r.flag();
  l.worker = r.u16();
  return r.finish(std::move(l), Type::Listener);
}

Result<SessionRecord> decodeSession(std::string_view msg) {
  Reader r(msg, Type::Session);
  SessionRecord s;
  s.id = r.u64();
  const uint8_t kind = r.u8();
  if (kind > static_cast<uint8_t>(StreamKind::Pipe)) r.fail("unknown stream kind " + std::to_string(kind));
  s.kind = static_cast<StreamKind>(kind);
  s.listener = r.str();
  s.source = r.addr();
  s.local = r.addr();
  s.originalDst = r.addr();
  s.upstreamAddr = r.addr();
  s.host = r.str();
  s.port = r.u16();
  s.sni = r.str();
  s.alpn = r.str();
  s.route = r.str();
  s.upstream = r.str();
  const size_t n = r.count();
  for (size_t i = 0; i < n && r.ok(); ++i) {
    std::string k = r.str();
    std::string v = r.str();
    s.headers.emplace_back(std::move(k), std::move(v));
  }
  s.ageMicros = r.u64();
  for (auto& d : s.dir) {
    d.bytes = r.u64();
    d.inPipe = r.u32();
    d.hasPipe = r.flag();
    d.finished = r.flag();
    d.parked = r.str(kMaxParked);
    if (!d.hasPipe && d.inPipe != 0) r.fail("bytes in a pipe that is not there");
  }
  return r.finish(std::move(s), Type::Session);
}

Result<Endpoint> decodeEndpoint(std::string_view msg) {
  Reader r(msg, Type::Endpoint);
  Endpoint e;
  e.admin = r.flag();
  e.address = r.str();
  return r.finish(std::move(e), Type::Endpoint);
}

Result<DoneAck> decodeDoneAck(std::string_view msg) {
  Reader r(msg, Type::DoneAck);
  DoneAck a;
  a.adopted = r.u64();
  a.refused = r.u64();
  return r.finish(std::move(a), Type::DoneAck);
}

}  // namespace ugate::handover

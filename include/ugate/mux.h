#pragma once
// MuxConnection: a multiplexed, mutually authenticated connection between two nodes on which either
// side opens bidirectional streams. Each stream starts with a request (target authority and header
// fields: hops, originating identity, trace context) that the acceptor answers with a status and
// fields before payload flows. The mesh runs its protocol — admission, identity rules, circuits,
// pools, reverse accept — on any MuxConnection the same way; transports provide them and register
// by name in muxTransports() (the quic module: transport "quic", ALPN "ugate"). The mesh's HTTP/2
// connections (src/http) are the other transport; they are not behind this interface because the
// mesh owns them directly.
//
// Threading: a connection lives on the reactor of the worker that dialled or accepted it; every
// call and callback happens there. The registry is filled at startup (registerKinds, one thread) and
// read afterwards from any thread.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ugate/config.h>
#include <ugate/reactor.h>
#include <ugate/result.h>
#include <ugate/socket_address.h>
#include <ugate/stream.h>
#include <ugate/time.h>

namespace ugate {

class WorkerContext;
class MuxConnection;

/** MuxFields: a stream header's fields, lower-case names, order kept, names may repeat. */
using MuxFields = std::vector<std::pair<std::string, std::string>>;

/** muxField: the first value of `name` in f, or "" when absent. */
inline std::string muxField(const MuxFields& f, std::string_view name) {
  for (const auto& [n, v] : f) {
    if (n == name) return v;
  }
  return {};
}

/**
 * MuxInbound: a stream the peer opened, before it is answered. `stream` carries the payload; what
 * is written to it waits until respond() opened it. `respond` answers once: a 2xx status opens the
 * stream, anything else ends it after the header (and `body`, a short reason text, where the
 * transport carries one). `respond` may be called only while `stream` (or whoever took it) lives.
 */
struct MuxInbound {
  std::string authority;  // host:port the opener wants to reach
  MuxFields fields;
  StreamPtr stream;
  std::function<void(int status, const MuxFields& fields, const std::string& body)> respond;
};

class MuxConnectionCallbacks {
 public:
  virtual ~MuxConnectionCallbacks() = default;
  /** onMuxReady: a dialled connection finished its handshake: streams may be opened. */
  virtual void onMuxReady(MuxConnection& c) = 0;
  /** onMuxStream: the peer opened a stream. */
  virtual void onMuxStream(MuxConnection& c, MuxInbound in) = 0;
  /**
   * onMuxClosed: the connection ended (handshake failure, idle timeout, the peer's close). Called
   * once; the owner may destroy the connection only through Reactor::deferredDelete from here.
   */
  virtual void onMuxClosed(MuxConnection& c, Errc reason, const std::string& detail) = 0;
};

class MuxConnection : public DeferredDeletable {
 public:
  /** Answer: the peer's answer to a stream we opened (status 0: the stream ended without one). */
  using Answer = std::function<void(int status, const MuxFields& fields)>;
  ~MuxConnection() override = default;

  /** transport: the registry name of the transport ("quic"). */
  virtual std::string_view transport() const = 0;
  /** setCallbacks: where events go (non-owning; null: none). */
  virtual void setCallbacks(MuxConnectionCallbacks* cb) = 0;
  /**
   * open starts a stream to `authority` with `fields`. The returned stream carries the payload
   * (bytes written before the answer wait behind the header); `answer` runs once, on this reactor,
   * after open returned. Null when no stream may be opened now (not ready, the peer's limit).
   */
  virtual StreamPtr open(const std::string& authority, const MuxFields& fields, Answer answer) = 0;
  /** canOpen: ready, not closing, and below the peer's stream limit. */
  virtual bool canOpen() const = 0;
  /** activeStreams: streams open now (either side's). */
  virtual size_t activeStreams() const = 0;
  virtual bool ready() const = 0;
  virtual bool closed() const = 0;
  /** peer: the verified peer identity (null before the handshake completed). */
  virtual const PeerIdentity* peer() const = 0;
  /** alpn: the protocol the handshake chose. */
  virtual const std::string& alpn() const = 0;
  virtual SocketAddress peerAddress() const = 0;
  virtual SocketAddress localAddress() const = 0;
  /** goAway: no new streams; the connection closes once the open ones are done. */
  virtual void goAway() = 0;
  /** close: now (the streams still open read ECONNRESET). No callback follows. */
  virtual void close() = 0;
};
using MuxConnectionPtr = std::unique_ptr<MuxConnection>;

/** MuxDialParams: where and how to dial. */
struct MuxDialParams {
  SocketAddress address;
  UpstreamTlsConfig tls;  // must equal settings a module declared (Config::fromModules.clientTls)
  std::string sni;        // sent when non-empty
  std::string name;       // for logs
  Duration handshakeTimeout{10'000};
  Duration idleTimeout{30'000};  // no packet for this long ends the connection (keepalives before)
  uint64_t maxStreams{100};         // streams the peer may have open to us at once
  uint64_t streamWindow{1u << 20};  // initial receive window per stream and for the connection
  uint64_t connectionWindow{4u << 20};
};

class MuxTransport {
 public:
  virtual ~MuxTransport() = default;
  virtual std::string_view name() const = 0;
  /**
   * dial starts a connection from worker w (its reactor and TLS provider). cb hears onMuxReady or
   * onMuxClosed later, never from inside dial. An error when it cannot even start (no socket, no
   * TLS context for these settings).
   */
  virtual Result<MuxConnectionPtr> dial(WorkerContext& w, const MuxDialParams& p, MuxConnectionCallbacks& cb) = 0;
};

/**
 * MuxAcceptor: takes a connection a transport accepted on listener `listener` of worker w (the
 * handshake is done; the acceptor sets its callbacks before returning).
 */
using MuxAcceptor = std::function<void(WorkerContext& w, const std::string& listener, MuxConnectionPtr c)>;

/** MuxTransports: the process-wide registry of transports, and who takes accepted connections. */
class MuxTransports {
 public:
  /** add registers a transport (startup, before the workers start); a name registered twice replaces. */
  void add(std::shared_ptr<MuxTransport> t);
  /** find: the transport of this name, or null. */
  MuxTransport* find(std::string_view name) const;
  /** setAcceptor: who takes accepted connections (the mesh); an empty function withdraws. */
  void setAcceptor(MuxAcceptor a);
  /** accept hands c to the acceptor; false (c untouched) when there is none. */
  bool accept(WorkerContext& w, const std::string& listener, MuxConnectionPtr& c) const;

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<MuxTransport>> transports_;
  std::shared_ptr<const MuxAcceptor> acceptor_;
};

/** muxTransports: the process-wide registry. */
MuxTransports& muxTransports();

}  // namespace ugate

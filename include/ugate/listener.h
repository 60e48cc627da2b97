#pragma once
// The registry of listener kinds. Core registers "tcp"; src/ugated's registerBuiltinModules() adds
// each front-door module's kind before the config is parsed. Kind-specific options are parsed by the
// module's own config file (the only other place nlohmann/json may appear).
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <ugate/front_door.h>
#include <ugate/result.h>
#include <ugate/stream.h>

namespace ugate {

struct ListenerConfig;
struct ConnectOptions;
struct ListenerTlsConfig;
class WorkerContext;

/** ListenerOptions: a kind's parsed options; modules derive from it and downcast in their factory. */
struct ListenerOptions {
  virtual ~ListenerOptions() = default;
};
using ListenerOptionsPtr = std::shared_ptr<const ListenerOptions>;


/**
 * DatagramHandler: the per-worker owner of a datagram listener's socket (kinds with
 * ListenerKindSpec::datagram). Created on the worker's thread by newDatagramHandler and destroyed
 * there when the listener goes away (reload, drain); it registers the fd with the worker's reactor
 * itself, owns it, and ends whatever it serves (flows, with their access-log lines) in its
 * destructor.
 */
class DatagramHandler {
 public:
  virtual ~DatagramHandler() = default;
  /** setConfig points the handler at the listener's entry in a new snapshot (same socket). */
  virtual void setConfig(const ListenerConfig& cfg) = 0;
  /**
   * drainsInPlace: at shutdown, whether the handler stays (socket and all) while what it serves
   * finishes — QUIC connections carry streams that drain like TCP ones (GOAWAY, then they end);
   * the owning module's drain() tells them, and the handler takes no new flows from then on. False
   * (plain UDP flows, which have no connection to drain): it is closed when the drain starts.
   */
  virtual bool drainsInPlace() const { return false; }
  /** openFlows: what a handler kept for the drain still serves (the daemon waits for it, as for streams). */
  virtual size_t openFlows() const { return 0; }
};
using DatagramHandlerPtr = std::unique_ptr<DatagramHandler>;

struct ListenerKindSpec {
  std::string name;
  StreamKind streamKind{StreamKind::Tcp};
  bool toRequired{false};
  /**
   * dialsRequested: clients name their destination (SOCKS, HTTP CONNECT). Then `original`, and a
   * listener without `to`, dial meta.host:meta.port when there is no captured original destination.
   */
  bool dialsRequested{false};
  /** defaultOriginal: a listener without `to` dials the original destination (capture kinds). */
  bool defaultOriginal{false};
  std::vector<std::string> optionKeys;  // keys this kind adds to the listener object
  /** fixedTls: the kind always terminates TLS with these settings ("tls" is then not configurable). */
  std::shared_ptr<const ListenerTlsConfig> fixedTls;
  /**
   * defaultTls: the kind always runs TLS (QUIC): a listener without "tls" gets these settings, and
   * one whose "tls" names no ALPN gets these protocols. Null: TLS only when configured.
   */
  std::shared_ptr<const ListenerTlsConfig> defaultTls;
  /**
   * parseOptions validates the kind's keys of listener object `j` (path like "listeners[2]"); an
   * error's detail must start with the full JSON path. May be empty when the kind has no options.
   */
  std::function<Result<ListenerOptionsPtr>(const nlohmann::json& j, const std::string& path)> parseOptions;
  /**
   * validate checks the whole listener once parsed (e.g. an open proxy on a public address); empty
   * = nothing to check. Returns an error with the JSON path.
   */
  std::function<Result<void>(const ListenerConfig& l, const std::string& path)> validate;
  /**
   * datagram: the listener is a UDP socket (SOCK_DGRAM, SO_REUSEPORT once per worker, no listen or
   * accept); newDatagramHandler then serves it on each worker instead of the TCP accept loop.
   */
  bool datagram{false};
  /** newDatagramHandler takes ownership of fd (bound, non-blocking) on worker w's thread. */
  std::function<DatagramHandlerPtr(WorkerContext& w, const ListenerConfig& l, int fd)>
      newDatagramHandler;
  /** newFrontDoor creates the per-connection protocol handler; empty = forward at once (tcp). */
  std::function<FrontDoorPtr(const ListenerConfig& l)> newFrontDoor;
  /**
   * configureListenSocket sets options on each of the listener's sockets before bind (e.g.
   * IP_TRANSPARENT); empty = none. Main thread, at startup and reload; an error (naming the option
   * and why) fails the bind.
   */
  std::function<Result<void>(int fd, const ListenerConfig& l)> configureListenSocket;
  /**
   * onAccept runs on the worker for every accepted socket, before the session starts, and fills
   * what only the socket knows (e.g. meta.originalDst from SO_ORIGINAL_DST). An error refuses the
   * connection: it is reset, counted in the listener's closes by the error's code and logged with
   * its detail. Must not block.
   */
  std::function<Result<void>(int fd, const ListenerConfig& l, StreamMeta& meta)> onAccept;
  /**
   * upstreamOptions fills the socket options of an upstream connection to `to` (SO_MARK, source
   * address, transparency); empty = none. Runs on the worker for each connect attempt.
   */
  std::function<void(const ListenerConfig& l, const StreamMeta& meta, const SocketAddress& to,
                     ConnectOptions& out)>
      upstreamOptions;
  /**
   * acceptConnection: the kind takes over each accepted connection itself (the mesh listener runs
   * TLS and HTTP/2 and starts one session per tunnelled stream) instead of a ProxySession. Called on
   * the worker's thread with the accepted fd (owned by the callee) and its metadata.
   */
  std::function<void(WorkerContext& w, const ListenerConfig& l, int fd, StreamMeta meta)> acceptConnection;
};

class ListenerKindRegistry {
 public:
  ListenerKindRegistry();  // with the core kinds ("tcp")
  /** add registers a kind; a later add of the same name replaces it. Not thread-safe: startup only. */
  void add(ListenerKindSpec spec);
  const ListenerKindSpec* find(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  std::vector<ListenerKindSpec> kinds_;
};

/** listenerKinds: the process-wide registry used by parseConfig. */
ListenerKindRegistry& listenerKinds();

}  // namespace ugate

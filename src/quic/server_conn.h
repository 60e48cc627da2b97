#pragma once
// ServerConn: one QUIC connection a client opened to a `quic` listener: the ngtcp2 connection, its
// TLS session (the node's credentials, through the contract's TlsSession and the crypto glue), its
// streams, and the application its ALPN chose (HTTP/3 today; the mesh ALPN next). Owned by the
// endpoint that accepted it; runs on that worker's reactor only.
//
// Life: created for a client Initial that passed address validation and limits; every datagram for
// one of its CIDs goes to onDatagram(); after each batch of datagrams (and on its timer) flush()
// writes what ngtcp2 and the application have to send. It ends by idle timeout or handshake timeout
// (silently), by the peer's CONNECTION_CLOSE (draining), or by our close() (closing: our
// CONNECTION_CLOSE is repeated to any late packet for 3 PTO), then the endpoint deletes it.
#include <netinet/in.h>
#include <sys/socket.h>

#include <ngtcp2/ngtcp2.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ugate/reactor.h>
#include <ugate/socket_address.h>
#include <ugate/stream.h>
#include <ugate/tls_provider.h>

#include "quic/quic_crypto.h"
#include "quic/quic_stream.h"

namespace ugate {
struct ListenerConfig;
}

namespace ugate::quic {

class QuicEndpoint;
class QuicWorker;
class H3Server;
struct QuicTuning;

/** Path: local and remote addresses of a datagram, in storage ngtcp2_path can point into. */
struct PathAddrs {
  SocketAddress local;
  SocketAddress remote;
};

/** Application: the protocol on top of QUIC chosen by ALPN. */
class Application {
 public:
  virtual ~Application() = default;
  /** start: the handshake completed (open control streams, ...). False: close the connection. */
  virtual bool start() = 0;
  /** recvStreamData: bytes (and FIN) of a stream; returns 0 or an ngtcp2 error code. */
  virtual int recvStreamData(int64_t id, const uint8_t* data, size_t len, bool fin) = 0;
  virtual void ackedStreamData(int64_t id, uint64_t len) = 0;
  virtual void streamClosed(int64_t id, uint64_t appErrorCode) = 0;
  virtual void streamReset(int64_t id, uint64_t appErrorCode) = 0;
  virtual void streamStopSending(int64_t id, uint64_t appErrorCode) = 0;
  virtual void extendMaxStreamData(int64_t id) = 0;
  /** resume: stream id has new bytes or a FIN to send (the application asked to be woken). */
  virtual void resume(int64_t id) = 0;
  virtual void extendMaxRemoteStreams(uint64_t maxStreams) = 0;
  /**
   * nextStreamData: the next stream with something to send: fills vecs (at most maxv) and fin;
   * returns the stream id, or -1 when none has data. Then the connection reports how much it took.
   */
  virtual int64_t nextStreamData(ngtcp2_vec* vecs, size_t maxv, size_t& nvecs, bool& fin) = 0;
  virtual void streamDataTaken(int64_t id, size_t n) = 0;
  virtual void streamBlocked(int64_t id) = 0;
  virtual void streamShutWrite(int64_t id) = 0;
  /** drain: stop taking new streams (GOAWAY); existing ones go on. */
  virtual void drain() = 0;
};

class ServerConn final : public StreamHost {
 public:
  /**
   * ServerConn for a client Initial (hd as ngtcp2_accept parsed it). odcid: the original DCID when
   * the Initial carried a valid Retry token (the Retry's SCID is then hd.dcid), else null. regular:
   * the Initial carried a valid NEW_TOKEN token (the address is validated). Check ok() after.
   */
  ServerConn(QuicEndpoint& ep, const ngtcp2_pkt_hd& hd, const ngtcp2_cid* odcid, bool tokenValidated,
             const PathAddrs& path, const ListenerConfig& l);
  ~ServerConn() override;
  ServerConn(const ServerConn&) = delete;
  ServerConn& operator=(const ServerConn&) = delete;

  /** ok: construction succeeded (else the endpoint drops it; why says so). */
  bool ok() const { return conn_ != nullptr && tls_ != nullptr; }
  const std::string& why() const { return why_; }
  bool dead() const { return state_ == State::Dead; }
  bool handshakeDone() const { return handshakeDone_; }

  /** onDatagram: one UDP payload for this connection (from path, with its ECN bits). */
  void onDatagram(const PathAddrs& path, const uint8_t* data, size_t len, uint8_t ecn);
  /** flush writes every packet there is to write now and re-arms the timer. */
  void flush();
  /** drain: SIGTERM: GOAWAY and a CONNECTION_CLOSE(NO_ERROR) once the streams are done (or now). */
  void drain();
  /** closeNow: the listener is going away: CONNECTION_CLOSE(NO_ERROR) at once. */
  void closeNow();

  // StreamHost (faces of tunnelled streams)
  void consumed(StreamState& s, size_t n) override;
  void dataReady(StreamState& s) override;
  void released(StreamState& s, bool abort) override;
  size_t writeCap() const override { return 256u << 10; }

  // For the application.
  ngtcp2_conn* conn() { return conn_; }
  QuicWorker& worker();
  QuicEndpoint& endpoint() { return ep_; }
  const ListenerConfig& listener() const;
  const TlsOutcome& tlsOutcome() const { return outcome_; }
  const SocketAddress& peer() const { return path_.remote; }
  const SocketAddress& local() const { return path_.local; }
  /** stream: the state of stream id (created when absent). */
  StreamState& stream(int64_t id);
  StreamState* findStream(int64_t id);
  void eraseStream(int64_t id);
  /** notify queues readiness for a stream's face, delivered once this I/O turn ends. */
  void notify(StreamState& s, bool read, bool write);
  /** extendCredit: n bytes of stream id were consumed without the application seeing them. */
  void extendCredit(int64_t id, size_t n);
  /** closeWith: close the connection with an application error (e.g. H3_INTERNAL_ERROR). */
  void closeWithAppError(uint64_t code, std::string_view reason);
  /** wake: schedule a flush at the end of this turn (called from faces and sessions). */
  void wake();

  Application* app() { return app_.get(); }

 private:
  enum class State : uint8_t { Handshaking, Open, Closing, Draining, Dead };
  static ngtcp2_tstamp now();
  void setupCallbacks(ngtcp2_callbacks& cb);
  bool writeStreams(ngtcp2_tstamp ts);
  void sendPacket(const uint8_t* data, size_t len, const ngtcp2_path& path, uint8_t ecn);
  void armTimer();
  void onTimer();
  void closeWithError(const ngtcp2_ccerr& err);
  void enterDraining();
  void die(std::string_view why);
  void deliverNotifications();
  void registerCid(const ngtcp2_cid& cid);
  void onHandshakeCompleted();
  void onReadError(int rv);

  // ngtcp2 callbacks
  static int cbHandshakeCompleted(ngtcp2_conn* c, void* ud);
  static int cbRecvStreamData(ngtcp2_conn* c, uint32_t flags, int64_t id, uint64_t off, const uint8_t* data,
                              size_t len, void* ud, void* sud);
  static int cbAckedStreamData(ngtcp2_conn* c, int64_t id, uint64_t off, uint64_t len, void* ud, void* sud);
  static int cbStreamOpen(ngtcp2_conn* c, int64_t id, void* ud);
  static int cbStreamClose(ngtcp2_conn* c, uint32_t flags, int64_t id, uint64_t code, void* ud, void* sud);
  static int cbStreamReset(ngtcp2_conn* c, int64_t id, uint64_t finalSize, uint64_t code, void* ud, void* sud);
  static int cbStreamStopSending(ngtcp2_conn* c, int64_t id, uint64_t code, void* ud, void* sud);
  static int cbExtendMaxStreamData(ngtcp2_conn* c, int64_t id, uint64_t max, void* ud, void* sud);
  static int cbExtendMaxRemoteStreamsBidi(ngtcp2_conn* c, uint64_t max, void* ud);
  static int cbGetNewConnectionId(ngtcp2_conn* c, ngtcp2_cid* cid, uint8_t* token, size_t len, void* ud);
  static int cbRemoveConnectionId(ngtcp2_conn* c, const ngtcp2_cid* cid, void* ud);
  static ngtcp2_conn* getConn(ConnRef* ref);

  QuicEndpoint& ep_;
  std::string listenerName_;
  PathAddrs path_;
  ngtcp2_conn* conn_{nullptr};
  TlsSessionPtr tls_;
  ConnRef connRef_;
  TlsOutcome outcome_;
  std::unique_ptr<Application> app_;
  State state_{State::Handshaking};
  bool handshakeDone_{false};
  bool draining_{false};   // drain() asked: close once the streams are done
  bool wakePending_{false};
  bool inRead_{false};        // inside ngtcp2_conn_read_pkt / handle_expiry (its callbacks run)
  bool pendingClose_{false};  // a callback asked to close: done when read_pkt returns
  ngtcp2_ccerr pendingErr_{};
  std::string why_;
  std::string originalDcid_;          // the client's first DCID: registered until the connection dies
  std::vector<std::string> cids_;     // every CID registered for us in the worker's table
  std::vector<uint8_t> closeBuf_;     // our CONNECTION_CLOSE packet while closing
  TimerPtr timer_;
  std::map<int64_t, std::unique_ptr<StreamState>> streams_;
  std::vector<int64_t> notifyQ_;
  MonotonicTime start_;
};

}  // namespace ugate::quic

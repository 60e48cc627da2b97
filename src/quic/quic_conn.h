#pragma once
// QuicConn: one QUIC connection, server or client side: the ngtcp2 connection, its TLS session (the
// contract's TlsSession driven through the crypto glue), its streams, and the application on top
// (HTTP/3 by ALPN on a server; the one its caller chose on a client). Runs on one reactor only.
// Where its packets go, and the connection IDs it issues, are its PacketIo's business: a listener's
// endpoint (quic_endpoint.h) for a server connection, a connected UDP socket for a client.
//
// Life: a server connection is created for a client Initial that passed address validation and
// limits, a client connection by its caller (connect() sends the first Initial). Every datagram
// for it goes to onDatagram(); after each batch (and on its timer) flush() writes what ngtcp2 and
// the application have to send. It ends by idle or handshake timeout (silently), by the peer's
// CONNECTION_CLOSE (draining), or by our close (closing: our CONNECTION_CLOSE is repeated to late
// packets for 3 PTO); then its PacketIo deletes it.
#include <netinet/in.h>
#include <sys/socket.h>

#include <ngtcp2/ngtcp2.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <ugate/reactor.h>
#include <ugate/socket_address.h>
#include <ugate/stream.h>
#include <ugate/tls_provider.h>

#include "quic/cid.h"
#include "quic/quic_counters.h"
#include "quic/quic_crypto.h"
#include "quic/quic_options.h"
#include "quic/quic_stream.h"

namespace ugate {
struct ListenerConfig;
class WorkerContext;
}  // namespace ugate

namespace ugate::quic {

/**
 * kFlushAfterRxBytes: a socket's read loop stops to flush (ACKs, data, credit) once this many bytes
 * came in since its last flush. A wake can read 8 recvmmsg batches of 32 GRO datagrams (up to
 * 16 MiB); acknowledging only at the end of that starves the sender's congestion window and
 * stream buffers on a fast path. ngtcp2 acknowledges from write calls only, so this sets the ACK
 * cadence of a bulk receiver: about one ACK per 64 KiB GRO datagram.
 */
inline constexpr size_t kFlushAfterRxBytes = 64u << 10;

class QuicConn;

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

/**
 * PacketIo: what a connection needs of its surroundings: its reactor and counters, room to build
 * packets and a way to send them (batched), a turn-end flush, its own removal, and the connection
 * IDs it issues (a server's name their worker and are registered for routing; a client's are random).
 */
class PacketIo {
 public:
  virtual ~PacketIo() = default;
  virtual Reactor& reactor() = 0;
  virtual QuicCounters& counters() = 0;
  /** logBudget: whether a per-connection line may be logged now (rate-limited). */
  virtual bool logBudget() = 0;
  /** txSlot: room for one packet (kMaxPacket bytes); send() commits it. */
  virtual uint8_t* txSlot() = 0;
  virtual void send(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from) = 0;
  /**
   * sendEcn: send() with the ECN codepoint ngtcp2 chose for the packet (ngtcp2_pkt_info.ecn). A
   * PacketIo that cannot mark packets sends them unmarked (ngtcp2's ECN validation then turns it off).
   */
  virtual void sendEcn(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from, uint8_t ecn) {
    (void)ecn;
    send(slot, len, to, from);
  }
  /** schedule: c has something to write: call c->flush() at the end of this turn. */
  virtual void schedule(QuicConn* c) = 0;
  /** connDied: c is dead; free it once its own code is off the stack. */
  virtual void connDied(QuicConn* c) = 0;
  /** newCid: a connection ID this side issues; addCid/removeCid route datagrams by it. */
  virtual void newCid(std::span<uint8_t, CidCodec::kLen> out) = 0;
  virtual void addCid(std::string_view cid, QuicConn* c) { (void)cid, (void)c; }
  virtual void removeCid(std::string_view cid) { (void)cid; }
  /** resetSecret: the key of this side's stateless reset tokens. */
  virtual std::span<const uint8_t> resetSecret() = 0;
  /** tokenSecret: a server's NEW_TOKEN key (empty: no tokens). */
  virtual std::span<const uint8_t> tokenSecret() { return {}; }
  /** worker: the core worker (routes, sessions); null outside ugated's workers (tools). */
  virtual WorkerContext* worker() { return nullptr; }
  /** listenerConfig: a server's listener in the current config snapshot (null for a client). */
  virtual const ListenerConfig* listenerConfig() const { return nullptr; }

  static constexpr size_t kMaxPacket = 1500;
};

/** kEcnMask: the ECN bits of a TOS byte / traffic class (RFC 3168), what ngtcp2_pkt_info.ecn holds. */
inline constexpr uint8_t kEcnMask = 0x03;

/** ServerParams: a client Initial accepted by an endpoint. */
struct ServerParams {
  const ngtcp2_pkt_hd* hd{nullptr};  // as ngtcp2_accept parsed it
  const ngtcp2_cid* odcid{nullptr};  // the original DCID when a valid Retry token came (hd.dcid = Retry SCID)
  bool tokenValidated{false};        // a valid Retry or NEW_TOKEN token: the address is validated
  PathAddrs path;
  QuicTuning tuning;
  TlsSessionPtr tls;                 // from the listener's TLS context
  std::string name;                  // the listener's name (logs)
};

/** ClientParams: a connection we open. */
struct ClientParams {
  PathAddrs path;                    // local (bound, connected socket) and the server
  QuicTuning tuning;
  TlsSessionPtr tls;                 // ALPN and the server's verification come with its context
  std::string sni;                   // server name sent (empty: none)
  /** makeApp: the application (made with its connection); starts once the handshake completes. */
  std::function<std::unique_ptr<Application>(QuicConn&)> makeApp;
  std::string alpn;                  // the protocol app speaks: the handshake must have chosen it
  std::string name;                  // for logs
};

class QuicConn final : public StreamHost {
 public:
  /** QuicConn (server) for a client Initial; then onDatagram() it. Check ok() after. */
  QuicConn(PacketIo& io, ServerParams p);
  /** QuicConn (client); connect() sends the first flight. Check ok() after. */
  QuicConn(PacketIo& io, ClientParams p);
  ~QuicConn() override;
  QuicConn(const QuicConn&) = delete;
  QuicConn& operator=(const QuicConn&) = delete;

  /** connect (client): the first Initial goes out; app starts once the handshake completes. */
  void connect() { wake(); }
  bool isServer() const { return server_; }
  /** onClosed: called once when the connection ends (client owners: their cue to clean up). */
  std::function<void(std::string_view why)> onClosed;
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
  /**
   * refused: the network said nothing listens at the peer's address (ICMP port unreachable on a
   * client's connected socket). Before the handshake the connection ends now with `why` (its owner
   * hears it at once, not at the handshake timeout); after it, nothing happens: an ICMP message is
   * easy to forge, and a peer that proved itself alive is given up on by the idle timeout only.
   */
  void refused(std::string_view why);

  // StreamHost (faces of tunnelled streams)
  void consumed(StreamState& s, size_t n) override;
  void dataReady(StreamState& s) override;
  void released(StreamState& s, bool abort) override;
  /**
   * writeCap: a stream may hold its share (the connection's streams alike) of the congestion
   * window plus kMinWriteCap unacknowledged, at least kMinWriteCap and at most kMaxWriteCap, so a
   * fast path is never starved by a stream buffer smaller than what may be in flight, a slow one
   * holds little and many streams do not each hold a window. Updated after each flush.
   */
  size_t writeCap() const override { return writeCap_; }
  static constexpr size_t kMinWriteCap = 256u << 10;
  static constexpr size_t kMaxWriteCap = 4u << 20;

  // For the application.
  ngtcp2_conn* conn() { return conn_; }
  PacketIo& io() { return io_; }
  const std::string& name() const { return name_; }
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
  ngtcp2_tstamp now() const;
  bool setupTls(const std::string& sni);
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

  PacketIo& io_;
  bool server_;
  std::string name_;  // the listener's (server) or the caller's (client), for logs
  QuicTuning tuning_;
  std::string wantAlpn_;  // client: the protocol its application speaks
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
  size_t writeCap_{kMinWriteCap};  // writeCap(): (cwnd + kMinWriteCap) / streams, clamped (by flush)
  ngtcp2_tstamp armedExpiry_{UINT64_MAX};  // the ngtcp2 expiry timer_ is armed for (armTimer)
  std::map<int64_t, std::unique_ptr<StreamState>> streams_;
  std::vector<int64_t> notifyQ_;
  MonotonicTime start_;
};

}  // namespace ugate::quic

#pragma once
// The mesh over QUIC (ALPN "ugate"): MuxApp is the Application on a QuicConn — raw bidirectional
// streams, opened by either side, each beginning with a stream header (stream_header.h) that the
// acceptor answers with a status before payload flows — and QuicMux is that connection as the
// contract's MuxConnection (include/ugate/mux.h), which the mesh module drives exactly like one of
// its HTTP/2 connections. QuicMuxTransport is transport "quic" in muxTransports(): it dials (a
// ClientSocket per connection, mutual TLS with the node's credentials); a `quic` listener whose
// ALPN list has "ugate" hands each accepted connection to the registry's acceptor (the mesh).
//
// Streams: the opener writes its request header into the stream's send buffer first, so payload
// written before the answer simply follows it; the acceptor's stream holds writes (EAGAIN) until
// it answered. A bad header resets the stream with kMuxHeaderError (never the connection), logged
// and counted. Runs on the connection's reactor only.
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <ugate/mux.h>

#include "quic/quic_conn.h"
#include "quic/stream_header.h"

namespace ugate::quic {

class ClientSocket;
struct QuicShared;
class QuicMux;

/** QUIC application error codes of the mesh streams (RESET_STREAM / STOP_SENDING). */
inline constexpr uint64_t kMuxNoError = 0x100;      // the same value as H3_NO_ERROR: QuicConn's default
inline constexpr uint64_t kMuxHeaderError = 0x101;  // a malformed or oversized stream header
inline constexpr uint64_t kMuxRefused = 0x10b;      // not accepted (no acceptor, going away)

class MuxApp final : public Application {
 public:
  /** MuxApp: on a client connection `mux` is its QuicMux; a server makes its own in start(). */
  MuxApp(QuicConn& c, QuicMux* mux);
  ~MuxApp() override;

  bool start() override;
  int recvStreamData(int64_t id, const uint8_t* data, size_t len, bool fin) override;
  void ackedStreamData(int64_t id, uint64_t len) override;
  void streamClosed(int64_t id, uint64_t appErrorCode) override;
  void streamReset(int64_t id, uint64_t appErrorCode) override;
  void streamStopSending(int64_t id, uint64_t appErrorCode) override;
  void extendMaxStreamData(int64_t id) override { ready_.insert(id); }
  void resume(int64_t id) override { ready_.insert(id); }
  void extendMaxRemoteStreams(uint64_t maxStreams) override { (void)maxStreams; }
  int64_t nextStreamData(ngtcp2_vec* vecs, size_t maxv, size_t& nvecs, bool& fin) override;
  void streamDataTaken(int64_t id, size_t n) override;
  void streamBlocked(int64_t id) override { ready_.erase(id); }
  void streamShutWrite(int64_t id) override { ready_.erase(id); }
  void drain() override { goingAway_ = true; }

  /** open: MuxConnection::open on this connection. */
  StreamPtr open(const std::string& authority, const MuxFields& fields, MuxConnection::Answer answer);
  /** answer: the acceptor's answer on stream id (once). */
  void answer(int64_t id, int status, const MuxFields& fields, const std::string& body);
  size_t activeStreams() const { return extra_.size(); }
  void detachMux() { mux_ = nullptr; }
  bool goingAway() const { return goingAway_; }

 private:
  /** Extra: the header state of one stream. */
  struct Extra {
    explicit Extra(StreamHeaderParser::Kind k) : parser(k) {}
    StreamHeaderParser parser;
    bool headerDone{false};
    MuxConnection::Answer answer;  // ours: the peer's answer is awaited
  };
  bool remoteStream(int64_t id) const { return ((id & 1) == 0) == conn_.isServer(); }
  void headerFailed(int64_t id, HeaderError e);
  void deliverInbound(StreamState& s, StreamRequest req);

  QuicConn& conn_;
  QuicMux* mux_;
  std::map<int64_t, Extra> extra_;  // streams whose header is pending or that are still open
  std::set<int64_t> ready_;         // streams that may have bytes or a FIN to send
  int64_t lastServed_{-1};          // the stream nextStreamData offered last (round robin)
  int64_t finOffered_{-1};          // the stream nextStreamData offered a FIN for
  bool goingAway_{false};
  std::shared_ptr<bool> alive_{std::make_shared<bool>(true)};  // for work deferred past this turn
};

class QuicMux final : public MuxConnection {
 public:
  QuicMux(QuicCounters& counters, std::string name);
  ~QuicMux() override;

  /** attach (dial): the connection and the socket that owns it. */
  void attach(QuicConn& c, std::unique_ptr<ClientSocket> sock);
  /** attachServer: a server connection, owned by its endpoint. */
  void attachServer(QuicConn& c, MuxApp& app);

  // ugate::MuxConnection
  std::string_view transport() const override { return "quic"; }
  void setCallbacks(MuxConnectionCallbacks* cb) override;
  StreamPtr open(const std::string& authority, const MuxFields& fields, Answer answer) override;
  bool canOpen() const override;
  size_t activeStreams() const override { return app_ ? app_->activeStreams() : 0; }
  bool ready() const override { return ready_ && !closed(); }
  bool closed() const override { return conn_ == nullptr || conn_->dead() || gone_; }
  const PeerIdentity* peer() const override { return peer_.get(); }
  const std::string& alpn() const override { return alpn_; }
  SocketAddress peerAddress() const override { return peerAddr_; }
  SocketAddress localAddress() const override { return localAddr_; }
  void goAway() override;
  void close() override;

  // From the application.
  /** bindApp: the application of a dialled connection, made with it (before its handshake). */
  void bindApp(MuxApp* app) { app_ = app; }
  void appReady(MuxApp& app);
  void appStream(MuxInbound in);
  void appGone(std::string_view why);

 private:
  void takeOutcome();

  QuicCounters& counters_;
  std::string name_;
  QuicConn* conn_{nullptr};
  MuxApp* app_{nullptr};
  std::unique_ptr<ClientSocket> sock_;
  MuxConnectionCallbacks* cb_{nullptr};
  std::vector<MuxInbound> early_;  // streams that arrived before the callbacks were set
  bool ready_{false};
  bool gone_{false};
  std::unique_ptr<PeerIdentity> peer_;
  std::string alpn_;
  SocketAddress peerAddr_, localAddr_;
};

/** QuicMuxTransport: transport "quic" of muxTransports(). */
class QuicMuxTransport final : public MuxTransport {
 public:
  explicit QuicMuxTransport(QuicShared& shared) : shared_(shared) {}
  std::string_view name() const override { return "quic"; }
  Result<MuxConnectionPtr> dial(WorkerContext& w, const MuxDialParams& p, MuxConnectionCallbacks& cb) override;

 private:
  QuicShared& shared_;
};

}  // namespace ugate::quic

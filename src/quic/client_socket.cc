#include "quic/client_socket.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <cerrno>
#include <cstring>

#include <ugate/datagram_io.h>
#include <ugate/worker_context.h>

namespace ugate::quic {

namespace {
constexpr int kBatchesPerWake = 8;  // then yield to other fds
constexpr size_t kTxArena = 96 * 1024;  // one GSO train of 64 full packets
}  // namespace

const char ClientSocket::kRefused[] = "connection refused (ICMP port unreachable)";

Result<std::unique_ptr<ClientSocket>> ClientSocket::open(Reactor& r, QuicCounters& counters,
                                                         const SocketAddress& server, WorkerContext* worker) {
  int fd = ::socket(server.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(errcFromErrno(errno), std::string("socket: ") + strerror(errno));
  if (::connect(fd, server.sa(), server.len()) != 0) {
    int e = errno;
    ::close(fd);
    return makeError(errcFromErrno(e), "connect " + server.str() + ": " + strerror(e));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  SocketAddress local = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  int bytes = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
  // As the listener's sockets: the TOS byte (ECN) on receive, GRO when the kernel has it, DF.
  uint8_t flags = udp::setRecvOptions(fd, server.family(), udp::kRecvTos) ? udp::kRecvTos : 0;
  if (udp::enableGro(fd)) flags |= udp::kRecvGro;
  udp::setDontFragment(fd, server.family());
  auto s = std::unique_ptr<ClientSocket>(new ClientSocket(r, counters, fd, server, local, worker));
  s->recvFlags_ = flags;
  return s;
}

ClientSocket::ClientSocket(Reactor& r, QuicCounters& counters, int fd, SocketAddress server, SocketAddress local,
                           WorkerContext* worker)
    : r_(r), counters_(counters), fd_(fd), server_(server), local_(local), worker_(worker),
      tx_(kTxArena, false) {
  RAND_bytes(resetSecret_.data(), resetSecret_.size());
  flushTimer_ = r_.createTimer([this] { runPending(); });
  r_.addFd(fd_, this, EPOLLIN);
}

ClientSocket::~ClientSocket() {
  if (conn_) {
    conn_->onClosed = nullptr;
    conn_->closeNow();
  }
  conn_.reset();
  tx_.flush(fd_);  // the CONNECTION_CLOSE
  r_.removeFd(fd_, this);
  ::close(fd_);
}

Result<QuicConn*> ClientSocket::connect(ClientParams p) {
  p.path.local = local_;
  p.path.remote = server_;
  auto c = std::make_unique<QuicConn>(*this, std::move(p));
  if (!c->ok()) return makeError(Errc::InvalidArgument, c->why());
  conn_ = std::move(c);
  conn_->connect();
  return conn_.get();
}

bool ClientSocket::logBudget() { return worker_ ? worker_->logBudget() : true; }

uint8_t* ClientSocket::txSlot() { return tx_.slot(fd_, kMaxPacket); }

void ClientSocket::send(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from) {
  sendEcn(slot, len, to, from, 0);
}

void ClientSocket::sendEcn(uint8_t* slot, size_t len, const SocketAddress& to, const SocketAddress& from,
                           uint8_t ecn) {
  (void)to, (void)from;  // connected: always the server, from our one address
  // Counted when queued; a packet the kernel then refuses (a full buffer) is a loss QUIC repairs.
  counters_.packetsOut.fetch_add(1, std::memory_order_relaxed);
  counters_.bytesOut.fetch_add(len, std::memory_order_relaxed);
  tx_.push(slot, len, SocketAddress{}, SocketAddress{}, ecn);
  if (!inRun_) schedule(nullptr);  // built outside a turn's flush (a timer): sent at the next
}

void ClientSocket::schedule(QuicConn* c) {
  (void)c;
  pending_ = true;
  if (!flushTimer_->enabled()) flushTimer_->enable(Duration(0));
}

void ClientSocket::connDied(QuicConn* c) {
  (void)c;
  schedule(c);  // freed by runPending, never while its own code is on the stack
}

void ClientSocket::newCid(std::span<uint8_t, CidCodec::kLen> out) { RAND_bytes(out.data(), out.size()); }

void ClientSocket::runPending() {
  inRun_ = true;
  for (int round = 0; round < 4 && pending_; ++round) {
    pending_ = false;
    if (conn_) conn_->flush();
  }
  inRun_ = false;
  tx_.flush(fd_);
  if (conn_ && conn_->dead()) deleteLater(r_, std::move(conn_));
}

void ClientSocket::onIoEvent(uint32_t events) {
  (void)events;
  // Batches of datagrams (recvmmsg, the thread's buffers), as the listener's endpoint reads them.
  udp::RecvBatch& batch = udp::recvBatch();
  bool more = false;
  size_t unflushed = 0;  // bytes read since the last flush (kFlushAfterRxBytes)
  for (int round = 0; round < kBatchesPerWake; ++round) {
    IoResult r = batch.recv(fd_, recvFlags_);
    if (!r.ok() && r.err == ECONNREFUSED) {
      // ICMP port unreachable: a connection still in its handshake ends now (QuicConn::refused);
      // an established one is left to its idle timeout.
      if (conn_) conn_->refused(kRefused);
      break;
    }
    if (!r.ok() || r.value <= 0) break;  // EAGAIN
    more = round + 1 == kBatchesPerWake;
    const auto n = static_cast<size_t>(r.value);
    for (size_t i = 0; i < n; ++i) {
      const udp::Datagram& d = batch[i];
      if (d.truncated) {
        counters_.drop(DropReason::Truncated);
        continue;
      }
      const uint8_t ecn = d.tos & kEcnMask;
      udp::forEachSegment(d.data, d.len, d.segSize, [&](const uint8_t* p, size_t len) {
        counters_.packetsIn.fetch_add(1, std::memory_order_relaxed);
        counters_.bytesIn.fetch_add(len, std::memory_order_relaxed);
        if (conn_) conn_->onDatagram(PathAddrs{local_, server_}, p, len, ecn);
      });
      unflushed += d.len;
      if (unflushed >= kFlushAfterRxBytes) {
        unflushed = 0;
        runPending();
      }
    }
    if (n < udp::kBatch) break;
  }
  runPending();
  if (more) r_.modFd(fd_, this, EPOLLIN);  // edge-triggered: come back for the rest
}

}  // namespace ugate::quic

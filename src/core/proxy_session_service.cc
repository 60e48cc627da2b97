// ProxySession as the host of a front door's LocalService (FrontDoorResult::Action::Serve): the
// client connection stays open without an upstream while the service (a SOCKS5 UDP ASSOCIATE relay)
// runs; the session lends it the ServiceContext and applies the idle timeout to its datagrams.
#include <cstring>

#include "core/proxy_session.h"

namespace ugate {

void ProxySession::startService() {
  phase_ = Phase::Service;
  timer_->disable();
  std::string reply;
  auto svc = frontDoor_->serve(*this, reply);
  if (!svc) {
    fail(svc.error().code, svc.error().detail);
    return;
  }
  service_ = std::move(svc.value());
  frontDoor_.reset();  // its work is done; the service runs on its own
  if (!sendToClient(reply)) return;
  std::string().swap(sniffed_);  // the client has nothing more to say on this connection
  serviceActivity_ = worker_.reactor().now();
  timer_->enable(timeouts_.idle);
  readControl();  // the read edge may be spent already (bytes or EOF that came with the request)
}

void ProxySession::readControl() {
  while (!closed() && client_->readReady()) {
    uint8_t buf[512];
    IoResult r = client_->read(buf, sizeof(buf));
    if (r.wouldBlock()) return;
    if (!r.ok()) {
      close(errcFromErrno(r.err), "client: " + std::string(strerror(r.err)), true);
      return;
    }
    if (r.value == 0) {
      close(Errc::Ok, "client closed the control connection", false);
      return;
    }
    // Bytes on the control connection after the request mean nothing (RFC 1928 §7): discarded.
  }
}

Reactor& ProxySession::reactor() { return worker_.reactor(); }
Resolver& ProxySession::resolver() { return worker_.resolver(); }
const Router& ProxySession::router() { return worker_.router(); }

void ProxySession::datagram(bool fromClient, size_t bytes) {
  if (closed()) return;
  serviceActivity_ = worker_.reactor().now();
  if (fromClient) {
    meta_.bytesFromClient += bytes;
    ++meta_.packetsFromClient;
    stats_.bytesIn.add(bytes);
    stats_.packetsIn.add();
  } else {
    meta_.bytesToClient += bytes;
    ++meta_.packetsToClient;
    stats_.bytesOut.add(bytes);
    stats_.packetsOut.add();
  }
}

void ProxySession::dropped(Errc reason, uint64_t count) {
  if (closed()) return;
  stats_.drops[static_cast<size_t>(reason)].add(count);
}

void ProxySession::serviceTimer() {
  MonotonicTime deadline = serviceActivity_ + timeouts_.idle;
  if (deadline > worker_.reactor().now()) {
    timer_->enableAt(deadline);
    return;
  }
  close(Errc::IdleTimeout, "no datagram for " + std::to_string(timeouts_.idle.count()) + " ms", false);
}

}  // namespace ugate

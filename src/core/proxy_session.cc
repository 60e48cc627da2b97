#include "core/proxy_session.h"

#include <spdlog/spdlog.h>

#include "core/socket_util.h"
#include "core/worker.h"

namespace ugate {

ProxySession::ProxySession(Worker& w, ListenerStats& stats, StreamPtr client, StreamMeta meta,
                           Duration connectTimeout, Duration idleTimeout)
    : worker_(w),
      stats_(stats),
      client_(std::move(client)),
      meta_(std::move(meta)),
      connectTimeout_(connectTimeout),
      idleTimeout_(idleTimeout) {
  stats_.accepted.add();
  stats_.active.inc();
}

ProxySession::~ProxySession() {
  if (!closed_) {
    // Destroyed without close() (worker teardown): still account for it.
    closed_ = true;
    stats_.active.dec();
  }
}

void ProxySession::start() {
  RouteDecision d = worker_.router().route(meta_);
  meta_.route = std::string(d.route);
  switch (d.action) {
    case RouteDecision::Action::Reject:
      close(Errc::RouteRejected, "rejected by route " + meta_.route, /*abort=*/true);
      return;
    case RouteDecision::Action::NoRoute:
      close(Errc::NoRoute, "no route matched and the listener has no target", /*abort=*/true);
      return;
    case RouteDecision::Action::DialOriginal:
      meta_.upstream = meta_.originalDst.str();
      candidates_ = {meta_.originalDst};
      break;
    case RouteDecision::Action::Dial:
      meta_.upstream = d.target.str();
      break;
  }
  timer_ = worker_.reactor().createTimer([this] { onTimer(); });
  timer_->enable(connectTimeout_);
  if (d.action == RouteDecision::Action::Dial) {
    dial(d.target);
  } else {
    connectNext();
  }
}

void ProxySession::dial(const HostPort& hp) {
  // The callback may run inline (literal IP or cached answer).
  dns_ = worker_.resolver().resolve(hp.host, hp.port, [this](Result<std::vector<SocketAddress>> r) {
    dns_.reset();
    if (!r) {
      close(Errc::DnsFailure, r.error().detail, /*abort=*/true);
      return;
    }
    candidates_ = std::move(r.value());
    connectNext();
  });
}

void ProxySession::connectNext() {
  while (nextCandidate_ < candidates_.size()) {
    const SocketAddress& a = candidates_[nextCandidate_++];
    auto fd = startConnect(a);
    if (!fd) {
      lastConnectError_ = fd.error();
      continue;
    }
    meta_.upstreamAddr = a;
    upstream_ = std::make_unique<TcpStream>(worker_.reactor(), *fd, [this](int err) { onConnected(err); });
    return;
  }
  if (candidates_.empty()) {
    close(Errc::DnsFailure, meta_.upstream + ": no addresses", true);
  } else {
    close(lastConnectError_.code, lastConnectError_.detail, true);
  }
}

void ProxySession::onConnected(int err) {
  if (closed_) return;
  if (err != 0) {
    lastConnectError_ = makeError(errcFromErrno(err),
                                  "connect " + meta_.upstreamAddr.str() + ": " + strerror(err));
    upstream_->close(false);
    // Keep the failed stream alive until the end of the turn: we are inside its callback.
    struct Holder : DeferredDeletable {
      StreamPtr s;
    };
    auto h = std::make_unique<Holder>();
    h->s = std::move(upstream_);
    worker_.reactor().deferredDelete(std::move(h));
    connectNext();
    return;
  }
  splicer_ = std::make_unique<Splicer>(worker_.spliceContext(), *client_, *upstream_, static_cast<SplicerCallbacks&>(*this));
  timer_->enable(idleTimeout_);
  splicer_->start();
}

void ProxySession::onTimer() {
  if (closed_) return;
  if (!splicer_) {
    close(Errc::ConnectTimeout,
          "connect " + (meta_.upstreamAddr.valid() ? meta_.upstreamAddr.str() : meta_.upstream) +
              ": no answer within " + std::to_string(connectTimeout_.count()) + " ms",
          true);
    return;
  }
  // Idle check: activity does not re-arm the timer; we compare against the last activity here.
  MonotonicTime deadline = splicer_->lastActivity() + idleTimeout_;
  if (deadline > worker_.reactor().now()) {
    timer_->enableAt(deadline);
    return;
  }
  close(Errc::IdleTimeout, "no bytes for " + std::to_string(idleTimeout_.count()) + " ms", false);
}

void ProxySession::onSpliceDone() { close(Errc::Ok, "", false); }

void ProxySession::onSpliceError(Errc reason, bool clientSide) {
  close(reason, clientSide ? "client side" : "upstream side", /*abort=*/true);
}

void ProxySession::syncBytes() {
  if (!splicer_) return;
  meta_.bytesFromClient = splicer_->bytesAtoB();
  meta_.bytesToClient = splicer_->bytesBtoA();
}

void ProxySession::close(Errc reason, std::string detail, bool abort) {
  if (closed_) return;
  closed_ = true;
  syncBytes();
  meta_.closeReason = reason;
  meta_.closeDetail = std::move(detail);
  if (splicer_) {
    if (splicer_->usedSplice()) stats_.spliced.add();
    splicer_->stop();
  }
  dns_.reset();
  if (timer_) timer_->disable();
  if (client_) client_->close(abort);
  if (upstream_) upstream_->close(abort);
  stats_.active.dec();
  stats_.bytesIn.add(meta_.bytesFromClient);
  stats_.bytesOut.add(meta_.bytesToClient);
  stats_.closes[static_cast<size_t>(reason)].add();
  if (reason != Errc::Ok && reason != Errc::IdleTimeout && reason != Errc::Shutdown) {
    // Failures to reach the upstream are the operator's business; resets mid-stream are routine.
    bool upstreamFailure = !splicer_ && reason != Errc::RouteRejected;
    if (upstreamFailure && worker_.logBudget()) {
      spdlog::warn("stream {} listener={} src={} upstream={}: {}: {}", meta_.id, meta_.listener,
                   meta_.source.str(), meta_.upstream, errcReason(reason), meta_.closeDetail);
    } else {
      spdlog::debug("stream {} listener={} src={} upstream={}: {}: {}", meta_.id, meta_.listener,
                    meta_.source.str(), meta_.upstream, errcReason(reason), meta_.closeDetail);
    }
  }
  worker_.accessLog().log(meta_);
  worker_.removeSession(this);
  worker_.reactor().deferredDelete(std::unique_ptr<DeferredDeletable>(this));
}

}  // namespace ugate

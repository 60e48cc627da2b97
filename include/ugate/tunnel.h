#pragma once
// TunnelDialer: how a session reaches a mesh node (`<node>.<meshSuffix>:port`) or a target behind a
// gateway (a route's `via`) without core knowing HTTP/2. The mesh module installs one per worker;
// it runs on that worker's thread only.
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <ugate/reactor.h>
#include <ugate/result.h>
#include <ugate/socket_address.h>
#include <ugate/stream.h>

namespace ugate {

/**
 * tunnelStatus / tunnelErrc: a tunnelled stream's outcome as the HTTP status of its CONNECT (HTTP/2
 * and HTTP/3) or of a QUIC mesh stream's header, with its reason (errcReason) in x-ugate-error; and
 * back, keeping the reason when it is one of ours.
 */
int tunnelStatus(Errc e);
Errc tunnelErrc(int status, std::string_view reason);

/**
 * TunnelRequest: an open in progress; destroying it cancels (the callback will not run). The
 * callback may destroy it only through Reactor::deferredDelete (it runs inside its code).
 */
class TunnelRequest : public DeferredDeletable {};
using TunnelRequestPtr = std::unique_ptr<TunnelRequest>;

class TunnelDialer {
 public:
  /** Done: the tunnel stream, or the reason it could not be opened (NoRoute, ConnectRefused, ...). */
  using Done = std::function<void(Result<StreamPtr>)>;
  virtual ~TunnelDialer() = default;
  /** handles: this target/via is the mesh's to reach (a mesh host name, or a non-empty via). */
  virtual bool handles(const HostPort& target, const std::string& via) const = 0;
  /**
   * open starts a stream to target (through `via` when set). meta supplies identity, hops and
   * headers to carry. done runs once on this worker's reactor, possibly before open returns.
   */
  virtual TunnelRequestPtr open(const StreamMeta& meta, const HostPort& target, const std::string& via,
                                Done done) = 0;
};
using TunnelDialerPtr = std::unique_ptr<TunnelDialer>;

}  // namespace ugate

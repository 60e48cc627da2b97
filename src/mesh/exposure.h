#pragma once
// Exposure: which of this node's loopback ports a mesh peer may reach (mesh.expose). Default deny:
// a port is reachable over the mesh only when an expose entry covers it and allows the peer; the
// admin port never is, and a proxy listener's port (socks5, http-connect) only with allowProxy.
// Sans-I/O: a pure function of the config snapshot, the port and the peer's verified identity.
#include <cstdint>
#include <string>
#include <string_view>

#include <ugate/config.h>
#include <ugate/stream.h>

#include "mesh/mesh_config.h"

namespace ugate::mesh {

struct ExposureVerdict {
  bool allowed{false};
  std::string why;  // why: the refusal's detail for the log and the peer ("" when allowed)
};

/**
 * checkExposure: may `peer` (the stream's verified identity, or the originator a trusted gateway
 * asserted; null = none) reach `port` on this node's loopback through the mesh?
 */
ExposureVerdict checkExposure(const Config& cfg, uint16_t port, const PeerIdentity* peer);

/** isLoopbackHost: "localhost" or a loopback IP literal (127.0.0.0/8, ::1). */
bool isLoopbackHost(std::string_view host);

/** peerName: the identity as logged and matched: the SPIFFE ID when there is one, else the node ID. */
std::string peerName(const PeerIdentity* peer);

}  // namespace ugate::mesh

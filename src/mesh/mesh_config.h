#pragma once
// The mesh's configuration: the top-level sections "upstreams", "authorize" and "mesh", parsed by
// mesh_config.cc (MeshModule::parseConfig) and kept in the snapshot as the module's ModuleConfig.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/config.h>

namespace ugate::mesh {

/**
 * MeshTransport: how connections to an upstream are made: HTTP/2 over mutual TLS on TCP (the mesh
 * listener), the mesh over QUIC (ALPN ugate, a `quic` listener; include/ugate/mux.h), or QUIC first
 * and HTTP/2 when that attempt fails (decided per connection attempt, logged and counted).
 */
enum class MeshTransport : uint8_t { H2, Quic, Auto };
std::string_view transportName(MeshTransport t);

/** UpstreamConfig: a gateway this node keeps a reverse-accept association with ("upstreams[]"). */
struct UpstreamConfig {
  std::string name;     // "upstreams[N]" unless named; a route's `via` may name it
  HostPort address;     // the gateway's mesh port (TCP for h2, UDP for quic; auto: both, same port)
  std::string id;       // the gateway's node ID (pinned); empty = verified by the trusted roots
  MeshTransport transport{MeshTransport::H2};
  /** quicAddress: where auto and quic dial QUIC ("quicAddress"; default: `address`). */
  HostPort quicAddress;
};

/**
 * MeshExpose: one entry of mesh.expose: which of this node's loopback ports mesh peers may reach
 * (`<self>.mesh:port` over the mesh listener or an association), and who. Nothing is exposed by
 * default; the admin port never is.
 */
struct MeshExpose {
  std::vector<PortRange> ports;
  std::vector<std::string> allow;  // node IDs (upper case), spiffe:// IDs, or "*" (any authenticated peer)
  bool allowProxy{false};          // may cover a proxy listener's port (socks5, http-connect)
};

/** MeshConfig: associations, tunnels and circuits ("mesh", "upstreams", "authorize"). */
struct MeshConfig final : ModuleConfig {
  std::vector<UpstreamConfig> upstreams;
  std::vector<std::string> reverseAccept;  // node IDs allowed to register (authorize.reverseAccept)
  bool reverseAcceptTrustDomain{true};     // CA-signed peers of our trust domain may register too
  std::vector<std::string> trustedGateways;  // may assert a stream's originating identity (x-ugate-peer):
                                            // node IDs (upper case) or SPIFFE IDs
  std::vector<MeshExpose> expose;          // mesh.expose: loopback ports mesh peers may reach
  uint32_t maxHops{4};                     // circuits longer than this are refused
  uint32_t maxStreamsPerConnection{1000};
  uint32_t streamWindow{4u << 20};
  uint32_t connectionWindow{16u << 20};
  Duration pingInterval{30'000};
  Duration pingTimeout{10'000};
  Duration reconnectMin{1000};
  Duration reconnectMax{300'000};
  Duration idleConnectionTimeout{300'000};  // pooled outbound connections without streams close
};

/** meshConfig: the mesh's sections of c (the defaults when the mesh module parsed none). */
const MeshConfig& meshConfig(const Config& c);

/** Mesh ALPN protocols: forward tunnels (HTTP/2) and reverse-accept associations (roles flipped). */
inline constexpr std::string_view kMeshAlpn = "h2";
inline constexpr std::string_view kMeshReverseAlpn = "h2r";
/** The mesh over QUIC: forward streams and reverse-accept associations (either side opens streams). */
inline constexpr std::string_view kMeshQuicAlpn = "ugate";
inline constexpr std::string_view kMeshQuicReverseAlpn = "ugater";
/**
 * meshClientTls: the client TLS settings the mesh dials with (one per upstream and ALPN, plus an
 * unpinned one when a route goes `via` a host:port), so the TLS provider builds their contexts.
 */
std::vector<ModuleClientTls> meshClientTls(const Config& c, const MeshConfig& m);
/** meshUpstreamTls: the settings to dial upstream u with `alpn` (pinned to u.id when set). */
UpstreamTlsConfig meshUpstreamTls(const UpstreamConfig& u, std::string_view alpn);
/** isMeshHost: `host` is `<node>.<node.meshSuffix>` (case-insensitive); *node gets `<node>`. */
bool isMeshHost(const Config& c, std::string_view host, std::string* node = nullptr);

}  // namespace ugate::mesh

#pragma once
// The discovery module's config section "discovery" (docs/CONFIG.md), parsed by discovery_config.cc
// (the only file of src/local that sees JSON) and kept in the snapshot as the module's ModuleConfig.
#include <cstdint>
#include <string>
#include <vector>

#include <ugate/config.h>
#include <ugate/time.h>

#include "local/announcement.h"

namespace ugate::local {

/** DiscoveryConfig: what "discovery" says, with the defaults filled in. */
struct DiscoveryConfig final : ModuleConfig {
  bool enabled{false};
  std::vector<std::string> interfaces;  // empty: every multicast-capable, non-loopback interface that is up
  bool ipv4{true};                      // ipv4, ipv6: whether a group of that family is configured
  bool ipv6{true};
  IpAddr group4;  // 224.0.0.250
  IpAddr group6;  // ff02::5227
  uint16_t port{5227};
  Duration interval{120'000};
  Duration expire{360'000};  // default 3 × interval
  Duration clockSkew{300'000};  // timestamps further than this from our clock are refused
  std::string name;             // announced name (default: node.name, lower-cased)
  uint16_t tcpPort{0};          // announced mesh ports (default: the first `mesh` listener's port; QUIC none)
  uint16_t quicPort{0};
  bool announceAddresses{true};  // list the interface's addresses in its announcements
  uint32_t maxNeighbours{256};
  double ratePerSecond{2};  // per-source token bucket: refill rate and size
  double rateBurst{10};
  double verifyPerSecond{200};  // signature verifications per second, all sources (burst: twice that)
  /** sameSockets: o opens the same sockets (a reload that changes none of these keeps them). */
  bool sameSockets(const DiscoveryConfig& o) const {
    return enabled == o.enabled && interfaces == o.interfaces && ipv4 == o.ipv4 && ipv6 == o.ipv6 &&
           group4 == o.group4 && group6 == o.group6 && port == o.port;
  }
};

/** discoveryConfig: c's "discovery" section (the defaults, disabled, when none was parsed). */
const DiscoveryConfig& discoveryConfig(const Config& c);

}  // namespace ugate::local

#pragma once
// Policy routing for TPROXY capture, through netlink (libnl-route-3), not by running `ip`:
//   ip rule add fwmark MARK lookup TABLE
//   ip route add local default dev lo table TABLE
// and the IPv6 inbound passthrough source `ip -6 addr add ::6/128 dev lo`. Each call makes the
// state what is asked for and says whether it changed anything; it is idempotent. Needs
// CAP_NET_ADMIN in the network namespace. Command-line use only: the calls block.
#include <cstdint>
#include <string>

#include <ugate/result.h>

#include "iptables/capture_rules.h"

namespace ugate::iptables {

enum class Change : uint8_t { Unchanged, Added, Removed };

/** ensurePolicyRoute adds (present) or removes the fwmark rule and the local route of family f. */
Result<Change> ensurePolicyRoute(Family f, uint32_t mark, uint32_t table, bool present);
/** ensurePassthroughAddress adds (present) or removes ::6/128 on lo (IPv6 only: 127.0.0.6 is on
 * lo). */
Result<Change> ensurePassthroughAddress(bool present);
/** describePolicyRoute: the `ip` commands equivalent to ensurePolicyRoute(f, ..., true), for print.
 */
std::string describePolicyRoute(Family f, uint32_t mark, uint32_t table);

}  // namespace ugate::iptables

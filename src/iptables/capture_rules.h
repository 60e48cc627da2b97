#pragma once
// Istio-compatible capture rules: the options of `ugated iptables`, the rules they produce
// (iptables-restore input) and the cleanup of what an earlier apply left. Pure functions, no I/O:
// the caller (iptables_backend.cc) reads the system state and runs iptables-restore.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/result.h>

#include <ugate/config.h>

namespace ugate::iptables {

enum class CaptureMode : uint8_t { Redirect, Tproxy };
enum class Family : uint8_t { V4, V6 };

/** PortRange: one port (lo == hi) or an inclusive range, as iptables writes it ("80",
 * "30000:32767"). */
struct PortSpec {
  uint16_t lo{0}, hi{0};
  std::string str() const;
};

/** PortList: "*" (every port) or a list; empty = none. */
struct PortList {
  bool all{false};
  std::vector<PortSpec> ports;
  bool empty() const { return !all && ports.empty(); }
};

/** CidrList: "*" (every destination) or a list of prefixes of both families; empty = none. */
struct CidrList {
  bool all{false};
  std::vector<Cidr> cidrs;
};

/**
 * CaptureOptions: what `ugated iptables` captures. The defaults are those of an Istio sidecar
 * (istio-iptables as the injector runs it), plus the proxy mark exclusion.
 */
struct CaptureOptions {
  CaptureMode mode{CaptureMode::Redirect};
  uint16_t proxyPort{15001};              // outbound capture (ISTIO_REDIRECT)
  uint16_t inboundPort{15006};            // inbound capture (ISTIO_IN_REDIRECT or TPROXY --on-port)
  uint16_t tunnelPort{15008};             // mesh mTLS port: never captured inbound
  std::vector<uint32_t> proxyUids{1337};  // the proxy's own traffic is never captured
  std::vector<uint32_t> proxyGids{1337};
  // mark: SO_MARK of the proxy's upstream sockets (never captured; 0 = no such rule), and in tproxy
  // mode the mark of diverted packets and of the policy route.
  uint32_t mark{1337};
  uint32_t outboundMark{1338};  // tproxy mode: the proxy's own connections to this host's addresses
  uint32_t routeTable{133};  // tproxy mode: `local default dev lo table N` + `fwmark MARK lookup N`
  PortList inboundPorts{true, {}};
  std::vector<PortSpec> excludeInboundPorts{
      {15000, 15000}, {15020, 15020}, {15021, 15021}, {15090, 15090}};
  CidrList outboundCidrs{true, {}};
  std::vector<Cidr> excludeOutboundCidrs;
  std::vector<PortSpec> outboundPorts;
  std::vector<PortSpec> excludeOutboundPorts;
  bool ipv4{true};
  bool ipv6{true};
};

/** Rule: one rule of a table, `-A chain spec`. */
struct Rule {
  std::string table;
  std::string chain;
  std::string spec;
  bool operator==(const Rule& o) const = default;
};

/** RuleSet: the chains (table, name) to create, in order, and the rules to append, in order. */
struct RuleSet {
  Family family{Family::V4};
  std::vector<std::pair<std::string, std::string>> chains;
  std::vector<Rule> rules;
};

/** buildRules: the rules of one family (the family's CIDRs only). */
RuleSet buildRules(const CaptureOptions& o, Family f);
/** renderRules: iptables-restore input for `rs` (tables mangle then nat), as `print` shows it. */
std::string renderRules(const RuleSet& rs);

/** ownedChains: the chains `apply` creates in `table` (any mode); `clean` removes exactly these. */
const std::vector<std::string>& ownedChains(std::string_view table);
/** isBuiltinChain: PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING. */
bool isBuiltinChain(std::string_view chain);
/**
 * builtinRulesToCheck: the rules apply puts in built-in chains that do not jump to an owned chain
 * (tproxy mode's marks), for both modes with o's marks, uids and gids. The caller asks iptables
 * (`-C`) which of them exist; jumps to owned chains are found in the save output instead.
 */
std::vector<Rule> builtinRulesToCheck(const CaptureOptions& o, Family f);

/** SaveState: what iptables-save printed for the tables that matter (nat, mangle). */
struct SaveState {
  struct Table {
    std::string name;
    std::vector<std::string> chains;  // user-defined chains
    std::vector<Rule> rules;
  };
  std::vector<Table> tables;
  const Table* find(std::string_view name) const;
};
/**
 * parseSave reads iptables-save output. Lines it does not understand are errors (the caller shows
 * them); comments and counters are ignored.
 */
Result<SaveState> parseSave(std::string_view text);

/**
 * updateScript: one iptables-restore --noflush transaction that removes what an earlier apply left
 * in `current` (jumps from built-in chains to owned chains, the `present` built-in rules, owned
 * chains `next` does not declare) and, when `next` is given, installs it: so applying twice equals
 * applying once, and with next == nullptr it is `clean`. Empty when there is nothing to do.
 */
std::string updateScript(const SaveState& current, const std::vector<Rule>& present,
                         const RuleSet* next);

// --- option parsing (shared by the CLI and its tests) ---
/** parsePortList: "", "*" (when allowAll), or "80,443,30000:32767". */
Result<PortList> parsePortList(std::string_view s, bool allowAll);
/** parseCidrList: "", "*" (when allowAll), or "10.0.0.0/8,fd00::/8"; host bits are cleared. */
Result<CidrList> parseCidrList(std::string_view s, bool allowAll);
/** parseIdList: "" or "1337,1338" (uids, gids). */
Result<std::vector<uint32_t>> parseIdList(std::string_view s);

}  // namespace ugate::iptables

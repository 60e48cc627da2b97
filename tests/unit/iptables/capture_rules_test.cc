// The capture rules compared, line for line, with what istio-iptables installs for the same
// options (its golden files in tools/istio-iptables/pkg/capture/testdata), and the cleanup
// transactions built from iptables-save output.
#include "iptables/capture_rules.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace ugate::iptables {
namespace {

std::string render(const CaptureOptions& o, Family f) { return renderRules(buildRules(o, f)); }

// The nat chains and their fixed rules, as every rule set with the default ports starts.
constexpr const char* kNatHeadV4 = R"(*nat
:ISTIO_INBOUND - [0:0]
:ISTIO_REDIRECT - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
)";
// Outbound capture with the default owners and mark.
constexpr const char* kNatOutputV4 = R"(-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-A ISTIO_OUTPUT -m mark --mark 1337 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
)";
// Istio's inbound-wildcard-exclude.golden with the injector's defaults (-b '*', -i '*', -d with the
// proxy's ports) and three differences of ugate: chains declared with ":NAME - [0:0]" (creates or
// flushes: apply is idempotent), only TCP enters ISTIO_OUTPUT (nothing here captures UDP), and the
// proxy's SO_MARK is never captured ("-m mark --mark 1337 -j RETURN").
const std::string kRedirectV4 = std::string(kNatHeadV4) + R"(-A PREROUTING -p tcp -j ISTIO_INBOUND
-A ISTIO_INBOUND -p tcp -m multiport --dports 15000,15020,15021,15090 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
)" + kNatOutputV4;

TEST(CaptureRules, DefaultRedirectIsIstiosSidecar) {
  EXPECT_EQ(render(CaptureOptions{}, Family::V4), kRedirectV4);
}

TEST(CaptureRules, Ipv6UsesItsOwnLoopbackAndPassthroughSource) {
  // ipv6-inbound-ports.golden: ::1/128 for 127.0.0.1/32, ::6/128 for 127.0.0.6/32.
  std::string want = kRedirectV4;
  for (auto [from, to] :
       {std::pair{"127.0.0.1/32", "::1/128"}, std::pair{"127.0.0.6/32", "::6/128"}}) {
    for (size_t at; (at = want.find(from)) != std::string::npos;) {
      want.replace(at, strlen(from), to);
    }
  }
  EXPECT_EQ(render(CaptureOptions{}, Family::V6), want);
}

TEST(CaptureRules, TproxyWithInboundPortsIsIstiosTproxy) {
  // inbound-ports-tproxy.golden (-m TPROXY -b 32000,31000), whose mangle rules Istio partly inserts
  // at positions 1-3: here they are written in their final order.
  CaptureOptions o;
  o.mode = CaptureMode::Tproxy;
  o.inboundPorts = *parsePortList("32000,31000", true);
  EXPECT_EQ(render(o, Family::V4), R"(*mangle
:ISTIO_DIVERT - [0:0]
:ISTIO_TPROXY - [0:0]
:ISTIO_INBOUND - [0:0]
-A ISTIO_DIVERT -j MARK --set-mark 1337
-A ISTIO_DIVERT -j ACCEPT
-A ISTIO_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --tproxy-mark 1337/0xffffffff --on-port 15006
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A ISTIO_INBOUND -p tcp -m mark --mark 1337 -j RETURN
-A ISTIO_INBOUND -p tcp -s 127.0.0.6/32 -i lo -j RETURN
-A ISTIO_INBOUND -p tcp -i lo -m mark ! --mark 1338 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 32000 -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT
-A ISTIO_INBOUND -p tcp --dport 32000 -j ISTIO_TPROXY
-A ISTIO_INBOUND -p tcp --dport 31000 -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT
-A ISTIO_INBOUND -p tcp --dport 31000 -j ISTIO_TPROXY
-A PREROUTING -p tcp -m mark --mark 1337 -j CONNMARK --save-mark
-A OUTPUT -p tcp -o lo -m mark --mark 1337 -j RETURN
-A OUTPUT ! -d 127.0.0.1/32 -p tcp -o lo -m owner --uid-owner 1337 -j MARK --set-mark 1338
-A OUTPUT ! -d 127.0.0.1/32 -p tcp -o lo -m owner --gid-owner 1337 -j MARK --set-mark 1338
-A OUTPUT -p tcp -m connmark --mark 1337 -j CONNMARK --restore-mark
COMMIT
)" + std::string(kNatHeadV4) + kNatOutputV4);
}

TEST(CaptureRules, TproxyWildcardNeverCapturesTheTunnelPortOrExclusions) {
  CaptureOptions o;
  o.mode = CaptureMode::Tproxy;
  std::string r = render(o, Family::V6);
  EXPECT_NE(
      r.find("-A ISTIO_INBOUND -p tcp -i lo -m mark ! --mark 1338 -j RETURN\n"
             "-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN\n"
             "-A ISTIO_INBOUND -p tcp -m multiport --dports 15000,15020,15021,15090 -j RETURN\n"
             "-A ISTIO_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT\n"
             "-A ISTIO_INBOUND -p tcp -j ISTIO_TPROXY\n"),
      std::string::npos)
      << r;
  EXPECT_NE(r.find("-A ISTIO_TPROXY ! -d ::1/128 -p tcp -j TPROXY --tproxy-mark 1337/0xffffffff "
                   "--on-port 15006\n"),
            std::string::npos);
  EXPECT_EQ(
      r.find("-A PREROUTING -p tcp -j ISTIO_INBOUND\n-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT"),
      std::string::npos)
      << "tproxy mode must not REDIRECT inbound in nat";
}

TEST(CaptureRules, OutboundListsOwnersAndPorts) {
  // ip-range.golden (-u 3,4 -g 1,2 -x 1.1.0.0/16 -i 9.9.0.0/16) plus outbound-ports-include
  // (-q 32000,31000) and outbound-ports-exclude (-o 22,80,443), TCP only.
  CaptureOptions o;
  o.inboundPorts = *parsePortList("", true);
  o.proxyUids = {3, 4};
  o.proxyGids = {1, 2};
  o.mark = 0;
  o.excludeOutboundCidrs = parseCidrList("1.1.0.0/16,fd00::/8", false)->cidrs;
  o.outboundCidrs = *parseCidrList("9.9.0.0/16,2001:db8::/32", true);
  o.outboundPorts = parsePortList("32000,31000", false)->ports;
  o.excludeOutboundPorts = parsePortList("22,80,443", false)->ports;
  EXPECT_EQ(render(o, Family::V4), kNatHeadV4 + std::string(R"(-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -p tcp -m multiport --dports 22,80,443 -j RETURN
-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 3 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 3 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 3 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 4 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 4 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 4 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 2 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 2 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 2 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -d 1.1.0.0/16 -j RETURN
-A ISTIO_OUTPUT -p tcp --dport 32000 -j ISTIO_REDIRECT
-A ISTIO_OUTPUT -p tcp --dport 31000 -j ISTIO_REDIRECT
-A ISTIO_OUTPUT -d 9.9.0.0/16 -j ISTIO_REDIRECT
COMMIT
)"));
  std::string v6 = render(o, Family::V6);
  EXPECT_NE(
      v6.find("-A ISTIO_OUTPUT -d ::1/128 -j RETURN\n-A ISTIO_OUTPUT -d fd00::/8 -j RETURN\n"),
      std::string::npos);
  EXPECT_NE(v6.find("-A ISTIO_OUTPUT -d 2001:db8::/32 -j ISTIO_REDIRECT\n"), std::string::npos);
  EXPECT_EQ(v6.find("9.9.0.0"), std::string::npos) << "IPv4 CIDRs stay out of ip6tables";
  EXPECT_EQ(v6.find("1.1.0.0"), std::string::npos);
}

TEST(CaptureRules, NoOwnersNoMarkNoCapture) {
  CaptureOptions o;
  o.proxyUids.clear();
  o.proxyGids.clear();
  o.mark = 0;
  o.inboundPorts = {};
  o.outboundCidrs = {};
  EXPECT_EQ(render(o, Family::V4), kNatHeadV4 + std::string(R"(-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
COMMIT
)"));
}

TEST(CaptureRules, LoopbackInOutboundCidrsCapturesLocalCalls) {
  // Istio: with a loopback range included, applications' calls over lo are not returned early.
  CaptureOptions o;
  o.outboundCidrs = *parseCidrList("127.0.0.0/8", true);
  std::string r = render(o, Family::V4);
  EXPECT_EQ(r.find("-o lo -m owner ! --uid-owner"), std::string::npos) << r;
  EXPECT_NE(r.find("-A ISTIO_OUTPUT -d 127.0.0.0/8 -j ISTIO_REDIRECT\n"), std::string::npos);
}

TEST(CaptureRules, MultiportHoldsFifteenPortsARangeCountingTwo) {
  CaptureOptions o;
  o.excludeInboundPorts =
      parsePortList("1,2,3,4,5,6,7,8,9,10,11,12,13,14,100:200,15", false)->ports;
  std::string r = render(o, Family::V4);
  EXPECT_NE(r.find("-A ISTIO_INBOUND -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14 "
                   "-j RETURN\n"
                   "-A ISTIO_INBOUND -p tcp -m multiport --dports 100:200,15 -j RETURN\n"),
            std::string::npos)
      << r;
  o.excludeInboundPorts = parsePortList("22", false)->ports;
  EXPECT_NE(render(o, Family::V4).find("-A ISTIO_INBOUND -p tcp --dport 22 -j RETURN\n"),
            std::string::npos);
}

TEST(CaptureRules, CustomPortsAndMarks) {
  CaptureOptions o;
  o.mode = CaptureMode::Tproxy;
  o.proxyPort = 7001;
  o.inboundPort = 7006;
  o.tunnelPort = 7008;
  o.mark = 77;
  std::string r = render(o, Family::V4);
  for (const char* want :
       {"-j REDIRECT --to-ports 7001\n", "-j REDIRECT --to-ports 7006\n",
        "--tproxy-mark 77/0xffffffff --on-port 7006\n", "-j MARK --set-mark 77\n",
        "-A ISTIO_INBOUND -p tcp --dport 7008 -j RETURN\n", "! --dport 7008 -m owner",
        "-A ISTIO_OUTPUT -m mark --mark 77 -j RETURN\n",
        "-p tcp -m connmark --mark 77 -j CONNMARK --restore-mark\n"}) {
    EXPECT_NE(r.find(want), std::string::npos) << want << "\n" << r;
  }
  EXPECT_EQ(r.find("mark 1337"), std::string::npos) << "the uid/gid stay 1337, no mark does";
}

// What iptables-nft-save prints after `apply --mode tproxy` next to another tool's rules (copied
// from a namespace in the integration test, counters and comments included).
constexpr const char* kSavedTproxy =
    R"(# Generated by iptables-save v1.8.9 (nf_tables) on Wed Nov 25 17:41:19 2026
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ISTIO_DIVERT - [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_TPROXY - [0:0]
-A PREROUTING -s 198.51.100.0/24 -j RETURN
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A PREROUTING -p tcp -m mark --mark 0x539 -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff
-A OUTPUT -p tcp -o lo -m mark --mark 0x539 -j RETURN
-A ISTIO_DIVERT -j MARK --set-xmark 0x539/0xffffffff
-A ISTIO_DIVERT -j ACCEPT
-A ISTIO_INBOUND -p tcp -j ISTIO_TPROXY
-A ISTIO_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x539/0xffffffff
COMMIT
# Completed on Wed Nov 25 17:41:19 2026
*nat
:PREROUTING ACCEPT [12:720]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [3:180]
:POSTROUTING ACCEPT [3:180]
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
[3:180] -A OUTPUT -p tcp -j ISTIO_OUTPUT
-A POSTROUTING -d 198.51.100.0/24 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
)";

TEST(SaveParser, ReadsTablesChainsAndRules) {
  auto st = parseSave(kSavedTproxy);
  ASSERT_TRUE(st) << st.error().detail;
  ASSERT_EQ(st->tables.size(), 2u);
  const auto* mangle = st->find("mangle");
  ASSERT_NE(mangle, nullptr);
  EXPECT_EQ(mangle->chains,
            (std::vector<std::string>{"ISTIO_DIVERT", "ISTIO_INBOUND", "ISTIO_TPROXY"}));
  ASSERT_EQ(mangle->rules.size(), 8u);
  EXPECT_EQ(mangle->rules[1], (Rule{"mangle", "PREROUTING", "-p tcp -j ISTIO_INBOUND"}));
  const auto* nat = st->find("nat");
  ASSERT_NE(nat, nullptr);
  EXPECT_EQ(nat->rules[0], (Rule{"nat", "OUTPUT", "-p tcp -j ISTIO_OUTPUT"}))
      << "counters are dropped";
  EXPECT_EQ(st->find("filter"), nullptr);
}

TEST(SaveParser, RejectsWhatItDoesNotUnderstand) {
  for (const char* bad : {"*nat\n-A\nCOMMIT\n", "-A OUTPUT -j X\n", "*nat\n:X - [0:0]\n",
                          "COMMIT\n", "*nat\n*mangle\nCOMMIT\n", "*nat\n-I OUTPUT 1 -j X\nCOMMIT\n",
                          "[1:2 -A X\n", "*nat\n[1:2] \nCOMMIT\n", "*\n"}) {
    auto st = parseSave(bad);
    EXPECT_FALSE(st) << bad;
    if (!st) {
      EXPECT_NE(st.error().detail.find("iptables-save"), std::string::npos);
    }
  }
  EXPECT_TRUE(parseSave(""));
  EXPECT_TRUE(parseSave("# only a comment\n\n"));
}

TEST(UpdateScript, CleanRemovesOurJumpsAndChainsAndNothingElse) {
  auto st = parseSave(kSavedTproxy);
  ASSERT_TRUE(st);
  // iptables -C found these (the caller asks with the options' own spelling).
  std::vector<Rule> present{
      {"mangle", "PREROUTING", "-p tcp -m mark --mark 1337 -j CONNMARK --save-mark"},
      {"mangle", "OUTPUT", "-p tcp -o lo -m mark --mark 1337 -j RETURN"}};
  EXPECT_EQ(updateScript(*st, present, nullptr), R"(*mangle
-D PREROUTING -p tcp -j ISTIO_INBOUND
-D PREROUTING -p tcp -m mark --mark 1337 -j CONNMARK --save-mark
-D OUTPUT -p tcp -o lo -m mark --mark 1337 -j RETURN
-F ISTIO_DIVERT
-F ISTIO_TPROXY
-F ISTIO_INBOUND
-X ISTIO_DIVERT
-X ISTIO_TPROXY
-X ISTIO_INBOUND
COMMIT
*nat
-D OUTPUT -p tcp -j ISTIO_OUTPUT
-F ISTIO_INBOUND
-F ISTIO_REDIRECT
-F ISTIO_IN_REDIRECT
-F ISTIO_OUTPUT
-X ISTIO_INBOUND
-X ISTIO_REDIRECT
-X ISTIO_IN_REDIRECT
-X ISTIO_OUTPUT
COMMIT
)");
}

TEST(UpdateScript, ApplyOverAnEarlierApplyReplacesItInOneTransaction) {
  auto st = parseSave(kSavedTproxy);
  ASSERT_TRUE(st);
  CaptureOptions o;  // redirect now: the mangle chains of the earlier tproxy apply go
  RuleSet next = buildRules(o, Family::V4);
  std::string s = updateScript(*st, {}, &next);
  EXPECT_EQ(s.substr(0, s.find("*nat")), R"(*mangle
-D PREROUTING -p tcp -j ISTIO_INBOUND
-F ISTIO_DIVERT
-F ISTIO_TPROXY
-F ISTIO_INBOUND
-X ISTIO_DIVERT
-X ISTIO_TPROXY
-X ISTIO_INBOUND
COMMIT
)");
  // nat: declare (flush) the chains, drop the old jump, then the new rules; no chain is deleted.
  std::string nat = s.substr(s.find("*nat"));
  EXPECT_EQ(nat.substr(0, nat.find("-A ")), R"(*nat
:ISTIO_INBOUND - [0:0]
:ISTIO_REDIRECT - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
-D OUTPUT -p tcp -j ISTIO_OUTPUT
)");
  EXPECT_EQ(nat.find("-X "), std::string::npos);
  std::string rules = renderRules(next);
  EXPECT_EQ(nat.substr(nat.find("-A ")), rules.substr(rules.find("-A ")));
}

TEST(UpdateScript, NothingToCleanIsEmpty) {
  auto st = parseSave("*nat\n:PREROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n");
  ASSERT_TRUE(st);
  EXPECT_EQ(updateScript(*st, {}, nullptr), "");
  // A fresh namespace: apply creates only the tables it uses.
  RuleSet next = buildRules(CaptureOptions{}, Family::V4);
  std::string s = updateScript(SaveState{}, {}, &next);
  EXPECT_EQ(s, renderRules(next));
}

TEST(UpdateScript, GotoAndSimilarChainNamesAreTellApart) {
  auto st = parseSave(
      "*nat\n:ISTIO_OUTPUT - [0:0]\n:ISTIO_OUTPUT_DNS - [0:0]\n-A OUTPUT -j ISTIO_OUTPUT_DNS\n"
      "-A OUTPUT -p tcp -g ISTIO_OUTPUT\n-A OUTPUT -m comment --comment \"x-j ISTIO_OUTPUT\" -j "
      "ACCEPT\nCOMMIT\n");
  ASSERT_TRUE(st) << st.error().detail;
  EXPECT_EQ(updateScript(*st, {}, nullptr),
            "*nat\n-D OUTPUT -p tcp -g ISTIO_OUTPUT\n-F ISTIO_OUTPUT\n-X ISTIO_OUTPUT\nCOMMIT\n");
}

TEST(BuiltinRules, TheTproxyMarksForBothModes) {
  CaptureOptions o;
  o.proxyGids.clear();
  auto rules = builtinRulesToCheck(o, Family::V6);
  ASSERT_EQ(rules.size(), 4u);
  EXPECT_EQ(rules[2],
            (Rule{"mangle", "OUTPUT",
                  "! -d ::1/128 -p tcp -o lo -m owner --uid-owner 1337 -j MARK --set-mark 1338"}));
  for (const auto& r : rules) EXPECT_TRUE(isBuiltinChain(r.chain)) << r.chain;
}

TEST(OptionLists, Ports) {
  auto p = parsePortList("80, 443,30000:32767", false);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->ports.size(), 3u);
  EXPECT_EQ(p->ports[2].str(), "30000:32767");
  EXPECT_TRUE(parsePortList("*", true)->all);
  EXPECT_TRUE(parsePortList("", true)->empty());
  for (const char* bad : {"0", "65536", "80,", "a", "90:80", "1:", "*", "80,,81", "-1"}) {
    EXPECT_FALSE(parsePortList(bad, false)) << bad;
  }
  EXPECT_NE(parsePortList("x", false).error().detail.find("'x' is not a port"), std::string::npos);
}

TEST(OptionLists, CidrsLoseTheirHostBits) {
  auto c = parseCidrList("10.1.2.3/8,fd00::1/8,192.0.2.7", false);
  ASSERT_TRUE(c);
  ASSERT_EQ(c->cidrs.size(), 3u);
  EXPECT_EQ(c->cidrs[0].str(), "10.0.0.0/8");
  EXPECT_EQ(c->cidrs[1].str(), "fd00::/8");
  EXPECT_EQ(c->cidrs[2].str(), "192.0.2.7/32");
  EXPECT_EQ(parseCidrList("10.255.255.255/12", false)->cidrs[0].str(), "10.240.0.0/12");
  for (const char* bad : {"10.0.0.0/33", "example.com", "10.0.0.0/8,", "*"}) {
    EXPECT_FALSE(parseCidrList(bad, false)) << bad;
  }
}

TEST(OptionLists, Ids) {
  EXPECT_EQ(*parseIdList("1337,0"), (std::vector<uint32_t>{1337, 0}));
  EXPECT_TRUE(parseIdList("")->empty());
  for (const char* bad : {"root", "4294967295", "1,", "-1"}) EXPECT_FALSE(parseIdList(bad)) << bad;
}

}  // namespace
}  // namespace ugate::iptables

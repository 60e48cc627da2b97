// The capture listener kinds (config keys, validation, upstream socket options, loop check) and the
// `ugated iptables` command line.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <ugate/config.h>
#include <ugate/socket_util.h>
#include "iptables/capture_module.h"
#include "iptables/iptables_cli.h"
#include "iptables/original_dst.h"

namespace ugate::iptables {
namespace {

class CaptureKinds : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { registerCaptureModule(listenerKinds()); }

  static Result<ConfigPtr> parse(const std::string& listener) {
    return parseConfig(R"({"listeners": [)" + listener + "]}", "test");
  }
  static std::string error(const std::string& listener) {
    auto r = parse(listener);
    EXPECT_FALSE(r) << listener;
    return r ? "" : r.error().detail;
  }
};

TEST_F(CaptureKinds, DialTheOriginalDestinationByDefault) {
  auto cfg = parse(R"({"name": "out", "kind": "redirect", "address": "0.0.0.0:15001"},
                      {"name": "in", "kind": "tproxy", "address": "[::]:15006", "to": "127.0.0.1:8080"})");
  ASSERT_TRUE(cfg) << cfg.error().detail;
  const ListenerConfig* out = (*cfg)->findListener("out");
  EXPECT_EQ(out->to.type, Target::Type::Original);
  EXPECT_EQ(out->streamKind, StreamKind::Redirect);
  EXPECT_EQ((*cfg)->findListener("in")->to.type, Target::Type::HostPort)
      << "a route or `to` overrides";
  EXPECT_EQ((*cfg)->findListener("in")->streamKind, StreamKind::Tproxy);
}

TEST_F(CaptureKinds, OptionErrorsNameThePath) {
  EXPECT_EQ(error(R"({"name": "in", "kind": "tproxy", "address": "0.0.0.0:0"})"),
            "listeners[0].address: kind 'tproxy' needs a fixed port (the TPROXY rule names it)");
  EXPECT_NE(
      error(
          R"({"name": "o", "kind": "redirect", "address": "0.0.0.0:1", "upstreamSource": "client", "mark": 1})")
          .find("listeners[0].upstreamSource: 'client' needs kind 'tproxy'"),
      std::string::npos);
  EXPECT_NE(
      error(
          R"({"name": "i", "kind": "tproxy", "address": "0.0.0.0:1", "upstreamSource": "client"})")
          .find("listeners[0].mark: upstreamSource 'client' needs the mark"),
      std::string::npos);
  EXPECT_NE(
      error(R"({"name": "o", "kind": "redirect", "address": "0.0.0.0:1", "upstreamSource": "me"})")
          .find(
              R"(listeners[0].upstreamSource: expected "default", "passthrough" or "client", got "me")"),
      std::string::npos);
  for (const char* mark : {"-1", "4294967296", "\"1337\"", "1.5"}) {
    EXPECT_NE(
        error(std::string(R"({"name": "o", "kind": "redirect", "address": "0.0.0.0:1", "mark": )") +
              mark + "}")
            .find("listeners[0].mark: expected an integer 0..4294967295"),
        std::string::npos)
        << mark;
  }
  EXPECT_NE(error(R"({"name": "o", "kind": "redirect", "address": "0.0.0.0:1", "users": []})")
                .find("listeners[0].users: unknown key for kind 'redirect' (known: name, kind, "
                      "address, to"),
            std::string::npos);
}

TEST_F(CaptureKinds, TheSidecarExamplesAreValid) {
  for (const char* f : {"sidecar.json", "sidecar-tproxy.json"}) {
    auto cfg = loadConfigFile(std::string(UGATE_SOURCE_DIR) + "/configs/examples/" + f);
    ASSERT_TRUE(cfg) << f << ": " << cfg.error().detail;
    EXPECT_EQ((*cfg)->listeners.size(), 4u) << f;
  }
}

// The upstream options a listener asks for, through its registry entry as the session does.
ConnectOptions upstream(const std::string& listener, const std::string& client,
                        const std::string& to) {
  auto cfg = parseConfig(R"({"listeners": [)" + listener + "]}", "test");
  EXPECT_TRUE(cfg) << (cfg ? "" : cfg.error().detail);
  ConnectOptions o;
  if (!cfg) return o;
  const ListenerConfig& l = (*cfg)->listeners[0];
  StreamMeta meta;
  meta.source = *SocketAddress::parse(client);
  l.spec->upstreamOptions(l, meta, *SocketAddress::parse(to), o);
  return o;
}

TEST_F(CaptureKinds, UpstreamSocketOptions) {
  ConnectOptions o = upstream(R"({"name": "o", "kind": "redirect", "address": "0.0.0.0:1"})",
                              "10.0.0.1:5555", "10.0.0.2:80");
  EXPECT_EQ(o.mark, 0u);
  EXPECT_FALSE(o.source.valid());
  EXPECT_FALSE(o.transparent);

  const std::string passthrough =
      R"({"name": "i", "kind": "redirect", "address": "0.0.0.0:1", "upstreamSource": "passthrough", "mark": 7})";
  o = upstream(passthrough, "10.0.0.1:5555", "10.0.0.2:80");
  EXPECT_EQ(o.mark, 7u);
  EXPECT_EQ(o.source.str(), "127.0.0.6:0");
  EXPECT_FALSE(o.transparent);
  EXPECT_EQ(upstream(passthrough, "[fd00::1]:5555", "[fd00::2]:80").source.str(), "[::6]:0");

  const std::string client =
      R"({"name": "i", "kind": "tproxy", "address": "0.0.0.0:15006", "upstreamSource": "client", "mark": 1337})";
  o = upstream(client, "10.0.0.1:5555", "10.0.0.2:80");
  EXPECT_EQ(o.mark, 1337u);
  EXPECT_EQ(o.source.str(), "10.0.0.1:0") << "the client's address, any port";
  EXPECT_TRUE(o.transparent);
  o = upstream(client, "10.0.0.1:5555", "[fd00::2]:80");
  EXPECT_FALSE(o.source.valid()) << "a client of the other family keeps the default source";
  EXPECT_FALSE(o.transparent);
}

TEST(LoopCheck, TheListenerItselfIsALoop) {
  auto a = [](const char* s) { return *SocketAddress::parse(s); };
  // Straight to the listener: destination == the socket's own address.
  auto r = checkLoop(a("10.77.0.1:15001"), a("10.77.0.1:15001"), 15001);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::LoopDetected);
  EXPECT_EQ(
      r.error().detail,
      "original destination 10.77.0.1:15001 is this listener (not captured, or a capture loop)");
  // Another local address with the listener's port (a wildcard listener): loopback always is.
  EXPECT_FALSE(checkLoop(a("127.0.0.5:15001"), a("127.0.0.1:15001"), 15001));
  EXPECT_FALSE(checkLoop(a("[::1]:15001"), a("[::1]:15001"), 15001));
  // Not a loop: another port, or a remote host's 15001 (TEST-NET addresses are on no interface).
  EXPECT_TRUE(checkLoop(a("127.0.0.1:8080"), a("127.0.0.1:15001"), 15001));
  EXPECT_TRUE(checkLoop(a("192.0.2.1:15001"), a("127.0.0.1:15001"), 15001));
  EXPECT_TRUE(checkLoop(a("[2001:db8::1]:15001"), a("[::1]:15001"), 15001));
  EXPECT_TRUE(checkLoop(a("127.0.0.1:15001"), a("127.0.0.1:15001"), 0)) << "port unknown: no check";
}

TEST(LoopCheck, LocalAddresses) {
  EXPECT_TRUE(isLocalAddress(*SocketAddress::parse("127.0.0.1:1")));
  EXPECT_TRUE(isLocalAddress(*SocketAddress::parse("127.0.0.6:1")));
  EXPECT_TRUE(isLocalAddress(*SocketAddress::parse("[::1]:1")));
  EXPECT_FALSE(isLocalAddress(*SocketAddress::parse("192.0.2.1:1")));
  EXPECT_FALSE(isLocalAddress(*SocketAddress::parse("[2001:db8::1]:1")));
}

TEST(OriginalDst, ANonCapturedSocketSaysSo) {
  // A socket that is not connected has no conntrack entry: NotFound, not a made-up address.
  int s = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  auto r = originalDestination(s, AF_INET);
  close(s);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("SO_ORIGINAL_DST: "), std::string::npos) << r.error().detail;
}

// ---- running iptables ----------------------------------------------------------------------
TEST(RunCommand, FeedsStdinAndCollectsBothOutputs) {
  // More than a pipe holds both ways: input and output are pumped together.
  std::string big(1 << 20, 'x');
  CommandResult r = runCommand({"cat"}, big);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out.size(), big.size());
  r = runCommand({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.status, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(RunCommand, AChildThatStopsReadingOrIsMissing) {
  CommandResult r = runCommand({"sh", "-c", "exit 4"}, std::string(1 << 20, 'x'));
  EXPECT_EQ(r.status, 4) << "no SIGPIPE for us; the child's status";
  r = runCommand({"no-such-program-ugate"});
  EXPECT_EQ(r.status, -1);
  EXPECT_NE(r.err.find("no-such-program-ugate: not found"), std::string::npos) << r.err;
}

// ---- command line --------------------------------------------------------------------------
Result<IptablesCommand> cli(std::vector<const char*> args) {
  args.insert(args.begin(), "iptables");
  return parseIptablesArgs(static_cast<int>(args.size()), args.data());
}

TEST(IptablesCli, DefaultsAreIstios) {
  auto c = cli({"print"});
  ASSERT_TRUE(c) << c.error().detail;
  EXPECT_EQ(c->verb, "print");
  EXPECT_EQ(c->backend, Backend::Auto);
  const CaptureOptions& o = c->options;
  EXPECT_EQ(o.mode, CaptureMode::Redirect);
  EXPECT_EQ(o.proxyPort, 15001);
  EXPECT_EQ(o.inboundPort, 15006);
  EXPECT_EQ(o.proxyUids, std::vector<uint32_t>{1337});
  EXPECT_EQ(o.proxyGids, std::vector<uint32_t>{1337});
  EXPECT_EQ(o.mark, 1337u);
  EXPECT_EQ(o.routeTable, 133u);
  EXPECT_TRUE(o.inboundPorts.all);
  EXPECT_TRUE(o.outboundCidrs.all);
  EXPECT_TRUE(o.ipv4 && o.ipv6);
}

TEST(IptablesCli, OptionsBeforeOrAfterTheVerb) {
  auto c = cli({"--mode=tproxy", "apply", "--proxy-uid", "", "--proxy-gid", "5,6",
                "--inbound-ports", "80,443", "--exclude-outbound-cidrs", "10.0.0.0/8", "--family",
                "ipv6", "--backend", "legacy", "--mark", "9", "--route-table", "200"});
  ASSERT_TRUE(c) << c.error().detail;
  EXPECT_EQ(c->verb, "apply");
  EXPECT_EQ(c->options.mode, CaptureMode::Tproxy);
  EXPECT_TRUE(c->options.proxyUids.empty());
  EXPECT_EQ(c->options.proxyGids, (std::vector<uint32_t>{5, 6}));
  EXPECT_EQ(c->options.inboundPorts.ports.size(), 2u);
  EXPECT_EQ(c->options.excludeOutboundCidrs.size(), 1u);
  EXPECT_FALSE(c->options.ipv4);
  EXPECT_TRUE(c->familyExplicit);
  EXPECT_EQ(c->backend, Backend::Legacy);
  EXPECT_EQ(c->options.mark, 9u);
  EXPECT_EQ(c->options.routeTable, 200u);
  EXPECT_TRUE(cli({"clean", "--help"})->help);
}

TEST(IptablesCli, ErrorsSayWhichFlagAndWhy) {
  struct Case {
    std::vector<const char*> args;
    const char* error;
  };
  const Case cases[] = {
      {{}, "missing command: print, apply or clean"},
      {{"show"}, "unknown command 'show' (print, apply or clean)"},
      {{"apply", "clean"}, "unexpected argument 'clean'"},
      {{"apply", "--nope", "1"}, "unknown option '--nope'"},
      {{"apply", "--mode"}, "--mode needs a value"},
      {{"apply", "--mode", "nat"}, "--mode: 'nat' is not redirect or tproxy"},
      {{"apply", "--proxy-port", "0"}, "--proxy-port: '0' is not a number in 1..65535"},
      {{"apply", "--proxy-uid", "root"}, "--proxy-uid: 'root' is not a numeric uid/gid"},
      {{"apply", "--inbound-ports", "80,x"}, "--inbound-ports: 'x' is not a port"},
      {{"apply", "--exclude-inbound-ports", "*"},
       "--exclude-inbound-ports: '*' is not allowed here"},
      {{"apply", "--outbound-cidrs", "10.0.0.0/40"},
       "--outbound-cidrs: '10.0.0.0/40' is not a CIDR"},
      {{"apply", "--route-table", "254"}, "--route-table: 254 is a reserved table"},
      {{"apply", "--family", "ipx"}, "--family: 'ipx' is not both, ipv4 or ipv6"},
      {{"apply", "--backend", "iptables"}, "--backend: 'iptables' is not auto, nft or legacy"},
      {{"apply", "--mode", "tproxy", "--mark", "0"}, "--mark 0: tproxy mode needs a mark"},
      {{"apply", "--mark", "1338"}, "--mark 1338 is the mark tproxy mode sets"},
      {{"apply", "--proxy-port", "15006"},
       "--proxy-port and --inbound-capture-port are both 15006"},
  };
  for (const auto& c : cases) {
    auto r = cli(c.args);
    ASSERT_FALSE(r) << c.error;
    EXPECT_NE(r.error().detail.find(c.error), std::string::npos) << r.error().detail;
  }
}

}  // namespace
}  // namespace ugate::iptables

#pragma once
// `ugated iptables print|apply|clean [options]`: Istio-compatible capture rules (see
// docs/SIDECAR.md). argv[0] is "iptables". Exit codes: 0 success, 1 failure, 2 usage error.
#include <string>

#include <ugate/result.h>

#include "iptables/capture_rules.h"
#include "iptables/iptables_backend.h"

namespace ugate::iptables {

/** IptablesCommand: the parsed command line. */
struct IptablesCommand {
  std::string verb;  // print | apply | clean
  CaptureOptions options;
  Backend backend{Backend::Auto};
  bool familyExplicit{false};  // --family named one family: a missing IPv6 stack is then an error
  bool help{false};
};

/** parseIptablesArgs validates the command line (no I/O); errors say which flag and why. */
Result<IptablesCommand> parseIptablesArgs(int argc, const char* const* argv);
/** runIptablesCommand: main() of `ugated iptables`. */
int runIptablesCommand(int argc, char** argv);
/** iptablesUsage: the help text. */
const char* iptablesUsage();

}  // namespace ugate::iptables

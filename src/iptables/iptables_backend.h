#pragma once
// Runs iptables for `ugated iptables apply|clean`: detects the backend (nft or legacy), reads the
// current rules (iptables-save), asks which of the built-in-chain rules exist (iptables -C) and
// installs one iptables-restore --noflush transaction per family, so each family changes
// atomically. Command-line use only: everything here blocks.
#include <string>
#include <string_view>
#include <vector>

#include <ugate/result.h>

#include "iptables/capture_rules.h"

namespace ugate::iptables {

enum class Backend : uint8_t { Auto, Nft, Legacy };
const char* backendName(Backend b);

/** CommandResult: how a child process ended and what it printed. */
struct CommandResult {
  int status{-1};  // exit status; -1 when it could not run or was killed
  std::string out;
  std::string err;
};
/**
 * runCommand runs argv (searched in PATH, then /usr/sbin and /sbin) with `input` on its stdin and
 * collects both outputs; at most 60 s. Ignores SIGPIPE in the process (command-line use).
 */
CommandResult runCommand(const std::vector<std::string>& argv, std::string_view input = {});

/**
 * detectBackend resolves Auto like kube-proxy and istio-iptables do: the backend that already
 * holds more rules wins; with none anywhere, the one `iptables` itself uses.
 */
Result<Backend> detectBackend(Backend requested);

/** FamilyReport: what an apply or clean did to one family. */
struct FamilyReport {
  std::string script;  // the iptables-restore transaction that ran ("" = nothing to do)
  size_t added{0};     // rules appended
  size_t removed{0};   // rules deleted from built-in chains and owned chains dropped
};

/**
 * updateFamily applies `next` (or cleans, when next is null) for one family with the given
 * backend; o supplies the marks and owners of rules to look for.
 */
Result<FamilyReport> updateFamily(Backend b, Family f, const CaptureOptions& o,
                                  const RuleSet* next);

}  // namespace ugate::iptables

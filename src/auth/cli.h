#pragma once
// Command-line tools of src/auth, wired into `ugated` by src/ugated:
//   ugated id --data-dir DIR [--cert] [--name N] [--trust-domain D] [--namespace NS]
//             [--owner USER[:GROUP]]
//   ugated ca init  --dir DIR [--trust-domain D] [--validity DUR]
//   ugated ca issue --dir DIR --name NAME --out DIR2 [--namespace NS] [--trust-domain D]
//                   [--validity DUR] [--owner USER[:GROUP]]
// argv[0] is the subcommand word ("id" or "ca"). Output goes to stdout, errors to stderr.
// Exit codes: 0 success, 1 failure, 2 usage error.

namespace ugate::auth {

/** runIdCommand prints the node ID (first line), creating the identity if absent; --cert adds the PEM. */
int runIdCommand(int argc, char** argv);
/** runCaCommand: `ca init` creates a mesh CA; `ca issue` writes key.pem, cert-chain.pem, root-cert.pem. */
int runCaCommand(int argc, char** argv);

}  // namespace ugate::auth

#pragma once
// `ugated upgrade` (src/ugated/upgrade_cli.cc).
namespace ugate {
/** runUpgradeCommand: argv[0] is "upgrade"; returns the exit status. */
int runUpgradeCommand(int argc, char** argv);
}  // namespace ugate

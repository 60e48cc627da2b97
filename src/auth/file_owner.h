#pragma once
// FileOwner: the `--owner USER[:GROUP]` of `ugated id` and `ugated ca issue`, which hand a node's
// identity files and their directory to the service user (e.g. `ugate`), so that ugated running as
// that user can read its key. Blocking (passwd and group lookups, chown): command-line tools only.
#include <sys/types.h>
#include <ugate/result.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ugate::auth {

struct FileOwner {
  uid_t uid{0};
  gid_t gid{0};
  /** name: "user:group" as resolved, for messages. */
  std::string name;
};

/**
 * parseFileOwner resolves USER[:GROUP]; each part is a name or a numeric id. Without GROUP the
 * user's login group is taken. An unknown user or group is an error that names it.
 */
Result<FileOwner> parseFileOwner(std::string_view spec);

/**
 * checkCanChown: changing a file's owner needs CAP_CHOWN (root has it). Returns an error that says
 * so, before anything is written, unless the owner is this process's own user and group.
 */
Result<void> checkCanChown(const FileOwner& owner);

/**
 * inheritedOwner: when dir exists, belongs to another user than this process's, and this process
 * may chown (root), that user and group; otherwise nullopt. Files written into the service user's
 * directory by root (a re-issued certificate) must stay readable by that user.
 */
std::optional<FileOwner> inheritedOwner(const std::string& dir);

/**
 * chownIdentityDir gives dir and the identity files present in it (key.pem, cert-chain.pem,
 * root-cert.pem, kube.json) to owner. Modes are left as they are (0700 and 0600 when ugated made
 * them); a file that is a symbolic link or not a regular file is refused, not followed.
 * @return the paths changed, dir first.
 */
Result<std::vector<std::string>> chownIdentityDir(const std::string& dir, const FileOwner& owner);

}  // namespace ugate::auth

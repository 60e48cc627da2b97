#pragma once
// Checks that a file or directory could be written, without creating or opening anything: what
// `ugated --check-config` runs where startup would create a file (the access log, the node's
// identity). Blocking file-system calls: main thread or CLI only.
#include <string>

#include <ugate/result.h>

namespace ugate {

/**
 * checkCanCreateDir: `dir` is a directory this process may create files in, or does not exist yet
 * and could be created: its nearest existing ancestor is a directory this process may write to.
 * Creates nothing. The error detail names the path that stops it and why.
 */
Result<void> checkCanCreateDir(const std::string& dir);

/**
 * checkCanAppend: file `path` exists and this process may write to it, or does not exist and
 * checkCanCreateDir allows its directory. Opens nothing.
 */
Result<void> checkCanAppend(const std::string& path);

}  // namespace ugate

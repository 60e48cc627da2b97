#pragma once
// @grpc/grpc-js (npm) as a real gRPC peer of the xds tests: installed once into the build tree
// (UGATE_NPM_DIR), run by node with NODE_PATH pointing there.
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace ugate::xds::test {

/**
 * grpcJsCommand: the shell command prefix that runs a node script with @grpc/grpc-js available
 * ("NODE_PATH=... node"), installing the package first if needed; "" (and `why`) when node, npm
 * or the network is missing, so that the test can be skipped. `extra`: another package installed
 * beside it ("@grpc/grpc-js-xds@1.14").
 */
inline std::string grpcJsCommand(std::string& why, const std::string& extra = "") {
  if (system("command -v node >/dev/null && command -v npm >/dev/null") != 0) {
    why = "node or npm is not installed";
    return "";
  }
  const std::string dir = UGATE_NPM_DIR;
  // The package's name is the spec without its version ("@scope/name@1.2" -> "@scope/name").
  const std::string name = extra.empty() ? "@grpc/grpc-js" : extra.substr(0, extra.find('@', 1));
  const std::string marker = dir + "/node_modules/" + name + "/package.json";
  const std::string packages = "@grpc/grpc-js@1.14" + (extra.empty() ? "" : " " + extra);
  // ctest runs these tests in parallel: one installs while the others wait on the lock, then
  // find the package there.
  if (access(marker.c_str(), R_OK) != 0 &&
      system(("mkdir -p '" + dir + "' && flock '" + dir + "/.install.lock' sh -c \"test -f '" + marker +
              "' || npm install --no-audit --no-fund --prefix '" + dir + "' " + packages + "\" >/dev/null 2>&1")
                 .c_str()) != 0) {
    why = "npm could not install " + packages;
    return "";
  }
  return "NODE_PATH='" + dir + "/node_modules' node ";
}

/** grpcJsScript: the path of a node script beside the xds tests. */
inline std::string grpcJsScript(const std::string& name) {
  return "'" UGATE_SOURCE_DIR "/tests/unit/xds/" + name + "'";
}

}  // namespace ugate::xds::test

#pragma once
// @grpc/grpc-js (npm) as a real gRPC peer of the xds tests: installed once into the build tree
// (UGATE_NPM_DIR), run by node with NODE_PATH pointing there.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

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

/**
 * JsServer: a node script (`command`, its output piped) that prints "listening PORT PID" first and
 * runs until killed: SIGTERMed by its PID at destruction. port() is 0 when it did not start.
 */
class JsServer {
 public:
  explicit JsServer(const std::string& command) {
    p_ = popen((command + " 2>&1").c_str(), "r");
    char line[512] = {};
    if (p_ == nullptr || fgets(line, sizeof line, p_) == nullptr || sscanf(line, "listening %u %d", &port_, &pid_) != 2) {
      port_ = 0;
    }
  }
  ~JsServer() {
    if (pid_ > 0) kill(pid_, SIGTERM);
    if (p_ != nullptr) pclose(p_);
  }
  JsServer(const JsServer&) = delete;
  JsServer& operator=(const JsServer&) = delete;
  uint16_t port() const { return static_cast<uint16_t>(port_); }
  /** waitFor reads its output until `want` is in it (false: it ended first). */
  bool waitFor(const std::string& want) {
    char buf[4096];
    while (out_.find(want) == std::string::npos && p_ && fgets(buf, sizeof buf, p_)) out_ += buf;
    return out_.find(want) != std::string::npos;
  }
  const std::string& out() const { return out_; }

 private:
  FILE* p_{nullptr};
  unsigned port_{0};
  int pid_{0};
  std::string out_;
};

}  // namespace ugate::xds::test

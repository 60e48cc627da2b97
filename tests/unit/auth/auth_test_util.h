#pragma once
// Helpers shared by the src/auth unit tests: shell commands (the openssl CLI as a cross-check),
// files with modes, and the committed test data directory.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "auth/identity.h"

namespace ugate::auth::test {

/** selfSignedCredentials: a fresh key with a self-signed certificate for `name`. */
inline NodeCredentials selfSignedCredentials(const std::string& name) {
  NodeCredentials c;
  c.key = *PrivateKey::generate();
  CertSpec s;
  s.name = name;
  c.certChainPem = *createSelfSignedCert(c.key, s);
  return c;
}

/** dataPath: a file under tests/unit/auth/data. */
inline std::string dataPath(const std::string& name) {
  return std::string(UGATE_SOURCE_DIR) + "/tests/unit/auth/data/" + name;
}

/** shell runs cmd with /bin/sh, returns stdout+stderr; *status gets the exit code. */
inline std::string shell(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void writeFile(const std::string& path, const std::string& content, mode_t mode) {
  std::ofstream(path) << content;
  ::chmod(path.c_str(), mode);
}

inline unsigned fileMode(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

}  // namespace ugate::auth::test

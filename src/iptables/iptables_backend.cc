#include "iptables/iptables_backend.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace ugate::iptables {

namespace {

constexpr int kCommandTimeoutMs = 60'000;  // iptables waits at most 5 s for the xtables lock

std::string findProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = getenv("PATH") ? getenv("PATH") : "";
  path += ":/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t colon = path.find(':', start);
    std::string dir =
        path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!dir.empty()) {
      std::string full = dir + "/" + name;
      if (access(full.c_str(), X_OK) == 0) return full;
    }
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return {};
}

struct Tools {
  std::string save, restore, iptables;
};

// toolsFor: the backend's own binaries (iptables-nft-save, ...), or the plain names when a
// distribution ships only those.
Tools toolsFor(Backend b, Family f) {
  const std::string base = f == Family::V4 ? "iptables" : "ip6tables";
  const std::string suffix = b == Backend::Legacy ? "-legacy" : "-nft";
  auto pick = [&](const std::string& tail) {
    std::string p = findProgram(base + suffix + tail);
    return p.empty() ? base + tail : p;
  };
  return Tools{pick("-save"), pick("-restore"), pick("")};
}

size_t countRules(const std::string& save) {
  size_t n = 0;
  size_t at = 0;
  while ((at = save.find("\n-A ", at)) != std::string::npos) {
    ++n;
    at += 4;
  }
  return n + (save.starts_with("-A ") ? 1 : 0);
}

size_t countLines(const std::string& script, std::string_view prefix) {
  size_t n = 0;
  size_t at = 0;
  while (at < script.size()) {
    size_t nl = script.find('\n', at);
    if (std::string_view(script).substr(at).starts_with(prefix)) ++n;
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  return n;
}

std::vector<std::string> splitWords(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < s.size()) {
    size_t sp = s.find(' ', at);
    if (sp != at) {
      out.push_back(s.substr(at, sp == std::string::npos ? std::string::npos : sp - at));
    }
    if (sp == std::string::npos) break;
    at = sp + 1;
  }
  return out;
}

// failedLine: iptables-restore says "line N failed"; show that line of the script too.
std::string failedLine(const std::string& err, const std::string& script) {
  size_t at = err.find("line ");
  if (at == std::string::npos) return {};
  long n = strtol(err.c_str() + at + 5, nullptr, 10);
  size_t pos = 0;
  for (long i = 1; i < n && pos != std::string::npos; ++i) {
    pos = script.find('\n', pos);
    if (pos != std::string::npos) ++pos;
  }
  if (n <= 0 || pos == std::string::npos || pos >= script.size()) return {};
  return " [line " + std::to_string(n) + ": " + script.substr(pos, script.find('\n', pos) - pos) +
         "]";
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

const char* backendName(Backend b) {
  switch (b) {
    case Backend::Auto: return "auto";
    case Backend::Nft: return "nft";
    case Backend::Legacy: return "legacy";
  }
  return "?";
}

CommandResult runCommand(const std::vector<std::string>& argv, std::string_view input) {
  // A child that exits before reading all its input must not kill us with SIGPIPE: the write then
  // fails with EPIPE and the child's exit status tells what happened.
  signal(SIGPIPE, SIG_IGN);
  CommandResult res;
  if (argv.empty()) return res;
  std::string prog = findProgram(argv[0]);
  if (prog.empty()) {
    res.err = argv[0] + ": not found (install iptables; scripts/install-deps.sh does)";
    return res;
  }
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return res;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return res;
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    return res;
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args[0] = prog.data();
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    execv(prog.c_str(), args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    for (int fd : {in[1], out[0], err[0]}) close(fd);
    res.err = std::string("fork: ") + strerror(errno);
    return res;
  }
  // Feed stdin and drain both outputs together, so neither side blocks on a full pipe.
  size_t written = 0;
  int inFd = in[1];
  if (input.empty()) {
    close(inFd);
    inFd = -1;
  } else {
    fcntl(inFd, F_SETFL, O_NONBLOCK);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kCommandTimeoutMs);
  int open = 2;
  bool outOpen = true, errOpen = true;
  while (open > 0 || inFd >= 0) {
    pollfd p[3];
    int n = 0;
    if (outOpen) p[n++] = {out[0], POLLIN, 0};
    if (errOpen) p[n++] = {err[0], POLLIN, 0};
    if (inFd >= 0) p[n++] = {inFd, POLLOUT, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      res.err += "\n" + argv[0] + ": timed out";
      break;
    }
    int rc = poll(p, static_cast<nfds_t>(n), static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) break;
    for (int i = 0; i < n; ++i) {
      if (p[i].revents == 0) continue;
      if (p[i].fd == inFd) {
        ssize_t w = write(inFd, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN) written = input.size();  // child stopped reading
        if (written == input.size()) {
          close(inFd);
          inFd = -1;
        }
        continue;
      }
      char buf[4096];
      ssize_t r = read(p[i].fd, buf, sizeof(buf));
      if (r > 0) {
        (p[i].fd == out[0] ? res.out : res.err).append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        (p[i].fd == out[0] ? outOpen : errOpen) = false;
        --open;
      }
    }
  }
  if (inFd >= 0) close(inFd);
  close(out[0]);
  close(err[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (res.status == 127 && res.err.empty()) res.err = argv[0] + ": could not be run";
  return res;
}

Result<Backend> detectBackend(Backend requested) {
  if (requested != Backend::Auto) return requested;
  size_t nft = 0, legacy = 0;
  bool haveNft = false, haveLegacy = false;
  for (Family f : {Family::V4, Family::V6}) {
    for (Backend b : {Backend::Nft, Backend::Legacy}) {
      const std::string base = f == Family::V4 ? "iptables" : "ip6tables";
      std::string prog = findProgram(base + (b == Backend::Nft ? "-nft-save" : "-legacy-save"));
      if (prog.empty()) continue;
      (b == Backend::Nft ? haveNft : haveLegacy) = true;
      CommandResult r = runCommand({prog});
      if (r.status == 0) (b == Backend::Nft ? nft : legacy) += countRules(r.out);
    }
  }
  if (nft != legacy && haveNft && haveLegacy) return nft > legacy ? Backend::Nft : Backend::Legacy;
  CommandResult v = runCommand({"iptables", "--version"});
  if (v.status == 0 && v.out.find("nf_tables") != std::string::npos) return Backend::Nft;
  if (v.status == 0 && v.out.find("legacy") != std::string::npos) return Backend::Legacy;
  if (haveNft) return Backend::Nft;
  if (haveLegacy) return Backend::Legacy;
  return makeError(Errc::NotFound,
                   "no iptables found (install iptables; scripts/install-deps.sh does)");
}

Result<FamilyReport> updateFamily(Backend b, Family f, const CaptureOptions& o,
                                  const RuleSet* next) {
  const Tools t = toolsFor(b, f);
  const char* fam = f == Family::V4 ? "IPv4" : "IPv6";
  CommandResult s = runCommand({t.save});
  if (s.status != 0) {
    return makeError(Errc::Io, std::string(fam) + ": " + t.save + " failed: " + trimmed(s.err));
  }
  auto state = parseSave(s.out);
  if (!state) return makeError(state.error().code, std::string(fam) + ": " + state.error().detail);
  // Built-in-chain rules that are not jumps to our chains: ask iptables which of them exist, but
  // only where the chain already has rules (-C would create a missing table as a side effect).
  std::vector<Rule> present;
  for (const Rule& r : builtinRulesToCheck(o, f)) {
    const SaveState::Table* table = state->find(r.table);
    if (!table) continue;
    bool chainUsed = false;
    for (const auto& x : table->rules) chainUsed |= x.chain == r.chain;
    if (!chainUsed) continue;
    std::vector<std::string> argv{t.iptables, "-w", "5", "-t", r.table, "-C", r.chain};
    for (auto& w : splitWords(r.spec)) argv.push_back(std::move(w));
    if (runCommand(argv).status == 0) present.push_back(r);
  }
  FamilyReport rep;
  rep.script = updateScript(*state, present, next);
  if (rep.script.empty()) return rep;
  CommandResult r = runCommand({t.restore, "-w", "5", "--noflush"}, rep.script);
  if (r.status != 0) {
    return makeError(Errc::Io, std::string(fam) + ": " + t.restore +
                                   " failed (nothing was changed): " + trimmed(r.err) +
                                   failedLine(r.err, rep.script));
  }
  rep.added = countLines(rep.script, "-A ");
  rep.removed = countLines(rep.script, "-D ") + countLines(rep.script, "-X ");
  return rep;
}

}  // namespace ugate::iptables

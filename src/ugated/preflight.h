#pragma once
// Preflight: the checks that decide whether a config will start, run before anything is bound for
// good or dialled. `ugated --check-config` runs them touching nothing (credentials loaded in a dry
// run, log paths checked for writability, addresses probed with a bind that is closed at once);
// startup and SIGHUP run the same address checks and report every problem in one go. So "check-config
// says ok" means "it will start". Main thread or CLI: blocking file and /proc reads.
#include <string>
#include <vector>

#include <ugate/config.h>

namespace ugate {

/** Findings: what the checks found. */
struct Findings {
  std::vector<std::string> errors;  // errors: one line each, starting with its JSON path
  std::vector<std::string> notes;   // notes: not errors (what startup would create, ...)
  size_t bindErrors{0};             // bindErrors: how many errors are addresses that cannot be bound
  /** addError adds each line of an error detail (several errors come one per line). */
  void addError(const std::string& detail);
};

/** listenerLabel: how errors name listener l of cfg: "listeners[1] 'socks'". */
std::string listenerLabel(const Config& cfg, const ListenerConfig& l);

/** keepsSockets: on a reload from `running` (null at startup), listener l keeps its sockets. */
inline bool keepsSockets(const Config* running, const ListenerConfig& l) {
  const ListenerConfig* o = running ? running->findListener(l.name) : nullptr;
  return o && o->sameAs(l);
}

/**
 * checkAddresses adds an error for each listener that cannot bind its address: a bind error
 * (permission, an address not on this host, a socket option), or the address held by another
 * process (TCP listening or UDP), which SO_REUSEPORT would otherwise share silently. Held only by
 * this process is fine: a reload binds beside its own sockets. With sharePort, only what keeps the
 * real bind from joining the holders is an error. Port 0 is not checked. On a reload from
 * `running`, only listeners that do not keep their sockets are checked; at startup (running null)
 * the admin address is checked too (a reload moves the admin endpoint only if it can).
 * checkedFile (--check-config): an address held by a ugated process running that same file is a
 * note, not an error: the check then stands for a SIGHUP reload of that process.
 */
void checkAddresses(const Config& cfg, Findings& out, const std::string& checkedFile = "",
                    const Config* running = nullptr);

/**
 * runCheckConfig is `ugated --check-config FILE`: parse, then every check startup runs, touching
 * nothing; prints the file name once, then every error (stderr) or "ok" and any notes (stdout).
 * Returns the exit code: 0 it will start, 2 it will not.
 */
int runCheckConfig(const std::string& path);

}  // namespace ugate

#include "core/port_holders.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace ugate {

namespace {

constexpr int kTcpListen = 0x0A;  // TCP_LISTEN in /proc/net/tcp's "st" column

// parseHexIp: /proc prints each 32-bit word of the address as the host-order value of its
// network-order bytes, so storing the parsed word in host order gives back those bytes.
bool parseHexIp(const std::string& hex, uint8_t* out) {
  if (hex.size() != 8 && hex.size() != 32) return false;
  for (size_t w = 0; w < hex.size() / 8; ++w) {
    uint32_t v = static_cast<uint32_t>(std::stoul(hex.substr(w * 8, 8), nullptr, 16));
    memcpy(out + w * 4, &v, 4);
  }
  return true;
}

// parseLocal: "0100007F:1F90" (or 32 hex digits for IPv6) as an address.
SocketAddress parseLocal(const std::string& s) {
  auto colon = s.find(':');
  if (colon == std::string::npos) return {};
  const std::string hex = s.substr(0, colon);
  const uint16_t port = static_cast<uint16_t>(std::stoul(s.substr(colon + 1), nullptr, 16));
  if (hex.size() == 8) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (!parseHexIp(hex, reinterpret_cast<uint8_t*>(&a.sin_addr))) return {};
    return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  if (!parseHexIp(hex, reinterpret_cast<uint8_t*>(&a.sin6_addr))) return {};
  return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&a), sizeof(a));
}

// overlaps: a socket bound to s conflicts with a bind of addr (same port checked by the caller).
bool overlaps(const SocketAddress& s, const SocketAddress& addr) {
  const uint8_t* ip = addr.ipBytes();
  const uint8_t* sip = s.ipBytes();
  if (s.family() == addr.family()) {
    const size_t n = static_cast<size_t>(addr.ipLen());
    return s.isAny() || addr.isAny() || memcmp(sip, ip, n) == 0;
  }
  if (s.family() == AF_INET6 && addr.family() == AF_INET) {  // dual-stack or IPv4-mapped sockets
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return s.isAny() || (memcmp(sip, mapped, 12) == 0 && (addr.isAny() || memcmp(sip + 12, ip, 4) == 0));
  }
  return false;  // an IPv6 bind is IPV6_V6ONLY: IPv4 sockets never conflict with it
}

// socketInodes: the socket inodes among the fds of process `pid` ("self" for this one).
std::set<uint64_t> socketInodes(const std::string& pid) {
  std::set<uint64_t> out;
  std::string dir = "/proc/" + pid + "/fd";
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char target[64];
    ssize_t n = readlink((dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    unsigned long long inode = 0;
    if (sscanf(target, "socket:[%llu]", &inode) == 1) out.insert(inode);
  }
  closedir(d);
  return out;
}

PortHolder holderOf(pid_t pid) {
  PortHolder h;
  h.pid = pid;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string arg;
  while (std::getline(in, arg, '\0')) h.argv.push_back(arg);
  char cwd[4096];
  ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/cwd").c_str(), cwd, sizeof(cwd) - 1);
  if (n > 0) h.cwd.assign(cwd, static_cast<size_t>(n));
  return h;
}

}  // namespace

std::vector<ProcSocket> procSockets(const std::string& file, pid_t pid) {
  std::vector<ProcSocket> out;
  std::ifstream in("/proc/" + (pid ? std::to_string(pid) : std::string("self")) + "/net/" + file);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string sl, local, remote, st, queues, timer, retr, uid, timeout, inode;
    ls >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> inode;
    ProcSocket s;
    try {
      s.local = parseLocal(local);
      s.state = std::stoi(st, nullptr, 16);
      s.inode = std::stoull(inode);
    } catch (const std::exception&) {
      continue;
    }
    if (s.local.valid()) out.push_back(s);
  }
  return out;
}

std::string PortHolder::describe() const {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  if (cmd.size() > 200) cmd = cmd.substr(0, 197) + "...";
  return "pid " + std::to_string(pid) + (cmd.empty() ? "" : ": " + cmd);
}

PortUse findPortUse(const SocketAddress& addr, bool datagram) {
  std::set<uint64_t> inodes;
  const char* v4 = datagram ? "udp" : "tcp";
  const char* v6 = datagram ? "udp6" : "tcp6";
  for (const char* file : {v4, v6}) {
    for (const auto& s : procSockets(file)) {
      if (s.local.port() != addr.port() || s.inode == 0) continue;
      if (!datagram && s.state != kTcpListen) continue;
      if (overlaps(s.local, addr)) inodes.insert(s.inode);
    }
  }
  PortUse use;
  const std::set<uint64_t> mine = socketInodes("self");
  std::set<uint64_t> foreign;
  for (uint64_t i : inodes) {
    if (mine.count(i)) use.self = true;
    else foreign.insert(i);
  }
  use.others = !foreign.empty();
  if (foreign.empty()) return use;
  const pid_t self = getpid();
  std::set<uint64_t> seen;
  DIR* proc = opendir("/proc");
  if (!proc) {
    use.hidden = true;
    return use;
  }
  while (dirent* e = readdir(proc)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == self) continue;
    bool holds = false;
    for (uint64_t i : socketInodes(e->d_name)) {
      if (foreign.count(i)) {
        seen.insert(i);
        holds = true;
      }
    }
    if (holds) use.holders.push_back(holderOf(static_cast<pid_t>(pid)));
  }
  closedir(proc);
  use.hidden = seen.size() < foreign.size();
  return use;
}

}  // namespace ugate

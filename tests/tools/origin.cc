// ugate_origin: an origin server for the cluster tests, one process each, so a test can kill it and
// start it again on the same port.
//
//   ugate_origin --listen 127.0.0.1:PORT --name NAME
//       Prints "listening PORT". On each connection it waits for the client's first bytes:
//       - "GET " (a health check or curl): answers `HTTP/1.1 200 OK` with body "NAME\n" and closes;
//       - anything else: answers "NAME\n", then echoes every byte until the client's EOF.
//       One thread per connection; SIGTERM/SIGINT/SIGKILL end it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

bool writeAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void serve(int fd, std::string name) {
  char buf[16384];
  ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  if (n <= 0) {
    ::close(fd);
    return;
  }
  if (n >= 4 && std::memcmp(buf, "GET ", 4) == 0) {
    std::string head(buf, static_cast<size_t>(n));
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
      ssize_t m = ::recv(fd, buf, sizeof(buf), 0);
      if (m <= 0) break;
      head.append(buf, static_cast<size_t>(m));
    }
    std::string body = name + "\n";
    std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    writeAll(fd, resp.data(), resp.size());
    ::shutdown(fd, SHUT_WR);
    while (::recv(fd, buf, sizeof(buf), 0) > 0) {
    }
    ::close(fd);
    return;
  }
  std::string hello = name + "\n";
  if (!writeAll(fd, hello.data(), hello.size())) {
    ::close(fd);
    return;
  }
  // The first bytes were the client's greeting; from here on echo.
  for (;;) {
    ssize_t m = ::recv(fd, buf, sizeof(buf), 0);
    if (m < 0 && errno == EINTR) continue;
    if (m <= 0) break;
    if (!writeAll(fd, buf, static_cast<size_t>(m))) break;
  }
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0", name = "origin";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--listen") listen = argv[i + 1];
    else if (k == "--name") name = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: ugate_origin --listen IP:PORT --name NAME\n");
      return 2;
    }
  }
  auto colon = listen.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::atoi(listen.c_str() + colon + 1)));
  if (inet_pton(AF_INET, listen.substr(0, colon).c_str(), &sa.sin_addr) != 1) {
    std::fprintf(stderr, "bad address %s\n", listen.c_str());
    return 2;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || ::listen(fd, 1024) != 0) {
    std::fprintf(stderr, "bind %s: %s\n", listen.c_str(), std::strerror(errno));
    return 1;
  }
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  std::printf("listening %u\n", ntohs(sa.sin_port));
  std::fflush(stdout);
  for (;;) {
    int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        usleep(10000);
        continue;
      }
      return 1;
    }
    std::thread(serve, c, name).detach();
  }
}

// ugate_h2connect: an HTTP/2 CONNECT client over mutual TLS, for the mesh tests. nghttp cannot send
// a proper CONNECT (it always adds :path and :scheme), and curl cannot send CONNECT over HTTP/2.
//
//   ugate_h2connect --connect HOST:PORT --authority TARGET:PORT --cert CERT --key KEY --ca CA
//                   [-H 'name: value']... [--timeout SECONDS]
//
// Opens TCP to HOST:PORT (a literal IP), TLS 1.3 with the client certificate CERT/KEY and ALPN h2,
// verifies the server's chain against CA (no host name check: mesh certificates name SPIFFE
// identities, not addresses), sends `:method CONNECT` and `:authority TARGET:PORT` plus the -H
// headers, and prints the response headers to stderr (":status 200", then "name: value" lines).
// On a 2xx answer it pipes stdin -> stream and stream -> stdout, with END_STREAM once stdin ends,
// until the stream closes; a non-2xx answer's body goes to stderr.
// Exit status: 0 = 2xx and the stream ended cleanly; 2 = non-2xx answer; 3 = stream reset;
// 1 = connection, TLS or usage error; 124 = --timeout (default 20 s) elapsed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace {

[[noreturn]] void die(const std::string& why) {
  fprintf(stderr, "h2connect: %s\n", why.c_str());
  exit(1);
}

std::string sslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "no detail";
  char b[256];
  ERR_error_string_n(e, b, sizeof(b));
  return b;
}

struct Options {
  std::string connect, authority, cert, key, ca;
  std::vector<std::pair<std::string, std::string>> headers;
  unsigned timeout{20};
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) die(a + " needs a value (see the header of tests/tools/h2connect.cc)");
    std::string v = argv[++i];
    if (a == "--connect") {
      o.connect = v;
    } else if (a == "--authority") {
      o.authority = v;
    } else if (a == "--cert") {
      o.cert = v;
    } else if (a == "--key") {
      o.key = v;
    } else if (a == "--ca") {
      o.ca = v;
    } else if (a == "--timeout") {
      o.timeout = static_cast<unsigned>(strtoul(v.c_str(), nullptr, 10));
    } else if (a == "-H") {
      auto colon = v.find(':');
      if (colon == std::string::npos || colon == 0) die("-H '" + v + "': expected 'name: value'");
      std::string name = v.substr(0, colon);
      for (char& c : name) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
      size_t start = v.find_first_not_of(' ', colon + 1);
      o.headers.emplace_back(name, start == std::string::npos ? std::string() : v.substr(start));
    } else {
      die("unknown option " + a);
    }
  }
  if (o.connect.empty() || o.authority.empty() || o.cert.empty() || o.key.empty() || o.ca.empty()) {
    die("--connect, --authority, --cert, --key and --ca are required");
  }
  return o;
}

int dial(const std::string& hostPort) {
  auto colon = hostPort.rfind(':');
  if (colon == std::string::npos) die("--connect " + hostPort + ": expected IP:PORT");
  std::string host = hostPort.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  sockaddr_storage ss{};
  socklen_t len;
  const auto port = htons(static_cast<uint16_t>(atoi(hostPort.c_str() + colon + 1)));
  if (auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss); inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = port;
    len = sizeof(*a6);
  } else if (auto* a4 = reinterpret_cast<sockaddr_in*>(&ss); inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = port;
    len = sizeof(*a4);
  } else {
    die("--connect " + hostPort + ": not a literal IP address");
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    die("connect " + hostPort + ": " + strerror(errno));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Client: one TLS connection, one nghttp2 session, one CONNECT stream.
struct Client {
  SSL* ssl{nullptr};
  int fd{-1};
  nghttp2_session* session{nullptr};
  int32_t stream{-1};
  std::string out;       // TLS plaintext nghttp2 produced, not yet taken by SSL_write
  std::string upload;    // stdin bytes not yet in DATA frames
  bool stdinEof{false};
  int status{0};
  bool headersPrinted{false};
  bool closed{false};
  uint32_t closeCode{0};
  std::vector<std::pair<std::string, std::string>> response;

  bool ok() const { return status >= 200 && status < 300; }
};

ssize_t readUpload(nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags, nghttp2_data_source*,
                   void* user) {
  auto& c = *static_cast<Client*>(user);
  if (c.upload.empty()) {
    if (c.stdinEof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    return NGHTTP2_ERR_DEFERRED;
  }
  size_t n = std::min(len, c.upload.size());
  memcpy(buf, c.upload.data(), n);
  c.upload.erase(0, n);
  return static_cast<ssize_t>(n);
}

int onHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t nlen, const uint8_t* value,
             size_t vlen, uint8_t, void* user) {
  auto& c = *static_cast<Client*>(user);
  if (f->hd.stream_id != c.stream) return 0;
  std::string n(reinterpret_cast<const char*>(name), nlen), v(reinterpret_cast<const char*>(value), vlen);
  if (n == ":status") c.status = atoi(v.c_str());
  c.response.emplace_back(std::move(n), std::move(v));
  return 0;
}

int onFrameRecv(nghttp2_session* s, const nghttp2_frame* f, void* user) {
  auto& c = *static_cast<Client*>(user);
  if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != c.stream || c.headersPrinted) return 0;
  c.headersPrinted = true;
  for (const auto& [n, v] : c.response) fprintf(stderr, "%s%s%s\n", n.c_str(), n[0] == ':' ? " " : ": ", v.c_str());
  if (c.ok()) nghttp2_session_resume_data(s, c.stream);  // the tunnel is open: stdin may flow
  return 0;
}

int onData(nghttp2_session* s, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user) {
  auto& c = *static_cast<Client*>(user);
  if (id != c.stream) return 0;
  FILE* to = c.ok() ? stdout : stderr;
  if (fwrite(data, 1, len, to) != len) return NGHTTP2_ERR_CALLBACK_FAILURE;
  fflush(to);
  nghttp2_session_consume(s, id, len);
  return 0;
}

int onStreamClose(nghttp2_session*, int32_t id, uint32_t code, void* user) {
  auto& c = *static_cast<Client*>(user);
  if (id != c.stream) return 0;
  c.closed = true;
  c.closeCode = code;
  return 0;
}

// flush: hand queued frames to TLS. Returns false when the connection failed.
bool flush(Client& c) {
  for (;;) {
    const uint8_t* data;
    ssize_t n = nghttp2_session_mem_send(c.session, &data);
    if (n < 0) die(std::string("nghttp2: ") + nghttp2_strerror(static_cast<int>(n)));
    if (n == 0) break;
    c.out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  while (!c.out.empty()) {
    int n = SSL_write(c.ssl, c.out.data(), static_cast<int>(c.out.size()));
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    int e = SSL_get_error(c.ssl, n);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return true;
    return false;
  }
  return true;
}

// receive: read what TLS has and feed it to nghttp2. Returns false on EOF or error.
bool receive(Client& c) {
  uint8_t buf[16384];
  for (;;) {
    int n = SSL_read(c.ssl, buf, sizeof(buf));
    if (n > 0) {
      ssize_t r = nghttp2_session_mem_recv(c.session, buf, static_cast<size_t>(n));
      if (r < 0) die(std::string("nghttp2: ") + nghttp2_strerror(static_cast<int>(r)));
      continue;
    }
    int e = SSL_get_error(c.ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
    return false;
  }
}

void onAlarm(int) {
  static const char msg[] = "h2connect: timed out\n";
  (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
  _exit(124);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, onAlarm);
  alarm(o.timeout);

  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert.c_str()) != 1) die("--cert " + o.cert + ": " + sslError());
  if (SSL_CTX_use_PrivateKey_file(ctx, o.key.c_str(), SSL_FILETYPE_PEM) != 1) die("--key " + o.key + ": " + sslError());
  if (SSL_CTX_load_verify_locations(ctx, o.ca.c_str(), nullptr) != 1) die("--ca " + o.ca + ": " + sslError());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  static const uint8_t kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof(kAlpn));
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

  Client c;
  c.fd = dial(o.connect);
  c.ssl = SSL_new(ctx);
  SSL_set_fd(c.ssl, c.fd);
  if (SSL_connect(c.ssl) != 1) die("TLS handshake with " + o.connect + ": " + sslError());
  const uint8_t* alpn = nullptr;
  unsigned alpnLen = 0;
  SSL_get0_alpn_selected(c.ssl, &alpn, &alpnLen);
  if (alpnLen != 2 || memcmp(alpn, "h2", 2) != 0) die("the server did not select ALPN h2");
  fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
  fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);

  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, onData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, onStreamClose);
  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new2(&c.session, cbs, &c, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_submit_settings(c.session, NGHTTP2_FLAG_NONE, nullptr, 0);

  std::vector<nghttp2_nv> nva;
  auto add = [&](const std::string& n, const std::string& v) {
    nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                   NGHTTP2_NV_FLAG_NONE});
  };
  const std::string method = ":method", connect = "CONNECT", authority = ":authority";
  add(method, connect);
  add(authority, o.authority);
  for (const auto& [n, v] : o.headers) add(n, v);
  nghttp2_data_provider dp{};
  dp.read_callback = readUpload;
  c.stream = nghttp2_submit_request(c.session, nullptr, nva.data(), nva.size(), &dp, nullptr);
  if (c.stream < 0) die(std::string("submit CONNECT: ") + nghttp2_strerror(c.stream));

  bool connOk = true;
  while (connOk && !c.closed) {
    connOk = flush(c);
    if (!connOk || c.closed) break;
    pollfd p[2] = {{c.fd, POLLIN, 0}, {STDIN_FILENO, 0, 0}};
    if (!c.out.empty()) p[0].events |= POLLOUT;
    // Read stdin only into an open tunnel, and only while little is queued (backpressure).
    if (c.ok() && !c.stdinEof && c.upload.size() < 65536) p[1].events = POLLIN;
    if (poll(p, p[1].events ? 2 : 1, -1) < 0 && errno != EINTR) die(std::string("poll: ") + strerror(errno));
    if (p[1].revents) {
      char buf[16384];
      ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
      if (n > 0) {
        c.upload.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        c.stdinEof = true;
      }
      nghttp2_session_resume_data(c.session, c.stream);
    }
    if (p[0].revents) connOk = receive(c);
  }
  flush(c);
  int rc;
  if (!c.headersPrinted) {
    fprintf(stderr, "h2connect: no response (connection %s)\n", connOk ? "open" : "closed");
    rc = 1;
  } else if (!c.ok()) {
    rc = 2;
  } else if (!c.closed || c.closeCode != NGHTTP2_NO_ERROR) {
    fprintf(stderr, "h2connect: stream %s (code %u)\n", c.closed ? "reset" : "cut", c.closeCode);
    rc = 3;
  } else {
    rc = 0;
  }
  nghttp2_session_del(c.session);
  SSL_free(c.ssl);
  SSL_CTX_free(ctx);
  close(c.fd);
  return rc;
}

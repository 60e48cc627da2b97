// `ugated push` (push_cli.h): the command line application server and subscriber.
#include "webpush/push_cli.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <ugate/reactor.h>
#include <ugate/socket_address.h>
#include <ugate/socket_util.h>
#include <ugate/tcp_stream.h>
#include <ugate/time.h>

#include "auth/crypto.h"
#include "auth/encoding.h"
#include "auth/identity.h"
#include "auth/peer_verifier.h"
#include "auth/tls_stream.h"
#include "http/http1_response.h"
#include "webpush/message_crypto.h"
#include "webpush/push_client.h"
#include "webpush/push_api.h"
#include "webpush/vapid.h"

namespace ugate::webpush {

namespace {

using json = nlohmann::json;

constexpr const char* kUsage = R"(usage: ugated push vapid-keys --out FILE
       ugated push subscribe --server URL (--ca FILE | --peer-id NODEID | --insecure)
                             [--application-server-key KEY] [--topic NODE/NAME] [--deliver xds] --state FILE
       ugated push listen --state FILE [--count N]
       ugated push send --subscription FILE --vapid-key FILE --subject mailto:ADDRESS
                        [--ttl SECONDS] [--urgency very-low|low|normal|high] [--topic T]
                        (--ca FILE | --peer-id NODEID | --insecure)   (the message on stdin)
       ugated push publish --server URL --topic NODE/NAME --vapid-key FILE --subject mailto:ADDRESS
                           [--ttl SECONDS] [--urgency ...] (--ca FILE | --peer-id NODEID | --insecure)
vapid-keys writes an application server's P-256 key (PEM, 0600) and prints its public key.
subscribe creates a subscription at a push service, makes its P-256 key and auth secret (kept in
the state file, 0600) and prints the PushSubscription JSON an application server needs.
listen prints each message of the subscription, decrypted, as a JSON line, and acknowledges it.
send encrypts stdin for a subscription (RFC 8291), signs VAPID (RFC 8292) and posts it.
subscribe --topic follows a topic the server's node publishes (its keys go to that node, which
encrypts each message for it); subscribe --deliver xds (at a node with webpush.gateway) makes the
subscription at the gateway for delivery to this node as xDS resources (xds.client.messages);
publish posts stdin as plaintext to a topic, with VAPID (the key must
be listed in the node's webpush.topics[].publishers).
The server's certificate is checked against --ca's roots or pinned by node ID (--peer-id; the
node's ID is in its log and `ugated id`); --insecure checks nothing.
)";

int fail(const std::string& why) {
  std::cerr << "ugated push: " << why << "\n";
  return 1;
}

std::string b64(std::span<const uint8_t> b) { return auth::base64UrlEncode(b); }

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(f), {});
}

/** Args: `--key value` pairs after the subcommand; `--insecure` alone. */
struct Args {
  std::map<std::string, std::string> v;
  std::string error;
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = v.find(k);
    return it == v.end() ? def : it->second;
  }
  bool has(const std::string& k) const { return v.count(k) > 0; }
};

Args parseArgs(int argc, char** argv, int from) {
  Args a;
  for (int i = from; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) {
      a.error = "unexpected argument '" + k + "'";
      return a;
    }
    if (k == "--insecure") {
      a.v[k] = "1";
      continue;
    }
    if (i + 1 >= argc) {
      a.error = k + " needs a value";
      return a;
    }
    a.v[k] = argv[++i];
  }
  return a;
}

/** Server: where requests go and how its certificate is judged. */
struct Server {
  std::string origin;  // https://host[:port]
  std::string host;    // Host header
  SocketAddress addr;
  auth::TlsContextPtr tls;
};

/** trustJson: the state's record of how the server is verified (--ca, --peer-id, --insecure). */
json trustJson(const Args& a) {
  json t = json::object();
  if (a.has("--ca")) t["ca"] = a.get("--ca");
  if (a.has("--peer-id")) t["peerId"] = a.get("--peer-id");
  if (a.has("--insecure")) t["insecure"] = true;
  return t;
}

Result<Server> makeServer(const std::string& url, const json& trust) {
  if (url.rfind("https://", 0) != 0) return makeError(Errc::InvalidArgument, "'" + url + "' is not an https:// URL");
  const std::string rest = url.substr(8);
  const std::string authority = rest.substr(0, rest.find('/'));
  Server s;
  s.origin = normalizeOrigin("https://" + authority);
  s.host = authority;
  std::string host = authority, port = "443";
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return makeError(Errc::InvalidArgument, "bad host in '" + url + "'");
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') port = authority.substr(close + 2);
  } else if (const size_t colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    return makeError(Errc::NotFound, "cannot resolve '" + authority + "'");
  }
  s.addr = SocketAddress::fromSockaddr(res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  std::string roots, pinned;
  bool insecure = false;
  if (trust.contains("ca")) {
    auto pem = readFile(trust["ca"].get<std::string>());
    if (!pem) return makeError(Errc::NotFound, "cannot read " + trust["ca"].get<std::string>());
    roots = *pem;
  } else if (trust.contains("peerId")) {
    pinned = trust["peerId"].get<std::string>();
  } else if (trust.value("insecure", false)) {
    insecure = true;
  } else {
    return makeError(Errc::InvalidArgument, "how to check the server's certificate: --ca FILE, --peer-id NODEID or --insecure");
  }
  auto ctx = httpsClientContext(roots, pinned, insecure);
  if (!ctx) return ctx.error();
  s.tls = *ctx;
  return s;
}

/** Call: one HTTPS/1.1 request on its own TCP connection, on the command's reactor (HttpsCall). */
class Call {
 public:
  using OnBody = HttpsCall::OnBody;
  using OnDone = std::function<void(Call&)>;
  Call(Reactor& r, const Server& s, std::string method, std::string path, std::vector<http::Header> reqHeaders,
       std::string reqBody, OnBody onBody, OnDone onDone)
      : http(r, s.tls, s.host, std::move(method), std::move(path), std::move(reqHeaders), std::move(reqBody),
             std::move(onBody), [this, onDone = std::move(onDone)](HttpsCall&) { onDone(*this); }),
        r_(r), s_(s) {}
  HttpsCall http;

  void start() {
    auto fd = startConnect(s_.addr);
    if (!fd) return http.fail("connect to " + s_.addr.str() + ": " + fd.error().detail);
    tcp_ = std::make_unique<TcpStream>(r_, *fd, [this](int err) {
      if (err != 0) return http.fail("connect to " + s_.addr.str() + ": " + std::strerror(err));
      http.start(std::move(tcp_), "");
    });
  }

 private:
  Reactor& r_;
  const Server& s_;
  std::unique_ptr<TcpStream> tcp_;
};

/** request runs one call to completion on a fresh reactor (subscribe, send). */
struct Reply {
  int status{0};
  std::string body;
  std::string error;
  std::string location;
  std::string ttl;
};
Reply request(const Server& s, const std::string& method, const std::string& path, std::vector<http::Header> headers,
              std::string body) {
  ReactorPtr r = newReactor(realTimeSource(), 0);
  Call c(*r, s, method, path, std::move(headers), std::move(body), {}, [&r](Call&) { r->exit(); });
  c.start();
  r->run();
  return Reply{c.http.status, c.http.body, c.http.error, c.http.header("location"), c.http.header("ttl")};
}

int vapidKeys(const Args& a) {
  if (!a.has("--out")) return fail("vapid-keys needs --out FILE");
  auto k = auth::PrivateKey::generate();
  if (!k) return fail(k.error().detail);
  if (auto w = auth::writeFileAtomic(a.get("--out"), k->toPem(), 0600); !w) return fail(w.error().detail);
  std::cout << json{{"publicKey", b64(k->publicKey())}, {"privateKeyFile", a.get("--out")}}.dump() << "\n";
  return 0;
}

int subscribe(const Args& a) {
  if (!a.has("--server") || !a.has("--state")) return fail("subscribe needs --server URL and --state FILE");
  const json trust = trustJson(a);
  auto s = makeServer(a.get("--server"), trust);
  if (!s) return fail(s.error().detail);
  auto keys = generateSubscriptionKeys();
  if (!keys) return fail(keys.error().detail);
  json req = json::object();
  if (a.has("--application-server-key")) req["applicationServerKey"] = a.get("--application-server-key");
  if (a.has("--deliver")) req["deliver"] = a.get("--deliver");
  if (a.has("--topic")) {
    // Pub/sub: the publishing node encrypts each copy, so it needs the keys now.
    req["topic"] = a.get("--topic");
    req["keys"] = {{"p256dh", b64(keys->key.publicKey())}, {"auth", b64(keys->auth)}};
  }
  Reply c = request(*s, "POST", "/subscribe", {{"Content-Type", "application/json"}}, req.dump());
  if (!c.error.empty()) return fail(c.error);
  if (c.status != 201) return fail("the push service answered " + std::to_string(c.status) + ": " + c.body);
  json sub = json::parse(c.body, nullptr, false);
  if (!sub.is_object() || !sub.contains("endpoint") || !sub.contains("receive")) return fail("unexpected answer: " + c.body);
  json state{{"server", s->origin},
             {"trust", trust},
             {"endpoint", sub["endpoint"]},
             {"receive", sub["receive"]},
             {"p256dh", b64(keys->key.publicKey())},
             {"privateKey", b64(keys->key.privateKey())},
             {"auth", b64(keys->auth)}};
  if (auto w = auth::writeFileAtomic(a.get("--state"), state.dump(2) + "\n", 0600); !w) return fail(w.error().detail);
  std::cout << json{{"endpoint", sub["endpoint"]}, {"keys", {{"p256dh", state["p256dh"]}, {"auth", state["auth"]}}}}.dump()
            << "\n";
  return 0;
}

int listen(const Args& a) {
  if (!a.has("--state")) return fail("listen needs --state FILE");
  auto text = readFile(a.get("--state"));
  json st = text ? json::parse(*text, nullptr, false) : json();
  if (!st.is_object() || !st.contains("server") || !st.contains("receive")) return fail("cannot read the state " + a.get("--state"));
  auto s = makeServer(st["server"].get<std::string>(), st.value("trust", json::object()));
  if (!s) return fail(s.error().detail);
  auto priv = auth::base64Decode(st.value("privateKey", ""));
  auto secret = auth::base64Decode(st.value("auth", ""));
  if (!priv || !secret) return fail("the state's keys are not base64url");
  auto key = EcdhKey::fromPrivate(*priv);
  if (!key) return fail(key.error().detail);
  const long limit = a.has("--count") ? std::stol(a.get("--count")) : -1;

  ReactorPtr r = newReactor(realTimeSource(), 0);
  std::list<Call> acks;
  long printed = 0;
  bool streamDone = false;
  int rc = 0;
  auto maybeExit = [&] {
    bool acksDone = true;
    for (auto& c : acks) acksDone = acksDone && c.http.done();
    if (acksDone && (streamDone || (limit >= 0 && printed >= limit))) r->exit();
  };
  std::string pending;  // SSE bytes not yet split into lines
  auto onEvent = [&](const std::string& data) {
    json ev = json::parse(data, nullptr, false);
    if (!ev.is_object()) return;
    if (limit >= 0 && printed >= limit) return;
    json out{{"id", ev.value("id", "")}, {"topic", ev.value("topic", "")}, {"urgency", ev.value("urgency", "")}};
    auto body = auth::base64Decode(ev.value("body", ""));
    auto plain = body ? decryptPushMessage(*body, *key, *secret) : PushResult<Bytes>(pushError(PushErrc::Truncated, "no body"));
    if (plain) out["payload"] = std::string(plain->begin(), plain->end());
    else out["error"] = plain.error().detail;
    std::cout << out.dump() << std::endl;
    ++printed;
    // Acknowledge (RFC 8030 §6.2): even an undecryptable message, which would otherwise come back.
    acks.emplace_back(*r, *s, "DELETE", "/m/" + ev.value("id", ""), std::vector<http::Header>{}, "", Call::OnBody{},
                      [&](Call&) { maybeExit(); });
    acks.back().start();
  };
  Call stream(*r, *s, "GET", st["receive"].get<std::string>(), {{"Accept", "text/event-stream"}}, "",
              [&](std::string_view chunk) {
                pending.append(chunk);
                size_t end;
                while ((end = pending.find("\n\n")) != std::string::npos) {
                  std::string event = pending.substr(0, end);
                  pending.erase(0, end + 2);
                  size_t pos = 0;
                  while (pos < event.size()) {
                    size_t nl = event.find('\n', pos);
                    std::string line = event.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
                    if (line.rfind("data: ", 0) == 0) onEvent(line.substr(6));
                    if (nl == std::string::npos) break;
                    pos = nl + 1;
                  }
                }
                maybeExit();
              },
              [&](Call& c) {
                streamDone = true;
                if (!c.http.error.empty()) {
                  std::cerr << "ugated push: " << c.http.error << "\n";
                  rc = 1;
                } else if (c.http.status != 200) {
                  std::cerr << "ugated push: the push service answered " << c.http.status << "\n";
                  rc = 1;
                }
                maybeExit();
              });
  stream.start();
  r->run();
  return rc;
}

/** post: one push (`encrypted`) or topic publish (plaintext) with VAPID; prints the answer as JSON. */
int post(const Args& a, const Server& s, const auth::PrivateKey& vk, const std::string& path, std::string body,
         bool encrypted) {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto token = signVapidToken(vk, {.aud = s.origin, .exp = now + 12 * 3600, .sub = a.get("--subject")});
  if (!token) return fail(token.error().detail);
  std::vector<http::Header> h{{"TTL", a.get("--ttl", "86400")},
                              {"Content-Type", "application/octet-stream"},
                              {"Authorization", vapidAuthorization(*token, vk.publicKey())}};
  if (encrypted) h.push_back({"Content-Encoding", "aes128gcm"});
  if (a.has("--urgency")) h.push_back({"Urgency", a.get("--urgency")});
  if (encrypted && a.has("--topic")) h.push_back({"Topic", a.get("--topic")});
  Reply c = request(s, "POST", path, std::move(h), std::move(body));
  if (!c.error.empty()) return fail(c.error);
  std::cout << json{{"status", c.status}, {"location", c.location}, {"ttl", c.ttl}}.dump() << "\n";
  if (c.status != 201) return fail("the push service answered " + std::to_string(c.status) + ": " + c.body);
  return 0;
}

int send(const Args& a) {
  if (!a.has("--subscription") || !a.has("--vapid-key") || !a.has("--subject")) {
    return fail("send needs --subscription FILE, --vapid-key FILE and --subject mailto:...");
  }
  auto subText = readFile(a.get("--subscription"));
  json sub = subText ? json::parse(*subText, nullptr, false) : json();
  if (!sub.is_object() || !sub.contains("endpoint") || !sub.contains("keys")) {
    return fail(a.get("--subscription") + " is not a PushSubscription JSON ({\"endpoint\", \"keys\"})");
  }
  const std::string endpoint = sub["endpoint"].get<std::string>();
  auto s = makeServer(endpoint, trustJson(a));
  if (!s) return fail(s.error().detail);
  auto pem = readFile(a.get("--vapid-key"));
  auto vk = pem ? auth::PrivateKey::fromPem(*pem) : Result<auth::PrivateKey>(makeError(Errc::NotFound, "cannot read it"));
  if (!vk) return fail(a.get("--vapid-key") + ": " + vk.error().detail);
  auto p256dh = auth::base64Decode(sub["keys"].value("p256dh", ""));
  auto secret = auth::base64Decode(sub["keys"].value("auth", ""));
  if (!p256dh || !secret) return fail("the subscription's keys are not base64url");
  const std::string message(std::istreambuf_iterator<char>(std::cin), {});
  auto body = encryptPushMessage({reinterpret_cast<const uint8_t*>(message.data()), message.size()}, *p256dh, *secret);
  if (!body) return fail(body.error().detail);
  const std::string path = endpoint.substr(8 + s->host.size());
  return post(a, *s, *vk, path.empty() ? "/" : path, std::string(body->begin(), body->end()), true);
}

/** publish: POST /topic/<node>/<name> with the plaintext and VAPID; the node encrypts per subscriber. */
int publish(const Args& a) {
  if (!a.has("--server") || !a.has("--topic") || !a.has("--vapid-key") || !a.has("--subject")) {
    return fail("publish needs --server URL, --topic NODE/NAME, --vapid-key FILE and --subject mailto:...");
  }
  auto s = makeServer(a.get("--server"), trustJson(a));
  if (!s) return fail(s.error().detail);
  auto pem = readFile(a.get("--vapid-key"));
  auto vk = pem ? auth::PrivateKey::fromPem(*pem) : Result<auth::PrivateKey>(makeError(Errc::NotFound, "cannot read it"));
  if (!vk) return fail(a.get("--vapid-key") + ": " + vk.error().detail);
  return post(a, *s, *vk, "/topic/" + a.get("--topic"), std::string(std::istreambuf_iterator<char>(std::cin), {}), false);
}

}  // namespace

int runPushCommand(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd.empty() || cmd == "--help" || cmd == "-h") {
    std::cout << kUsage;
    return cmd.empty() ? 2 : 0;
  }
  Args a = parseArgs(argc, argv, 2);
  if (!a.error.empty()) return fail(a.error + "\n" + kUsage);
  if (cmd == "vapid-keys") return vapidKeys(a);
  if (cmd == "subscribe") return subscribe(a);
  if (cmd == "listen") return listen(a);
  if (cmd == "send") return send(a);
  if (cmd == "publish") return publish(a);
  return fail("unknown command '" + cmd + "'\n" + kUsage);
}

}  // namespace ugate::webpush

// ugate_push_subscriber: the user-agent and application-server halves a push test needs besides
// curl, on src/webpush's own crypto (push_test.sh; `ugated push` will replace it):
//   keys STATE          a subscription's P-256 key and auth secret: STATE holds the secrets, stdout
//                       gets {"p256dh": ..., "auth": ...} (base64url)
//   decrypt STATE       reads a Server-Sent Events stream on stdin and prints, per `data:` line,
//                       {"id": ..., "plaintext": ...} (or {"id": ..., "error": ...}), flushed at once
//   encrypt P256DH AUTH reads a plaintext on stdin, writes the aes128gcm body on stdout
//   vapid-keys KEYFILE  an application server's VAPID key (PEM in KEYFILE); stdout: the public key
//   vapid KEYFILE AUD [EXP-OFFSET]   the `Authorization: vapid t=..., k=...` value for origin AUD
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "auth/crypto.h"
#include "auth/encoding.h"
#include "webpush/message_crypto.h"
#include "webpush/vapid.h"

namespace {

using namespace ugate;
using namespace ugate::webpush;

std::string b64(std::span<const uint8_t> b) { return auth::base64UrlEncode(b); }

int fail(const std::string& why) {
  std::cerr << "ugate_push_subscriber: " << why << "\n";
  return 1;
}

std::string slurp(std::istream& in) { return {std::istreambuf_iterator<char>(in), {}}; }

int keys(const std::string& state) {
  auto k = generateSubscriptionKeys();
  if (!k) return fail(k.error().detail);
  std::ofstream(state) << b64(k->key.privateKey()) << "\n" << b64(k->auth) << "\n";
  std::cout << nlohmann::json{{"p256dh", b64(k->key.publicKey())}, {"auth", b64(k->auth)}}.dump() << "\n";
  return 0;
}

int decrypt(const std::string& state) {
  std::ifstream f(state);
  std::string privText, authText;
  if (!(f >> privText >> authText)) return fail("cannot read " + state);
  auto priv = auth::base64Decode(privText);
  auto authSecret = auth::base64Decode(authText);
  if (!priv || !authSecret) return fail(state + ": not base64url");
  auto key = EcdhKey::fromPrivate(*priv);
  if (!key) return fail(key.error().detail);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.rfind("data: ", 0) != 0) continue;
    nlohmann::json out;
    auto ev = nlohmann::json::parse(line.substr(6), nullptr, false);
    if (ev.is_discarded() || !ev.is_object()) {
      out["error"] = "bad event";
    } else {
      out["id"] = ev.value("id", "");
      auto body = auth::base64Decode(ev.value("body", ""));
      auto plain = body ? decryptPushMessage(*body, *key, *authSecret) : PushResult<Bytes>(pushError(PushErrc::Truncated, "no body"));
      if (plain) out["plaintext"] = std::string(plain->begin(), plain->end());
      else out["error"] = plain.error().detail;
    }
    std::cout << out.dump() << std::endl;
  }
  return 0;
}

int encrypt(const std::string& p256dh, const std::string& authText) {
  auto pub = auth::base64Decode(p256dh);
  auto secret = auth::base64Decode(authText);
  if (!pub || !secret) return fail("keys are not base64url");
  const std::string plain = slurp(std::cin);
  auto body = encryptPushMessage({reinterpret_cast<const uint8_t*>(plain.data()), plain.size()}, *pub, *secret);
  if (!body) return fail(body.error().detail);
  std::cout.write(reinterpret_cast<const char*>(body->data()), static_cast<std::streamsize>(body->size()));
  return 0;
}

int vapidKeys(const std::string& file) {
  auto k = auth::PrivateKey::generate();
  if (!k) return fail(k.error().detail);
  std::ofstream(file) << k->toPem();
  std::cout << b64(k->publicKey()) << "\n";
  return 0;
}

int vapid(const std::string& file, const std::string& aud, int64_t expOffset) {
  std::ifstream f(file);
  auto k = auth::PrivateKey::fromPem(slurp(f));
  if (!k) return fail(file + ": " + k.error().detail);
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto token = signVapidToken(*k, {.aud = aud, .exp = now + expOffset, .sub = "mailto:test@example.net"});
  if (!token) return fail(token.error().detail);
  std::cout << vapidAuthorization(*token, k->publicKey()) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "keys" && argc == 3) return keys(argv[2]);
  if (cmd == "decrypt" && argc == 3) return decrypt(argv[2]);
  if (cmd == "encrypt" && argc == 4) return encrypt(argv[2], argv[3]);
  if (cmd == "vapid-keys" && argc == 3) return vapidKeys(argv[2]);
  if (cmd == "vapid" && (argc == 4 || argc == 5)) return vapid(argv[2], argv[3], argc == 5 ? std::stoll(argv[4]) : 3600);
  std::cerr << "usage: ugate_push_subscriber keys STATE | decrypt STATE | encrypt P256DH AUTH | vapid-keys KEYFILE |"
               " vapid KEYFILE AUD [EXP-OFFSET]\n";
  return 2;
}

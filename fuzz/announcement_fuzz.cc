// libFuzzer target for the discovery announcement (src/local/announcement.h) and its receiver.
// Random bytes almost never carry a valid signature, so each input is parsed twice: as it is, and
// re-signed: its length field, node ID and public key replaced by a fixed key's and the signature
// recomputed, which lets the fuzzer reach every field. A re-signed input may only fail on its
// structure; whatever parses must re-encode to the same bytes (signature aside). Both go through a
// receiver (rate limit, replay window, table) at a fixed time.
#include <cstddef>
#include <cstdint>
#include <span>

#include "local/announcement.h"
#include "local/neighbour_table.h"

namespace {

using namespace ugate;
using namespace ugate::local;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

const auth::PrivateKey& fixedKey() {
  static const auth::PrivateKey k = [] {
    auto r = auth::PrivateKey::generate();
    check(bool(r));
    return *r;
  }();
  return k;
}

// roundTrips: a parsed announcement encodes back to the same bytes (flag bits other than reply
// are ignored on parse, and ECDSA signatures differ each time).
void roundTrips(const Announcement& a, std::span<const uint8_t> in) {
  auto again = encodeAnnouncement(a, fixedKey());
  check(bool(again));
  check(again->size() == in.size());
  for (size_t i = 0; i + kSignatureLen < in.size(); ++i) {
    if (i == 3) {
      check(((*again)[i] & kFlagReply) == (in[i] & kFlagReply));
    } else if (i < kNodeIdOffset || i >= kNodeIdOffset + auth::kNodeIdLen) {
      if (i < in.size() - kSignatureLen - auth::kPublicKeyLen) check((*again)[i] == in[i]);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  ReceiverParams p;
  p.ownId = "X";
  p.rateBurst = 4;
  Receiver rx(p);
  const MonotonicTime now{std::chrono::seconds(100)};
  const int64_t wall = 1'700'000'000'000;

  Announcement a;
  Reject r = parseAnnouncement(in, a);
  if (r == Reject::None) check(a.nodeId == auth::nodeIdFromPublicKey(a.publicKey));
  (void)rx.receive(in, "10.0.0.1", "eth0", wall, now);

  if (size < kMinLen || size > kMaxLen) return 0;
  auth::Bytes b(data, data + size);
  b[4] = static_cast<uint8_t>(size >> 8);
  b[5] = static_cast<uint8_t>(size);
  const std::string id = fixedKey().nodeId();
  std::copy(id.begin(), id.end(), b.begin() + kNodeIdOffset);
  const auth::Bytes& pub = fixedKey().publicKey();
  std::copy(pub.begin(), pub.end(), b.end() - kSignatureLen - auth::kPublicKeyLen);
  auto sig = fixedKey().signEs256(std::span<const uint8_t>(b).first(size - kSignatureLen));
  check(bool(sig));
  std::copy(sig->begin(), sig->end(), b.end() - kSignatureLen);
  Announcement s;
  r = parseAnnouncement(b, s);
  check(r == Reject::None || r == Reject::BadMagic || r == Reject::BadVersion || r == Reject::BadLength ||
        r == Reject::Malformed);
  if (r == Reject::None) {
    check(s.nodeId == id && s.publicKey == pub && validName(s.name));
    roundTrips(s, b);
  }
  Received got = rx.receive(b, "10.0.0.2", "eth0", wall, now);
  if (r == Reject::None) {
    // Only the stateful checks remain: the receiver agrees with the codec on everything else.
    check(got.reject == Reject::None || got.reject == Reject::TooOld || got.reject == Reject::TooNew);
    check((got.reject == Reject::None) == rx.table().contains(id));
  }
  return 0;
}

// libFuzzer target for the upgrade handover's message decoders (src/core/handover.cc). Contract
// checked: a message either decodes or is refused with a reason; what decodes encodes to a message
// that decodes to the same encoding again (addresses are normalized once), and a session's
// descriptor count is within what the channel carries.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/handover.h"

using namespace ugate::handover;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto check = [](bool ok) {
    if (!ok) __builtin_trap();
  };
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto type = peekType(in);
  if (!type) {
    check(!type.error().detail.empty());
    return 0;
  }
  // stable: encode(decode(wire)) is a fixed point of decode + encode.
  auto stable = [&](const std::string& wire, auto decode) {
    auto again = decode(wire);
    check(again.has_value() && encode(*again) == wire);
  };
  switch (*type) {
    case Type::Hello:
      if (auto m = decodeHello(in)) stable(encode(*m), decodeHello);
      break;
    case Type::Listener:
      if (auto m = decodeListener(in)) stable(encode(*m), decodeListener);
      break;
    case Type::Session:
      if (auto m = decodeSession(in)) {
        check(m->fdCount() >= 2 && m->fdCount() <= 6);
        stable(encode(*m), decodeSession);
      }
      break;
    case Type::Endpoint:
      if (auto m = decodeEndpoint(in)) stable(encode(*m), decodeEndpoint);
      break;
    case Type::DoneAck:
      if (auto m = decodeDoneAck(in)) stable(encode(*m), decodeDoneAck);
      break;
    case Type::ListenersEnd:
    case Type::Listening:
    case Type::Done:
      check(encodeBare(*type) == in);
      break;
  }
  return 0;
}

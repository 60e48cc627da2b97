// Fuzzes the config loader: any input must give a config or a path-qualified error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <ugate/config.h>
#include <ugate/listener.h>
#include <ugate/module.h>

#include "ugated/modules.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ugate::registerBuiltinModules(ugate::modules(), ugate::listenerKinds());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = ugate::parseConfig(text, "fuzz");
  if (r) {
    // A valid config must round-trip through its own dump.
    auto again = ugate::parseConfig((*r)->json, "fuzz-dump");
    if (!again) __builtin_trap();
  } else if (r.error().detail.empty()) {
    __builtin_trap();  // every error explains itself
  }
  return 0;
}

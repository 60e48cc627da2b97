// registerBuiltinModules: the one place front-door modules are wired into the daemon. Each module
// exposes a register function that adds its listener kinds (and their option parsers) to the registry.
#include "ugated/modules.h"

// MODULE INCLUDES (one line per module)

namespace ugate {

void registerBuiltinModules(ListenerKindRegistry& r) {
  (void)r;
  // MODULE REGISTRATIONS (one line per module)
}

}  // namespace ugate

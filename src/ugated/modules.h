#pragma once
#include "core/listener_kind.h"

namespace ugate {
/** registerBuiltinModules adds every built-in module's listener kinds. Call once, before parsing config. */
void registerBuiltinModules(ListenerKindRegistry& r);
}  // namespace ugate

#pragma once
#include <ugate/module.h>

#include <ugate/listener.h>

namespace ugate {
/**
 * registerBuiltinModules adds every built-in module to `m` and its listener kinds to `k`. Call
 * once, before any config is parsed.
 */
void registerBuiltinModules(ModuleRegistry& m, ListenerKindRegistry& k);
}  // namespace ugate

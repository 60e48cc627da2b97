#pragma once
// Config parsing in unit tests: accept or refuse a config text, and table-driven error cases whose
// message is checked exactly (core's sections in tests/unit/core, a module's in its own folder).
#include <ostream>
#include <string>
#include <string_view>

#include <ugate/config.h>

namespace ugate::test {

/** parseOk: the parsed config (a test failure, and null, when it is refused). */
ConfigPtr parseOk(std::string_view json);
/** parseErr: the error detail of a config that must be refused with InvalidArgument. */
std::string parseErr(std::string_view json);

/** ErrCase: a config text and the exact error it must get. */
struct ErrCase {
  const char* what;
  std::string json;
  // message is the exact error detail; a trailing '*' makes it a prefix (for messages that list
  // every known key, which grows as modules land).
  std::string message;
};
inline void PrintTo(const ErrCase& c, std::ostream* os) { *os << c.what; }
/** expectConfigError: c.json is refused with c.message (gtest expectations). */
void expectConfigError(const ErrCase& c);

}  // namespace ugate::test

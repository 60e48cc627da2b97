#pragma once
// W3C Trace Context (`traceparent`, `tracestate`) and W3C Baggage (`baggage`) header checks, for the
// values a stream carries across mesh hops and writes to the access log: taken from a mesh CONNECT
// or from an HTTP CONNECT request. Sans-I/O; the checks allocate nothing: each reads one header
// value and says why it is malformed, or nullptr when it conforms. ugate does not take part in the trace (no span of its own): conforming values pass on
// unchanged, malformed ones are dropped, as the specifications ask of a vendor that cannot parse
// them.
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ugate::http {

/** Limits from the specifications: what a platform must propagate at least, and what we accept. */
inline constexpr size_t kMaxBaggageBytes = 8192;
inline constexpr size_t kMaxBaggageMembers = 180;  // the grammar's bound (1 + 179)
inline constexpr size_t kMaxTracestateMembers = 32;

/**
 * traceparentError: nullptr when `v` is a valid traceparent (Trace Context Level 1, section 3.2):
 * version-format `00-<32 lowercase hex trace-id>-<16 lowercase hex parent-id>-<2 hex flags>`, trace
 * and parent IDs not all zeros; a higher version (not `ff`) may append `-...` after the 55 characters
 * version 00 defines. Otherwise a static string naming the fault.
 */
const char* traceparentError(std::string_view v);

/**
 * tracestateError: nullptr when `v` is a valid tracestate list (section 3.3): at most 32 members
 * `key=value` (simple or `tenant@system` keys, values of printable ASCII without `,` and `=`, not
 * ending in a space), empty members allowed. Otherwise a static string naming the fault.
 */
const char* tracestateError(std::string_view v);

/**
 * baggageError: nullptr when `v` is a valid baggage header (W3C Baggage, section 3.2): list-members
 * `key=value` with optional `;property` parts, keys HTTP tokens, values baggage-octets (printable
 * ASCII without space, `"`, `,`, `;` and `\`), at most 180 members and 8192 bytes. Otherwise a
 * static string naming the fault.
 */
const char* baggageError(std::string_view v);

/** TraceField: a trace-context field kept (name, value), or dropped with the reason in `why`. */
struct TraceField {
  std::string_view name;  // "traceparent", "tracestate" or "baggage" (static)
  std::string value;
  const char* why{nullptr};  // null: kept
};

/**
 * takeTraceContext reads the request's trace context through `field` (the value of a header, with
 * repeated fields already joined by ',' — tracestate and baggage are lists; "" when absent) and
 * returns every field present: valid ones with why == nullptr, malformed ones with the reason. A
 * tracestate without a valid traceparent is dropped (Trace Context 3.3).
 */
std::vector<TraceField> takeTraceContext(const std::function<std::string(std::string_view name)>& field);

}  // namespace ugate::http

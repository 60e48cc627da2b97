#pragma once
// Error values for the data plane. Result<T> has the shape of std::expected<T, Error> so a move to
// C++23 is a rename; IoResult carries a syscall's outcome without exceptions.
#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ugate {

/** Errc: the documented error codes of ugate. Each maps to a short stable reason string. */
enum class Errc : uint8_t {
  Ok = 0,
  InvalidArgument,
  NotFound,
  AlreadyExists,
  ConnectRefused,
  ConnectTimeout,
  HostUnreachable,
  NetworkUnreachable,
  DnsFailure,
  Reset,
  IdleTimeout,
  RouteRejected,
  NoRoute,
  ResourceExhausted,
  Shutdown,
  ProtocolError,
  HandshakeTimeout,
  AuthFailed,
  TooLarge,
  NotSupported,
  LoopDetected,  // a loop: a capture back to ugated itself, a mesh circuit visiting a node twice or over mesh.maxHops
  NotExposed,    // a mesh peer asked for a port of this node that mesh.expose does not open to it
  Io,  // keep last: counters are sized by it
};

/** errcReason returns the stable snake_case reason used in logs, metrics and access log lines. */
std::string_view errcReason(Errc e);
/** errcFromErrno maps a socket errno to the closest Errc. */
Errc errcFromErrno(int err);

/** Error: a code plus a human readable detail. */
struct Error {
  Errc code{Errc::Io};
  std::string detail;
  std::string_view reason() const { return errcReason(code); }
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}                      // NOLINT: implicit like std::expected
  Result(Error e) : v_(std::move(e)) {}                  // NOLINT
  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : err_(std::move(e)), ok_(false) {}   // NOLINT
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool ok_{true};
};

inline Error makeError(Errc c, std::string detail = {}) { return Error{c, std::move(detail)}; }

/** IoResult: outcome of one non-blocking syscall. value is bytes moved (0 with err==0 means EOF). */
struct IoResult {
  int64_t value{0};
  int err{0};
  bool ok() const { return err == 0; }
  bool wouldBlock() const { return err == EAGAIN || err == EWOULDBLOCK; }
  static IoResult fromSyscall(int64_t rc) {
    return rc >= 0 ? IoResult{rc, 0} : IoResult{0, errno};
  }
};

}  // namespace ugate

#include "xds/grpc_status.h"

#include <array>

namespace ugate::xds::grpc {

namespace {

constexpr std::array<std::string_view, kMaxCode + 1> kNames = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string_view codeName(Code c) {
  const auto i = static_cast<size_t>(c);
  return i < kNames.size() ? kNames[i] : std::string_view("UNKNOWN");
}

std::string percentEncode(std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (char ch : message) {
    const auto b = static_cast<uint8_t>(ch);
    if (b >= 0x20 && b <= 0x7e && b != '%') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xf]);
    }
  }
  return out;
}

std::string percentDecode(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%' && i + 2 < encoded.size() && hexValue(encoded[i + 1]) >= 0 &&
        hexValue(encoded[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(encoded[i + 1]) * 16 + hexValue(encoded[i + 2])));
      i += 2;
    } else {
      out.push_back(encoded[i]);
    }
  }
  return out;
}

Headers statusTrailers(const Status& s) {
  Headers h;
  h.emplace_back("grpc-status", std::to_string(static_cast<int>(s.code)));
  if (!s.message.empty()) h.emplace_back("grpc-message", percentEncode(s.message));
  return h;
}

Code parseCode(std::string_view value) {
  if (value.empty() || value.size() > 3) return Code::Unknown;
  int v = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return Code::Unknown;
    v = v * 10 + (c - '0');
  }
  return v <= kMaxCode ? static_cast<Code>(v) : Code::Unknown;
}

Status statusFromTrailers(const Headers& trailers) {
  const std::string* code = nullptr;
  const std::string* message = nullptr;
  for (const auto& [name, value] : trailers) {
    if (name == "grpc-status" && !code) code = &value;
    if (name == "grpc-message" && !message) message = &value;
  }
  if (!code) return {Code::Unknown, "no grpc-status in the trailers"};
  return {parseCode(*code), message ? percentDecode(*message) : std::string()};
}

Code codeFromHttpStatus(int httpStatus) {
  switch (httpStatus) {
    case 400:
      return Code::Internal;
    case 401:
      return Code::Unauthenticated;
    case 403:
      return Code::PermissionDenied;
    case 404:
      return Code::Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code::Unavailable;
    default:
      return Code::Unknown;
  }
}

Code codeFromH2Error(uint32_t h2Error) {
  switch (h2Error) {
    case 0x7:  // REFUSED_STREAM
      return Code::Unavailable;
    case 0x8:  // CANCEL
      return Code::Cancelled;
    case 0xb:  // ENHANCE_YOUR_CALM
      return Code::ResourceExhausted;
    case 0xc:  // INADEQUATE_SECURITY
      return Code::PermissionDenied;
    default:
      return Code::Internal;
  }
}

}  // namespace ugate::xds::grpc

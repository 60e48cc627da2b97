#include "xds/grpc_frame.h"

#include <algorithm>
#include <limits>

namespace ugate::xds::grpc {

namespace {
// kReserveCap: room reserved up front for a message; a larger one grows as its bytes arrive, so a
// bare 5-byte prefix cannot make the decoder allocate the whole limit.
constexpr uint32_t kReserveCap = 64u << 10;
}  // namespace

void appendMessage(std::string& out, std::string_view payload) {
  const auto n = static_cast<uint32_t>(payload.size());
  out.reserve(out.size() + kPrefixLen + payload.size());
  out.push_back('\0');
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(payload);
}

std::string encodeMessage(std::string_view payload) {
  std::string out;
  appendMessage(out, payload);
  return out;
}

MessageDecoder::Outcome MessageDecoder::fail(Code code, std::string message) {
  status_ = {code, std::move(message)};
  body_.clear();
  body_.shrink_to_fit();
  return Outcome::Failed;
}

MessageDecoder::Outcome MessageDecoder::decode(std::span<const uint8_t>& in, std::string& message) {
  if (!status_.ok()) return Outcome::Failed;
  while (true) {
    if (!inBody_) {
      const size_t take = std::min(kPrefixLen - prefixHave_, in.size());
      std::copy_n(in.begin(), take, prefix_ + prefixHave_);
      prefixHave_ += take;
      in = in.subspan(take);
      if (prefixHave_ < kPrefixLen) return Outcome::NeedMore;
      const uint32_t len = (uint32_t{prefix_[1]} << 24) | (uint32_t{prefix_[2]} << 16) |
                           (uint32_t{prefix_[3]} << 8) | uint32_t{prefix_[4]};
      if (prefix_[0] == 1) {
        return fail(Code::Unimplemented,
                    "compressed message, but only the identity encoding is accepted");
      }
      if (prefix_[0] != 0) {
        return fail(Code::Internal, "bad compressed flag " + std::to_string(prefix_[0]));
      }
      if (len > max_) {
        return fail(Code::ResourceExhausted, "message of " + std::to_string(len) +
                                                 " bytes exceeds the limit of " +
                                                 std::to_string(max_));
      }
      prefixHave_ = 0;
      inBody_ = true;
      bodyLen_ = len;
      body_.clear();
      body_.reserve(std::min<uint32_t>(len, kReserveCap));
    }
    const size_t take = std::min<size_t>(bodyLen_ - body_.size(), in.size());
    body_.append(reinterpret_cast<const char*>(in.data()), take);
    in = in.subspan(take);
    if (body_.size() < bodyLen_) return Outcome::NeedMore;
    inBody_ = false;
    message.swap(body_);
    body_.clear();
    return Outcome::Message;
  }
}

Status MessageDecoder::finish() const {
  if (!status_.ok()) return status_;
  if (!idle()) return {Code::Internal, "stream ended inside a message"};
  return {};
}

Result<std::chrono::nanoseconds> parseTimeout(std::string_view value) {
  using std::chrono::nanoseconds;
  if (value.size() < 2) return makeError(Errc::InvalidArgument, "grpc-timeout: too short");
  const std::string_view digits = value.substr(0, value.size() - 1);
  if (digits.size() > 8)
    return makeError(Errc::InvalidArgument, "grpc-timeout: more than 8 digits");
  int64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9')
      return makeError(Errc::InvalidArgument, "grpc-timeout: not a decimal number");
    n = n * 10 + (c - '0');
  }
  int64_t nsPerUnit = 0;
  switch (value.back()) {
    case 'H':
      nsPerUnit = 3'600'000'000'000;
      break;
    case 'M':
      nsPerUnit = 60'000'000'000;
      break;
    case 'S':
      nsPerUnit = 1'000'000'000;
      break;
    case 'm':
      nsPerUnit = 1'000'000;
      break;
    case 'u':
      nsPerUnit = 1'000;
      break;
    case 'n':
      nsPerUnit = 1;
      break;
    default:
      return makeError(Errc::InvalidArgument, "grpc-timeout: unknown unit");
  }
  constexpr int64_t kMax = std::numeric_limits<nanoseconds::rep>::max();
  if (n > kMax / nsPerUnit) return nanoseconds(kMax);
  return nanoseconds(n * nsPerUnit);
}

std::string encodeTimeout(std::chrono::nanoseconds t) {
  struct Unit {
    int64_t ns;
    char name;
  };
  static constexpr Unit kUnits[] = {{1, 'n'},
                                    {1'000, 'u'},
                                    {1'000'000, 'm'},
                                    {1'000'000'000, 'S'},
                                    {60'000'000'000, 'M'},
                                    {3'600'000'000'000, 'H'}};
  constexpr int64_t kMaxValue = 99'999'999;
  const int64_t ns = std::max<int64_t>(t.count(), 0);
  for (const Unit& u : kUnits) {
    const int64_t v = ns / u.ns + (ns % u.ns != 0 ? 1 : 0);
    if (v <= kMaxValue) return std::to_string(v) + u.name;
  }
  return std::to_string(kMaxValue) + 'H';
}

bool isGrpcContentType(std::string_view contentType) {
  constexpr std::string_view kType = "application/grpc";
  if (contentType.size() < kType.size()) return false;
  for (size_t i = 0; i < kType.size(); ++i) {
    char c = contentType[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kType[i]) return false;
  }
  if (contentType.size() == kType.size()) return true;
  const char next = contentType[kType.size()];
  return next == '+' || next == ';';
}

bool acceptsEncoding(std::string_view grpcEncoding) {
  return grpcEncoding.empty() || grpcEncoding == "identity";
}

}  // namespace ugate::xds::grpc

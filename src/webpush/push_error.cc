#include "webpush/push_error.h"

namespace ugate::webpush {

std::string_view pushErrcReason(PushErrc c) {
  switch (c) {
    case PushErrc::InvalidArgument: return "invalid_argument";
    case PushErrc::Truncated: return "truncated";
    case PushErrc::RecordSizeTooSmall: return "record_size_too_small";
    case PushErrc::TooLarge: return "too_large";
    case PushErrc::DecryptFailed: return "decrypt_failed";
    case PushErrc::BadPadding: return "bad_padding";
    case PushErrc::BadDelimiter: return "bad_delimiter";
    case PushErrc::BadKeyId: return "bad_keyid";
    case PushErrc::MultipleRecords: return "multiple_records";
    case PushErrc::BadKey: return "bad_key";
    case PushErrc::MalformedHeader: return "malformed_header";
    case PushErrc::MissingToken: return "missing_token";
    case PushErrc::MissingKey: return "missing_key";
    case PushErrc::MalformedToken: return "malformed_token";
    case PushErrc::BadSignature: return "bad_signature";
    case PushErrc::WrongAudience: return "wrong_audience";
    case PushErrc::MissingExpiry: return "missing_expiry";
    case PushErrc::Expired: return "expired";
    case PushErrc::ExpiryTooFar: return "expiry_too_far";
    case PushErrc::WrongKey: return "wrong_key";
    case PushErrc::Internal: return "internal";
  }
  return "unknown";
}

}  // namespace ugate::webpush

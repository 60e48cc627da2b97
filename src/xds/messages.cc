#include "xds/messages.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <limits>

namespace ugate::xds {

namespace {

// protobufLog: libprotobuf's own messages (e.g. "String field contains invalid UTF-8" on every
// such parse) would go to stderr once per bad message a peer sends; they go to the debug log
// instead. parseMessage reports the failure to its caller anyway.
void protobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  if (level >= google::protobuf::LOGLEVEL_FATAL) {
    spdlog::critical("protobuf {}:{}: {}", file, line, message);
  } else {
    spdlog::debug("protobuf {}:{}: {}", file, line, message);
  }
}

}  // namespace

void routeProtobufLogs() {
  static const bool once = [] {
    google::protobuf::SetLogHandler(&protobufLog);
    return true;
  }();
  (void)once;
}

bool parseMessage(std::string_view bytes, google::protobuf::MessageLite& out) {
  routeProtobufLogs();
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) return false;
  return out.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

std::string serializeDeterministic(const google::protobuf::MessageLite& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream sink(&out);
    google::protobuf::io::CodedOutputStream coded(&sink);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

}  // namespace ugate::xds

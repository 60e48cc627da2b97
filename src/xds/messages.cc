#include "xds/messages.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <limits>

namespace ugate::xds {

bool parseMessage(std::string_view bytes, google::protobuf::MessageLite& out) {
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

#include <ugate/time.h>

namespace ugate {
namespace {
class RealTimeSource final : public TimeSource {
 public:
  MonotonicTime monotonicTime() override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point systemTime() override {
    return std::chrono::system_clock::now();
  }
};
}  // namespace

TimeSource& realTimeSource() {
  static RealTimeSource ts;
  return ts;
}
}  // namespace ugate

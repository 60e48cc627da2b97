// MessageBox (ugate/message_box.h): immutable snapshots, one writer at a time.
#include <ugate/message_box.h>

#include <algorithm>
#include <tuple>

namespace ugate {

namespace {
bool before(const BoxedMessage& a, const BoxedMessage& b) { return std::tie(a.recipient, a.id) < std::tie(b.recipient, b.id); }
bool alive(const BoxedMessage& m, int64_t now) { return m.createdUnixMs + int64_t{m.ttlSeconds} * 1000 >= now; }
}  // namespace

MessageBox::MessageBox() : snap_(std::make_shared<const std::vector<BoxedMessage>>()) {}

void MessageBox::store(std::vector<BoxedMessage> next) {
  std::sort(next.begin(), next.end(), before);
  snap_.store(std::make_shared<const std::vector<BoxedMessage>>(std::move(next)), std::memory_order_release);
}

void MessageBox::post(BoxedMessage m) {
  std::lock_guard<std::mutex> l(writeMu_);
  std::vector<BoxedMessage> next = *snap_.load(std::memory_order_acquire);
  std::erase_if(next, [&](const BoxedMessage& x) { return x.recipient == m.recipient && x.id == m.id; });
  if (next.size() >= kMaxMessages) {  // the oldest goes
    auto oldest = std::min_element(next.begin(), next.end(), [](const BoxedMessage& a, const BoxedMessage& b) {
      return a.createdUnixMs < b.createdUnixMs;
    });
    next.erase(oldest);
  }
  next.push_back(std::move(m));
  store(std::move(next));
}

void MessageBox::remove(std::string_view recipient, std::string_view id) {
  std::lock_guard<std::mutex> l(writeMu_);
  std::vector<BoxedMessage> next = *snap_.load(std::memory_order_acquire);
  if (std::erase_if(next, [&](const BoxedMessage& x) { return x.recipient == recipient && x.id == id; })) {
    store(std::move(next));
  }
}

std::vector<BoxedMessage> MessageBox::list(int64_t nowUnixMs) {
  auto cur = snap_.load(std::memory_order_acquire);
  if (std::all_of(cur->begin(), cur->end(), [&](const BoxedMessage& m) { return alive(m, nowUnixMs); })) return *cur;
  std::lock_guard<std::mutex> l(writeMu_);
  std::vector<BoxedMessage> next = *snap_.load(std::memory_order_acquire);
  std::erase_if(next, [&](const BoxedMessage& m) { return !alive(m, nowUnixMs); });
  store(next);
  return next;
}

MessageBox& messageBox() {
  static MessageBox box;
  return box;
}

}  // namespace ugate

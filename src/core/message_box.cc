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
  std::unique_lock<std::mutex> l(writeMu_);
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
  l.unlock();
  changed();
}

void MessageBox::changed() {
  std::function<void()> hook;
  {
    std::lock_guard<std::mutex> h(hookMu_);
    hook = onChange_;
  }
  if (hook) hook();
}

size_t MessageBox::removeIf(const std::function<bool(const BoxedMessage&)>& drop) {
  std::unique_lock<std::mutex> l(writeMu_);
  std::vector<BoxedMessage> next = *snap_.load(std::memory_order_acquire);
  const size_t n = std::erase_if(next, drop);
  if (n == 0) return 0;
  store(std::move(next));
  l.unlock();
  changed();
  return n;
}

void MessageBox::setOnChange(std::function<void()> fn) {
  std::lock_guard<std::mutex> h(hookMu_);
  onChange_ = std::move(fn);
}

void MessageBox::setInbox(InboxHandler h) {
  std::lock_guard<std::mutex> l(hookMu_);
  inbox_ = std::move(h);
}

bool MessageBox::deliver(std::vector<BoxedMessage> msgs) {
  InboxHandler h;
  {
    std::lock_guard<std::mutex> l(hookMu_);
    h = inbox_;
  }
  if (!h) return false;
  if (!msgs.empty()) h(std::move(msgs));
  return true;
}

void MessageBox::setReadTopics(std::vector<std::string> topics) {
  std::lock_guard<std::mutex> l(hookMu_);
  readTopics_ = std::move(topics);
}

bool MessageBox::readsTopic(std::string_view topic) const {
  std::lock_guard<std::mutex> l(hookMu_);
  return std::find(readTopics_.begin(), readTopics_.end(), topic) != readTopics_.end();
}

void MessageBox::remove(std::string_view recipient, std::string_view id) {
  removeIf([&](const BoxedMessage& x) { return x.recipient == recipient && x.id == id; });
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

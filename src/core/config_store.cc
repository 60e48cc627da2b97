// Config store (ugate/config_store.h): the file and memory sources and the process-wide record.
#include <ugate/config_store.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include <ugate/json_writer.h>

namespace ugate {

std::string contentVersion(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {

constexpr size_t kMaxDocument = 16u << 20;  // as loadConfigFile

/**
 * FileConfigSource: inotify on the file's directory, so an editor's write-and-rename, a `cp` over
 * it and a Kubernetes ConfigMap's `..data` symlink swap are all seen (a watch on the file itself
 * would follow the old inode). Events restart the debounce timer; when it fires the file is read
 * and compared with the last content read, so a touch or a rewrite of the same bytes applies nothing.
 */
class FileConfigSource final : public ConfigSource, private IoWatcher {
 public:
  explicit FileConfigSource(std::string path) : path_(std::move(path)) {
    const auto slash = path_.rfind('/');
    dir_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
    base_ = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  }
  ~FileConfigSource() override { stop(); }

  std::string_view kind() const override { return "file"; }
  std::string location() const override { return path_; }
  bool watching() const override { return fd_ >= 0; }
  uint64_t unchangedEvents() const override { return unchanged_; }

  Result<std::string> read() override {
    auto text = readFile();
    if (text) lastRead_ = contentVersion(*text);
    return text;
  }

  Result<void> watch(Reactor& r, Duration debounce, std::function<void()> onChange) override {
    if (debounce.count() <= 0) {
      stop();
      return {};
    }
    debounce_ = debounce;
    onChange_ = std::move(onChange);
    if (fd_ >= 0 && reactor_ == &r) return {};
    stop();
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) return makeError(errcFromErrno(errno), std::string("inotify_init1: ") + strerror(errno));
    if (inotify_add_watch(fd_, dir_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB) < 0) {
      const int e = errno;
      close(fd_);
      fd_ = -1;
      return makeError(errcFromErrno(e), "watching " + dir_ + ": " + strerror(e));
    }
    reactor_ = &r;
    if (!r.addFd(fd_, this, EPOLLIN)) {
      close(fd_);
      fd_ = -1;
      reactor_ = nullptr;
      return makeError(Errc::NotSupported, "watching " + dir_ + ": cannot register the inotify descriptor");
    }
    timer_ = r.createTimer([this] { settled(); });
    return {};
  }

 private:
  Result<std::string> readFile() const {
    std::ifstream f(path_, std::ios::binary);
    if (!f) return makeError(Errc::NotFound, path_ + ": cannot open: " + strerror(errno));
    std::stringstream ss;
    ss << f.rdbuf();
    if (ss.str().size() > kMaxDocument) return makeError(Errc::InvalidArgument, path_ + ": larger than 16 MiB");
    return ss.str();
  }

  void stop() {
    timer_.reset();
    if (fd_ >= 0) {
      if (reactor_) reactor_->removeFd(fd_, this);
      close(fd_);
    }
    fd_ = -1;
    reactor_ = nullptr;
  }

  void onIoEvent(uint32_t) override {
    alignas(inotify_event) char buf[4096];
    bool ours = false;
    for (;;) {  // edge-triggered: drain it
      const ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t off = 0; off + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        const std::string_view name = ev->len ? std::string_view(ev->name) : std::string_view();
        // The file itself, or a ConfigMap-style "..data" symlink swap behind it.
        if (name == base_ || name == "..data" || (ev->mask & IN_Q_OVERFLOW)) ours = true;
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      }
    }
    if (ours && timer_) timer_->enable(debounce_);
  }

  void settled() {
    auto text = readFile();
    if (!text) {
      // Removed or unreadable for a moment (a rename in progress): the next event retries.
      spdlog::warn("config: {} changed but cannot be read now: {}", path_, text.error().detail);
      return;
    }
    if (contentVersion(*text) == lastRead_) {
      ++unchanged_;
      SPDLOG_DEBUG("config: {} touched, content unchanged", path_);
      return;
    }
    if (onChange_) onChange_();
  }

  std::string path_, dir_, base_;
  std::string lastRead_;
  Reactor* reactor_{nullptr};
  int fd_{-1};
  TimerPtr timer_;
  Duration debounce_{250};
  std::function<void()> onChange_;
  uint64_t unchanged_{0};
};

}  // namespace

ConfigSourcePtr fileConfigSource(std::string path) { return std::make_unique<FileConfigSource>(std::move(path)); }

Result<std::string> MemoryConfigSource::read() {
  lastRead_ = contentVersion(text_);
  return text_;
}

Result<void> MemoryConfigSource::watch(Reactor& r, Duration debounce, std::function<void()> onChange) {
  if (debounce.count() <= 0) {
    reactor_ = nullptr;
    onChange_ = nullptr;
    return {};
  }
  reactor_ = &r;
  onChange_ = std::move(onChange);
  return {};
}

void MemoryConfigSource::set(std::string text) {
  text_ = std::move(text);
  if (reactor_ && onChange_ && contentVersion(text_) != lastRead_) reactor_->post([cb = onChange_] { cb(); });
}

void ConfigStore::publish(SourceView v) {
  if (v.updatedUnixMs == 0) {
    v.updatedUnixMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                          realTimeSource().systemTime().time_since_epoch())
                          .count();
  }
  std::lock_guard<std::mutex> l(mu_);
  auto it = std::find_if(sources_.begin(), sources_.end(), [&](const SourceView& s) { return s.source == v.source; });
  if (it == sources_.end()) {
    sources_.push_back(std::move(v));
  } else {
    *it = std::move(v);
  }
}

void ConfigStore::withdraw(std::string_view source) {
  std::lock_guard<std::mutex> l(mu_);
  std::erase_if(sources_, [&](const SourceView& s) { return s.source == source; });
}

std::vector<SourceView> ConfigStore::list() const {
  std::lock_guard<std::mutex> l(mu_);
  return sources_;
}

std::string ConfigStore::renderJson(std::string_view indent) const {
  const auto all = list();
  std::string o = "[";
  const std::string in(indent);
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& s = all[i];
    o += (i ? ",\n" : "\n") + in + "  {";
    JsonFields(o, false, ", ", ": ")
        .str("source", s.source)
        .str("location", s.location)
        .str("version", s.version)
        .num("updated", s.updatedUnixMs);
    o += ", \"resources\": [";
    for (size_t k = 0; k < s.resources.size(); ++k) {
      const auto& r = s.resources[k];
      o += (k ? ",\n" : "\n") + in + "    {";
      JsonFields(o, false, ", ", ": ").str("type", r.type).str("name", r.name).str("version", r.version);
      o += "}";
    }
    o += s.resources.empty() ? "]}" : "\n" + in + "  ]}";
  }
  o += all.empty() ? "]" : "\n" + in + "]";
  return o;
}

ConfigStore& configStore() {
  static ConfigStore store;
  return store;
}

}  // namespace ugate

#pragma once
// Config store: where ugated's configuration comes from, and which source supplied what.
//
// The config document (listeners, routes, clusters, sections) comes from one ConfigSource: a file
// (`--config PATH`, optionally inotify-watched: an edit is applied exactly like SIGHUP) or memory
// (the embedded default, or a document set in-process). Run-time sources add resources beside it
// without a new document: the xds module's ADS client supplies clusters (CDS + EDS) through
// ClusterUpdater and publishes them here under source "xds". The process-wide ConfigStore records
// what each source supplied, with versions, for /config_dump; publishers replace their whole set at
// once (a mutex serialises writers; readers copy the current snapshot).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/reactor.h>
#include <ugate/result.h>
#include <ugate/time.h>

namespace ugate {

/** StoredResource: one resource a source supplied ("listener", "route", "cluster", "section", ...). */
struct StoredResource {
  std::string type;
  std::string name;
  std::string version;
  bool operator==(const StoredResource&) const = default;
};

/** SourceView: what one source supplied, as last published. */
struct SourceView {
  std::string source;    // "file", "memory", "xds"
  std::string location;  // the file's path, "<default>", the control plane's address
  std::string version;   // the source's version as a whole ("" when it has none)
  std::vector<StoredResource> resources;
  int64_t updatedUnixMs{0};  // when it was published (0: set by publish)
};

/** contentVersion: a stable short version of bytes (FNV-1a 64, 16 hex digits). */
std::string contentVersion(std::string_view bytes);

/**
 * ConfigSource: a backend that supplies the config document. read() is called on the main thread
 * (startup, SIGHUP, a change it reported); watch() reports changes on the reactor given.
 */
class ConfigSource {
 public:
  virtual ~ConfigSource() = default;
  /** kind: "file" or "memory". */
  virtual std::string_view kind() const = 0;
  /** location: the path, or the name a memory source was given. */
  virtual std::string location() const = 0;
  /** read: the document now (and remembers its version as the last one seen). */
  virtual Result<std::string> read() = 0;
  /**
   * watch (re)starts watching: onChange runs on r's thread once the document's content differs
   * from the last one read, `debounce` after the last change event (so an editor's several writes
   * are one change). A debounce of 0 stops watching. A source that cannot change ignores it.
   */
  virtual Result<void> watch(Reactor& r, Duration debounce, std::function<void()> onChange) = 0;
  /** watching: a watch is active. */
  virtual bool watching() const = 0;
  /** unchangedEvents: change events whose content turned out the same as the last read (not applied). */
  virtual uint64_t unchangedEvents() const { return 0; }
};
using ConfigSourcePtr = std::unique_ptr<ConfigSource>;

/** fileConfigSource: the document at path; watch() uses inotify on its directory (renames count). */
ConfigSourcePtr fileConfigSource(std::string path);

/** MemoryConfigSource: a document held in memory; set() replaces it and reports a change. */
class MemoryConfigSource final : public ConfigSource {
 public:
  MemoryConfigSource(std::string name, std::string text) : name_(std::move(name)), text_(std::move(text)) {}
  std::string_view kind() const override { return "memory"; }
  std::string location() const override { return name_; }
  Result<std::string> read() override;
  Result<void> watch(Reactor& r, Duration debounce, std::function<void()> onChange) override;
  bool watching() const override { return reactor_ != nullptr; }
  /** set replaces the document (call on the watching reactor's thread); a watcher is told. */
  void set(std::string text);

 private:
  std::string name_;
  std::string text_;
  std::string lastRead_;
  Reactor* reactor_{nullptr};
  std::function<void()> onChange_;
};

/** ConfigStore: what every source supplied. Thread-safe. */
class ConfigStore {
 public:
  /** publish replaces what v.source published before (updatedUnixMs is set when 0). */
  void publish(SourceView v);
  /** withdraw forgets a source. */
  void withdraw(std::string_view source);
  /** list: every source, in the order they first published. */
  std::vector<SourceView> list() const;
  /**
   * renderJson: a JSON array, one object per source: source, location, version, updated (Unix ms),
   * resources [{type, name, version}]. `indent` prefixes every line after the first.
   */
  std::string renderJson(std::string_view indent = "") const;

 private:
  mutable std::mutex mu_;
  std::vector<SourceView> sources_;
};

/** configStore: the process-wide store. */
ConfigStore& configStore();

}  // namespace ugate

// The config store (ugate/config_store.h): versions, the record of sources, the file source's
// watch (a real reactor and inotify), the memory source, and what parseConfig gives the store.
#include <ugate/config_store.h>

#include <stdio.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <ugate/config.h>

#include "test_common/config_cases.h"
#include "test_common/test_util.h"

namespace ugate {
namespace {

TEST(ConfigStoreTest, ContentVersionIsFnv1a64) {
  // The FNV-1a 64 reference values (offset basis for "", then "a" and "foobar").
  EXPECT_EQ(contentVersion(""), "cbf29ce484222325");
  EXPECT_EQ(contentVersion("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(contentVersion("foobar"), "85944171f73967e8");
}

TEST(ConfigStoreTest, PublishReplacesASourceAndWithdrawForgetsIt) {
  ConfigStore s;
  s.publish({"file", "/etc/ugated.json", "v1", {{"listener", "in", "a"}}, 5});
  s.publish({"xds", "127.0.0.1:15010", "cds 1, eds 1", {{"cluster", "svc", "cds 1, eds 1"}}, 6});
  s.publish({"file", "/etc/ugated.json", "v2", {{"listener", "in", "b"}, {"route", "routes[0]", "c"}}, 7});
  auto all = s.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].source, "file");  // keeps its place
  EXPECT_EQ(all[0].version, "v2");
  ASSERT_EQ(all[0].resources.size(), 2u);
  EXPECT_EQ(all[0].resources[1], (StoredResource{"route", "routes[0]", "c"}));
  EXPECT_EQ(all[1].source, "xds");
  EXPECT_EQ(s.renderJson(),
            "[\n"
            R"(  {"source": "file", "location": "/etc/ugated.json", "version": "v2", "updated": 7, "resources": [)" "\n"
            R"(    {"type": "listener", "name": "in", "version": "b"},)" "\n"
            R"(    {"type": "route", "name": "routes[0]", "version": "c"})" "\n"
            "  ]},\n"
            R"(  {"source": "xds", "location": "127.0.0.1:15010", "version": "cds 1, eds 1", "updated": 6, "resources": [)" "\n"
            R"(    {"type": "cluster", "name": "svc", "version": "cds 1, eds 1"})" "\n"
            "  ]}\n"
            "]");
  s.withdraw("xds");
  ASSERT_EQ(s.list().size(), 1u);
  s.withdraw("file");
  EXPECT_EQ(s.renderJson(), "[]");
  s.publish({"memory", "<default>", "v", {}, 0});
  EXPECT_GT(s.list()[0].updatedUnixMs, 0);  // set by publish
}

TEST(ConfigStoreTest, ParseConfigListsEachElementWithAVersion) {
  auto c = test::parseOk(R"({"admin": {"address": "127.0.0.1:15000"},
    "listeners": [{"name": "in", "kind": "tcp", "address": "127.0.0.1:7000", "to": "up.internal:80"}],
    "routes": [{"to": "reject"}, {"name": "r2", "to": "reject"}]})");
  ASSERT_EQ(c->resources.size(), 4u);
  EXPECT_EQ(c->resources[0].type, "section");
  EXPECT_EQ(c->resources[0].name, "admin");
  EXPECT_EQ(c->resources[1].type, "listener");
  EXPECT_EQ(c->resources[1].name, "in");
  EXPECT_EQ(c->resources[2].name, "routes[0]");
  EXPECT_EQ(c->resources[3].name, "r2");
  EXPECT_EQ(c->resources[3].type, "route");
  // A change of one element changes its version only.
  auto d = test::parseOk(R"({"admin": {"address": "127.0.0.1:15000"},
    "listeners": [{"name": "in", "kind": "tcp", "address": "127.0.0.1:7001", "to": "up.internal:80"}],
    "routes": [{"to": "reject"}, {"name": "r2", "to": "reject"}]})");
  EXPECT_EQ(c->resources[0].version, d->resources[0].version);
  EXPECT_NE(c->resources[1].version, d->resources[1].version);
  EXPECT_EQ(c->resources[2].version, d->resources[2].version);
}

TEST(ConfigStoreTest, DumpOnlyKeysAreIgnoredOnLoad) {
  // What /config_dump adds beside the config is not config: a dump loads back.
  auto c = test::parseOk(R"({"routes": [{"to": "reject"}],
    "configSources": [{"source": "file", "resources": []}],
    "dynamicClusters": [{"name": "svc", "source": "xds", "version": "cds 1, eds 1", "endpoints": 1}]})");
  EXPECT_EQ(c->json.find("configSources"), std::string::npos) << c->json;
  EXPECT_EQ(c->json.find("dynamicClusters"), std::string::npos) << c->json;
  ASSERT_EQ(c->resources.size(), 1u);
  EXPECT_EQ(c->resources[0].name, "routes[0]");
}

TEST(ConfigStoreTest, ConfigWatchSection) {
  EXPECT_FALSE(test::parseOk("{}")->watch.enabled);
  auto on = test::parseOk(R"({"configWatch": {}})");
  EXPECT_TRUE(on.get()->watch.enabled);
  EXPECT_EQ(on->watch.debounce, Duration(250));
  auto off = test::parseOk(R"({"configWatch": {"enabled": false, "debounce": "1s"}})");
  EXPECT_FALSE(off->watch.enabled);
  EXPECT_EQ(off->watch.debounce, Duration(1000));
  test::expectConfigError({"debounce", R"({"configWatch": {"debounce": "1ms"}})",
                           "configWatch.debounce: must be between 10ms and 60s"});
  test::expectConfigError({"key", R"({"configWatch": {"delay": "1s"}})", "configWatch.delay: unknown key*"});
}

/** onReactor runs fn on r's thread and waits for it. */
template <class F>
auto onReactor(Reactor& r, F fn) {
  std::promise<decltype(fn())> p;
  r.post([&] { p.set_value(fn()); });
  return p.get_future().get();
}

TEST(ConfigStoreTest, FileSourceReportsChangedContentOnly) {
  test::TempDir dir;
  const std::string path = dir.write("ugated.json", "one");
  ConfigSourcePtr src = fileConfigSource(path);
  EXPECT_EQ(src->kind(), "file");
  EXPECT_EQ(src->location(), path);
  ASSERT_EQ(*src->read(), "one");
  ReactorPtr r = newReactor(realTimeSource(), 0);
  std::thread loop([&] { r->run(); });
  std::atomic<int> changes{0};
  auto ok = onReactor(*r, [&] { return src->watch(*r, Duration(20), [&] { ++changes; }).has_value(); });
  ASSERT_TRUE(ok);
  EXPECT_TRUE(src->watching());

  dir.write("ugated.json", "one");  // the same bytes again: seen, not reported
  EXPECT_TRUE(test::waitFor([&] { return src->unchangedEvents() == 1; }));
  EXPECT_EQ(changes.load(), 0);
  dir.write("other.json", "x");  // another file of the directory: not ours
  dir.write("ugated.json", "two");
  EXPECT_TRUE(test::waitFor([&] { return changes.load() == 1; }));
  // Not reported again until read: the daemon reads on each change.
  ASSERT_EQ(*src->read(), "two");
  // A rename over it (an editor's save) is a change.
  const std::string tmp = dir.write("ugated.json.swp", "three");
  ASSERT_EQ(::rename(tmp.c_str(), path.c_str()), 0);
  EXPECT_TRUE(test::waitFor([&] { return changes.load() == 2; }));
  EXPECT_EQ(src->unchangedEvents(), 1u);

  onReactor(*r, [&] { return src->watch(*r, Duration(0), nullptr).has_value(); });  // stops
  EXPECT_FALSE(src->watching());
  onReactor(*r, [&] {
    src.reset();
    return true;
  });
  r->exit();
  loop.join();
}

TEST(ConfigStoreTest, FileSourceOfAMissingFile) {
  ConfigSourcePtr src = fileConfigSource("/nonexistent-dir-ugate/ugated.json");
  auto t = src->read();
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().detail.find("cannot open"), std::string::npos);
  ReactorPtr r = newReactor(realTimeSource(), 0);
  auto w = src->watch(*r, Duration(20), [] {});
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().detail.find("watching /nonexistent-dir-ugate"), std::string::npos) << w.error().detail;
  EXPECT_FALSE(src->watching());
}

TEST(ConfigStoreTest, MemorySourceReportsSet) {
  MemoryConfigSource m("<default>", "{}");
  EXPECT_EQ(m.kind(), "memory");
  EXPECT_EQ(*m.read(), "{}");
  ReactorPtr r = newReactor(realTimeSource(), 0);
  int changes = 0;
  ASSERT_TRUE(m.watch(*r, Duration(1), [&] { ++changes; }));
  m.set("{}");  // same content: nothing
  m.set(R"({"routes": []})");
  r->post([&] { r->exit(); });
  r->run();
  EXPECT_EQ(changes, 1);
  EXPECT_EQ(*m.read(), R"({"routes": []})");
}

}  // namespace
}  // namespace ugate

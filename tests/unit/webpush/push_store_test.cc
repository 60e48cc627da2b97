// PushStore: the durable store of the push service — operations queued from any thread, completed
// after their transaction committed; group commit; topic replacement; expiry; reopening; and a
// corrupt or foreign file refused at open with its name and the cause.
#include "webpush/push_store.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "test_common/test_util.h"

namespace ugate::webpush {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

// wait runs one asynchronous store call and returns its result (the completion runs on the store
// thread; the test thread waits for it).
template <typename T, typename F>
Result<T> wait(F&& call) {
  std::promise<Result<T>> p;
  auto f = p.get_future();
  call([&p](Result<T> r) { p.set_value(std::move(r)); });
  return f.get();
}

Subscription sub(const std::string& id) {
  Subscription s;
  s.id = id;
  s.token = "tok-" + id;
  s.createdMs = s.usedMs = kNow;
  return s;
}

StoredMessage msg(const std::string& id, const std::string& subId, const std::string& topic = "",
                  Urgency u = Urgency::Normal, int64_t ttl = 60) {
  StoredMessage m;
  m.id = id;
  m.subscription = subId;
  m.topic = topic;
  m.urgency = u;
  m.ttlSeconds = ttl;
  m.receivedMs = kNow;
  m.expiresMs = kNow + ttl * 1000;
  m.encoding = "aes128gcm";
  m.body = std::string("\x00\x01\xff", 3) + id;  // binary bodies round-trip
  return m;
}

class PushStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<PushStore> open(SyncMode mode = SyncMode::Full) {
    auto s = PushStore::open(dir_.path() + "/push.db", mode);
    EXPECT_TRUE(s) << (s ? "" : s.error().detail);
    return s ? std::move(*s) : nullptr;
  }
  std::vector<StoredMessage> pending(PushStore& s, const std::string& subId, int64_t after = 0,
                                     Urgency min = Urgency::VeryLow, int64_t now = kNow) {
    auto r = wait<std::vector<StoredMessage>>(
        [&](auto done) { s.pending(subId, after, now, min, 100, std::move(done)); });
    EXPECT_TRUE(r);
    return r ? *r : std::vector<StoredMessage>{};
  }
  test::TempDir dir_;
};

TEST_F(PushStoreTest, TopicMailboxCopiesAreTakenOncePerUpstreamSequence) {
  // push_xds_feed.h: a copy of a topic mailbox's envelope carries the gateway's sequence; a
  // subscription takes each sequence once, also after the copy was acknowledged (deleted) and
  // across reopening, and in any order (two workers at the gateway post in either order);
  // subscriptionIds(topic) finds the bound ones.
  {
    auto s = open();
    ASSERT_TRUE(s);
    Subscription a = sub("a"), b = sub("b"), c = sub("c");
    a.topic = b.topic = "xds-read:topic:grp";
    for (auto* x : {&a, &b, &c}) ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(*x, d); }));
    auto bound = wait<std::vector<std::string>>([&](auto d) { s->subscriptionIds(d, "xds-read:topic:grp"); });
    ASSERT_TRUE(bound);
    EXPECT_EQ(*bound, (std::vector<std::string>{"a", "b"}));
    auto all = wait<std::vector<std::string>>([&](auto d) { s->subscriptionIds(d); });
    ASSERT_TRUE(all);
    EXPECT_EQ(all->size(), 3u);
    auto byPrefix = wait<std::vector<std::string>>([&](auto d) { s->subscriptionIds(d, "xds-read:", true); });
    ASSERT_TRUE(byPrefix);
    EXPECT_EQ(*byPrefix, (std::vector<std::string>{"a", "b"}));
    auto noPrefix = wait<std::vector<std::string>>([&](auto d) { s->subscriptionIds(d, "xds:", true); });
    ASSERT_TRUE(noPrefix);
    EXPECT_TRUE(noPrefix->empty());
    auto copy = [](const std::string& id, const std::string& subId, int64_t up) {
      StoredMessage m = msg(id, subId);
      m.upstreamSeq = up;
      return m;
    };
    ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(copy("a5", "a", 5), d); }));
    ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(copy("b5", "b", 5), d); })) << "per subscription";
    ASSERT_TRUE(wait<bool>([&](auto d) { s->remove("a5", d); }));  // acknowledged
    auto again = wait<int64_t>([&](auto d) { s->put(copy("a5bis", "a", 5), d); });
    ASSERT_FALSE(again) << "the mailbox came again: taken before";
    EXPECT_EQ(again.error().code, Errc::AlreadyExists);
    ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(copy("a3", "a", 3), d); })) << "a lower sequence arriving later";
    auto older = wait<int64_t>([&](auto d) { s->put(copy("a3bis", "a", 3), d); });
    ASSERT_FALSE(older);
    EXPECT_EQ(older.error().code, Errc::AlreadyExists);
    auto none = wait<int64_t>([&](auto d) { s->put(copy("z9", "nobody", 9), d); });
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, Errc::NotFound);
  }
  auto s = open();
  ASSERT_TRUE(s);
  auto still = wait<int64_t>([&](auto d) {
    StoredMessage m = msg("a5ter", "a");
    m.upstreamSeq = 5;
    s->put(m, d);
  });
  ASSERT_FALSE(still) << "what was taken survives reopening";
  StoredMessage next = msg("a6", "a");
  next.upstreamSeq = 6;
  ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(next, d); }));
  auto list = pending(*s, "a");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, "a3");
  EXPECT_EQ(list[1].id, "a6");
  EXPECT_EQ(pending(*s, "b").size(), 1u);
  // The record of what was taken goes an hour after the message's expiry (the gateway has dropped
  // the envelope by then): the sweep removes it, and the table does not grow for ever.
  ASSERT_TRUE(wait<PushStore::Swept>([&](auto d) { s->sweep(kNow + 60'000 + 3'600'000 + 1, int64_t{1} << 50, d); }));
  StoredMessage late = msg("a6late", "a");
  late.upstreamSeq = 6;
  EXPECT_TRUE(wait<int64_t>([&](auto d) { s->put(late, d); }));
}

TEST_F(PushStoreTest, SubscriptionsAndMessagesSurviveReopening) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(sub("a"), d); }));
    auto dup = wait<void>([&](auto d) { s->addSubscription(sub("a"), d); });
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code, Errc::AlreadyExists);
    auto seq1 = wait<int64_t>([&](auto d) { s->put(msg("m1", "a"), d); });
    auto seq2 = wait<int64_t>([&](auto d) { s->put(msg("m2", "a"), d); });
    ASSERT_TRUE(seq1 && seq2);
    EXPECT_LT(*seq1, *seq2);
    auto none = wait<int64_t>([&](auto d) { s->put(msg("m3", "nobody"), d); });
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, Errc::NotFound);
  }
  auto s = open();  // a new process's view of the same file
  ASSERT_TRUE(s);
  auto byToken = wait<std::optional<Subscription>>([&](auto d) { s->subscriptionByToken("tok-a", d); });
  ASSERT_TRUE(byToken && *byToken);
  EXPECT_EQ((*byToken)->id, "a");
  auto list = pending(*s, "a");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, "m1");  // oldest first
  EXPECT_EQ(list[1].id, "m2");
  EXPECT_EQ(list[0].body, std::string("\x00\x01\xff", 3) + "m1");
  EXPECT_EQ(list[0].encoding, "aes128gcm");
  EXPECT_EQ(list[0].ttlSeconds, 60);
  // Resuming after the first one (Last-Event-ID) gives the rest.
  auto rest = pending(*s, "a", list[0].seq);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].id, "m2");
  // An acknowledgement deletes; a second one finds nothing.
  EXPECT_EQ(*wait<bool>([&](auto d) { s->remove("m1", d); }), true);
  EXPECT_EQ(*wait<bool>([&](auto d) { s->remove("m1", d); }), false);
  EXPECT_EQ(pending(*s, "a").size(), 1u);
}

TEST_F(PushStoreTest, ATopicReplacesThePendingMessageOfThatTopic) {
  auto s = open();
  ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(sub("a"), d); }));
  ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(msg("m1", "a", "weather"), d); }));
  ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(msg("m2", "a", "news"), d); }));
  ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(msg("m3", "a", "weather"), d); }));
  auto list = pending(*s, "a");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, "m2");
  EXPECT_EQ(list[1].id, "m3");
  EXPECT_EQ(list[1].topic, "weather");
  EXPECT_FALSE(*wait<std::optional<StoredMessage>>([&](auto d) { s->message("m1", d); }));
}

// The subscription cache (cachedSubscription) saves the push path a store round trip; it must never
// keep a subscription that is gone.
TEST_F(PushStoreTest, SubscriptionCacheFollowsAddsLookupsAndRemovals) {
  {
    auto s = open();
    ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(sub("a"), d); }));
    auto hit = s->cachedSubscription("tok-a");
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->id, "a");
    EXPECT_FALSE(s->cachedSubscription("tok-nobody"));
  }
  auto s = open();  // a new process: nothing cached until a lookup finds it
  EXPECT_FALSE(s->cachedSubscription("tok-a"));
  ASSERT_TRUE(*wait<std::optional<Subscription>>([&](auto d) { s->subscriptionByToken("tok-a", d); }));
  ASSERT_TRUE(s->cachedSubscription("tok-a"));
  EXPECT_TRUE(*wait<bool>([&](auto d) { s->removeSubscription("a", d); }));
  EXPECT_FALSE(s->cachedSubscription("tok-a"));
  // A put for a subscription that went (a sender holding a stale cached copy): NotFound.
  auto put = wait<int64_t>([&](auto d) { s->put(msg("late", "a"), d); });
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, Errc::NotFound);
  // A sweep that removes subscriptions forgets the cache; one last used long ago is touched by a put.
  Subscription old = sub("old");
  old.usedMs = kNow - 10 * PushStore::kTouchGranularityMs;
  ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(old, d); }));
  Subscription idle = sub("idle");
  idle.usedMs = kNow - 10 * PushStore::kTouchGranularityMs;
  ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(idle, d); }));
  ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(msg("m", "old"), d); }));  // at kNow
  auto swept = wait<PushStore::Swept>([&](auto d) { s->sweep(kNow, 5 * PushStore::kTouchGranularityMs, d); });
  ASSERT_TRUE(swept);
  EXPECT_EQ(swept->subscriptions, 1u);  // "idle"; "old" was used by the put
  EXPECT_FALSE(s->cachedSubscription("tok-idle"));
  EXPECT_FALSE(s->cachedSubscription("tok-old"));  // forgotten with the rest, found again on lookup
  ASSERT_TRUE(*wait<std::optional<Subscription>>([&](auto d) { s->subscriptionByToken("tok-old", d); }));
  EXPECT_TRUE(s->cachedSubscription("tok-old"));
}

TEST_F(PushStoreTest, UrgencyFilterExpiryAndSweep) {
  auto s = open();
  ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(sub("a"), d); }));
  Subscription idle = sub("idle");
  idle.usedMs = kNow - 100'000;
  ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(idle, d); }));
  ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(msg("low", "a", "", Urgency::Low, 10), d); }));
  ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(msg("high", "a", "", Urgency::High, 100), d); }));
  EXPECT_EQ(pending(*s, "a", 0, Urgency::Normal).size(), 1u);  // RFC 8030 §5.3 filter
  EXPECT_EQ(pending(*s, "a", 0, Urgency::VeryLow).size(), 2u);
  // 20 s later "low" (TTL 10 s) is expired: not delivered, and swept.
  EXPECT_EQ(pending(*s, "a", 0, Urgency::VeryLow, kNow + 20'000).size(), 1u);
  auto swept = wait<PushStore::Swept>([&](auto d) { s->sweep(kNow + 20'000, 60'000, d); });
  ASSERT_TRUE(swept);
  EXPECT_EQ(swept->messages, 1u);
  EXPECT_EQ(swept->subscriptions, 1u);  // "idle" was last used 120 s before, over the 60 s allowed
  EXPECT_EQ(swept->subscriptionsLeft, 1u);
  EXPECT_EQ(swept->messagesLeft, 1u);
  EXPECT_FALSE(*wait<std::optional<Subscription>>([&](auto d) { s->subscriptionById("idle", d); }));
  EXPECT_TRUE(*wait<std::optional<Subscription>>([&](auto d) { s->subscriptionById("a", d); }));
  // Unsubscribing deletes its messages too.
  EXPECT_TRUE(*wait<bool>([&](auto d) { s->removeSubscription("a", d); }));
  EXPECT_FALSE(*wait<std::optional<StoredMessage>>([&](auto d) { s->message("high", d); }));
}

// A removed subscription leaves a tombstone of its token (senders then get 410, not 404) that
// survives reopening and goes with a sweep two idle periods after the subscription's last use.
TEST_F(PushStoreTest, RemovedSubscriptionsLeaveATombstoneUntilSwept) {
  auto s = open();
  ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(sub("a"), d); }));
  EXPECT_FALSE(*wait<bool>([&](auto d) { s->tokenGone("tok-a", d); }));
  EXPECT_TRUE(*wait<bool>([&](auto d) { s->removeSubscription("a", d); }));
  EXPECT_TRUE(*wait<bool>([&](auto d) { s->tokenGone("tok-a", d); }));
  EXPECT_FALSE(*wait<bool>([&](auto d) { s->tokenGone("tok-never", d); }));
  s.reset();
  s = open();
  EXPECT_TRUE(*wait<bool>([&](auto d) { s->tokenGone("tok-a", d); }));
  ASSERT_TRUE(wait<PushStore::Swept>([&](auto d) { s->sweep(kNow + 100'000, 60'000, d); }));
  EXPECT_TRUE(*wait<bool>([&](auto d) { s->tokenGone("tok-a", d); }));  // 100 s < 2 x 60 s
  ASSERT_TRUE(wait<PushStore::Swept>([&](auto d) { s->sweep(kNow + 121'000, 60'000, d); }));
  EXPECT_FALSE(*wait<bool>([&](auto d) { s->tokenGone("tok-a", d); }));
}

TEST_F(PushStoreTest, ManyWritersShareCommits) {
  auto s = open(SyncMode::Normal);
  ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(sub("a"), d); }));
  const uint64_t commits0 = s->stats().commits.load();
  constexpr int kThreads = 4, kEach = 250;
  std::atomic<int> ok{0}, done{0};
  std::promise<void> all;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        s->put(msg("t" + std::to_string(t) + "-" + std::to_string(i), "a"), [&](Result<int64_t> r) {
          if (r) ok.fetch_add(1);
          if (done.fetch_add(1) + 1 == kThreads * kEach) all.set_value();
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  all.get_future().wait();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  // Group commit: 1000 messages took fewer transactions than messages (each completion came after
  // its commit, so none of them was acknowledged before it was on disk).
  const uint64_t commits = s->stats().commits.load() - commits0;
  EXPECT_LT(commits, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_GT(s->stats().largestBatch.load(), 1u);
  EXPECT_EQ(pending(*s, "a").size(), 100u);  // the limit
  EXPECT_EQ(s->stats().failedCommits.load(), 0u);
}

// Workers read the cache while the store thread fills and empties it (run under TSan too).
TEST_F(PushStoreTest, TheCacheIsReadFromManyThreadsWhileTheStoreChangesIt) {
  auto s = open(SyncMode::Normal);
  constexpr int kSubs = 200;
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        for (int i = 0; i < kSubs; ++i) {
          auto c = s->cachedSubscription("tok-s" + std::to_string(i));
          if (c && c->id != "s" + std::to_string(i)) wrong.fetch_add(1);
        }
      }
    });
  }
  for (int i = 0; i < kSubs; ++i) s->addSubscription(sub("s" + std::to_string(i)), [](Result<void>) {});
  for (int i = 0; i < kSubs; i += 2) s->removeSubscription("s" + std::to_string(i), [](Result<bool>) {});
  ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(sub("last"), d); }));  // after all of them
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  for (int i = 0; i < kSubs; ++i) {
    EXPECT_EQ(s->cachedSubscription("tok-s" + std::to_string(i)).has_value(), i % 2 == 1) << i;
  }
}

TEST_F(PushStoreTest, ACorruptOrForeignFileIsRefusedWithItsNameAndTheCause) {
  const std::string path = dir_.write("garbage.db", std::string(8192, 'x'));
  auto s = PushStore::open(path, SyncMode::Full);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().detail.find(path), std::string::npos) << s.error().detail;
  EXPECT_NE(s.error().detail.find("move it away"), std::string::npos) << s.error().detail;

  // A database of a newer schema version is not touched.
  {
    auto ok = open();
    ASSERT_TRUE(ok);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/push.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE meta SET value = '99' WHERE key = 'schema'", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto newer = PushStore::open(dir_.path() + "/push.db", SyncMode::Full);
  ASSERT_FALSE(newer);
  EXPECT_EQ(newer.error().code, Errc::NotSupported);
  EXPECT_NE(newer.error().detail.find("schema version 99"), std::string::npos) << newer.error().detail;
}

TEST_F(PushStoreTest, AnUnwritableDirectoryIsAnErrorNamingThePath) {
  auto s = PushStore::open(dir_.path() + "/missing/dir/push.db", SyncMode::Full);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().detail.find("/missing/dir/push.db"), std::string::npos) << s.error().detail;
}

// RFC 8030 §5.1: a receipt is stored, in the transaction that deletes the message, only when a
// message that asked for one had been delivered; it survives reopening; a cancel (never delivered),
// a replaced or an expired message gets none; limits hold; everything goes with the subscription.
TEST_F(PushStoreTest, ReceiptsForDeliveredAcknowledgedMessagesOnly) {
  {
    auto s = open();
    ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(sub("a"), d); }));
    ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(sub("b"), d); }));
    auto add = [&](const std::string& token, const std::string& rsid, size_t max = kMaxReceiptSubscriptions) {
      return wait<ReceiptSubAdd>([&](auto d) { s->addReceiptSubscription(token, rsid, kNow, max, d); });
    };
    EXPECT_EQ(*add("tok-a", "ra"), ReceiptSubAdd::Added);
    EXPECT_EQ(*add("tok-b", "rb"), ReceiptSubAdd::Added);
    EXPECT_EQ(*add("tok-nobody", "rx"), ReceiptSubAdd::NoSubscription);
    EXPECT_EQ(*add("tok-a", "ra2", 1), ReceiptSubAdd::Full);
    EXPECT_EQ(**wait<std::optional<std::string>>([&](auto d) { s->receiptSubscription("ra", d); }), "a");
    EXPECT_FALSE(*wait<std::optional<std::string>>([&](auto d) { s->receiptSubscription("ra2", d); }));

    // Another subscription's receipt subscription, or none, is refused, and nothing is stored.
    StoredMessage wrong = msg("w1", "a");
    wrong.receipt = "rb";
    auto r = wait<int64_t>([&](auto d) { s->put(wrong, d); });
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::InvalidArgument);
    wrong.receipt = "nope";
    EXPECT_EQ(wait<int64_t>([&](auto d) { s->put(wrong, d); }).error().code, Errc::InvalidArgument);
    EXPECT_FALSE(*wait<std::optional<StoredMessage>>([&](auto d) { s->message("w1", d); }));

    for (const char* id : {"m1", "m2", "m3"}) {
      StoredMessage m = msg(id, "a", id == std::string("m3") ? "t" : "");
      m.receipt = "ra";
      ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(m, d); }));
    }
    auto list = pending(*s, "a");
    ASSERT_EQ(list.size(), 3u);
    EXPECT_EQ(list[0].receipt, "ra");
    EXPECT_EQ((*wait<std::optional<StoredMessage>>([&](auto d) { s->message("m2", d); }))->receipt, "ra");
    // m1 and m3 delivered; m2 never was.
    ASSERT_TRUE(wait<void>([&](auto d) { s->markDelivered({"m1", "m3"}, d); }));
    auto a1 = wait<Acked>([&](auto d) { s->acknowledge("m1", kNow + 5, kMaxStoredReceipts, d); });
    ASSERT_TRUE(a1);
    EXPECT_TRUE(a1->removed);
    EXPECT_EQ(a1->rsid, "ra");
    EXPECT_GT(a1->seq, 0);
    auto a2 = wait<Acked>([&](auto d) { s->acknowledge("m2", kNow, kMaxStoredReceipts, d); });
    EXPECT_TRUE(a2->removed);
    EXPECT_EQ(a2->seq, 0);  // a cancel: no receipt
    EXPECT_EQ(a2->rsid, "ra");
    // m3 replaced by a newer message of its topic: no receipt for it, ever.
    ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(msg("m4", "a", "t"), d); }));
    auto a3 = wait<Acked>([&](auto d) { s->acknowledge("m3", kNow, kMaxStoredReceipts, d); });
    EXPECT_FALSE(a3->removed);
    EXPECT_EQ(a3->seq, 0);
    // A full receipt subscription: the push is refused, a due receipt is dropped.
    StoredMessage m5 = msg("m5", "a");
    m5.receipt = "ra";
    ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(m5, d); }));
    ASSERT_TRUE(wait<void>([&](auto d) { s->markDelivered({"m5"}, d); }));
    auto a5 = wait<Acked>([&](auto d) { s->acknowledge("m5", kNow, 1, d); });
    EXPECT_TRUE(a5->removed);
    EXPECT_TRUE(a5->dropped);
    EXPECT_EQ(a5->seq, 0);
  }
  auto s = open();  // the receipt survives a restart
  auto rs = wait<std::vector<StoredReceipt>>([&](auto d) { s->receipts("ra", 0, 10, d); });
  ASSERT_TRUE(rs);
  ASSERT_EQ(rs->size(), 1u);
  EXPECT_EQ((*rs)[0].mid, "m1");
  EXPECT_EQ((*rs)[0].ackedMs, kNow + 5);
  EXPECT_TRUE(wait<std::vector<StoredReceipt>>([&](auto d) { s->receipts("ra", (*rs)[0].seq, 10, d); })->empty());
  EXPECT_FALSE(*wait<bool>([&](auto d) { s->removeReceipt("rb", (*rs)[0].seq, d); }));  // another's
  EXPECT_TRUE(*wait<bool>([&](auto d) { s->removeReceipt("ra", (*rs)[0].seq, d); }));
  EXPECT_FALSE(*wait<bool>([&](auto d) { s->removeReceipt("ra", (*rs)[0].seq, d); }));
  // An expired message with a receipt request is swept, and no receipt comes of it.
  StoredMessage m6 = msg("m6", "a", "", Urgency::Normal, 1);
  m6.receipt = "ra";
  ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(m6, d); }));
  ASSERT_TRUE(wait<PushStore::Swept>([&](auto d) { s->sweep(kNow + 2000, 86400'000, d); }));
  EXPECT_FALSE(wait<Acked>([&](auto d) { s->acknowledge("m6", kNow, 10, d); })->removed);
  // Receipts and receipt subscriptions go with their subscription.
  StoredMessage m7 = msg("m7", "a");
  m7.receipt = "ra";
  ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(m7, d); }));
  ASSERT_TRUE(wait<void>([&](auto d) { s->markDelivered({"m7"}, d); }));
  EXPECT_GT(wait<Acked>([&](auto d) { s->acknowledge("m7", kNow, 10, d); })->seq, 0);
  EXPECT_TRUE(*wait<bool>([&](auto d) { s->removeSubscription("a", d); }));
  EXPECT_FALSE(*wait<std::optional<std::string>>([&](auto d) { s->receiptSubscription("ra", d); }));
  EXPECT_TRUE(wait<std::vector<StoredReceipt>>([&](auto d) { s->receipts("ra", 0, 10, d); })->empty());
  EXPECT_TRUE(*wait<bool>([&](auto d) { s->removeReceiptSubscription("rb", d); }));
  EXPECT_FALSE(*wait<bool>([&](auto d) { s->removeReceiptSubscription("rb", d); }));
}

// A store written before receipts existed (schema 1 without the receipt tables) opens, keeps its
// rows and gains the tables.
TEST_F(PushStoreTest, AStoreFromBeforeReceiptsGainsTheirTables) {
  {
    auto s = open();
    ASSERT_TRUE(wait<void>([&](auto d) { s->addSubscription(sub("a"), d); }));
    ASSERT_TRUE(wait<int64_t>([&](auto d) { s->put(msg("m1", "a"), d); }));
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/push.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE receipts; DROP TABLE receipt_wanted; DROP TABLE receipt_subs;", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(pending(*s, "a").size(), 1u);
  EXPECT_EQ(*wait<ReceiptSubAdd>([&](auto d) { s->addReceiptSubscription("tok-a", "ra", kNow, 16, d); }), ReceiptSubAdd::Added);
  StoredMessage m = msg("m2", "a");
  m.receipt = "ra";
  EXPECT_TRUE(wait<int64_t>([&](auto d) { s->put(m, d); }));
}

}  // namespace
}  // namespace ugate::webpush

// PushStore (push_store.h): SQLite in WAL mode behind one thread, group commit.
#include "webpush/push_store.h"

#include <pthread.h>

#include <chrono>
#include <utility>

namespace ugate::webpush {

namespace {

constexpr int kSchemaVersion = 1;

// The schema. `seq` is the rowid: the store-wide delivery order. A topic is unique per
// subscription among pending messages (the replacement of RFC 8030 §5.4). Receipts (RFC 8030
// §5.1): receipt_subs belong to a subscription, receipt_wanted marks a message that asked for a
// receipt (gone with the message: a replaced or expired message gets none), receipts wait for their
// application server. The receipt tables came after schema 1 was written; CREATE ... IF NOT EXISTS
// adds them to an older file, so the version stays 1.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions(
  id TEXT PRIMARY KEY,
  token TEXT NOT NULL UNIQUE,
  app_key BLOB NOT NULL,
  topic TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  used_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS subscriptions_by_use ON subscriptions(used_ms);
CREATE TABLE IF NOT EXISTS messages(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  sub_id TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
  topic TEXT,
  urgency INTEGER NOT NULL,
  ttl INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  encoding TEXT NOT NULL,
  body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_sub ON messages(sub_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_topic ON messages(sub_id, topic) WHERE topic IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages(expires_ms);
CREATE TABLE IF NOT EXISTS gone(token TEXT PRIMARY KEY, used_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS topic_keys(
  sub_id TEXT PRIMARY KEY REFERENCES subscriptions(id) ON DELETE CASCADE,
  p256dh BLOB NOT NULL, auth BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS subscriptions_by_topic ON subscriptions(topic);
CREATE TABLE IF NOT EXISTS upstream_taken(
  sub_id TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  PRIMARY KEY(sub_id, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS upstream_taken_by_expiry ON upstream_taken(expires_ms);
CREATE TABLE IF NOT EXISTS receipt_subs(
  id TEXT PRIMARY KEY,
  sub_id TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
  created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS receipt_subs_by_sub ON receipt_subs(sub_id);
CREATE TABLE IF NOT EXISTS receipt_wanted(
  mid TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
  rsid TEXT NOT NULL REFERENCES receipt_subs(id) ON DELETE CASCADE,
  delivered INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS receipt_wanted_by_rsid ON receipt_wanted(rsid);
CREATE TABLE IF NOT EXISTS receipts(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  rsid TEXT NOT NULL REFERENCES receipt_subs(id) ON DELETE CASCADE,
  mid TEXT NOT NULL,
  acked_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS receipts_by_rsid ON receipts(rsid, seq);
CREATE TRIGGER IF NOT EXISTS subscriptions_gone AFTER DELETE ON subscriptions BEGIN
  INSERT OR REPLACE INTO gone(token, used_ms) VALUES(old.token, old.used_ms);
END;
)sql";

constexpr const char* kSavepoint = "SAVEPOINT op";
constexpr const char* kRollbackTo = "ROLLBACK TO op";
constexpr const char* kRelease = "RELEASE op";
constexpr const char* kInsertSub =
    "INSERT INTO subscriptions(id, token, app_key, topic, created_ms, used_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kDeleteSub = "DELETE FROM subscriptions WHERE id = ?1";
constexpr const char* kSubByToken =
    "SELECT id, token, app_key, topic, created_ms, used_ms FROM subscriptions WHERE token = ?1";
constexpr const char* kSubById =
    "SELECT id, token, app_key, topic, created_ms, used_ms FROM subscriptions WHERE id = ?1";
// Only a mark older than kTouchGranularityMs is rewritten: most puts then change no subscription row
// (nor the subscriptions_by_use index).
constexpr const char* kTouchSub = "UPDATE subscriptions SET used_ms = ?2 WHERE id = ?1 AND used_ms < ?2 - ?3";
constexpr const char* kDeleteTopic = "DELETE FROM messages WHERE sub_id = ?1 AND topic = ?2";
constexpr const char* kInsertMsg =
    "INSERT INTO messages(id, sub_id, topic, urgency, ttl, received_ms, expires_ms, encoding, body) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char* kDeleteMsg = "DELETE FROM messages WHERE id = ?1";
// A topic mailbox's copies taken, by the gateway's sequence (push_xds_feed.h): kept until well past
// the message's expiry (the gateway drops the envelope then; the slack covers clocks apart).
constexpr const char* kTakeUpstream = "INSERT OR IGNORE INTO upstream_taken(sub_id, seq, expires_ms) VALUES(?1, ?2, ?3)";
constexpr const char* kSweepUpstream = "DELETE FROM upstream_taken WHERE expires_ms <= ?1";
constexpr int64_t kUpstreamSlackMs = 3'600'000;
// Column 10: the receipt subscription the message asked a receipt on (NULL: none).
constexpr const char* kMsgById =
    "SELECT seq, id, sub_id, topic, urgency, ttl, received_ms, expires_ms, encoding, body, "
    "(SELECT rsid FROM receipt_wanted w WHERE w.mid = messages.id) FROM messages WHERE id = ?1";
constexpr const char* kPending =
    "SELECT seq, id, sub_id, topic, urgency, ttl, received_ms, expires_ms, encoding, body, "
    "(SELECT rsid FROM receipt_wanted w WHERE w.mid = messages.id) FROM messages "
    "WHERE sub_id = ?1 AND seq > ?2 AND expires_ms > ?3 AND urgency >= ?4 ORDER BY seq LIMIT ?5";
constexpr const char* kSweepMsgs = "DELETE FROM messages WHERE expires_ms <= ?1";
constexpr const char* kSweepSubs = "DELETE FROM subscriptions WHERE used_ms < ?1";
constexpr const char* kSweepGone = "DELETE FROM gone WHERE used_ms < ?1";
constexpr const char* kTokenGone = "SELECT 1 FROM gone WHERE token = ?1";
constexpr const char* kReceiptSubCheck =
    "SELECT sub_id, (SELECT count(*) FROM receipts r WHERE r.rsid = ?1) FROM receipt_subs WHERE id = ?1";
constexpr const char* kInsertWanted = "INSERT INTO receipt_wanted(mid, rsid) VALUES(?1, ?2)";
constexpr const char* kCountSubs = "SELECT count(*) FROM subscriptions";
constexpr const char* kCountMsgs = "SELECT count(*) FROM messages";

void bindText(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void bindBlob(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
std::string columnText(sqlite3_stmt* s, int i) {
  const auto* p = sqlite3_column_blob(s, i);
  const int n = sqlite3_column_bytes(s, i);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

Subscription readSubscription(sqlite3_stmt* s) {
  Subscription out;
  out.id = columnText(s, 0);
  out.token = columnText(s, 1);
  out.appServerKey = columnText(s, 2);
  out.topic = columnText(s, 3);
  out.createdMs = sqlite3_column_int64(s, 4);
  out.usedMs = sqlite3_column_int64(s, 5);
  return out;
}

StoredMessage readMessage(sqlite3_stmt* s) {
  StoredMessage m;
  m.seq = sqlite3_column_int64(s, 0);
  m.id = columnText(s, 1);
  m.subscription = columnText(s, 2);
  m.topic = columnText(s, 3);
  m.urgency = static_cast<Urgency>(sqlite3_column_int(s, 4) & 3);
  m.ttlSeconds = sqlite3_column_int64(s, 5);
  m.receivedMs = sqlite3_column_int64(s, 6);
  m.expiresMs = sqlite3_column_int64(s, 7);
  m.encoding = columnText(s, 8);
  m.body = columnText(s, 9);
  m.receipt = columnText(s, 10);
  return m;
}

// Finish: a completion that reports the operation's value once its transaction is committed.
template <typename T>
std::function<void(const Result<void>&)> finishWith(std::shared_ptr<Result<T>> value, PushStore::Done<T> done) {
  return [value, done = std::move(done)](const Result<void>& commit) {
    if (!commit) {
      done(commit.error());
    } else {
      done(std::move(*value));
    }
  };
}

}  // namespace

Result<std::unique_ptr<PushStore>> PushStore::open(const std::string& path, SyncMode sync, size_t maxBatch) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  auto fail = [&](Errc code, const std::string& why) -> Error {
    std::string msg = "webpush store " + path + ": " + why;
    if (db != nullptr) sqlite3_close_v2(db);
    return makeError(code, msg);
  };
  if (rc != SQLITE_OK) return fail(Errc::Io, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  sqlite3_busy_timeout(db, 5000);  // another process holding it (a second ugated): wait, then say so
  sqlite3_extended_result_codes(db, 1);
  // quick_check reads every page: a file that is not a database, or a damaged one, stops here.
  std::string check;
  char* err = nullptr;
  int qrc = sqlite3_exec(
      db, "PRAGMA quick_check",
      [](void* out, int, char** v, char**) {
        auto* s = static_cast<std::string*>(out);
        if (v[0] != nullptr && s->size() < 512) *s += (s->empty() ? "" : "; ") + std::string(v[0]);
        return 0;
      },
      &check, &err);
  if (qrc != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errstr(qrc);
    sqlite3_free(err);
    return fail(Errc::Io, "cannot be read as a database (" + why + "); move it away to start with an empty store");
  }
  if (check != "ok") {
    return fail(Errc::Io, "is corrupt (quick_check: " + check + "); move it away to start with an empty store");
  }
  // A new file gets 16 KiB pages: five 3 KiB messages to a page, so a batch writes a fifth of the
  // WAL frames (and system calls) it would with 4 KiB. (An existing file keeps its page size.)
  sqlite3_exec(db, "PRAGMA page_size=16384", nullptr, nullptr, nullptr);
  std::string mode;
  sqlite3_exec(
      db, "PRAGMA journal_mode=WAL",
      [](void* out, int, char** v, char**) {
        if (v[0] != nullptr) *static_cast<std::string*>(out) = v[0];
        return 0;
      },
      &mode, nullptr);
  if (mode != "wal") return fail(Errc::Io, "WAL mode refused (journal_mode is '" + mode + "')");
  const char* pragmas = sync == SyncMode::Full ? "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                                               : "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;";
  if (sqlite3_exec(db, pragmas, nullptr, nullptr, &err) != SQLITE_OK ||
      sqlite3_exec(db, kSchema, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    return fail(Errc::Io, "cannot set up its schema: " + why);
  }
  // The schema version: written once, checked on every open.
  std::string version;
  sqlite3_exec(
      db, "SELECT value FROM meta WHERE key = 'schema'",
      [](void* out, int, char** v, char**) {
        if (v[0] != nullptr) *static_cast<std::string*>(out) = v[0];
        return 0;
      },
      &version, nullptr);
  if (version.empty()) {
    const std::string sql = "INSERT INTO meta(key, value) VALUES('schema', '" + std::to_string(kSchemaVersion) + "')";
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string why = err ? err : sqlite3_errmsg(db);
      sqlite3_free(err);
      return fail(Errc::Io, "cannot record its schema version: " + why);
    }
  } else if (version != std::to_string(kSchemaVersion)) {
    return fail(Errc::NotSupported, "has schema version " + version + ", this ugated knows " +
                                        std::to_string(kSchemaVersion));
  }
  std::unique_ptr<PushStore> st(new PushStore(path, db, maxBatch == 0 ? 1 : maxBatch));
  st->stats_.sync = sync;  // a label for /stats (the store thread never reads it)
  return st;
}

PushStore::PushStore(std::string path, sqlite3* db, size_t maxBatch)
    : path_(std::move(path)), db_(db), maxBatch_(maxBatch) {
  thread_ = std::thread([this] { loop(); });
}

PushStore::~PushStore() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  for (auto& [sql, s] : stmts_) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

void PushStore::enqueue(Op op) {
  {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back(std::move(op));
  }
  cv_.notify_one();
}

void PushStore::loop() {
  pthread_setname_np(pthread_self(), "ugate-pushstore");  // per-thread CPU in top, perf, bench/push_bench.py
  for (;;) {
    std::deque<Op> batch;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued ran
      while (!queue_.empty() && batch.size() < maxBatch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    runBatch(batch);
  }
}

void PushStore::runBatch(std::deque<Op>& batch) {
  const auto t0 = std::chrono::steady_clock::now();
  Result<void> commit = exec("BEGIN IMMEDIATE");
  if (commit) {
    for (Op& op : batch) {
      // A savepoint each: one operation's failure (a duplicate id) undoes only its own changes.
      // (Prepared once: parsing them for every operation would cost more than most operations.)
      if (!op.savepoint) {
        op.run(*this);  // a failure changed nothing: its result says so, the batch goes on
        continue;
      }
      if (!step(kSavepoint) || (!op.run(*this) && !step(kRollbackTo)) || !step(kRelease)) {
        commit = dbError("savepoint");
        break;
      }
    }
  }
  // No statement may stay active across the commit (a SELECT stepped to its end still is).
  for (auto& [sql, s] : stmts_) sqlite3_reset(s);
  if (commit) commit = exec("COMMIT");
  if (!commit) {
    (void)exec("ROLLBACK");
    clearCache();  // subscriptions cached by this batch's operations may not exist after all
    stats_.failedCommits.fetch_add(1, std::memory_order_relaxed);
  } else {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
    stats_.commits.fetch_add(1, std::memory_order_relaxed);
    stats_.lastCommitMicros.store(static_cast<uint64_t>(us), std::memory_order_relaxed);
    stats_.commitLatency.observe(static_cast<uint64_t>(us));
    stats_.commitMicrosTotal.fetch_add(static_cast<uint64_t>(us), std::memory_order_relaxed);
  }
  stats_.operations.fetch_add(batch.size(), std::memory_order_relaxed);
  stats_.lastBatch.store(batch.size(), std::memory_order_relaxed);
  if (batch.size() > stats_.largestBatch.load(std::memory_order_relaxed)) {
    stats_.largestBatch.store(batch.size(), std::memory_order_relaxed);
  }
  for (Op& op : batch) op.finish(commit);
}

sqlite3_stmt* PushStore::stmt(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) {
    sqlite3_reset(it->second);
    sqlite3_clear_bindings(it->second);
    return it->second;
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) return nullptr;
  stmts_.emplace(sql, s);
  return s;
}

bool PushStore::step(const char* sql) {
  sqlite3_stmt* s = stmt(sql);
  return s != nullptr && sqlite3_step(s) == SQLITE_DONE;
}

Result<void> PushStore::exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return dbError(sql);
  return {};
}

Error PushStore::dbError(std::string_view what) const {
  return makeError(Errc::Io, "webpush store " + path_ + ": " + std::string(what) + ": " + sqlite3_errmsg(db_));
}

void PushStore::addSubscription(Subscription s, Done<void> done) {
  auto value = std::make_shared<Result<void>>();
  enqueue({[s = std::move(s), value](PushStore& st) {
             sqlite3_stmt* q = st.stmt(kInsertSub);
             if (q == nullptr) {
               *value = st.dbError("prepare");
               return false;
             }
             bindText(q, 1, s.id);
             bindText(q, 2, s.token);
             bindBlob(q, 3, s.appServerKey);
             bindText(q, 4, s.topic);
             sqlite3_bind_int64(q, 5, s.createdMs);
             sqlite3_bind_int64(q, 6, s.usedMs);
             const int rc = sqlite3_step(q);
             if (rc == SQLITE_DONE) {
               st.cacheSubscription(s);
               return true;
             }
             *value = (rc & 0xff) == SQLITE_CONSTRAINT ? makeError(Errc::AlreadyExists, "subscription exists")
                                                       : st.dbError("add subscription");
             return false;
           },
           finishWith(value, std::move(done)), false});  // one statement: undone by itself when it fails
}

void PushStore::removeSubscription(std::string id, Done<bool> done) {
  deleteByKey(kDeleteSub, std::move(id), "remove subscription", std::move(done), true);
}

std::optional<Subscription> PushStore::cachedSubscription(const std::string& token) const {
  {
    std::shared_lock l(cacheMu_);
    auto it = byToken_.find(token);
    if (it != byToken_.end()) {
      stats_.cacheHits.fetch_add(1, std::memory_order_relaxed);
      return it->second;
    }
  }
  stats_.cacheMisses.fetch_add(1, std::memory_order_relaxed);
  return std::nullopt;
}

void PushStore::cacheSubscription(const Subscription& s) {
  std::unique_lock l(cacheMu_);
  if (byToken_.count(s.token) == 0 && byToken_.size() >= kCacheMax) {
    tokenOf_.erase(byToken_.begin()->second.id);
    byToken_.erase(byToken_.begin());
  }
  byToken_.insert_or_assign(s.token, s);
  tokenOf_.insert_or_assign(s.id, s.token);
}

void PushStore::uncacheSubscription(const std::string& id) {
  std::unique_lock l(cacheMu_);
  auto it = tokenOf_.find(id);
  if (it == tokenOf_.end()) return;
  byToken_.erase(it->second);
  tokenOf_.erase(it);
}

void PushStore::clearCache() {
  std::unique_lock l(cacheMu_);
  byToken_.clear();
  tokenOf_.clear();
}

void PushStore::deleteByKey(const char* sql, std::string key, const char* what, Done<bool> done, bool uncache) {
  auto value = std::make_shared<Result<bool>>(false);
  enqueue({[sql, key = std::move(key), what, value, uncache](PushStore& st) {
             if (uncache) st.uncacheSubscription(key);
             sqlite3_stmt* q = st.stmt(sql);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             bindText(q, 1, key);
             if (sqlite3_step(q) != SQLITE_DONE) return *value = st.dbError(what), false;
             *value = sqlite3_changes(st.db_) > 0;
             return true;
           },
           finishWith(value, std::move(done)), false});  // one DELETE (its cascade and trigger are part of it)
}

void PushStore::subscriptionByToken(std::string token, Done<std::optional<Subscription>> done) {
  findSubscription(kSubByToken, std::move(token), std::move(done));
}

void PushStore::subscriptionById(std::string id, Done<std::optional<Subscription>> done) {
  findSubscription(kSubById, std::move(id), std::move(done));
}

void PushStore::findSubscription(const char* sql, std::string key, Done<std::optional<Subscription>> done) {
  auto value = std::make_shared<Result<std::optional<Subscription>>>(std::nullopt);
  enqueue({[sql, key = std::move(key), value](PushStore& st) {
             sqlite3_stmt* q = st.stmt(sql);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             bindText(q, 1, key);
             const int rc = sqlite3_step(q);
             if (rc == SQLITE_ROW) {
               Subscription found = readSubscription(q);
               st.cacheSubscription(found);
               *value = std::optional<Subscription>(std::move(found));
             } else if (rc != SQLITE_DONE) {
               return *value = st.dbError("find subscription"), false;
             }
             return true;
           },
           finishWith(value, std::move(done)), false});
}

void PushStore::tokenGone(std::string token, Done<bool> done) {
  auto value = std::make_shared<Result<bool>>(false);
  enqueue({[token = std::move(token), value](PushStore& st) {
             sqlite3_stmt* q = st.stmt(kTokenGone);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             bindText(q, 1, token);
             const int rc = sqlite3_step(q);
             if (rc != SQLITE_ROW && rc != SQLITE_DONE) return *value = st.dbError("find tombstone"), false;
             *value = rc == SQLITE_ROW;
             return true;
           },
           finishWith(value, std::move(done)), false});
}

void PushStore::put(StoredMessage m, Done<int64_t> done) {
  auto value = std::make_shared<Result<int64_t>>(int64_t{0});
  // Without a topic the insert is the only change that matters (the touch is best effort): no
  // savepoint. A topic's replacement deletes first, which a failed insert must undo.
  const bool savepoint = !m.topic.empty() || !m.receipt.empty() || m.upstreamSeq > 0;
  enqueue({[m = std::move(m), value](PushStore& st) {
             if (m.upstreamSeq > 0) {  // a topic mailbox's copy: once per subscription and gateway sequence
               sqlite3_stmt* w = st.stmt(kTakeUpstream);
               if (w == nullptr) return *value = st.dbError("prepare"), false;
               bindText(w, 1, m.subscription);
               sqlite3_bind_int64(w, 2, m.upstreamSeq);
               sqlite3_bind_int64(w, 3, m.expiresMs + kUpstreamSlackMs);
               const int wc = sqlite3_step(w);
               if (wc == SQLITE_CONSTRAINT_FOREIGNKEY) return *value = makeError(Errc::NotFound, "no subscription " + m.subscription), false;
               if (wc != SQLITE_DONE) return *value = st.dbError("take upstream copy"), false;
               if (sqlite3_changes(st.db_) == 0) {
                 *value = makeError(Errc::AlreadyExists, "message " + std::to_string(m.upstreamSeq) + " taken before");
                 return false;
               }
             }
             if (!m.topic.empty()) {  // RFC 8030 §5.4: the new message replaces the pending one
               sqlite3_stmt* del = st.stmt(kDeleteTopic);
               if (del == nullptr) return *value = st.dbError("prepare"), false;
               bindText(del, 1, m.subscription);
               bindText(del, 2, m.topic);
               if (sqlite3_step(del) != SQLITE_DONE) return *value = st.dbError("replace topic"), false;
             }
             if (!m.receipt.empty()) {  // RFC 8030 §5.1: a receipt subscription of this subscription
               sqlite3_stmt* r = st.stmt(kReceiptSubCheck);
               if (r == nullptr) return *value = st.dbError("prepare"), false;
               bindText(r, 1, m.receipt);
               const int rc = sqlite3_step(r);
               if (rc != SQLITE_ROW && rc != SQLITE_DONE) return *value = st.dbError("find receipt subscription"), false;
               if (rc == SQLITE_DONE || columnText(r, 0) != m.subscription) {
                 *value = makeError(Errc::InvalidArgument, "no receipt subscription " + m.receipt + " of this subscription");
                 return false;
               }
               if (sqlite3_column_int64(r, 1) >= static_cast<int64_t>(kMaxStoredReceipts)) {
                 *value = makeError(Errc::ResourceExhausted, "receipt subscription " + m.receipt + " is full");
                 return false;
               }
             }
             // The insert first: its foreign key says whether the subscription exists, so the
             // usual put changes one table and its indexes, not the subscription's row too.
             sqlite3_stmt* q = st.stmt(kInsertMsg);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             bindText(q, 1, m.id);
             bindText(q, 2, m.subscription);
             if (m.topic.empty()) {
               sqlite3_bind_null(q, 3);
             } else {
               bindText(q, 3, m.topic);
             }
             sqlite3_bind_int(q, 4, static_cast<int>(m.urgency));
             sqlite3_bind_int64(q, 5, m.ttlSeconds);
             sqlite3_bind_int64(q, 6, m.receivedMs);
             sqlite3_bind_int64(q, 7, m.expiresMs);
             bindText(q, 8, m.encoding);
             bindBlob(q, 9, m.body);
             const int rc = sqlite3_step(q);
             if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
               *value = makeError(Errc::NotFound, "no subscription " + m.subscription);
               return false;
             }
             if (rc != SQLITE_DONE) {
               *value = (rc & 0xff) == SQLITE_CONSTRAINT ? makeError(Errc::AlreadyExists, "message " + m.id + " exists")
                                                         : st.dbError("put");
               return false;
             }
             *value = sqlite3_last_insert_rowid(st.db_);
             if (!m.receipt.empty()) {
               sqlite3_stmt* w = st.stmt(kInsertWanted);
               if (w == nullptr) return *value = st.dbError("prepare"), false;
               bindText(w, 1, m.id);
               bindText(w, 2, m.receipt);
               if (sqlite3_step(w) != SQLITE_DONE) return *value = st.dbError("receipt request"), false;
             }
             sqlite3_stmt* touch = st.stmt(kTouchSub);
             if (touch == nullptr) return true;
             bindText(touch, 1, m.subscription);
             sqlite3_bind_int64(touch, 2, m.receivedMs);
             sqlite3_bind_int64(touch, 3, kTouchGranularityMs);
             (void)sqlite3_step(touch);  // best effort: a lost mark only ages the subscription sooner
             return true;
           },
           finishWith(value, std::move(done)), savepoint});
}

void PushStore::remove(std::string id, Done<bool> done) {
  deleteByKey(kDeleteMsg, std::move(id), "remove message", std::move(done));
}

void PushStore::message(std::string id, Done<std::optional<StoredMessage>> done) {
  auto value = std::make_shared<Result<std::optional<StoredMessage>>>(std::nullopt);
  enqueue({[id = std::move(id), value](PushStore& st) {
             sqlite3_stmt* q = st.stmt(kMsgById);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             bindText(q, 1, id);
             const int rc = sqlite3_step(q);
             if (rc == SQLITE_ROW) *value = std::optional<StoredMessage>(readMessage(q));
             else if (rc != SQLITE_DONE) return *value = st.dbError("find message"), false;
             return true;
           },
           finishWith(value, std::move(done)), false});
}

void PushStore::subscriptionIds(Done<std::vector<std::string>> done, std::optional<std::string> topic, bool topicPrefix) {
  static constexpr const char* kAllSubs = "SELECT id FROM subscriptions ORDER BY created_ms";
  static constexpr const char* kSubsOfTopic = "SELECT id FROM subscriptions WHERE topic = ?1 ORDER BY created_ms";
  static constexpr const char* kSubsOfTopicPrefix =
      "SELECT id FROM subscriptions WHERE substr(topic, 1, length(?1)) = ?1 ORDER BY created_ms";
  auto value = std::make_shared<Result<std::vector<std::string>>>(std::vector<std::string>{});
  enqueue({[value, topic = std::move(topic), topicPrefix](PushStore& st) {
             sqlite3_stmt* q = st.stmt(!topic ? kAllSubs : topicPrefix ? kSubsOfTopicPrefix : kSubsOfTopic);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             if (topic) bindText(q, 1, *topic);
             std::vector<std::string> out;
             int rc;
             while ((rc = sqlite3_step(q)) == SQLITE_ROW) out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)));
             if (rc != SQLITE_DONE) return *value = st.dbError("list subscriptions"), false;
             *value = std::move(out);
             return true;
           },
           finishWith(value, std::move(done))});
}

void PushStore::setTopicKeys(std::string sid, std::string p256dh, std::string authSecret, Done<void> done) {
  static constexpr const char* kSetKeys = "INSERT OR REPLACE INTO topic_keys(sub_id, p256dh, auth) VALUES(?1, ?2, ?3)";
  auto value = std::make_shared<Result<void>>();
  enqueue({[sid = std::move(sid), p256dh = std::move(p256dh), authSecret = std::move(authSecret), value](PushStore& st) {
             sqlite3_stmt* q = st.stmt(kSetKeys);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             bindText(q, 1, sid);
             bindBlob(q, 2, p256dh);
             bindBlob(q, 3, authSecret);
             if (sqlite3_step(q) != SQLITE_DONE) return *value = st.dbError("topic keys"), false;
             return true;
           },
           finishWith(value, std::move(done))});
}

void PushStore::topicSubscribers(std::string topic, size_t limit, Done<std::vector<TopicSubscriber>> done) {
  static constexpr const char* kByTopic =
      "SELECT s.id, k.p256dh, k.auth, (SELECT count(*) FROM messages m WHERE m.sub_id = s.id) "
      "FROM subscriptions s JOIN topic_keys k ON k.sub_id = s.id "
      "WHERE s.topic = ?1 ORDER BY s.created_ms, s.id LIMIT ?2";
  auto value = std::make_shared<Result<std::vector<TopicSubscriber>>>(std::vector<TopicSubscriber>{});
  enqueue({[topic = std::move(topic), limit, value](PushStore& st) {
             sqlite3_stmt* q = st.stmt(kByTopic);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             bindText(q, 1, topic);
             sqlite3_bind_int64(q, 2, static_cast<int64_t>(limit));
             std::vector<TopicSubscriber> out;
             int rc;
             while ((rc = sqlite3_step(q)) == SQLITE_ROW) out.push_back({columnText(q, 0), columnText(q, 1), columnText(q, 2), sqlite3_column_int64(q, 3)});
             if (rc != SQLITE_DONE) return *value = st.dbError("topic subscribers"), false;
             *value = std::move(out);
             return true;
           },
           finishWith(value, std::move(done))});
}

void PushStore::pending(std::string subscription, int64_t afterSeq, int64_t nowMs, Urgency minUrgency, size_t limit,
                        Done<std::vector<StoredMessage>> done) {
  auto value = std::make_shared<Result<std::vector<StoredMessage>>>(std::vector<StoredMessage>{});
  enqueue({[subscription = std::move(subscription), afterSeq, nowMs, minUrgency, limit, value](PushStore& st) {
             sqlite3_stmt* q = st.stmt(kPending);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             bindText(q, 1, subscription);
             sqlite3_bind_int64(q, 2, afterSeq);
             sqlite3_bind_int64(q, 3, nowMs);
             sqlite3_bind_int(q, 4, static_cast<int>(minUrgency));
             sqlite3_bind_int64(q, 5, static_cast<int64_t>(limit));
             std::vector<StoredMessage> out;
             int rc;
             while ((rc = sqlite3_step(q)) == SQLITE_ROW) out.push_back(readMessage(q));
             if (rc != SQLITE_DONE) return *value = st.dbError("pending"), false;
             *value = std::move(out);
             return true;
           },
           finishWith(value, std::move(done)), false});
}

void PushStore::sweep(int64_t nowMs, int64_t idleMs, Done<Swept> done) {
  auto value = std::make_shared<Result<Swept>>(Swept{});
  enqueue({[nowMs, idleMs, value](PushStore& st) {
             Swept s;
             sqlite3_stmt* q = st.stmt(kSweepMsgs);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             sqlite3_bind_int64(q, 1, nowMs);
             if (sqlite3_step(q) != SQLITE_DONE) return *value = st.dbError("sweep messages"), false;
             s.messages = static_cast<uint64_t>(sqlite3_changes(st.db_));
             sqlite3_stmt* up = st.stmt(kSweepUpstream);
             if (up == nullptr) return *value = st.dbError("prepare"), false;
             sqlite3_bind_int64(up, 1, nowMs);
             if (sqlite3_step(up) != SQLITE_DONE) return *value = st.dbError("sweep upstream copies"), false;
             sqlite3_stmt* subs = st.stmt(kSweepSubs);
             if (subs == nullptr) return *value = st.dbError("prepare"), false;
             sqlite3_bind_int64(subs, 1, nowMs - idleMs);
             if (sqlite3_step(subs) != SQLITE_DONE) return *value = st.dbError("sweep subscriptions"), false;
             s.subscriptions = static_cast<uint64_t>(sqlite3_changes(st.db_));
             if (s.subscriptions > 0) st.clearCache();  // which ones is not known here: forget them all
             // A tombstone outlives its subscription by another idle period: long enough for senders
             // to see 410 and drop it.
             sqlite3_stmt* gone = st.stmt(kSweepGone);
             if (gone == nullptr) return *value = st.dbError("prepare"), false;
             sqlite3_bind_int64(gone, 1, nowMs - 2 * idleMs);
             if (sqlite3_step(gone) != SQLITE_DONE) return *value = st.dbError("sweep tombstones"), false;
             for (auto [sql, out] : {std::pair{kCountSubs, &s.subscriptionsLeft}, std::pair{kCountMsgs, &s.messagesLeft}}) {
               sqlite3_stmt* c = st.stmt(sql);
               if (c == nullptr || sqlite3_step(c) != SQLITE_ROW) return *value = st.dbError("count"), false;
               *out = static_cast<uint64_t>(sqlite3_column_int64(c, 0));
             }
             *value = s;
             return true;
           },
           finishWith(value, std::move(done))});
}

}  // namespace ugate::webpush

namespace ugate::webpush {

void PushStore::acknowledge(std::string id, int64_t nowMs, size_t maxReceipts, Done<Acked> done) {
  static constexpr const char* kWanted = "SELECT rsid, delivered FROM receipt_wanted WHERE mid = ?1";
  static constexpr const char* kCountReceipts = "SELECT count(*) FROM receipts WHERE rsid = ?1";
  static constexpr const char* kInsertReceipt = "INSERT INTO receipts(rsid, mid, acked_ms) VALUES(?1, ?2, ?3)";
  auto value = std::make_shared<Result<Acked>>(Acked{});
  enqueue({[id = std::move(id), nowMs, maxReceipts, value](PushStore& st) {
             Acked a;
             sqlite3_stmt* w = st.stmt(kWanted);
             if (w == nullptr) return *value = st.dbError("prepare"), false;
             bindText(w, 1, id);
             int rc = sqlite3_step(w);
             if (rc != SQLITE_ROW && rc != SQLITE_DONE) return *value = st.dbError("find receipt request"), false;
             const bool delivered = rc == SQLITE_ROW && sqlite3_column_int(w, 1) != 0;
             if (rc == SQLITE_ROW) a.rsid = columnText(w, 0);
             // The usual acknowledgement (no receipt) is one DELETE and needs no savepoint (as remove);
             // one that stores a receipt takes its own, so the receipt and the delete go together.
             bool inSavepoint = false;
             auto fail = [&](std::string_view what) {
               *value = st.dbError(what);
               if (inSavepoint) (void)(st.step(kRollbackTo) && st.step(kRelease));
               return false;
             };
             if (delivered) {
               sqlite3_stmt* c = st.stmt(kCountReceipts);
               if (c == nullptr) return *value = st.dbError("prepare"), false;
               bindText(c, 1, a.rsid);
               if (sqlite3_step(c) != SQLITE_ROW) return *value = st.dbError("count receipts"), false;
               if (sqlite3_column_int64(c, 0) >= static_cast<int64_t>(maxReceipts)) {
                 a.dropped = true;
               } else {
                 if (!st.step(kSavepoint)) return fail("savepoint");
                 inSavepoint = true;
                 sqlite3_stmt* ins = st.stmt(kInsertReceipt);
                 if (ins == nullptr) return fail("prepare");
                 bindText(ins, 1, a.rsid);
                 bindText(ins, 2, id);
                 sqlite3_bind_int64(ins, 3, nowMs);
                 if (sqlite3_step(ins) != SQLITE_DONE) return fail("store receipt");
                 a.seq = sqlite3_last_insert_rowid(st.db_);
               }
             }
             sqlite3_stmt* del = st.stmt(kDeleteMsg);
             if (del == nullptr) return fail("prepare");
             bindText(del, 1, id);
             if (sqlite3_step(del) != SQLITE_DONE) return fail("remove message");
             a.removed = sqlite3_changes(st.db_) > 0;
             if (inSavepoint && !st.step(kRelease)) return fail("release");
             *value = std::move(a);
             return true;
           },
           finishWith(value, std::move(done)), false});  // a savepoint of its own when it stores a receipt
}

void PushStore::markDelivered(std::vector<std::string> ids, Done<void> done) {
  static constexpr const char* kMark = "UPDATE receipt_wanted SET delivered = 1 WHERE mid = ?1 AND delivered = 0";
  auto value = std::make_shared<Result<void>>();
  enqueue({[ids = std::move(ids), value](PushStore& st) {
             for (const std::string& id : ids) {
               sqlite3_stmt* q = st.stmt(kMark);
               if (q == nullptr) return *value = st.dbError("prepare"), false;
               bindText(q, 1, id);
               if (sqlite3_step(q) != SQLITE_DONE) return *value = st.dbError("mark delivered"), false;
             }
             return true;
           },
           finishWith(value, std::move(done))});
}

void PushStore::addReceiptSubscription(std::string token, std::string rsid, int64_t nowMs, size_t maxPerSubscription,
                                       Done<ReceiptSubAdd> done) {
  static constexpr const char* kSubAndCount =
      "SELECT s.id, (SELECT count(*) FROM receipt_subs r WHERE r.sub_id = s.id) FROM subscriptions s WHERE s.token = ?1";
  static constexpr const char* kInsert = "INSERT INTO receipt_subs(id, sub_id, created_ms) VALUES(?1, ?2, ?3)";
  auto value = std::make_shared<Result<ReceiptSubAdd>>(ReceiptSubAdd::NoSubscription);
  enqueue({[token = std::move(token), rsid = std::move(rsid), nowMs, maxPerSubscription, value](PushStore& st) {
             sqlite3_stmt* q = st.stmt(kSubAndCount);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             bindText(q, 1, token);
             const int rc = sqlite3_step(q);
             if (rc == SQLITE_DONE) return true;  // NoSubscription
             if (rc != SQLITE_ROW) return *value = st.dbError("find subscription"), false;
             const std::string sid = columnText(q, 0);
             if (sqlite3_column_int64(q, 1) >= static_cast<int64_t>(maxPerSubscription)) {
               *value = ReceiptSubAdd::Full;
               return true;
             }
             sqlite3_stmt* ins = st.stmt(kInsert);
             if (ins == nullptr) return *value = st.dbError("prepare"), false;
             bindText(ins, 1, rsid);
             bindText(ins, 2, sid);
             sqlite3_bind_int64(ins, 3, nowMs);
             if (sqlite3_step(ins) != SQLITE_DONE) return *value = st.dbError("add receipt subscription"), false;
             *value = ReceiptSubAdd::Added;
             return true;
           },
           finishWith(value, std::move(done)), false});  // one change (the insert), undone by itself
}

void PushStore::removeReceiptSubscription(std::string rsid, Done<bool> done) {
  static constexpr const char* kDelete = "DELETE FROM receipt_subs WHERE id = ?1";
  deleteByKey(kDelete, std::move(rsid), "remove receipt subscription", std::move(done));
}

void PushStore::receiptSubscription(std::string rsid, Done<std::optional<std::string>> done) {
  static constexpr const char* kFind = "SELECT sub_id FROM receipt_subs WHERE id = ?1";
  auto value = std::make_shared<Result<std::optional<std::string>>>(std::nullopt);
  enqueue({[rsid = std::move(rsid), value](PushStore& st) {
             sqlite3_stmt* q = st.stmt(kFind);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             bindText(q, 1, rsid);
             const int rc = sqlite3_step(q);
             if (rc == SQLITE_ROW) *value = std::optional<std::string>(columnText(q, 0));
             else if (rc != SQLITE_DONE) return *value = st.dbError("find receipt subscription"), false;
             return true;
           },
           finishWith(value, std::move(done)), false});
}

void PushStore::receipts(std::string rsid, int64_t afterSeq, size_t limit, Done<std::vector<StoredReceipt>> done) {
  static constexpr const char* kList =
      "SELECT seq, rsid, mid, acked_ms FROM receipts WHERE rsid = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
  auto value = std::make_shared<Result<std::vector<StoredReceipt>>>(std::vector<StoredReceipt>{});
  enqueue({[rsid = std::move(rsid), afterSeq, limit, value](PushStore& st) {
             sqlite3_stmt* q = st.stmt(kList);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             bindText(q, 1, rsid);
             sqlite3_bind_int64(q, 2, afterSeq);
             sqlite3_bind_int64(q, 3, static_cast<int64_t>(limit));
             std::vector<StoredReceipt> out;
             int rc;
             while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
               out.push_back({sqlite3_column_int64(q, 0), columnText(q, 1), columnText(q, 2), sqlite3_column_int64(q, 3)});
             }
             if (rc != SQLITE_DONE) return *value = st.dbError("receipts"), false;
             *value = std::move(out);
             return true;
           },
           finishWith(value, std::move(done)), false});
}

void PushStore::removeReceipt(std::string rsid, int64_t seq, Done<bool> done) {
  static constexpr const char* kDelete = "DELETE FROM receipts WHERE rsid = ?1 AND seq = ?2";
  auto value = std::make_shared<Result<bool>>(false);
  enqueue({[rsid = std::move(rsid), seq, value](PushStore& st) {
             sqlite3_stmt* q = st.stmt(kDelete);
             if (q == nullptr) return *value = st.dbError("prepare"), false;
             bindText(q, 1, rsid);
             sqlite3_bind_int64(q, 2, seq);
             if (sqlite3_step(q) != SQLITE_DONE) return *value = st.dbError("remove receipt"), false;
             *value = sqlite3_changes(st.db_) > 0;
             return true;
           },
           finishWith(value, std::move(done)), false});
}

}  // namespace ugate::webpush

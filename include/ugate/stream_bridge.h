#pragma once
// StreamBridge: a pair of connected Streams living on two different reactors (threads), for a
// stream whose source and destination are held by different workers (a reverse-accept association
// is one connection on one worker). Each direction is a lock-free single-producer/single-consumer
// ring of fixed capacity: a full ring is backpressure (write() returns EAGAIN until the other side
// reads), readiness crosses threads as posted tasks, coalesced so a busy transfer posts about once
// per ring-full, not per write. Either end may be destroyed first; close(abort) resets the peer.
//
// Ring storage is held only while bytes are in flight: an idle direction costs no buffer.
// Ownership, without a lock or a handshake on the data path:
// - Only the producer's thread allocates or frees a direction's storage. It allocates on the first
//   write into an empty ring with no storage, and publishes the pointer with the head store that
//   publishes the bytes (so a consumer that sees bytes sees the storage they sit in).
// - The consumer touches the storage only while head != tail, i.e. only for bytes the producer
//   published after allocating, and it stores tail after its last copy out.
// - A per-end timer on the producer's reactor (armed while storage is held, `idleRelease`) frees it
//   when the producer has acquired tail == head (the consumer has drained everything and cannot
//   read again before the producer writes, on this same thread) and nothing was written since the
//   previous tick; or when the consumer end is closed (it never reads again). A destroyed producer
//   frees a drained ring at once; undrained bytes stay readable and go with the pair.
// - Storage is whole pages, handed back to the kernel (MADV_DONTNEED) when freed: glibc would keep
//   them, and after a burst on many streams RSS would stay at the burst's peak.
// Why the producer frees: a free on the thread that writes cannot race with a write, and the
// consumer's only claim on the storage (bytes between tail and head) is visible to it as tail;
// a consumer-side free would need a handshake on every write. No task crosses threads for this.
// The busy path pays one null check per write; a busy direction keeps its storage (no churn).
#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

#include <ugate/reactor.h>
#include <ugate/stream.h>
#include <ugate/time.h>

namespace ugate {

/** StreamBridgeStats: process-wide bridge metrics; relaxed atomics, updated from any worker. */
struct StreamBridgeStats {
  std::atomic<int64_t> bridges{0};           // bridges alive (either end not yet destroyed)
  std::atomic<int64_t> bufferBytes{0};       // ring storage held right now, both directions
  std::atomic<uint64_t> bufferAllocs{0};     // ring storage allocations (an idle ring re-armed)
};
/** streamBridgeStats returns the process-wide bridge metrics. Thread-safe. */
StreamBridgeStats& streamBridgeStats();

/**
 * makeStreamBridge returns {end on a, end on b}. Each end must be used and destroyed on its own
 * reactor's thread.
 * @param capacity bytes per direction, allocated on the first write after idle.
 * @param idleRelease how long a drained direction stays unwritten (one to two ticks of this) before
 *     its storage is freed.
 */
std::pair<StreamPtr, StreamPtr> makeStreamBridge(Reactor& a, Reactor& b,
                                                 size_t capacity = 64 * 1024,
                                                 Duration idleRelease = Duration(100));

/** StreamBridgeStorage: ring storage held right now, in bytes, seen from one end. */
struct StreamBridgeStorage {
  size_t sending{0};    // the ring this end writes into
  size_t receiving{0};  // the ring this end reads from
};
/** streamBridgeStorageForTest: the storage of `end`'s bridge ({0, 0} for another Stream). */
StreamBridgeStorage streamBridgeStorageForTest(const Stream& end);

}  // namespace ugate

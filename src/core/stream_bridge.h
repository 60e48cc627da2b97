#pragma once
// StreamBridge: a pair of connected Streams living on two different reactors (threads), for a
// stream whose source and destination are held by different workers (a reverse-accept association
// is one connection on one worker). Each direction is a lock-free single-producer/single-consumer
// ring of fixed capacity: a full ring is backpressure (write() returns EAGAIN until the other side
// reads), readiness crosses threads as posted tasks, coalesced so a busy transfer posts about once
// per ring-full, not per write. Either end may be destroyed first; close(abort) resets the peer.
#include <memory>
#include <utility>

#include <ugate/reactor.h>
#include <ugate/stream.h>

namespace ugate {

/**
 * makeStreamBridge returns {end on a, end on b}. Each end must be used and destroyed on its own
 * reactor's thread. capacity: bytes per direction (allocated once, freed with the pair).
 */
std::pair<StreamPtr, StreamPtr> makeStreamBridge(Reactor& a, Reactor& b, size_t capacity = 64 * 1024);

}  // namespace ugate

#pragma once
// Handover: what an upgrading ugated (the old process) and its successor (the new binary) say to
// each other over a Unix SOCK_SEQPACKET socket pair, so the new process carries on with the old
// one's listening sockets and established spliced TCP connections without dropping a byte.
//
// This file is the message codec, sans I/O: each message is one datagram of the socket pair, its
// descriptors travel beside it as SCM_RIGHTS (handover_channel.h sends and receives them). The
// conversation (docs/OPERATIONS.md "Upgrades"):
//   new -> old  Hello        protocol version, pid, the listeners its config serves
//   old -> new  Listener*    one per listening socket (fd), then ListenersEnd
//   new -> old  Listening    its workers accept on those sockets: the old process stops accepting
//   old -> new  Session*     one per established spliced connection (client, upstream and pipe fds)
//   old -> new  Endpoint*    the admin and readiness listening sockets (after the old one answered)
//   old -> new  Done         everything that can move has moved
//   new -> old  DoneAck      how many sessions it adopted; the old process drains the rest and exits
// Any other order, an unknown type or a short or oversized field is a decode error: the new process
// then exits and the old one keeps serving (or, past Listening, keeps draining what it still has).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ugate/result.h>
#include <ugate/socket_address.h>
#include <ugate/stream.h>

namespace ugate::handover {

/** kVersion: both sides must speak it; a new binary with another one refuses and exits. */
constexpr uint32_t kVersion = 1;
/** kMaxParked: the most bytes parked in userland per direction a session may carry over. */
constexpr size_t kMaxParked = 64 * 1024;
/** kMaxMessage: the largest message either side sends or accepts (parked bytes are ≤ kMaxParked). */
constexpr size_t kMaxMessage = 160 * 1024;

enum class Type : uint8_t {
  Hello = 1,
  Listener = 2,
  ListenersEnd = 3,
  Listening = 4,
  Session = 5,
  Endpoint = 6,
  Done = 7,
  DoneAck = 8,
};
const char* typeName(Type t);

struct Hello {
  uint32_t version{kVersion};
  int32_t pid{0};
  std::vector<std::string> listeners;  // names of the listeners the new config serves
};

/** ListenerSocket: one listening socket (its fd beside the message). */
struct ListenerSocket {
  std::string name;     // the listener's name
  std::string address;  // its configured address as written ("127.0.0.1:0" stays that)
  bool datagram{false};
  uint16_t worker{0};   // the worker of the old process that owned it
};

/** Endpoint: the admin endpoint or the readiness port (its fd beside the message). */
struct Endpoint {
  bool admin{true};
  std::string address;  // the configured address
};

/**
 * SessionRecord: an established spliced TCP connection. Descriptors beside the message, in this
 * order: client, upstream, then for each direction with hasPipe its pipe's read and write ends.
 * Direction 0 is client -> upstream, 1 upstream -> client.
 */
struct SessionRecord {
  uint64_t id{0};
  StreamKind kind{StreamKind::Tcp};
  std::string listener;
  SocketAddress source, local, originalDst, upstreamAddr;
  std::string host;
  uint16_t port{0};
  std::string sni, alpn, route, upstream;
  std::vector<std::pair<std::string, std::string>> headers;  // trace context carried across tunnels
  uint64_t ageMicros{0};  // since accept
  struct Direction {
    uint64_t bytes{0};       // moved so far
    uint32_t inPipe{0};      // bytes waiting in the pipe (hasPipe)
    bool hasPipe{false};
    bool finished{false};    // EOF already forwarded
    std::string parked;      // bytes read but not yet written
  } dir[2];
  /** fdCount: how many descriptors travel with this record. */
  size_t fdCount() const { return 2 + (dir[0].hasPipe ? 2 : 0) + (dir[1].hasPipe ? 2 : 0); }
};

struct DoneAck {
  uint64_t adopted{0};  // sessions the new process now serves
  uint64_t refused{0};  // sessions it could not adopt (closed, counted, logged there)
};

// Encoders: one message each.
std::string encode(const Hello& m);
std::string encode(const ListenerSocket& m);
std::string encode(const SessionRecord& m);
std::string encode(const Endpoint& m);
std::string encode(const DoneAck& m);
/** encodeBare: a message that is only its type (ListenersEnd, Listening, Done). */
std::string encodeBare(Type t);

/** peekType: the type of a message, or an error for an empty one or an unknown type. */
Result<Type> peekType(std::string_view msg);
// Decoders: the whole message must be that type and well-formed (no trailing bytes).
Result<Hello> decodeHello(std::string_view msg);
Result<ListenerSocket> decodeListener(std::string_view msg);
Result<SessionRecord> decodeSession(std::string_view msg);
Result<Endpoint> decodeEndpoint(std::string_view msg);
Result<DoneAck> decodeDoneAck(std::string_view msg);

}  // namespace ugate::handover

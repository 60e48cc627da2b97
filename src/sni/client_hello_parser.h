#pragma once
// ClientHelloParser: a sans-I/O, resumable reader of the TLS ClientHello a client sends first
// (RFC 8446 §4.1.2, RFC 6066 §3 server_name, RFC 7301 ALPN, RFC 9849 ECH). It reassembles the
// handshake message across TLS records and TCP segments, bounds it, and extracts what an SNI router
// needs without terminating TLS. No sockets, no clocks: the caller feeds bytes as they arrive.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ugate::sni {

/** HelloStatus: the tri-state of a sniffer plus the error outcome. */
enum class HelloStatus : uint8_t {
  NeedMore,  // feed more bytes
  Done,      // a complete, well-formed ClientHello: info() is filled
  NotTls,    // the first bytes are not a TLS handshake record (plaintext, SSLv2, ...)
  Error,     // it starts like TLS but is malformed or too large: error() says why
};

/** HelloError: one distinct reason per way a hello can be refused. */
enum class HelloError : uint8_t {
  None,
  // NotTls
  NotHandshakeRecord,  // first byte is not 0x16
  SslV2Hello,          // an SSLv2-format hello (no SNI possible)
  NotTlsVersion,       // record version major byte is not 3
  // Error: record layer
  TooLarge,           // the hello needs more than maxBytes on the wire
  RecordTooLong,      // record length over 2^14
  EmptyRecord,        // zero-length handshake fragment
  InterleavedRecord,  // a record of another type, or another version, between hello fragments
  BadRecordVersion,   // a later record's version major byte is not 3
  NotClientHello,     // the handshake message type is not client_hello (1)
  TrailingData,       // the record carrying the hello's last byte goes on past it
  // Error: ClientHello body
  BadHelloVersion,       // legacy_version major byte is not 3
  BadLength,             // a length field overruns its block, or bytes are left over
  BadSessionId,          // legacy_session_id longer than 32
  BadCipherSuites,       // empty or odd-length cipher_suites
  BadCompression,        // empty legacy_compression_methods
  DuplicateExtension,    // two extensions of the same type
  PskNotLast,            // pre_shared_key is not the last extension
  BadServerName,         // malformed server_name extension
  DuplicateServerName,   // two host_name entries
  InvalidHostName,       // host_name is not a DNS name (bad characters, trailing dot, IP literal)
  BadAlpn,               // malformed ALPN extension
  EmptyAlpnName,         // a zero-length ALPN protocol name
  BadSupportedVersions,  // malformed supported_versions extension
  BadEch,                // malformed encrypted_client_hello extension
  EchOuterExtensions,    // ech_outer_extensions (inner-only) on the wire
};

/** helloErrorName: the stable snake_case name of a reason, for logs and close details. */
std::string_view helloErrorName(HelloError e);

/** ClientHelloInfo: what the hello says that routing needs. */
struct ClientHelloInfo {
  std::string sni;                // host_name, lower-cased; empty when absent
  std::vector<std::string> alpn;  // offered protocols, in the client's order (raw bytes)
  bool ech{false};       // an encrypted_client_hello extension: sni is the outer (public) name
  bool echInner{false};  // ... of type inner (a split-mode backend sees the inner hello)
  bool tls13{false};     // supported_versions offers TLS 1.3
  uint16_t legacyVersion{0};
  uint16_t extensionCount{0};
  size_t wireBytes{0};  // bytes of the records that carry the hello (headers included)
  size_t records{0};    // how many records carried it
};

class ClientHelloParser {
 public:
  static constexpr size_t kDefaultMaxBytes = 16384;
  static constexpr size_t kMaxRecordLength = 16384;  // 2^14, TLSPlaintext.length

  /** @param maxBytes the most wire bytes (records with their headers) the hello may take. */
  explicit ClientHelloParser(size_t maxBytes = kDefaultMaxBytes) : maxBytes_(maxBytes) {}

  /**
   * feed takes the next bytes from the client (only new bytes; the parser keeps what it needs).
   * Once the result is not NeedMore it is final and later calls return it without reading.
   * Bytes after the hello's last record are not consumed (see consumed()).
   */
  HelloStatus feed(std::span<const uint8_t> bytes);

  HelloStatus status() const { return status_; }
  HelloError error() const { return error_; }
  const ClientHelloInfo& info() const { return info_; }
  /** consumed: input bytes read so far; when Done, the wire size of the hello. */
  size_t consumed() const { return consumed_; }
  size_t maxBytes() const { return maxBytes_; }

  /** parseAll is a one-shot feed of a complete buffer (tests, fuzzing). */
  static ClientHelloParser parseAll(std::span<const uint8_t> bytes,
                                    size_t maxBytes = kDefaultMaxBytes) {
    ClientHelloParser p(maxBytes);
    p.feed(bytes);
    return p;
  }

 private:
  HelloStatus fail(HelloStatus s, HelloError e);
  HelloStatus onHandshakeBytes();
  HelloStatus finish(std::span<const uint8_t> body);

  size_t maxBytes_;
  HelloStatus status_{HelloStatus::NeedMore};
  HelloError error_{HelloError::None};
  ClientHelloInfo info_;
  size_t consumed_{0};
  uint8_t header_[5]{};      // header_: the record header being read
  size_t headerHave_{0};     // headerHave_: bytes of header_ read (5 = reading the fragment)
  size_t recordLeft_{0};     // recordLeft_: fragment bytes of the current record still to come
  std::vector<uint8_t> hs_;  // hs_: the handshake message reassembled so far (header included)
  size_t hsTotal_{0};        // hsTotal_: 4 + the message length, once the header is known
};

}  // namespace ugate::sni

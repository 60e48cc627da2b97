#pragma once
// ugate.v1.Message (issue 19 §2), sans-I/O: a recipient's mailbox of Web Push encrypted payloads as
// an xDS resource. The bytes come from an ADS server (a relay) or go to its clients; parsing is
// untrusted and checks that every payload is an aes128gcm body (RFC 8188 header, RFC 8291's single
// record and 65-byte sender key), so a relay carries only ciphertext; it never decrypts anything.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/result.h>

namespace ugate::xds {

/** Limits: a Web Push message is at most 4096 bytes (RFC 8030 §7.2); a mailbox holds at most 256. */
inline constexpr size_t kMaxCiphertext = 4096;
inline constexpr size_t kMaxEnvelopes = 256;

struct RelayEnvelope {
  std::string id;
  std::string ciphertext;  // the aes128gcm body
  uint32_t ttlSeconds{0};
  std::string urgency;     // "" = normal
  int64_t createdUnixMs{0};
  bool operator==(const RelayEnvelope&) const = default;
};

struct Mailbox {
  std::string recipient;  // a node ID or "topic:<topic>"
  std::vector<RelayEnvelope> envelopes;
  bool operator==(const Mailbox&) const = default;
};

/** checkRecipient: a node ID (52 base32 characters) or "topic:" + 1-32 URL-safe base64 characters. */
Result<void> checkRecipient(std::string_view r);
/** checkAes128gcm: body is an RFC 8291 aes128gcm body (one record, 65-byte keyid); the reason if not. */
Result<void> checkAes128gcm(std::string_view body);
/** checkEnvelope: id, ciphertext, urgency within their rules. */
Result<void> checkEnvelope(const RelayEnvelope& e);
/** parseMailbox: a ugate.v1.Message's bytes (untrusted) → a valid Mailbox, or the reason (to NACK). */
Result<Mailbox> parseMailbox(std::string_view bytes);
/**
 * mailboxNamesFor: the Message names an ADS client authenticated as node `peer` (its verified
 * certificate's node ID) may subscribe: its own mailbox and topics. "*" becomes its own name; any
 * other node's name is left out and returned in `refused`; when `emptyIsWildcard` (SotW, a first
 * delta request) a list left empty (or empty to begin with) becomes its own name, never a wildcard. The ADS server applies it to every Message request of a client with an
 * identity, so one node never reads another's mailbox (ciphertext, but ids, sizes and times).
 */
std::vector<std::string> mailboxNamesFor(std::string_view peer, const std::vector<std::string>& names,
                                         bool emptyIsWildcard, std::vector<std::string>& refused);
/** encodeMailbox: deterministic bytes of m (checked by the caller). */
std::string encodeMailbox(const Mailbox& m);

}  // namespace ugate::xds

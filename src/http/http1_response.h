#pragma once
// HTTP/1.1 client side, sans-I/O: a resumable, bounded response parser (status line, header block,
// body framing per RFC 9112 6.3, chunked decoding, trailers) and the request-head writer and chunk
// encoder a reverse proxy needs toward an HTTP/1.1 origin. The response bytes come from an origin
// that is not trusted to frame correctly, so framing is strict (anti-smuggling) and every buffer
// is bounded. No sockets, no clocks, no exceptions.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"

namespace ugate::http {
/** BodyFraming says how the body of a final response is delimited (RFC 9112 6.3). */
enum class BodyFraming : uint8_t {
  // None: no body (a response to HEAD, 204, 304).
  None,
  // ContentLength: exactly Response::contentLength bytes.
  ContentLength,
  // Chunked: Transfer-Encoding: chunked, ended by the last chunk and the trailer section.
  Chunked,
  // UntilClose: neither framing header; the body ends when the origin closes (finish()).
  UntilClose,
};

/** Response: the status line and header block of one final (non-1xx) HTTP/1.x response. */
struct Response {
  // status is 200..599 (interim 1xx responses are skipped by the parser).
  int status{0};
  // reason is the reason phrase as received (may be empty); a client ignores it.
  std::string reason;
  // versionMinor is the minor digit of "HTTP/1.x" (0 for HTTP/1.0, 1 for HTTP/1.1).
  int versionMinor{1};
  // headers are the field lines in order, names as received (whitespace before the colon removed
  // as RFC 9112 5.1 requires of a proxy), values with OWS trimmed. When both Transfer-Encoding
  // and Content-Length were received, the Content-Length lines are removed (see framing).
  std::vector<Header> headers;
  BodyFraming framing{BodyFraming::None};
  // contentLength is the validated Content-Length header value, or -1 when absent or removed. It
  // is set for None framing too (HEAD, 304), where it describes the representation, not a body.
  int64_t contentLength{-1};
  // keepAlive is true when the connection may carry another response after this one ends: not
  // for HTTP/1.0 without "Connection: keep-alive", "Connection: close", UntilClose framing, or
  // a response that had both Transfer-Encoding and Content-Length.
  bool keepAlive{false};

  /** find returns the first header named lowerName (case-insensitive), or nullptr. */
  const Header* find(std::string_view lowerName) const;

  /**
   * isHopByHop is true for a connection-specific field a proxy must not forward (to HTTP/3 or
   * elsewhere): Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, TE, Trailer,
   * and every name listed in this response's Connection header(s).
   */
  bool isHopByHop(std::string_view name) const;
};

/**
 * isHopByHop is true when name (any case) is one of the fixed connection-specific fields
 * (connection, keep-alive, proxy-connection, transfer-encoding, upgrade, te, trailer) or is
 * listed in the Connection field(s) of headers.
 */
bool isHopByHop(std::string_view name, const std::vector<Header>& headers);

/** ResponseLimits bounds what one response may make the parser hold or scan. */
struct ResponseLimits {
  // maxHeadBytes bounds one head: status line, header lines, line endings and the empty line.
  size_t maxHeadBytes{16384};
  // maxHeaders bounds the number of header lines of one head, and of trailer lines.
  size_t maxHeaders{100};
  // maxChunkLineBytes bounds one chunk-size line, extensions and line ending included.
  size_t maxChunkLineBytes{4096};
  // maxTrailerBytes bounds the trailer section (trailer lines and the final empty line).
  size_t maxTrailerBytes{8192};
  // maxInterimResponses bounds the 1xx responses skipped before the final one.
  size_t maxInterimResponses{16};
};

/** ResponseEvent is what one ResponseParser::next or finish call reports. */
enum class ResponseEvent : uint8_t {
  // NeedMore: all the input was consumed and nothing else is complete; call again with more.
  NeedMore,
  // Head: response() is complete (the final response; 1xx were skipped). Reported once.
  Head,
  // Body: ResponseStep::body holds decoded body bytes (never empty).
  Body,
  // End: the message is complete; trailers() is final. Input left over belongs to the next
  // response on the connection (only if response().keepAlive; call reset() first).
  End,
  // Error: see error(). The connection must not be reused.
  Error,
};

/** ResponseStep: one event and how much input it used. */
struct ResponseStep {
  ResponseEvent event{ResponseEvent::NeedMore};
  // consumed is the number of bytes of the input given to next() that this step used (framing
  // included); the caller drops them and passes the rest on the next call. 0 for finish().
  size_t consumed{0};
  // body is, for Body, a subspan of next()'s input (no copy); empty otherwise.
  std::span<const uint8_t> body;
};

/**
 * ResponseParser parses one HTTP/1.x response from bytes given in arbitrary pieces. It is a pull
 * parser: next(in) reports at most one event and how many bytes of in it used; the caller loops
 * until NeedMore, keeping the unconsumed rest. Body bytes are never copied: a Body step points
 * into in, so backpressure is the caller's: stop calling next() (or pass a shorter span) while the
 * downstream cannot take more, and keep the unconsumed bytes. Only an incomplete head, chunk-size
 * or trailer line is copied (bounded by ResponseLimits).
 *
 * Split invariance: the sequence of events (with Body bytes concatenated), the response, the
 * trailers, the error and the total of consumed bytes depend only on the concatenated input,
 * never on how it was split.
 *
 * Framing (RFC 9112 6.3): a response to HEAD (expectNoBody), 204 and 304 have no body, whatever
 * their headers say (Transfer-Encoding is then not judged; a Content-Length must still be valid,
 * as it is kept in contentLength); interim 1xx responses are skipped (their fields are dropped) except 101,
 * which is an error (the proxy never asks to upgrade); Transfer-Encoding must be exactly
 * "chunked" (any other coding, "chunked" twice or not last is an error), and TE in an HTTP/1.0
 * response is an error; when both Transfer-Encoding and Content-Length are present,
 * Transfer-Encoding wins, the Content-Length lines are removed from headers and keepAlive is
 * false (RFC 9112 6.3 item 3); Content-Length values must be digits only, fit in int64 and agree
 * when repeated; with neither, the body runs until finish(). Chunk extensions are ignored;
 * trailer fields are parsed (same rules as header lines), bounded, and exposed by trailers() as
 * received (the proxy filters what it forwards). Line endings are CRLF or a bare LF; a bare CR is
 * an error; empty lines before a status line are skipped (within maxHeadBytes); whitespace
 * between a field name and its colon is removed (RFC 9112 5.1); obs-fold is an error. Not
 * thread-safe; one per connection.
 */
class ResponseParser {
 public:
  explicit ResponseParser(ResponseLimits limits = {});

  /**
   * expectNoBody tells the parser the request was HEAD: the final response has no body whatever
   * its framing headers say. Call before the head is parsed; reset() clears it.
   */
  void expectNoBody() { noBody_ = true; }

  /**
   * next parses from in and reports the next event.
   * @param in the unconsumed bytes received so far (the caller keeps what a step did not use).
   *        It need not outlive the call, except that a Body step's body points into it.
   * @return the event; consumed bytes of in were used. NeedMore consumes all of in. End may be
   *         reported with consumed 0 (a body-less response or one whose last body byte was just
   *         reported): call next() after each Body/Head until NeedMore even with empty input.
   *         After End or Error, later calls return the same event, consuming nothing.
   */
  ResponseStep next(std::span<const uint8_t> in);

  /**
   * finish tells the parser the origin closed the connection (EOF). Call it once next() has
   * returned NeedMore for all the bytes received.
   * @return End when the response is complete (an UntilClose body ends here, or End was already
   *         reported), otherwise Error: "connection closed before response" when no byte was
   *         received, "truncated response head" or "truncated body".
   */
  ResponseStep finish();

  /** response is the parsed head; complete once Head was reported. */
  const Response& response() const { return response_; }
  /** takeResponse moves the head out (after Head). */
  Response takeResponse();
  /** trailers are the chunked trailer fields, names as received; complete at End. */
  const std::vector<Header>& trailers() const { return trailers_; }
  /** error is a short static description of the failure, or empty when there is none. */
  std::string_view error() const { return error_; }
  /** bodyBytes is the number of decoded body bytes reported so far. */
  uint64_t bodyBytes() const { return bodyBytes_; }

  /** reset prepares the parser for the next response on the same connection. */
  void reset();

 private:
  enum class State : uint8_t {
    StatusLine,
    Headers,
    BodyLength,
    ChunkLine,
    ChunkData,
    ChunkDataCr,
    ChunkDataLf,
    Trailers,
    UntilClose,
    Done,
    Error
  };
  ResponseStep fail(std::string_view reason, size_t consumed);
  std::string_view parseStatusLine(std::string_view line);
  std::string_view parseFieldLine(std::string_view line, std::vector<Header>& out);
  std::string_view finishHead();
  std::string_view parseChunkLine(std::string_view line);

  ResponseLimits limits_;
  bool noBody_{false};
  State state_{State::StatusLine};
  // sawBytes_ is true once any byte of this response was consumed (for finish()).
  bool sawBytes_{false};
  // pendingCr_ is true when partial_ ends with a CR that must be followed by LF.
  bool pendingCr_{false};
  // lineBytes_ counts the bytes of the current budgeted section so far (head, chunk line or
  // trailer section), partial_ included.
  size_t lineBytes_{0};
  // partial_ holds an incomplete line carried over between next() calls (bounded by a limit).
  std::string partial_;
  // remaining_ is the body bytes left in the Content-Length body or the current chunk.
  uint64_t remaining_{0};
  uint64_t bodyBytes_{0};
  size_t interim_{0};
  Response response_;
  std::vector<Header> trailers_;
  std::string_view error_;
};

/** kChunkedBody: formatRequestHead's contentLength for a body of unknown length (chunked). */
inline constexpr int64_t kChunkedBody = -1;
/** kNoBody: formatRequestHead's contentLength for a request without a body (no framing). */
inline constexpr int64_t kNoBody = -2;

/**
 * formatRequestHead builds an HTTP/1.1 request line and header block for an origin.
 * @param method a token ("GET"); target an origin-form or absolute-form target or "*" (visible
 *        ASCII, no space); host the Host value (uri-host [":" port]), written first.
 * @param headers written in order, except those with an invalid name (pseudo-headers such as
 *        ":path" included), a CR, LF or other control character in the value, and Host,
 *        Content-Length and the fixed hop-by-hop names of isHopByHop (the framing is written
 *        here).
 * @param contentLength >= 0 writes "Content-Length: N"; kChunkedBody writes
 *        "Transfer-Encoding: chunked" (then send the body with appendChunk/appendLastChunk);
 *        kNoBody writes neither.
 * @param keepAlive false writes "Connection: close".
 * @return the head ending with the empty line, or an empty string when method, target or host is
 *         invalid (the caller answers 400 and sends nothing).
 */
std::string formatRequestHead(std::string_view method, std::string_view target,
                              std::string_view host, const std::vector<Header>& headers,
                              int64_t contentLength, bool keepAlive = true);

/** appendChunkHeader appends "<size in hex>\r\n"; the caller then writes size bytes and "\r\n". */
void appendChunkHeader(std::string& out, size_t size);

/** appendChunk appends one chunk holding data; empty data appends nothing (it would end the body).
 */
void appendChunk(std::string& out, std::span<const uint8_t> data);

/** appendLastChunk appends the last chunk and an empty trailer section: "0\r\n\r\n". */
void appendLastChunk(std::string& out);

}  // namespace ugate::http

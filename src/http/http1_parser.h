#pragma once
// HTTP/1.1 codec, sans-I/O: a resumable, bounded request-head parser and a response formatter.
// Used by the admin endpoint and by the HTTP CONNECT proxy. It parses untrusted bytes, so it is
// strict (RFC 9112 grammar, anti-smuggling framing rules) and never buffers more than
// maxHeaderBytes. No sockets, no clocks, no exceptions.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ugate::http {

/** Header: one field line. name keeps the case it was received in; value has OWS trimmed. */
struct Header {
  std::string name;
  std::string value;
};

/** Request: the request line and header block of one HTTP/1.x request. */
struct Request {
  // method is the request method token, case-sensitive ("GET", "CONNECT").
  std::string method;
  // target is the request-target as received: origin-form ("/a?b"), absolute-form
  // ("http://host/path"), authority-form for CONNECT ("host:port") or "*" for OPTIONS.
  std::string target;
  // versionMinor is 0 for HTTP/1.0 and 1 for HTTP/1.1.
  int versionMinor{1};
  std::vector<Header> headers;
  // keepAlive is the persistence decision from the version and the Connection header.
  bool keepAlive{false};
  // contentLength is the validated Content-Length, or -1 when absent (always -1 when chunked).
  int64_t contentLength{-1};
  // chunked is true when Transfer-Encoding is exactly "chunked".
  bool chunked{false};

  /**
   * find returns the first header whose name equals lowerName, compared case-insensitively.
   * @return a pointer into headers (invalidated when headers changes), or nullptr.
   */
  const Header* find(std::string_view lowerName) const;
};

enum class ParseStatus { Done, NeedMore, Error };

/**
 * RequestParser parses a request line and header block fed in arbitrary pieces. The result, and
 * any error (status and message), depend only on the concatenated bytes, never on how they were
 * split. The body is not parsed: it belongs to the caller. Not thread-safe; one per connection.
 */
class RequestParser {
 public:
  /**
   * @param maxHeaderBytes bound on the whole head (request line, header lines, line endings and
   *        the final empty line); exceeding it fails with 431.
   * @param maxHeaders bound on the number of header lines; exceeding it fails with 431.
   */
  explicit RequestParser(size_t maxHeaderBytes = 16384, size_t maxHeaders = 100);

  /**
   * feed parses the next bytes of the stream. The parser copies only an incomplete trailing line;
   * data need not outlive the call.
   * @param data the next bytes received.
   * @param consumed set to the number of bytes of data used. On NeedMore it is data.size(). On
   *        Done it ends just after the head's final line ending; the rest of data is body, tunnel
   *        or a pipelined request and is left to the caller. On Error it is the bytes examined.
   * @return Done when the head is complete and valid (see request()), NeedMore when more bytes
   *         are needed, Error when the request is invalid (see error() and errorStatus()). Once
   *         Done or Error is returned, later calls return the same status and consume nothing
   *         until reset().
   */
  ParseStatus feed(std::span<const uint8_t> data, size_t& consumed);

  /** request is the parsed request; complete only after feed returned Done. */
  const Request& request() const { return request_; }

  /** takeRequest moves the parsed request out. Call reset() before parsing the next request. */
  Request takeRequest();

  /** error is a short static description of the failure, or empty when there is none. */
  std::string_view error() const { return error_; }

  /**
   * errorStatus is the HTTP status to answer with: 400 malformed or ambiguous framing, 431 head
   * or header count over limit, 501 unsupported transfer coding, 505 unsupported version; 0 when
   * there is no error. The caller should send it with keepAlive false and close.
   */
  int errorStatus() const { return errorStatus_; }

  /** reset prepares the parser for the next request on the same connection, keeping capacity. */
  void reset();

 private:
  enum class State : uint8_t { RequestLine, Headers, Done, Error };

  ParseStatus fail(int status, std::string_view message);
  ParseStatus processLine(std::string_view line);
  ParseStatus parseRequestLine(std::string_view line);
  ParseStatus parseHeaderLine(std::string_view line);
  ParseStatus finishHead();

  // maxHeaderBytes_ is the bound on the whole head in bytes.
  const size_t maxHeaderBytes_;
  // maxHeaders_ is the bound on the number of header lines.
  const size_t maxHeaders_;
  State state_{State::RequestLine};
  // pendingCr_ is true when partial_ ends with a CR that must be followed by LF.
  bool pendingCr_{false};
  // headBytes_ counts the bytes of the head seen so far, including partial_.
  size_t headBytes_{0};
  // partial_ holds an incomplete line carried over between feed calls (at most maxHeaderBytes_).
  std::string partial_;
  Request request_;
  std::string_view error_;
  int errorStatus_{0};
};

/**
 * statusReason returns the standard reason phrase for status, or an empty view for codes it does
 * not know (an empty reason phrase is valid HTTP/1.1).
 */
std::string_view statusReason(int status);

/**
 * formatResponse builds a complete HTTP/1.1 response. It always writes the framing itself:
 * "Content-Length" (omitted, with the body, for 1xx, 204 and 304) and "Connection: keep-alive" or
 * "Connection: close". Caller headers named Content-Length, Transfer-Encoding or Connection are
 * dropped, as are headers with an invalid name or a control character in the value (no response
 * splitting). An empty or invalid reason is replaced by statusReason(status); a status outside
 * 100..999 becomes 500. Not for HEAD responses or CONNECT 2xx: use formatResponseHead.
 */
std::string formatResponse(int status, std::string_view reason, const std::vector<Header>& headers,
                           std::string_view body, bool keepAlive);

/**
 * formatResponseHead builds only the status line and header block, with the same sanitising as
 * formatResponse.
 * @param contentLength written as Content-Length when >= 0; pass -1 to omit it, as required for a
 *        2xx answer to CONNECT (the connection then becomes a tunnel).
 */
std::string formatResponseHead(int status, std::string_view reason,
                               const std::vector<Header>& headers, int64_t contentLength,
                               bool keepAlive);

}  // namespace ugate::http

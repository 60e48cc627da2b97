#include "http/http1_response.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"

namespace ugate::http {
namespace {

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string_view text(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

const char* eventName(ResponseEvent e) {
  switch (e) {
    case ResponseEvent::NeedMore:
      return "NeedMore";
    case ResponseEvent::Head:
      return "Head";
    case ResponseEvent::Body:
      return "Body";
    case ResponseEvent::End:
      return "End";
    case ResponseEvent::Error:
      return "Error";
  }
  return "?";
}

// Trace: everything observable about parsing one response, for comparing feeding strategies.
struct Trace {
  // events: the reported events in order, a run of Body events folded into one "Body".
  std::string events;
  std::string body;
  Response head;
  std::vector<Header> trailers;
  std::string error;
  // consumed: the total bytes the parser used.
  size_t consumed{0};
  ResponseEvent last{ResponseEvent::NeedMore};
  // bodyPiecesOutsideInput counts Body spans that did not point into the caller's buffer.
  int bodyPiecesOutsideInput{0};
};

// parse feeds input split at cuts (ascending offsets) the way a connection would: the caller
// keeps unconsumed bytes in a buffer, appends each piece and calls next() until NeedMore. It
// stops at End or Error; with eof it then calls finish() if the message is not over.
Trace parse(std::string_view input, const std::vector<size_t>& cuts, bool eof = false,
            ResponseParser parser = ResponseParser()) {
  Trace t;
  std::string pending;
  size_t start = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  auto record = [&](ResponseEvent e) {
    t.last = e;
    if (e == ResponseEvent::NeedMore) {
      return;
    }
    const std::string name = eventName(e);
    if (e == ResponseEvent::Body && t.events.size() >= 4 &&
        t.events.compare(t.events.size() - 4, 4, "Body") == 0) {
      return;
    }
    t.events += t.events.empty() ? name : " " + name;
  };
  bool over = false;
  for (size_t end : ends) {
    pending.append(input.substr(start, end - start));
    start = end;
    while (!over) {
      const ResponseStep s = parser.next(bytes(pending));
      record(s.event);
      if (s.event == ResponseEvent::Body) {
        const auto* lo = reinterpret_cast<const uint8_t*>(pending.data());
        if (s.body.empty() || s.body.data() < lo ||
            s.body.data() + s.body.size() > lo + pending.size()) {
          ++t.bodyPiecesOutsideInput;
        }
        t.body.append(text(s.body));
      }
      t.consumed += s.consumed;
      EXPECT_LE(s.consumed, pending.size());
      pending.erase(0, s.consumed);
      if (s.event == ResponseEvent::NeedMore) {
        EXPECT_TRUE(pending.empty()) << "NeedMore must consume everything";
        break;
      }
      over = s.event == ResponseEvent::End || s.event == ResponseEvent::Error;
    }
  }
  if (eof && !over) {
    const ResponseStep s = parser.finish();
    EXPECT_EQ(s.consumed, 0u);
    record(s.event);
  }
  t.head = parser.response();
  t.trailers = parser.trailers();
  t.error = std::string(parser.error());
  return t;
}

Trace parseWhole(std::string_view input, bool eof = false,
                 ResponseParser parser = ResponseParser()) {
  return parse(input, {}, eof, std::move(parser));
}

std::vector<size_t> everyByte(std::string_view input) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < input.size(); ++i) {
    cuts.push_back(i);
  }
  return cuts;
}

void expectSameHeaders(const std::vector<Header>& a, const std::vector<Header>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].value, b[i].value);
  }
}

void expectSameTrace(const Trace& a, const Trace& b) {
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.consumed, b.consumed);
  EXPECT_EQ(a.last, b.last);
  EXPECT_EQ(a.head.status, b.head.status);
  EXPECT_EQ(a.head.reason, b.head.reason);
  EXPECT_EQ(a.head.versionMinor, b.head.versionMinor);
  EXPECT_EQ(a.head.framing, b.head.framing);
  EXPECT_EQ(a.head.contentLength, b.head.contentLength);
  EXPECT_EQ(a.head.keepAlive, b.head.keepAlive);
  expectSameHeaders(a.head.headers, b.head.headers);
  expectSameHeaders(a.trailers, b.trailers);
}

std::string errorOf(std::string_view input, bool eof = false,
                    ResponseParser parser = ResponseParser()) {
  const Trace t = parseWhole(input, eof, std::move(parser));
  EXPECT_EQ(t.last, ResponseEvent::Error) << "input: " << input << " events: " << t.events;
  return t.error;
}

// RFC 9112 section 1: the example response.
constexpr std::string_view kRfcExample =
    "HTTP/1.1 200 OK\r\n"
    "Date: Mon, 27 Jul 2009 12:28:53 GMT\r\n"
    "Server: Apache\r\n"
    "Last-Modified: Wed, 22 Jul 2009 19:15:56 GMT\r\n"
    "ETag: \"34aa387-d-1568eb00\"\r\n"
    "Accept-Ranges: bytes\r\n"
    "Content-Length: 51\r\n"
    "Vary: Accept-Encoding\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "Hello World! My content includes a trailing CRLF.\r\n";

TEST(Http1ResponseTest, RfcExampleWithContentLength) {
  const Trace t = parseWhole(kRfcExample);
  EXPECT_EQ(t.events, "Head Body End");
  EXPECT_EQ(t.body, "Hello World! My content includes a trailing CRLF.\r\n");
  EXPECT_EQ(t.consumed, kRfcExample.size());
  EXPECT_EQ(t.head.status, 200);
  EXPECT_EQ(t.head.reason, "OK");
  EXPECT_EQ(t.head.versionMinor, 1);
  EXPECT_EQ(t.head.framing, BodyFraming::ContentLength);
  EXPECT_EQ(t.head.contentLength, 51);
  EXPECT_TRUE(t.head.keepAlive);
  ASSERT_EQ(t.head.headers.size(), 8u);
  EXPECT_EQ(t.head.headers[3].name, "ETag");
  EXPECT_EQ(t.head.headers[3].value, "\"34aa387-d-1568eb00\"");
  ASSERT_NE(t.head.find("content-type"), nullptr);
  EXPECT_EQ(t.head.find("content-type")->value, "text/plain");
  EXPECT_EQ(t.bodyPiecesOutsideInput, 0);
  EXPECT_TRUE(t.error.empty());
}

TEST(Http1ResponseTest, BodyPointsIntoTheInputAndStopsAtContentLength) {
  const std::string in = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1";
  ResponseParser p;
  ResponseStep s = p.next(bytes(in));
  ASSERT_EQ(s.event, ResponseEvent::Head);
  const size_t headLen = in.find("abc");
  EXPECT_EQ(s.consumed, headLen);
  s = p.next(bytes(in).subspan(headLen));
  ASSERT_EQ(s.event, ResponseEvent::Body);
  EXPECT_EQ(s.body.data(), reinterpret_cast<const uint8_t*>(in.data()) + headLen);
  EXPECT_EQ(text(s.body), "abc");
  EXPECT_EQ(s.consumed, 3u);
  s = p.next(bytes(in).subspan(headLen + 3));
  EXPECT_EQ(s.event, ResponseEvent::End);
  EXPECT_EQ(s.consumed, 0u) << "the next response's bytes are left to the caller";
  EXPECT_EQ(p.bodyBytes(), 3u);
  // End is sticky until reset().
  s = p.next(bytes("more"));
  EXPECT_EQ(s.event, ResponseEvent::End);
  EXPECT_EQ(s.consumed, 0u);
}

TEST(Http1ResponseTest, ChunkedWithExtensionsAndTrailers) {
  const std::string in =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
      "4\r\nWiki\r\n"
      "5;name=value;flag\r\npedia\r\n"
      "E ; ext=\"quoted\"\r\n in\r\n\r\nchunks.\r\n"
      "0;last\r\n"
      "X-Checksum: abc\r\nExpires : never\r\n\r\n"
      "tail";
  const Trace t = parseWhole(in);
  EXPECT_EQ(t.events, "Head Body End");
  EXPECT_EQ(t.body, "Wikipedia in\r\n\r\nchunks.");
  EXPECT_EQ(t.consumed, in.size() - 4);
  EXPECT_EQ(t.head.framing, BodyFraming::Chunked);
  EXPECT_EQ(t.head.contentLength, -1);
  EXPECT_TRUE(t.head.keepAlive);
  ASSERT_EQ(t.trailers.size(), 2u);
  EXPECT_EQ(t.trailers[0].name, "X-Checksum");
  EXPECT_EQ(t.trailers[0].value, "abc");
  EXPECT_EQ(t.trailers[1].name, "Expires");
  EXPECT_EQ(t.trailers[1].value, "never");
  EXPECT_EQ(t.bodyPiecesOutsideInput, 0);
}

TEST(Http1ResponseTest, ChunkedReportsEachChunkAsItArrives) {
  const std::string in =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  ResponseParser p;
  std::span<const uint8_t> rest = bytes(in);
  std::vector<std::string> pieces;
  while (true) {
    const ResponseStep s = p.next(rest);
    rest = rest.subspan(s.consumed);
    if (s.event == ResponseEvent::Body) {
      pieces.emplace_back(text(s.body));
    } else if (s.event != ResponseEvent::Head) {
      EXPECT_EQ(s.event, ResponseEvent::End);
      break;
    }
  }
  EXPECT_EQ(pieces, (std::vector<std::string>{"abc", "de"}));
  EXPECT_TRUE(rest.empty());
}

TEST(Http1ResponseTest, BareLfLineEndingsAreAccepted) {
  const Trace t =
      parseWhole("\r\nHTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nhi\n0\nT: v\n\n");
  EXPECT_EQ(t.events, "Head Body End");
  EXPECT_EQ(t.body, "hi");
  ASSERT_EQ(t.trailers.size(), 1u);
  EXPECT_EQ(t.trailers[0].value, "v");
}

TEST(Http1ResponseTest, StatusLineForms) {
  Trace t = parseWhole("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(t.events, "Head End");
  EXPECT_EQ(t.head.status, 404);
  EXPECT_EQ(t.head.reason, "");
  t = parseWhole("HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(t.head.status, 503);
  EXPECT_EQ(t.head.reason, "");
  t = parseWhole("HTTP/1.1 200 Very \tOK \x80\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(t.head.reason, "Very \tOK \x80");
  t = parseWhole("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(t.events, "Head End");
  EXPECT_EQ(t.head.versionMinor, 2);
}

TEST(Http1ResponseTest, CloseDelimitedBody) {
  const std::string in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this\r\n0\r\n";
  const Trace t = parseWhole(in, /*eof=*/true);
  EXPECT_EQ(t.events, "Head Body End");
  EXPECT_EQ(t.body, "all of this\r\n0\r\n");
  EXPECT_EQ(t.head.framing, BodyFraming::UntilClose);
  EXPECT_FALSE(t.head.keepAlive);
  EXPECT_TRUE(t.error.empty());
  // Without EOF the body is still open.
  EXPECT_EQ(parseWhole(in).last, ResponseEvent::NeedMore);
  // An empty close-delimited body, HTTP/1.0.
  const Trace empty = parseWhole("HTTP/1.0 200 OK\r\n\r\n", true);
  EXPECT_EQ(empty.events, "Head End");
  EXPECT_EQ(empty.head.versionMinor, 0);
}

TEST(Http1ResponseTest, HeadResponseHasNoBody) {
  const std::string in =
      "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nTransfer-Encoding: gzip\r\n\r\n"
      "HTTP/1.1 200 OK\r\n";
  ResponseParser p;
  p.expectNoBody();
  const Trace t = parseWhole(in, false, p);
  EXPECT_EQ(t.events, "Head End");
  EXPECT_EQ(t.body, "");
  EXPECT_EQ(t.consumed, in.find("HTTP/1.1", 5));
  EXPECT_EQ(t.head.framing, BodyFraming::None);
  EXPECT_EQ(t.head.contentLength, 1234) << "the representation's length is kept for the proxy";
  EXPECT_TRUE(t.head.keepAlive);
  // The same head without expectNoBody is an error (gzip transfer coding).
  EXPECT_EQ(errorOf(in), "unsupported transfer coding");
}

TEST(Http1ResponseTest, NoContentAndNotModifiedHaveNoBody) {
  for (const std::string status : {"204 No Content", "304 Not Modified"}) {
    SCOPED_TRACE(status);
    const std::string in = "HTTP/1.1 " + status +
                           "\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    ResponseParser p;
    std::span<const uint8_t> rest = bytes(in);
    ResponseStep s = p.next(rest);
    ASSERT_EQ(s.event, ResponseEvent::Head);
    rest = rest.subspan(s.consumed);
    EXPECT_EQ(p.response().framing, BodyFraming::None);
    s = p.next(rest);
    ASSERT_EQ(s.event, ResponseEvent::End);
    EXPECT_EQ(s.consumed, 0u);
    ASSERT_TRUE(p.response().keepAlive);
    // The connection carries the next response.
    p.reset();
    const Trace next = parseWhole(text(rest), false, p);
    EXPECT_EQ(next.events, "Head Body End");
    EXPECT_EQ(next.body, "ok");
  }
}

TEST(Http1ResponseTest, InterimResponsesAreSkipped) {
  const std::string in =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
  const Trace t = parseWhole(in);
  EXPECT_EQ(t.events, "Head Body End");
  EXPECT_EQ(t.head.status, 201);
  EXPECT_EQ(t.head.reason, "Created");
  ASSERT_EQ(t.head.headers.size(), 1u);
  EXPECT_EQ(t.head.headers[0].name, "Content-Length");
  EXPECT_EQ(t.body, "ok");

  ResponseLimits limits;
  limits.maxInterimResponses = 1;
  EXPECT_EQ(errorOf(in, false, ResponseParser(limits)), "too many interim responses");
  EXPECT_EQ(errorOf("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
            "unexpected 101 Switching Protocols");
  // EOF after an interim response is a truncated head, not a clean end.
  EXPECT_EQ(errorOf("HTTP/1.1 100 Continue\r\n\r\n", true), "truncated response head");
}

TEST(Http1ResponseTest, TransferEncodingWinsOverContentLength) {
  const std::string in =
      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n"
      "content-length: 7\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  const Trace t = parseWhole(in);
  EXPECT_EQ(t.events, "Head Body End");
  EXPECT_EQ(t.body, "abc");
  EXPECT_EQ(t.head.framing, BodyFraming::Chunked);
  EXPECT_EQ(t.head.contentLength, -1);
  EXPECT_EQ(t.head.find("content-length"), nullptr) << "Content-Length lines are removed";
  ASSERT_EQ(t.head.headers.size(), 2u);
  EXPECT_EQ(t.head.headers[0].name, "X-A");
  EXPECT_FALSE(t.head.keepAlive) << "the connection is not reused after conflicting framing";
}

TEST(Http1ResponseTest, ContentLengthListsAndWhitespaceBeforeColon) {
  Trace t = parseWhole("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(t.events, "Head Body End");
  EXPECT_EQ(t.head.contentLength, 3);
  // RFC 9112 5.1: a proxy removes whitespace between a response field name and the colon.
  t = parseWhole("HTTP/1.1 200 OK\r\nContent-Length \t: 2\r\n\r\nabc");
  EXPECT_EQ(t.events, "Head Body End");
  EXPECT_EQ(t.body, "ab");
  EXPECT_EQ(t.head.headers[0].name, "Content-Length");
  t = parseWhole("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(t.events, "Head End");
}

TEST(Http1ResponseTest, KeepAliveDecision) {
  EXPECT_TRUE(parseWhole("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").head.keepAlive);
  EXPECT_FALSE(parseWhole("HTTP/1.1 200 OK\r\nConnection: x, Close\r\nContent-Length: 0\r\n\r\n")
                   .head.keepAlive);
  EXPECT_FALSE(parseWhole("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").head.keepAlive);
  EXPECT_TRUE(parseWhole("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
                  .head.keepAlive);
}

TEST(Http1ResponseTest, FramingErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Transfer-Encoding: gzip", "unsupported transfer coding"},
      {"Transfer-Encoding: gzip, chunked", "unsupported transfer coding"},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity", "unsupported transfer coding"},
      {"Transfer-Encoding: chunked, chunked", "chunked applied more than once"},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
       "chunked applied more than once"},
      {"Transfer-Encoding: ,", "empty Transfer-Encoding"},
      {"Transfer-Encoding:", "empty Transfer-Encoding"},
      {"Content-Length: +5", "invalid Content-Length"},
      {"Content-Length: -1", "invalid Content-Length"},
      {"Content-Length: 5a", "invalid Content-Length"},
      {"Content-Length: 0x5", "invalid Content-Length"},
      {"Content-Length:", "invalid Content-Length"},
      {"Content-Length: 5,", "invalid Content-Length"},
      {"Content-Length: 9223372036854775808", "invalid Content-Length"},
      {"Content-Length: 99999999999999999999999", "invalid Content-Length"},
      {"Content-Length: 5\r\nContent-Length: 6", "conflicting Content-Length values"},
      {"Content-Length: 5, 6", "conflicting Content-Length values"},
  };
  for (const auto& [field, reason] : cases) {
    SCOPED_TRACE(field);
    EXPECT_EQ(errorOf("HTTP/1.1 200 OK\r\n" + field + "\r\n\r\n0\r\n\r\n"), reason);
  }
  EXPECT_EQ(errorOf("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            "Transfer-Encoding in HTTP/1.0 response");
  // The largest valid length parses.
  const Trace big = parseWhole("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n");
  EXPECT_EQ(big.events, "Head");
  EXPECT_EQ(big.head.contentLength, 9223372036854775807LL);
}

TEST(Http1ResponseTest, HeadSyntaxErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"HTTP/2 200 OK\r\n\r\n", "malformed status line"},
      {"HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version"},
      {"HTTP/0.9 200 OK\r\n\r\n", "unsupported HTTP version"},
      {"http/1.1 200 OK\r\n\r\n", "malformed status line"},
      {"HTTP/1.1  200 OK\r\n\r\n", "malformed status line"},
      {"HTTP/1.1 20 OK\r\n\r\n", "malformed status line"},
      {"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line"},
      {"HTTP/1.1 2x0 OK\r\n\r\n", "malformed status line"},
      {"HTTP/1.1 099 OK\r\n\r\n", "invalid status code"},
      {"HTTP/1.1 600 OK\r\n\r\n", "invalid status code"},
      {"SSH-2.0-OpenSSH_9.6\r\n", "malformed status line"},
      {"HTTP/1.1 200 O\x01K\r\n\r\n", "invalid character in status line"},
      {"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", "invalid character in header field"},
      {"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "CR not followed by LF"},
      {"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "obsolete line folding"},
      {"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "header line without colon"},
      {"HTTP/1.1 200 OK\r\n: empty\r\n\r\n", "invalid header name"},
      {"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "invalid header name"},
      {"HTTP/1.1 200 OK\r\nBad\x80: x\r\n\r\n", "invalid header name"},
  };
  for (const auto& [in, reason] : cases) {
    SCOPED_TRACE(in);
    EXPECT_EQ(errorOf(in), reason);
  }
}

TEST(Http1ResponseTest, ChunkErrors) {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"zz\r\n", "invalid chunk size"},
      {"\r\n", "invalid chunk size"},
      {"-1\r\n", "invalid chunk size"},
      {"0x5\r\n", "invalid chunk size"},
      {"5 \r\nhello\r\n", "invalid chunk size"},
      {"5 x\r\nhello\r\n", "invalid chunk size"},
      {"8000000000000000\r\n", "chunk size too large"},
      {"00000000000000000000000000000000000000001\r\nx\r\n0\r\n\r\n", ""},
      {"5\r\nhelloX\r\n", "missing CRLF after chunk data"},
      {"5\r\nhello\rX", "missing CRLF after chunk data"},
      {"5;a=\x01\r\n", "invalid character in chunk size line"},
      {"5\r\nhello\r\n0\r\nT: \x7f\r\n\r\n", "invalid character in trailer field"},
      {"0\r\n folded\r\n\r\n", "obsolete line folding"},
      {"0\r\nno colon\r\n\r\n", "header line without colon"},
  };
  for (const auto& [body, reason] : cases) {
    SCOPED_TRACE(body);
    const Trace t = parseWhole(head + body);
    if (reason.empty()) {
      EXPECT_EQ(t.events, "Head Body End");
      EXPECT_EQ(t.body, "x");
    } else {
      EXPECT_EQ(t.last, ResponseEvent::Error);
      EXPECT_EQ(t.error, reason);
    }
  }
  // The largest chunk size that fits int64 is accepted.
  EXPECT_EQ(parseWhole(head + "7fffffffffffffff\r\nabc").events, "Head Body");
}

TEST(Http1ResponseTest, Limits) {
  ResponseLimits limits;
  limits.maxHeadBytes = 64;
  limits.maxHeaders = 2;
  limits.maxChunkLineBytes = 8;
  limits.maxTrailerBytes = 16;
  // A head of exactly maxHeadBytes passes; one byte more fails.
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: ";
  head += std::string(64 - head.size() - 4, 'v') + "\r\n\r\n";
  ASSERT_EQ(head.size(), 64u);
  EXPECT_EQ(parseWhole(head, false, ResponseParser(limits)).events, "Head End");
  head.insert(head.find("vv"), "v");
  EXPECT_EQ(errorOf(head, false, ResponseParser(limits)), "response head too large");
  // The default limit: 16 KiB.
  EXPECT_EQ(errorOf("HTTP/1.1 200 OK\r\nX: " + std::string(16384, 'a') + "\r\n\r\n"),
            "response head too large");
  EXPECT_EQ(
      errorOf("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", false, ResponseParser(limits)),
      "too many headers");

  const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  // "2;abc\r\n" is 7 bytes, "2;abcd\r\n" is 8 (the limit), "2;abcde\r\n" is 9.
  EXPECT_EQ(parseWhole(chunked + "2;abcd\r\nhi\r\n0\r\n\r\n", false, ResponseParser(limits)).events,
            "Head Body End");
  EXPECT_EQ(errorOf(chunked + "2;abcde\r\nhi\r\n0\r\n\r\n", false, ResponseParser(limits)),
            "chunk size line too long");
  // Trailer section: "A: 123456789\r\n\r\n" is 16 bytes.
  EXPECT_EQ(parseWhole(chunked + "0\r\nA: 123456789\r\n\r\n", false, ResponseParser(limits)).events,
            "Head End");
  EXPECT_EQ(errorOf(chunked + "0\r\nA: 1234567890\r\n\r\n", false, ResponseParser(limits)),
            "trailer section too large");
  ResponseLimits fewFields = limits;
  fewFields.maxTrailerBytes = 8192;
  EXPECT_EQ(parseWhole(chunked + "0\r\nA: 1\r\nB: 2\r\n\r\n", false, ResponseParser(fewFields))
                .trailers.size(),
            2u);
  EXPECT_EQ(errorOf(chunked + "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n", false, ResponseParser(fewFields)),
            "too many trailer fields");
  // Each chunk line has its own budget: many small chunks are fine.
  std::string many = chunked;
  for (int i = 0; i < 100; ++i) {
    many += "1;abcd\r\nx\r\n";
  }
  many += "0\r\n\r\n";
  const Trace t = parseWhole(many, false, ResponseParser(limits));
  EXPECT_EQ(t.events, "Head Body End");
  EXPECT_EQ(t.body, std::string(100, 'x'));
}

TEST(Http1ResponseTest, Truncation) {
  EXPECT_EQ(errorOf("", true), "connection closed before response");
  EXPECT_EQ(errorOf("HTTP/1.1 200 O", true), "truncated response head");
  EXPECT_EQ(errorOf("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", true), "truncated response head");
  EXPECT_EQ(errorOf("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcd", true), "truncated body");
  const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const std::string tail :
       {"", "5", "5\r\nab", "5\r\nhello", "5\r\nhello\r", "0\r\n", "0\r\nX: y\r\n", "0\r\n\r"}) {
    SCOPED_TRACE(tail);
    const Trace t = parseWhole(chunked + tail, true);
    EXPECT_EQ(t.last, ResponseEvent::Error);
    EXPECT_EQ(t.error, "truncated body");
  }
  // finish after a complete message is a clean End, and after an error stays an error.
  ResponseParser p;
  ASSERT_EQ(p.next(bytes("HTTP/1.1 204 No Content\r\n\r\n")).event, ResponseEvent::Head);
  EXPECT_EQ(p.finish().event, ResponseEvent::End);
  ResponseParser bad;
  ASSERT_EQ(bad.next(bytes("nope\r\n")).event, ResponseEvent::Error);
  EXPECT_EQ(bad.finish().event, ResponseEvent::Error);
  EXPECT_EQ(bad.error(), "malformed status line");
  EXPECT_EQ(bad.next(bytes("HTTP/1.1 200 OK\r\n")).consumed, 0u);
}

TEST(Http1ResponseTest, ErrorConsumedIsTheOffendingPosition) {
  const std::string in = "HTTP/1.1 200 OK\r\nX: a\x01";
  ResponseParser p;
  const ResponseStep s = p.next(bytes(in));
  EXPECT_EQ(s.event, ResponseEvent::Error);
  EXPECT_EQ(s.consumed, in.size() - 1);
}

std::vector<std::string> splitCases() {
  const std::string chunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  return {
      std::string(kRfcExample),
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbodyNEXT",
      chunkedHead + "4\r\nWiki\r\n5;a=b\r\npedia\r\n0\r\nX-T: 1\r\n\r\nleft",
      chunkedHead + "1\nA\n10\n0123456789abcdef\n0\n\n",
      "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nclose delimited body",
      "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      // Errors and truncation must not depend on the split either.
      "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      chunkedHead + "5\r\nhelloX",
      chunkedHead + "5\r\nhel",
      chunkedHead + "0\r\nBad Trailer\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
  };
}

TEST(Http1ResponseTest, SplitAtEveryOffsetGivesSameEvents) {
  for (const std::string& in : splitCases()) {
    for (bool eof : {false, true}) {
      SCOPED_TRACE(testing::Message() << in << " eof=" << eof);
      const Trace whole = parseWhole(in, eof);
      for (size_t cut = 0; cut <= in.size(); ++cut) {
        SCOPED_TRACE(cut);
        expectSameTrace(parse(in, {cut}, eof), whole);
      }
      const Trace byByte = parse(in, everyByte(in), eof);
      expectSameTrace(byByte, whole);
      EXPECT_EQ(byByte.bodyPiecesOutsideInput, 0);
    }
  }
}

TEST(Http1ResponseTest, SplitInvarianceCanFail) {
  // The comparison used above notices a different result: guard against a vacuous check.
  const Trace a = parseWhole("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  const Trace b = parseWhole("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabd");
  EXPECT_NE(a.body, b.body);
  EXPECT_EQ(a.events, b.events);
}

TEST(Http1ResponseTest, BigBodiesAcrossPieces) {
  std::mt19937 rng(12345);
  std::string payload(1 << 20, '\0');
  for (char& c : payload) {
    c = static_cast<char>(rng());
  }
  // Content-Length body in odd-sized pieces.
  const std::string cl =
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(payload.size()) + "\r\n\r\n" + payload;
  std::vector<size_t> cuts;
  for (size_t at = 1; at < cl.size(); at += 7919) {
    cuts.push_back(at);
  }
  Trace t = parse(cl, cuts);
  EXPECT_EQ(t.events, "Head Body End");
  EXPECT_TRUE(t.body == payload);
  EXPECT_EQ(t.bodyPiecesOutsideInput, 0);

  // Chunked with random chunk sizes, fed in random pieces.
  std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t at = 0; at < payload.size();) {
    const size_t n = std::min<size_t>(1 + rng() % 70000, payload.size() - at);
    appendChunk(chunked, bytes(std::string_view(payload).substr(at, n)));
    at += n;
  }
  appendLastChunk(chunked);
  cuts.clear();
  for (size_t at = 1; at < chunked.size(); at += 1 + rng() % 20000) {
    cuts.push_back(at);
  }
  t = parse(chunked, cuts);
  EXPECT_EQ(t.events, "Head Body End");
  EXPECT_TRUE(t.body == payload);
  EXPECT_EQ(t.consumed, chunked.size());
  EXPECT_EQ(t.bodyPiecesOutsideInput, 0);
}

TEST(Http1ResponseTest, BackpressureByOfferingFewerBytes) {
  // The caller offers at most 3 bytes per call (what the downstream can take); the parser
  // reports no more than offered and holds nothing back.
  const std::string in = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
  ResponseParser p;
  size_t pos = 0;
  ResponseStep s = p.next(bytes(in));
  ASSERT_EQ(s.event, ResponseEvent::Head);
  pos += s.consumed;
  std::string body;
  while (true) {
    const std::span<const uint8_t> window =
        bytes(in).subspan(pos, std::min<size_t>(3, in.size() - pos));
    s = p.next(window);
    pos += s.consumed;
    if (s.event == ResponseEvent::End) {
      break;
    }
    ASSERT_EQ(s.event, ResponseEvent::Body);
    EXPECT_LE(s.body.size(), 3u);
    body.append(text(s.body));
  }
  EXPECT_EQ(body, "0123456789");
  EXPECT_EQ(pos, in.size());
  EXPECT_EQ(p.bodyBytes(), 10u);
}

TEST(Http1ResponseTest, ResetParsesTheNextResponse) {
  const std::string in =
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"
      "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nB\r\n0\r\n\r\n";
  ResponseParser p;
  p.expectNoBody();
  p.reset();  // clears expectNoBody as well
  const Trace first = parseWhole(in, false, p);
  EXPECT_EQ(first.body, "A");
  p = ResponseParser();
  std::span<const uint8_t> rest = bytes(in);
  std::vector<std::string> bodies;
  for (int i = 0; i < 2; ++i) {
    std::string body;
    while (true) {
      const ResponseStep s = p.next(rest);
      rest = rest.subspan(s.consumed);
      if (s.event == ResponseEvent::Body) {
        body.append(text(s.body));
      } else if (s.event == ResponseEvent::End) {
        break;
      } else {
        ASSERT_EQ(s.event, ResponseEvent::Head);
      }
    }
    bodies.push_back(body);
    const Response r = p.takeResponse();
    EXPECT_EQ(r.status, i == 0 ? 200 : 404);
    p.reset();
  }
  EXPECT_EQ(bodies, (std::vector<std::string>{"A", "B"}));
  EXPECT_TRUE(rest.empty());
}

TEST(Http1ResponseTest, HopByHop) {
  const Trace t = parseWhole(
      "HTTP/1.1 200 OK\r\nConnection: X-Private, close\r\nconnection: Other\r\n"
      "X-Private: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n");
  const Response& r = t.head;
  for (const char* name : {"Connection", "KEEP-ALIVE", "proxy-connection", "Transfer-Encoding",
                           "upgrade", "TE", "trailer", "x-private", "other"}) {
    EXPECT_TRUE(r.isHopByHop(name)) << name;
  }
  for (const char* name : {"content-length", "content-type", "x-privat", "", "set-cookie"}) {
    EXPECT_FALSE(r.isHopByHop(name)) << name;
  }
  EXPECT_TRUE(isHopByHop("Upgrade", {}));
  EXPECT_FALSE(isHopByHop("x-private", {}));
}

TEST(Http1ResponseTest, FormatRequestHead) {
  const std::vector<Header> headers = {
      {"User-Agent", "h3-client/1"},
      {":path", "/ignored"},
      {"host", "evil.example"},
      {"Content-Length", "99"},
      {"transfer-encoding", "chunked"},
      {"Connection", "keep-alive"},
      {"te", "trailers"},
      {"Upgrade", "h2c"},
      {"X-Inject", "a\r\nX-Evil: 1"},
      {"Bad Name", "v"},
      {"Accept", "  */*  "},
  };
  EXPECT_EQ(formatRequestHead("GET", "/a?b=c", "origin.test:8080", headers, kNoBody),
            "GET /a?b=c HTTP/1.1\r\nHost: origin.test:8080\r\nUser-Agent: h3-client/1\r\n"
            "Accept: */*\r\n\r\n");
  EXPECT_EQ(formatRequestHead("POST", "/up", "h", {}, 12, false),
            "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(formatRequestHead("PUT", "/up", "[::1]:80", {}, kChunkedBody),
            "PUT /up HTTP/1.1\r\nHost: [::1]:80\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(formatRequestHead("OPTIONS", "*", "h", {}, 0),
            "OPTIONS * HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  // Invalid request line parts give an empty string: nothing to send.
  EXPECT_EQ(formatRequestHead("G T", "/", "h", {}, kNoBody), "");
  EXPECT_EQ(formatRequestHead("", "/", "h", {}, kNoBody), "");
  EXPECT_EQ(formatRequestHead("GET", "/a b", "h", {}, kNoBody), "");
  EXPECT_EQ(formatRequestHead("GET", "/a\r\nX: y", "h", {}, kNoBody), "");
  EXPECT_EQ(formatRequestHead("GET", "", "h", {}, kNoBody), "");
  EXPECT_EQ(formatRequestHead("GET", "/", "h\r\nX: y", {}, kNoBody), "");
  EXPECT_EQ(formatRequestHead("GET", "/", "a b", {}, kNoBody), "");

  // What we write, our own strict request parser accepts with the intended framing.
  const std::string head = formatRequestHead("POST", "/x", "origin.test", headers, kChunkedBody);
  RequestParser rp;
  size_t consumed = 0;
  ASSERT_EQ(rp.feed(bytes(head), consumed), ParseStatus::Done) << rp.error();
  EXPECT_EQ(consumed, head.size());
  EXPECT_EQ(rp.request().method, "POST");
  EXPECT_TRUE(rp.request().chunked);
  EXPECT_TRUE(rp.request().keepAlive);
  ASSERT_NE(rp.request().find("host"), nullptr);
  EXPECT_EQ(rp.request().find("host")->value, "origin.test");
  EXPECT_EQ(rp.request().find("x-evil"), nullptr);
  EXPECT_EQ(rp.request().find("x-inject"), nullptr);
}

TEST(Http1ResponseTest, ChunkEncoder) {
  std::string out;
  appendChunkHeader(out, 255);
  EXPECT_EQ(out, "ff\r\n");
  out.clear();
  appendChunk(out, bytes(""));
  EXPECT_EQ(out, "") << "an empty chunk would end the body";
  appendChunk(out, bytes("hello"));
  appendChunk(out, bytes(std::string(16, 'x')));
  appendLastChunk(out);
  EXPECT_EQ(out, "5\r\nhello\r\n10\r\n" + std::string(16, 'x') + "\r\n0\r\n\r\n");
  const Trace t = parseWhole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + out);
  EXPECT_EQ(t.events, "Head Body End");
  EXPECT_EQ(t.body, "hello" + std::string(16, 'x'));
}

}  // namespace
}  // namespace ugate::http

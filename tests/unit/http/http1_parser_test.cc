#include "http/http1_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace ugate::http {
namespace {

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Outcome: everything observable about one parse, for comparing feeding strategies.
struct Outcome {
  ParseStatus status{ParseStatus::NeedMore};
  size_t consumed{0};
  int errorStatus{0};
  std::string error;
  Request request;
};

void expectSameRequest(const Request& a, const Request& b) {
  EXPECT_EQ(a.method, b.method);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.versionMinor, b.versionMinor);
  EXPECT_EQ(a.keepAlive, b.keepAlive);
  EXPECT_EQ(a.contentLength, b.contentLength);
  EXPECT_EQ(a.chunked, b.chunked);
  ASSERT_EQ(a.headers.size(), b.headers.size());
  for (size_t i = 0; i < a.headers.size(); ++i) {
    EXPECT_EQ(a.headers[i].name, b.headers[i].name);
    EXPECT_EQ(a.headers[i].value, b.headers[i].value);
  }
}

// feedPieces feeds input split at the given offsets (ascending) and stops at Done or Error.
Outcome feedPieces(std::string_view input, const std::vector<size_t>& cuts,
                   RequestParser parser = RequestParser()) {
  Outcome out;
  size_t start = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  for (size_t end : ends) {
    size_t consumed = 0;
    out.status = parser.feed(bytes(input.substr(start, end - start)), consumed);
    out.consumed += consumed;
    if (out.status != ParseStatus::NeedMore) {
      break;
    }
    EXPECT_EQ(consumed, end - start) << "NeedMore must consume everything";
    start = end;
  }
  out.errorStatus = parser.errorStatus();
  out.error = std::string(parser.error());
  out.request = parser.request();
  return out;
}

Outcome parseWhole(std::string_view input, RequestParser parser = RequestParser()) {
  return feedPieces(input, {}, std::move(parser));
}

int errorStatusOf(std::string_view input) {
  const Outcome o = parseWhole(input);
  EXPECT_EQ(o.status, ParseStatus::Error) << "input: " << input;
  return o.errorStatus;
}

TEST(Http1ParserTest, SimpleGet) {
  const std::string in =
      "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent:   curl/8.0 \t\r\n"
      "Accept: */*\r\n\r\n";
  RequestParser parser;
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(bytes(in), consumed), ParseStatus::Done);
  EXPECT_EQ(consumed, in.size());
  const Request& r = parser.request();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/index.html?q=1");
  EXPECT_EQ(r.versionMinor, 1);
  EXPECT_TRUE(r.keepAlive);
  EXPECT_EQ(r.contentLength, -1);
  EXPECT_FALSE(r.chunked);
  ASSERT_EQ(r.headers.size(), 3u);
  EXPECT_EQ(r.headers[1].name, "User-Agent");
  EXPECT_EQ(r.headers[1].value, "curl/8.0");
  ASSERT_NE(r.find("user-agent"), nullptr);
  EXPECT_EQ(r.find("user-agent")->value, "curl/8.0");
  ASSERT_NE(r.find("HOST"), nullptr);
  EXPECT_EQ(r.find("HOST")->value, "example.com");
  EXPECT_EQ(r.find("cookie"), nullptr);
  EXPECT_EQ(parser.errorStatus(), 0);
  EXPECT_TRUE(parser.error().empty());
}

TEST(Http1ParserTest, SplitAtEveryOffsetGivesSameResult) {
  const std::vector<std::string> inputs = {
      "GET /a HTTP/1.1\r\nHost: h\r\nX-Long: " + std::string(300, 'v') + "\r\n\r\nBODY",
      "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
      "\r\nCONNECT [2001:db8::1]:443 HTTP/1.1\nHost: [2001:db8::1]:443\n\n\x16\x03\x01",
      "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      // Errors must not depend on the split either.
      "GET / HTTP/1.1\r\nHost: h\r\nBad : x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
      "GET / HTTP/2.0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
  };
  for (const std::string& in : inputs) {
    SCOPED_TRACE(in);
    const Outcome whole = parseWhole(in);
    ASSERT_NE(whole.status, ParseStatus::NeedMore);
    for (size_t cut = 0; cut <= in.size(); ++cut) {
      SCOPED_TRACE(cut);
      const Outcome split = feedPieces(in, {cut});
      ASSERT_EQ(split.status, whole.status);
      EXPECT_EQ(split.errorStatus, whole.errorStatus);
      EXPECT_EQ(split.error, whole.error);
      if (whole.status == ParseStatus::Done) {
        EXPECT_EQ(split.consumed, whole.consumed);
        expectSameRequest(split.request, whole.request);
      }
    }
    std::vector<size_t> everyByte;
    for (size_t i = 1; i < in.size(); ++i) {
      everyByte.push_back(i);
    }
    const Outcome byByte = feedPieces(in, everyByte);
    ASSERT_EQ(byByte.status, whole.status);
    EXPECT_EQ(byByte.errorStatus, whole.errorStatus);
    EXPECT_EQ(byByte.error, whole.error);
    if (whole.status == ParseStatus::Done) {
      EXPECT_EQ(byByte.consumed, whole.consumed);
      expectSameRequest(byByte.request, whole.request);
    }
  }
}

TEST(Http1ParserTest, BodyIsNotConsumed) {
  const std::string head = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
  const std::string in = head + "hello";
  const Outcome o = parseWhole(in);
  ASSERT_EQ(o.status, ParseStatus::Done);
  EXPECT_EQ(o.consumed, head.size());
  EXPECT_EQ(o.request.contentLength, 5);
  EXPECT_TRUE(o.request.keepAlive);
}

TEST(Http1ParserTest, PipelinedRequestLeftUnconsumed) {
  const std::string first = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "GET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  const std::string in = first + second;
  RequestParser parser;
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(bytes(in), consumed), ParseStatus::Done);
  EXPECT_EQ(consumed, first.size());
  EXPECT_EQ(parser.request().target, "/1");

  // Done is sticky until reset().
  size_t again = 123;
  EXPECT_EQ(parser.feed(bytes(in).subspan(consumed), again), ParseStatus::Done);
  EXPECT_EQ(again, 0u);

  const Request r1 = parser.takeRequest();
  EXPECT_EQ(r1.target, "/1");
  parser.reset();
  size_t consumed2 = 0;
  ASSERT_EQ(parser.feed(bytes(in).subspan(consumed), consumed2), ParseStatus::Done);
  EXPECT_EQ(consumed2, second.size());
  EXPECT_EQ(parser.request().target, "/2");
  EXPECT_FALSE(parser.request().keepAlive);
  ASSERT_EQ(parser.request().headers.size(), 2u);
}

TEST(Http1ParserTest, ConnectAuthorityForm) {
  const std::string in =
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
      "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n\r\n\x16\x03\x01";
  const Outcome o = parseWhole(in);
  ASSERT_EQ(o.status, ParseStatus::Done) << o.error;
  EXPECT_EQ(o.request.method, "CONNECT");
  EXPECT_EQ(o.request.target, "example.com:443");
  EXPECT_EQ(o.consumed, in.size() - 3);

  const Outcome v6 = parseWhole("CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
  ASSERT_EQ(v6.status, ParseStatus::Done) << v6.error;
  EXPECT_EQ(v6.request.target, "[::1]:8080");

  const Outcome v4 = parseWhole("CONNECT 10.0.0.1:22 HTTP/1.0\r\n\r\n");
  ASSERT_EQ(v4.status, ParseStatus::Done) << v4.error;
  EXPECT_EQ(v4.request.target, "10.0.0.1:22");

  EXPECT_EQ(errorStatusOf("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorStatusOf("CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorStatusOf("CONNECT :443 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorStatusOf("CONNECT /path HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorStatusOf("CONNECT u:p@example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorStatusOf("CONNECT example.com:65536 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorStatusOf("CONNECT http://example.com:80/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorStatusOf("CONNECT [::1:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(Http1ParserTest, AbsoluteFormKeptAsIs) {
  const Outcome o =
      parseWhole("GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
  ASSERT_EQ(o.status, ParseStatus::Done) << o.error;
  EXPECT_EQ(o.request.target, "http://example.com:8080/a/b?c=d");

  const Outcome star = parseWhole("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(star.status, ParseStatus::Done) << star.error;
  EXPECT_EQ(star.request.target, "*");
  EXPECT_EQ(errorStatusOf("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(errorStatusOf("GET example.com HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(errorStatusOf("GET 1http://x/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(errorStatusOf("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

TEST(Http1ParserTest, KeepAliveRules) {
  struct Case {
    const char* input;
    bool keepAlive;
  };
  const Case cases[] = {
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: foo,  KEEP-ALIVE \r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", true},
  };
  for (const Case& c : cases) {
    const Outcome o = parseWhole(c.input);
    ASSERT_EQ(o.status, ParseStatus::Done) << c.input << o.error;
    EXPECT_EQ(o.request.keepAlive, c.keepAlive) << c.input;
  }
  const Outcome v10 = parseWhole("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(v10.request.versionMinor, 0);
}

TEST(Http1ParserTest, FramingHeaders) {
  const Outcome chunked =
      parseWhole("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
  ASSERT_EQ(chunked.status, ParseStatus::Done) << chunked.error;
  EXPECT_TRUE(chunked.request.chunked);
  EXPECT_EQ(chunked.request.contentLength, -1);

  const Outcome sameList = parseWhole("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7, 7\r\n\r\n");
  ASSERT_EQ(sameList.status, ParseStatus::Done) << sameList.error;
  EXPECT_EQ(sameList.request.contentLength, 7);

  const Outcome sameTwice =
      parseWhole("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\ncontent-length: 00\r\n\r\n");
  ASSERT_EQ(sameTwice.status, ParseStatus::Done) << sameTwice.error;
  EXPECT_EQ(sameTwice.request.contentLength, 0);

  const Outcome big =
      parseWhole("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n");
  ASSERT_EQ(big.status, ParseStatus::Done) << big.error;
  EXPECT_EQ(big.request.contentLength, INT64_MAX);
}

struct RejectCase {
  const char* name;
  std::string input;
  int status;
};

TEST(Http1ParserTest, Rejections) {
  const std::string get = "GET / HTTP/1.1\r\nHost: h\r\n";
  const std::string post = "POST / HTTP/1.1\r\nHost: h\r\n";
  const std::vector<RejectCase> cases = {
      {"obs-fold", get + "X-A: a\r\n  folded\r\n\r\n", 400},
      {"obs-fold tab", get + "X-A: a\r\n\tfolded\r\n\r\n", 400},
      {"space before colon", get + "X-A : a\r\n\r\n", 400},
      {"tab before colon", get + "X-A\t: a\r\n\r\n", 400},
      {"space in name", get + "X A: a\r\n\r\n", 400},
      {"no colon", get + "X-A a\r\n\r\n", 400},
      {"empty name", get + ": a\r\n\r\n", 400},
      {"ctl in value", get + "X-A: a\x01z\r\n\r\n", 400},
      {"nul in value", get + std::string("X-A: a\0z\r\n\r\n", 12), 400},
      {"del in value", get + "X-A: a\x7fz\r\n\r\n", 400},
      {"bare cr in value", get + "X-A: a\rz\r\n\r\n", 400},
      {"ctl in name", get + "X-\x02: a\r\n\r\n", 400},
      {"non-ascii in name", get + "X-\xc3\xa9: a\r\n\r\n", 400},
      {"bare cr line end", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
      {"missing host 1.1", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two hosts", get + "Host: h\r\n\r\n", 400},
      {"invalid host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
      {"host with userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 400},
      {"method paren", "GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"method at", "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"method empty", " / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"method tab", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"no version", "GET /\r\nHost: h\r\n\r\n", 400},
      {"trailing space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
      {"lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
      {"long minor", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400},
      {"non-ascii target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"http/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"http/0.9", "GET / HTTP/0.9\r\n\r\n", 505},
      {"http/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
      {"cl and te", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"te and cl", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
      {"differing cl", post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
      {"differing cl list", post + "Content-Length: 5, 6\r\n\r\n", 400},
      {"cl empty element", post + "Content-Length: 5,\r\n\r\n", 400},
      {"cl alpha", post + "Content-Length: abc\r\n\r\n", 400},
      {"cl negative", post + "Content-Length: -1\r\n\r\n", 400},
      {"cl plus", post + "Content-Length: +5\r\n\r\n", 400},
      {"cl suffix", post + "Content-Length: 5x\r\n\r\n", 400},
      {"cl empty", post + "Content-Length:\r\n\r\n", 400},
      {"cl hex", post + "Content-Length: 0x10\r\n\r\n", 400},
      {"cl overflow", post + "Content-Length: 9223372036854775808\r\n\r\n", 400},
      {"te gzip", post + "Transfer-Encoding: gzip\r\n\r\n", 501},
      {"te gzip chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"te chunked gzip", post + "Transfer-Encoding: chunked, gzip\r\n\r\n", 501},
      {"te chunked param", post + "Transfer-Encoding: chunked;x=1\r\n\r\n", 501},
      {"te identity", post + "Transfer-Encoding: identity\r\n\r\n", 501},
      {"te chunked twice",
       post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"te empty", post + "Transfer-Encoding: \r\n\r\n", 400},
      {"te in http/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"tls client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400},
  };
  for (const RejectCase& c : cases) {
    RequestParser parser;
    size_t consumed = 0;
    EXPECT_EQ(parser.feed(bytes(c.input), consumed), ParseStatus::Error) << c.name;
    EXPECT_EQ(parser.errorStatus(), c.status) << c.name << ": " << parser.error();
    EXPECT_FALSE(parser.error().empty()) << c.name;
    EXPECT_LE(consumed, c.input.size()) << c.name;
  }
}

TEST(Http1ParserTest, ErrorIsStickyUntilReset) {
  RequestParser parser;
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(bytes("BAD\x01"), consumed), ParseStatus::Error);
  EXPECT_EQ(parser.errorStatus(), 400);
  size_t again = 99;
  EXPECT_EQ(parser.feed(bytes("GET / HTTP/1.0\r\n\r\n"), again), ParseStatus::Error);
  EXPECT_EQ(again, 0u);
  parser.reset();
  EXPECT_EQ(parser.errorStatus(), 0);
  EXPECT_TRUE(parser.error().empty());
  EXPECT_EQ(parser.feed(bytes("GET / HTTP/1.0\r\n\r\n"), again), ParseStatus::Done);
  EXPECT_FALSE(parser.request().keepAlive);
}

TEST(Http1ParserTest, HeaderBytesLimit) {
  const std::string prefix = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
  const std::string suffix = "\r\n\r\n";
  const size_t limit = 256;
  const std::string exact =
      prefix + std::string(limit - prefix.size() - suffix.size(), 'p') + suffix;
  ASSERT_EQ(exact.size(), limit);
  {
    const Outcome o = parseWhole(exact, RequestParser(limit, 100));
    EXPECT_EQ(o.status, ParseStatus::Done) << o.error;
    EXPECT_EQ(o.consumed, limit);
  }
  {
    const std::string over =
        prefix + std::string(limit - prefix.size() - suffix.size() + 1, 'p') + suffix;
    const Outcome o = parseWhole(over, RequestParser(limit, 100));
    EXPECT_EQ(o.status, ParseStatus::Error);
    EXPECT_EQ(o.errorStatus, 431);
  }
  {
    // A line that never ends is cut off at the limit, not buffered without bound.
    RequestParser parser(limit, 100);
    const std::string endless(limit, 'a');
    size_t consumed = 0;
    EXPECT_EQ(parser.feed(bytes("GET /"), consumed), ParseStatus::NeedMore);
    EXPECT_EQ(parser.feed(bytes(std::string_view(endless).substr(0, limit - 5)), consumed),
              ParseStatus::NeedMore);
    EXPECT_EQ(parser.feed(bytes("a"), consumed), ParseStatus::Error);
    EXPECT_EQ(parser.errorStatus(), 431);
  }
  {
    // The default limit is 16 KiB.
    const std::string huge =
        "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(17000, 'b') + "\r\n\r\n";
    EXPECT_EQ(errorStatusOf(huge), 431);
  }
}

TEST(Http1ParserTest, HeaderCountLimit) {
  auto build = [](size_t n) {
    std::string s = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (size_t i = 1; i < n; ++i) {
      s += "X-H" + std::to_string(i) + ": v\r\n";
    }
    return s + "\r\n";
  };
  const Outcome atLimit = parseWhole(build(10), RequestParser(16384, 10));
  ASSERT_EQ(atLimit.status, ParseStatus::Done) << atLimit.error;
  EXPECT_EQ(atLimit.request.headers.size(), 10u);

  const Outcome over = parseWhole(build(11), RequestParser(16384, 10));
  EXPECT_EQ(over.status, ParseStatus::Error);
  EXPECT_EQ(over.errorStatus, 431);

  EXPECT_EQ(errorStatusOf(build(101)), 431);
}

TEST(Http1ParserTest, BareLfAndLeadingEmptyLines) {
  const std::string in = "\r\n\nPOST /p HTTP/1.1\nHost: h\r\nContent-Length: 2\n\nhi";
  const Outcome o = parseWhole(in);
  ASSERT_EQ(o.status, ParseStatus::Done) << o.error;
  EXPECT_EQ(o.request.method, "POST");
  EXPECT_EQ(o.request.target, "/p");
  EXPECT_EQ(o.request.contentLength, 2);
  ASSERT_EQ(o.request.headers.size(), 2u);
  EXPECT_EQ(o.request.headers[0].value, "h");
  EXPECT_EQ(o.consumed, in.size() - 2);
}

TEST(Http1ParserTest, ValuesKeepInnerWhitespaceAndObsText) {
  const Outcome o =
      parseWhole("GET / HTTP/1.1\r\nHost: h\r\nX-A: \t a \t b\xc3\xa9 \t\r\nX-Empty:\r\n\r\n");
  ASSERT_EQ(o.status, ParseStatus::Done) << o.error;
  EXPECT_EQ(o.request.headers[1].value, "a \t b\xc3\xa9");
  EXPECT_EQ(o.request.headers[2].value, "");
}

TEST(Http1ParserTest, TakeRequestMovesOut) {
  RequestParser parser;
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(bytes("GET /t HTTP/1.1\r\nHost: h\r\n\r\n"), consumed), ParseStatus::Done);
  Request r = parser.takeRequest();
  EXPECT_EQ(r.target, "/t");
  EXPECT_TRUE(parser.request().headers.empty());
  EXPECT_TRUE(parser.request().target.empty());
}

TEST(Http1ResponseTest, FormatsOkWithBody) {
  const std::string out =
      formatResponse(200, "", {{"Content-Type", "text/plain"}}, "hello\n", /*keepAlive=*/true);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
            "Connection: keep-alive\r\n\r\nhello\n");
}

TEST(Http1ResponseTest, FormatsCloseAndCustomReason) {
  const std::string out = formatResponse(404, "Nope", {}, "", /*keepAlive=*/false);
  EXPECT_EQ(out, "HTTP/1.1 404 Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST(Http1ResponseTest, NoContentStatusesHaveNoBody) {
  EXPECT_EQ(formatResponse(204, "", {}, "ignored", true),
            "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(formatResponse(304, "", {}, "ignored", false),
            "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(formatResponse(100, "", {}, "ignored", true),
            "HTTP/1.1 100 Continue\r\nConnection: keep-alive\r\n\r\n");
}

TEST(Http1ResponseTest, DropsUnsafeAndFramingHeaders) {
  const std::vector<Header> headers = {
      {"X-Ok", "  fine  "},      {"X-Inject", "a\r\nSet-Cookie: evil=1"},
      {"Bad Name", "v"},         {"", "v"},
      {"content-length", "999"}, {"Transfer-Encoding", "chunked"},
      {"CONNECTION", "upgrade"}, {"X-Nul", std::string("a\0b", 3)},
  };
  const std::string out = formatResponse(500, "Bad\r\nReason", headers, "x", false);
  EXPECT_EQ(out,
            "HTTP/1.1 500 Internal Server Error\r\nX-Ok: fine\r\nContent-Length: 1\r\n"
            "Connection: close\r\n\r\nx");
}

TEST(Http1ResponseTest, InvalidStatusBecomes500) {
  EXPECT_EQ(
      formatResponse(42, "", {}, "", false).rfind("HTTP/1.1 500 Internal Server Error\r\n", 0), 0u);
  EXPECT_EQ(formatResponse(1000, "", {}, "", false).rfind("HTTP/1.1 500 ", 0), 0u);
  EXPECT_EQ(formatResponse(599, "", {}, "", false).rfind("HTTP/1.1 599 \r\n", 0), 0u);
}

TEST(Http1ResponseTest, HeadForConnectOmitsContentLength) {
  EXPECT_EQ(formatResponseHead(200, "Connection Established", {}, -1, true),
            "HTTP/1.1 200 Connection Established\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(formatResponseHead(200, "", {{"X-A", "b"}}, 12345, false),
            "HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 12345\r\nConnection: close\r\n\r\n");
}

TEST(Http1ResponseTest, StatusReasons) {
  const std::pair<int, std::string_view> expected[] = {
      {200, "OK"},
      {204, "No Content"},
      {400, "Bad Request"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {407, "Proxy Authentication Required"},
      {408, "Request Timeout"},
      {413, "Content Too Large"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
  };
  for (const auto& [status, reason] : expected) {
    EXPECT_EQ(statusReason(status), reason) << status;
  }
  EXPECT_TRUE(statusReason(599).empty());
}

TEST(Http1RoundTripTest, ParserErrorStatusFormatsAsResponse) {
  RequestParser parser;
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(bytes("GET / HTTP/3.0\r\n\r\n"), consumed), ParseStatus::Error);
  const std::string out = formatResponse(parser.errorStatus(), "", {}, "", false);
  EXPECT_EQ(out,
            "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Length: 0\r\nConnection: close"
            "\r\n\r\n");
}

}  // namespace
}  // namespace ugate::http

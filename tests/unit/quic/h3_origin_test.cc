#include "quic/h3_origin.h"

#include <gtest/gtest.h>

#include <memory>

namespace ugate::quic {
namespace {

std::unique_ptr<StreamState> request(std::string method, std::string path, bool ended) {
  auto s = std::make_unique<StreamState>(0);
  s->method = std::move(method);
  s->path = std::move(path);
  s->authority = "site.test:443";
  s->remoteEnded = ended;
  return s;
}

TEST(OriginHead, GetWithoutBody) {
  auto p = request("GET", "/a?b=1", true);
  StreamState& s = *p;
  s.headers = {{"accept", "*/*"}, {"connection", "x"}, {"te", "trailers"}, {"x-forwarded-for", "10.0.0.1"}};
  bool chunked = true;
  std::string head = OriginFace::buildHead(s, "192.0.2.7", chunked);
  EXPECT_FALSE(chunked);
  EXPECT_EQ(head.rfind("GET /a?b=1 HTTP/1.1\r\nHost: site.test:443\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("accept: */*\r\n"), std::string::npos);
  EXPECT_EQ(head.find("te: "), std::string::npos);  // hop-by-hop: not forwarded
  EXPECT_NE(head.find("x-forwarded-for: 10.0.0.1, 192.0.2.7\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("x-forwarded-proto: https\r\n"), std::string::npos);
  EXPECT_NE(head.find("Connection: close\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos);
  EXPECT_EQ(head.find("Transfer-Encoding"), std::string::npos);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
}

TEST(OriginHead, BodyWithAndWithoutLength) {
  auto pw = request("POST", "/p", false);
  StreamState& withLen = *pw;
  withLen.headers = {{"content-length", "12"}};
  bool chunked = true;
  std::string head = OriginFace::buildHead(withLen, "192.0.2.7", chunked);
  EXPECT_FALSE(chunked);
  EXPECT_NE(head.find("Content-Length: 12\r\n"), std::string::npos) << head;

  // DATA frames still to come and no content-length: the origin gets the body chunked.
  auto pu = request("POST", "/p", false);
  StreamState& unknown = *pu;
  head = OriginFace::buildHead(unknown, "192.0.2.7", chunked);
  EXPECT_TRUE(chunked);
  EXPECT_NE(head.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << head;

  // A bad content-length is not trusted: chunked again (the body's real length decides).
  auto pb = request("POST", "/p", false);
  StreamState& bad = *pb;
  bad.headers = {{"content-length", "12x"}};
  head = OriginFace::buildHead(bad, "192.0.2.7", chunked);
  EXPECT_TRUE(chunked);
}

TEST(OriginHead, UnusableRequestGivesNoHead) {
  auto p = request("GET", "/a b", true);  // a space in the target
  StreamState& s = *p;
  bool chunked = false;
  EXPECT_EQ(OriginFace::buildHead(s, "192.0.2.7", chunked), "");
}

}  // namespace
}  // namespace ugate::quic

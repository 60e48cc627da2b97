// The parsers of untrusted bytes, one message each: what a front door spends before it routes.
// Inputs are real: ClientHellos captured from openssl, curl and gtlsclient (fuzz/corpus/client_hello,
// including the >1.5 KB post-quantum key share), a PROXY v2 header with TLVs as ugated sends it,
// SOCKS5 greeting + CONNECT by name, an HTTP CONNECT request head as curl sends it.
//   build/bench/micro/parsers_bench
#include <benchmark/benchmark.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/proxy_protocol.h"
#include "http/http1_parser.h"
#include "sni/client_hello_parser.h"
#include "socks/socks_codec.h"

namespace {

using namespace ugate;

// corpusFile: a captured hello from the fuzzer's seed corpus, without the two bytes the fuzz target
// reads as its own settings (fuzz/client_hello_fuzz.cc).
std::vector<uint8_t> corpusFile(const std::string& name) {
  std::ifstream f(std::string(UGATE_SOURCE_DIR) + "/fuzz/corpus/client_hello/" + name, std::ios::binary);
  std::vector<uint8_t> v{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  if (v.size() <= 2) return {};
  v.erase(v.begin(), v.begin() + 2);
  return v;
}

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// ClientHello: one-shot parse of a whole hello (the common case: it arrives in one segment).
void BM_ClientHello(benchmark::State& state, const char* file) {
  const std::vector<uint8_t> hello = corpusFile(file);
  if (hello.empty()) {
    state.SkipWithError("corpus file missing");
    return;
  }
  for (auto _ : state) {
    sni::ClientHelloParser p;
    p.feed(hello);
    if (p.status() != sni::HelloStatus::Done) {
      state.SkipWithError("hello did not parse");
      break;
    }
    benchmark::DoNotOptimize(p.info().sni.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * hello.size()));
  state.SetLabel(std::to_string(hello.size()) + " B");
}
BENCHMARK_CAPTURE(BM_ClientHello, openssl_tls13, "openssl_tls13");
BENCHMARK_CAPTURE(BM_ClientHello, openssl_large_pq, "openssl_large");
BENCHMARK_CAPTURE(BM_ClientHello, curl, "curl");
BENCHMARK_CAPTURE(BM_ClientHello, gtlsclient, "gtlsclient_quic");

// The same hello arriving one byte at a time (the parser keeps only what it needs between feeds).
void BM_ClientHelloBytewise(benchmark::State& state) {
  const std::vector<uint8_t> hello = corpusFile("openssl_tls13");
  if (hello.empty()) {
    state.SkipWithError("corpus file missing");
    return;
  }
  for (auto _ : state) {
    sni::ClientHelloParser p;
    for (size_t i = 0; i < hello.size() && p.status() == sni::HelloStatus::NeedMore; ++i) {
      p.feed(std::span<const uint8_t>(hello).subspan(i, 1));
    }
    if (p.status() != sni::HelloStatus::Done) {
      state.SkipWithError("hello did not parse");
      break;
    }
    benchmark::DoNotOptimize(p.info().sni.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * hello.size()));
}
BENCHMARK(BM_ClientHelloBytewise);

void BM_ProxyV2(benchmark::State& state) {
  ProxyV2Tlvs tlvs;
  tlvs.authority = "backend.example.com";
  tlvs.alpn = "h2";
  tlvs.crc32c = true;
  const std::string h = encodeProxyV2(*SocketAddress::fromIp("192.0.2.10", 51234),
                                      *SocketAddress::fromIp("198.51.100.7", 443), tlvs);
  for (auto _ : state) {
    ProxyParseResult r = parseProxyHeader(bytes(h));
    if (r.status != ProxyStatus::Done) {
      state.SkipWithError("header did not parse");
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * h.size()));
}
BENCHMARK(BM_ProxyV2);

void BM_ProxyV1(benchmark::State& state) {
  const std::string h = "PROXY TCP4 192.0.2.10 198.51.100.7 51234 443\r\n";
  for (auto _ : state) {
    ProxyParseResult r = parseProxyHeader(bytes(h));
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * h.size()));
}
BENCHMARK(BM_ProxyV1);

// SOCKS5: the greeting and a CONNECT by domain name, as curl --socks5-hostname sends them.
void BM_Socks5GreetingAndConnect(benchmark::State& state) {
  const std::string greeting("\x05\x01\x00", 3);
  std::string request("\x05\x01\x00\x03", 4);
  const std::string host = "alice.mesh";
  request += static_cast<char>(host.size());
  request += host;
  request += std::string("\x1f\x90", 2);  // port 8080
  for (auto _ : state) {
    socks::Greeting g;
    socks::Request req;
    socks::Reply err{};
    size_t used = 0;
    auto s1 = socks::parseGreeting(bytes(greeting), g, used);
    auto s2 = socks::parseRequest(bytes(request), req, used, err);
    benchmark::DoNotOptimize(s1);
    benchmark::DoNotOptimize(s2);
    benchmark::DoNotOptimize(req.dst);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (greeting.size() + request.size())));
}
BENCHMARK(BM_Socks5GreetingAndConnect);

// HTTP/1.1 CONNECT request head (curl -p -x http://proxy).
void BM_HttpConnectHead(benchmark::State& state) {
  const std::string head =
      "CONNECT alice.mesh:443 HTTP/1.1\r\nHost: alice.mesh:443\r\nUser-Agent: curl/7.88.1\r\n"
      "Proxy-Authorization: Basic dXNlcjpwYXNz\r\nProxy-Connection: Keep-Alive\r\n\r\n";
  for (auto _ : state) {
    http::RequestParser p;
    size_t used = 0;
    if (p.feed(bytes(head), used) != http::ParseStatus::Done) {
      state.SkipWithError("head did not parse");
      break;
    }
    benchmark::DoNotOptimize(p.request().target.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * head.size()));
}
BENCHMARK(BM_HttpConnectHead);

}  // namespace

BENCHMARK_MAIN();

// libFuzzer target for the QUIC packet entry point with the crypto glue in place
// (src/quic/crypto_boringssl.cc): datagrams go to ngtcp2_accept and then to a server ngtcp2_conn
// whose recv_client_initial / recv_crypto_data / decrypt / hp_mask callbacks are the glue's, backed
// by a real BoringSSL server (self-signed P-256 certificate). After each datagram the server writes
// its answer, so packet protection runs too.
//
// Input: the first byte picks the mode, the rest is a list of records (u16 big-endian length +
// bytes):
//   even: each record is a whole datagram (mutations of the RFC 9001 client Initial and of
//         recorded flights);
//   odd:  each record is the plaintext frames of a client Initial that the harness protects with
//         the Initial keys of a fixed DCID (so frame parsing and BoringSSL's ClientHello parsing
//         are reached past the AEAD).
// Also opens the datagram's token as a Retry and as a regular token. Contract: no crash, no leak,
// no sanitizer report; the connection's error path is taken for anything malformed.
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "auth/crypto.h"
#include "quic/quic_crypto.h"
#include "quic_fuzz_server_context.h"

namespace {

using namespace ugate::quic;

const uint8_t kSecret[32] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                             7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
const uint8_t kDcid[8] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};

using ugate::quic::fuzz::serverContext;

struct Server {
  ConnRef ref{};
  ngtcp2_conn* conn{nullptr};
  SSL* ssl{nullptr};
  sockaddr_in local{};
  sockaddr_in remote{};
  ~Server() {
    if (conn != nullptr) ngtcp2_conn_del(conn);
    if (ssl != nullptr) SSL_free(ssl);
  }
  ngtcp2_path path() {
    ngtcp2_path p{};
    p.local = {reinterpret_cast<sockaddr*>(&local), sizeof(local)};
    p.remote = {reinterpret_cast<sockaddr*>(&remote), sizeof(remote)};
    return p;
  }
};

ngtcp2_conn* getConn(ConnRef* r) { return static_cast<Server*>(r->user)->conn; }

int newCid(ngtcp2_conn*, ngtcp2_cid* cid, uint8_t* token, size_t cidlen, void*) {
  static uint8_t counter = 0;
  std::memset(cid->data, ++counter, cidlen);
  cid->datalen = cidlen;
  return generateStatelessResetToken(std::span<uint8_t, kStatelessResetTokenLen>(token, 16),
                                     kSecret, *cid)
             ? 0
             : NGTCP2_ERR_CALLBACK_FAILURE;
}

int recvStreamData(ngtcp2_conn*, uint32_t, int64_t, uint64_t, const uint8_t*, size_t, void*,
                   void*) {
  return 0;
}

/** protectInitial: a client Initial (v1, DCID = SCID = kDcid, PN 0) with frames, padded to 1200 B.
 */
std::vector<uint8_t> protectInitial(std::span<const uint8_t> frames) {
  static const auto keys = [] {
    auto s = deriveInitialSecrets(NGTCP2_PROTO_VER_V1, kDcid);
    return *derivePacketKeys(NGTCP2_PROTO_VER_V1, CipherSuite::Aes128GcmSha256, s->client);
  }();
  std::vector<uint8_t> payload(frames.begin(), frames.end());
  if (payload.size() > 1100) payload.resize(1100);
  // SCID = the DCID too: the RFC ClientHello's transport parameters name 8394c8f03e515708 as the
  // initial_source_connection_id, and ngtcp2 checks it against the packet.
  size_t headerLen = 1 + 4 + 1 + sizeof(kDcid) + 1 + sizeof(kDcid) + 1 + 2 + 4;
  if (payload.size() < 1200 - headerLen - 16) payload.resize(1200 - headerLen - 16, 0);  // PADDING
  std::vector<uint8_t> h = {0xc3, 0, 0, 0, 1, sizeof(kDcid)};
  h.insert(h.end(), kDcid, kDcid + sizeof(kDcid));
  size_t len = 4 + payload.size() + 16;
  h.push_back(sizeof(kDcid));
  h.insert(h.end(), kDcid, kDcid + sizeof(kDcid));
  h.insert(h.end(), {0 /* token len */, static_cast<uint8_t>(0x40 | (len >> 8)),
                     static_cast<uint8_t>(len), 0, 0, 0, 0 /* packet number 0 */});
  auto ct = aeadSeal(CipherSuite::Aes128GcmSha256, keys.key, keys.iv, payload, h);
  if (!ct) __builtin_trap();
  auto mask = headerProtectionMask(CipherSuite::Aes128GcmSha256, keys.hp,
                                   std::span<const uint8_t, 16>(ct->data(), 16));
  if (!mask) __builtin_trap();
  h[0] ^= (*mask)[0] & 0x0f;
  for (size_t i = 0; i < 4; ++i) h[h.size() - 4 + i] ^= (*mask)[1 + i];
  h.insert(h.end(), ct->begin(), ct->end());
  return h;
}

void writeAnswers(Server& s, ngtcp2_tstamp ts) {
  uint8_t buf[1500];
  for (int i = 0; i < 16; ++i) {
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi{};
    ngtcp2_ssize n = ngtcp2_conn_write_pkt(s.conn, &ps.path, &pi, buf, sizeof(buf), ts);
    if (n <= 0) return;
  }
}

/** createServer: what a listener does with an acceptable first Initial. */
bool createServer(Server& s, const ngtcp2_pkt_hd& hd, ngtcp2_tstamp ts) {
  ngtcp2_callbacks cb{};
  setServerCryptoCallbacks(cb);
  cb.get_new_connection_id = newCid;
  cb.recv_stream_data = recvStreamData;
  ngtcp2_settings settings;
  ngtcp2_settings_default(&settings);
  settings.initial_ts = ts;
  ngtcp2_transport_params params;
  ngtcp2_transport_params_default(&params);
  params.initial_max_streams_bidi = 4;
  params.initial_max_data = 65536;
  params.initial_max_stream_data_bidi_remote = 65536;
  params.original_dcid = hd.dcid;
  params.original_dcid_present = 1;
  ngtcp2_cid scid;
  std::memset(scid.data, 0x5c, 18);
  scid.datalen = 18;
  s.local.sin_family = AF_INET;
  s.local.sin_port = htons(443);
  s.local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s.remote = s.local;
  s.remote.sin_port = htons(50000);
  s.ref = ConnRef{getConn, &s};
  ngtcp2_path path = s.path();
  if (ngtcp2_conn_server_new(&s.conn, &hd.scid, &scid, &path, hd.version, &cb, &settings, &params,
                             nullptr, &s) != 0) {
    s.conn = nullptr;
    return false;
  }
  s.ssl = SSL_new(serverContext());
  if (s.ssl == nullptr || !configureServerSsl(s.ssl, &s.ref)) __builtin_trap();
  ngtcp2_conn_set_tls_native_handle(s.conn, s.ssl);
  return true;
}

void checkTokens(const ngtcp2_pkt_hd& hd, Server& s, ngtcp2_tstamp ts) {
  if (hd.tokenlen == 0) return;
  std::span<const uint8_t> token(hd.token, hd.tokenlen);
  ngtcp2_cid odcid;
  auto* remote = reinterpret_cast<sockaddr*>(&s.remote);
  (void)verifyRetryToken(&odcid, token, kSecret, hd.version, remote, sizeof(s.remote), hd.dcid,
                         10 * NGTCP2_SECONDS, ts);
  (void)verifyRegularToken(token, kSecret, remote, sizeof(s.remote), 3600 * NGTCP2_SECONDS, ts);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool plaintextMode = (data[0] & 1) != 0;
  size_t off = 1;
  Server s;
  ngtcp2_tstamp ts = 1000 * NGTCP2_SECONDS;
  for (int records = 0; records < 16 && off + 2 <= size; ++records) {
    size_t len = static_cast<size_t>(data[off]) << 8 | data[off + 1];
    off += 2;
    len = std::min(len, size - off);
    std::span<const uint8_t> rec(data + off, len);
    off += len;
    std::vector<uint8_t> dgram =
        plaintextMode ? protectInitial(rec) : std::vector<uint8_t>(rec.begin(), rec.end());
    ts += NGTCP2_MILLISECONDS;
    if (s.conn == nullptr) {
      ngtcp2_pkt_hd hd;
      if (ngtcp2_accept(&hd, dgram.data(), dgram.size()) != 0) continue;
      if (!createServer(s, hd, ts)) continue;
      // The listener checks tokens before creating a connection; fuzz that path too.
      ngtcp2_pkt_hd copy = hd;
      checkTokens(copy, s, ts);
    }
    ngtcp2_path path = s.path();
    ngtcp2_pkt_info pi{};
    int rv = ngtcp2_conn_read_pkt(s.conn, &path, &pi, dgram.data(), dgram.size(), ts);
    if (rv != 0) break;  // the connection is closing: a listener would write CONNECTION_CLOSE
    writeAnswers(s, ts);
  }
  return 0;
}

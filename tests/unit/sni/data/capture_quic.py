# quic_cap.py OUT: receive the first QUIC Initial datagram(s) on UDP, remove header protection and
# decrypt them with the RFC 9001 initial keys, reassemble the CRYPTO stream and write the ClientHello
# wrapped in one TLS handshake record (0x16 0x0301 len), i.e. as a TCP client would send it.
import socket, sys, os, subprocess, hashlib, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
SALT = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
def hkdf_extract(salt, ikm): return hmac.new(salt, ikm, hashlib.sha256).digest()
def expand_label(secret, label, length):
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(secret, t + info + bytes([i]), hashlib.sha256).digest(); out += t; i += 1
    return out[:length]
def varint(b, o):
    l = 1 << (b[o] >> 6); v = b[o] & 0x3f
    for i in range(1, l): v = (v << 8) | b[o + i]
    return v, o + l
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
cli = subprocess.Popen(["timeout", "3", "gtlsclient", "-q", "127.0.0.1", str(port)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
print(port, file=sys.stderr)
s.settimeout(4)
crypto = {}
try:
    while True:
        pkt, _ = s.recvfrom(65535)
        off = 0
        while off < len(pkt):
            b = pkt
            if not (b[off] & 0x80): break
            first = b[off]; o = off + 5
            dl = b[o]; dcid = b[o+1:o+1+dl]; o += 1 + dl
            sl = b[o]; o += 1 + sl
            ptype = (first >> 4) & 3
            if ptype != 0: break
            tl, o = varint(b, o); o += tl
            ln, o = varint(b, o)
            pn_off = o
            init = hkdf_extract(SALT, dcid)
            cs = expand_label(init, b"client in", 32)
            key, iv, hp = expand_label(cs, b"quic key", 16), expand_label(cs, b"quic iv", 12), expand_label(cs, b"quic hp", 16)
            sample = b[pn_off+4:pn_off+20]
            mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sample)
            f = first ^ (mask[0] & 0x0f); pnl = (f & 3) + 1
            pn = bytes(x ^ y for x, y in zip(b[pn_off:pn_off+pnl], mask[1:1+pnl]))
            hdr = bytes([f]) + b[off+1:pn_off] + pn
            pnv = int.from_bytes(pn, "big")
            nonce = bytes(x ^ y for x, y in zip(iv, pnv.to_bytes(12, "big")))
            payload = AESGCM(key).decrypt(nonce, b[pn_off+pnl:pn_off+ln], hdr)
            p = 0
            while p < len(payload):
                t = payload[p]
                if t == 0: p += 1; continue
                if t == 1: p += 1; continue
                if t == 6:
                    co, p = varint(payload, p + 1); cl, p = varint(payload, p)
                    crypto[co] = payload[p:p+cl]; p += cl; continue
                if t in (2, 3):
                    p += 1; _, p = varint(payload, p); _, p = varint(payload, p); n, p = varint(payload, p); _, p = varint(payload, p)
                    for _ in range(n): _, p = varint(payload, p); _, p = varint(payload, p)
                    continue
                break
            off = pn_off + ln
        data = b""
        while len(data) in crypto: data += crypto[len(data)]
        if len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[1:4], "big"):
            hs = data[:4 + int.from_bytes(data[1:4], "big")]
            open(sys.argv[1], "wb").write(b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs)
            print("ok", len(hs), file=sys.stderr)
            break
finally:
    cli.kill(); cli.wait()

#!/usr/bin/env python3
# tls_client.py MODE PORT [args]: TLS clients (Python's ssl over MemoryBIO) that control how the
# ClientHello reaches ugated; shared by sni_test.sh and mtls_test.sh.
#   split NAME CAFILE      : hello re-framed into 2 TLS records, sent as 2 TCP segments 50 ms apart
#   drip NAME CAFILE N MS  : hello sent in N pieces, MS apart (slow drip)
#   stall                  : the first 60 bytes of a hello, then nothing: prints seconds until closed
#   oversize               : a 20000-byte ClientHello in two records: prints "closed" when refused
#   raw FILE               : send FILE's bytes: prints "closed" when ugated closes
#   proxy NAME CAFILE CERT KEY PATH PROXYLINE
#                          : PROXYLINE (a PROXY v1 header, CRLF added) and the hello in one TCP
#                            segment, with a client certificate (mutual TLS); GET PATH
# split/drip/proxy complete the handshake, verifying the server certificate for NAME against
# CAFILE, then GET /who.txt (or PATH) and print the body.
import socket, ssl, sys, time

mode, port = sys.argv[1], int(sys.argv[2])

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def hello_and_obj(name, cafile, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if cert:
        ctx.load_cert_chain(cert, key)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return obj, inc, out, out.read()

def wait_closed(s, limit):
    t0 = time.monotonic()
    s.settimeout(limit)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return None
    return time.monotonic() - t0

def finish(s, obj, inc, out, path="/who.txt"):
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pending = out.read()
            if pending:
                s.sendall(pending)
            data = s.recv(65536)
            if not data:
                raise SystemExit("closed during handshake")
            inc.write(data)
    s.sendall(out.read())
    obj.write(b"GET " + path.encode() + b" HTTP/1.0\r\n\r\n")
    s.sendall(out.read())
    body = b""
    while True:
        try:
            chunk = obj.read(65536)
            if not chunk:
                break
            body += chunk
        except ssl.SSLWantReadError:
            data = s.recv(65536)
            if not data:
                break
            inc.write(data)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
    print(body.split(b"\r\n\r\n", 1)[-1].decode().strip())

if mode in ("split", "drip"):
    name, cafile = sys.argv[3], sys.argv[4]
    obj, inc, out, hello = hello_and_obj(name, cafile)
    assert hello[0] == 0x16, "not a TLS record"
    s = connect()
    if mode == "split":
        hs = hello[5:]
        cut = len(hs) // 3
        rec = lambda b: bytes([0x16, 3, 1]) + len(b).to_bytes(2, "big") + b
        s.sendall(rec(hs[:cut]))
        time.sleep(0.05)
        s.sendall(rec(hs[cut:]))
    else:
        n, gap = int(sys.argv[5]), int(sys.argv[6]) / 1000
        step = (len(hello) + n - 1) // n
        for i in range(0, len(hello), step):
            s.sendall(hello[i:i + step])
            time.sleep(gap)
    finish(s, obj, inc, out)
elif mode == "proxy":
    name, cafile, cert, key, path, line = sys.argv[3:9]
    obj, inc, out, hello = hello_and_obj(name, cafile, cert, key)
    s = connect()
    s.sendall(line.encode() + b"\r\n" + hello)
    finish(s, obj, inc, out, path)
elif mode == "stall":
    _, _, _, hello = hello_and_obj("a.test", None)
    s = connect()
    s.sendall(hello[:60])
    t = wait_closed(s, 5)
    print("open" if t is None else f"{t:.2f}")
elif mode == "oversize":
    body = b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    ext = b"\x00\x15" + (20000 - 4).to_bytes(2, "big") + b"\x00" * (20000 - 4)
    body += len(ext).to_bytes(2, "big") + ext
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    s = connect()
    try:
        for part in (hs[:10000], hs[10000:]):
            s.sendall(bytes([0x16, 3, 1]) + len(part).to_bytes(2, "big") + part)
    except (BrokenPipeError, ConnectionResetError):
        pass
    print("open" if wait_closed(s, 5) is None else "closed")
elif mode == "raw":
    s = connect()
    s.sendall(open(sys.argv[3], "rb").read())
    print("open" if wait_closed(s, 5) is None else "closed")

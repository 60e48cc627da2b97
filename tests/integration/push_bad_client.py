#!/usr/bin/env python3
# push_bad_client.py PORT MODE: a TLS client (no certificate checks: a loopback test) that misbehaves
# toward ugated's push listener over HTTP/1.1, for push_test.sh. Prints the status line ugated
# answered, or "closed" when it closed the connection without one.
#   garbage    a request line that is not HTTP
#   truncated  a push whose body stops short of its Content-Length, then silence
#   slowloris  half a request head, then silence
#   huge       a Content-Length of 10 MB (never sent)
#   slowbody   a push whose body arrives a byte every 0.3 s (slowloris on the POST)
#   slowsse SID   opens the delivery stream /s/SID with a tiny receive buffer, reads its head, then
#              reads nothing more until it is killed (slowloris on the SSE stream); prints "open"
#   idle N     N subscriptions, then N delivery streams (TLS, HTTP/1.1) held open and idle until it
#              is killed; prints "open K" when K streams answered 200
import select, socket, ssl, sys, time

port, mode = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])


def connect(rcvbuf=0):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    return ctx.wrap_socket(raw)


def read_head(c):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = c.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def hold_forever():
    sys.stdout.flush()
    while True:
        time.sleep(3600)


sse = "GET /s/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
if mode == "slowsse":
    c = connect(rcvbuf=4096)
    c.sendall(sse.format(sys.argv[3]).encode())
    print("open" if read_head(c).startswith(b"HTTP/1.1 200") else "refused")
    hold_forever()
if mode == "idle":
    n = int(sys.argv[3])
    c = connect()
    sids = []
    for _ in range(n):
        c.sendall(b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        head = read_head(c)
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        body = head.split(b"\r\n\r\n", 1)[1]
        while len(body) < length:
            body += c.recv(4096)
        sids.append(body.split(b'"receive":"/s/')[1].split(b'"')[0].decode())
    streams = []
    for sid in sids:
        st = connect()
        st.sendall(sse.format(sid).encode())
        if read_head(st).startswith(b"HTTP/1.1 200"):
            streams.append(st)
    print(f"open {len(streams)}")
    hold_forever()

s = connect()
head = b"POST /push/AAAAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: 127.0.0.1\r\nTTL: 60\r\nContent-Encoding: aes128gcm\r\n"
if mode == "garbage":
    s.sendall(b"\x16\x03 NOT HTTP AT ALL\r\n\r\n")
elif mode == "truncated":
    s.sendall(head + b"Content-Length: 100\r\n\r\n0123456789")
elif mode == "slowloris":
    s.sendall(head)
elif mode == "slowbody":
    s.sendall(head + b"Content-Length: 100\r\n\r\n")
    try:
        for _ in range(60):  # a byte every 0.3 s until ugated answers (or 18 s)
            s.sendall(b"x")
            if select.select([s], [], [], 0.3)[0]:
                break
    except OSError:
        pass
elif mode == "huge":
    s.sendall(head + b"Content-Length: 10000000\r\n\r\n")
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except (ssl.SSLError, ConnectionResetError, socket.timeout) as e:
    if isinstance(e, socket.timeout):
        print("timeout")
        sys.exit(0)
print(data.split(b"\r\n", 1)[0].decode() if data else "closed")

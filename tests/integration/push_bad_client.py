#!/usr/bin/env python3
# push_bad_client.py PORT MODE: a TLS client (no certificate checks: a loopback test) that misbehaves
# toward ugated's push listener over HTTP/1.1, for push_test.sh. Prints the status line ugated
# answered, or "closed" when it closed the connection without one.
#   garbage    a request line that is not HTTP
#   truncated  a push whose body stops short of its Content-Length, then silence
#   slowloris  half a request head, then silence
#   huge       a Content-Length of 10 MB (never sent)
import socket, ssl, sys

port, mode = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20))
head = b"POST /push/AAAAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: 127.0.0.1\r\nTTL: 60\r\nContent-Encoding: aes128gcm\r\n"
if mode == "garbage":
    s.sendall(b"\x16\x03 NOT HTTP AT ALL\r\n\r\n")
elif mode == "truncated":
    s.sendall(head + b"Content-Length: 100\r\n\r\n0123456789")
elif mode == "slowloris":
    s.sendall(head)
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

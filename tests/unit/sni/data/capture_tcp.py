# cap.py PORT OUTFILE: accept one TCP connection, save the bytes of the first complete TLS handshake
# message (all records it spans), then close.
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
c, _ = s.accept(); c.settimeout(5)
buf = b""
def complete(b):
    hs = b""; off = 0
    while off + 5 <= len(b):
        ln = int.from_bytes(b[off+3:off+5], "big")
        if off + 5 + ln > len(b): return False
        hs += b[off+5:off+5+ln]; off += 5 + ln
        if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], "big"):
            return off
    return False
while True:
    d = c.recv(65536)
    if not d: break
    buf += d
    n = complete(buf)
    if n: buf = buf[:n]; break
open(sys.argv[2], "wb").write(buf)
c.close()

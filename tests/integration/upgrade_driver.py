#!/usr/bin/env python3
"""Traffic for upgrade_test.sh: an echo origin, long-lived checksummed streams, a connect prober.

  upgrade_driver.py origin PORT
      echo server on 127.0.0.1:PORT (every byte back, half-close forwarded).
  upgrade_driver.py streams PORT N SECONDS READYFILE
      N connections to 127.0.0.1:PORT, each sending its own deterministic pseudo-random stream in
      chunks for SECONDS and checking that exactly those bytes come back, in order; then it
      half-closes and reads to EOF. READYFILE is written once all N are connected and have
      exchanged a first chunk. Prints one JSON line: {"ok": n, "failed": n, "sent": bytes,
      "errors": [first few]}.
  upgrade_driver.py sink PORT
      for each connection: read to EOF, then answer "<bytes> <sha256 hex>\n" and close.
  upgrade_driver.py bulk PORT SECONDS
      one connection sending deterministic data as fast as it can for SECONDS, then a half-close;
      prints {"sent": n, "received": n, "match": true|false} from the sink's answer.
  upgrade_driver.py probe PORT SECONDS
      a new connection every 20 ms with a 64-byte echo; prints {"ok": n, "failed": n, "errors": [...]}.
"""
import asyncio
import json
import random
import sys


async def origin(port):
    async def handle(r, w):
        try:
            while True:
                b = await r.read(65536)
                if not b:
                    break
                w.write(b)
                await w.drain()
            w.write_eof()
            await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096, limit=1 << 20)
    async with srv:
        await srv.serve_forever()


async def stream(port, idx, seconds, first, result):
    rng = random.Random(idx * 7919 + 1)
    sent = bytearray()
    got = bytearray()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    except OSError as e:
        result["failed"] += 1
        result["errors"].append(f"{idx}: connect: {e}")
        first.release()
        return
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def reader():
        while True:
            b = await r.read(65536)
            if not b:
                return
            got.extend(b)

    rd = asyncio.create_task(reader())
    try:
        chunk = rng.randbytes(rng.randint(200, 3000))
        w.write(chunk)
        sent.extend(chunk)
        await w.drain()
        while len(got) < len(sent):
            await asyncio.sleep(0.01)
        first.release()
        first = None
        while loop.time() < end:
            chunk = rng.randbytes(rng.randint(200, 3000))
            w.write(chunk)
            sent.extend(chunk)
            await w.drain()
            await asyncio.sleep(rng.uniform(0.02, 0.08))
        w.write_eof()
        await asyncio.wait_for(rd, 30)
        if bytes(got) == bytes(sent):
            result["ok"] += 1
        else:
            result["failed"] += 1
            n = next((i for i in range(min(len(got), len(sent))) if got[i] != sent[i]), min(len(got), len(sent)))
            result["errors"].append(f"{idx}: sent {len(sent)} bytes, got {len(got)}, first difference at {n}")
        result["sent"] += len(sent)
    except (OSError, asyncio.TimeoutError, ConnectionError) as e:
        result["failed"] += 1
        result["errors"].append(f"{idx}: {type(e).__name__}: {e} after {len(sent)} sent, {len(got)} back")
    finally:
        if first:
            first.release()
        rd.cancel()
        w.close()


async def streams(port, n, seconds, readyfile):
    result = {"ok": 0, "failed": 0, "sent": 0, "errors": []}
    first = asyncio.Semaphore(0)
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(stream(port, i, seconds, first, result)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not overflow the listen backlog
    for _ in range(n):
        await first.acquire()
    with open(readyfile, "w") as f:
        f.write("ready\n")
    await asyncio.gather(*tasks)
    result["errors"] = result["errors"][:5]
    print(json.dumps(result), flush=True)


async def probe(port, seconds):
    result = {"ok": 0, "failed": 0, "errors": []}
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            msg = random.randbytes(64)
            w.write(msg)
            await w.drain()
            back = await asyncio.wait_for(r.readexactly(64), 5)
            w.close()
            if back == msg:
                result["ok"] += 1
            else:
                result["failed"] += 1
                result["errors"].append("wrong echo")
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            result["failed"] += 1
            result["errors"].append(f"{type(e).__name__}: {e}")
        await asyncio.sleep(0.02)
    result["errors"] = result["errors"][:5]
    print(json.dumps(result), flush=True)


def sink(port):
    import hashlib
    import socket
    import threading

    def serve(c):
        h, n = hashlib.sha256(), 0
        with c:
            while True:
                b = c.recv(1 << 20)
                if not b:
                    break
                h.update(b)
                n += len(b)
            c.sendall(f"{n} {h.hexdigest()}\n".encode())

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def bulk(port, seconds):
    import hashlib
    import socket
    import time

    rng = random.Random(4242)
    blocks = [rng.randbytes((1 << 20) - 17 * i) for i in range(4)]  # odd sizes: chunk edges move
    h, n = hashlib.sha256(), 0
    c = socket.create_connection(("127.0.0.1", port))
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        b = blocks[i % 4]
        c.sendall(b)
        h.update(b)
        n += len(b)
        i += 1
    c.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        b = c.recv(4096)
        if not b:
            break
        reply += b
    got = reply.decode().split()
    ok = len(got) == 2 and int(got[0]) == n and got[1] == h.hexdigest()
    print(json.dumps({"sent": n, "received": int(got[0]) if got else 0, "match": ok}), flush=True)


def main():
    mode = sys.argv[1]
    if mode == "origin":
        asyncio.run(origin(int(sys.argv[2])))
    elif mode == "streams":
        asyncio.run(streams(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]))
    elif mode == "sink":
        sink(int(sys.argv[2]))
    elif mode == "bulk":
        bulk(int(sys.argv[2]), float(sys.argv[3]))
    elif mode == "probe":
        asyncio.run(probe(int(sys.argv[2]), float(sys.argv[3])))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The push service end to end (issue 18 §5), against the real daemon over TLS on loopback.

Each measurement starts its own ugated (a `push` listener, 2 workers, the store on the disk under
--dir) and ends it by its PID. Nothing is asserted; it prints one JSON line per measurement.

  throughput  messages/s answered 201 (committed: the 201 leaves after the store's COMMIT) by h2load
              over HTTP/2 (-c clients x -m streams, 3 KiB bodies, --subs subscriptions round robin),
              for `webpush.sync` full and normal, and the same with `webpush.storeBatch` 1 (one
              transaction, one fsync, per operation: the baseline of group commit), all in one run.
              /stats before and after give the commits, operations per commit and commit latency.
  latency     one SSE subscriber connected (HTTP/1.1), pushes sent one after another on one
              keep-alive connection; latency = from the first byte of the POST to the event's arrival.
              p50/p99/max over --messages pushes (sync full and normal).
  idle        N idle subscribers (one subscription and one TLS + HTTP/1.1 SSE stream each): the
              daemon's RSS before and after, per subscriber; /stats must count N connected; then a push
              to the last one must still be delivered (the 10 000-subscriber check of §4, with
              --idle 10000; the fd limit must allow N + a few on both ends).

    python3 bench/push_bench.py --ugated build/ugated [--seconds 5] [--idle 2000] [--only throughput]
        [--compare OTHER_UGATED] [--rounds N]
"""
import argparse
import json
import os
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import free_port  # noqa: E402


def tls_ctx(alpn=("http/1.1",)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # loopback, the node's own self-signed certificate
    ctx.set_alpn_protocols(list(alpn))
    return ctx


class Ugated:
    """One ugated with a push listener; stop() ends it by its PID."""

    def __init__(self, binary, root, webpush):
        self.dir = tempfile.mkdtemp(prefix="push-bench.", dir=root)
        self.port, self.admin = free_port(), free_port()
        cfg = {
            "node": {"name": "pushbench", "dataDir": os.path.join(self.dir, "data")},
            "workers": 2,
            "admin": {"address": f"127.0.0.1:{self.admin}"},
            "log": {"level": "warn"},
            "listeners": [{"name": "push", "kind": "push", "address": f"127.0.0.1:{self.port}"}],
            "webpush": dict({"rateLimits": {"subscriptionRate": 0, "sourceRate": 0}, "maxInFlight": 10000}, **webpush),
        }
        with open(os.path.join(self.dir, "c.json"), "w") as f:
            json.dump(cfg, f)
        self.logf = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen([binary, "-c", os.path.join(self.dir, "c.json")], stdout=self.logf, stderr=self.logf)
        for _ in range(200):
            try:
                self.stats()
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("ugated did not start: " + open(os.path.join(self.dir, "log")).read()[-2000:])

    def stats(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/stats", timeout=10) as r:
            out = {}
            for line in r.read().decode().splitlines():
                parts = line.split()
                if len(parts) == 2 and not line.startswith("#"):
                    try:
                        out[parts[0]] = float(parts[1])
                    except ValueError:
                        pass
            return out

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def cpu(self):
        """CPU seconds (user + system) by thread name: workers (ugate-w*), the store thread, the rest."""
        out = {}
        tick = os.sysconf("SC_CLK_TCK")
        for t in os.listdir(f"/proc/{self.proc.pid}/task"):
            try:
                with open(f"/proc/{self.proc.pid}/task/{t}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            name = st[st.index("(") + 1:st.rindex(")")]
            fields = st[st.rindex(")") + 2:].split()
            key = "workers" if name.startswith("ugate-w") else ("store" if name == "ugate-pushstore" else "other")
            out[key] = out.get(key, 0) + (int(fields[11]) + int(fields[12])) / tick
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class H1:
    """A keep-alive HTTPS/1.1 connection: request() returns (status, headers, body)."""

    def __init__(self, port):
        self.s = tls_ctx().wrap_socket(socket.create_connection(("127.0.0.1", port)))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, method, path, headers=None, body=b""):
        h = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{h}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        n = int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            self.buf += self.s.recv(65536)
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body

    def close(self):
        self.s.close()


def subscribe(port, n, threads=8):
    """n subscriptions over `threads` keep-alive connections: [(token, sid)]."""
    def some(k):
        c = H1(port)
        out = []
        for _ in range(k):
            st, h, b = c.request("POST", "/subscribe")
            if st != 201:
                raise RuntimeError(f"subscribe: {st} {b!r}")
            j = json.loads(b)
            out.append((j["endpoint"].rsplit("/", 1)[1], j["receive"].rsplit("/", 1)[1]))
        c.close()
        return out
    per = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]
    with ThreadPoolExecutor(threads) as ex:
        return [x for part in ex.map(some, [k for k in per if k]) for x in part]


def delta(a, b, key):
    return b.get(key, 0) - a.get(key, 0)


def store_summary(before, after, sync):
    commits = delta(before, after, "ugate_webpush_store_commits_total")
    ops = delta(before, after, "ugate_webpush_store_operations_total")
    us = delta(before, after, "ugate_webpush_store_commit_microseconds_total")
    return {"commits": int(commits), "ops_per_commit": round(ops / commits, 1) if commits else None,
            "mean_commit_ms": round(us / commits / 1000, 2) if commits else None,
            "largest_batch": int(after.get("ugate_webpush_store_batch_largest", 0))}


def throughput(args, sync, batch, binary=None, label="ugated"):
    web = {"sync": sync}
    if batch:
        web["storeBatch"] = batch
    u = Ugated(binary or args.ugated, args.dir, web)
    try:
        subs = subscribe(u.port, args.subs)
        body = os.path.join(u.dir, "body.bin")
        with open(body, "wb") as f:
            f.write(os.urandom(3072))
        uris = [f"https://127.0.0.1:{u.port}/push/{t}" for t, _ in subs]
        before = u.stats()
        cpu0 = u.cpu()
        cmd = ["h2load", "-D", str(args.seconds), "--warm-up-time", "1", "-c", str(args.clients), "-m", str(args.streams),
               "-t", "1", "-d", body, "-H", "ttl: 3600", "-H", "content-encoding: aes128gcm"] + uris
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        after = u.stats()
        cpu1 = u.cpu()
        m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
        ok = int(m.group(1)) if m else 0
        bad = sum(int(x) for x in m.groups()[1:]) if m else None
        rps = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
        accepted = delta(before, after, "ugate_webpush_messages_accepted_total")
        res = {"measure": "throughput", "binary": label, "sync": sync, "storeBatch": batch or 512,
               "h2load": f"-c {args.clients} -m {args.streams} over {args.subs} subscriptions",
               "seconds": float(rps.group(1)) if rps else None,
               "msgs_per_s": round(ok / float(rps.group(1))) if rps and float(rps.group(1)) > 0 else None,
               "non_2xx": bad, "accepted_in_stats": int(accepted)}
        res.update(store_summary(before, after, sync))
        # CPU per accepted message, by thread: what the machine's load does not change much.
        res["cpu_us_per_msg"] = {k: round((cpu1.get(k, 0) - cpu0.get(k, 0)) * 1e6 / accepted, 1) if accepted else None
                                 for k in ("workers", "store", "other")}
        if not m:
            res["h2load_output"] = out[-800:]
        return res
    finally:
        u.stop()


def latency(args, sync, binary=None, label="ugated"):
    u = Ugated(binary or args.ugated, args.dir, {"sync": sync})
    try:
        (token, sid), = subscribe(u.port, 1, 1)
        arrived = {}
        sse = tls_ctx().wrap_socket(socket.create_connection(("127.0.0.1", u.port)))
        sse.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sse.sendall(f"GET /s/{sid} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())

        def reader():
            buf = b""
            while True:
                try:
                    chunk = sse.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                t = time.perf_counter()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.startswith(b"id: "):
                        arrived[line[4:].decode().strip()] = t
        th = threading.Thread(target=reader, daemon=True)
        th.start()
        c = H1(u.port)
        body = os.urandom(3072)
        sent = {}
        for i in range(args.messages + 50):
            t0 = time.perf_counter()
            st, h, _ = c.request("POST", f"/push/{token}", {"TTL": "600", "Content-Encoding": "aes128gcm"}, body)
            if st == 201 and i >= 50:  # the first 50 warm up
                sent[h["location"].rsplit("/", 1)[1]] = t0
            time.sleep(args.gap_ms / 1000)
        deadline = time.time() + 10
        while time.time() < deadline and not all(m in arrived for m in sent):
            time.sleep(0.05)
        lat = sorted((arrived[m] - t) * 1000 for m, t in sent.items() if m in arrived)
        c.close()
        sse.close()
        q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [0] * 99
        return {"measure": "latency", "binary": label, "sync": sync, "messages": len(sent), "delivered": len(lat),
                "p50_ms": round(q[49], 3), "p99_ms": round(q[98], 3), "max_ms": round(lat[-1], 3) if lat else None}
    finally:
        u.stop()


def idle(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    u = Ugated(args.ugated, args.dir, {"sync": "normal", "keepalive": "600s"})
    conns = []
    try:
        t0 = time.time()
        subs = subscribe(u.port, args.idle, 16)
        t_sub = time.time() - t0
        time.sleep(1)
        rss0 = u.rss_kib()
        ctx = tls_ctx()
        req = "GET /s/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"

        def open_some(part):
            out = []
            for _, sid in part:
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", u.port), timeout=30))
                s.sendall(req.format(sid).encode())
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                if head.startswith(b"HTTP/1.1 200"):
                    out.append(s)
                else:
                    s.close()
            return out
        t0 = time.time()
        parts = [subs[i::16] for i in range(16)]
        with ThreadPoolExecutor(16) as ex:
            for part in ex.map(open_some, parts):
                conns.extend(part)
        t_open = time.time() - t0
        time.sleep(2)
        rss1 = u.rss_kib()
        st = u.stats()
        # One more push to the last subscriber: still delivered with N streams open.
        last_token, last_sid = parts[-1][-1]
        c = H1(u.port)
        status, h, _ = c.request("POST", f"/push/{last_token}", {"TTL": "60", "Content-Encoding": "aes128gcm"}, b"x" * 100)
        mid = h.get("location", "").rsplit("/", 1)[-1]
        got = False
        s = conns[-1]
        s.settimeout(10)
        buf = b""
        try:
            while mid and mid.encode() not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            got = bool(mid) and mid.encode() in buf
        except OSError:
            pass
        c.close()
        n = len(conns)
        return {"measure": "idle", "subscribers": args.idle, "streams_open": n,
                "stats_subscribers_connected": int(st.get("ugate_webpush_subscribers_connected", -1)),
                "rss_before_kib": rss0, "rss_after_kib": rss1,
                "bytes_per_subscriber": round((rss1 - rss0) * 1024 / n) if n else None,
                "subscribe_s": round(t_sub, 1), "open_s": round(t_open, 1),
                "push_to_last": status, "delivered_to_last": got, "alive": u.proc.poll() is None}
    finally:
        for s in conns:
            s.close()
        u.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ugated", default="build/ugated")
    ap.add_argument("--dir", default="/var/tmp", help="where the stores live (a real disk: fsync is measured)")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--subs", type=int, default=64)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--gap-ms", type=float, default=1.0)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--only", choices=["throughput", "latency", "idle"])
    ap.add_argument("--compare", help="another ugated (an earlier build): its group-commit throughput "
                    "and latency in the same run, interleaved (it needs no storeBatch key)")
    ap.add_argument("--rounds", type=int, default=1, help="throughput rounds (interleaved)")
    args = ap.parse_args()
    print(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "loadavg": os.getloadavg()}), flush=True)
    if args.only in (None, "throughput"):
        for _ in range(args.rounds):
            for sync, batch in (("full", 0), ("full", 1), ("normal", 0), ("normal", 1)):
                print(json.dumps(throughput(args, sync, batch)), flush=True)
                if args.compare and not batch:
                    print(json.dumps(throughput(args, sync, batch, args.compare, "compare")), flush=True)
    if args.only in (None, "latency"):
        for sync in ("full", "normal"):
            print(json.dumps(latency(args, sync)), flush=True)
            if args.compare:
                print(json.dumps(latency(args, sync, args.compare, "compare")), flush=True)
    if args.only in (None, "idle") and args.idle > 0:  # --idle 0: no idle measurement
        print(json.dumps(idle(args)), flush=True)
    print(json.dumps({"loadavg_end": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()

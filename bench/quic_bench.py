#!/usr/bin/env python3
"""QUIC / HTTP/3 benchmark: ugated's `quic` listener vs gtlsserver (ngtcp2's example server), same run.

Everything runs on loopback; ugated has one worker. The client is gtlsclient (ngtcp2's example
client) for both servers, so the client's own cost is the same on both sides and the servers'
CPU is what differs:
- download: GET of a FILE_MIB file, R rounds: from gtlsserver serving it from disk, and through
  ugated (HTTP/3 → HTTP/1.1 to an nginx origin on loopback; the origin's CPU is reported apart).
  Gbit/s (wall time of the client) and server CPU seconds per GB.
- handshakes: N sequential connections, each one GET of a 6-byte file (ugated: /healthz, answered
  by the node itself); server CPU milliseconds per connection (the client's process start-up
  dominates the wall time, so only the servers' CPU is compared).
- idle (measured first, before any download has grown the heap): N HTTP/3 CONNECT tunnels
  (ugate_h3connect, one per QUIC connection) held open to the nginx origin; ugated's RSS growth
  per connection (userland memory of one idle QUIC connection with one tunnel and its core session), and the part ngtcp2 and nghttp3 hold (ugate_quic_library_bytes).
- fast client: gtlsclient costs more CPU per byte than either server, so it caps both downloads.
  The same file is then fetched with ugated's own QUIC client (ugate_h3connect: an HTTP/3 CONNECT
  tunnel through ugated to the nginx origin, `GET /big` inside it), which shows what ugated's
  server side carries when the client is not the limit. gtlsserver is fetched with the same client
  (an HTTP/3 GET of the file), so the two servers are compared with a client that does not cap them. Client CPU per GB is printed for both
  clients, so which side limits is visible (a side whose CPU s/GB × Gbit/s / 8 ≈ 1 is saturated).
Several ugated builds can be compared in the same run (`--ugated label=path`, repeated): rounds
are interleaved (gtlsserver, then each build), so machine load hits them alike.
Not a test: nothing is asserted. Prints a table; --markdown FILE appends it.

Usage: bench/quic_bench.py [--ugated [LABEL=]build/ugated]... [--h3connect build/tests/ugate_h3connect]
                           [--file-mib 100] [--rounds 3] [--handshakes 100] [--idle 200] [--no-fast]
"""
import argparse, os, signal, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Procs, cpu_seconds, rss_kib, free_port, wait_port  # noqa: E402


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_ns(pid):
    """On-CPU seconds of every thread of pid (schedstat: nanoseconds, not clock ticks), children
    included the tick-based way (nginx's worker)."""
    total = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
    except OSError:
        pass
    return total / 1e9 + cpu_seconds(pid) - own_ticks(pid)


def own_ticks(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def lib_bytes(admin):
    """ugate_quic_library_bytes{lib=...} from ugated's /stats (builds without it: {})."""
    import urllib.request
    out = {}
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats", timeout=5).read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("ugate_quic_library_bytes{"):
            lib = line.split('lib="', 1)[1].split('"', 1)[0]
            out[lib] = float(line.rsplit(" ", 1)[1])
    return out


def timed(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL):
    """Runs args; returns (exit status, wall seconds, the child's CPU seconds)."""
    t0 = time.time()
    p = subprocess.Popen(args, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, time.time() - t0, ru.ru_utime + ru.ru_stime


def gtlsclient(port, url, dl, extra=()):
    return timed(["gtlsclient", "-q", "--exit-on-all-streams-close", "--timeout=60s", "--download", dl, *extra,
                  "127.0.0.1", str(port), url])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ugated", action="append", help="[LABEL=]PATH, repeatable (default build/ugated)")
    ap.add_argument("--h3connect", default="build/tests/ugate_h3connect")
    ap.add_argument("--file-mib", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--handshakes", type=int, default=100)
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--no-fast", action="store_true", help="skip the ugate_h3connect download")
    ap.add_argument("--markdown")
    a = ap.parse_args()
    builds = []
    for spec in a.ugated or ["build/ugated"]:
        label, _, path = spec.rpartition("=")
        builds.append((label or "ugated", path))
    work = tempfile.mkdtemp(prefix="ugate-quicbench.")
    os.chmod(work, 0o711)
    P = Procs()
    rows = []
    try:
        www = os.path.join(work, "www")
        os.makedirs(www)
        os.chmod(www, 0o755)
        size = a.file_mib << 20
        with open(os.path.join(www, "big"), "wb") as f:
            f.write(os.urandom(size))
        with open(os.path.join(www, "small"), "wb") as f:
            f.write(b"small\n")
        # A key and certificate for gtlsserver (ugated uses its own identity).
        key, crt = os.path.join(work, "k.pem"), os.path.join(work, "c.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", crt, "-subj", "/CN=localhost", "-days", "2"], check=True,
                       capture_output=True)
        web, gport = free_port(), free_udp_port()
        ng = os.path.join(work, "nginx.conf")
        with open(ng, "w") as f:
            f.write(f"""daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/nginx.err;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; client_body_temp_path {work}; proxy_temp_path {work};
  fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};
  server {{ listen 127.0.0.1:{web}; root {www}; }} }}
""")
        nginx = P.start(["nginx", "-c", ng, "-e", f"{work}/nginx.err"])
        gts = P.start(["gtlsserver", "-q", "-d", www, "127.0.0.1", str(gport), key, crt])
        ugs = []  # (label, process, h3 port, echo port)
        admins = {}  # label -> admin port (/stats)
        for label, path in builds:
            uport, echo, admin = free_udp_port(), free_port(), free_port()
            admins[label] = admin
            cfg = os.path.join(work, f"ugated-{len(ugs)}.json")
            with open(cfg, "w") as f:
                f.write(f"""{{"workers": 1, "node": {{"name": "bench", "dataDir": "{work}/data{len(ugs)}"}},
 "admin": {{"address": "127.0.0.1:{admin}"}}, "log": {{"level": "warn"}},
 "listeners": [
  {{"name": "h3", "kind": "quic", "address": "127.0.0.1:{uport}", "tls": {{"requireClientCert": false}},
   "quic": {{"retry": "never", "maxStreams": 1000}}}},
  {{"name": "echo", "kind": "echo", "address": "127.0.0.1:{echo}"}}],
 "routes": [
  {{"name": "site", "match": {{"listener": "h3", "host": "localhost"}}, "to": "127.0.0.1:{web}", "http": true}},
  {{"name": "tun", "match": {{"listener": "h3", "port": {echo}}}, "to": "original"}},
  {{"name": "web", "match": {{"listener": "h3", "port": {web}}}, "to": "original"}}]}}
""")
            ugs.append((label, P.start([path, "-c", cfg]), uport, echo))
        wait_port(web)
        for u in ugs:
            wait_port(u[3])
        time.sleep(0.5)
        dl = os.path.join(work, "dl")
        os.makedirs(dl, exist_ok=True)
        med = lambda v: statistics.median(v) if v else float("nan")
        results = {}  # (measure, server label) -> list of values

        def put(key, label, v):
            results.setdefault((key, label), []).append(v)

        def record(prefix, label, secs, server_cpu, client_cpu):
            gb = size / 1e9
            put(prefix + "dl", label, size * 8 / secs / 1e9)
            put(prefix + "cpu", label, server_cpu / gb)
            put(prefix + "ccpu", label, client_cpu / gb)

        def download(port, pid, label):
            c0, n0 = cpu_ns(pid), cpu_ns(nginx.pid)
            rc, secs, ccpu = gtlsclient(port, f"https://localhost:{port}/big", dl)
            c1, n1 = cpu_ns(pid), cpu_ns(nginx.pid)
            if rc != 0 or os.path.getsize(os.path.join(dl, "big")) != size:
                print(f"{label}: download failed (rc {rc})", file=sys.stderr)
                return
            record("", label, secs, c1 - c0, ccpu)
            put("nginx", label, (n1 - n0) / (size / 1e9))

        def fast_download(u):
            label, proc, uport, _ = u
            out = os.path.join(work, "fast.out")
            c0 = cpu_ns(proc.pid)
            # The request goes into a pipe left open: the origin's close ends the tunnel (HTTP/1.0).
            rfd, wfd = os.pipe()
            os.write(wfd, b"GET /big HTTP/1.0\r\nHost: localhost\r\n\r\n")
            with open(out, "wb") as fout:
                rc, secs, ccpu = timed([a.h3connect, "--connect", f"127.0.0.1:{uport}", "--authority",
                                        f"127.0.0.1:{web}", "--timeout", "120"], stdin=rfd, stdout=fout)
            os.close(rfd)
            os.close(wfd)
            c1 = cpu_ns(proc.pid)
            got = os.path.getsize(out)
            if rc != 0 or got < size:
                print(f"{label}: fast download failed (rc {rc}, {got} bytes)", file=sys.stderr)
                return
            record("f", label, secs, c1 - c0, ccpu)

        def fast_gtlsserver():
            # The same client against gtlsserver: an HTTP/3 GET of the file (no tunnel, no origin).
            out = os.path.join(work, "fast.out")
            c0 = cpu_ns(gts.pid)
            with open(out, "wb") as fout:
                rc, secs, ccpu = timed([a.h3connect, "--connect", f"127.0.0.1:{gport}", "--authority",
                                        f"localhost:{gport}", "--request", "GET", "/big", "--timeout", "120"],
                                       stdout=fout)
            c1 = cpu_ns(gts.pid)
            got = os.path.getsize(out)
            if rc != 0 or got != size:
                print(f"gtlsserver: fast download failed (rc {rc}, {got} bytes)", file=sys.stderr)
                return
            record("f", "gtlsserver", secs, c1 - c0, ccpu)

        def idle_connections():
            # First, in fresh processes: a download's freed buffers would otherwise hold the heap
            # pages the idle connections then reuse, and the RSS growth would under-count them.
            # Idle QUIC connections, each with one CONNECT tunnel to the origin.
            fifo = os.path.join(work, "hold")
            os.mkfifo(fifo)
            keep = os.open(fifo, os.O_RDWR)  # keeps the tunnels' stdin open (never written)
            for label, proc, uport, echo in ugs:
                base = rss_kib(proc.pid)
                lib0 = lib_bytes(admins[label])
                holders = []
                for _ in range(a.idle):
                    # The tunnel's far end is nginx (another process), so only the QUIC connection, its
                    # tunnel stream and the tunnel's core session count (an echo listener inside ugated
                    # would add its own 16 KiB buffer per connection).
                    holders.append(subprocess.Popen([a.h3connect, "--connect", f"127.0.0.1:{uport}", "--authority",
                                                     f"127.0.0.1:{web}", "--timeout", "120"], stdin=keep,
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                time.sleep(3)
                grown = rss_kib(proc.pid) - base
                alive = sum(1 for h in holders if h.poll() is None)
                lib1 = lib_bytes(admins[label])
                for lib in ("ngtcp2", "nghttp3"):
                    if lib in lib0 and lib in lib1:
                        put("idle-" + lib, label, (lib1[lib] - lib0[lib]) / 1024 / max(1, alive))
                for h in holders:
                    h.send_signal(signal.SIGTERM)
                for h in holders:
                    h.wait()
                put("idle", label, grown / max(1, alive))
                put("idlen", label, alive)
                time.sleep(1)
            os.close(keep)

        idle_connections()

        for _ in range(a.rounds):
            download(gport, gts.pid, "gtlsserver")
            for label, proc, uport, _ in ugs:
                download(uport, proc.pid, label)
            if not a.no_fast:
                fast_gtlsserver()
                for u in ugs:
                    fast_download(u)

        def handshakes(port, pid, path):
            c0 = cpu_ns(pid)
            ok = 0
            for _ in range(a.handshakes):
                rc, _, _ = gtlsclient(port, f"https://localhost:{port}{path}", dl)
                ok += rc == 0
            return ok, (cpu_ns(pid) - c0) * 1000 / max(1, a.handshakes)

        ok, ms = handshakes(gport, gts.pid, "/small")
        put("hs", "gtlsserver", ms)
        for label, proc, uport, _ in ugs:
            ok, ms = handshakes(uport, proc.pid, "/healthz")
            put("hs", label, ms)
            if ok != a.handshakes:
                print(f"{label}: {a.handshakes - ok} handshakes failed", file=sys.stderr)

        cols = ["gtlsserver"] + [b[0] for b in builds]
        measures = [("dl", "HTTP/3 download (gtlsclient), Gbit/s"), ("cpu", "  server CPU s/GB"),
                    ("ccpu", "  gtlsclient CPU s/GB"), ("nginx", "  nginx origin CPU s/GB")]
        if not a.no_fast:
            measures += [("fdl", "download with ugate_h3connect (ugated: CONNECT to the origin, gtlsserver: GET), Gbit/s"), ("fcpu", "  server CPU s/GB"),
                         ("fccpu", "  ugate_h3connect CPU s/GB")]
        measures += [("hs", "handshake + 1 request, server CPU ms"),
                     ("idle", "userland KiB per idle QUIC connection + tunnel"),
                     ("idle-ngtcp2", "  of which ngtcp2 (its allocator), KiB"),
                     ("idle-nghttp3", "  of which nghttp3 (its allocator), KiB"), ("idlen", "  connections held")]
        for key, name in measures:
            rows.append((name, [med(results.get((key, c), [])) for c in cols]))
    finally:
        P.stop_all()
    title = (f"QUIC: ugated vs gtlsserver, same run ({a.file_mib} MiB x {a.rounds} rounds, medians; "
             f"{a.handshakes} handshakes; {a.idle} idle)")
    lines = [title, "", "| measure | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, vals in rows:
        f = lambda v: "–" if v != v else f"{v:.3g}"
        lines.append(f"| {name} | " + " | ".join(f(v) for v in vals) + " |")
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        with open(a.markdown, "a") as f:
            f.write("\n" + text + "\n")


if __name__ == "__main__":
    main()

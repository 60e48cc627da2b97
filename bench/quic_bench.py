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
- idle: N HTTP/3 CONNECT tunnels (ugate_h3connect, one per QUIC connection) held open to an echo
  listener; ugated's RSS growth per connection (userland memory of one idle QUIC connection with one
  tunnel and its core session).
Not a test: nothing is asserted. Prints a table; --markdown FILE appends it.

Usage: bench/quic_bench.py [--ugated build/ugated] [--h3connect build/tests/ugate_h3connect]
                           [--file-mib 100] [--rounds 3] [--handshakes 100] [--idle 200]
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


def gtlsclient(port, url, dl, extra=()):
    args = ["gtlsclient", "-q", "--exit-on-all-streams-close", "--timeout=60s", "--download", dl, *extra,
            "127.0.0.1", str(port), url]
    t0 = time.time()
    r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    return r.returncode, time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ugated", default="build/ugated")
    ap.add_argument("--h3connect", default="build/tests/ugate_h3connect")
    ap.add_argument("--file-mib", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--handshakes", type=int, default=100)
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--markdown")
    a = ap.parse_args()
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
        web, gport, uport, echo = free_port(), free_udp_port(), free_udp_port(), free_port()
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
        cfg = os.path.join(work, "ugated.json")
        with open(cfg, "w") as f:
            f.write(f"""{{"workers": 1, "node": {{"name": "bench", "dataDir": "{work}/data"}},
 "admin": {{"address": "127.0.0.1:0"}}, "log": {{"level": "warn"}},
 "listeners": [
  {{"name": "h3", "kind": "quic", "address": "127.0.0.1:{uport}", "tls": {{"requireClientCert": false}},
   "quic": {{"retry": "never", "maxStreams": 1000}}}},
  {{"name": "echo", "kind": "echo", "address": "127.0.0.1:{echo}"}}],
 "routes": [
  {{"name": "site", "match": {{"listener": "h3", "host": "localhost"}}, "to": "127.0.0.1:{web}", "http": true}},
  {{"name": "tun", "match": {{"listener": "h3", "port": {echo}}}, "to": "original"}}]}}
""")
        ug = P.start([a.ugated, "-c", cfg])
        wait_port(web)
        wait_port(echo)
        time.sleep(0.5)
        dl = os.path.join(work, "dl")
        os.makedirs(dl, exist_ok=True)

        def download(port, pid, label):
            gbps, cpus, ngcpu = [], [], []
            for _ in range(a.rounds):
                c0, n0 = cpu_seconds(pid), cpu_seconds(nginx.pid)
                rc, secs = gtlsclient(port, f"https://localhost:{port}/big", dl)
                c1, n1 = cpu_seconds(pid), cpu_seconds(nginx.pid)
                ok = rc == 0 and os.path.getsize(os.path.join(dl, "big")) == size
                if not ok:
                    print(f"{label}: download failed (rc {rc})", file=sys.stderr)
                    continue
                gbps.append(size * 8 / secs / 1e9)
                cpus.append((c1 - c0) / (size / 1e9))
                ngcpu.append((n1 - n0) / (size / 1e9))
            return gbps, cpus, ngcpu

        def handshakes(port, pid, path):
            c0 = cpu_seconds(pid)
            ok = 0
            for _ in range(a.handshakes):
                rc, _ = gtlsclient(port, f"https://localhost:{port}{path}", dl)
                ok += rc == 0
            return ok, (cpu_seconds(pid) - c0) * 1000 / max(1, a.handshakes)

        g = download(gport, gts.pid, "gtlsserver")
        u = download(uport, ug.pid, "ugated")
        med = lambda v: statistics.median(v) if v else float("nan")
        rows.append(("HTTP/3 download, Gbit/s (client wall time)", med(g[0]), med(u[0])))
        rows.append(("server CPU s/GB", med(g[1]), med(u[1])))
        rows.append(("  (nginx origin behind ugated, CPU s/GB)", float("nan"), med(u[2])))
        gok, gms = handshakes(gport, gts.pid, "/small")
        uok, ums = handshakes(uport, ug.pid, "/healthz")
        rows.append((f"handshake + 1 request, server CPU ms ({gok}/{uok} ok of {a.handshakes})", gms, ums))

        # Idle QUIC connections, each with one CONNECT tunnel to the echo listener.
        base = rss_kib(ug.pid)
        holders = []
        fifo = os.path.join(work, "hold")
        os.mkfifo(fifo)
        keep = os.open(fifo, os.O_RDWR)  # keeps the tunnels' stdin open (never written)
        for _ in range(a.idle):
            holders.append(subprocess.Popen([a.h3connect, "--connect", f"127.0.0.1:{uport}", "--authority",
                                             f"127.0.0.1:{echo}", "--timeout", "120"], stdin=keep,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(3)
        grown = rss_kib(ug.pid) - base
        alive = sum(1 for h in holders if h.poll() is None)
        for h in holders:
            h.send_signal(signal.SIGTERM)
        for h in holders:
            h.wait()
        os.close(keep)
        rows.append((f"userland KiB per idle QUIC connection + tunnel ({alive} held)", float("nan"),
                     grown / max(1, alive)))
    finally:
        P.stop_all()
    title = (f"QUIC: ugated vs gtlsserver, same run ({a.file_mib} MiB x {a.rounds} rounds, medians; "
             f"{a.handshakes} handshakes; {a.idle} idle)")
    lines = [title, "", "| measure | gtlsserver | ugated |", "|---|---|---|"]
    for name, gv, uv in rows:
        f = lambda v: "–" if v != v else f"{v:.3g}"
        lines.append(f"| {name} | {f(gv)} | {f(uv)} |")
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        with open(a.markdown, "a") as f:
            f.write("\n" + text + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""ugate benchmark suite: ugated vs nginx (stream) vs haproxy (tcp) vs direct, same topology, one run.

Everything runs on loopback. Each proxy gets one worker. Prints a table of absolute figures and
ratios, and (with --markdown FILE) appends it to a markdown file. Not a test: nothing is asserted.

Usage: bench/bench.py [--ugated build/ugated] [--seconds 5] [--quick] [--markdown docs/BENCHMARKS.md]
"""
import argparse, json, math, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []


def rss_kib(pid):
    total = 0
    # Sum over the process (and children for nginx/haproxy masters with workers).
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(x) for x in out]
    except Exception:
        pass
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid):
    pids = [pid]
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    pids += [int(x) for x in out]
    tck = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tck
        except OSError:
            pass
    return total


def iperf(port, seconds, parallel=1, reverse=False):
    args = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-J", "-P", str(parallel)]
    if reverse:
        args.append("-R")
    for _ in range(3):  # the iperf3 server refuses a test while the previous one is still closing
        r = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30)
        try:
            d = json.loads(r.stdout)
            return d["end"]["sum_received"]["bits_per_second"] / 1e9, d["end"]["sum_received"]["bytes"]
        except (ValueError, KeyError):
            time.sleep(1)
    return None


def wrk(port, seconds, close=False, conns=32, scheme="http", threads=1):
    args = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency"]
    if close:
        args += ["-H", "Connection: close"]
    # https: the name "localhost" is sent as SNI (the routes above match it).
    args.append(f"https://localhost:{port}/" if scheme == "https" else f"http://127.0.0.1:{port}/")
    r = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30)
    out = r.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(m.group(1)) if m else 0.0
    lat = {}
    for q in ("50%", "99%"):
        m = re.search(q.replace("%", r"%") + r"\s+([\d.]+)(us|ms|s)", out)
        if m:
            v = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
            lat[q] = v
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat.get("50%"), lat.get("99%"), (errs.group(0) if errs else ""), (non2xx.group(1) if non2xx else "0")


def request_each(socks):
    """Sends one small HTTP request on each socket, then reads each answer; returns how many answered."""
    for s in socks:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answered = 0
    for s in socks:
        s.settimeout(5)
        try:
            if s.recv(4096):
                answered += 1
        except OSError:
            pass
    return answered


def idle_memory(port, pid, n):
    """RSS delta per idle proxied connection over n connections."""
    base = rss_kib(pid)
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            socks.append(s)
        answered = request_each(socks)
        if answered < n:
            print(f"bench: idle memory: only {answered} of {n} connections answered", file=sys.stderr)
        time.sleep(1.0)
        after = rss_kib(pid)
        return (after - base) * 1024 / n
    finally:
        for s in socks:
            s.close()


def finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def start_origin(P, work, http_port, workers=1, extra_servers=""):
    """The nginx HTTP origin every section forwards to: a small fixed body, keep-alive without limit."""
    conf = os.path.join(work, "origin.conf")
    reuse = " reuseport" if workers > 1 else ""
    open(conf, "w").write(f"""
daemon off; worker_processes {workers}; pid {work}/origin.pid; error_log {work}/origin.err;
events {{ worker_connections 16384; }}
http {{ access_log off; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{http_port}{reuse}; location / {{ return 200 "hello from the origin\\n"; }} }}
  {extra_servers} }}
""")
    return P.start(["nginx", "-c", conf, "-e", f"{work}/origin.err"])


def median(xs):
    xs = sorted(x for x in xs if finite(x))
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def fmt(v):
    return f"{v:.2f}" if finite(v) else ("-" if v is None or isinstance(v, float) else str(v))


def measure_tcp_path(a, ports, ip, hp_, sni, proc):
    """One round of every TCP measurement through one path (proc None: direct)."""
    r = {}
    for label, par, rev in (("iperf 1 stream Gbit/s", 1, False), ("iperf 1 stream -R Gbit/s", 1, True),
                            ("iperf 4 streams Gbit/s", 4, False)):
        c0 = cpu_seconds(proc.pid) if proc else 0
        res = iperf(ports[ip], a.seconds, par, rev)
        c1 = cpu_seconds(proc.pid) if proc else 0
        r[label] = res[0] if res else None
        if proc and label == "iperf 1 stream Gbit/s":
            r["CPU s per GB"] = (c1 - c0) / (res[1] / 1e9) if res and res[1] else None
    rps, p50, p99, _, _ = wrk(ports[hp_], a.seconds)
    r["wrk keep-alive req/s"] = rps
    r["p50 ms"] = p50
    r["p99 ms"] = p99
    r["wrk close conn/s"] = wrk(ports[hp_], a.seconds, close=True, conns=16)[0]
    # SNI routing: TLS end to end (the proxy only peeks at the ClientHello; the floor does not even
    # peek, it forwards the bytes to the TLS origin).
    srps, _, sp99, _, _ = wrk(ports[sni], a.seconds, scheme="https")
    r["SNI keep-alive req/s"] = srps
    r["SNI p99 ms"] = sp99
    r["SNI close conn/s"] = wrk(ports[sni], a.seconds, close=True, conns=16, scheme="https")[0]
    return r


def tcp_section(a):
    """TCP forwarding and SNI routing: ugated vs nginx stream vs haproxy vs direct."""
    for tool in ("iperf3", "wrk", "nginx", "haproxy"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} missing (scripts/install-deps.sh installs it)")
    work = tempfile.mkdtemp(prefix="ugate-bench-")
    P = Procs()
    ports = {k: free_port() for k in ("iperf", "http", "u_iperf", "u_http", "n_iperf", "n_http", "h_iperf",
                                       "h_http", "admin", "https", "u_sni", "n_sni", "h_sni", "r_iperf",
                                       "r_http", "r_sni")}
    try:
        # Origins: iperf3 server and an nginx HTTP server answering a small body.
        P.start(["iperf3", "-s", "-p", str(ports["iperf"])])
        # A TLS origin for the SNI measurements (self-signed, CN=localhost; wrk sends SNI "localhost").
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-subj", "/CN=localhost", "-days", "2", "-keyout", f"{work}/key.pem",
                        "-out", f"{work}/cert.pem"], check=True, capture_output=True)
        start_origin(P, work, ports["http"], extra_servers=(
            f"server {{ listen 127.0.0.1:{ports['https']} ssl; ssl_certificate {work}/cert.pem; "
            f"ssl_certificate_key {work}/key.pem; location / {{ return 200 \"hello over tls\\n\"; }} }}"))
        # ugated: one worker, access log off (nginx/haproxy below log nothing either).
        ucfg = os.path.join(work, "ugated.json")
        json.dump({"workers": 1, "admin": {"address": f"127.0.0.1:{ports['admin']}"},
                   "log": {"level": "warn", "accessLog": ""},
                   "listeners": [
                       {"name": "iperf", "kind": "tcp", "address": f"127.0.0.1:{ports['u_iperf']}",
                        "to": f"127.0.0.1:{ports['iperf']}"},
                       {"name": "http", "kind": "tcp", "address": f"127.0.0.1:{ports['u_http']}",
                        "to": f"127.0.0.1:{ports['http']}"},
                       {"name": "sni", "kind": "sni", "address": f"127.0.0.1:{ports['u_sni']}"}],
                   "routes": [{"match": {"listener": "sni", "sni": "localhost"},
                               "to": f"127.0.0.1:{ports['https']}"}]}, open(ucfg, "w"))
        ug = P.start([a.ugated, "--config", ucfg])
        # nginx stream proxy, one worker.
        nconf = os.path.join(work, "nginx.conf")
        open(nconf, "w").write(f"""
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/nginx.err;
events {{ worker_connections 19500; }}
stream {{
  server {{ listen 127.0.0.1:{ports['n_iperf']}; proxy_pass 127.0.0.1:{ports['iperf']}; }}
  server {{ listen 127.0.0.1:{ports['n_http']}; proxy_pass 127.0.0.1:{ports['http']}; }}
  map $ssl_preread_server_name $sni_upstream {{ localhost 127.0.0.1:{ports['https']}; default 127.0.0.1:1; }}
  server {{ listen 127.0.0.1:{ports['n_sni']}; ssl_preread on; proxy_pass $sni_upstream; }}
}}
""")
        ng = P.start(["nginx", "-c", nconf, "-e", f"{work}/nginx.err"])
        # haproxy tcp mode, one thread (splice is on by default where supported).
        hconf = os.path.join(work, "haproxy.cfg")
        open(hconf, "w").write(f"""
global
  maxconn 9500
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen iperf
  bind 127.0.0.1:{ports['h_iperf']}
  server s1 127.0.0.1:{ports['iperf']}
listen http
  bind 127.0.0.1:{ports['h_http']}
  server s1 127.0.0.1:{ports['http']}
frontend sni
  bind 127.0.0.1:{ports['h_sni']}
  tcp-request inspect-delay 5s
  tcp-request content accept if {{ req_ssl_hello_type 1 }}
  use_backend tls if {{ req_ssl_sni -i localhost }}
backend tls
  server s1 127.0.0.1:{ports['https']}
""")
        hp = P.start(["haproxy", "-db", "-f", hconf])
        # The floor: bench/ref_forwarder, the least work a userland proxy can do (no routing, no
        # limits, nothing). What separates ugated from it is the price of being a gateway; what
        # separates it from direct is the price of any proxy on this machine.
        ref = None
        if a.ref and os.access(a.ref, os.X_OK):
            ref = P.start([a.ref, str(ports["r_iperf"]), str(ports["iperf"]), str(ports["r_http"]),
                           str(ports["http"]), str(ports["r_sni"]), str(ports["https"])])
        else:
            print(f"bench: {a.ref} not built: no floor column (ninja -C build ref_forwarder)", file=sys.stderr)
        for k in ("iperf", "http", "https", "u_iperf", "u_http", "u_sni", "n_iperf", "n_http", "n_sni",
                  "h_iperf", "h_http", "h_sni") + (("r_iperf", "r_http", "r_sni") if ref else ()):
            if not wait_port(ports[k]):
                sys.exit(f"bench: port {k} did not come up")
        targets = [("direct", "iperf", "http", "https", None), ("ugated", "u_iperf", "u_http", "u_sni", ug),
                   ("nginx", "n_iperf", "n_http", "n_sni", ng), ("haproxy", "h_iperf", "h_http", "h_sni", hp)]
        if ref:
            targets.append(("floor", "r_iperf", "r_http", "r_sni", ref))
        names = [t[0] for t in targets]
        samples = {n: {} for n in names}  # name -> metric -> [value per repetition]
        for rep in range(a.reps):
            # Interleaved: every path is measured once per repetition, so a disturbance of the
            # shared machine lands on all of them instead of on one.
            for name, ip, hp_, sni, proc in targets:
                r = measure_tcp_path(a, ports, ip, hp_, sni, proc)
                for k, v in r.items():
                    samples[name].setdefault(k, []).append(v)
                print(f"rep {rep + 1}/{a.reps} {name:8s} " + "  ".join(f"{k}={fmt(v)}" for k, v in r.items()),
                      flush=True)
        rows = {n: {k: median(v) for k, v in samples[n].items()} for n in names}
        for name, _, hp_, _, proc in targets:
            if proc and proc is not ref:
                rows[name]["idle conn bytes"] = idle_memory(ports[hp_], proc.pid, a.idle)
        cols = ["iperf 1 stream Gbit/s", "iperf 1 stream -R Gbit/s", "iperf 4 streams Gbit/s", "CPU s per GB",
                "wrk keep-alive req/s", "p50 ms", "p99 ms", "wrk close conn/s", "SNI keep-alive req/s",
                "SNI p99 ms", "SNI close conn/s", "idle conn bytes"]
        others = [n for n in names if n != "ugated"]
        lines = ["| metric | " + " | ".join(names) + " | " + " | ".join(f"ugated/{n}" for n in others) + " |",
                 "|---|" + "---|" * (len(names) + len(others))]
        def ratio(c, n):
            # The median of the per-repetition ratios (each from one interleaved round; every round
            # records every metric, None when it failed, so the lists line up by round).
            if c == "idle conn bytes":
                x, y = rows["ugated"].get(c), rows[n].get(c)
                return fmt(x / y) if finite(x) and finite(y) and y else "-"
            xs, ys = samples["ugated"].get(c) or [], samples[n].get(c) or []
            return fmt(median([x / y for x, y in zip(xs, ys) if finite(x) and finite(y) and y]))
        for c in cols:
            lines.append(f"| {c} | " + " | ".join(fmt(rows[n].get(c)) for n in names) + " | " +
                         " | ".join(ratio(c, n) for n in others) + " |")
        table = "\n".join(lines)
        print(table)
        if a.markdown:
            with open(a.markdown, "a") as f:
                f.write(f"\n### {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
                        f"`bench/bench.py --seconds {a.seconds} --reps {a.reps} --idle {a.idle}`\n\n"
                        f"{os.cpu_count()} cores, {os.uname().release}; one worker per proxy; loopback; "
                        f"medians of {a.reps} interleaved repetitions (ratios: median of the per-repetition "
                        f"ratios).\n\n{table}\n")
    finally:
        P.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def ratio_table(rows, names, cols, base):
    """A markdown table of rows[name][col] for each name, then base/other ratios."""
    others = [n for n in names if n != base]
    lines = ["| metric | " + " | ".join(names) + " | " + " | ".join(f"{base}/{n}" for n in others) + " |",
             "|---|" + "---|" * (len(names) + len(others))]
    def ratio(x, y):
        return fmt(x / y) if finite(x) and finite(y) and y else "-"
    for c in cols:
        vals = {n: rows.get(n, {}).get(c) for n in names}
        lines.append(f"| {c} | " + " | ".join(fmt(vals[n]) for n in names) + " | " +
                     " | ".join(ratio(vals[base], vals[n]) for n in others) + " |")
    return "\n".join(lines)


def append_markdown(a, title, table):
    if not a.markdown:
        return
    with open(a.markdown, "a") as f:
        f.write(f"\n### {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {title} "
                f"(`bench/bench.py --sections {a.sections} --seconds {a.seconds}`)\n\n"
                f"{os.cpu_count()} cores, {os.uname().release}; one worker per proxy; loopback.\n\n{table}\n")


def scaling_section(a):
    """ugated with 1 and with 2 workers (two processes side by side), parallel streams and connections."""
    for tool in ("iperf3", "wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} missing (scripts/install-deps.sh installs it)")
    work = tempfile.mkdtemp(prefix="ugate-bench-scaling-")
    P = Procs()
    ports = {k: free_port() for k in ("iperf", "http", "w1_iperf", "w1_http", "w2_iperf", "w2_http", "a1", "a2")}
    try:
        P.start(["iperf3", "-s", "-p", str(ports["iperf"])])
        # The origin gets two workers too, so it is not what stops the 2-worker proxy.
        start_origin(P, work, ports["http"], workers=2)
        procs = {}
        for w in (1, 2):
            cfg = os.path.join(work, f"ugated{w}.json")
            json.dump({"workers": w, "admin": {"address": f"127.0.0.1:{ports[f'a{w}']}"},
                       "log": {"level": "warn", "accessLog": ""},
                       "listeners": [
                           {"name": "iperf", "kind": "tcp", "address": f"127.0.0.1:{ports[f'w{w}_iperf']}",
                            "to": f"127.0.0.1:{ports['iperf']}"},
                           {"name": "http", "kind": "tcp", "address": f"127.0.0.1:{ports[f'w{w}_http']}",
                            "to": f"127.0.0.1:{ports['http']}"}]}, open(cfg, "w"))
            procs[w] = P.start([a.ugated, "--config", cfg])
        for k in ("iperf", "http", "w1_iperf", "w1_http", "w2_iperf", "w2_http"):
            if not wait_port(ports[k]):
                sys.exit(f"bench: port {k} did not come up")
        paths = [("direct", "iperf", "http", None), ("1 worker", "w1_iperf", "w1_http", procs[1]),
                 ("2 workers", "w2_iperf", "w2_http", procs[2])]
        samples = {n: {} for n, _, _, _ in paths}
        for rep in range(a.reps):
            for name, ip, hp_, proc in paths:
                r = {}
                c0 = cpu_seconds(proc.pid) if proc else 0
                res = iperf(ports[ip], a.seconds, 4)
                c1 = cpu_seconds(proc.pid) if proc else 0
                r["iperf 4 streams Gbit/s"] = res[0] if res else None
                if proc:
                    r["proxy CPU cores (4 streams)"] = (c1 - c0) / a.seconds if res else None
                r["wrk -t2 -c64 keep-alive req/s"] = wrk(ports[hp_], a.seconds, conns=64, threads=2)[0]
                r["wrk -t2 -c32 close conn/s"] = wrk(ports[hp_], a.seconds, close=True, conns=32, threads=2)[0]
                for k, v in r.items():
                    samples[name].setdefault(k, []).append(v)
                print(f"scaling rep {rep + 1}/{a.reps} {name:9s} " + "  ".join(f"{k}={fmt(v)}" for k, v in r.items()),
                      flush=True)
        rows = {n: {k: median(v) for k, v in m.items()} for n, m in samples.items()}
        table = ratio_table(rows, ["2 workers", "1 worker", "direct"],
                            ["iperf 4 streams Gbit/s", "proxy CPU cores (4 streams)", "wrk -t2 -c64 keep-alive req/s",
                             "wrk -t2 -c32 close conn/s"], "2 workers")
        print(table)
        append_markdown(a, "Scaling from 1 to 2 workers", table)
    finally:
        P.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def iperf_udp(port, seconds, size):
    """iperf3 -u flat out (-b 0) with `size`-byte datagrams: what arrived, per second. 4 MiB socket
    buffers (-w) so that the end points' queues are not what drops datagrams."""
    args = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-u", "-b", "0", "-w", "4M", "-l", str(size),
            "-t", str(seconds), "-J"]
    for _ in range(3):
        r = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30)
        try:
            s = json.loads(r.stdout)["end"]["sum"]
            delivered = s["packets"] - s["lost_packets"]
            return {"dgrams": delivered / s["seconds"], "gbits": delivered * size * 8 / s["seconds"] / 1e9,
                    "loss": s["lost_percent"]}
        except (ValueError, KeyError, ZeroDivisionError):
            time.sleep(1)
    return None


def udp_section(a):
    """UDP forwarding: ugated `udp` listener vs socat vs direct, iperf3 -u through each."""
    for tool in ("iperf3", "socat"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} missing (scripts/install-deps.sh installs it)")
    work = tempfile.mkdtemp(prefix="ugate-bench-udp-")
    P = Procs()
    ports = {k: free_port() for k in ("iperf", "u", "s", "admin")}
    try:
        P.start(["iperf3", "-s", "-p", str(ports["iperf"])])
        # iperf3's control connection is TCP on the same port number as its UDP data: each path
        # forwards both (ugated: a `tcp` and a `udp` listener on one port; socat: two processes).
        ucfg = os.path.join(work, "ugated.json")
        to = f"127.0.0.1:{ports['iperf']}"
        json.dump({"workers": 1, "admin": {"address": f"127.0.0.1:{ports['admin']}"},
                   "log": {"level": "warn", "accessLog": ""},
                   "listeners": [
                       {"name": "ctl", "kind": "tcp", "address": f"127.0.0.1:{ports['u']}", "to": to},
                       {"name": "udp", "kind": "udp", "address": f"127.0.0.1:{ports['u']}", "to": to}]},
                  open(ucfg, "w"))
        ug = P.start([a.ugated, "--config", ucfg])
        P.start(["socat", f"TCP4-LISTEN:{ports['s']},bind=127.0.0.1,reuseaddr,fork", f"TCP4:{to}"])
        so = P.start(["socat", f"UDP4-LISTEN:{ports['s']},bind=127.0.0.1,reuseaddr,fork", f"UDP4:{to}"])
        for k in ("iperf", "u", "s"):
            if not wait_port(ports[k]):
                sys.exit(f"bench: port {k} did not come up")
        rows = {}
        for name, port, proc in (("direct", "iperf", None), ("ugated", "u", ug), ("socat", "s", so)):
            r = {}
            for size in (64, 1400):
                c0 = cpu_seconds(proc.pid) if proc else 0
                res = iperf_udp(ports[port], a.seconds, size)
                c1 = cpu_seconds(proc.pid) if proc else 0
                if not res:
                    continue
                r[f"{size} B datagrams/s"] = res["dgrams"]
                r[f"{size} B Gbit/s"] = res["gbits"]
                r[f"{size} B loss %"] = res["loss"]
                # socat forks a child per flow that exits with it: its CPU cannot be read from here.
                if proc is ug and res["dgrams"]:
                    r[f"{size} B CPU us/datagram"] = (c1 - c0) * 1e6 / (res["dgrams"] * a.seconds)
            rows[name] = r
            print(f"udp {name:8s} " + "  ".join(f"{k}={v:.2f}" for k, v in r.items()), flush=True)
        cols = [f"{s} B {m}" for s in (64, 1400) for m in ("datagrams/s", "Gbit/s", "loss %", "CPU us/datagram")]
        table = ratio_table(rows, ["ugated", "direct", "socat"], cols, "ugated")
        print(table)
        append_markdown(a, "UDP forwarding", table)
    finally:
        P.stop_all()
        shutil.rmtree(work, ignore_errors=True)


# A SOCKS5 client load: each connection does the no-auth greeting, CONNECT to the origin's IPv4
# address, one HTTP/1.0 request, reads to EOF, closes. asyncio, `conns` at a time, one process.
SOCKS_LOAD = r"""
import asyncio, socket, struct, sys, time
proxy, origin, conns, seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
greeting = b"\x05\x01\x00"
connect = b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", origin)
done = errors = 0
async def one():
    global done, errors
    try:
        r, w = await asyncio.open_connection("127.0.0.1", proxy)
        w.write(greeting)
        if (await r.readexactly(2)) != b"\x05\x00":
            raise ValueError("method")
        w.write(connect)
        rep = await r.readexactly(10)
        if rep[1] != 0:
            raise ValueError("rep %d" % rep[1])
        w.write(b"GET / HTTP/1.0\r\n\r\n")
        body = await r.read()
        w.close()
        if not body.startswith(b"HTTP/1."):
            raise ValueError("http")
        done += 1
    except (OSError, ValueError, asyncio.IncompleteReadError):
        errors += 1
async def worker(end):
    while time.monotonic() < end:
        await one()
async def main():
    end = time.monotonic() + seconds
    t0 = time.monotonic()
    await asyncio.gather(*(worker(end) for _ in range(conns)))
    print(done / (time.monotonic() - t0), errors)
asyncio.run(main())
"""


def socks_rate(port, origin, seconds, procs=2, conns=16):
    """Connections/s through a SOCKS5 proxy, from `procs` load processes."""
    ps = [subprocess.Popen([sys.executable, "-c", SOCKS_LOAD, str(port), str(origin), str(conns), str(seconds)],
                           stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    rate = errors = 0
    for p in ps:
        out, _ = p.communicate(timeout=seconds + 60)
        try:
            r, e = out.split()
            rate += float(r)
            errors += int(e)
        except ValueError:
            pass
    return rate, errors


def socks_section(a):
    """SOCKS5 CONNECT rate: ugated `socks5` vs danted (Dante) vs microsocks vs direct HTTP."""
    for tool in ("nginx", "danted", "microsocks"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} missing (scripts/install-deps.sh installs it)")
    work = tempfile.mkdtemp(prefix="ugate-bench-socks-")
    os.chmod(work, 0o755)
    P = Procs()
    ports = {k: free_port() for k in ("http", "u", "d", "m", "admin")}
    try:
        start_origin(P, work, ports["http"])
        ucfg = os.path.join(work, "ugated.json")
        json.dump({"workers": 1, "admin": {"address": f"127.0.0.1:{ports['admin']}"},
                   "log": {"level": "warn", "accessLog": ""},
                   "listeners": [{"name": "socks", "kind": "socks5", "address": f"127.0.0.1:{ports['u']}"}]},
                  open(ucfg, "w"))
        ug = P.start([a.ugated, "--config", ucfg])
        dconf = os.path.join(work, "danted.conf")
        open(dconf, "w").write(f"""
logoutput: {work}/danted.log
internal: 127.0.0.1 port = {ports['d']}
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
""")
        dt = P.start(["danted", "-f", dconf, "-p", f"{work}/danted.pid"])
        ms = P.start(["microsocks", "-i", "127.0.0.1", "-p", str(ports["m"])])
        for k in ("http", "u", "d", "m"):
            if not wait_port(ports[k]):
                sys.exit(f"bench: port {k} did not come up")
        rows = {}
        for name, port, proc in (("ugated", "u", ug), ("danted", "d", dt), ("microsocks", "m", ms)):
            c0 = cpu_seconds(proc.pid)
            rate, errors = socks_rate(ports[port], ports["http"], a.seconds)
            c1 = cpu_seconds(proc.pid)
            rows[name] = {"SOCKS5 conn/s": rate, "errors": errors,
                          "proxy CPU ms per 1000 conn": (c1 - c0) * 1e6 / (rate * a.seconds) if rate else None,
                          "RSS KiB after": rss_kib(proc.pid)}
            print(f"socks {name:10s} " + "  ".join(f"{k}={v}" for k, v in rows[name].items()), flush=True)
        table = ratio_table(rows, ["ugated", "danted", "microsocks"],
                            ["SOCKS5 conn/s", "errors", "proxy CPU ms per 1000 conn", "RSS KiB after"], "ugated")
        print(table)
        append_markdown(a, "SOCKS5 CONNECT rate", table)
    finally:
        P.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def mesh_section(a):
    """Mesh tunnels (mutual TLS 1.3 + HTTP/2 CONNECT): forward vs reverse-accept vs direct.

    forward: client -> ugated C (tcp listener, `to: gw.mesh:PORT`, via gw) -> gw's mesh port -> origin.
    reverse: client -> ugated GW (tcp listener, `to: a.mesh:PORT`) -> node A's association (A dialled
             GW with h2r) -> A -> origin. Both tunnels are one mTLS HTTP/2 hop; all on loopback."""
    for tool in ("iperf3", "wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} missing (scripts/install-deps.sh installs it)")
    work = tempfile.mkdtemp(prefix="ugate-bench-mesh-")
    P = Procs()
    ports = {k: free_port() for k in ("iperf", "http", "mesh", "fwd_iperf", "fwd_http", "rev_iperf", "rev_http",
                                       "a_gw", "a_c", "a_a")}
    try:
        subprocess.run([a.ugated, "ca", "init", "--dir", f"{work}/ca", "--trust-domain", "bench.mesh"],
                       check=True, capture_output=True)
        for n in ("gw", "a", "c"):
            subprocess.run([a.ugated, "ca", "issue", "--dir", f"{work}/ca", "--name", n, "--out", f"{work}/{n}",
                            "--trust-domain", "bench.mesh"], check=True, capture_output=True)
        P.start(["iperf3", "-s", "-p", str(ports["iperf"])])
        start_origin(P, work, ports["http"])
        base = lambda n, admin: {"workers": 1, "node": {"name": n, "trustDomain": "bench.mesh"},
                                 "tls": {"certDir": f"{work}/{n}"}, "admin": {"address": f"127.0.0.1:{admin}"},
                                 "log": {"level": "warn", "accessLog": ""}}
        gw = base("gw", ports["a_gw"])
        gw["listeners"] = [
            {"name": "mesh", "kind": "mesh", "address": f"127.0.0.1:{ports['mesh']}"},
            {"name": "rev_iperf", "kind": "tcp", "address": f"127.0.0.1:{ports['rev_iperf']}",
             "to": f"a.mesh:{ports['iperf']}"},
            {"name": "rev_http", "kind": "tcp", "address": f"127.0.0.1:{ports['rev_http']}",
             "to": f"a.mesh:{ports['http']}"}]
        # Each node exposes exactly the origin ports the paths use (mesh.expose is default deny).
        gw["mesh"] = {"expose": [{"port": [ports["iperf"], ports["http"]], "allow": "spiffe://bench.mesh/ns/default/sa/c"}]}
        node_a = base("a", ports["a_a"])
        node_a["upstreams"] = [{"name": "gw", "address": f"127.0.0.1:{ports['mesh']}"}]
        node_a["mesh"] = {"expose": [{"port": [ports["iperf"], ports["http"]], "allow": "spiffe://bench.mesh/ns/default/sa/gw"}]}
        node_c = base("c", ports["a_c"])
        node_c["listeners"] = [
            {"name": "fwd_iperf", "kind": "tcp", "address": f"127.0.0.1:{ports['fwd_iperf']}",
             "to": f"gw.mesh:{ports['iperf']}"},
            {"name": "fwd_http", "kind": "tcp", "address": f"127.0.0.1:{ports['fwd_http']}",
             "to": f"gw.mesh:{ports['http']}"}]
        node_c["routes"] = [{"match": {"listener": l}, "to": f"gw.mesh:{ports[t]}", "via": f"127.0.0.1:{ports['mesh']}"}
                            for l, t in (("fwd_iperf", "iperf"), ("fwd_http", "http"))]
        procs = {}
        for n, cfg in (("gw", gw), ("a", node_a), ("c", node_c)):
            path = os.path.join(work, f"{n}.json")
            json.dump(cfg, open(path, "w"))
            procs[n] = P.start([a.ugated, "--config", path])
        for k in ("iperf", "http", "mesh", "fwd_iperf", "rev_iperf"):
            if not wait_port(ports[k]):
                sys.exit(f"bench: port {k} did not come up")
        time.sleep(1.0)  # A's association
        rows = {}
        for name, ip, hp, who in (("direct", "iperf", "http", None), ("forward", "fwd_iperf", "fwd_http", ("c", "gw")),
                                  ("reverse", "rev_iperf", "rev_http", ("gw", "a"))):
            c0 = sum(cpu_seconds(procs[n].pid) for n in who) if who else 0
            r1 = iperf(ports[ip], a.seconds) or (None, 0)
            r4 = iperf(ports[ip], a.seconds, parallel=4) or (None, 0)
            c1 = sum(cpu_seconds(procs[n].pid) for n in who) if who else 0
            moved = r1[1] + r4[1]
            conn = wrk(ports[hp], a.seconds, close=True, conns=16)
            rows[name] = {"Gbit/s 1 stream": r1[0], "Gbit/s 4 streams": r4[0],
                          "tunnel CPU s/GB": ((c1 - c0) / (moved / 1e9)) if who and moved else None,
                          "streams/s (conn close)": conn[0]}
            print(f"mesh {name:8s} " + "  ".join(f"{k}={v}" for k, v in rows[name].items()), flush=True)
        table = ratio_table(rows, ["forward", "reverse", "direct"],
                            ["Gbit/s 1 stream", "Gbit/s 4 streams", "tunnel CPU s/GB", "streams/s (conn close)"],
                            "forward")
        print(table)
        append_markdown(a, "Mesh tunnels: forward vs reverse accept vs direct", table)
    finally:
        P.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def cluster_section(a):
    """The cluster path's per-connection cost against a plain host:port target, same ugated, same run.

    One ugated (one worker) with three tcp listeners to the same nginx origin: `plain` (to
    127.0.0.1:PORT), `cluster1` (to cluster:one, one endpoint) and `cluster3` (cluster:three, three
    endpoints — the origin's three ports — round robin, TCP health checks every second). For each,
    interleaved over --reps rounds: wrk with Connection: close (a new upstream connection per
    request: the picker, the endpoint's counters and the retry bookkeeping run every time) and
    keep-alive, and ugated's CPU per 1000 connections. Goal: the cluster paths within 5 % of plain."""
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} missing (scripts/install-deps.sh installs it)")
    work = tempfile.mkdtemp(prefix="ugate-bench-cluster-")
    P = Procs()
    ports = {k: free_port() for k in ("http", "http2", "http3", "plain", "cluster1", "cluster3", "admin")}
    try:
        extra = "".join(f'server {{ listen 127.0.0.1:{ports[k]}; location / {{ return 200 "hello from the origin\\n"; }} }}\n'
                        for k in ("http2", "http3"))
        start_origin(P, work, ports["http"], extra_servers=extra)
        origin = lambda k: f"127.0.0.1:{ports[k]}"
        cfg = {"workers": 1, "admin": {"address": f"127.0.0.1:{ports['admin']}"},
               "log": {"level": "warn", "accessLog": ""},
               "clusters": [{"name": "one", "endpoints": [origin("http")]},
                            {"name": "three", "endpoints": [origin(k) for k in ("http", "http2", "http3")],
                             "lb": "round_robin", "healthCheck": {"kind": "tcp", "interval": "1s"}}],
               "listeners": [{"name": "plain", "kind": "tcp", "address": origin("plain"), "to": origin("http")},
                             {"name": "cluster1", "kind": "tcp", "address": origin("cluster1"), "to": "cluster:one"},
                             {"name": "cluster3", "kind": "tcp", "address": origin("cluster3"), "to": "cluster:three"}]}
        path = os.path.join(work, "ugated.json")
        json.dump(cfg, open(path, "w"))
        proc = P.start([a.ugated, "--config", path])
        for k in ("http", "http2", "http3", "plain", "cluster1", "cluster3"):
            if not wait_port(ports[k]):
                sys.exit(f"bench: port {k} did not come up")
        time.sleep(1.5)  # the first health checks
        names = ["plain", "cluster1", "cluster3"]
        samples = {n: {"close conn/s": [], "CPU ms per 1000 conns": [], "keep-alive req/s": []} for n in names}
        for _ in range(a.reps):
            for n in names:
                c0 = cpu_seconds(proc.pid)
                before = admin_metric(ports["admin"], f'ugate_listener_connections_total{{listener="{n}"}}') or 0
                rps = wrk(ports[n], a.seconds, close=True, conns=16)[0]
                c1 = cpu_seconds(proc.pid)
                after = admin_metric(ports["admin"], f'ugate_listener_connections_total{{listener="{n}"}}') or 0
                samples[n]["close conn/s"].append(rps)
                conns = after - before
                samples[n]["CPU ms per 1000 conns"].append((c1 - c0) * 1e6 / conns if conns else None)
                samples[n]["keep-alive req/s"].append(wrk(ports[n], a.seconds)[0])
        rows = {n: {k: median(v) for k, v in samples[n].items()} for n in names}
        for n in names:
            print(f"cluster {n:9s} " + "  ".join(f"{k}={fmt(v)}" for k, v in rows[n].items()), flush=True)
        table = ratio_table(rows, names, ["close conn/s", "CPU ms per 1000 conns", "keep-alive req/s"], "plain")
        print(table)
        append_markdown(a, "Cluster path vs a plain host:port target", table)
    finally:
        P.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def admin_metric(port, name):
    """The value of metric `name` on ugated's /stats, or None when this build does not have it."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /stats HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        return None
    m = re.search(rb"^" + re.escape(name.encode()) + rb" (\d+)", data, re.M)
    return int(m.group(1)) if m else None


BIG_REQUEST = b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n"


def read_big(s):
    """Reads one answer to BIG_REQUEST (headers and a 128 KiB body); 1 if it all came, else 0."""
    got = b""
    while b"\r\n\r\n" not in got or len(got.split(b"\r\n\r\n", 1)[1]) < 128 * 1024:
        chunk = s.recv(262144)
        if not chunk:
            break
        got += chunk
    return int(len(got) > 128 * 1024)


def meshidle_section(a):
    """Memory per idle cross-worker mesh stream (reverse accept through a gateway with 2 workers).

    client -> gw (`workers`: 2; tcp listener `to: a.mesh:HTTP`) -> node A's association (held by one
    of gw's workers) -> A -> nginx origin. SO_REUSEPORT spreads the client connections over gw's two
    workers, so about half of the streams start on the worker that does not hold the association and
    are joined to it through a StreamBridge. N streams are opened and held ("opened"); then each
    carries one small request and its answer ("1 small request"); then, one stream at a time, each
    fetches 128 KiB ("128 KiB each, in turn": every ring page touched, as on a long-lived stream
    that has had a burst); then all fetch 128 KiB at once (every ring full at the same time). All
    stay open and idle between phases. Reported: gw's RSS delta / N after
    each phase; gw with 1 worker (no bridge at all) is the control. Then iperf3 with 4 streams
    through the same path (about half of them bridged with 2 workers)."""
    for tool in ("iperf3", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} missing (scripts/install-deps.sh installs it)")
    work = tempfile.mkdtemp(prefix="ugate-bench-meshidle-")
    P = Procs()
    n = a.idle
    try:
        subprocess.run([a.ugated, "ca", "init", "--dir", f"{work}/ca", "--trust-domain", "bench.mesh"],
                       check=True, capture_output=True)
        for name in ("gw", "a"):
            subprocess.run([a.ugated, "ca", "issue", "--dir", f"{work}/ca", "--name", name, "--out",
                            f"{work}/{name}", "--trust-domain", "bench.mesh"], check=True, capture_output=True)
        http, iperf_port = free_port(), free_port()
        P.start(["iperf3", "-s", "-p", str(iperf_port)])
        open(f"{work}/big", "wb").write(b"x" * (128 * 1024))
        os.chmod(work, 0o755)  # nginx's workers run as nobody
        os.chmod(f"{work}/big", 0o644)
        conf = os.path.join(work, "origin.conf")
        open(conf, "w").write(f"""
daemon off; worker_processes 1; pid {work}/origin.pid; error_log {work}/origin.err;
events {{ worker_connections 16384; }}
http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 600s;
  server {{ listen 127.0.0.1:{http};
    location = /big {{ alias {work}/big; }}
    location / {{ return 200 "hello from the origin\\n"; }} }} }}
""")
        P.start(["nginx", "-c", conf, "-e", f"{work}/origin.err"])
        if not wait_port(http):
            sys.exit("bench: the origin did not come up")
        rows = {}
        for label, workers in (("gw 2 workers", 2), ("gw 1 worker", 1)):
            ports = {k: free_port() for k in ("mesh", "rev", "rev_iperf", "a_gw", "a_a")}
            base = lambda nm, admin, w: {"workers": w, "node": {"name": nm, "trustDomain": "bench.mesh"},
                                         "tls": {"certDir": f"{work}/{nm}"},
                                         "admin": {"address": f"127.0.0.1:{admin}"},
                                         "log": {"level": "warn", "accessLog": ""}}
            gw = base("gw", ports["a_gw"], workers)
            gw["listeners"] = [{"name": "mesh", "kind": "mesh", "address": f"127.0.0.1:{ports['mesh']}"},
                               {"name": "rev", "kind": "tcp", "address": f"127.0.0.1:{ports['rev']}",
                                "to": f"a.mesh:{http}"},
                               {"name": "rev_iperf", "kind": "tcp", "address": f"127.0.0.1:{ports['rev_iperf']}",
                                "to": f"a.mesh:{iperf_port}"}]
            node_a = base("a", ports["a_a"], 1)
            node_a["upstreams"] = [{"name": "gw", "address": f"127.0.0.1:{ports['mesh']}"}]
            node_a["mesh"] = {"maxStreamsPerConnection": min(100000, n + 100),
                              "expose": [{"port": [http, iperf_port], "allow": "spiffe://bench.mesh/ns/default/sa/gw"}]}
            procs = {}
            for nm, cfg in (("gw", gw), ("a", node_a)):
                path = os.path.join(work, f"{nm}{workers}.json")
                json.dump(cfg, open(path, "w"))
                procs[nm] = P.start([a.ugated, "--config", path])
            if not wait_port(ports["rev"]) or not wait_port(ports["a_gw"]):
                sys.exit("bench: gw did not come up")
            # A's association, then one warm-up stream so the first measured stream pays no one-off cost.
            end = time.time() + 10
            while time.time() < end and admin_metric(ports["a_gw"], "ugate_mesh_nodes") != 1:
                time.sleep(0.1)
            with socket.create_connection(("127.0.0.1", ports["rev"])) as w:
                request_each([w])
            time.sleep(1.0)
            pid = procs["gw"].pid
            rss0 = rss_kib(pid)
            socks = []
            try:
                for _ in range(n):
                    socks.append(socket.create_connection(("127.0.0.1", ports["rev"])))
                time.sleep(2.0)  # every stream opened (CONNECT answered) and idle
                rss1 = rss_kib(pid)
                bridges = admin_metric(ports["a_gw"], "ugate_mesh_bridges")
                answered = request_each(socks)
                time.sleep(2.0)  # idle again (the bridge releases a drained direction's ring when idle)
                rss2 = rss_kib(pid)
                ring2 = admin_metric(ports["a_gw"], "ugate_mesh_bridge_buffer_bytes")
                big = 0
                for s in socks:  # one at a time
                    s.sendall(BIG_REQUEST)
                    big += read_big(s)
                time.sleep(2.0)
                rss3 = rss_kib(pid)
                ring3 = admin_metric(ports["a_gw"], "ugate_mesh_bridge_buffer_bytes")
                for s in socks:  # all at once: every ring fills while the client reads the others
                    s.sendall(BIG_REQUEST)
                big_all = sum(read_big(s) for s in socks)
                time.sleep(2.0)
                rss4 = rss_kib(pid)
                ring4 = admin_metric(ports["a_gw"], "ugate_mesh_bridge_buffer_bytes")
            finally:
                for s in socks:
                    s.close()
            res = iperf(ports["rev_iperf"], a.seconds, parallel=4)
            per = lambda rss: (rss - rss0) * 1024 / n
            rows[label] = {"iperf3 Gbit/s, 4 streams": res[0] if res else None, "streams": n,
                           "answered (small / 128 KiB in turn / all at once)": f"{answered} / {big} / {big_all}",
                           "bridged (gauge)": bridges,
                           "bytes per stream, opened": per(rss1),
                           "bytes per stream, 1 small request": per(rss2),
                           "bytes per stream, 128 KiB each, in turn": per(rss3),
                           "bytes per stream, 128 KiB each, all at once": per(rss4),
                           "ring bytes held after each phase (gauge)": f"{ring2} / {ring3} / {ring4}"}
            print(f"meshidle {label:12s} " + "  ".join(f"{k}={fmt(v)}" for k, v in rows[label].items()), flush=True)
            P.procs = [p for p in P.procs if p not in procs.values()]
            for p in procs.values():
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=10)
        table = ratio_table(rows, ["gw 2 workers", "gw 1 worker"],
                            list(rows["gw 2 workers"].keys()), "gw 2 workers")
        print(table)
        append_markdown(a, "Memory per idle cross-worker mesh stream", table)
    finally:
        P.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ugated", default=os.path.join(ROOT, "build", "ugated"))
    ap.add_argument("--ref", default=os.path.join(ROOT, "build", "bench", "ref_forwarder"),
                    help="the floor forwarder (bench/ref_forwarder.cc)")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions of the tcp section (medians)")
    # Each idle proxied connection holds two descriptors in the proxy; under a fd limit of 20 000 per
    # process, 9000 is as close to a round 10 000 as every proxy can get.
    ap.add_argument("--idle", type=int, default=9000, help="idle connections for the memory test")
    ap.add_argument("--quick", action="store_true", help="1-second runs, 500 idle connections")
    ap.add_argument("--sections", default="tcp,scaling,udp,socks,mesh",
                    help="comma-separated: tcp, scaling, udp, socks, mesh, meshidle and cluster (not in the default)")
    ap.add_argument("--markdown", help="append the results tables to this file")
    a = ap.parse_args()
    if a.quick:
        a.seconds, a.idle, a.reps = 1, 500, 1
    sections = {"tcp": tcp_section, "scaling": scaling_section, "udp": udp_section, "socks": socks_section,
                "mesh": mesh_section, "meshidle": meshidle_section, "cluster": cluster_section}
    for name in a.sections.split(","):
        if name not in sections:
            sys.exit(f"bench: unknown section {name!r} (tcp, scaling, udp, socks, mesh, meshidle, cluster)")
        sections[name](a)


if __name__ == "__main__":
    main()

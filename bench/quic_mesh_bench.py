#!/usr/bin/env python3
"""The mesh over QUIC vs the mesh over HTTP/2, same path, same run (issue 17 §4).

Three ugated processes on loopback, one worker each:
  gw: a `mesh` listener (HTTP/2 over mutual TLS, TCP) and a `quic` listener (ALPN ugate), exposing an
      iperf3 server and an nginx origin to the two clients;
  cq: tcp listeners `to: gw.mesh:PORT` through upstream gw with "transport": "quic";
  ch: the same through upstream gw with "transport": "h2".
For each transport, interleaved over --rounds: iperf3 through the tunnel, 1 stream and 4 streams
(Gbit/s per stream: the 1-stream figure), wrk with `Connection: close` (a new mesh stream per
request: streams/s), and the CPU of both tunnel ends (client node + gw) per GB moved by iperf3.
Not a test: nothing is asserted. Prints a table; --markdown FILE appends it.

Usage: bench/quic_mesh_bench.py [--ugated build/ugated] [--seconds 5] [--rounds 2] [--markdown FILE]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Procs, free_port, iperf, start_origin, wait_port, wrk  # noqa: E402
from quic_bench import cpu_ns, free_udp_port  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ugated", default="build/ugated")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--markdown")
    a = ap.parse_args()
    for tool in ("iperf3", "wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} missing (scripts/install-deps.sh installs it)")
    work = tempfile.mkdtemp(prefix="ugate-bench-qmesh-")
    P = Procs()
    ports = {k: free_port() for k in ("iperf", "http", "mesh", "a_gw", "a_cq", "a_ch", "q_iperf", "q_http",
                                       "h_iperf", "h_http")}
    ports["quic"] = free_udp_port()
    try:
        subprocess.run([a.ugated, "ca", "init", "--dir", f"{work}/ca", "--trust-domain", "bench.mesh"],
                       check=True, capture_output=True)
        ids = {}
        for n in ("gw", "cq", "ch"):
            r = subprocess.run([a.ugated, "ca", "issue", "--dir", f"{work}/ca", "--name", n, "--out", f"{work}/{n}",
                                "--trust-domain", "bench.mesh"], check=True, capture_output=True, text=True)
            ids[n] = r.stdout.splitlines()[0].strip()
        P.start(["iperf3", "-s", "-p", str(ports["iperf"])])
        start_origin(P, work, ports["http"])
        base = lambda n, admin: {"workers": 1, "node": {"name": n, "trustDomain": "bench.mesh"},
                                 "tls": {"certDir": f"{work}/{n}"}, "admin": {"address": f"127.0.0.1:{admin}"},
                                 "log": {"level": "warn", "accessLog": ""}}
        gw = base("gw", ports["a_gw"])
        gw["listeners"] = [
            {"name": "mesh", "kind": "mesh", "address": f"127.0.0.1:{ports['mesh']}"},
            {"name": "qmesh", "kind": "quic", "address": f"127.0.0.1:{ports['quic']}",
             "tls": {"alpn": ["ugate"]}, "quic": {"retry": "never", "maxStreams": 1000}}]
        gw["mesh"] = {"expose": [{"port": [ports["iperf"], ports["http"]], "allow": [ids["cq"], ids["ch"]]}]}
        nodes = {"gw": gw}
        for n, transport, addr, pre in (("cq", "quic", ports["quic"], "q"), ("ch", "h2", ports["mesh"], "h")):
            c = base(n, ports["a_" + n])
            c["upstreams"] = [{"name": "gw", "address": f"127.0.0.1:{addr}", "id": ids["gw"], "transport": transport}]
            c["listeners"] = [{"name": f"{pre}_{t}", "kind": "tcp", "address": f"127.0.0.1:{ports[pre + '_' + t]}",
                               "to": f"gw.mesh:{ports[t]}"} for t in ("iperf", "http")]
            nodes[n] = c
        procs = {}
        for n, cfg in nodes.items():
            path = os.path.join(work, f"{n}.json")
            json.dump(cfg, open(path, "w"))
            procs[n] = P.start([a.ugated, "--config", path])
        for k in ("iperf", "http", "mesh", "q_iperf", "h_iperf", "q_http", "h_http"):
            if not wait_port(ports[k]):
                sys.exit(f"bench: port {k} did not come up")
        time.sleep(1.0)
        samples = {}

        def put(t, k, v):
            samples.setdefault(t, {}).setdefault(k, []).append(v)

        for _ in range(a.rounds):
            for t, pre, node in (("HTTP/2 mesh", "h", "ch"), ("QUIC mesh", "q", "cq")):
                who = (node, "gw")
                c0 = sum(cpu_ns(procs[n].pid) for n in who)
                r1 = iperf(ports[pre + "_iperf"], a.seconds) or (float("nan"), 0)
                r4 = iperf(ports[pre + "_iperf"], a.seconds, parallel=4) or (float("nan"), 0)
                c1 = sum(cpu_ns(procs[n].pid) for n in who)
                moved = r1[1] + r4[1]
                put(t, "Gbit/s, 1 stream", r1[0])
                put(t, "Gbit/s, 4 streams", r4[0])
                put(t, "CPU s/GB (both tunnel ends)", (c1 - c0) / (moved / 1e9) if moved else float("nan"))
                put(t, "streams/s (wrk, Connection: close, 16 conns)",
                    wrk(ports[pre + "_http"], a.seconds, close=True, conns=16)[0])
        cols = ["HTTP/2 mesh", "QUIC mesh"]
        keys = list(samples[cols[0]].keys())
        med = lambda v: statistics.median(v) if v else float("nan")
        f = lambda v: "–" if v != v else f"{v:.3g}"
        lines = [f"Mesh over QUIC vs HTTP/2, same path and run ({a.rounds} rounds × {a.seconds} s, medians)", "",
                 "| measure | HTTP/2 mesh | QUIC mesh | QUIC / HTTP/2 |", "|---|---|---|---|"]
        for k in keys:
            h, q = med(samples[cols[0]][k]), med(samples[cols[1]][k])
            lines.append(f"| {k} | {f(h)} | {f(q)} | {f(q / h) if h else '–'} |")
        text = "\n".join(lines)
        print(text)
        if a.markdown:
            with open(a.markdown, "a") as fh:
                fh.write("\n" + text + "\n")
    finally:
        P.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

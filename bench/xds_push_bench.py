#!/usr/bin/env python3
"""The ADS server pushing a change to N connected clients (issue 19 §5).

Runs ugated with `xds.server` on loopback and a route `svc.bench` -> a static cluster of E endpoints,
connects N delta-ADS clients (bench/xds_push_clients.js: @grpc/grpc-js, one HTTP/2 connection each),
measures ugated's RSS before and after they subscribed (memory per connected client), then rewrites
the cluster's endpoints, sends SIGHUP and measures from the signal to each client's arrival of the
changed ClusterLoadAssignment (p50, p99, max). Loopback only; ends what it started by PID.

    python3 bench/xds_push_bench.py --ugated build/ugated --npm build/npm --clients 100 --endpoints 100
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def write_config(path, ads_port, admin_port, endpoints, base):
    eps = [f"10.{(base + i) >> 16 & 255}.{(base + i) >> 8 & 255}.{(base + i) & 255}:8080" for i in range(endpoints)]
    cfg = {
        "workers": 1,
        "admin": {"address": f"127.0.0.1:{admin_port}"},
        "xds": {"server": {"address": f"127.0.0.1:{ads_port}"}},
        "listeners": [{"name": "l", "kind": "tcp", "address": "127.0.0.1:0", "to": "reject"}],
        "clusters": [{"name": "svc", "endpoints": eps}],
        "routes": [{"match": {"host": "svc.bench"}, "to": "cluster:svc"}],
    }
    with open(path + ".tmp", "w") as f:
        json.dump(cfg, f)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ugated", required=True)
    ap.add_argument("--npm", required=True, help="the build tree's npm dir (node_modules with @grpc/grpc-js)")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--endpoints", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ugate-xds-bench.")
    cfgp = os.path.join(tmp, "c.json")
    ads, admin = free_port(), free_port()
    write_config(cfgp, ads, admin, a.endpoints, 1)
    log = open(os.path.join(tmp, "log"), "w")
    ug = subprocess.Popen([a.ugated, "-c", cfgp], stdout=log, stderr=log)
    clients = None
    try:
        for _ in range(100):
            if "ADS server listening" in open(os.path.join(tmp, "log")).read():
                break
            time.sleep(0.1)
        time.sleep(0.2)
        before = rss_kib(ug.pid)
        env = dict(os.environ, NODE_PATH=os.path.join(os.path.abspath(a.npm), "node_modules"))
        clients = subprocess.Popen(["node", os.path.join(ROOT, "bench", "xds_push_clients.js"), str(ads), "svc.bench",
                                    str(a.clients), os.path.join(ROOT, "src", "xds", "proto")],
                                   stdout=subprocess.PIPE, text=True, env=env)
        line = clients.stdout.readline().strip()
        if line != "ready":
            sys.exit(f"clients: {line}")
        time.sleep(0.5)
        after = rss_kib(ug.pid)
        results = []
        for rep in range(a.reps):
            if rep:
                # A fresh set of clients for each change: the script exits after one.
                clients = subprocess.Popen(["node", os.path.join(ROOT, "bench", "xds_push_clients.js"), str(ads),
                                            "svc.bench", str(a.clients), os.path.join(ROOT, "src", "xds", "proto")],
                                           stdout=subprocess.PIPE, text=True, env=env)
                if clients.stdout.readline().strip() != "ready":
                    sys.exit("clients did not get ready")
                time.sleep(0.3)
            write_config(cfgp, ads, admin, a.endpoints, 1 + (rep + 1) * a.endpoints)
            t0 = time.time() * 1000
            os.kill(ug.pid, signal.SIGHUP)
            out = clients.stdout.readline()
            clients.wait(30)
            arr = sorted(x - t0 for x in json.loads(out)["arrivals"])
            results.append({"p50_ms": round(arr[len(arr) // 2], 1), "p99_ms": round(arr[int(len(arr) * 0.99) - 1], 1),
                            "max_ms": round(arr[-1], 1)})
        print(json.dumps({"clients": a.clients, "endpoints": a.endpoints, "rss_before_kib": before,
                          "rss_after_kib": after, "kib_per_client": round((after - before) / a.clients, 1),
                          "pushes": results}))
    finally:
        if clients and clients.poll() is None:
            clients.kill()
        ug.terminate()
        ug.wait(10)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Upgrade time for N established connections (docs/OPERATIONS.md "Upgrades").

Runs ugated (one `tcp` listener to an echo origin, the given workers) from a copy of the binary,
opens N connections through it that each echo one message and then stay open, times
`ugated upgrade` (the command's round trip: start of the new binary, listeners, every connection,
the admin port) and reads the new process's own log for when it had taken the listeners and when
it had taken every connection. Then every connection echoes again through the new process: the
result counts those that did (all of them, or the run says so). Loopback only; every process it
starts is ended by its PID. Prints one JSON line per N and a table.

    python3 bench/upgrade_bench.py --ugated build/ugated --connections 1000 9000 --workers 2

The fd limit bounds N: ugated holds two descriptors per proxied connection, so a 20 000 limit
allows about 9 900 (the connection cap ugated derives from the limit says exactly how many).
"""
import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration", "upgrade_driver.py")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def log_time(line):
    return datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


async def hold(port, n):
    conns = []
    for i in range(n):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"x" * 32)
        await w.drain()
        await r.readexactly(32)
        conns.append((r, w))
        if i % 200 == 199:
            await asyncio.sleep(0.01)
    return conns


async def echo_all(conns):
    ok = 0
    for r, w in conns:
        try:
            w.write(b"y" * 32)
            await w.drain()
            if await asyncio.wait_for(r.readexactly(32), 10) == b"y" * 32:
                ok += 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
    for _, w in conns:
        w.close()
    return ok


def run_one(ugated, n, workers):
    tmp = tempfile.mkdtemp(prefix="ugate-upgrade-bench.")
    procs = []
    try:
        binary = os.path.join(tmp, "ugated")
        shutil.copy(ugated, binary)
        origin_port, fwd_port, admin_port = free_port(), free_port(), free_port()
        cfg = {
            "workers": workers,
            "admin": {"address": f"127.0.0.1:{admin_port}"},
            "listeners": [{"name": "fwd", "kind": "tcp", "address": f"127.0.0.1:{fwd_port}",
                           "to": f"127.0.0.1:{origin_port}"}],
        }
        with open(os.path.join(tmp, "c.json"), "w") as f:
            json.dump(cfg, f)
        logf = open(os.path.join(tmp, "log"), "w")
        procs.append(subprocess.Popen([sys.executable, DRIVER, "origin", str(origin_port)]))
        procs.append(subprocess.Popen([binary, "-c", os.path.join(tmp, "c.json")], stdout=logf, stderr=logf))
        for _ in range(100):
            if "ready:" in open(os.path.join(tmp, "log")).read():
                break
            time.sleep(0.1)
        time.sleep(0.3)  # the origin's listen socket
        loop = asyncio.new_event_loop()
        conns = loop.run_until_complete(hold(fwd_port, n))
        # A different file at the binary's path, installed as package managers do.
        shutil.copy(ugated, binary + ".new")
        with open(binary + ".new", "ab") as f:
            f.write(b"next\n")
        os.chmod(binary + ".new", 0o755)
        os.replace(binary + ".new", binary)
        t0 = time.time()
        out = subprocess.run([binary, "upgrade", "--admin", f"127.0.0.1:{admin_port}"], capture_output=True, text=True)
        wall = time.time() - t0
        ok = loop.run_until_complete(echo_all(conns))
        loop.close()
        log = open(os.path.join(tmp, "log")).read()
        started = re.search(r"^(\S+) info upgrade: started .* as pid (\d+)", log, re.M)
        listeners = re.search(r"^(\S+) info upgrade: took \d+ listening sockets", log, re.M)
        taken = re.search(r"^(\S+) info upgrade: took over (\d+) connections", log, re.M)
        m = re.search(r"pid (\d+)", out.stdout)
        if m:
            procs.append(int(m.group(1)))
        res = {
            "connections": n, "workers": workers, "upgrade_exit": out.returncode,
            "upgrade_wall_ms": round(wall * 1000, 1),
            "to_listeners_ms": round((log_time(listeners.group(1)) - log_time(started.group(1))) * 1000, 1)
            if started and listeners else None,
            "to_all_connections_ms": round((log_time(taken.group(1)) - log_time(started.group(1))) * 1000, 1)
            if started and taken else None,
            "adopted": int(taken.group(2)) if taken else 0,
            "echo_after": ok,
        }
        return res
    finally:
        for p in procs:
            if isinstance(p, int):
                try:
                    if os.readlink(f"/proc/{p}/exe").startswith(tmp):
                        os.kill(p, 15)
                except OSError:
                    pass
            else:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        time.sleep(0.5)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ugated", required=True)
    ap.add_argument("--connections", type=int, nargs="+", default=[1000, 9000])
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    rows = []
    for n in a.connections:
        r = run_one(os.path.abspath(a.ugated), n, a.workers)
        print(json.dumps(r), flush=True)
        rows.append(r)
    print("\n| connections | workers | `ugated upgrade` round trip | new process: listeners | new process: all connections | echo after |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['connections']} | {r['workers']} | {r['upgrade_wall_ms']} ms | {r['to_listeners_ms']} ms | "
              f"{r['to_all_connections_ms']} ms ({r['adopted']}) | {r['echo_after']}/{r['connections']} |")


if __name__ == "__main__":
    main()

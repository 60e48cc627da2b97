#!/usr/bin/env python3
"""free_ports.py [--udp] N: N distinct loopback ports that no other test of this machine holds.

Every test picks its ports while others run in parallel, so a port that is merely free now can be
taken before the test's own daemon binds it: by another test that probed the same number, or by an
outgoing connection's local port (bind(0) hands out the same ephemeral range connect() uses). Ports
therefore come from below the kernel's ephemeral range and each is claimed across processes with an
O_EXCL file in a shared directory (the same scheme as tests/test_common/test_util.cc); a claim is
aged out after CLAIM_SECONDS, long enough to cover a test's probe-to-bind window.

TCP ports are free on 127.0.0.1 and, when the host has IPv6 loopback, on ::1; UDP ports on 127.0.0.1.
"""
import errno
import os
import random
import socket
import sys
import tempfile
import time

CLAIM_SECONDS = 600
FIRST = 10000


def claim_dir():
    d = os.path.join(tempfile.gettempdir(), "ugate-test-ports")
    os.makedirs(d, mode=0o1777, exist_ok=True)
    return d


def claim(port):
    path = os.path.join(claim_dir(), str(port))
    for _ in range(2):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return True
        except FileExistsError:
            try:
                if time.time() - os.stat(path).st_mtime < CLAIM_SECONDS:
                    return False
                os.unlink(path)  # stale: whoever claimed it has long bound it or gone
            except FileNotFoundError:
                pass
    return False


def below_ephemeral():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def have_v6():
    try:
        with open("/proc/net/if_inet6") as f:
            return any(line.split()[-1] == "lo" for line in f)
    except OSError:
        return False


def bindable(port, udp, v6):
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    held = []
    try:
        for fam, host in [(socket.AF_INET, "127.0.0.1")] + ([(socket.AF_INET6, "::1")] if v6 else []):
            s = socket.socket(fam, kind)
            held.append(s)
            s.bind((host, port))
        return True
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        raise
    finally:
        for s in held:
            s.close()


def free_ports(n, udp=False):
    v6 = not udp and have_v6()
    lo = below_ephemeral()
    out = []
    rng = random.Random(os.getpid() ^ time.time_ns())
    tries = 0
    while len(out) < n:
        tries += 1
        if lo - FIRST > 1000 and tries < 10000:
            port = rng.randrange(FIRST, lo)
        else:  # no room below the ephemeral range: let the kernel choose
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
        if port in out or not bindable(port, udp, v6) or not claim(port):
            continue
        out.append(port)
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    udp = "--udp" in args
    args = [a for a in args if a != "--udp"]
    print(" ".join(map(str, free_ports(int(args[0]) if args else 1, udp))))

#!/usr/bin/env python3
"""vpoold's API under load, and how soon an event reaches a client.

1. wrk against GET /v1/pools over loopback HTTP with a bearer token:
   requests per second and latency percentiles; beside it the same list
   read by `vpool --json pool list` run back to back (a process per read,
   what a script without the daemon does).
2. The delay from a journal commit to its Server-Sent Event at a client:
   a client holds /v1/events open on vpoold's unix socket; the benchmark
   commits journal rows into the catalog (as a migration's step does) one
   at a time and times each until its event arrives.

Prints one JSON document with the figures.
"""
import argparse
import json
import os
import random
import re
import socket
import sqlite3
import subprocess
import time


def wrk(url, token, connections, seconds, threads):
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", "%ds" % seconds, "--latency",
         "-H", "Authorization: Bearer " + token, url],
        check=True, capture_output=True, text=True).stdout
    def unit(v, u):
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[u]
    lat = {m.group(1): unit(m.group(2), m.group(3))
           for m in re.finditer(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"requests_per_s": rps, "p50_ms": lat.get("50"), "p90_ms": lat.get("90"), "p99_ms": lat.get("99"),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(0) if errors else None,
            "connections": connections, "seconds": seconds, "threads": threads}


def cli_rate(vpool, seconds):
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        subprocess.run([vpool, "--json", "pool", "list"], check=True, stdout=subprocess.DEVNULL)
        n += 1
    return n / (time.monotonic() - t0)


class Stream:
    """A Server-Sent Events client on a unix socket, as root (no token)."""

    def __init__(self, path, since):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.s.sendall(("GET /v1/events?since=%d HTTP/1.1\r\nHost: vpoold\r\nAccept: text/event-stream\r\n\r\n"
                        % since).encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n")[0]:
            raise SystemExit("events: %r" % head[:200])
        self.chunked = b"chunked" in head.lower()

    def _until(self, mark):
        while mark not in self.buf:
            data = self.s.recv(65536)
            if not data:
                raise SystemExit("events: the stream ended")
            self.buf += data
        i = self.buf.index(mark) + len(mark)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def events(self):
        """Yield each event's data (a dict) as it arrives."""
        text = b""
        while True:
            if self.chunked:
                size = int(self._until(b"\r\n").strip(), 16)
                while len(self.buf) < size + 2:
                    data = self.s.recv(65536)
                    if not data:
                        raise SystemExit("events: the stream ended")
                    self.buf += data
                text += self.buf[:size]
                self.buf = self.buf[size + 2:]
            else:
                text += self._until(b"\n\n")
            while b"\n\n" in text:
                rec, text = text.split(b"\n\n", 1)
                for line in rec.split(b"\n"):
                    if line.startswith(b"data: "):
                        yield json.loads(line[6:])


def event_delays(catalog, sock, samples):
    db = sqlite3.connect(catalog, isolation_level=None, timeout=30)
    last = db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    stream = Stream(sock, last)
    it = stream.events()
    delays = []
    for i in range(samples):
        time.sleep(random.uniform(0.01, 0.04))
        tag = "bench-%d" % i
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO journal(vm_name, migration_id, step, generation, detail, at) "
                   "VALUES('bench-vm', 0, 'locked', 1, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))", (tag,))
        db.execute("COMMIT")
        t0 = time.monotonic()
        for ev in it:
            if ev.get("detail") == tag:
                delays.append((time.monotonic() - t0) * 1000.0)
                break
    delays.sort()
    def pct(p):
        return delays[min(len(delays) - 1, int(round(p / 100.0 * (len(delays) - 1))))]
    return {"samples": len(delays), "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": delays[-1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--vpool", required=True)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--samples", type=int, default=300)
    a = ap.parse_args()
    result = {"wrk": wrk(a.url, a.token, a.connections, a.seconds, 2),
              "cli_reads_per_s": cli_rate(a.vpool, a.seconds),
              "events": event_delays(a.catalog, a.socket, a.samples)}
    result["ratio"] = result["wrk"]["requests_per_s"] / result["cli_reads_per_s"]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

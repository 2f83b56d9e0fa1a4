"""Downtime of a live move: vpool's primitive against `virsh migrate --live`.

Called by bench/run.sh --only live, with the catalog in VPOOL_CATALOG, an
image 'tick' whose guests stay up and print a console line every 10 ms
(vpool.stay=1 vpool.tick=1) and a profile pc-ide.

One running guest moves between the two hosts, rounds alternating (vpool,
virsh, virsh, vpool, ...: each contender moves it as often each way):

  vpool  tests/tools/vp-live-move: the delta's overlay hard-linked to the
         next generation's name, the domain moved peer to peer with its
         disks renamed in the destination and persistent XML, the old name
         removed (what `env host drain` does per VM)
  virsh  `virsh migrate --live --p2p --persistent --undefinesource --unsafe`:
         the same move with the same flags, nothing renamed

Downtime, two ways: the guest's own (the longest silence between two of
its console lines while the move ran, less the usual interval between two
lines: the guest's clock stands still while it is paused, so the lines'
arrival on the host tells, not their content) and libvirt's (the completed
job's VIR_DOMAIN_JOB_DOWNTIME on the destination). Also the wall time of
the whole command. Prints one JSON document.
"""
import argparse
import json
import os
import statistics
import subprocess
import threading
import time

import libvirt

# Lookups on the host a domain is not on fail by design; no noise on stderr.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

NAME = "live-001"


class Ticks(threading.Thread):
    """Arrival times of the guest's tick lines in its console log."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.times, self.stop = path, [], False

    def run(self):
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            rest = b""
            while not self.stop:
                data = f.read()
                if not data:
                    time.sleep(0.001)
                    continue
                now = time.monotonic()
                lines = (rest + data).split(b"\n")
                rest = lines.pop()
                self.times.extend(now for l in lines if l.startswith(b"tick "))

    def gap(self, start, end):
        """The longest silence around [START, END], and the usual interval."""
        t = [x for x in self.times if start - 1 <= x <= end + 2]
        gaps = [b - a for a, b in zip(t, t[1:])]
        if len(gaps) < 10:
            raise SystemExit("bench: the guest printed %d lines around the move; is it up?" % len(t))
        return max(gaps), statistics.median(gaps)


def where(conns):
    for h, c in conns.items():
        try:
            if c.lookupByName(NAME).isActive() == 1:
                return h
        except libvirt.libvirtError:
            pass
    raise SystemExit("bench: %s runs on no host" % NAME)


def job_downtime(conn):
    st = conn.lookupByName(NAME).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    return st.get("downtime", -1) / 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--vpool", required=True)
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    uris = {"a": a.a, "b": a.b}
    conns = {h: libvirt.open(u) for h, u in uris.items()}
    subprocess.run([a.vpool, "pool", "create", "live", "--image", "tick", "--env", "a", "--profile", "pc-ide",
                    "--size", "1", "--start", "--quiet"], check=True, stdout=subprocess.DEVNULL)
    vm = json.loads(subprocess.run([a.vpool, "--json", "vm", "show", NAME], check=True,
                                   stdout=subprocess.PIPE).stdout)
    delta, log = vm["delta_path"], vm["console_log"]
    deadline = time.time() + 120
    while not (os.path.exists(log) and b"VPOOL-GUEST uuid=" in open(log, "rb").read()):
        if time.time() > deadline:
            raise SystemExit("bench: the guest did not boot")
        time.sleep(0.1)
    ticks = Ticks(log)
    ticks.start()
    time.sleep(2)
    overlay, gen = os.path.join(delta, "overlay.qcow2"), 1
    res = {"vpool": [], "virsh": []}
    for r in range(2 * a.runs):
        # vpool, virsh, virsh, vpool, ...: each moves as often each way.
        who = "vpool" if r % 4 in (0, 3) else "virsh"
        src = where(conns)
        dst = "b" if src == "a" else "a"
        if who == "vpool":
            new = os.path.join(delta, "overlay.g%d.qcow2" % (gen + 1))
            cmd = [a.tool, uris[src], uris[dst], NAME, str(gen + 1), "%s=%s" % (overlay, new)]
        else:
            cmd = ["virsh", "-q", "-c", uris[src], "migrate", "--live", "--p2p", "--persistent",
                   "--undefinesource", "--unsafe", NAME, uris[dst]]
        t0 = time.monotonic()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        t1 = time.monotonic()
        if who == "vpool":
            overlay, gen = new, gen + 1
        time.sleep(2.5)
        # A guest that stops printing after a move has hung or crashed.
        if not ticks.times or ticks.times[-1] < time.monotonic() - 1:
            raise SystemExit("bench: the guest stopped printing after %s's move %d" % (who, r // 2 + 1))
        longest, usual = ticks.gap(t0, t1)
        res[who].append({"guest": longest - usual, "libvirt": job_downtime(conns[dst]), "wall": t1 - t0,
                         "from": src, "to": dst})
    ticks.stop = True
    text = open(log, "rb").read()
    if b"Kernel panic" in text or text.count(b"VPOOL-GUEST uuid=") != 1:
        raise SystemExit("bench: the guest rebooted or crashed during the moves")
    out = {"runs": a.runs}
    for who, rows in res.items():
        out[who] = {k: statistics.median(x[k] for x in rows) for k in ("guest", "libvirt", "wall")}
        out[who]["rounds"] = rows
    out["ratio_guest"] = out["vpool"]["guest"] / out["virsh"]["guest"]
    out["ratio_libvirt"] = out["vpool"]["libvirt"] / out["virsh"]["libvirt"]
    where_now = where(conns)
    conns[where_now].lookupByName(NAME).destroy()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

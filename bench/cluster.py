"""The raw libvirt floor of a cluster-to-cluster move, and what vpool's
event stream says about its own.

Called by bench/run.sh (its cluster section). The floor does, for each VM of
a pool, only the libvirt work of vpool's move: define the edited domain on
the VM's target host, undefine it on its source host. It runs with the same
parallelism as `vpool migrate` (PARALLEL workers, each taking the next VM)
and with one libvirt connection per host per worker. Each VM goes from the
host vpool created it on to the host vpool's migration put it on, so both
contenders put the same load on the same hosts.

The floor's domains are copies of the pool's definitions under other names
(fl-NNN for POOL-NNN), defined on the same source hosts.

  cluster.py prepare --moves MOVES --host NAME=URI... --jobs JOBS
      for each line "VM SOURCE-HOST TARGET-HOST" of MOVES, read the VM's
      definition (from the host it is on now), write the floor's
      source and target definitions to JOBS and define the source ones
  cluster.py run --jobs JOBS --host NAME=URI... [--parallel P]
      the timed move there, then the untimed move back; prints one JSON
      document: total seconds, connect seconds, each VM's seconds
  cluster.py clean --jobs JOBS --host NAME=URI...
      undefine the floor's domains wherever they are
  cluster.py steps STREAM
      one JSON document: for vpool's event stream (`vpool --json migrate`)
      each VM's seconds from `stopping` to `done`, the median of each step,
      the seconds before the migration was allocated (its preflight) and
      before the last VM was done
"""
import argparse
import json
import re
import statistics
import sys
import threading
import time

import libvirt

from downtime import target_xml

DEFAULT_PARALLEL = 8


def hosts_arg(pairs):
    out = {}
    for p in pairs:
        name, sep, uri = p.partition("=")
        if not sep:
            raise SystemExit("cluster.py: --host wants NAME=URI, not '%s'" % p)
        out[name] = uri
    return out


def floor_name(vm):
    return "fl-" + vm.rsplit("-", 1)[1]


def prepare(a):
    hosts = hosts_arg(a.host)
    conns = {h: libvirt.open(u) for h, u in hosts.items()}
    where = {d: h for h, c in conns.items() for d in c.listDefinedDomains()}
    jobs = []
    for line in open(a.moves):
        vm, src, dst = line.split()
        xml = conns[where[vm]].lookupByName(vm).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        # A copy under another name: libvirt refuses a second domain with
        # the same UUID, and a MAC is the VM's identity.
        name = floor_name(vm)
        xml = re.sub(r"<uuid>.*?</uuid>", "", xml)
        xml = re.sub(r"\s*<mac address=[^>]*/>", "", xml)
        xml = re.sub(r"<name>[^<]*</name>", "<name>%s</name>" % name, xml, count=1)
        jobs.append({"name": name, "src": src, "dst": dst, "src_xml": xml, "dst_xml": target_xml(xml)})
    for j in jobs:
        conns[j["src"]].defineXML(j["src_xml"])
    json.dump(jobs, open(a.jobs, "w"))


def parallel_moves(hosts, jobs, parallel, move):
    """Runs MOVE(conns, job) for every job on PARALLEL workers, each with a
    connection of its own to every host. Returns the seconds spent opening
    connections (the slowest worker's), and each job's seconds."""
    nxt = [0]
    lock = threading.Lock()
    took = [None] * len(jobs)
    connect = [0.0] * parallel
    failed = []

    def worker(w):
        t0 = time.monotonic()
        conns = {h: libvirt.open(u) for h, u in hosts.items()}
        connect[w] = time.monotonic() - t0
        try:
            while True:
                with lock:
                    i = nxt[0]
                    nxt[0] += 1
                if i >= len(jobs):
                    return
                t0 = time.monotonic()
                move(conns, jobs[i])
                took[i] = time.monotonic() - t0
        except libvirt.libvirtError as e:
            failed.append(str(e))
        finally:
            for c in conns.values():
                c.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(min(parallel, len(jobs)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise SystemExit("cluster.py: floor move failed: %s" % failed[0])
    return max(connect), took


def there(conns, j):
    conns[j["dst"]].defineXML(j["dst_xml"])
    conns[j["src"]].lookupByName(j["name"]).undefine()


def back(conns, j):
    conns[j["src"]].defineXML(j["src_xml"])
    conns[j["dst"]].lookupByName(j["name"]).undefine()


def defined_on(hosts, names):
    """How many of NAMES are defined on each host."""
    out = {}
    for h, u in hosts.items():
        c = libvirt.open(u)
        out[h] = len(names & set(c.listDefinedDomains()))
        c.close()
    return out


def run(a):
    hosts = hosts_arg(a.host)
    jobs = json.load(open(a.jobs))
    t0 = time.monotonic()
    connect, took = parallel_moves(hosts, jobs, a.parallel, there)
    total = time.monotonic() - t0
    # Only a floor that really put every definition where the plan says
    # counts.
    want = {}
    for j in jobs:
        want[j["dst"]] = want.get(j["dst"], 0) + 1
    got = defined_on(hosts, {j["name"] for j in jobs})
    if any(got[h] != want.get(h, 0) for h in hosts):
        raise SystemExit("cluster.py: after the floor's move the hosts hold %s, not %s" % (got, want))
    parallel_moves(hosts, jobs, a.parallel, back)
    json.dump({"total": total, "connect": connect, "parallel": a.parallel, "vms": took}, sys.stdout)
    print()


def clean(a):
    hosts = hosts_arg(a.host)
    names = {j["name"] for j in json.load(open(a.jobs))}
    for u in hosts.values():
        c = libvirt.open(u)
        for n in names & set(c.listDefinedDomains()):
            c.lookupByName(n).undefine()
        c.close()


def step_times(lines):
    """Each VM's seconds from `stopping` to `done`, the seconds each step
    took (from the step before it), per step, over every VM, and when the
    migration was allocated and its last VM done."""
    at = {}
    allocated = last = 0.0
    for line in lines:
        ev = json.loads(line)
        if ev.get("step") == "allocated":
            allocated = ev["time"]
        if "time" in ev:
            last = max(last, ev["time"])
        if ev.get("vm") and not ev.get("error"):
            at.setdefault(ev["vm"], []).append((ev["time"], ev["step"]))
    steps = {}
    vms = []
    for evs in at.values():
        evs.sort()
        for (t0, _), (t1, s) in zip(evs, evs[1:]):
            steps.setdefault(s, []).append(t1 - t0)
        vms.append(evs[-1][0] - evs[0][0])
    return {"vms": vms, "steps": {s: statistics.median(x) for s, x in steps.items()}, "allocated": allocated,
            "last": last}


def main():
    # Lookups of domains that are not there are answered by exceptions:
    # no noise on stderr.
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--moves", required=True)
    p.add_argument("--jobs", required=True)
    p.add_argument("--host", action="append", required=True)
    p = sub.add_parser("run")
    p.add_argument("--jobs", required=True)
    p.add_argument("--host", action="append", required=True)
    p.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL)
    p = sub.add_parser("clean")
    p.add_argument("--jobs", required=True)
    p.add_argument("--host", action="append", required=True)
    p = sub.add_parser("steps")
    p.add_argument("stream")
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a)
    elif a.cmd == "run":
        run(a)
    elif a.cmd == "clean":
        clean(a)
    else:
        json.dump(step_times(open(a.stream)), sys.stdout)
        print()


if __name__ == "__main__":
    main()

"""Writes BENCHMARKS.md from bench/run.sh's results (see there)."""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import step_times  # noqa: E402


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, check=True, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True).stdout.strip()
    except subprocess.CalledProcessError:
        return "?"


def mib(b):
    return "%.1f MiB" % (b / 1048576) if b >= 1048576 else "%.1f KiB" % (b / 1024)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--downtime")
    ap.add_argument("--cluster", help="the cluster section's folder (bench/cluster.sh)")
    ap.add_argument("--live", help="the live section's figures (bench/live.py's JSON)")
    ap.add_argument("--api", help="the api section's figures (bench/api.py's JSON)")
    ap.add_argument("--console", help="the console section's figures (bench/console.mjs's JSON)")
    ap.add_argument("--catalog", help="the catalog section's figures (bench/catalog.sh's JSON)")
    ap.add_argument("--command", required=True)
    ap.add_argument("--master-bytes", type=int, required=True)
    ap.add_argument("--vpool", required=True)
    a = ap.parse_args()

    rows = {}
    for line in open(a.results):
        f = line.split()
        n, who = int(f[0]), f[1]
        rows[(n, who)] = {
            "median": float(f[2]), "per_vm": float(f[3]),
            "bytes": None if f[4] == "-" else int(float(f[4])), "rss": None if f[5] == "-" else int(float(f[5])),
            "runs": [float(x) for x in f[6:]],
        }
    sizes = sorted({n for n, _ in rows})
    dt = json.load(open(a.downtime)) if a.downtime else None
    cl = cluster_figures(a.cluster) if a.cluster else None
    lv = json.load(open(a.live)) if a.live else None
    api = json.load(open(a.api)) if a.api else None
    web = json.load(open(a.console)) if a.console else None
    cat = json.load(open(a.catalog)) if a.catalog else None

    out = []
    w = out.append
    w("# vpool benchmarks\n")
    w("Produced by `%s` on %s. Do not edit: run the command again." % (a.command.strip(),
                                                                       time.strftime("%Y-%m-%d", time.gmtime())))
    w("")
    w("## Machine\n")
    w("| | |\n|---|---|")
    w("| CPU | %s, %s cores |" % (sh("lscpu | sed -n 's/^Model name: *//p'"), os.cpu_count()))
    w("| memory | %s |" % sh("free -h | awk '/^Mem:/ {print $2}'"))
    w("| kernel | %s |" % platform.release())
    w("| libvirt | %s |" % sh("libvirtd --version | awk '{print $NF}'"))
    w("| QEMU | %s (TCG: KVM does not work here) |" % sh("qemu-system-x86_64 --version | head -1 | awk '{print $4}'"))
    w("| storage | %s on the local disk (catalog on the same disk) |" % sh("df -T /var/tmp | awk 'NR == 2 {print $2}'"))
    w("| vpool | %s, commit %s |" % (sh(a.vpool + " --version"), sh("git -C %s rev-parse --short HEAD" % os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))))
    w("")
    if sizes:
        migration_tables(w, rows, sizes, a.master_bytes)
    if dt:
        downtime_table(w, dt)
    if cl:
        cluster_tables(w, cl)
    if lv:
        live_table(w, lv)
    if api:
        api_table(w, api)
    if web:
        console_table(w, web)
    if cat:
        catalog_table(w, cat)

    w("## Targets\n")
    w("| target | measured | met |")
    w("|---|---|---|")

    def t(name, measured, ok):
        w("| %s | %s | %s |" % (name, measured, "yes" if ok else "**no**"))

    if sizes:
        migration_targets(t, rows)
    if dt:
        downtime_target(t, dt)
    if cl:
        cluster_targets(t, cl)
    if lv:
        live_targets(t, lv)
    if api:
        api_targets(t, api)
    if web:
        t("estate of %d VMs rendered <= 1 s from the request" % web["vms"], "%.0f ms" % web["median_ms"],
          web["median_ms"] <= 1000)
    if cat:
        t("migrate N = %d with the catalog in PostgreSQL <= 1.5x SQLite per VM" % cat["n"],
          "%.2f" % cat["ratio"], cat["ratio"] <= 1.5)
    w("")
    print("\n".join(out))


def catalog_table(w, cat):
    n = cat["n"]
    w("## The catalog: SQLite and PostgreSQL\n")
    w("`vpool migrate` of a pool of %d defined VMs to the other host and hardware (--parallel %d), the "
      "catalog in SQLite and in PostgreSQL (a private server on the same disk), %d runs alternating, each "
      "followed by an untimed move back (bench/catalog.sh).\n" % (n, cat["parallel"], cat["runs"]))
    w("| catalog | median | per VM | runs |")
    w("|---|---|---|---|")
    for key, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        med = cat[key + "_median"]
        w("| %s | %.2f s | %.2f ms | %s |" % (name, med, med * 1000 / n, ", ".join("%.2f" % x for x in cat[key])))
    w("")
    w("PostgreSQL / SQLite: **%.2f**.\n" % cat["ratio"])


def live_table(w, lv):
    w("## Live move of a running guest between two hosts of one env\n")
    w("One guest (256 MiB, TCG) printing a console line every 10 ms moves back and forth between the "
      "pair of hosts, %d rounds each, alternating: vpool's live move (libvirt's peer-to-peer live "
      "migration with the disks handed to the next generation's names) and `virsh migrate --live --p2p "
      "--persistent --undefinesource --unsafe`. The guest's downtime is the longest silence between two "
      "console lines less their usual interval; libvirt's is the completed job's downtime.\n" % lv["runs"])
    w("| | vpool | virsh | vpool / virsh |")
    w("|---|---:|---:|---:|")
    w("| downtime the guest sees, median | %.0f ms | %.0f ms | %.2f |" % (
        lv["vpool"]["guest"] * 1000, lv["virsh"]["guest"] * 1000, lv["ratio_guest"]))
    w("| downtime libvirt measured, median | %.0f ms | %.0f ms | %.2f |" % (
        lv["vpool"]["libvirt"] * 1000, lv["virsh"]["libvirt"] * 1000, lv["ratio_libvirt"]))
    w("| the whole command, median | %.2f s | %.2f s | |" % (lv["vpool"]["wall"], lv["virsh"]["wall"]))
    w("")


def api_table(w, api):
    k = api["wrk"]
    e = api["events"]
    w("## vpoold's API\n")
    w("`wrk -t %d -c %d -d %ds` against `GET /v1/pools` (20 pools, a viewer's bearer token, loopback HTTP, "
      "vpoold's 4 worker threads) beside the same list read by `vpool --json pool list` run back to back "
      "(a process per read). Then a client holds `/v1/events` open as Server-Sent Events on vpoold's "
      "unix socket while %d journal rows are committed one at a time, 10 to 40 ms apart: the delay from "
      "each commit to its event at the client.\n" % (k["threads"], k["connections"], k["seconds"], e["samples"]))
    w("| | figure |")
    w("|---|---:|")
    w("| requests/s, vpoold | %.0f |" % k["requests_per_s"])
    w("| reads/s, the CLI | %.1f |" % api["cli_reads_per_s"])
    w("| vpoold / CLI | %.0f |" % api["ratio"])
    w("| latency p50 / p90 / p99 | %.2f / %.2f / %.2f ms |" % (k["p50_ms"], k["p90_ms"], k["p99_ms"]))
    w("| answers other than 2xx | %d |" % k["non_2xx"])
    w("| event delay p50 / p99 / max | %.1f / %.1f / %.1f ms |" % (e["p50_ms"], e["p99_ms"], e["max_ms"]))
    w("")


def console_table(w, web):
    w("## The web console\n")
    w("Debian's Chromium, headless (puppeteer-core), at 1366x768, signed in as a viewer, loads vpoold's console "
      "from loopback HTTP: the time from the page's request to the estate's pool table rendered with the %d "
      "defined VMs of one pool counted by state (the page, its modules and `GET /v1/estate`, which reads the "
      "host's domains once), %d runs after one to warm up; and `GET /v1/estate` alone, from the page.\n"
      % (web["vms"], web["runs"]))
    w("| | figure |")
    w("|---|---:|")
    w("| request to rendered estate, median | %.0f ms |" % web["median_ms"])
    w("| runs | %s ms |" % ", ".join("%.0f" % x for x in web["samples_ms"]))
    w("| `GET /v1/estate`, median | %.0f ms |" % web["api_median_ms"])
    w("")


def api_targets(t, api):
    t(">= 5000 requests/s on GET /v1/pools (64 connections)", "%.0f" % api["wrk"]["requests_per_s"],
      api["wrk"]["requests_per_s"] >= 5000 and api["wrk"]["non_2xx"] == 0)
    t("event delay p99 <= 50 ms", "%.1f ms" % api["events"]["p99_ms"], api["events"]["p99_ms"] <= 50)


def live_targets(t, lv):
    t("live move downtime <= 1.5 x virsh migrate --live's (as the guest sees it)", "%.2f" % lv["ratio_guest"],
      lv["ratio_guest"] <= 1.5)
    t("live move downtime < 1 s for the test guest", "%.0f ms" % (lv["vpool"]["guest"] * 1000),
      lv["vpool"]["guest"] < 1)


def migration_tables(w, rows, sizes, master_bytes):
    w("Master image: 1 GiB ext4 of incompressible data (%s as qcow2). Every VM's user delta holds 64 MiB "
      "of its own written data. Moves go from host `benchsrc` (pc, IDE, e1000) to host `benchdst` (q35, "
      "virtio, virtio), VMs defined and not running. Times are medians of the runs listed; contenders "
      "alternate within each run.\n" % mib(master_bytes))

    w("## Migration\n")
    w("| N | contender | median | per VM | written to storage | peak RSS | runs (s) |")
    w("|---:|---|---:|---:|---:|---:|---|")
    names = {"vpool": "vpool migrate", "floor": "raw libvirt floor", "full": "full copy"}
    for n in sizes:
        for who in ("vpool", "floor", "full"):
            r = rows.get((n, who))
            if not r:
                continue
            w("| %d | %s | %.3f s | %.2f ms | %s | %s | %s |" % (
                n, names[who], r["median"], r["per_vm"],
                "-" if r["bytes"] is None else mib(r["bytes"]),
                "-" if r["rss"] is None else mib(r["rss"] * 1024),
                " ".join("%.3f" % x for x in r["runs"])))
    w("")
    w("Written to storage: files created or rewritten under the storage root during the move (a rename "
      "writes no data). vpool rewrites each VM's manifest; the floor writes nothing there.\n")

    w("## Ratios\n")
    w("| N | vpool / floor (per VM) | full copy / vpool (per VM) |")
    w("|---:|---:|---:|")
    for n in sizes:
        v, f, c = rows.get((n, "vpool")), rows.get((n, "floor")), rows.get((n, "full"))
        ratio = v["median"] / f["median"] if v and f else None
        w("| %d | %s | %s |" % (n, "%.2f" % ratio if ratio else "-",
                                 "%.0f" % (c["per_vm"] / v["per_vm"]) if c and v else "-"))
    w("")

    w("## pool create (defined, not started)\n")
    w("| N | median | per VM | runs (s) |")
    w("|---:|---:|---:|---|")
    for n in sizes:
        r = rows.get((n, "create"))
        if r:
            w("| %d | %.2f s | %.2f ms | %s |" % (n, r["median"], r["per_vm"], " ".join("%.2f" % x for x in r["runs"])))
    w("")


def downtime_table(w, dt):
    w("## Downtime of running VMs (4 guests at a time, TCG)\n")
    w("Per VM, from the shutdown request on the source to the guest's boot line on the target, in four "
      "parts: the guest's ACPI shutdown (request to off on the source), the gap (off on the source to the "
      "tool's request to start it on the target: the tool's own work), the hypervisor's start (request to "
      "running) and the guest's boot (running to its boot line). Watchers on connections of their own see "
      "the domains go off and run; vpool's requests are its `stopping` and `handed_over` events. Rounds "
      "alternate vpool and the floor; medians over every VM of every round.\n")
    w("| contender | VMs | downtime | guest shutdown | gap | start | guest boot | largest gap |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for who, label in (("vpool", "vpool migrate"), ("floor", "raw libvirt floor")):
        d = list(dt[who].values())
        m = {k: statistics.median(x[k] for x in d) for k in ("downtime", "shutdown", "gap", "start", "boot")}
        w("| %s | %d | %.2f s | %.2f s | %.3f s | %.3f s | %.2f s | %.3f s |" % (
            label, len(d), m["downtime"], m["shutdown"], m["gap"], m["start"], m["boot"],
            max(x["gap"] for x in d)))
    w("")


def migration_targets(t, rows):
    if (10, "full") in rows:
        x = rows[(10, "full")]["per_vm"] / rows[(10, "vpool")]["per_vm"]
        t("full copy / vpool >= 100 per VM (N = 10)", "%.0f" % x, x >= 100)
    for n in (100, 1000):
        if (n, "vpool") in rows and (n, "floor") in rows:
            x = rows[(n, "vpool")]["median"] / rows[(n, "floor")]["median"]
            t("vpool / floor <= 1.5 per VM at N = %d" % n, "%.2f" % x, x <= 1.5)
    if (10, "vpool") in rows and (1000, "vpool") in rows:
        x = rows[(1000, "vpool")]["per_vm"] / rows[(10, "vpool")]["per_vm"]
        t("time per VM at N = 1000 <= 1.25 x at N = 10", "%.2f ms vs %.2f ms (x%.2f)" % (
            rows[(1000, "vpool")]["per_vm"], rows[(10, "vpool")]["per_vm"], x), x <= 1.25)
    if (1000, "vpool") in rows:
        x = rows[(1000, "vpool")]["rss"] / 1024
        t("peak RSS <= 64 MiB at N = 1000", "%.1f MiB" % x, x <= 64)
    if (1000, "create") in rows:
        x = rows[(1000, "create")]["median"]
        t("pool create --size 1000 <= 30 s", "%.1f s" % x, x <= 30)


def downtime_target(t, dt):
    vgaps = [x["downtime"] - (x["shutdown"] + x["start"] + x["boot"]) for x in dt["vpool"].values()]
    t("downtime <= the guest's own shutdown + boot + 0.5 s, per VM (boot: the hypervisor's start and the "
      "guest's boot)", "excess over the VM's own shutdown + boot: median %.3f s, largest %.3f s (%d VMs)" % (
          statistics.median(vgaps), max(vgaps), len(vgaps)), max(vgaps) <= 0.5)


def cluster_figures(folder):
    """bench/cluster.sh's figures, per pool size."""
    fig = {}
    for line in open(os.path.join(folder, "results")):
        f = line.split()
        c = fig.setdefault(int(f[0]), {"hosts": {}, "targets": {}})
        if f[1] == "host":
            c["hosts"][f[2]] = int(f[3])
        elif f[1] == "target":
            c["targets"][f[2]] = int(f[3])
        elif f[1] == "unplanned":
            c["unplanned"] = int(f[2])
        else:
            c[f[1]] = {"median": float(f[2]), "runs": [float(x) for x in f[3:]]}
    for n, c in fig.items():
        floors = [json.load(open(os.path.join(folder, "floor-%d-%d.json" % (n, r + 1))))
                  for r in range(len(c["floor"]["runs"]))]
        c["floor"]["vms"] = [x for fl in floors for x in fl["vms"]]
        c["floor"]["connect"] = statistics.median(fl["connect"] for fl in floors)
        streams = [step_times(open(os.path.join(folder, "vpool-%d-%d.jsonl" % (n, r + 1))))
                   for r in range(len(c["vpool"]["runs"]))]
        c["vpool"]["vms"] = [x for st in streams for x in st["vms"]]
        c["steps"] = {s: statistics.median(st["steps"][s] for st in streams) for s in streams[0]["steps"]}
        for k in ("allocated", "last"):
            c["vpool"][k] = statistics.median(st[k] for st in streams)
    return {"sizes": fig, "parallel": int(open(os.path.join(folder, "parallel")).read())}


def off_even(count, n, nhosts):
    return 100.0 * (count * nhosts / n - 1)


def cluster_tables(w, cl):
    fig = cl["sizes"]
    w("## A pool between two environments of 3 hosts\n")
    w("A pool of N VMs (defined, not started) created on an env of 3 hosts (pc, IDE, e1000), then moved "
      "to another env of 3 hosts with other hardware (q35, virtio, virtio) by `vpool migrate --parallel %d` "
      "(that many VMs at the hypervisors at once; up to three times as many in flight while their journal "
      "commits and manifest writes reach the disk), "
      "alternating with the raw libvirt floor of the same move: %d workers, each with its own libvirt "
      "connection to every host, each taking the next VM: define the edited domain on the target host "
      "vpool's plan gives it, undefine it on its source host (bench/cluster.py). Each timed move is "
      "followed by an untimed one back. vpool's time is its whole command; the floor's starts when its "
      "workers open their connections. The machine's 2 cores serve the 6 hosts, vpool and the floor: the "
      "figures are noisy.\n" % (cl["parallel"], cl["parallel"]))
    w("| N | pool create | per VM | runs (s) |")
    w("|---:|---:|---:|---|")
    for n in sorted(fig):
        c = fig[n]["create"]
        w("| %d | %.2f s | %.2f ms | %s |" % (n, c["median"], c["median"] * 1000 / n,
                                              " ".join("%.2f" % x for x in c["runs"])))
    w("")
    w("Where the VMs went: on the source env by `pool create`, on the target env by `migrate` (its first "
      "run; the floor moves each VM between the same two hosts).\n")
    w("| N | placed by | host | VMs | off even |")
    w("|---:|---|---|---:|---:|")
    for n in sorted(fig):
        for key, label in (("hosts", "pool create"), ("targets", "migrate")):
            hosts = fig[n][key]
            for h in sorted(hosts):
                w("| %d | %s | %s | %d | %+.1f %% |" % (n, label, h, hosts[h], off_even(hosts[h], n, len(hosts))))
    w("")
    for n in sorted(fig):
        if fig[n].get("unplanned"):
            w("At N = %d, `migrate` put %d VMs on another host than its dry run (`--dry-run`, just before) "
              "said.\n" % (n, fig[n]["unplanned"]))
    w("| N | contender | median | per VM | one VM's move (median, 95th percentile) | runs (s) |")
    w("|---:|---|---:|---:|---:|---|")
    for n in sorted(fig):
        for who, label in (("vpool", "vpool migrate"), ("floor", "raw libvirt floor")):
            c = fig[n][who]
            q = statistics.quantiles(c["vms"], n=20) if len(c["vms"]) > 1 else c["vms"] * 19
            w("| %d | %s | %.3f s | %.2f ms | %.1f ms, %.1f ms | %s |" % (
                n, label, c["median"], c["median"] * 1000 / n, statistics.median(c["vms"]) * 1000, q[18] * 1000,
                " ".join("%.3f" % x for x in c["runs"])))
    w("")
    w("One VM's move: for vpool from its `stopping` event to its `done` event; for the floor its define and "
      "undefine. Where vpool's time goes (medians over the runs): its preflight (start to the migration's "
      "allocation), the VMs' moves (allocation to the last VM done), the rest (retiring the source, exit); "
      "and each step, median milliseconds per VM from the step before.\n")
    steps = ("locked", "provisioned", "handed_over", "done")
    w("| N | vpool / floor (per VM) | preflight | moves | rest | %s |" % " | ".join(steps))
    w("|---:|---:|---:|---:|---:|" + "---:|" * len(steps))
    for n in sorted(fig):
        f = fig[n]
        v = f["vpool"]
        w("| %d | %.2f | %.2f s | %.2f s | %.2f s | %s |" % (
            n, v["median"] / f["floor"]["median"], v["allocated"], v["last"] - v["allocated"],
            v["median"] - v["last"], " | ".join("%.1f ms" % (f["steps"].get(s, 0) * 1000) for s in steps)))
    w("")
    noflush_table(w, fig)


def noflush_table(w, fig):
    w("What each step's durability costs: in the same rounds, a third move by vpool with bench/noflush.c "
      "preloaded, which makes every flush it asks for (fsync, fdatasync: its journal's commits and its "
      "manifests' writes) return without waiting for the disk. Everything else is as in a normal move. It "
      "is an analysis, never a way to run vpool: a crash could then lose a step already acted on.\n")
    w("| N | vpool | vpool, no flush waited for | floor | vpool / floor | no flush / floor | runs, no flush (s) |")
    w("|---:|---:|---:|---:|---:|---:|---|")
    for n in sorted(fig):
        f = fig[n]
        v, u, fl = f["vpool"]["median"], f["noflush"]["median"], f["floor"]["median"]
        w("| %d | %.3f s | %.3f s | %.3f s | %.2f | %.2f | %s |" % (
            n, v, u, fl, v / fl, u / fl, " ".join("%.3f" % x for x in f["noflush"]["runs"])))
    w("")


def cluster_targets(t, cl):
    fig = cl["sizes"]
    for n in sorted(fig):
        f = fig[n]
        x = f["vpool"]["median"] / f["floor"]["median"]
        u = f["noflush"]["median"] / f["floor"]["median"]
        t("vpool / floor <= 1.3 per VM, 3 hosts to 3 hosts, N = %d" % n,
          "%.2f (%.2f with no flush waited for)" % (x, u), x <= 1.3)
        for key, label in (("hosts", "pool create"), ("targets", "migrate")):
            hosts = f[key]
            worst = max(abs(off_even(c, n, len(hosts))) for c in hosts.values())
            # One VM off is as even as N allows when 3 does not divide it.
            t("%s: VMs within +-2 %% of even (or one VM) across 3 hosts, N = %d" % (label, n),
              "%s (worst %.1f %%)" % (" / ".join(str(hosts[h]) for h in sorted(hosts)), worst),
              worst <= 2 or max(hosts.values()) - min(hosts.values()) <= 1)
    if 1000 in fig:
        x = fig[1000]["create"]["median"]
        t("pool create --size 1000 on 3 hosts <= 20 s", "%.1f s" % x, x <= 20)


if __name__ == "__main__":
    main()

"""Writes BENCHMARKS.md from bench/run.sh's results (see there)."""
import argparse
import json
import os
import platform
import statistics
import subprocess
import time


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
    ap.add_argument("--downtime", required=True)
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
    dt = json.load(open(a.downtime))

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
    w("Master image: 1 GiB ext4 of incompressible data (%s as qcow2). Every VM's user delta holds 64 MiB "
      "of its own written data. Moves go from host `benchsrc` (pc, IDE, e1000) to host `benchdst` (q35, "
      "virtio, virtio), VMs defined and not running. Times are medians of the runs listed; contenders "
      "alternate within each run.\n" % mib(a.master_bytes))

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
    ratio = {}
    for n in sizes:
        v, f, c = rows.get((n, "vpool")), rows.get((n, "floor")), rows.get((n, "full"))
        ratio[n] = v["median"] / f["median"] if v and f else None
        w("| %d | %s | %s |" % (n, "%.2f" % ratio[n] if ratio[n] else "-",
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
    vgaps = [x["downtime"] - (x["shutdown"] + x["start"] + x["boot"]) for x in dt["vpool"].values()]

    w("## Targets\n")
    w("| target | measured | met |")
    w("|---|---|---|")

    def t(name, measured, ok):
        w("| %s | %s | %s |" % (name, measured, "yes" if ok else "**no**"))

    if (10, "full") in rows:
        x = rows[(10, "full")]["per_vm"] / rows[(10, "vpool")]["per_vm"]
        t("full copy / vpool >= 100 per VM (N = 10)", "%.0f" % x, x >= 100)
    for n in (100, 1000):
        if ratio.get(n):
            t("vpool / floor <= 1.5 per VM at N = %d" % n, "%.2f" % ratio[n], ratio[n] <= 1.5)
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
    t("downtime <= the guest's own shutdown + boot + 0.5 s, per VM (boot: the hypervisor's start and the "
      "guest's boot)", "excess over the VM's own shutdown + boot: median %.3f s, largest %.3f s (%d VMs)" % (
          statistics.median(vgaps), max(vgaps), len(vgaps)), max(vgaps) <= 0.5)
    w("")
    print("\n".join(out))


if __name__ == "__main__":
    main()

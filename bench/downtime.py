"""Downtime of running VMs moved by vpool and by the raw libvirt floor.

Called by bench/run.sh with the catalog in VPOOL_CATALOG, an image 'big'
whose guests stay up (vpool.stay=1) and profiles pc-ide and q35-virtio.

vpool: a pool of COUNT running VMs on the source; `vpool --json migrate`
to the target with q35/virtio. A VM's downtime runs from its `stopping`
event (vpool asks the source to shut down right after it) to its guest's
second boot line on the console: the guest is up on the target.

floor: COUNT VMs of their own (overlays of the same master, same hardware)
running on the source; for each, in parallel: ACPI shutdown, wait until it
is off, define the edited domain on the target, undefine on the source,
start on the target.

For both, watchers on connections of their own note when each domain went
off on the source and when it ran on the target; with the moment the tool
asked for the start, that splits the downtime into the guest's shutdown,
the tool's own work between the guest's two lives (the gap), the
hypervisor's start of the new domain and the guest's boot. Rounds alternate vpool and floor. Prints one JSON
document.
"""
import argparse
import json
import os
import re
import subprocess
import threading
import time

import libvirt

COUNT = 4
POLL = 0.02


def wait_line(path, boot, deadline):
    """Time at which PATH first holds the guest's line for boot BOOT."""
    pat = re.compile(rb"VPOOL-GUEST uuid=\S+ boot=%d " % boot)
    while time.time() < deadline:
        try:
            with open(path, "rb") as f:
                if pat.search(f.read()):
                    return time.time()
        except FileNotFoundError:
            pass
        time.sleep(POLL)
    raise SystemExit("bench: no boot=%d line in %s" % (boot, path))


def target_xml(xml):
    xml = re.sub(r"machine='pc[^']*'", "machine='q35'", xml)
    xml = xml.replace("bus='ide'", "bus='virtio'")
    xml = re.sub(r"dev='hd([a-z])'", r"dev='vd\1'", xml)
    xml = re.sub(r"\s*<address [^>]*/>", "", xml)
    xml = re.sub(r"\s*<controller[^>]*/>", "", xml)
    xml = re.sub(r"\s*<controller.*?</controller>", "", xml, flags=re.S)
    return xml.replace("<model type='e1000'/>", "<model type='virtio'/>")


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def is_active(conn, name):
    try:
        return conn.lookupByName(name).isActive() == 1
    except libvirt.libvirtError:
        return False


def watch_vm(src, dst, name, log, t):
    """Fill T with when NAME went off on SRC, ran on DST and booted there."""
    deadline = time.time() + 300
    while is_active(src, name):
        if time.time() > deadline:
            raise SystemExit("bench: %s never went off on the source" % name)
        time.sleep(POLL)
    t["off"] = time.time()
    while not is_active(dst, name):
        if time.time() > deadline:
            raise SystemExit("bench: %s never ran on the target" % name)
        time.sleep(POLL)
    t["start"] = time.time()
    t["boot"] = wait_line(log, 2, deadline)


def summary(t):
    """The downtime and its parts: the guest's shutdown (request to off),
    the tool's own work (off to the start request), the hypervisor's start
    (request to running) and the guest's boot (running to its boot line)."""
    return {"downtime": t["boot"] - t["req"], "shutdown": t["off"] - t["req"], "gap": t["startreq"] - t["off"],
            "start": t["start"] - t["startreq"], "boot": t["boot"] - t["start"]}


def booted_and_watched(a, names, logdir):
    """Wait for the first boot line of every VM in NAMES, then start a
    watcher per VM on connections of its own (they poll while the tool
    works). Returns the times to fill and the watcher threads."""
    deadline = time.time() + 300
    for n in names:
        wait_line(os.path.join(logdir, n + ".log"), 1, deadline)
    t = {n: {} for n in names}
    wsrc, wdst = libvirt.open(a.src), libvirt.open(a.dst)
    watchers = [threading.Thread(target=watch_vm, args=(wsrc, wdst, n, os.path.join(logdir, n + ".log"), t[n]))
                for n in names]
    for w in watchers:
        w.start()
    return t, watchers


def vpool_round(a, src, dst, logs, r):
    pool = "live%d" % r
    names = ["%s-%03d" % (pool, i + 1) for i in range(COUNT)]
    run([a.vpool, "pool", "create", pool, "--image", "big", "--env", "src", "--profile", "pc-ide",
         "--size", str(COUNT), "--start", "--quiet"])
    t, watchers = booted_and_watched(a, names, logs)
    p = subprocess.Popen([a.vpool, "--json", "migrate", pool, "--to", "dst", "--profile", "q35-virtio"],
                         stdout=subprocess.PIPE)
    for line in p.stdout:
        now = time.time()
        ev = json.loads(line)
        # vpool asks the source to shut down right after `stopping`, and
        # the target to start right after `handed_over`.
        if ev.get("vm") and ev.get("step") == "stopping":
            t[ev["vm"]]["req"] = now
        elif ev.get("vm") and ev.get("step") == "handed_over":
            t[ev["vm"]]["startreq"] = now
    if p.wait() != 0:
        raise SystemExit("bench: vpool migrate of the running pool failed")
    for w in watchers:
        w.join()
    run([a.vpool, "pool", "stop", pool, "--quiet"])
    run([a.vpool, "pool", "rm", pool, "--quiet"])
    return {n: summary(t[n]) for n in names}


def floor_round(a, src, dst, template, r):
    fdir = os.path.join(a.work, "floor-live")
    os.makedirs(fdir, exist_ok=True)
    os.chmod(fdir, 0o755)
    names = ["flive%d-%03d" % (r, i + 1) for i in range(COUNT)]
    xmls = {}
    for n in names:
        disk = os.path.join(fdir, n + ".qcow2")
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", a.master, "-F", "qcow2", disk])
        x = re.sub(r"<uuid>.*?</uuid>", "", template)
        x = re.sub(r"\s*<mac address=[^>]*/>", "", x)
        x = re.sub(r"<name>[^<]*</name>", "<name>%s</name>" % n, x)
        x = re.sub(r"(<disk type='file' device='disk'>.*?<source file=')[^']*'", r"\g<1>%s'" % disk, x, count=1,
                   flags=re.S)
        x = re.sub(r"<log file='[^']*'", "<log file='%s'" % os.path.join(fdir, n + ".log"), x)
        x = re.sub(r"<metadata>.*?</metadata>", "", x, flags=re.S)
        xmls[n] = x
        src.defineXML(x).create()
    t, watchers = booted_and_watched(a, names, fdir)

    def move(n):
        # Its own connections, as a script per VM would have.
        s, d = libvirt.open(a.src), libvirt.open(a.dst)
        dom = s.lookupByName(n)
        t[n]["req"] = time.time()
        dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
        while dom.isActive():
            time.sleep(POLL)
        nd = d.defineXML(target_xml(xmls[n]))
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM)
        t[n]["startreq"] = time.time()
        nd.create()

    movers = [threading.Thread(target=move, args=(n,)) for n in names]
    for m in movers:
        m.start()
    for m in movers:
        m.join()
    for w in watchers:
        w.join()
    for n in names:
        d = dst.lookupByName(n)
        if d.isActive():
            d.destroy()
        d.undefine()
        os.unlink(os.path.join(fdir, n + ".qcow2"))
    return {n: summary(t[n]) for n in names}


def main():
    # Lookups of domains that just went away are expected: no noise.
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    ap = argparse.ArgumentParser()
    for o in ("vpool", "src", "dst", "work", "master"):
        ap.add_argument("--" + o, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    src = libvirt.open(a.src)
    dst = libvirt.open(a.dst)
    storage = json.loads(subprocess.run([a.vpool, "--json", "image", "show", "big"], check=True,
                                        stdout=subprocess.PIPE).stdout)["path"]
    logs = os.path.join(os.path.dirname(os.path.dirname(storage)), "logs")
    # The floor's domains are the pool's own definitions under other names.
    run([a.vpool, "pool", "create", "tmpl", "--image", "big", "--env", "src", "--profile", "pc-ide",
         "--size", "1", "--quiet"])
    template = src.lookupByName("tmpl-001").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    run([a.vpool, "pool", "rm", "tmpl", "--quiet"])
    out = {"vpool": {}, "floor": {}}
    for r in range(1, a.rounds + 1):
        out["vpool"].update(vpool_round(a, src, dst, logs, r))
        out["floor"].update(floor_round(a, src, dst, template, r))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

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
start on the target, wait for the boot line. Also gives the guest's own
shutdown (request -> off) and boot (start -> boot line).

Prints one JSON document.
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
POLL = 0.01


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


def vpool_downtime(a, logs):
    names = ["live-%03d" % (i + 1) for i in range(COUNT)]
    run([a.vpool, "pool", "create", "live", "--image", "big", "--env", "src", "--profile", "pc-ide",
         "--size", str(COUNT), "--start", "--quiet"])
    deadline = time.time() + 300
    for n in names:
        wait_line(os.path.join(logs, n + ".log"), 1, deadline)
    stop_req = {}
    booted = {}

    def watch(n):
        booted[n] = wait_line(os.path.join(logs, n + ".log"), 2, time.time() + 300)

    watchers = [threading.Thread(target=watch, args=(n,)) for n in names]
    for t in watchers:
        t.start()
    p = subprocess.Popen([a.vpool, "--json", "migrate", "live", "--to", "dst", "--profile", "q35-virtio"],
                         stdout=subprocess.PIPE)
    for line in p.stdout:
        now = time.time()
        ev = json.loads(line)
        if ev.get("vm") and ev.get("step") == "stopping":
            stop_req[ev["vm"]] = now
    if p.wait() != 0:
        raise SystemExit("bench: vpool migrate of the running pool failed")
    for t in watchers:
        t.join()
    out = {n: booted[n] - stop_req[n] for n in names}
    run([a.vpool, "pool", "stop", "live", "--quiet"])
    run([a.vpool, "pool", "rm", "live", "--quiet"])
    return out


def floor_downtime(a, src, dst, template):
    fdir = os.path.join(a.work, "floor-live")
    os.makedirs(fdir, exist_ok=True)
    os.chmod(fdir, 0o755)
    names = ["flive-%03d" % (i + 1) for i in range(COUNT)]
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
    deadline = time.time() + 300
    for n in names:
        wait_line(os.path.join(fdir, n + ".log"), 1, deadline)
    res = {}

    def move(n):
        d = src.lookupByName(n)
        t_req = time.time()
        d.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
        while d.isActive():
            time.sleep(POLL)
        t_off = time.time()
        nd = dst.defineXML(target_xml(xmls[n]))
        d.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM)
        t_start = time.time()
        nd.create()
        t_boot = wait_line(os.path.join(fdir, n + ".log"), 2, time.time() + 300)
        res[n] = {"downtime": t_boot - t_req, "shutdown": t_off - t_req, "boot": t_boot - t_start}

    ts = [threading.Thread(target=move, args=(n,)) for n in names]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for n in names:
        d = dst.lookupByName(n)
        if d.isActive():
            d.destroy()
        d.undefine()
    return res


def main():
    ap = argparse.ArgumentParser()
    for o in ("vpool", "src", "dst", "work", "master"):
        ap.add_argument("--" + o, required=True)
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
    v = vpool_downtime(a, logs)
    f = floor_downtime(a, src, dst, template)
    print(json.dumps({"vpool": v, "floor": f}, indent=1))


if __name__ == "__main__":
    main()

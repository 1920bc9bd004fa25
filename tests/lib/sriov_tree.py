"""Writes sysfs/proc trees with SR-IOV NICs, laid out as the Linux kernel lays them out.

bic-agent reads its host facts through a root prefix (<root>/proc/..., <root>/sys/...), so a
test can hand an agent a directory that looks like a server. This module writes such trees:

    from sriov_tree import make_tree
    make_tree("/tmp/srv1", [{"name": "ens1f0", "pci": "0000:3b:00.0", "vfs": 64,
                             "speed": 10000, "link": "up", "driver": "i40e"}])

or from the shell:

    python3 tests/lib/sriov_tree.py DIR --pf ens1f0:64:10000 [--pf ens1f1:8:25000:down]
                                        [--cores 32] [--memory-gib 256]

Layout (the same as the hand-made fixtures tests/fixtures/sysroot-sriov-*):
  sys/class/net/<if>          -> ../../devices/pci0000:BB/<root port>/<pf>/net/<if>
  .../<pf>/net/<if>/device    -> ../../../<pf>
  .../<pf>/driver             -> ../../../../bus/pci/drivers/<driver>
  .../<pf>/virtfnN            -> ../<vf>          (one per enabled VF)
  .../<vf>/physfn             -> ../<pf>
  .../<vf>/driver             -> ../../../../bus/pci/drivers/<vf driver>
  .../<vf>/net/<if>v<N>/      (only when the VF is bound to a host netdev driver)
  sys/bus/pci/devices/<bdf>   -> ../../../devices/pci0000:BB/...
  sys/bus/pci/drivers/<drv>/<bdf> -> ../../../../devices/pci0000:BB/...
Links are relative and computed the way the kernel's kernfs computes them (up to the
nearest common ancestor of the link's directory and the target's parent, then down), so the
trees work from any path. As in the real /sys, links form cycles (device -> its parent,
physfn <-> virtfnN, driver <-> drivers/<drv>/<bdf>): copy a tree with
shutil.copytree(src, dst, symlinks=True) or cp -a, never by following links. The kernel's
`subsystem` links are left out. VF addresses follow the PF's sriov_offset and sriov_stride, as the
PCI SR-IOV capability defines them: routing id of VF n = PF routing id + offset + n * stride.
"""
import argparse
import os
import sys

# Known PFs: vendor, device, VF device, total VFs, VF offset/stride of function 0 and 1,
# driver of the VFs when they are bound on the host.
MODELS = {
    "ixgbe": {"vendor": "0x8086", "device": "0x10fb", "vf_device": "0x10ed", "total": 63,
              "offset": (128, 128), "stride": 2, "vf_driver": "ixgbevf"},
    "i40e": {"vendor": "0x8086", "device": "0x1572", "vf_device": "0x154c", "total": 64,
             "offset": (16, 79), "stride": 1, "vf_driver": "iavf"},
    "ice": {"vendor": "0x8086", "device": "0x159b", "vf_device": "0x1889", "total": 128,
            "offset": (8, 135), "stride": 1, "vf_driver": "iavf"},
    "mlx5_core": {"vendor": "0x15b3", "device": "0x1017", "vf_device": "0x1018", "total": 8,
                  "offset": (2, 9), "stride": 1, "vf_driver": "mlx5_core"},
}

MEMINFO_TAIL = """MemFree:        {free} kB
MemAvailable:   {avail} kB
Buffers:          204800 kB
Cached:          1843200 kB
SwapCached:            0 kB
SwapTotal:             0 kB
SwapFree:              0 kB
HugePages_Total:       0
HugePages_Free:        0
Hugepagesize:       2048 kB
"""


class Tree:
    """A sysfs tree being written under root."""

    def __init__(self, root):
        self.root = os.path.abspath(root)

    def path(self, rel):
        return os.path.join(self.root, rel)

    def file(self, rel, content=""):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(content)

    def attr(self, rel, value):
        """A sysfs attribute: the value and a newline."""
        self.file(rel, "%s\n" % value)

    def link(self, rel, target_rel):
        """A symlink rel -> target_rel, relative as kernfs writes it."""
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        linkdir = os.path.dirname(rel)
        up = os.path.relpath(os.path.dirname(target_rel) or ".", linkdir or ".")
        target = os.path.basename(target_rel) if up == "." else os.path.join(
            up, os.path.basename(target_rel))
        if os.path.lexists(p):
            os.unlink(p)
        os.symlink(target, p)


def bdf(domain, bus, devfn):
    return "%04x:%02x:%02x.%d" % (domain, bus, devfn >> 3, devfn & 7)


def parse_bdf(addr):
    dom, bus, rest = addr.split(":")
    slot, fn = rest.split(".")
    return int(dom, 16), int(bus, 16), (int(slot, 16) << 3) | int(fn)


def write_meminfo(t, mem_kib):
    t.file("proc/meminfo", "MemTotal:       %d kB\n" % mem_kib +
           MEMINFO_TAIL.format(free=mem_kib * 9 // 10, avail=mem_kib * 19 // 20))


def write_cpus(t, packages, cores_per_package, threads):
    """cpuN for N in 0..packages*cores*threads-1; cpuN and cpuN+cores_total are siblings."""
    cores = packages * cores_per_package
    n = cores * threads
    base = "sys/devices/system/cpu"
    for cpu in range(n):
        core = cpu % cores
        d = "%s/cpu%d" % (base, cpu)
        if cpu != 0:  # cpu0 has no online file on x86
            t.attr(d + "/online", 1)
        t.attr(d + "/topology/physical_package_id", core // cores_per_package)
        t.attr(d + "/topology/core_id", core % cores_per_package)
        sib = ",".join(str(core + k * cores) for k in range(threads))
        t.attr(d + "/topology/thread_siblings_list", sib)
    for name in ("online", "possible", "present"):
        t.attr("%s/%s" % (base, name), "0-%d" % (n - 1))


def write_driver(t, driver):
    d = "sys/bus/pci/drivers/" + driver
    for name in ("uevent", "bind", "unbind", "new_id", "remove_id"):
        t.file(d + "/" + name)
    return d


def write_pci(t, devdir, vendor, device, pci_class="0x020000", driver=None):
    """One PCI function at devdir (sys/devices/pci0000:BB/.../<bdf>)."""
    addr = os.path.basename(devdir)
    t.attr(devdir + "/vendor", vendor)
    t.attr(devdir + "/device", device)
    t.attr(devdir + "/class", pci_class)
    t.attr(devdir + "/numa_node", -1)
    t.link("sys/bus/pci/devices/" + addr, devdir)
    if driver:
        d = write_driver(t, driver)
        t.link(devdir + "/driver", d)
        t.link(d + "/" + addr, devdir)


def write_bridge(t, devdir):
    """A PCIe root port (class 0x060400) with the pcieport driver."""
    write_pci(t, devdir, "0x8086", "0x2030", "0x060400", "pcieport")


def write_netdev(t, devdir, ifname, mac, speed=-1, link="up", ifindex=2, mtu=1500):
    """net/<ifname> of the device at devdir, and its /sys/class/net link.

    link: "up" (carrier 1, operstate up), "down" (carrier 0, operstate down), or "unknown"
    (operstate unknown and no carrier file).
    """
    nd = "%s/net/%s" % (devdir, ifname)
    t.attr(nd + "/address", mac)
    t.attr(nd + "/addr_len", 6)
    t.attr(nd + "/broadcast", "ff:ff:ff:ff:ff:ff")
    t.attr(nd + "/type", 1)
    t.attr(nd + "/mtu", mtu)
    t.attr(nd + "/ifindex", ifindex)
    t.attr(nd + "/speed", speed)
    t.attr(nd + "/duplex", "full" if speed and speed > 0 else "unknown")
    if link == "up":
        t.attr(nd + "/carrier", 1)
        t.attr(nd + "/operstate", "up")
    elif link == "down":
        t.attr(nd + "/carrier", 0)
        t.attr(nd + "/operstate", "down")
    else:
        t.attr(nd + "/operstate", "unknown")
    t.link(nd + "/device", devdir)
    t.link("sys/class/net/" + ifname, nd)


def write_virtual_netdev(t, ifname, mac, bridge=False, ifindex=1):
    nd = "sys/devices/virtual/net/" + ifname
    t.attr(nd + "/address", mac)
    t.attr(nd + "/type", 772 if ifname == "lo" else 1)
    t.attr(nd + "/mtu", 65536 if ifname == "lo" else 1500)
    t.attr(nd + "/ifindex", ifindex)
    t.attr(nd + "/operstate", "unknown" if ifname == "lo" else "up")
    if ifname != "lo":
        t.attr(nd + "/carrier", 1)
        t.attr(nd + "/speed", -1)
    if bridge:
        t.attr(nd + "/bridge/bridge_id", "8000." + mac.replace(":", ""))
        t.attr(nd + "/bridge/stp_state", 1)
    t.link("sys/class/net/" + ifname, nd)


def write_pf(t, parent, pf, ifindex):
    """One SR-IOV PF and its VFs under parent (the root port's directory).

    pf keys: name, pci, vfs (enabled), speed, link, driver (a MODELS key), and optional
    mac, total (sriov_totalvfs), vf_drivers (list, one per VF: a driver name, or "" for
    none; default: every VF bound to the model's VF driver), vf_netdev (default True: VFs
    bound to the model's VF driver get a net/<name>v<N> directory).
    Returns the next free ifindex.
    """
    model = MODELS[pf.get("driver", "i40e")]
    driver = pf.get("driver", "i40e")
    addr = pf["pci"]
    dom, bus, devfn = parse_bdf(addr)
    fn = devfn & 7
    total = pf.get("total", model["total"])
    nvfs = pf.get("vfs", 0)
    if nvfs > total:
        raise ValueError("%s: %d VFs but sriov_totalvfs is %d" % (pf["name"], nvfs, total))
    offset = model["offset"][min(fn, 1)]
    stride = model["stride"]
    devdir = "%s/%s" % (parent, addr)
    write_pci(t, devdir, model["vendor"], model["device"], driver=driver)
    t.attr(devdir + "/sriov_totalvfs", total)
    t.attr(devdir + "/sriov_numvfs", nvfs)
    t.attr(devdir + "/sriov_offset", offset)
    t.attr(devdir + "/sriov_stride", stride)
    t.attr(devdir + "/sriov_vf_device", model["vf_device"][2:])  # printed with %x
    t.attr(devdir + "/sriov_drivers_autoprobe", 1)
    mac = pf.get("mac") or "3c:fd:fe:%02x:%02x:%02x" % (bus, devfn, 0)
    write_netdev(t, devdir, pf["name"], mac, pf.get("speed", -1), pf.get("link", "up"), ifindex)
    ifindex += 1
    vf_drivers = pf.get("vf_drivers") or [model["vf_driver"]] * nvfs
    for n in range(nvfs):
        vf_devfn = devfn + offset + n * stride
        vf_addr = bdf(dom, bus + (vf_devfn >> 8), vf_devfn & 0xff)
        vf_dir = "%s/%s" % (parent, vf_addr)
        vdrv = vf_drivers[n] if n < len(vf_drivers) else ""
        write_pci(t, vf_dir, model["vendor"], model["vf_device"], driver=vdrv or None)
        t.link(vf_dir + "/physfn", devdir)
        t.link(devdir + "/virtfn%d" % n, vf_dir)
        if vdrv == model["vf_driver"] and pf.get("vf_netdev", True):
            vf_mac = "02:%02x:%02x:%02x:%02x:%02x" % (bus, devfn, n >> 8, n & 0xff, 0x5e)
            write_netdev(t, vf_dir, "%sv%d" % (pf["name"], n), vf_mac, pf.get("speed", -1),
                         pf.get("link", "up"), ifindex)
            ifindex += 1
    return ifindex


def make_tree(root, pfs, cores=32, threads=2, packages=2, memory_gib=256, lo=True):
    """Writes a server with the SR-IOV PFs pfs under root and returns root.

    pfs: list of dicts with name, pci ("0000:BB:DD.F"), vfs (enabled VFs), speed (Mb/s,
    -1 unknown), link ("up"|"down"|"unknown"), driver (a MODELS key: ixgbe, i40e, ice,
    mlx5_core); see write_pf for the optional keys. Each PF bus gets its own root port
    0000:BB-1:00.0 under pci0000:BB-1 (as on Xeon Scalable), so two functions of one card
    share a bus. cores are physical cores in total, over packages sockets with threads
    SMT threads each; memory_gib is MemTotal.
    """
    t = Tree(root)
    if cores % packages:
        raise ValueError("cores must be a multiple of packages")
    write_meminfo(t, memory_gib * 1024 * 1024)
    write_cpus(t, packages, cores // packages, threads)
    ifindex = 1
    if lo:
        write_virtual_netdev(t, "lo", "00:00:00:00:00:00", ifindex=ifindex)
        ifindex += 1
    for pf in pfs:
        dom, bus, _ = parse_bdf(pf["pci"])
        if bus == 0:
            raise ValueError("%s: put the PF on a bus behind a root port (bus > 0)" % pf["name"])
        port = bdf(dom, bus - 1, 0)
        parent = "sys/devices/pci%04x:%02x/%s" % (dom, bus - 1, port)
        write_bridge(t, parent)
        ifindex = write_pf(t, parent, pf, ifindex)
    return t.root


def parse_pf(spec, index):
    """NAME:VFS[:SPEED[:LINK[:DRIVER[:PCI]]]] -> a pf dict; PCI defaults to a bus per port pair."""
    parts = spec.split(":", 5)
    if len(parts) < 2:
        raise argparse.ArgumentTypeError("--pf wants NAME:VFS[:SPEED[:LINK[:DRIVER[:PCI]]]]")
    pf = {"name": parts[0], "vfs": int(parts[1]),
          "speed": int(parts[2]) if len(parts) > 2 and parts[2] else 10000,
          "link": parts[3] if len(parts) > 3 and parts[3] else "up",
          "driver": parts[4] if len(parts) > 4 and parts[4] else "i40e"}
    pf["pci"] = parts[5] if len(parts) > 5 else "0000:%02x:00.%d" % (0x3b + 2 * (index // 2),
                                                                      index % 2)
    if pf["driver"] not in MODELS:
        raise argparse.ArgumentTypeError("unknown driver %s (known: %s)" %
                                         (pf["driver"], ", ".join(sorted(MODELS))))
    return pf


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write a sysfs/proc tree with SR-IOV NICs.")
    ap.add_argument("root")
    ap.add_argument("--pf", action="append", default=[],
                    help="NAME:VFS[:SPEED[:LINK[:DRIVER[:PCI]]]], e.g. ens1f0:64:10000")
    ap.add_argument("--cores", type=int, default=32, help="physical cores (default 32)")
    ap.add_argument("--packages", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-gib", type=int, default=256)
    a = ap.parse_args(argv)
    try:
        pfs = [parse_pf(s, i) for i, s in enumerate(a.pf)]
        make_tree(a.root, pfs, cores=a.cores, threads=a.threads, packages=a.packages,
                  memory_gib=a.memory_gib)
    except (ValueError, argparse.ArgumentTypeError) as e:
        print("sriov_tree: %s" % e, file=sys.stderr)
        return 2
    print(os.path.abspath(a.root))
    return 0


if __name__ == "__main__":
    sys.exit(main())

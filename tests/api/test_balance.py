"""Resource balancing (issue 8): on a test-driver fleet, a pack pool loads one server's memory;
the balancer live-migrates desktops (the fleet simulates the migration: the source drops the
domain, the destination defines and starts it) until that server is under its threshold. The
spread between the most and the least loaded server shrinks, and no desktop moves twice within
the hold time. Then a real live migration between two libvirt connections on this machine when
the environment allows it."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bictest import AdminTestCase, AgentProcess, ensure_libvirtd, unique, wait_until  # noqa: E402
from test_pools import Fleet, desktops_of, published_image, spec, topology  # noqa: E402


def spread(plan):
    loads = [s["load_pct"] for s in plan["servers"] if s["usable"]]
    return max(loads) - min(loads)


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class BalanceOnFleet(AdminTestCase):
    """3 test-driver servers of 257 GiB; 12 desktops of 16 GiB packed on one of them."""

    N = 3

    def setUp(self):
        self.bb, (self.module,) = topology(self.admin, ("m1",))
        token = self.admin.post("/api/v1/enrollment-tokens", {"building_block_id": self.bb["id"]}).json["token"]
        self.fleet = Fleet(self.admin, token, self.N).start()

    def tearDown(self):
        self.fleet.stop(signal.SIGKILL)
        reports = self.fleet.sanitizer_reports()
        self.fleet.cleanup()
        self.assertEqual(reports, [], "sanitizer reports from bic-agent --fleet")

    def plan(self):
        r = self.admin.get("/api/v1/modules/%d/automation/plan" % self.module["id"])
        self.assertEqual(r.status, 200, r)
        return r.json

    def test_a_loaded_server_sheds_desktops_and_none_moves_back(self):
        ok = wait_until(lambda: len([s for s in self.admin.get("/api/v1/servers?module=%d" % self.module["id"])
                                     .json["items"] if s["state"] == "online"]) == self.N, timeout=30)
        self.assertTrue(ok, self.fleet.log_text()[-3000:])
        image_id, _ = published_image(self.admin, "bimg")
        r = self.admin.post("/api/v1/pools", {
            "name": unique("bp"), "type": "floating", "image_id": image_id,
            "spec_id": spec(self.admin, memory_mib=16384), "min_size": 12, "max_size": 12,
            "placement": "pack", "name_pattern": unique("bp").replace("_", "-") + "-{n:2}",
            "modules": [self.module["id"]]})
        self.assertEqual(r.status, 201, r)
        pid = r.json["id"]
        ok = wait_until(lambda: (lambda ds: len(ds) == 12 and all(d["phase"] == "ready" and d["state"] == "running"
                                                                   and d["present"] for d in ds))(
            desktops_of(self.admin, pid)), timeout=90, step=0.5)
        self.assertTrue(ok, desktops_of(self.admin, pid))
        where = {d["id"]: d["server_id"] for d in desktops_of(self.admin, pid)}
        self.assertEqual(len(set(where.values())), 1, where)  # pack: all on one server
        loaded = next(iter(where.values()))
        wait_until(lambda: spread(self.plan()["balance"]) > 60, timeout=10)
        before = self.plan()["balance"]
        s0 = spread(before)
        self.assertGreater(s0, 60, before)

        # dry run: the moves are planned and recorded, nothing moves
        settings = {"enabled": True, "dry_run": True, "cpu_high_pct": 95, "mem_high_pct": 50, "hold_s": 2,
                    "min_gain_pct": 5, "max_concurrent": 2, "move_hold_s": 600}
        self.assertEqual(self.admin.put("/api/v1/modules/%d/automation/balance" % self.module["id"],
                                        settings).status, 200)
        ok = wait_until(lambda: [a for a in self.plan()["recent"]["balance"] if a["state"] == "planned"],
                        timeout=30, step=0.5)
        self.assertTrue(ok, self.plan())
        planned = self.plan()["recent"]["balance"]
        self.assertTrue(all(a["dry_run"] and a["action"] == "migrate" and a["server_id"] == loaded
                            for a in planned), planned)
        self.assertEqual({d["id"]: d["server_id"] for d in desktops_of(self.admin, pid)}, where)
        self.assertEqual([t for t in self.admin.get("/api/v1/tasks?limit=500").json["items"]
                          if t["type"] == "desktop.migrate"], [])

        # for real
        t0 = time.monotonic()
        self.assertEqual(self.admin.put("/api/v1/modules/%d/automation/balance" % self.module["id"],
                                        {"dry_run": False}).status, 200)

        def settled():
            p = self.plan()["balance"]
            return p if p["in_flight"] == 0 and not [s for s in p["servers"] if s["over"]] else None
        after = wait_until(settled, timeout=90, step=0.5)
        self.assertTrue(after, (self.plan(), self.fleet.log_text()[-3000:]))
        after = self.plan()["balance"]
        s1 = spread(after)
        moves = [a for a in self.admin.get("/api/v1/modules/%d/automation/plan" % self.module["id"]).json
                 ["recent"]["balance"] if a["action"] == "migrate" and not a["dry_run"]]
        print("# balance: spread %.1f -> %.1f points in %.1f s with %d live migrations (max 2 at once)"
              % (s0, s1, time.monotonic() - t0, len(moves)))
        self.assertLess(s1, s0 / 2, (before, after))
        self.assertGreaterEqual(len(moves), 4, moves)
        self.assertTrue(all(a["state"] == "done" for a in moves), moves)
        moved = [a["desktop_id"] for a in moves]
        self.assertEqual(len(moved), len(set(moved)), "a desktop was moved twice within the hold time")
        self.assertTrue(all(a["server_id"] == loaded and a["target_server_id"] != loaded for a in moves), moves)
        # the database follows the domains: each moved desktop is on its target, running and present
        ds = {d["id"]: d for d in desktops_of(self.admin, pid)}
        self.assertEqual(len(ds), 12)
        for a in moves:
            d = ds[a["desktop_id"]]
            self.assertEqual((d["server_id"], d["state"], d["present"], d["phase"]),
                             (a["target_server_id"], "running", True, "ready"), d)
        tasks = [t for t in self.admin.get("/api/v1/tasks?limit=500").json["items"] if t["type"] == "desktop.migrate"]
        self.assertEqual(len(tasks), len(moves))
        for t in tasks:
            full = self.admin.get("/api/v1/tasks/%d" % t["id"]).json
            self.assertEqual((full["state"], full["result"]["mode"], full["result"]["state"]),
                             ("succeeded", "simulated", "running"), full)
        audit = self.admin.get("/api/v1/audit?action=balance.migrate&limit=100").json["items"]
        self.assertGreaterEqual(len(audit), len(moves))
        # no flapping: later passes move nothing back (the hold time), and the pool stays whole
        time.sleep(8)
        again = [a for a in self.plan()["recent"]["balance"] if a["action"] == "migrate" and not a["dry_run"]]
        self.assertEqual(len(again), len(moves), again)
        self.assertEqual({d["id"]: d["server_id"] for d in desktops_of(self.admin, pid)},
                         {**where, **{a["desktop_id"]: a["target_server_id"] for a in moves}})
        self.assertEqual(self.admin.get("/api/v1/pools/%d" % pid).json["counts"]["ready"], 12)


DOMAIN = """<domain type='qemu'>
  <name>%s</name><uuid>%s</uuid>
  <memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><serial type='pty'/><console type='pty'/></devices>
</domain>"""


def host_uuid(uri):
    r = subprocess.run(["virsh", "-c", uri, "capabilities"], capture_output=True, text=True, timeout=30)
    m = re.search(r"<host>\s*<uuid>([^<]+)</uuid>", r.stdout)
    return m.group(1) if m else None, r.stderr.strip()


class RealLiveMigration(unittest.TestCase):
    """virDomainMigrate3 (what bic-agent's desktop.migrate calls, here through virsh) of a diskless
    TCG domain from qemu:///system to a second libvirt daemon: BIC_MIGRATION_DEST_URI (for example
    qemu+ssh://other-host/system), else qemu:///session. Skipped, with the reason, when the
    destination is this same daemon or host (libvirt refuses to migrate a guest to its own host)."""

    def test_live_migration_between_two_libvirt_connections(self):
        ok, started, why = ensure_libvirtd()
        if not ok:
            self.skipTest("no qemu:///system here: " + why)
        dest = os.environ.get("BIC_MIGRATION_DEST_URI", "qemu:///session")
        name, u = unique("bicmig"), str(uuid.uuid4())
        d = tempfile.mkdtemp(prefix="bic-mig-")
        xml = os.path.join(d, "dom.xml")
        with open(xml, "w") as f:
            f.write(DOMAIN % (name, u))

        def virsh(uri, *args, timeout=60):
            return subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True, timeout=timeout)
        try:
            src_uuid, err = host_uuid("qemu:///system")
            dst_uuid, derr = host_uuid(dest)
            if not dst_uuid:
                reason = "the destination %s does not answer: %s" % (dest, derr)
                print("# " + reason)
                self.skipTest(reason)
            if dst_uuid == src_uuid:
                reason = ("%s is served by the same libvirt daemon/host as qemu:///system (host UUID %s; "
                          "as root, qemu:///session is the system daemon), and libvirt refuses to migrate a "
                          "guest to its own host; a second daemon on this machine would share "
                          "/run/libvirt/qemu with the first. Set BIC_MIGRATION_DEST_URI to another host's "
                          "libvirt to run this test" % (dest, src_uuid))
                print("# " + reason)
                self.skipTest(reason)
            r = virsh("qemu:///system", "create", xml)
            if r.returncode != 0:
                self.skipTest("cannot start a diskless qemu domain on qemu:///system: " + r.stderr.strip())
            t0 = time.monotonic()
            r = virsh("qemu:///system", "migrate", "--live", "--persistent", "--undefinesource", name, dest,
                      timeout=180)
            self.assertEqual(r.returncode, 0, r.stderr)
            took = time.monotonic() - t0
            self.assertEqual(virsh(dest, "domstate", name).stdout.strip(), "running")
            self.assertNotEqual(virsh("qemu:///system", "domstate", name).returncode, 0)
            print("# real live migration qemu:///system -> %s in %.1f s" % (dest, took))
        finally:
            virsh("qemu:///system", "destroy", name)
            virsh(dest, "destroy", name)
            virsh(dest, "undefine", name)
            shutil.rmtree(d, ignore_errors=True)
            if started:  # the libvirtd this test started, by its pid file
                try:
                    with open("/run/libvirtd.pid") as f:
                        os.kill(int(f.read().strip()), signal.SIGTERM)
                except (OSError, ValueError):
                    pass

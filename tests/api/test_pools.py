"""Desktop pools (platform groups): the API, the leader's reconciler with real bic-agents, a pool of
200 desktops on a test-driver fleet across two modules, and real linked clones on qemu:///system."""
import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import (REPO, AdminTestCase, AgentProcess, Client, boot_counter, ensure_libvirtd,  # noqa: E402
                     make_golden_qcow2, make_user, stop_libvirtd, unique, wait_until)

SYSROOT = os.path.join(REPO, "tests", "fixtures", "sysroot-2socket")  # 8 cores: 48 desktops a server


def published_image(admin, tag="img"):
    """An image with a published version: a bootable qcow2 registered from the image store."""
    store = os.path.join(admin.var, "images")
    os.makedirs(store, exist_ok=True)
    name = unique(tag) + ".qcow2"
    sha = make_golden_qcow2(os.path.join(store, name))
    img = admin.post("/api/v1/images", {"name": unique(tag)})
    assert img.status == 201, img
    v = admin.post("/api/v1/images/%d/versions" % img.json["id"], {"path": name})
    assert v.status == 201, v
    assert v.json["sha256"] == sha, v
    p = admin.post("/api/v1/image-versions/%d/publish" % v.json["id"])
    assert p.status == 200, p
    return img.json["id"], v.json


def spec(admin, **kw):
    body = {"name": unique("spec"), "vcpus": 1, "memory_mib": 256, "disk_gib": 1, "nic_type": "virtio"}
    body.update(kw)
    r = admin.post("/api/v1/specs", body)
    assert r.status == 201, r
    return r.json["id"]


def topology(admin, modules=("m1",), max_servers=10):
    bb = admin.post("/api/v1/building-blocks", {"name": unique("bb")}).json
    mods = [admin.post("/api/v1/building-blocks/%d/modules" % bb["id"],
                       {"name": m, "max_servers": max_servers}).json for m in modules]
    return bb, mods


def desktops_of(admin, pool_id):
    out, after = [], 0
    while True:
        r = admin.get("/api/v1/pools/%d/desktops?limit=1000&after=%d" % (pool_id, after))
        assert r.status == 200, r
        out += r.json["items"]
        if not r.json["next_after"]:
            return out
        after = r.json["next_after"]


class PoolApi(AdminTestCase):
    """The pool API without agents: validation, authorisation, entitlements, pausing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.image_id, cls.version = published_image(cls.admin)
        cls.spec_id = spec(cls.admin)
        cls.bb, cls.mods = topology(cls.admin, ("m1", "m2"))

    def body(self, **kw):
        b = {"name": unique("pool"), "type": "floating", "image_id": self.image_id, "spec_id": self.spec_id,
             "min_size": 0, "max_size": 5, "name_pattern": "t-{n:3}", "modules": [self.mods[0]["id"]]}
        b.update(kw)
        return b

    def test_create_get_list_update_and_counts(self):
        r = self.admin.post("/api/v1/pools", self.body(description="d", spare=1, placement="pack"))
        self.assertEqual(r.status, 201, r)
        p = r.json
        self.assertEqual(r.header("location"), "/api/v1/pools/%d" % p["id"])
        self.assertEqual((p["type"], p["placement"], p["state"], p["spare"]), ("floating", "pack", "active", 1))
        self.assertEqual([m["id"] for m in p["modules"]], [self.mods[0]["id"]])
        self.assertEqual(p["counts"]["total"], 0)
        r = self.admin.patch("/api/v1/pools/%d" % p["id"], {"max_size": 9, "modules": [m["id"] for m in self.mods]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["max_size"], 9)
        self.assertEqual(len(r.json["modules"]), 2)
        listed = self.admin.get("/api/v1/pools?q=%s" % p["name"]).json["items"]
        self.assertEqual([x["id"] for x in listed], [p["id"]])
        audit = self.admin.get("/api/v1/audit?target_type=pool&target_id=%d" % p["id"]).json["items"]
        # the admin's two changes (the reconciler may add pool.placement_failed: m1 has no servers)
        self.assertEqual(sorted(a["action"] for a in audit if a["action"] != "pool.placement_failed"),
                         ["pool.create", "pool.update"])

    def test_validation(self):
        with self.cases() as case:
            for label, kw, code in [
                ("pattern without n", {"name_pattern": "sales"}, 422),
                ("two n", {"name_pattern": "a{n}b{n}"}, 422),
                ("bad width", {"name_pattern": "a-{n:9}"}, 422),
                ("bad chars", {"name_pattern": "a_{n}"}, 422),
                ("min over max", {"min_size": 6, "max_size": 5}, 422),
                ("spare over max", {"spare": 6}, 422),
                ("too big", {"max_size": 10001}, 422),
                ("bad type", {"type": "shared"}, 422),
                ("no image", {"image_id": 999999}, 422),
                ("no spec", {"spec_id": 999999}, 422),
                ("no module", {"modules": [999999]}, 422),
                ("empty modules", {"modules": []}, 422),
                ("unknown key", {"colour": "red"}, 422),
            ]:
                with case(label=label):
                    r = self.admin.post("/api/v1/pools", self.body(**kw))
                    self.assertIn(r.status, (code, 400), r)
                    self.assertIn(r.json["error"]["code"], ("validation_failed", "bad_json"), r)
        # nothing half-written
        self.assertEqual(self.admin.get("/api/v1/pools?q=pool_no_such").json["items"], [])

    def test_unpublished_image_is_refused(self):
        img = self.admin.post("/api/v1/images", {"name": unique("bare")}).json
        r = self.admin.post("/api/v1/pools", self.body(image_id=img["id"]))
        self.assertJsonError(r, 422, "validation_failed")
        self.assertIn("published", r.json["error"]["message"])

    def test_duplicate_name_conflicts(self):
        b = self.body()
        self.assertEqual(self.admin.post("/api/v1/pools", b).status, 201)
        self.assertJsonError(self.admin.post("/api/v1/pools", b), 409, "conflict")

    def test_placement_preview_names_the_limit(self):
        p = self.admin.post("/api/v1/pools", self.body()).json
        r = self.admin.get("/api/v1/pools/%d/placement" % p["id"])
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json["fits"])
        self.assertIn("module m1", r.json["reason"])

    def test_entitlements(self):
        p = self.admin.post("/api/v1/pools", self.body()).json
        u, _ = make_user(self.admin)
        g = self.admin.post("/api/v1/groups", {"name": unique("g")}).json
        base = "/api/v1/pools/%d/entitlements" % p["id"]
        self.assertEqual(self.admin.put(base + "/users/%d" % u["id"]).status, 204)
        self.assertEqual(self.admin.put(base + "/users/%d" % u["id"]).status, 204)  # idempotent
        self.assertEqual(self.admin.put(base + "/groups/%d" % g["id"]).status, 204)
        self.assertJsonError(self.admin.put(base + "/users/999999"), 404, "not_found")
        items = self.admin.get(base).json["items"]
        self.assertEqual(sorted(((i["username"], i["group_name"]) for i in items), key=str),
                         sorted([(u["username"], None), (None, g["name"])], key=str))
        self.assertEqual(self.admin.delete(base + "/users/%d" % u["id"]).status, 204)
        self.assertEqual(len(self.admin.get(base).json["items"]), 1)
        acts = [a["action"] for a in self.admin.get("/api/v1/audit?target_type=pool&target_id=%d" % p["id"]).json["items"]]
        self.assertEqual(acts.count("pool.entitle"), 2)
        self.assertEqual(acts.count("pool.unentitle"), 1)

    def test_pause_resume_delete(self):
        p = self.admin.post("/api/v1/pools", self.body()).json
        r = self.admin.post("/api/v1/pools/%d/pause" % p["id"], {"reason": "maintenance window"})
        self.assertEqual((r.status, r.json["state"], r.json["pause_reason"]), (200, "paused", "maintenance window"))
        r = self.admin.post("/api/v1/pools/%d/resume" % p["id"])
        self.assertEqual((r.status, r.json["state"], r.json["failures"]), (200, "active", 0))
        r = self.admin.delete("/api/v1/pools/%d" % p["id"])
        self.assertEqual((r.status, r.json["state"]), (202, "deleting"))
        self.assertJsonError(self.admin.patch("/api/v1/pools/%d" % p["id"], {"max_size": 3}), 409, "conflict")
        # an empty pool is removed by the reconciler
        gone = wait_until(lambda: self.admin.get("/api/v1/pools/%d" % p["id"]).status == 404, timeout=10)
        self.assertTrue(gone)

    def test_roles(self):
        p = self.admin.post("/api/v1/pools", self.body()).json
        op, pw = make_user(self.admin, role="operator")
        c = Client()
        c.login(op["username"], pw)
        self.assertEqual(c.get("/api/v1/pools/%d" % p["id"]).status, 200)
        self.assertEqual(c.get("/api/v1/desktops").status, 200)
        self.assertJsonError(c.post("/api/v1/pools", self.body()), 403, "forbidden")
        self.assertJsonError(c.patch("/api/v1/pools/%d" % p["id"], {"max_size": 1}), 403, "forbidden")
        u, pw = make_user(self.admin)
        c = Client()
        c.login(u["username"], pw)
        self.assertJsonError(c.get("/api/v1/pools"), 403, "forbidden")

    def test_unmanaged_desktop_actions_refused(self):
        self.assertJsonError(self.admin.post("/api/v1/desktops/999999/refresh"), 404, "not_found")
        self.assertJsonError(self.admin.get("/api/v1/desktops?phase=flying"), 422, "validation_failed")


class Fleet(AgentProcess):
    def __init__(self, admin, token, n, d=0):
        self.n, self.d = n, d
        super().__init__(admin, token, "bic-pool-fleet-", "fleet.log",
                         BIC_AGENT_MACHINE_ID=unique("pf-machine-"), BIC_AGENT_HOSTNAME=unique("pf"),
                         BIC_AGENT_ROOT_PREFIX=SYSROOT)

    def args(self):
        return ["--fleet", str(self.n), "--desktops", str(self.d), "run"]


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class PoolOnFleet(AdminTestCase):
    """200 desktops on 6 test-driver servers (8 cores each: 48 desktops a server) in 2 modules."""

    def setUp(self):
        self.bb, self.mods = topology(self.admin, ("m1", "m2"), max_servers=3)
        self.token = self.admin.post("/api/v1/enrollment-tokens", {"building_block_id": self.bb["id"]}).json["token"]
        self.fleet = Fleet(self.admin, self.token, 6).start()
        self.image_id, self.version = published_image(self.admin)
        self.spec_id = spec(self.admin, memory_mib=2048, vcpus=2)

    def tearDown(self):
        self.fleet.stop(signal.SIGKILL)
        reports = self.fleet.sanitizer_reports()
        self.fleet.cleanup()
        self.assertEqual(reports, [], "sanitizer reports from bic-agent --fleet")

    def servers(self):
        out = []
        for m in self.mods:
            out += self.admin.get("/api/v1/servers?module=%d" % m["id"]).json["items"]
        return out

    def test_200_desktops_across_two_modules_then_limits_then_delete(self):
        ok = wait_until(lambda: len([s for s in self.servers() if s["state"] == "online"]) == 6, timeout=30)
        self.assertTrue(ok, self.fleet.log_text()[-3000:])
        r = self.admin.post("/api/v1/pools", {
            "name": unique("fleetpool"), "type": "floating", "image_id": self.image_id, "spec_id": self.spec_id,
            "min_size": 200, "max_size": 400, "name_pattern": "fp-{n:3}", "placement": "spread",
            "modules": [m["id"] for m in self.mods]})
        self.assertEqual(r.status, 201, r)
        pid = r.json["id"]

        def ready():
            p = self.admin.get("/api/v1/pools/%d" % pid).json
            return p if p["counts"]["ready"] == 200 else None
        p = wait_until(ready, timeout=120, step=0.5)
        self.assertIsNotNone(p, (self.admin.get("/api/v1/pools/%d" % pid).json, self.fleet.log_text()[-3000:]))
        ds = desktops_of(self.admin, pid)
        self.assertEqual(len(ds), 200)
        self.assertEqual(sorted(d["name"] for d in ds), ["fp-%03d" % n for n in range(1, 201)])
        # every desktop's domain is reported by its server, running
        self.assertTrue(wait_until(lambda: all(d["present"] and d["state"] == "running"
                                               for d in desktops_of(self.admin, pid)), timeout=30))
        per_server = {}
        for d in ds:
            per_server[d["server_id"]] = per_server.get(d["server_id"], 0) + 1
        self.assertEqual(len(per_server), 6, per_server)  # spread uses every server
        self.assertLessEqual(max(per_server.values()), 48, per_server)  # 6 per core x 8 cores
        self.assertLessEqual(max(per_server.values()) - min(per_server.values()), 1, per_server)
        # the image was fetched once per server and verified
        v = self.admin.get("/api/v1/image-versions/%d" % self.version["id"]).json
        self.assertEqual(v["replicas"]["ready"], 6, v)

        # publishing a new version: a refreshed desktop moves onto it (the image is fetched first)
        store = os.path.join(self.admin.var, "images")
        name = unique("v2") + ".qcow2"
        make_golden_qcow2(os.path.join(store, name), size_mib=32)
        v2 = self.admin.post("/api/v1/images/%d/versions" % self.image_id, {"path": name}).json
        self.assertEqual(self.admin.post("/api/v1/image-versions/%d/publish" % v2["id"]).status, 200)
        d0 = ds[0]
        self.assertEqual(d0["image_version_id"], self.version["id"])
        self.assertEqual(self.admin.post("/api/v1/desktops/%d/refresh" % d0["id"]).status, 202)
        moved = wait_until(lambda: (lambda x: x if x["phase"] == "ready" and x["image_version_id"] == v2["id"] else None)(
            self.admin.get("/api/v1/desktops/%d" % d0["id"]).json), timeout=30, step=0.2)
        self.assertIsNotNone(moved, self.admin.get("/api/v1/desktops/%d" % d0["id"]).json)
        self.assertEqual(self.admin.get("/api/v1/desktops/%d" % ds[1]["id"]).json["image_version_id"],
                         self.version["id"], "only the refreshed desktop moved")

        # 6 servers x 48 = 288: asking for 300 stops at the core rule, named in the API and the audit log
        r = self.admin.patch("/api/v1/pools/%d" % pid, {"min_size": 300})
        self.assertEqual(r.status, 200, r)
        p = wait_until(lambda: (lambda x: x if x["last_error"] else None)(
            self.admin.get("/api/v1/pools/%d" % pid).json), timeout=60, step=0.5)
        self.assertIsNotNone(p)
        self.assertRegex(p["last_error"], r"module m1: all 3 servers at 6 desktops per core")
        self.assertRegex(p["last_error"], r"module m2: all 3 servers at 6 desktops per core")
        self.assertEqual(p["counts"]["total"], 288)
        audit = self.admin.get("/api/v1/audit?action=pool.placement_failed&target_id=%d" % pid).json["items"]
        self.assertTrue(audit and "6 desktops per core" in audit[0]["summary"]["reason"], audit)

        # trimming back and deleting: every desktop's domain goes away on its server
        r = self.admin.delete("/api/v1/pools/%d" % pid)
        self.assertEqual(r.status, 202, r)
        gone = wait_until(lambda: self.admin.get("/api/v1/pools/%d" % pid).status == 404, timeout=120, step=0.5)
        self.assertTrue(gone, self.admin.get("/api/v1/pools/%d" % pid).json)
        names = set()
        for s in self.servers():
            names |= {d["name"] for d in self.admin.get("/api/v1/servers/%d/desktops?limit=1000" % s["id"]).json["items"]}
        self.assertFalse([n for n in names if n.startswith("fp-")], names)


def virsh(*args):
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True)


class QemuAgent(AgentProcess):
    def __init__(self, admin, token, pool_dir):
        super().__init__(admin, token, "bic-pool-qemu-", "agent.log", BIC_AGENT_LIBVIRT_URI="qemu:///system",
                         BIC_AGENT_MACHINE_ID=unique("pq-machine-"), BIC_AGENT_HOSTNAME=unique("pq"),
                         BIC_AGENT_STORAGE_POOL=os.path.basename(pool_dir), BIC_AGENT_IMAGE_DIR=pool_dir,
                         # this machine's KVM (a PVM variant) runs firmware but aborts QEMU on guest
                         # CPU setup (MSR 0x10a), so real desktops use TCG here (see ../shared/notes)
                         BIC_AGENT_DOMAIN_TYPE=os.environ.get("BIC_TEST_DOMAIN_TYPE", "qemu"))

    def args(self):
        return ["run"]


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class PoolOnQemu(AdminTestCase):
    """A 3-desktop pool of real linked clones on qemu:///system (KVM where usable, TCG otherwise)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ok, cls.started, why = ensure_libvirtd()
        if not ok:
            raise unittest.SkipTest(why)

    @classmethod
    def tearDownClass(cls):
        if cls.started:
            stop_libvirtd()
        super().tearDownClass()

    def setUp(self):
        self.bb, self.mods = topology(self.admin, ("m1",))
        self.token = self.admin.post("/api/v1/enrollment-tokens", {"building_block_id": self.bb["id"]}).json["token"]
        self.pool_name = unique("bicpool").replace("_", "-")
        self.pool_dir = os.path.join("/var/lib/bic", self.pool_name)
        self.agent = QemuAgent(self.admin, self.token, self.pool_dir).start()
        self.image_id, self.version = published_image(self.admin, "golden")
        self.spec_id = spec(self.admin, memory_mib=256, vcpus=1, disk_gib=1)

    def tearDown(self):
        self.agent.stop()
        reports = self.agent.sanitizer_reports()
        log = self.agent.log_text()
        self.agent.cleanup()
        # leave nothing behind even when the test failed
        for line in virsh("list", "--all", "--name").stdout.split():
            if line.startswith("pq-" + self.pool_name[-6:]):
                virsh("destroy", line)
                virsh("undefine", line)
        virsh("pool-destroy", self.pool_name)
        virsh("pool-undefine", self.pool_name)
        subprocess.run(["rm", "-rf", self.pool_dir])
        self.assertEqual(reports, [], "sanitizer reports from bic-agent:\n" + log[-2000:])

    def test_three_linked_clones_boot_refresh_and_delete_without_leftovers(self):
        prefix = "pq-" + self.pool_name[-6:] + "-"
        r = self.admin.post("/api/v1/pools", {
            "name": unique("qpool"), "type": "floating", "image_id": self.image_id, "spec_id": self.spec_id,
            "min_size": 3, "max_size": 3, "name_pattern": prefix + "{n:2}", "modules": [self.mods[0]["id"]]})
        self.assertEqual(r.status, 201, r)
        pid = r.json["id"]
        ready = wait_until(lambda: self.admin.get("/api/v1/pools/%d" % pid).json["counts"]["ready"] == 3,
                           timeout=90, step=0.5)
        self.assertTrue(ready, (desktops_of(self.admin, pid), self.agent.log_text()[-3000:]))
        ds = desktops_of(self.admin, pid)
        golden = None
        for d in ds:
            self.assertEqual(virsh("domstate", d["uuid"]).stdout.strip(), "running", d)
            xml = virsh("dumpxml", d["uuid"]).stdout
            self.assertIn("websocket=", xml)
            disk = re.search(r"<source file='([^']+)'", xml).group(1)
            chain = subprocess.run(["qemu-img", "info", "-U", "--backing-chain", disk],
                                   capture_output=True, text=True).stdout
            m = re.search(r"backing file: (\S+)", chain)
            self.assertIsNotNone(m, chain)
            golden = golden or m.group(1)
            self.assertEqual(m.group(1), golden, "every clone has the same golden backing file")
            self.assertTrue(os.path.dirname(disk) == self.pool_dir, disk)
            # the boot sector ran from the golden image and wrote its counter into the overlay
            self.assertTrue(wait_until(lambda: boot_counter(disk) == 1, timeout=60, step=1),
                            "desktop %s did not boot" % d["name"])
        self.assertEqual(boot_counter(golden), 0, "the golden image was written to")

        # a cold restart boots the same overlay again: the counter goes to 2
        d0 = ds[0]
        disk0 = re.search(r"<source file='([^']+)'", virsh("dumpxml", d0["uuid"]).stdout).group(1)
        for op in ("domain.destroy", "domain.start"):
            t = self.admin.post("/api/v1/servers/%d/tasks" % d0["server_id"], {"type": op, "params": {"uuid": d0["uuid"]}})
            self.assertEqual(t.status, 202, t)
            self.assertTrue(wait_until(lambda: self.admin.get("/api/v1/tasks/%d" % t.json["id"]).json["state"]
                                       == "succeeded", timeout=30, step=0.2), op)
        self.assertTrue(wait_until(lambda: boot_counter(disk0) == 2, timeout=60, step=1))
        # refresh: a fresh overlay on the golden image, so the first boot counts 1 again
        r = self.admin.post("/api/v1/desktops/%d/refresh" % d0["id"])
        self.assertEqual((r.status, r.json["phase"]), (202, "refreshing"), r)
        again = wait_until(lambda: self.admin.get("/api/v1/desktops/%d" % d0["id"]).json["phase"] == "ready",
                           timeout=60, step=0.5)
        self.assertTrue(again, self.admin.get("/api/v1/desktops/%d" % d0["id"]).json)
        self.assertTrue(wait_until(lambda: boot_counter(disk0) == 1, timeout=60, step=1),
                        "the refreshed desktop did not start from a fresh overlay")
        self.assertEqual(boot_counter(ds[1]["uuid"] and re.search(r"<source file='([^']+)'", virsh(
            "dumpxml", ds[1]["uuid"]).stdout).group(1)), 1, "refresh touched another desktop")

        # deleting the pool leaves no domain and no volume (checked with libvirt)
        vols_before = virsh("vol-list", self.pool_name).stdout
        self.assertEqual(len(re.findall(r"^\s*bic-desk-\S+\.qcow2\s", vols_before, re.M)), 3, vols_before)
        self.assertEqual(self.admin.delete("/api/v1/pools/%d" % pid).status, 202)
        gone = wait_until(lambda: self.admin.get("/api/v1/pools/%d" % pid).status == 404, timeout=60, step=0.5)
        self.assertTrue(gone)
        names = virsh("list", "--all", "--name").stdout.split()
        self.assertFalse([n for n in names if n.startswith(prefix)], names)
        vols = virsh("vol-list", self.pool_name).stdout
        self.assertNotIn("bic-desk-", vols)


if __name__ == "__main__":
    unittest.main()

"""Failure recovery (issue 8, docs/automation.md): the settings, BMC and action-log API, and on
test-driver fleets: a server holding 100 dedicated desktops on shared storage stops (its fleet is
killed) and is fenced through a Redfish BMC the test controls (tests/lib/fake_bmc.py); every
desktop runs on another server within 2 minutes of the last heartbeat, none started twice. A
second server whose BMC refuses stays 'unfenceable' and nothing of it is restarted until an
admin confirms it is off. A suspect server that heartbeats again returns without action; a
fenced one that comes back stays fenced until an admin clears it."""
import calendar
import os
import shutil
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bictest import AdminTestCase, AgentProcess, Client, make_user, unique, wait_until  # noqa: E402
from fake_bmc import FakeBmc  # noqa: E402
from test_pools import SYSROOT, desktops_of, published_image, spec, topology  # noqa: E402


def big_sysroot():
    """sysroot-2socket with 24 more cores (32 in all: the 100-desktop cap, not the core rule, binds)."""
    root = tempfile.mkdtemp(prefix="bic-rec-sysroot-")
    dst = os.path.join(root, "sys")
    shutil.copytree(SYSROOT, dst, symlinks=True)
    cpu = os.path.join(dst, "sys", "devices", "system", "cpu")
    for k in range(24):
        d = os.path.join(cpu, "cpu%d" % (17 + k))
        os.makedirs(os.path.join(d, "topology"))
        with open(os.path.join(d, "online"), "w") as f:
            f.write("1\n")
        with open(os.path.join(d, "topology", "core_id"), "w") as f:
            f.write("%d\n" % (100 + k))
        with open(os.path.join(d, "topology", "physical_package_id"), "w") as f:
            f.write("0\n")
        with open(os.path.join(d, "topology", "thread_siblings_list"), "w") as f:
            f.write("%d\n" % (17 + k))
    return root, dst


class Fleet(AgentProcess):
    def __init__(self, admin, token, n, sysroot, tag):
        self.n = n
        super().__init__(admin, token, "bic-rec-fleet-", "fleet.log",
                         BIC_AGENT_MACHINE_ID=unique("rec-%s-" % tag), BIC_AGENT_HOSTNAME=unique("rec%s" % tag),
                         BIC_AGENT_ROOT_PREFIX=sysroot)

    def args(self):
        return ["--fleet", str(self.n), "--desktops", "0", "run"]


def epoch(t):
    """'2026-01-02T03:04:05.678Z' -> seconds since the epoch."""
    base, _, frac = t.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + (float("0." + frac) if frac else 0.0)


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class RecoveryOnFleet(AdminTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fleets, cls.bmcs = [], []
        cls.bb, (cls.mod,) = topology(cls.admin, ("m1",), max_servers=10)
        cls.mid = cls.mod["id"]
        cls.token = cls.admin.post("/api/v1/enrollment-tokens", {"building_block_id": cls.bb["id"]}).json["token"]
        cls.sysroot_dir, cls.sysroot = big_sysroot()
        cls.image_id, _ = published_image(cls.admin, "recimg")
        cls.spec_id = spec(cls.admin, memory_mib=256, vcpus=1)

    @classmethod
    def tearDownClass(cls):
        reports = []
        for f in cls.fleets:
            f.stop(signal.SIGKILL)
            reports += f.sanitizer_reports()
            f.cleanup()
        for b in cls.bmcs:
            b.stop()
        shutil.rmtree(cls.sysroot_dir, ignore_errors=True)
        super().tearDownClass()
        assert reports == [], reports

    # ---- helpers ----
    def fleet(self, n, sysroot, tag):
        f = Fleet(self.admin, self.token, n, sysroot, tag).start()
        self.fleets.append(f)
        return f

    def servers(self):
        return self.admin.get("/api/v1/servers?module=%d&limit=100" % self.mid).json["items"]

    def wait_new(self, n, known, fleet):
        """Waits until n servers other than known are online; returns their ids."""
        ok = wait_until(lambda: len([s for s in self.servers() if s["state"] == "online" and s["id"] not in known])
                        == n, timeout=60)
        self.assertTrue(ok, fleet.log_text()[-3000:])
        return sorted(s["id"] for s in self.servers() if s["state"] == "online" and s["id"] not in known)

    def rec(self):
        r = self.admin.get("/api/v1/modules/%d/automation/recovery" % self.mid)
        self.assertEqual(r.status, 200, r)
        return r.json

    def rstate(self, sid):
        return [s for s in self.rec()["servers"] if s["id"] == sid][0]

    def actions(self, **q):
        out, before = [], None
        while True:
            path = "/api/v1/modules/%d/automation/actions?loop=recovery&limit=500" % self.mid
            if before:
                path += "&before=%d" % before
            r = self.admin.get(path)
            self.assertEqual(r.status, 200, r)
            out += r.json["items"]
            before = r.json["next_before"]
            if not before:
                break
        return [a for a in out if all(a.get(k) == v for k, v in q.items())]

    def settings(self, **kw):
        r = self.admin.put("/api/v1/modules/%d/automation/recovery" % self.mid, kw)
        self.assertEqual(r.status, 200, r)
        return r.json

    def pool(self, size, type_="dedicated"):
        r = self.admin.post("/api/v1/pools", {
            "name": unique("rp"), "type": type_, "image_id": self.image_id, "spec_id": self.spec_id,
            "min_size": size, "max_size": size, "name_pattern": unique("rp").replace("_", "-") + "-{n:3}",
            "modules": [self.mid]})
        self.assertEqual(r.status, 201, r)
        pid = r.json["id"]
        ok = wait_until(lambda: all(d["phase"] == "ready" and d["state"] == "running" and d["present"]
                                    for d in desktops_of(self.admin, pid)) and len(desktops_of(self.admin, pid)) == size,
                        timeout=120, step=0.5)
        self.assertTrue(ok, self.admin.get("/api/v1/pools/%d" % pid).json)
        return pid

    def create_tasks(self, server_ids):
        """desktop.create tasks sent to these servers: uuid -> [task]."""
        out = {}
        for sid in server_ids:
            before = None
            while True:
                path = "/api/v1/tasks?server=%d&limit=500" % sid + ("&before=%d" % before if before else "")
                r = self.admin.get(path).json
                for t in r["items"]:
                    if t["type"] == "desktop.create":
                        out.setdefault(t["params"]["uuid"], []).append(t)
                before = r["next_before"]
                if not before:
                    break
        return out

    def reported(self, server_ids):
        """What the agents' libvirt reports (their heartbeats): uuid -> [(server, state)]."""
        out = {}
        for sid in server_ids:
            for d in self.admin.get("/api/v1/servers/%d/desktops?limit=1000" % sid).json["items"]:
                if d.get("present", True):
                    out.setdefault(d["uuid"], []).append((sid, d["state"]))
        return out

    # ---- the API ----
    def test_1_api_settings_bmc_roles_and_validation(self):
        r = self.admin.get("/api/v1/modules/%d/automation/recovery" % self.mid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["enabled"], r.json["dry_run"], r.json["fence_fallback"], r.json["shared_storage"],
                          r.json["defaults"]), (True, False, "admin", False, True), r.json)
        self.assertJsonError(self.admin.get("/api/v1/modules/999999/automation/recovery"), 404, "not_found")
        for bad in ({"suspect_grace_s": 0}, {"fence_fallback": "shell"}, {"batch": 5000}, {"enabled": "yes"},
                    {"nope": 1}):
            self.assertEqual(self.admin.put("/api/v1/modules/%d/automation/recovery" % self.mid, bad).status, 422, bad)
        s = self.settings(shared_storage=True, suspect_grace_s=1, fence_timeout_s=5)
        self.assertEqual((s["shared_storage"], s["suspect_grace_s"], s["fence_timeout_s"], s["defaults"]),
                         (True, 1, 5, False), s)
        self.assertEqual(self.admin.get("/api/v1/audit?action=recovery.settings").json["items"][0]["target_id"],
                         str(self.mid))
        # roles: an operator reads, cannot change; a user sees nothing
        op, pw = make_user(self.admin, role="operator")
        oc = Client()
        oc.login(op["username"], pw)
        self.assertEqual(oc.get("/api/v1/modules/%d/automation/recovery" % self.mid).status, 200)
        self.assertEqual(oc.get("/api/v1/modules/%d/automation/actions" % self.mid).status, 200)
        self.assertEqual(oc.put("/api/v1/modules/%d/automation/recovery" % self.mid, {"dry_run": True}).status, 403)
        self.assertEqual(oc.post("/api/v1/servers/1/fence/confirm", {"confirm": True}).status, 403)
        self.assertJsonError(self.admin.get("/api/v1/modules/%d/automation/actions?loop=x" % self.mid), 422,
                             "validation_failed")
        # a server to set a BMC on
        f = self.fleet(1, SYSROOT, "api")
        (sid,) = self.wait_new(1, set(), f)
        base = "/api/v1/servers/%d/bmc" % sid
        for bad in ({"type": "redfish", "address": "ftp://x"}, {"type": "redfish", "address": "http://h/redfish"},
                    {"type": "ipmi", "address": "-oProxy"}, {"type": "ipmi", "address": "h; reboot"},
                    {"type": "ipmi", "address": "h", "user": "-x"}, {"type": "soap"}, {"type": "redfish"}):
            self.assertEqual(self.admin.put(base, bad).status, 422, bad)
        self.assertJsonError(self.admin.put("/api/v1/servers/999999/bmc", {"type": "none"}), 404, "not_found")
        r = self.admin.put(base, {"type": "redfish", "address": "http://127.0.0.1:9", "user": "root",
                                  "password": "bmc-Secret-123"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["bmc"], {"type": "redfish", "address": "http://127.0.0.1:9", "user": "root",
                                         "password_set": True, "ca_cert_set": False})
        self.assertNotIn("bmc-Secret-123", r.body)
        self.assertNotIn("bmc-Secret-123", self.admin.get("/api/v1/modules/%d/automation/recovery" % self.mid).body)
        # the address changes, the password stays
        r = self.admin.put(base, {"type": "redfish", "address": "http://127.0.0.1:10"})
        self.assertEqual((r.json["bmc"]["address"], r.json["bmc"]["password_set"]), ("http://127.0.0.1:10", True))
        r = self.admin.put(base, {"type": "none"})
        self.assertEqual(r.json["bmc"], {"type": "none", "address": "", "user": "", "password_set": False,
                                         "ca_cert_set": False})
        # the admin's decisions need a reason to apply
        self.assertEqual(self.admin.post("/api/v1/servers/%d/fence/confirm" % sid, {"confirm": False}).status, 422)
        self.assertJsonError(self.admin.post("/api/v1/servers/%d/fence/confirm" % sid, {"confirm": True}), 409,
                             "conflict")  # it heartbeats
        self.assertJsonError(self.admin.post("/api/v1/servers/%d/recovery/clear" % sid), 409, "conflict")
        # dry run: the stopped server is suspected and the plan recorded once, nothing executed
        self.settings(dry_run=True)
        f.stop(signal.SIGKILL)
        ok = wait_until(lambda: self.actions(server_id=sid, action="fence"), timeout=30, step=0.3)
        self.assertTrue(ok, self.rstate(sid))
        time.sleep(1.5)
        planned = self.actions(server_id=sid, action="fence")
        self.assertEqual([(x["state"], x["dry_run"]) for x in planned], [("planned", True)], planned)
        self.assertIn("would power", planned[0]["reason"])
        self.assertEqual(self.rstate(sid)["recovery_state"], "suspect")
        self.settings(dry_run=False)
        # without a BMC, a stopped server goes suspect -> fencing -> unfenceable, and stays there
        ok = wait_until(lambda: self.rstate(sid)["recovery_state"] == "unfenceable", timeout=30, step=0.3)
        self.assertTrue(ok, self.rstate(sid))
        self.assertIn("no BMC is configured", self.rstate(sid)["recovery_reason"])
        acts = [(a["action"], a["state"]) for a in reversed(self.actions(server_id=sid))]
        self.assertEqual(acts[:4], [("suspect", "done"), ("fence", "planned"), ("fence", "running"),
                                    ("fence_failed", "failed")], acts)
        # clearing an unfenceable server starts over (it is still offline: suspect again)
        r = self.admin.post("/api/v1/servers/%d/recovery/clear" % sid)
        self.assertEqual((r.status, r.json["recovery_state"]), (200, "none"), r)
        # confirming it: fenced, kept in maintenance
        r = self.admin.post("/api/v1/servers/%d/fence/confirm" % sid, {"confirm": True, "note": "pulled the plug"})
        self.assertEqual((r.status, r.json["recovery_state"], r.json["fence_method"], r.json["maintenance"]),
                         (200, "fenced", "admin", True), r)
        self.assertJsonError(self.admin.post("/api/v1/servers/%d/fence/confirm" % sid, {"confirm": True}), 409,
                             "conflict")
        self.assertJsonError(self.admin.post("/api/v1/servers/%d/recovery/clear" % sid), 409, "conflict")
        ev = self.admin.get("/api/v1/servers/%d/events" % sid).json["items"]
        self.assertTrue(any(e["kind"] == "recovery.fence" and "pulled the plug" in e["detail"] for e in ev), ev)

    # ---- the fleet ----
    def test_2_hundred_desktops_recovered_unfenceable_waits_for_admin(self):
        gone = {s["id"] for s in self.servers()}  # test_1's server (fenced, in maintenance)
        self.settings(shared_storage=True, suspect_grace_s=1, fence_timeout_s=5, fence_fallback="admin")
        # A: 100 dedicated desktops, alone in the module when the pool is made
        fa = self.fleet(1, self.sysroot, "a")
        (a,) = self.wait_new(1, gone, fa)
        p1 = self.pool(100)
        self.assertEqual({d["server_id"] for d in desktops_of(self.admin, p1)}, {a})
        # C: 6 dedicated and 4 floating desktops (A is at its 100-desktop cap)
        fc = self.fleet(1, SYSROOT, "c")
        (c,) = self.wait_new(1, gone | {a}, fc)
        p2 = self.pool(6)
        p3 = self.pool(4, "floating")
        self.assertEqual({d["server_id"] for d in desktops_of(self.admin, p2) + desktops_of(self.admin, p3)}, {c})

        # hysteresis: C stops answering for a while (SIGSTOP), is suspected, and comes back
        self.settings(suspect_grace_s=600)
        fc.proc.send_signal(signal.SIGSTOP)
        try:
            self.assertTrue(wait_until(lambda: self.rstate(c)["recovery_state"] == "suspect", timeout=20, step=0.2))
        finally:
            fc.proc.send_signal(signal.SIGCONT)
        self.assertTrue(wait_until(lambda: self.rstate(c)["recovery_state"] == "none"
                                   and self.rstate(c)["state"] == "online", timeout=20, step=0.2), self.rstate(c))
        self.assertEqual([x["action"] for x in reversed(self.actions(server_id=c))], ["suspect", "clear"])
        self.assertIn("nothing was done", self.actions(server_id=c, action="clear")[0]["reason"])
        self.settings(suspect_grace_s=1)

        # BMCs: A's powers off on request, C's refuses
        bmc_a = FakeBmc(user="root", password="a-Bmc-pass").start()
        bmc_c = FakeBmc(user="root", password="c-Bmc-pass", mode="refuse").start()
        self.bmcs += [bmc_a, bmc_c]
        for sid, b in ((a, bmc_a), (c, bmc_c)):
            r = self.admin.put("/api/v1/servers/%d/bmc" % sid, {"type": "redfish", "address": b.url,
                                                                  "user": b.user, "password": b.password})
            self.assertEqual(r.status, 200, r)

        # a user holds a session on one of A's desktops
        user, pw = make_user(self.admin)
        self.admin.put("/api/v1/pools/%d/entitlements/users/%d" % (p1, user["id"]))
        uc = Client()
        uc.login(user["username"], pw)
        first = uc.post("/api/v1/pools/%d/connect" % p1, {})
        self.assertEqual(first.status, 200, first)
        mine = first.json["desktop"]["id"]

        # B: three servers with room (48 desktops each)
        fb = self.fleet(3, SYSROOT, "b")
        b_ids = self.wait_new(3, gone | {a, c}, fb)
        before = self.create_tasks(b_ids)
        p1_uuids = {d["uuid"] for d in desktops_of(self.admin, p1)}
        p2_uuids = {d["uuid"] for d in desktops_of(self.admin, p2)}
        self.assertFalse(set(before) & (p1_uuids | p2_uuids))

        # A and C stop
        fa.stop(signal.SIGKILL)
        fc.stop(signal.SIGKILL)
        killed = time.time()

        def all_running(pid, n):
            ds = desktops_of(self.admin, pid)
            return len(ds) == n and all(d["server_id"] in b_ids and d["phase"] == "ready" and d["state"] == "running"
                                        and d["present"] for d in ds)
        ok = wait_until(lambda: all_running(p1, 100), timeout=120, step=0.25)
        done = time.time()
        self.assertTrue(ok, (self.rstate(a), [d for d in desktops_of(self.admin, p1) if d["phase"] != "ready"][:3]))
        last_hb = epoch(self.admin.get("/api/v1/servers/%d" % a).json["last_heartbeat_at"])
        took = done - last_hb
        print("\n[recovery] 100 desktops running elsewhere %.1f s after the last heartbeat "
              "(%.1f s after the kill)" % (took, done - killed), file=sys.stderr)
        self.assertLess(took, 120)
        st = self.rstate(a)
        self.assertEqual((st["recovery_state"], st["fence_method"], st["maintenance"]), ("fenced", "redfish", True), st)
        self.assertEqual(len(bmc_a.resets()), 1, bmc_a.requests)
        self.assertTrue(all(r[3] for r in bmc_a.requests), "every BMC call carried the right password")

        # none started twice: one desktop.create per desktop in the tasks, one domain per uuid in libvirt
        tasks = self.create_tasks(b_ids)
        for u in p1_uuids:
            self.assertEqual(len(tasks.get(u, [])), 1, (u, tasks.get(u)))
            self.assertEqual(tasks[u][0]["created_by"], "recovery")
            self.assertEqual(tasks[u][0]["state"], "succeeded")
        seen = self.reported(b_ids)
        for u in p1_uuids:
            self.assertEqual(len(seen.get(u, [])), 1, (u, seen.get(u)))
            self.assertEqual(seen[u][0][1], "running")
        per = {}
        for d in desktops_of(self.admin, p1):
            per[d["server_id"]] = per.get(d["server_id"], 0) + 1
        self.assertLessEqual(max(per.values()), 48, per)  # placement's core rule held
        rec = self.actions(server_id=a, action="recover")
        self.assertEqual(len(rec), 100)
        self.assertEqual(len({x["desktop_id"] for x in rec}), 100)
        self.assertTrue(all(x["state"] == "done" and x["target_server_id"] in b_ids for x in rec), rec[:2])
        self.assertTrue(self.admin.get("/api/v1/audit?action=recovery.recover").json["items"])

        # the user's session survived the move: connecting again gives the same desktop, running
        r = uc.post("/api/v1/pools/%d/connect" % p1, {})
        self.assertEqual((r.status, r.json["desktop"]["id"]), (200, mine), r)
        self.assertEqual(r.json["session"]["id"], first.json["session"]["id"])

        # C: unfenceable; nothing of it was restarted or removed, even after more passes
        self.assertTrue(wait_until(lambda: self.rstate(c)["recovery_state"] == "unfenceable", timeout=20))
        self.assertIn("HTTP 500", self.rstate(c)["recovery_reason"])
        time.sleep(3)
        self.assertEqual({d["server_id"] for d in desktops_of(self.admin, p2) + desktops_of(self.admin, p3)}, {c})
        self.assertEqual(len(desktops_of(self.admin, p3)), 4)
        tasks = self.create_tasks(b_ids)
        self.assertFalse(p2_uuids & set(tasks), "an unfenceable server's desktop was started elsewhere")
        self.assertEqual(self.actions(server_id=c, action="recover"), [])
        self.assertEqual(self.actions(server_id=c, action="fence_failed")[0]["state"], "failed")

        # an admin confirms C is off: its dedicated desktops move, its floating ones are made again
        confirmed = time.time()
        r = self.admin.post("/api/v1/servers/%d/fence/confirm" % c, {"confirm": True})
        self.assertEqual((r.status, r.json["recovery_state"]), (200, "fenced"), r)
        self.assertTrue(wait_until(lambda: all_running(p2, 6) and all_running(p3, 4), timeout=120, step=0.25),
                        desktops_of(self.admin, p2) + desktops_of(self.admin, p3))
        print("[recovery] after the admin's confirmation: 6 dedicated restarted and 4 floating re-provisioned "
              "in %.1f s" % (time.time() - confirmed), file=sys.stderr)
        tasks = self.create_tasks(b_ids)
        for u in p2_uuids:
            self.assertEqual(len(tasks.get(u, [])), 1, (u, tasks.get(u)))
        self.assertEqual(len(self.actions(server_id=c, action="recover")), 10)

        # a fenced server that heartbeats again stays fenced (and out of placement) until cleared
        fa.start()
        self.assertTrue(wait_until(lambda: self.rstate(a)["state"] == "online", timeout=30), fa.log_text()[-2000:])
        time.sleep(1)
        st = self.rstate(a)
        self.assertEqual((st["recovery_state"], st["maintenance"]), ("fenced", True), st)
        r = self.admin.post("/api/v1/servers/%d/recovery/clear" % a)
        self.assertEqual((r.status, r.json["recovery_state"], r.json["maintenance"]), (200, "none", False), r)
        self.assertEqual(self.actions(server_id=a)[0]["action"], "clear")


if __name__ == "__main__":
    unittest.main()

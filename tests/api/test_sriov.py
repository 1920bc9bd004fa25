"""SR-IOV on the CCC side: the NIC/VF inventory agents report, VF reservation when a desktop is
placed (200 placements at once never share a VF), the NIC rule per port, a VLAN per pool, the
virtio fallback, and release when the desktop goes. The agents here are stand-ins
(test_inventory.FakeAgent) so that every figure is known; tests/unit/test_agent_sriov.c covers
the agent's discovery and domain XML, and SriovOnFleet below runs real bic-agents."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bictest import REPO, AgentProcess, Client, make_user, sql_root, unique, wait_until  # noqa: E402
from test_inventory import FakeAgent, InventoryBase  # noqa: E402
from test_pools import desktops_of, published_image, spec  # noqa: E402

BICD = os.path.join(REPO, "build", "test", "bicd")


def vf_nic(name, pci, n, speed=10000, link="up", bus=0x3b, first_slot=2, driver="i40e"):
    """A NIC report with n VFs (addresses as an X710's: function-wise after the PF)."""
    vfs = []
    for i in range(n):
        dev, fn = divmod(first_slot * 8 + i, 8)
        vfs.append({"index": i, "pci": "0000:%02x:%02x.%d" % (bus, dev, fn), "driver": "iavf"})
    return {"name": name, "pci": pci, "driver": driver, "vendor": "0x8086", "device": "0x1572",
            "mac": "3c:fd:fe:00:00:%02x" % (bus & 0xff), "speed_mbps": speed, "link": link,
            "sriov_capable": True, "sriov_total_vfs": 64, "sriov_num_vfs": n, "vfs": vfs}


def facts(nics, cores=32, memory_mib=262144):
    return {"cpus": cores * 2, "cores": cores, "memory_mib": memory_mib, "storage_gib": 2000,
            "nics": nics, "hypervisor": {"uri": "test:///default", "type": "Test", "version": "9.0.0"}}


def bench_place(admin, pool_id, count, threads=None):
    args = [BICD, "-c", os.path.join(admin.var, "etc", "bicd.ini"), "bench-place", "--pool", str(pool_id),
            "--count", str(count)]
    if threads:
        args += ["--threads", str(threads)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-3000:])
    return json.loads(r.stdout)


class SriovBase(InventoryBase):
    def vfs(self, server_id):
        r = self.admin.get("/api/v1/servers/%d/vfs" % server_id)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def fleet(self, n, nics, module_servers=10):
        """n stand-in servers with these NICs enrolled into a new module, online."""
        bb = self.make_bb()
        m = self.make_module(bb, max_servers=module_servers)
        tok = self.make_token(bb, m)
        agents = []
        for _ in range(n):
            a = FakeAgent(tok["token"])
            a.enroll(facts=facts(nics))
            host = {"cpu_pct": 5.0, "mem_total_mib": 262144, "mem_used_mib": 8000, "net_rx_bps": 0, "net_tx_bps": 0}
            self.assertEqual(a.heartbeat(full=True, desktops=[], host=host).status, 200)
            agents.append(a)
        return m, agents

    def vf_pool(self, module, **kw):
        image_id, _ = published_image(self.admin)
        body = {"name": unique("vfpool"), "type": "floating", "image_id": image_id,
                "spec_id": spec(self.admin, nic_type="sriov", memory_mib=1024), "min_size": 0,
                "max_size": 0, "name_pattern": unique("vf").replace("_", "-") + "-{n}", "modules": [module["id"]]}
        body.update(kw)
        r = self.admin.post("/api/v1/pools", body)
        self.assertEqual(r.status, 201, r)
        # paused: the reconciler neither grows nor trims it while bench-place places
        self.assertEqual(self.admin.post("/api/v1/pools/%d/pause" % r.json["id"], {"reason": "test"}).status, 200)
        return r.json


class Inventory(SriovBase):
    def test_enrollment_stores_nics_and_vfs(self):
        bb = self.make_bb()
        self.make_module(bb)
        a = FakeAgent(self.make_token(bb)["token"])
        a.enroll(facts=facts([vf_nic("ens1f0", "0000:3b:00.0", 4),
                              vf_nic("ens1f1", "0000:3b:00.1", 2, link="down", speed=0, bus=0x3c),
                              {"name": "eno1", "pci": "0000:5e:00.0", "driver": "tg3", "speed_mbps": 1000,
                               "link": "up", "sriov_capable": False, "sriov_total_vfs": 0, "vfs": []}]))
        s = self.server(a.server_id)
        nics = {n["name"]: n for n in s["nics"]}
        self.assertEqual(sorted(nics), ["eno1", "ens1f0", "ens1f1"])
        n0 = nics["ens1f0"]
        self.assertEqual((n0["pci"], n0["driver"], n0["link"], n0["speed_mbps"], n0["sriov_total_vfs"],
                          n0["sriov_num_vfs"], n0["vfs_present"], n0["vfs_held"], n0["vfs_free"]),
                         ("0000:3b:00.0", "i40e", "up", 10000, 64, 4, 4, 0, 4))
        self.assertEqual(n0["desktop_cap"], 500)  # 50 per Gbps
        self.assertEqual((nics["ens1f1"]["link"], nics["ens1f1"]["desktop_cap"]), ("down", 0))
        self.assertEqual(nics["eno1"]["vfs_present"], 0)
        vfs = self.vfs(a.server_id)
        self.assertEqual([(v["nic"], v["index"], v["pci"]) for v in vfs],
                         [("ens1f0", 0, "0000:3b:02.0"), ("ens1f0", 1, "0000:3b:02.1"),
                          ("ens1f0", 2, "0000:3b:02.2"), ("ens1f0", 3, "0000:3b:02.3"),
                          ("ens1f1", 0, "0000:3c:02.0"), ("ens1f1", 1, "0000:3c:02.1")])
        self.assertTrue(all(v["present"] and v["desktop"] is None and v["mac"] is None for v in vfs))

    def test_full_heartbeat_replaces_the_inventory(self):
        a, _, _ = self.enrolled()
        nic = vf_nic("ens1f0", "0000:3b:00.0", 3)
        self.assertEqual(a.heartbeat(full=True, desktops=[]).status, 200)
        r = a.post("/api/v1/agent/heartbeat", {"seq": a.seq + 1, "full": True, "desktops": [], "nics": [nic]})
        a.seq += 1
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(self.vfs(a.server_id)), 3)
        nic["vfs"] = nic["vfs"][1:]  # VF 0 disabled on the host
        r = a.post("/api/v1/agent/heartbeat", {"seq": a.seq + 1, "full": True, "desktops": [], "nics": [nic]})
        a.seq += 1
        self.assertEqual(r.status, 200, r)
        self.assertEqual([v["index"] for v in self.vfs(a.server_id)], [1, 2])
        self.assertEqual(self.server(a.server_id)["nics"][0]["vfs_present"], 2)

    def test_bad_nic_reports_refused_and_nothing_changes(self):
        a, _, _ = self.enrolled()
        good = vf_nic("ens1f0", "0000:3b:00.0", 2)
        r = a.post("/api/v1/agent/heartbeat", {"seq": a.seq + 1, "full": True, "desktops": [], "nics": [good]})
        a.seq += 1
        self.assertEqual(r.status, 200, r)
        bad_vf = json.loads(json.dumps(good))
        bad_vf["vfs"][0]["pci"] = "../../../etc"
        bad_link = dict(good, link="sideways")
        bad_name = dict(good, name="eth0/../x")
        upper = json.loads(json.dumps(good))
        upper["vfs"][1]["pci"] = "0000:3B:02.1"
        too_many = dict(good, vfs=[{"index": i, "pci": "0000:3b:02.0"} for i in range(513)])
        with self.cases() as case:
            for label, nics in (("vf pci", [bad_vf]), ("link", [bad_link]), ("name", [bad_name]),
                                ("upper-case pci", [upper]), ("513 VFs", [too_many]), ("not objects", ["x"]),
                                ("65 NICs", [good] * 65)):
                with case(report=label):
                    r = a.post("/api/v1/agent/heartbeat",
                               {"seq": a.seq + 1, "full": True, "desktops": [], "nics": nics})
                    self.assertJsonError(r, 422, "validation_failed")
        self.assertEqual([v["pci"] for v in self.vfs(a.server_id)], ["0000:3b:02.0", "0000:3b:02.1"])
        # at enrollment too
        bb = self.make_bb()
        self.make_module(bb)
        b = FakeAgent(self.make_token(bb)["token"])
        self.assertJsonError(b.enroll(expect=None, facts=facts([bad_vf])), 422, "validation_failed")

    def test_vf_list_is_for_operators(self):
        a, _, _ = self.enrolled()
        self.assertJsonError(self.admin.get("/api/v1/servers/999999999/vfs"), 404, "not_found")
        self.assertJsonError(Client().get("/api/v1/servers/%d/vfs" % a.server_id), 401, "unauthenticated")
        u, pw = make_user(self.admin, role="user")
        c = Client()
        c.login(u["username"], pw)
        self.assertJsonError(c.get("/api/v1/servers/%d/vfs" % a.server_id), 403, "forbidden")

    def test_pool_vlan_and_fallback_validated(self):
        m, _ = self.fleet(1, [vf_nic("ens1f0", "0000:3b:00.0", 2)])
        p = self.vf_pool(m, vlan=100, nic_fallback=True)
        self.assertEqual((p["vlan"], p["nic_fallback"]), (100, True))
        with self.cases() as case:
            for vlan in (0, 4095, -1, "7", 1.5):
                with case(vlan=vlan):
                    self.assertJsonError(self.admin.patch("/api/v1/pools/%d" % p["id"], {"vlan": vlan}),
                                         422, "validation_failed")
        self.assertJsonError(self.admin.patch("/api/v1/pools/%d" % p["id"], {"nic_fallback": "yes"}),
                             422, "validation_failed")
        got = self.admin.get("/api/v1/pools/%d" % p["id"]).json
        self.assertEqual((got["vlan"], got["nic_fallback"]), (100, True))
        r = self.admin.patch("/api/v1/pools/%d" % p["id"], {"description": "kept"})
        self.assertEqual((r.json["vlan"], r.json["nic_fallback"]), (100, True))  # absent keeps
        r = self.admin.patch("/api/v1/pools/%d" % p["id"], {"vlan": None, "nic_fallback": False})
        self.assertEqual((r.status, r.json["vlan"], r.json["nic_fallback"]), (200, None, False))


@unittest.skipUnless(os.access(BICD, os.X_OK), "build/test/bicd is not built")
class Reservation(SriovBase):
    def check_exclusive(self, pool_id, servers):
        """Every SR-IOV desktop of the pool holds one VF of its own server, nobody else holds it,
        and the servers' VF lists say the same from the other side."""
        ds = desktops_of(self.admin, pool_id)
        vf_desks = [d for d in ds if d["nic"]["type"] == "sriov"]
        held = {}
        for d in vf_desks:
            self.assertIsNotNone(d["nic"]["vf"], d)
            key = (d["server_id"], d["nic"]["vf"]["pci"])
            self.assertNotIn(key, held, "VF %s given to desktops %s and %d" % (key, held.get(key), d["id"]))
            held[key] = d["id"]
        listed = {}
        for sid in servers:
            for v in self.vfs(sid):
                if v["desktop"]:
                    listed[(sid, v["pci"])] = v["desktop"]["id"]
        mine = {k: v for k, v in listed.items() if v in {d["id"] for d in ds}}
        self.assertEqual(mine, held)
        macs = [d["nic"]["mac"] for d in ds]
        self.assertEqual(len(set(macs)), len(macs), "MACs are unique")
        self.assertTrue(all(re.fullmatch(r"02:b1(:[0-9a-f]{2}){4}", m) for m in macs), macs[:5])
        return ds, held

    def test_200_concurrent_placements_never_share_a_vf(self):
        nics = [vf_nic("ens1f0", "0000:3b:00.0", 64), vf_nic("ens1f1", "0000:3b:00.1", 8, link="down", bus=0x3c)]
        m, agents = self.fleet(4, nics)
        servers = [a.server_id for a in agents]
        pool = self.vf_pool(m, vlan=210)
        out = bench_place(self.admin, pool["id"], 200, threads=200)
        self.assertEqual((out["placed"], out["sriov"], out["refused"], out["errors"]), (200, 200, 0, 0), out)
        ds, held = self.check_exclusive(pool["id"], servers)
        self.assertEqual(len(held), 200)
        self.assertTrue(all(d["nic"]["vlan"] == 210 and d["nic"]["note"] == "" for d in ds))
        self.assertFalse([k for k in held if k[1].startswith("0000:3c:")], "a VF of the down port was given")
        for sid in servers:
            on = [d for d in ds if d["server_id"] == sid]
            nic = {n["name"]: n for n in self.server(sid)["nics"]}["ens1f0"]
            self.assertEqual((nic["vfs_held"], nic["vfs_free"]), (len(on), 64 - len(on)))
        # (not spread evenly: 200 transactions chose from the same snapshot; the leader places one
        # at a time, so its pools spread, see test_pools)
        self.assertTrue(all(len([d for d in ds if d["server_id"] == s]) <= 64 for s in servers))

        # 56 VFs are left: 100 more give 56 and refuse 44, saying why
        out = bench_place(self.admin, pool["id"], 100, threads=100)
        self.assertEqual((out["placed"], out["sriov"], out["refused"], out["errors"]), (56, 56, 44, 0), out)
        self.assertIn("SR-IOV VF", out["why"])
        self.check_exclusive(pool["id"], servers)

        # with the fallback allowed, the next desktops get virtio and say so
        self.assertEqual(self.admin.patch("/api/v1/pools/%d" % pool["id"], {"nic_fallback": True}).status, 200)
        out = bench_place(self.admin, pool["id"], 5)
        self.assertEqual((out["placed"], out["sriov"], out["virtio"]), (5, 0, 5), out)
        ds, _ = self.check_exclusive(pool["id"], servers)
        fell = [d for d in ds if d["nic"]["type"] == "virtio"]
        self.assertEqual(len(fell), 5)
        self.assertTrue(all("no server has a free SR-IOV VF" in d["nic"]["note"] and d["nic"]["vf"] is None
                            for d in fell), fell[0])
        # the placement preview says the same
        self.admin.post("/api/v1/pools/%d/resume" % pool["id"])
        prev = self.admin.get("/api/v1/pools/%d/placement" % pool["id"]).json
        self.assertEqual((prev["fits"], prev["nic"]), (True, "virtio (no free SR-IOV VF)"), prev)
        self.admin.post("/api/v1/pools/%d/pause" % pool["id"], {"reason": "test"})

        # a desktop's deletion gives its VF back
        d = [x for x in ds if x["nic"]["type"] == "sriov"][0]
        sid, pci = d["server_id"], d["nic"]["vf"]["pci"]
        self.assertEqual(self.admin.delete("/api/v1/desktops/%d" % d["id"]).status, 202)
        agent = [a for a in agents if a.server_id == sid][0]
        task = wait_until(lambda: (lambda x: x["task_id"] if x["phase"] == "deleting" and x["task_id"] else None)(
            self.admin.get("/api/v1/desktops/%d" % d["id"]).json), timeout=30, step=0.2)
        self.assertIsNotNone(task, self.admin.get("/api/v1/desktops/%d" % d["id"]).json)
        r = agent.post("/api/v1/agent/tasks/%d/status" % task, {"state": "succeeded", "result": {}})
        self.assertEqual(r.status, 204, r)
        gone = wait_until(lambda: self.admin.get("/api/v1/desktops/%d" % d["id"]).status == 404, timeout=30, step=0.2)
        self.assertTrue(gone)
        v = [x for x in self.vfs(sid) if x["pci"] == pci][0]
        self.assertEqual((v["desktop"], v["mac"], v["present"]), (None, None, True), v)

    def test_nic_rule_per_port_and_vf_missing_after_report(self):
        # a 1 Gbps port with 64 VFs carries 50 desktops (the NIC rule), not 64, even though the
        # server's 10 Gbps port (VFs disabled) lets the server as a whole carry 100
        ten = {"name": "ens2f0", "pci": "0000:5e:00.0", "driver": "i40e", "speed_mbps": 10000, "link": "up",
               "sriov_capable": True, "sriov_total_vfs": 64, "sriov_num_vfs": 0, "vfs": []}
        m, (a,) = self.fleet(1, [vf_nic("eno1", "0000:3b:00.0", 64, speed=1000), ten])
        pool = self.vf_pool(m)
        out = bench_place(self.admin, pool["id"], 64, threads=16)
        self.assertEqual((out["placed"], out["refused"]), (50, 14), out)
        self.assertIn("no free SR-IOV VF", out["why"])
        nic = {n["name"]: n for n in self.server(a.server_id)["nics"]}["eno1"]
        self.assertEqual((nic["vfs_held"], nic["vfs_free"], nic["desktop_cap"]), (50, 14, 50))
        # the host stops reporting a held VF: kept as missing, the desktop says so, an event too
        held = [v for v in self.vfs(a.server_id) if v["desktop"]]
        gone = held[0]
        rep = vf_nic("eno1", "0000:3b:00.0", 64, speed=1000)
        rep["vfs"] = [v for v in rep["vfs"] if v["pci"] != gone["pci"]]
        r = a.post("/api/v1/agent/heartbeat", {"seq": a.seq + 1, "full": True, "desktops": [], "nics": [rep, ten]})
        a.seq += 1
        self.assertEqual(r.status, 200, r)
        v = [x for x in self.vfs(a.server_id) if x["pci"] == gone["pci"]][0]
        self.assertEqual((v["present"], v["desktop"]["id"]), (False, gone["desktop"]["id"]))
        d = self.admin.get("/api/v1/desktops/%d" % gone["desktop"]["id"]).json
        self.assertIn("no longer reported", d["nic"]["note"])
        ev = self.admin.get("/api/v1/servers/%d/events" % a.server_id).json["items"]
        self.assertTrue([e for e in ev if e["kind"] == "vf.missing"], ev)


class SriovFleet(AgentProcess):
    """`bic-agent --fleet N` whose servers read the SR-IOV tree at root."""

    def __init__(self, admin, token, n, root):
        self.n = n
        super().__init__(admin, token, "bic-sriov-fleet-", "fleet.log",
                         BIC_AGENT_MACHINE_ID=unique("sv-machine-"), BIC_AGENT_HOSTNAME=unique("sv"),
                         BIC_AGENT_ROOT_PREFIX=root)

    def args(self):
        return ["--fleet", str(self.n), "--desktops", "0", "run"]


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class SriovOnFleet(SriovBase):
    """Real bic-agents (test driver) on a generated X710 tree: the VF reaches the domain, and a VF
    that disappears from the host makes the agent refuse, then the pool pauses."""

    def setUp(self):
        import sriov_tree
        self.root = tempfile.mkdtemp(prefix="bic-sriov-tree-")
        sriov_tree.make_tree(self.root, [{"name": "ens1f0", "pci": "0000:3b:00.0", "vfs": 8, "speed": 10000,
                                          "link": "up", "driver": "i40e"}])
        bb = self.make_bb()
        self.module = self.make_module(bb)
        self.fleet = SriovFleet(self.admin, self.make_token(bb, self.module)["token"], 2, self.root).start()

    def tearDown(self):
        self.fleet.stop(signal.SIGKILL)
        reports = self.fleet.sanitizer_reports()
        self.fleet.cleanup()
        subprocess.run(["rm", "-rf", self.root])
        self.assertEqual(reports, [], "sanitizer reports from bic-agent --fleet")

    def servers(self):
        return self.admin.get("/api/v1/servers?module=%d" % self.module["id"]).json["items"]

    def test_vf_desktops_then_a_vanished_vf_pauses_the_pool(self):
        ok = wait_until(lambda: len([s for s in self.servers() if s["state"] == "online"]) == 2, timeout=30)
        self.assertTrue(ok, self.fleet.log_text()[-3000:])
        sids = [s["id"] for s in self.servers()]
        for sid in sids:  # the agents' discovery reached the inventory
            self.assertEqual([(v["nic"], v["index"]) for v in self.vfs(sid)], [("ens1f0", i) for i in range(8)])
        image_id, _ = published_image(self.admin)
        r = self.admin.post("/api/v1/pools", {
            "name": unique("vffleet"), "type": "dedicated", "image_id": image_id,
            "spec_id": spec(self.admin, nic_type="sriov"), "min_size": 4, "max_size": 16, "vlan": 300,
            "name_pattern": "vfd-{n}", "modules": [self.module["id"]]})
        self.assertEqual(r.status, 201, r)
        pid = r.json["id"]
        p = wait_until(lambda: (lambda x: x if x["counts"]["ready"] == 4 else None)(
            self.admin.get("/api/v1/pools/%d" % pid).json), timeout=90, step=0.5)
        self.assertIsNotNone(p, (self.admin.get("/api/v1/pools/%d" % pid).json, self.fleet.log_text()[-3000:]))
        ds, held = Reservation.check_exclusive(self, pid, sids)
        self.assertEqual(len(held), 4)
        self.assertTrue(wait_until(lambda: all(d["present"] and d["state"] == "running"
                                               for d in desktops_of(self.admin, pid)), timeout=30))
        # what the agent was asked to do, and what it did
        tasks = [t for t in self.admin.get("/api/v1/tasks?limit=500").json["items"]
                 if t["type"] == "desktop.create" and t["params"].get("name", "").startswith("vfd-")]
        self.assertEqual(len(tasks), 4)
        for t in tasks:
            nic = t["params"]["nic"]
            self.assertEqual((nic["type"], nic["pf"], nic["vlan"]), ("sriov", "ens1f0", 300), nic)
            self.assertRegex(nic["vf_pci"], r"^0000:3b:02\.[0-7]$")
            full = self.admin.get("/api/v1/tasks/%d" % t["id"]).json
            self.assertEqual(full["state"], "succeeded", full)
            self.assertEqual(full["result"]["nic"]["vf_pci"], nic["vf_pci"], full["result"])

        # the host loses VFs 4..7 but no full heartbeat says so yet: creates on them are refused by
        # the agent, five in a row pause the pool with the agent's reason
        for n in range(4, 8):
            os.unlink(os.path.join(self.root, "sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/virtfn%d" % n))
        self.assertEqual(self.admin.patch("/api/v1/pools/%d" % pid, {"min_size": 12}).status, 200)
        p = wait_until(lambda: (lambda x: x if x["state"] == "paused" else None)(
            self.admin.get("/api/v1/pools/%d" % pid).json), timeout=90, step=0.3)
        self.assertIsNotNone(p, (self.admin.get("/api/v1/pools/%d" % pid).json, self.fleet.log_text()[-3000:]))
        self.assertIn("paused after 5 failures in a row", p["pause_reason"])
        self.assertIn("is not VF", p["pause_reason"])  # the agent's reason, passed through
        audit = self.admin.get("/api/v1/audit?action=pool.paused&target_id=%d" % pid).json["items"]
        self.assertEqual(len(audit), 1, audit)
        # the 4 good desktops kept their VFs; failed ones gave theirs back
        self.assertEqual(len(Reservation.check_exclusive(self, pid, sids)[1]),
                         len([d for d in desktops_of(self.admin, pid) if d["nic"]["vf"]]))
        # paused: nothing more is tried; resuming clears the count and tries again
        count = lambda: len([t for t in self.admin.get("/api/v1/tasks?limit=500").json["items"]
                             if t["type"] == "desktop.create" and t["params"].get("name", "").startswith("vfd-")])
        n = count()
        import time
        time.sleep(2)
        self.assertEqual(count(), n)
        r = self.admin.post("/api/v1/pools/%d/resume" % pid)
        self.assertEqual((r.status, r.json["state"], r.json["failures"]), (200, "active", 0))
        self.assertTrue(wait_until(lambda: count() > n, timeout=10))

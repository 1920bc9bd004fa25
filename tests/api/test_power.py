"""Automatic power control (issue 8): settings and routes, then a power cycle on a test-driver
fleet — off-hours, empty servers are powered off through their agents after the hold time (the
fleet simulates a power-off by going silent); a scheduled peak wakes enough of them before it by
Wake-on-LAN, which this test receives on a UDP port and answers by powering the simulated server
back on; a server with a live session is never powered off."""

import datetime
import os
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bictest import AdminTestCase, AgentProcess, make_user, unique, wait_until  # noqa: E402
from test_broker import group_with, signed_in  # noqa: E402
from test_pools import Fleet, published_image, spec, topology  # noqa: E402
from fake_bmc import FakeBmc  # noqa: E402

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def module_of(admin):
    bb = admin.post("/api/v1/building-blocks", {"name": unique("pbb")}).json
    return admin.post("/api/v1/building-blocks/%d/modules" % bb["id"], {"name": "m1"}).json


class PowerApi(AdminTestCase):
    """Settings per module, the plan, and a server's power route without agents."""

    def test_defaults_update_validation_and_audit(self):
        m = module_of(self.admin)
        r = self.admin.get("/api/v1/modules/%d/automation/power" % m["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["configured"], r.json["enabled"], r.json["dry_run"], r.json["min_on"],
                          r.json["empty_hold_s"], r.json["wake_method"], r.json["wol_port"]),
                         (False, False, False, 1, 1800, "auto", 9))
        r = self.admin.put("/api/v1/modules/%d/automation/power" % m["id"],
                           {"enabled": True, "schedule": "mon-fri 08:30 4; sat,sun 10:00 2", "min_on": 2})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["configured"], r.json["enabled"], r.json["min_on"], r.json["schedule"],
                          r.json["spare_slots"]), (True, True, 2, "mon-fri 08:30 4; sat,sun 10:00 2", 10))
        audit = self.admin.get("/api/v1/audit?action=power.settings&target_id=%d" % m["id"]).json["items"]
        self.assertEqual(len(audit), 1, audit)
        self.assertEqual(audit[0]["summary"]["changed"]["min_on"], {"from": 1, "to": 2})
        for bad, word in (({"schedule": "mon 8:30 2"}, "DAYS HH:MM"), ({"schedule": "mox 08:30 2"}, "not a day"),
                          ({"schedule": "mon 25:00 2"}, "time of day"), ({"wol_broadcast": "300.1.1.1"}, "IPv4"),
                          ({"min_on": -1}, None), ({"wake_method": "magic"}, None), ({"surprise": 1}, None)):
            r = self.admin.put("/api/v1/modules/%d/automation/power" % m["id"], bad)
            self.assertJsonError(r, 422, "validation_failed")
            if word:
                self.assertIn(word, r.json["error"]["message"])
        self.assertJsonError(self.admin.put("/api/v1/modules/999999/automation/power", {"enabled": True}),
                             404, "not_found")
        self.assertJsonError(self.admin.get("/api/v1/modules/999999/automation/plan"), 404, "not_found")
        b = self.admin.put("/api/v1/modules/%d/automation/balance" % m["id"], {"mem_high_pct": 70})
        self.assertEqual((b.status, b.json["mem_high_pct"], b.json["enabled"]), (200, 70, False), b)
        self.assertJsonError(self.admin.put("/api/v1/modules/%d/automation/balance" % m["id"],
                                            {"max_concurrent": 0}), 422, "validation_failed")
        p = self.admin.get("/api/v1/modules/%d/automation/plan" % m["id"])
        self.assertEqual(p.status, 200, p)
        self.assertEqual((p.json["power"]["servers"], p.json["power"]["actions"], p.json["power"]["need_slots"]),
                         ([], [], 10))

    def test_roles(self):
        m = module_of(self.admin)
        op, pw = make_user(self.admin, role="operator")
        c = signed_in(op, pw)
        self.assertEqual(c.get("/api/v1/modules/%d/automation/power" % m["id"]).status, 200)
        self.assertEqual(c.get("/api/v1/modules/%d/automation/plan" % m["id"]).status, 200)
        self.assertJsonError(c.put("/api/v1/modules/%d/automation/power" % m["id"], {"enabled": True}),
                             403, "forbidden")
        self.assertJsonError(c.put("/api/v1/modules/%d/automation/balance" % m["id"], {"enabled": True}),
                             403, "forbidden")

    def test_server_power_route_validation(self):
        self.assertJsonError(self.admin.get("/api/v1/servers/999999/power"), 404, "not_found")
        self.assertJsonError(self.admin.put("/api/v1/servers/999999/power", {"action": "off"}), 404, "not_found")
        self.assertJsonError(self.admin.put("/api/v1/servers/1/power", {"action": "reboot"}), 422,
                             "validation_failed")
        self.assertJsonError(self.admin.patch("/api/v1/servers/1/power", {"wol_mac": "52:54:00:zz:00:01"}), 422,
                             "validation_failed")


class WolListener:
    """The test's Wake-on-LAN receiver: records magic packets and powers the simulated server on."""

    def __init__(self, on_mac):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets = []
        self.on_mac = on_mac
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                data, _ = self.sock.recvfrom(1024)
            except socket.timeout:
                continue
            ok = len(data) == 102 and data[:6] == b"\xff" * 6 and data[6:] == data[6:12] * 16
            mac = ":".join("%02x" % b for b in data[6:12]) if ok else None
            self.packets.append((time.time(), mac, len(data)))
            if mac:
                self.on_mac(mac)

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class PowerCycle(AdminTestCase):
    """4 test-driver servers, a floating pool of 1 with a live session."""

    N = 4

    def setUp(self):
        self.bb, (self.module,) = topology(self.admin, ("m1",))
        token = self.admin.post("/api/v1/enrollment-tokens", {"building_block_id": self.bb["id"]}).json["token"]
        self.fleet = Fleet(self.admin, token, self.N).start()
        self.wol = WolListener(self.power_on)
        # the recovery loop (011) would suspect servers that stop heartbeating; powered-off ones are ours
        self.admin.put("/api/v1/modules/%d/automation/recovery" % self.module["id"], {"enabled": False})

    def tearDown(self):
        self.wol.close()
        self.fleet.stop(signal.SIGKILL)
        reports = self.fleet.sanitizer_reports()
        self.fleet.cleanup()
        self.assertEqual(reports, [], "sanitizer reports from bic-agent --fleet")

    def servers(self):
        return self.admin.get("/api/v1/servers?module=%d" % self.module["id"]).json["items"]

    def power(self, sid):
        r = self.admin.get("/api/v1/servers/%d/power" % sid)
        self.assertEqual(r.status, 200, r)
        return r.json

    def member_dir(self, hostname):
        return os.path.join(self.fleet.dir, "state", hostname.rsplit("-", 1)[1])

    def power_on(self, mac):
        """What the NIC of a sleeping host does with its magic packet: the simulated host comes up."""
        host = self.mac_host.get(mac)
        if host:
            try:
                os.unlink(os.path.join(self.member_dir(host), "powered-off"))
            except FileNotFoundError:
                pass

    def put_power(self, **kw):
        r = self.admin.put("/api/v1/modules/%d/automation/power" % self.module["id"], kw)
        self.assertEqual(r.status, 200, r)
        return r.json

    def actions(self, loop="power"):
        return self.admin.get("/api/v1/modules/%d/automation/plan" % self.module["id"]).json["recent"][loop]

    def test_off_hours_then_a_scheduled_peak(self):
        ok = wait_until(lambda: len([s for s in self.servers() if s["state"] == "online"]) == self.N, timeout=30)
        self.assertTrue(ok, self.fleet.log_text()[-3000:])
        servers = sorted(self.servers(), key=lambda s: s["id"])
        self.mac_host = {}
        for i, s in enumerate(servers):
            mac = "52:54:00:be:00:%02x" % (i + 1)
            r = self.admin.patch("/api/v1/servers/%d/power" % s["id"], {"wol_mac": mac})
            self.assertEqual((r.status, r.json["wol_mac"]), (200, mac), r)
            self.mac_host[mac] = s["hostname"]
        by_id = {s["id"]: s for s in servers}

        # a floating pool of one desktop, and a user connected to it: that server is in use
        image_id, _ = published_image(self.admin, "pimg")
        user, pw = make_user(self.admin)
        g = group_with(self.admin, [user])
        r = self.admin.post("/api/v1/pools", {
            "name": unique("pp"), "type": "floating", "image_id": image_id, "spec_id": spec(self.admin),
            "min_size": 1, "max_size": 1, "name_pattern": unique("pp").replace("_", "-") + "-{n}",
            "modules": [self.module["id"]]})
        self.assertEqual(r.status, 201, r)
        pid = r.json["id"]
        self.admin.put("/api/v1/pools/%d/entitlements/groups/%d" % (pid, g["id"]))
        self.assertTrue(wait_until(lambda: self.admin.get("/api/v1/pools/%d" % pid).json["counts"]["ready"] == 1,
                                   timeout=60, step=0.3))
        client = signed_in(user, pw)
        deadline = time.monotonic() + 60
        while True:
            c = client.post("/api/v1/pools/%d/connect" % pid, {})
            # 202: starting; 409 pool_exhausted: a session that never opened a console timed out
            # on a loaded machine and its floating desktop is being refreshed - connect again
            if c.status not in (202, 409) or (c.status == 409 and c.json["error"].get("reason") != "pool_exhausted") \
                    or time.monotonic() > deadline:
                break
            time.sleep(c.json["retry_after_ms"] / 1000.0 if c.status == 202 else 1.0)
        self.assertEqual(c.status, 200, c)
        busy = self.admin.get("/api/v1/desktops/%d" % c.json["desktop"]["id"]).json["server_id"]
        self.assertEqual(self.power(busy)["in_use"]["sessions"], 1)

        # an admin cannot power off the server in use
        r = self.admin.put("/api/v1/servers/%d/power" % busy, {"action": "off"})
        self.assertJsonError(r, 409, "conflict")
        self.assertIn("in use", r.json["error"]["message"])

        # dry run first: the plan is recorded, nothing is powered off
        self.put_power(enabled=True, dry_run=True, min_on=1, spare_slots=10, empty_hold_s=3, max_parallel=3,
                       wol_broadcast="127.0.0.1", wol_port=self.wol.port)
        ok = wait_until(lambda: len([a for a in self.actions() if a["action"] == "power_off"
                                     and a["state"] == "planned"]) == self.N - 1, timeout=30, step=0.5)
        self.assertTrue(ok, self.actions())
        planned = self.actions()
        self.assertTrue(all(a["dry_run"] for a in planned), planned)
        self.assertNotIn(busy, [a["server_id"] for a in planned])
        self.assertTrue(all(self.power(s["id"])["power_state"] == "on" for s in servers))
        self.assertEqual([t for t in self.admin.get("/api/v1/tasks?limit=500").json["items"]
                          if t["type"] == "host.power_off" and t["server_id"] in by_id], [])

        # off-hours: the three empty servers go off after the hold time, the busy one stays
        t0 = time.monotonic()
        self.put_power(dry_run=False)
        idle = [s["id"] for s in servers if s["id"] != busy]
        ok = wait_until(lambda: all(self.power(i)["power_state"] == "off" for i in idle), timeout=60, step=0.5)
        self.assertTrue(ok, ([self.power(i) for i in idle], self.actions(), self.fleet.log_text()[-2000:]))
        print("# power: 3 empty servers powered off %.1f s after enabling (hold 3 s)" % (time.monotonic() - t0))
        for i in idle:
            p = self.power(i)
            self.assertEqual(p["state"], "offline", p)
            self.assertTrue(os.path.exists(os.path.join(self.member_dir(by_id[i]["hostname"]), "powered-off")))
        self.assertEqual(self.power(busy)["power_state"], "on")
        done = [a for a in self.actions() if a["action"] == "power_off" and not a["dry_run"]]
        self.assertEqual(sorted(a["server_id"] for a in done), sorted(idle), done)
        self.assertTrue(all(a["state"] == "done" for a in done), done)
        offs = [t for t in self.admin.get("/api/v1/tasks?limit=500").json["items"] if t["type"] == "host.power_off"
                and t["server_id"] in by_id]
        self.assertEqual(sorted(t["server_id"] for t in offs), sorted(idle))
        self.assertTrue(all(t["state"] == "succeeded" for t in offs), offs)
        ev = self.admin.get("/api/v1/servers/%d/events" % idle[0]).json["items"]
        self.assertIn("power.power_off", [e["kind"] for e in ev])
        audit = self.admin.get("/api/v1/audit?action=power.power_off&limit=50").json["items"]
        self.assertTrue({str(i) for i in idle} <= {a["target_id"] for a in audit}, audit)
        self.assertEqual(self.wol.packets, [])
        time.sleep(4)  # still no wake: one server with spare room is enough off-hours
        self.assertEqual(self.wol.packets, [])

        # a peak at least a minute ahead needs 3 servers: two are woken before it, by WoL
        now = datetime.datetime.now(datetime.timezone.utc)
        peak = (now + datetime.timedelta(seconds=120)).replace(second=0, microsecond=0)
        sched = "%s %02d:%02d 3" % (DAYS[peak.weekday()], peak.hour, peak.minute)
        self.put_power(schedule=sched, peak_lead_s=600, peak_hold_s=600)
        plan = self.admin.get("/api/v1/modules/%d/automation/plan" % self.module["id"]).json["power"]
        self.assertEqual(plan["scheduled_min"], 3, plan)
        ok = wait_until(lambda: len([s for s in servers if self.power(s["id"])["power_state"] == "on"
                                     and self.power(s["id"])["state"] == "online"]) == 3, timeout=60, step=0.5)
        back = time.time()
        self.assertTrue(ok, ([self.power(s["id"]) for s in servers], self.actions(), self.wol.packets))
        self.assertLess(back, peak.timestamp(), "the servers must be up before the peak")
        print("# power: 3 servers on %.0f s before the scheduled peak %s; %d magic packets received"
              % (peak.timestamp() - back, sched, len(self.wol.packets)))
        woken = [a["server_id"] for a in self.actions() if a["action"] == "wake"]
        self.assertEqual(len(woken), 2, self.actions())
        macs = sorted(m for _, m, _ in self.wol.packets)
        self.assertEqual(macs, sorted(self.power(i)["wol_mac"] for i in woken), self.wol.packets)
        self.assertTrue(all(a["state"] == "done" for a in self.actions() if a["action"] == "wake"))
        # the server with the session was never powered off; its session is still live
        self.assertEqual(self.power(busy)["power_state"], "on")
        self.assertEqual(self.power(busy)["in_use"]["sessions"], 1)
        time.sleep(5)  # inside the peak window the woken servers stay on although empty
        self.assertEqual(len([s for s in servers if self.power(s["id"])["power_state"] == "on"]), 3)


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class WakeThroughTheBmc(PowerCycle):
    """2 test-driver servers, each with a Redfish BMC the test controls and no Wake-on-LAN MAC:
    the empty one is powered off, then a scheduled peak wakes it through its BMC (wake_method
    auto prefers a configured BMC); with wake_method bmc a server without a BMC is not woken,
    and the action says why."""

    N = 2
    test_off_hours_then_a_scheduled_peak = None  # PowerCycle's own test (4 servers)

    def setUp(self):
        self.mac_host = {}
        super().setUp()

    def test_a_peak_wakes_a_server_through_its_bmc(self):
        ok = wait_until(lambda: len([s for s in self.servers() if s["state"] == "online"]) == self.N, timeout=30)
        self.assertTrue(ok, self.fleet.log_text()[-3000:])
        servers = sorted(self.servers(), key=lambda s: s["id"])
        bmcs = {}
        for s in servers:
            host = s["hostname"]

            def up(host=host):  # the BMC turns the simulated host on
                try:
                    os.unlink(os.path.join(self.member_dir(host), "powered-off"))
                except FileNotFoundError:
                    pass
            b = bmcs[s["id"]] = FakeBmc(user="root", password=unique("Bmc-pw"), on_power_on=up).start()
            self.addCleanup(b.stop)
            r = self.admin.put("/api/v1/servers/%d/bmc" % s["id"], {"type": "redfish", "address": b.url,
                                                                    "user": b.user, "password": b.password})
            self.assertEqual(r.status, 200, r)
        # off-hours: one of the two empty servers goes off after the hold time
        self.put_power(enabled=True, dry_run=False, min_on=1, spare_slots=0, empty_hold_s=2, max_parallel=2)
        ok = wait_until(lambda: len([s for s in servers if self.power(s["id"])["power_state"] == "off"]) == 1,
                        timeout=60, step=0.5)
        self.assertTrue(ok, ([self.power(s["id"]) for s in servers], self.actions()))
        off = [s["id"] for s in servers if self.power(s["id"])["power_state"] == "off"][0]
        bmcs[off].power = "Off"  # what the real BMC reports once the host shut down
        self.assertEqual(sum(len(b.resets("On")) for b in bmcs.values()), 0)
        # a peak needs both: the sleeping one is woken through its BMC, before the peak
        now = datetime.datetime.now(datetime.timezone.utc)
        peak = (now + datetime.timedelta(seconds=120)).replace(second=0, microsecond=0)
        self.put_power(schedule="%s %02d:%02d 2" % (DAYS[peak.weekday()], peak.hour, peak.minute),
                       peak_lead_s=600, peak_hold_s=600)
        t0 = time.monotonic()
        ok = wait_until(lambda: self.power(off)["power_state"] == "on" and self.power(off)["state"] == "online",
                        timeout=60, step=0.5)
        self.assertTrue(ok, (self.power(off), self.actions(), bmcs[off].requests[-5:]))
        print("# power: server woken through its Redfish BMC, online %.1f s after the peak was set"
              % (time.monotonic() - t0))
        self.assertEqual(len(bmcs[off].resets("On")), 1, bmcs[off].requests)
        self.assertTrue(all(r[3] for r in bmcs[off].requests), "every BMC call carried the credentials")
        self.assertEqual([len(b.resets("On")) for i, b in bmcs.items() if i != off], [0])
        wakes = [a for a in self.actions() if a["action"] == "wake"]
        self.assertEqual([(a["server_id"], a["state"]) for a in wakes], [(off, "done")], wakes)
        self.assertEqual(self.wol.packets, [])

    def test_wake_method_bmc_without_a_bmc_fails_with_the_reason(self):
        ok = wait_until(lambda: len([s for s in self.servers() if s["state"] == "online"]) == self.N, timeout=30)
        self.assertTrue(ok, self.fleet.log_text()[-3000:])
        servers = sorted(self.servers(), key=lambda s: s["id"])
        self.put_power(enabled=True, dry_run=False, min_on=1, spare_slots=0, empty_hold_s=2, max_parallel=2,
                       wake_method="bmc", wol_broadcast="127.0.0.1", wol_port=self.wol.port)
        ok = wait_until(lambda: len([s for s in servers if self.power(s["id"])["power_state"] == "off"]) == 1,
                        timeout=60, step=0.5)
        self.assertTrue(ok, ([self.power(s["id"]) for s in servers], self.actions()))
        off = [s["id"] for s in servers if self.power(s["id"])["power_state"] == "off"][0]
        self.admin.patch("/api/v1/servers/%d/power" % off, {"wol_mac": "52:54:00:be:01:01"})
        now = datetime.datetime.now(datetime.timezone.utc)
        peak = (now + datetime.timedelta(seconds=120)).replace(second=0, microsecond=0)
        self.put_power(schedule="%s %02d:%02d 2" % (DAYS[peak.weekday()], peak.hour, peak.minute),
                       peak_lead_s=600, peak_hold_s=600)
        ok = wait_until(lambda: [a for a in self.actions() if a["action"] == "wake" and a["state"] == "failed"],
                        timeout=30, step=0.5)
        self.assertTrue(ok, self.actions())
        failed = [a for a in self.actions() if a["action"] == "wake"][0]
        self.assertEqual(failed["server_id"], off)
        self.assertIn("no BMC is configured", failed["reason"])
        self.assertEqual(self.wol.packets, [], "wake_method bmc must not fall back to Wake-on-LAN")
        self.assertEqual(self.power(off)["power_state"], "off")

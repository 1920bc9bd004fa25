"""`bic-agent --fleet`: one process (ASan build) acting as 20 bServers with 10 test-driver desktops
each, against the test stack, through the same protocol code a real agent runs: every member
enrolls on its own, reports its own desktops, runs its own tasks, and goes offline with the
process."""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import AdminTestCase, AgentProcess, unique, wait_until  # noqa: E402

SERVERS, DESKTOPS = 20, 10


class Fleet(AgentProcess):
    """One `bic-agent --fleet N --desktops D run` process with its own state directory."""

    def __init__(self, admin, token, n, d):
        self.n, self.d = n, d
        self.hostname = unique("fl")
        super().__init__(admin, token, "bic-fleet-", "fleet.log",
                         BIC_AGENT_MACHINE_ID=unique("fleet-machine-"), BIC_AGENT_HOSTNAME=self.hostname)

    def args(self):
        return ["--fleet", str(self.n), "--desktops", str(self.d), "run"]

    def threads(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            return [int(l.split()[1]) for l in f if l.startswith("Threads:")][0]


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class FleetTest(AdminTestCase):
    def setUp(self):
        self.bb = self.admin.post("/api/v1/building-blocks", {"name": unique("fleet-bb")}).json
        self.module = self.admin.post("/api/v1/building-blocks/%d/modules" % self.bb["id"],
                                      {"name": "m", "max_servers": SERVERS}).json
        self.token = self.admin.post("/api/v1/enrollment-tokens",
                                     {"building_block_id": self.bb["id"]}).json["token"]
        self.fleet = None

    def tearDown(self):
        if self.fleet:
            self.fleet.stop(signal.SIGKILL)
            reports = self.fleet.sanitizer_reports()
            log = self.fleet.log_text()
            self.fleet.cleanup()
            self.assertEqual(reports, [], "sanitizer reports from bic-agent --fleet")
            self.assertNotIn(self.token, log, "the fleet logged its enrollment token")

    def servers(self):
        r = self.admin.get("/api/v1/servers?module=%d&limit=100" % self.module["id"])
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def desktops(self, sid):
        return {d["uuid"]: d for d in self.admin.get("/api/v1/servers/%d/desktops" % sid).json["items"]}

    def rollup(self):
        """This building block's entry of the topology roll-up."""
        after = 0
        while True:
            page = self.admin.get("/api/v1/topology?limit=200&after=%d" % after).json
            for bb in page["items"]:
                if bb["id"] == self.bb["id"]:
                    return bb
            if not page["next_after"]:
                return None
            after = page["next_after"]

    def module_desktops(self):
        return self.rollup()["modules"][0]["desktops"]

    def test_fleet_of_20_enrolls_reports_runs_a_task_and_goes_offline_when_killed(self):
        f = self.fleet = Fleet(self.admin, self.token, SERVERS, DESKTOPS).start()
        fail_log = lambda: f.log_text()[-3000:]  # noqa: E731

        # every member enrolls as a server of its own and heartbeats
        online = wait_until(lambda: (lambda s: s if len(s) == SERVERS and all(x["state"] == "online" for x in s)
                                     else None)(self.servers()), timeout=30, step=0.2)
        self.assertTrue(online, "not all %d servers came online:\n%s" % (SERVERS, fail_log()))
        self.assertEqual(sorted(s["hostname"] for s in online),
                         sorted("%s-%d" % (f.hostname, i) for i in range(SERVERS)))
        by_host = {s["hostname"]: s for s in online}
        self.assertEqual(len({s["id"] for s in online}), SERVERS)
        self.assertEqual({s["hypervisor"] for s in online}, {"TEST"})
        # one listener for all: each member's own route
        base = by_host[f.hostname + "-0"]["listen_url"][:-len("/s/0")]
        self.assertRegex(base, r"^http://127\.0\.0\.1:\d+$")
        for i in range(SERVERS):
            self.assertEqual(by_host["%s-%d" % (f.hostname, i)]["listen_url"], "%s/s/%d" % (base, i))
        # a bounded number of threads, not one or more per member
        self.assertLess(f.threads(), 30)

        # the roll-up counts 20 x 10 running desktops
        self.assertTrue(wait_until(lambda: self.module_desktops().get("total") == SERVERS * DESKTOPS, timeout=15),
                        "%s\n%s" % (self.rollup(), fail_log()))
        totals = self.rollup()["totals"]
        self.assertEqual((totals["servers"], totals["online"], totals["desktops"]), (SERVERS, SERVERS, SERVERS * DESKTOPS))
        self.assertEqual(self.module_desktops()["running"], SERVERS * DESKTOPS)
        everyone = {}
        for s in online:
            d = self.desktops(s["id"])
            self.assertEqual(len(d), DESKTOPS, s["hostname"])
            for u, x in d.items():
                self.assertTrue(x["name"].startswith(s["hostname"] + "-d"), x["name"])
                everyone[u] = s["id"]
        self.assertEqual(len(everyone), SERVERS * DESKTOPS)  # UUIDs are distinct across members

        # a task for one member's domain runs on that member's hypervisor only
        target = by_host["%s-7" % f.hostname]
        uuid_ = sorted(self.desktops(target["id"]))[3]
        t = self.admin.post("/api/v1/servers/%d/tasks" % target["id"],
                            {"type": "domain.destroy", "params": {"uuid": uuid_}})
        self.assertEqual(t.status, 202, t)
        done = wait_until(lambda: (lambda x: x if x["state"] in ("succeeded", "failed") else None)(
            self.admin.get("/api/v1/tasks/%d" % t.json["id"]).json), timeout=20)
        self.assertIsNotNone(done, "the task never finished:\n" + fail_log())
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["result"], {"state": "shutoff", "changed": True})
        self.assertTrue(wait_until(lambda: self.desktops(target["id"])[uuid_]["state"] == "shutoff", timeout=10))
        # the lifecycle event came from that member
        events = self.admin.get("/api/v1/servers/%d/events" % target["id"]).json["items"]
        self.assertTrue([e for e in events if e["desktop_uuid"] == uuid_], events)
        # nothing else changed: a few heartbeats later, 199 running and this one shut off
        self.assertTrue(wait_until(lambda: self.module_desktops().get("shutoff") == 1, timeout=10))
        for s in online:
            for u, x in self.desktops(s["id"]).items():
                self.assertEqual(x["state"], "shutoff" if u == uuid_ else "running", (s["hostname"], x["name"]))

        # killing the process takes all 20 offline
        f.stop(signal.SIGKILL)
        gone = wait_until(lambda: all(s["state"] == "offline" for s in self.servers()), timeout=20, step=0.2)
        self.assertTrue(gone, [(s["hostname"], s["state"]) for s in self.servers()])
        self.assertEqual(self.rollup()["totals"]["online"], 0)

    def test_fleet_stops_cleanly_and_comes_back_as_the_same_servers(self):
        f = self.fleet = Fleet(self.admin, self.token, 3, 2).start()
        online = lambda: sorted((s["id"], s["hostname"]) for s in self.servers() if s["state"] == "online")  # noqa: E731
        first = wait_until(lambda: (lambda o: o if len(o) == 3 else None)(online()), timeout=30, step=0.2)
        self.assertTrue(first, f.log_text()[-3000:])
        self.assertEqual(f.stop(signal.SIGTERM), 0, f.log_text()[-3000:])
        self.assertIn("bic-agent fleet stopped", f.log_text())
        # same state directories, a new listener port: each member enrolls again with the
        # credential it holds and keeps its server row
        listen = lambda: {s["listen_url"] for s in self.servers()}  # noqa: E731
        before = listen()
        f.start()
        self.assertTrue(wait_until(lambda: listen().isdisjoint(before) and online() == first, timeout=30, step=0.2),
                        (self.servers(), f.log_text()[-3000:]))
        self.assertEqual(len(self.servers()), 3)


if __name__ == "__main__":
    unittest.main()

"""Agent <-> CCC trust (issue 12, docs/security.md).

CCC -> agent: tasks and calls are Ed25519-signed with a timestamp and nonce (tests/unit/
test_agent_daemon.c refuses bad signatures, stale times, reused nonces and other servers' tasks).
Agent -> CCC: the bearer credential (only its sha256 is stored) plus, for heartbeats, replay
protection: every heartbeat carries (epoch, seq) -- epoch the wall-clock millisecond the agent
process started, seq 1, 2, ... in that process -- and CCC refuses (409, reason "replayed") one whose
pair is not above the last it accepted, without storing anything of it. Shown here:
  - a replayed heartbeat (the exact same body, credential included) is refused and changes nothing;
    so is an older one, one of an older epoch, and a body without epoch after an epoch was used;
  - a restarted agent (a later epoch, seq from 1) is accepted;
  - the real bic-agent, whose last accepted epoch CCC holds in the future (its clock went back),
    takes the refusal's last_epoch and goes on above it: the server stays online;
  - an agent reports and acts only for its own server: another server's desktops in its
    heartbeats, removals and events touch only its own rows, another server's task status is 404,
    and its credential does not work under another server id.
Agents are served on their own FastCGI socket and workers ([server] agent_socket): that socket
answers the agent routes only, and nginx sends agents there (AgentsHaveTheirOwnSocket).
The per-route sweep of agent routes with another server's task and image ids is
tests/api/test_authz_sweep.py (test_agents_reach_only_their_own_servers_tasks_and_images).
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bictest import AdminTestCase, AgentProcess, sql_root, unique, wait_until  # noqa: E402
import fcgi_client  # noqa: E402
from test_inventory import FakeAgent  # noqa: E402
from test_agent import Agent  # noqa: E402

UUID1 = "6f1c2d3e-0000-4000-8000-000000000001"
UUID2 = "6f1c2d3e-0000-4000-8000-000000000002"


def desktop(uuid, name, state="running", **kw):
    d = {"uuid": uuid, "name": name, "state": state, "vcpus": 2, "memory_mib": 2048}
    d.update(kw)
    return d


def sql_value(var, statement):
    out = subprocess.run(["mariadb", "--no-defaults", "-S", os.path.join(var, "run", "mysqld.sock"), "-u", "root",
                          "-N", "-B", "bic", "-e", statement], check=True, capture_output=True, text=True).stdout
    return out.strip()


class TrustBase(AdminTestCase):
    def enrolled(self):
        bb = self.admin.post("/api/v1/building-blocks", {"name": unique("bb")}).json
        self.admin.post("/api/v1/building-blocks/%d/modules" % bb["id"], {"name": unique("m")})
        tok = self.admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb["id"]}).json["token"]
        a = FakeAgent(tok)
        a.enroll()
        return a

    def beat(self, a, body):
        return a.post("/api/v1/agent/heartbeat", body)

    def desktops(self, a):
        return {d["uuid"]: d for d in self.admin.get("/api/v1/servers/%d/desktops" % a.server_id).json["items"]}

    def assertReplayed(self, r, epoch, seq):
        self.assertEqual(r.status, 409, r)
        e = r.json["error"]
        self.assertEqual((e["code"], e["reason"], e["last_epoch"], e["last_seq"]), ("conflict", "replayed", epoch, seq), r)


class HeartbeatReplay(TrustBase):
    def test_a_replayed_heartbeat_is_refused_and_changes_nothing(self):
        a = self.enrolled()
        epoch = int(time.time() * 1000)
        first = {"seq": 1, "epoch": epoch, "full": True, "host": {"cpu_pct": 10.0},
                 "desktops": [desktop(UUID1, "d1", "running")]}
        self.assertEqual(self.beat(a, first).status, 200)
        second = {"seq": 2, "epoch": epoch, "full": False, "host": {"cpu_pct": 20.0},
                  "desktops": [desktop(UUID1, "d1", "paused")]}
        r = self.beat(a, second)
        self.assertEqual((r.status, r.json["resync"]), (200, False), r)
        hb_at = self.admin.get("/api/v1/servers/%d" % a.server_id).json["last_heartbeat_at"]
        # the same bodies again (a captured request, credential and all): refused, nothing stored
        self.assertReplayed(self.beat(a, first), epoch, 2)
        self.assertReplayed(self.beat(a, second), epoch, 2)
        # an older epoch with a high seq, and a body without epoch (epoch 0) after one was used
        self.assertReplayed(self.beat(a, dict(second, epoch=epoch - 1, seq=10 ** 6)), epoch, 2)
        self.assertReplayed(self.beat(a, {"seq": 10 ** 6, "full": True, "desktops": []}), epoch, 2)
        self.assertEqual(self.desktops(a)[UUID1]["state"], "paused")
        srv = self.admin.get("/api/v1/servers/%d" % a.server_id).json
        self.assertEqual(srv["load"]["cpu_pct"], 20.0)
        self.assertEqual(srv["last_heartbeat_at"], hb_at)
        # the next one in order is taken
        r = self.beat(a, {"seq": 3, "epoch": epoch, "full": False, "desktops": [desktop(UUID1, "d1", "shutoff")]})
        self.assertEqual((r.status, r.json["resync"]), (200, False), r)
        self.assertEqual(self.desktops(a)[UUID1]["state"], "shutoff")
        # a gap is taken too, but asks for a full heartbeat (as before)
        r = self.beat(a, {"seq": 9, "epoch": epoch, "full": False})
        self.assertEqual((r.status, r.json["resync"]), (200, True), r)
        # a restarted agent: a later epoch, seq from 1, a full heartbeat
        r = self.beat(a, {"seq": 1, "epoch": epoch + 5000, "full": True, "desktops": [desktop(UUID1, "d1")]})
        self.assertEqual((r.status, r.json["resync"]), (200, False), r)
        # the old process's heartbeats are now all old
        self.assertReplayed(self.beat(a, {"seq": 10, "epoch": epoch, "full": False}), epoch + 5000, 1)
        self.assertEqual(self.desktops(a)[UUID1]["state"], "running")

    def test_without_epoch_the_seq_alone_must_grow(self):
        a = self.enrolled()  # an agent of protocol version 1 before issue 12: epoch 0
        self.assertEqual(a.heartbeat(full=True, desktops=[]).status, 200)
        self.assertEqual(a.heartbeat().status, 200)
        self.assertReplayed(a.heartbeat(seq=a.seq), 0, a.seq)
        self.assertReplayed(a.heartbeat(seq=1, full=True, desktops=[]), 0, 2)
        self.assertEqual(a.heartbeat(seq=3).status, 200)

    def test_reenrollment_rotates_the_credential_so_old_heartbeats_stay_refused(self):
        a = self.enrolled()
        body = {"seq": 5, "epoch": 1000, "full": True, "desktops": []}
        old = a.auth()
        self.assertEqual(self.beat(a, body).status, 200)
        a.enroll(prove=True)  # hb_seq starts again at 0, with a new credential
        r = a.c.post("/api/v1/agent/heartbeat", dict(body, seq=6), headers=old, origin=False, csrf=False)
        self.assertJsonError(r, 401, "unauthenticated")
        self.assertEqual(self.beat(a, dict(body, seq=1)).status, 200)


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class RealAgentNumbering(TrustBase):
    def test_restart_and_a_clock_that_went_back(self):
        bb = self.admin.post("/api/v1/building-blocks", {"name": unique("bb")}).json
        self.admin.post("/api/v1/building-blocks/%d/modules" % bb["id"], {"name": unique("m")})
        tok = self.admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb["id"]}).json["token"]
        ag = Agent(self.admin, tok)
        ag.env["BIC_AGENT_HEARTBEAT_INTERVAL"] = "1"
        ag.start()
        try:
            var = self.admin.var

            def server():
                items = self.admin.get("/api/v1/servers?limit=500").json["items"]
                return next((s for s in items if s["hostname"] == ag.hostname), None)
            ok = wait_until(lambda: (server() or {}).get("state") == "online", timeout=30)
            self.assertTrue(ok, ag.log_text()[-2000:])
            sid = server()["id"]
            e1 = int(sql_value(var, "SELECT hb_epoch FROM servers WHERE id = %d" % sid))
            self.assertGreater(e1, int(time.time() * 1000) - 120000)  # the agent's start, in ms
            # a restart: a later epoch, accepted at once
            ag.stop()
            ag.start()
            ok = wait_until(lambda: int(sql_value(var, "SELECT hb_epoch FROM servers WHERE id = %d" % sid)) > e1,
                            timeout=20)
            self.assertTrue(ok, ag.log_text()[-2000:])
            # CCC has seen an epoch an hour ahead (the agent's clock went back): the agent is
            # refused once, takes last_epoch and goes on above it
            future = int(time.time() * 1000) + 3600 * 1000
            sql_root(var, "UPDATE servers SET hb_epoch = %d, hb_seq = 7 WHERE id = %d" % (future, sid))
            ok = wait_until(lambda: int(sql_value(var, "SELECT hb_epoch FROM servers WHERE id = %d" % sid)) > future,
                            timeout=20)
            self.assertTrue(ok, ag.log_text()[-2000:])
            self.assertIn("as a replay", ag.log_text())
            before = self.admin.get("/api/v1/servers/%d" % sid).json["last_heartbeat_at"]
            ok = wait_until(lambda: self.admin.get("/api/v1/servers/%d" % sid).json["last_heartbeat_at"] != before,
                            timeout=10)
            self.assertTrue(ok, "heartbeats stopped after the refusal")
            self.assertEqual(server()["state"], "online")
        finally:
            ag.stop()
            reports = ag.sanitizer_reports()
            ag.cleanup()
        self.assertEqual(reports, [])


class AgentsActOnlyForThemselves(TrustBase):
    def test_another_servers_desktops_tasks_and_credential(self):
        a, b = self.enrolled(), self.enrolled()
        self.assertEqual(a.heartbeat(full=True, desktops=[desktop(UUID1, "a-one", "running")]).status, 200)
        self.assertEqual(b.heartbeat(full=True, desktops=[]).status, 200)
        mine = self.desktops(a)[UUID1]
        # b reports a's desktop as its own (delta and full), removes it, and sends events about it
        self.assertEqual(b.heartbeat(desktops=[desktop(UUID1, "stolen", "shutoff")]).status, 200)
        self.assertEqual(b.heartbeat(full=True, desktops=[desktop(UUID1, "stolen", "crashed")]).status, 200)
        self.assertEqual(b.heartbeat(removed=[UUID1, UUID2]).status, 200)
        r = b.post("/api/v1/agent/events", {"events": [{"uuid": UUID1, "name": "stolen", "event": "stopped",
                                                        "state": "shutoff", "at": "2026-01-01T00:00:00Z"}]})
        self.assertEqual(r.status, 204, r)
        after = self.desktops(a)[UUID1]
        self.assertEqual((after["id"], after["name"], after["state"]), (mine["id"], "a-one", "running"))
        self.assertNotIn(UUID1, self.desktops(b))  # b's removal took only b's own row
        # a's task: b can neither report it nor learn about it
        task = self.admin.post("/api/v1/servers/%d/tasks" % a.server_id, {"type": "inventory.refresh"}).json
        for state in ("running", "succeeded", "failed"):
            r = b.post("/api/v1/agent/tasks/%d/status" % task["id"], {"state": state, "error": "x"})
            self.assertJsonError(r, 404, "not_found")
        self.assertNotIn(self.admin.get("/api/v1/tasks/%d" % task["id"]).json["state"], ("succeeded", "failed"))
        self.assertEqual(a.post("/api/v1/agent/tasks/%d/status" % task["id"], {"state": "succeeded"}).status, 204)
        # a credential is bound to its server id
        r = a.c.post("/api/v1/agent/heartbeat", {"seq": 99, "full": True, "desktops": []},
                     headers={"Authorization": "Bearer %d.%s" % (b.server_id, a.credential)}, origin=False, csrf=False)
        self.assertJsonError(r, 401, "unauthenticated")


if __name__ == "__main__":
    unittest.main()


class AgentsHaveTheirOwnSocket(TrustBase):
    def socket(self, name):
        return os.path.join(self.admin.var, "run", name)

    def test_the_agents_socket_serves_agent_routes_only(self):
        agent_sock = self.socket("bicd-agent.sock")
        self.assertTrue(os.path.exists(agent_sock), "bicd has no agents' socket")
        a = self.enrolled()
        auth = "Bearer %d.%s" % (a.server_id, a.credential)
        # a portal route on the agents' socket: refused, even with an admin's cookie
        cookie = "; ".join("%s=%s" % kv for kv in self.admin.cookies.items())
        for path in ("/api/v1/me", "/api/v1/servers", "/api/v1/auth/login", "/metrics"):
            with self.subTest(path=path):
                st, hdrs, body = fcgi_client.request(agent_sock, "GET", path, headers={"Cookie": cookie})
                self.assertEqual(st, 404, body)
                self.assertEqual(hdrs.get("content-type"), "application/json")
                self.assertIn("agent routes only", body.decode())
        # the same admin route on the portals' socket answers
        st, _, body = fcgi_client.request(self.socket("bicd.sock"), "GET", "/api/v1/servers",
                                          headers={"Cookie": cookie})
        self.assertNotEqual(st, 404, body)
        # an agent route on the agents' socket: authenticated as ever (no credential: 401; its own: 200)
        beat = json.dumps({"seq": 1, "full": False, "host": {"cpu_pct": 1.0, "mem_total_mib": 64000,
                                                             "mem_used_mib": 1000}}).encode()
        st, _, _ = fcgi_client.request(agent_sock, "POST", "/api/v1/agent/heartbeat", beat)
        self.assertEqual(st, 401)
        st, _, body = fcgi_client.request(agent_sock, "POST", "/api/v1/agent/heartbeat", beat,
                                          headers={"Authorization": auth})
        self.assertEqual(st, 200, body)

    def test_nginx_sends_agents_to_their_socket(self):
        a = self.enrolled()
        before = self.served_by_agent_workers()
        self.assertEqual(a.heartbeat().status, 200)
        self.assertTrue(wait_until(lambda: self.served_by_agent_workers() > before, timeout=5),
                        "the heartbeat did not reach the agents' workers")

    def served_by_agent_workers(self):
        with open(os.path.join(self.admin.var, "log", "bicd-access.log")) as f:
            return sum(1 for line in f if '"/api/v1/agent/heartbeat"' in line and '"listener":"agent"' in line)

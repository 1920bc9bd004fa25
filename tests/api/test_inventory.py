"""Inventory (building blocks, modules, servers, enrollment tokens) and the agent protocol
(docs/agent-protocol.md), driven by a stand-in agent written here in Python, so that CCC's side
is tested on its own. tests/api/test_agent.py runs the real bic-agent."""
import base64
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import AdminTestCase, Client, make_user, sql_root, unique, wait_until  # noqa: E402

UUID1 = "11111111-2222-3333-4444-555555555555"
UUID2 = "11111111-2222-3333-4444-666666666666"
FACTS = {"cpus": 16, "cores": 8, "memory_mib": 64000, "storage_gib": 500,
         "nics": [{"name": "ens1f0", "speed_mbps": 1000, "sriov_capable": True, "sriov_total_vfs": 63,
                   "driver": "ixgbe"},
                  {"name": "ens1f1", "speed_mbps": 1000, "sriov_capable": False, "sriov_total_vfs": 0,
                   "driver": "ixgbe"}],
         "hypervisor": {"uri": "qemu:///system", "type": "QEMU", "version": "7.2.0"}}


def desktop(uuid, name, state="running", **kw):
    d = {"uuid": uuid, "name": name, "state": state, "vcpus": 2, "memory_mib": 2048, "cpu_time_ns": 1}
    d.update(kw)
    return d


class TaskReceiver:
    """The agent's task listener: records every pushed task with its signature."""

    def __init__(self, status=202):
        self.got = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append((self.path, body, self.headers.get("X-BIC-Signature")))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeAgent:
    def __init__(self, token, listen_url="http://127.0.0.1:9", machine_id=None, hostname=None):
        self.c = Client()
        self.token = token
        self.machine_id = machine_id or unique("machine-id-")
        self.hostname = hostname or unique("bs-")
        self.listen_url = listen_url
        self.seq = 0

    def enroll(self, expect=200, facts=FACTS, prove=False):
        headers = self.auth() if prove else None
        r = self.c.post("/api/v1/agent/enroll", {"token": self.token, "machine_id": self.machine_id,
                                                 "hostname": self.hostname, "listen_url": self.listen_url,
                                                 "agent_version": "0.1.0", "facts": facts},
                        origin=False, csrf=False, headers=headers)
        if expect is not None:
            assert r.status == expect, r
        if r.status == 200:
            self.server_id, self.credential, self.pub = r.json["server_id"], r.json["credential"], r.json["ccc_public_key"]
        return r

    def auth(self):
        return {"Authorization": "Bearer %d.%s" % (self.server_id, self.credential)}

    def post(self, path, body):
        return self.c.post(path, body, headers=self.auth(), origin=False, csrf=False)

    def heartbeat(self, desktops=None, full=False, removed=None, seq=None, host=None):
        self.seq = seq if seq is not None else self.seq + 1
        body = {"seq": self.seq, "full": full,
                "host": host or {"cpu_pct": 25.0, "mem_total_mib": 64000, "mem_used_mib": 16000,
                                 "net_rx_bps": 1000, "net_tx_bps": 2000}}
        if desktops is not None:
            body["desktops"] = desktops
        if removed is not None:
            body["removed"] = removed
        return self.post("/api/v1/agent/heartbeat", body)


class InventoryBase(AdminTestCase):
    def make_bb(self):
        r = self.admin.post("/api/v1/building-blocks", {"name": unique("bb"), "description": "rack"})
        self.assertEqual(r.status, 201, r)
        return r.json

    def make_module(self, bb, max_servers=10):
        r = self.admin.post("/api/v1/building-blocks/%d/modules" % bb["id"],
                            {"name": unique("m"), "max_servers": max_servers})
        self.assertEqual(r.status, 201, r)
        return r.json

    def make_token(self, bb, module=None, **kw):
        body = {"building_block_id": bb["id"]}
        if module:
            body["module_id"] = module["id"]
        body.update(kw)
        r = self.admin.post("/api/v1/enrollment-tokens", body)
        self.assertEqual(r.status, 201, r)
        return r.json

    def enrolled(self, **kw):
        bb = self.make_bb()
        m = self.make_module(bb)
        tok = self.make_token(bb)
        a = FakeAgent(tok["token"], **kw)
        a.enroll()
        return a, bb, m

    def server(self, sid):
        r = self.admin.get("/api/v1/servers/%d" % sid)
        self.assertEqual(r.status, 200, r)
        return r.json


class Hierarchy(InventoryBase):
    def test_building_block_and_module_crud(self):
        bb = self.make_bb()
        self.assertEqual(self.admin.get("/api/v1/building-blocks/%d" % bb["id"]).json["name"], bb["name"])
        self.assertJsonError(self.admin.post("/api/v1/building-blocks", {"name": bb["name"]}), 409, "conflict")
        m = self.make_module(bb, max_servers=10)
        self.assertEqual(m["building_block_id"], bb["id"])
        self.assertJsonError(self.admin.post("/api/v1/building-blocks/%d/modules" % bb["id"], {"name": m["name"]}),
                             409, "conflict")
        names = [x["name"] for x in self.admin.get("/api/v1/building-blocks/%d/modules" % bb["id"]).json["items"]]
        self.assertEqual(names, [m["name"]])
        self.assertJsonError(self.admin.delete("/api/v1/building-blocks/%d" % bb["id"]), 409, "conflict")
        r = self.admin.patch("/api/v1/modules/%d" % m["id"], {"max_servers": 20, "name": "renamed"})
        self.assertEqual((r.status, r.json["max_servers"], r.json["name"]), (200, 20, "renamed"))
        self.assertEqual(self.admin.delete("/api/v1/modules/%d" % m["id"]).status, 204)
        self.assertEqual(self.admin.delete("/api/v1/building-blocks/%d" % bb["id"]).status, 204)
        self.assertJsonError(self.admin.get("/api/v1/building-blocks/%d" % bb["id"]), 404, "not_found")

    def test_validation(self):
        self.assertJsonError(self.admin.post("/api/v1/building-blocks", {"name": ""}), 422, "validation_failed")
        bb = self.make_bb()
        self.assertJsonError(self.admin.post("/api/v1/building-blocks/%d/modules" % bb["id"],
                                             {"name": "x", "max_servers": 0}), 422, "validation_failed")
        self.assertJsonError(self.admin.post("/api/v1/building-blocks/999999/modules", {"name": "x"}), 404, "not_found")
        self.assertJsonError(self.admin.get("/api/v1/servers?state=bogus"), 422, "validation_failed")

    def test_changes_audited(self):
        bb = self.make_bb()
        m = self.make_module(bb)
        r = self.admin.get("/api/v1/audit?action=module.create&target_type=module&target_id=%d" % m["id"])
        self.assertEqual(len(r.json["items"]), 1)
        self.assertEqual(r.json["items"][0]["summary"]["building_block_id"], bb["id"])

    def test_operator_reads_but_cannot_change(self):
        u, pw = make_user(self.admin, role="operator")
        op = Client()
        op.login(u["username"], pw)
        self.assertEqual(op.get("/api/v1/building-blocks").status, 200)
        self.assertEqual(op.get("/api/v1/topology").status, 200)
        self.assertJsonError(op.post("/api/v1/building-blocks", {"name": unique("bb")}), 403, "forbidden")
        self.assertJsonError(op.get("/api/v1/enrollment-tokens"), 403, "forbidden")


class Enrollment(InventoryBase):
    def test_token_shown_once_and_stored_hashed(self):
        bb = self.make_bb()
        t = self.make_token(bb, description="first rack")
        self.assertEqual(len(t["token"]), 43)
        self.assertTrue(t["valid"])
        listed = [x for x in self.admin.get("/api/v1/enrollment-tokens?building_block=%d" % bb["id"]).json["items"]]
        self.assertEqual(len(listed), 1)
        self.assertNotIn("token", listed[0])
        self.assertEqual(listed[0]["hint"], t["token"][:8])

    def test_enroll_reports_facts_and_becomes_online_on_heartbeat(self):
        a, bb, m = self.enrolled()
        s = self.server(a.server_id)
        self.assertEqual((s["state"], s["module_id"], s["building_block_id"]), ("enrolling", m["id"], bb["id"]))
        self.assertEqual(s["hardware"], {"cpus": 16, "cores": 8, "memory_mib": 64000, "storage_gib": 500, "nic_mbps": 2000})
        self.assertEqual(s["hypervisor"], "QEMU")
        self.assertEqual([n["name"] for n in s["nics"]], ["ens1f0", "ens1f1"])
        self.assertTrue(s["nics"][0]["sriov_capable"])
        # capacity: min(100 per server, 6 per core = 48, 50 per Gbps = 100)
        self.assertEqual(s["capacity"], {"desktops": 48, "by_servers": 100, "by_cores": 48, "by_nics": 100})
        self.assertEqual(a.heartbeat(full=True, desktops=[]).status, 200)
        self.assertEqual(self.server(a.server_id)["state"], "online")
        self.assertEqual(self.server(a.server_id)["load"]["cpu_pct"], 25.0)

    def test_reenroll_same_machine_keeps_one_row_and_replaces_credential(self):
        a, bb, m = self.enrolled()
        old = (a.server_id, a.credential)
        a.enroll(prove=True)  # rotation: the agent proves it holds the current credential
        self.assertEqual(a.server_id, old[0])
        self.assertNotEqual(a.credential, old[1])
        r = a.c.post("/api/v1/agent/heartbeat", {"seq": 1}, headers={"Authorization": "Bearer %d.%s" % old},
                     origin=False, csrf=False)
        self.assertJsonError(r, 401, "unauthenticated")
        self.assertEqual(a.heartbeat(full=True, desktops=[]).status, 200)
        servers = self.admin.get("/api/v1/servers?module=%d" % m["id"]).json["items"]
        self.assertEqual([s["id"] for s in servers], [a.server_id])

    def test_machine_id_alone_cannot_take_over_a_server(self):
        a, bb, m = self.enrolled()
        a.heartbeat(full=True, desktops=[])
        thief = FakeAgent(self.make_token(bb)["token"], machine_id=a.machine_id, hostname=unique("evil-"),
                          listen_url="http://127.0.0.1:7/")
        r = thief.enroll(expect=409)
        self.assertIn("reset", r.json["error"]["message"])
        self.assertEqual(a.heartbeat().status, 200)  # the real agent is untouched
        # a token of another building block never reaches this row, not even after a reset
        other = self.make_bb()
        self.make_module(other)
        self.assertEqual(self.admin.post("/api/v1/servers/%d/reset-enrollment" % a.server_id).status, 204)
        self.assertEqual(a.heartbeat().status, 401)  # the reset revokes the credential at once
        FakeAgent(self.make_token(other)["token"], machine_id=a.machine_id).enroll(expect=409)
        # after the reset, a token of its own building block re-enrolls it: same row
        a.enroll()
        self.assertEqual(a.heartbeat(full=True, desktops=[]).status, 200)
        self.assertEqual([s["id"] for s in self.admin.get("/api/v1/servers?module=%d" % m["id"]).json["items"]],
                         [a.server_id])
        audit = self.admin.get("/api/v1/audit?action=server.reset_enrollment&target_id=%d" % a.server_id).json
        self.assertEqual(len(audit["items"]), 1)

    def test_listen_url_must_be_a_plain_http_url(self):
        bb = self.make_bb()
        self.make_module(bb)
        tok = self.make_token(bb)["token"]
        for bad in ["file:///etc/passwd", "http://user:pw@10.0.0.1:7443", "http://10.0.0.1:7443/x?y=1",
                    "http://10.0.0.1:7443/#frag", "gopher://10.0.0.1/", "not a url", "http://10.0.0.1/a%2e"]:
            r = FakeAgent(tok, listen_url=bad).enroll(expect=422)
            self.assertIn("listen_url", r.json["error"]["message"], bad)
        for good in ["http://10.0.0.1:7443", "https://bs-01.example:7443", "http://127.0.0.1:9000/s/17"]:
            FakeAgent(tok, listen_url=good).enroll()

    def test_module_limit_holds_under_concurrent_enrollments(self):
        import threading
        bb = self.make_bb()
        self.make_module(bb, max_servers=1)
        agents = [FakeAgent(self.make_token(bb)["token"]) for _ in range(8)]
        codes = []
        ths = [threading.Thread(target=lambda a=a: codes.append(a.enroll(expect=None).status)) for a in agents]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        self.assertEqual(sorted(codes), [200] + [409] * 7)

    def test_bad_revoked_and_expired_tokens_refused(self):
        bb = self.make_bb()
        self.make_module(bb)
        r = FakeAgent("x" * 43).enroll(expect=401)
        self.assertEqual(r.json["error"]["code"], "bad_credentials")
        t = self.make_token(bb)
        self.assertEqual(self.admin.delete("/api/v1/enrollment-tokens/%d" % t["id"]).status, 204)
        FakeAgent(t["token"]).enroll(expect=401)
        t2 = self.make_token(bb)
        sql_root(self.admin.var, "UPDATE enrollment_tokens SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE id = %d" % t2["id"])
        FakeAgent(t2["token"]).enroll(expect=401)
        self.assertFalse(self.admin.get("/api/v1/enrollment-tokens?building_block=%d" % bb["id"]).json["items"][1]["valid"])

    def test_module_full_and_module_bound_token(self):
        bb = self.make_bb()
        m1 = self.make_module(bb, max_servers=1)
        t = self.make_token(bb, module=m1)
        FakeAgent(t["token"]).enroll()
        r = FakeAgent(t["token"]).enroll(expect=409)
        self.assertIn("room", r.json["error"]["message"])
        m2 = self.make_module(bb, max_servers=5)
        a = FakeAgent(self.make_token(bb)["token"])
        a.enroll()
        self.assertEqual(self.server(a.server_id)["module_id"], m2["id"])

    def test_enroll_validation(self):
        bb = self.make_bb()
        self.make_module(bb)
        tok = self.make_token(bb)["token"]
        c = Client()
        r = c.post("/api/v1/agent/enroll", {"token": tok, "machine_id": "short", "hostname": "h", "facts": {}},
                   origin=False, csrf=False)
        self.assertJsonError(r, 422, "validation_failed")
        r = c.post("/api/v1/agent/enroll", {"token": tok, "machine_id": unique("mid-long"), "hostname": "h"},
                   origin=False, csrf=False)
        self.assertJsonError(r, 422, "validation_failed")

    def test_enrollment_audited(self):
        a, bb, m = self.enrolled()
        r = self.admin.get("/api/v1/audit?action=server.enroll&target_type=server&target_id=%d" % a.server_id)
        self.assertEqual(len(r.json["items"]), 1)
        self.assertNotIn(a.token, json.dumps(r.json))
        self.assertNotIn(a.credential, json.dumps(r.json))


class Heartbeats(InventoryBase):
    def desktops(self, a):
        r = self.admin.get("/api/v1/servers/%d/desktops" % a.server_id)
        self.assertEqual(r.status, 200, r)
        return {d["uuid"]: d for d in r.json["items"]}

    def test_full_then_deltas_then_removed(self):
        a, _, _ = self.enrolled()
        r = a.heartbeat(full=True, desktops=[desktop(UUID1, "d1"), desktop(UUID2, "d2", "shutoff")])
        self.assertEqual((r.status, r.json["resync"]), (200, False))
        self.assertEqual({u: d["state"] for u, d in self.desktops(a).items()}, {UUID1: "running", UUID2: "shutoff"})
        r = a.heartbeat(desktops=[desktop(UUID2, "d2", "running", cpu_time_ns=99)])
        self.assertEqual(self.desktops(a)[UUID2]["state"], "running")
        self.assertEqual(self.desktops(a)[UUID2]["cpu_time_ns"], 99)
        self.assertEqual(self.desktops(a)[UUID1]["state"], "running")  # untouched by the delta
        a.heartbeat(removed=[UUID1])
        self.assertEqual(list(self.desktops(a)), [UUID2])
        a.heartbeat(full=True, desktops=[desktop(UUID1, "d1")])
        self.assertEqual(list(self.desktops(a)), [UUID1])  # a full heartbeat forgets the rest
        s = self.server(a.server_id)
        self.assertEqual(s["desktops"], {"total": 1, "running": 1})

    def test_counters_refresh_at_most_once_a_minute(self):
        # a running desktop's counters change on every heartbeat; CCC rewrites them only when the
        # state changes or the stored ones are a minute old (the cost of ingest at 100,000 desktops)
        a, _, _ = self.enrolled()
        a.heartbeat(full=True, desktops=[desktop(UUID1, "d1", cpu_time_ns=100)])
        a.heartbeat(desktops=[desktop(UUID1, "d1", cpu_time_ns=200)])
        self.assertEqual(self.desktops(a)[UUID1]["cpu_time_ns"], 100)
        sql_root(self.admin.var, "UPDATE desktops SET updated_at = NOW(3) - INTERVAL 61 SECOND"
                                 " WHERE server_id = %d" % a.server_id)
        a.heartbeat(desktops=[desktop(UUID1, "d1", cpu_time_ns=300)])
        self.assertEqual(self.desktops(a)[UUID1]["cpu_time_ns"], 300)
        a.heartbeat(desktops=[desktop(UUID1, "d1", "paused", cpu_time_ns=400)])
        d = self.desktops(a)[UUID1]
        self.assertEqual((d["state"], d["cpu_time_ns"]), ("paused", 400))

    def test_sequence_gap_asks_for_resync(self):
        a, _, _ = self.enrolled()
        a.heartbeat(full=True, desktops=[])
        self.assertFalse(a.heartbeat().json["resync"])
        self.assertTrue(a.heartbeat(seq=a.seq + 5).json["resync"])
        self.assertFalse(a.heartbeat(full=True, desktops=[]).json["resync"])

    def test_heartbeat_without_host_keeps_host_figures(self):
        a, _, _ = self.enrolled()
        a.heartbeat(full=True, desktops=[], host={"cpu_pct": 40.0, "mem_used_mib": 1234})
        a.post("/api/v1/agent/heartbeat", {"seq": a.seq + 1})
        self.assertEqual(self.server(a.server_id)["load"]["cpu_pct"], 40.0)
        self.assertEqual(self.server(a.server_id)["load"]["mem_used_mib"], 1234)

    def test_bad_heartbeats_refused_whole(self):
        a, _, _ = self.enrolled()
        a.heartbeat(full=True, desktops=[desktop(UUID1, "d1")])
        for bad in ([{"uuid": "not-a-uuid", "name": "x"}], [desktop(UUID2, "d2", "exploded")], ["x"],
                    [desktop(UUID2, "d2", vcpus=-1)], [desktop(UUID2, "d2", memory_mib=1e30)],
                    [desktop(UUID2, "d2", cpu_time_ns={})], [desktop(UUID2, "d2", vcpus="abc")]):
            r = a.heartbeat(desktops=bad)
            self.assertJsonError(r, 422, "validation_failed")
        self.assertEqual(list(self.desktops(a)), [UUID1])
        r = a.c.post("/api/v1/agent/heartbeat", {"seq": 1}, origin=False, csrf=False)
        self.assertJsonError(r, 401, "unauthenticated")
        r = a.c.post("/api/v1/agent/heartbeat", {"seq": 1}, headers={"Authorization": "Bearer %d.%s" % (a.server_id, "A" * 43)},
                     origin=False, csrf=False)
        self.assertJsonError(r, 401, "unauthenticated")

    def test_an_agent_reports_only_for_its_own_server(self):
        a, _, _ = self.enrolled()
        b, _, _ = self.enrolled()
        a.heartbeat(full=True, desktops=[desktop(UUID1, "mine")])
        b.heartbeat(full=True, desktops=[])
        # b's events about a's desktop touch only b's (empty) list
        b.post("/api/v1/agent/events", {"events": [{"uuid": UUID1, "name": "mine", "event": "stopped", "state": "shutoff"}]})
        self.assertEqual(self.desktops(a)[UUID1]["state"], "running")
        # b cannot report a status for a's task
        t = self.admin.post("/api/v1/servers/%d/tasks" % a.server_id, {"type": "inventory.refresh"}).json
        r = b.post("/api/v1/agent/tasks/%d/status" % t["id"], {"state": "succeeded"})
        self.assertJsonError(r, 404, "not_found")

    def test_event_batches_are_bounded(self):
        a, _, _ = self.enrolled()
        ev = [{"uuid": UUID1, "name": "d1", "event": "started", "state": "running"}] * 101
        self.assertJsonError(a.post("/api/v1/agent/events", {"events": ev}), 422, "validation_failed")
        self.assertEqual(a.post("/api/v1/agent/events", {"events": ev[:100]}).status, 204)

    def test_absurd_host_figures_are_ignored_not_fatal(self):
        a, _, _ = self.enrolled()
        a.heartbeat(full=True, desktops=[], host={"cpu_pct": 10.0, "mem_used_mib": 100})
        r = a.heartbeat(host={"mem_used_mib": 1e300, "net_rx_bps": -5})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.server(a.server_id)["load"]["mem_used_mib"], 100)

    def test_events_update_state_at_once_and_are_listed(self):
        a, _, _ = self.enrolled()
        a.heartbeat(full=True, desktops=[desktop(UUID1, "d1")])
        r = a.post("/api/v1/agent/events", {"events": [{"uuid": UUID1, "name": "d1", "event": "stopped",
                                                        "detail": "destroyed", "state": "shutoff",
                                                        "at": "2026-11-24T08:00:00.000Z"}]})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.desktops(a)[UUID1]["state"], "shutoff")
        ev = self.admin.get("/api/v1/servers/%d/events" % a.server_id).json["items"]
        self.assertEqual(ev[0]["kind"], "stopped")
        self.assertEqual(ev[0]["desktop_uuid"], UUID1)

    def test_offline_after_missed_heartbeats_then_online(self):
        # the test stack runs with a 1 s heartbeat interval: offline after 3 s of silence
        a, _, _ = self.enrolled()
        a.heartbeat(full=True, desktops=[])
        self.assertEqual(self.server(a.server_id)["state"], "online")
        went = wait_until(lambda: self.server(a.server_id)["state"] == "offline", timeout=15)
        self.assertTrue(went)
        audit = self.admin.get("/api/v1/audit?action=server.offline&target_type=server&target_id=%d" % a.server_id).json
        self.assertEqual(len(audit["items"]), 1)
        self.assertEqual(audit["items"][0]["actor_name"], "system")
        a.heartbeat()
        self.assertEqual(self.server(a.server_id)["state"], "online")
        # (failure recovery adds its own recovery.* events about the silent server)
        kinds = [e["kind"] for e in self.admin.get("/api/v1/servers/%d/events" % a.server_id).json["items"]
                 if not e["kind"].startswith("recovery.")]
        self.assertEqual(kinds[:2], ["online", "offline"])

    def test_enrolled_but_silent_goes_offline(self):
        a, _, _ = self.enrolled()
        self.assertEqual(self.server(a.server_id)["state"], "enrolling")
        self.assertTrue(wait_until(lambda: self.server(a.server_id)["state"] == "offline", timeout=15))
        a.heartbeat(full=True, desktops=[])
        self.assertEqual(self.server(a.server_id)["state"], "online")

    def test_maintenance_filter(self):
        a, _, m = self.enrolled()
        self.admin.patch("/api/v1/servers/%d" % a.server_id, {"maintenance": True})
        ids = [s["id"] for s in self.admin.get("/api/v1/servers?module=%d&maintenance=true" % m["id"]).json["items"]]
        self.assertEqual(ids, [a.server_id])
        self.assertEqual(self.admin.get("/api/v1/servers?module=%d&maintenance=false" % m["id"]).json["items"], [])
        self.assertJsonError(self.admin.get("/api/v1/servers?maintenance=maybe"), 422, "validation_failed")

    def test_maintenance_flag(self):
        a, _, _ = self.enrolled()
        a.heartbeat(full=True, desktops=[])
        r = self.admin.patch("/api/v1/servers/%d" % a.server_id, {"maintenance": True})
        self.assertEqual((r.status, r.json["maintenance"], r.json["state"]), (200, True, "online"))
        self.assertEqual(len(self.admin.get("/api/v1/audit?action=server.maintenance_on&target_id=%d" % a.server_id).json["items"]), 1)
        self.assertFalse(self.admin.patch("/api/v1/servers/%d" % a.server_id, {"maintenance": False}).json["maintenance"])

    def test_desktop_limit(self):
        a, _, _ = self.enrolled()
        a.heartbeat(full=True, desktops=[])
        path = "/api/v1/servers/%d" % a.server_id
        self.assertEqual(self.server(a.server_id)["capacity"]["by_servers"], 100)  # the paper's bServer
        r = self.admin.patch(path, {"max_desktops": 250})
        self.assertEqual((r.status, r.json["capacity"]["by_servers"], r.json["maintenance"]), (200, 250, False))
        self.assertEqual(self.server(a.server_id)["capacity"]["by_servers"], 250)
        au = self.admin.get("/api/v1/audit?action=server.limit&target_id=%d" % a.server_id).json["items"]
        self.assertEqual(len(au), 1)
        self.assertEqual((au[0]["summary"]["max_desktops_before"], au[0]["summary"]["max_desktops"]), (100, 250))
        self.admin.patch(path, {"max_desktops": 250})  # unchanged: no second entry
        self.assertEqual(len(self.admin.get("/api/v1/audit?action=server.limit&target_id=%d" % a.server_id)
                             .json["items"]), 1)
        for bad in ({}, {"max_desktops": 0}, {"max_desktops": 1001}, {"max_desktops": "9"},
                    {"max_desktops": 10, "maintenance": "yes"}):
            self.assertJsonError(self.admin.patch(path, bad), 422, "validation_failed")
        # a bad half leaves the other half undone
        self.assertEqual(self.server(a.server_id)["capacity"]["by_servers"], 250)
        r = self.admin.patch(path, {"max_desktops": 80, "maintenance": True})
        self.assertEqual((r.json["capacity"]["by_servers"], r.json["maintenance"]), (80, True))


def verify_ed25519(pub_b64, body, sig_b64):
    """Checks an Ed25519 signature with the openssl command line tool."""
    der = bytes.fromhex("302a300506032b6570032100") + base64.b64decode(pub_b64)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "pub.pem"), "w") as f:
            f.write("-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" % base64.b64encode(der).decode())
        with open(os.path.join(d, "body"), "wb") as f:
            f.write(body)
        with open(os.path.join(d, "sig"), "wb") as f:
            f.write(base64.b64decode(sig_b64))
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", os.path.join(d, "pub.pem"), "-rawin",
                            "-in", os.path.join(d, "body"), "-sigfile", os.path.join(d, "sig")], capture_output=True)
        return r.returncode == 0


class Tasks(InventoryBase):
    def task(self, tid):
        return self.admin.get("/api/v1/tasks/%d" % tid).json

    def test_task_is_pushed_signed_and_reported(self):
        rx = TaskReceiver()
        try:
            a, _, _ = self.enrolled(listen_url=rx.url)
            a.heartbeat(full=True, desktops=[desktop(UUID1, "d1", "shutoff")])
            r = self.admin.post("/api/v1/servers/%d/tasks" % a.server_id, {"type": "domain.start", "params": {"uuid": UUID1}})
            self.assertEqual(r.status, 202, r)
            t = r.json
            self.assertEqual(t["state"], "queued")
            self.assertTrue(wait_until(lambda: rx.got, timeout=10), "the task was never pushed")
            path, body, sig = rx.got[0]
            self.assertEqual(path, "/v1/tasks")
            msg = json.loads(body)
            self.assertEqual((msg["task_id"], msg["server_id"], msg["type"], msg["params"]),
                             (t["id"], a.server_id, "domain.start", {"uuid": UUID1}))
            self.assertLess(abs(msg["issued_at"] - time.time()), 30)
            self.assertGreaterEqual(len(msg["nonce"]), 22)
            self.assertTrue(verify_ed25519(a.pub, body, sig), "signature does not verify")
            self.assertFalse(verify_ed25519(a.pub, body.replace(b"domain.start", b"domain.destr"), sig))
            self.assertEqual(self.task(t["id"])["state"], "sent")
            self.assertEqual(a.post("/api/v1/agent/tasks/%d/status" % t["id"], {"state": "running"}).status, 204)
            self.assertEqual(self.task(t["id"])["state"], "running")
            self.assertEqual(a.post("/api/v1/agent/tasks/%d/status" % t["id"],
                                    {"state": "succeeded", "result": {"state": "running"}}).status, 204)
            done = self.task(t["id"])
            self.assertEqual((done["state"], done["result"], done["attempts"]), ("succeeded", {"state": "running"}, 1))
            self.assertIsNotNone(done["finished_at"])
            # a late duplicate report cannot move a finished task
            a.post("/api/v1/agent/tasks/%d/status" % t["id"], {"state": "failed", "error": "late"})
            self.assertEqual(self.task(t["id"])["state"], "succeeded")
        finally:
            rx.close()

    def test_task_to_dead_agent_fails_with_reason(self):
        # port 9 (discard) is closed on loopback: every push is refused
        a, _, _ = self.enrolled(listen_url="http://127.0.0.1:9")
        t = self.admin.post("/api/v1/servers/%d/tasks" % a.server_id, {"type": "inventory.refresh"}).json
        done = wait_until(lambda: (lambda x: x if x["state"] == "failed" else None)(self.task(t["id"])), timeout=40)
        self.assertIsNotNone(done, self.task(t["id"]))
        self.assertIn("agent unreachable", done["last_error"])
        self.assertIn("3 attempts", done["last_error"])
        self.assertEqual(done["attempts"], 3)

    def test_agent_refusing_is_retried_then_failed(self):
        rx = TaskReceiver(status=401)
        try:
            a, _, _ = self.enrolled(listen_url=rx.url)
            t = self.admin.post("/api/v1/servers/%d/tasks" % a.server_id, {"type": "inventory.refresh"}).json
            done = wait_until(lambda: (lambda x: x if x["state"] == "failed" else None)(self.task(t["id"])), timeout=40)
            self.assertIsNotNone(done)
            self.assertIn("HTTP 401", done["last_error"])
            self.assertEqual(len(rx.got), 3)
        finally:
            rx.close()

    def test_task_validation(self):
        a, _, _ = self.enrolled()
        url = "/api/v1/servers/%d/tasks" % a.server_id
        self.assertJsonError(self.admin.post(url, {"type": "domain.start"}), 422, "validation_failed")
        self.assertJsonError(self.admin.post(url, {"type": "domain.explode", "params": {"uuid": UUID1}}), 422, "validation_failed")
        self.assertJsonError(self.admin.post(url, {"type": "inventory.refresh", "params": {"x": 1}}), 422, "validation_failed")
        self.assertJsonError(self.admin.post("/api/v1/servers/999999/tasks", {"type": "inventory.refresh"}), 404, "not_found")

    def test_task_list_filters(self):
        a, _, _ = self.enrolled()
        ids = [self.admin.post("/api/v1/servers/%d/tasks" % a.server_id, {"type": "inventory.refresh"}).json["id"]
               for _ in range(3)]
        got = [t["id"] for t in self.admin.get("/api/v1/tasks?server=%d" % a.server_id).json["items"]]
        self.assertEqual(got, sorted(ids, reverse=True))
        self.assertJsonError(self.admin.get("/api/v1/tasks?state=lost"), 422, "validation_failed")


PROM_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')


def parse_prometheus(text):
    """A strict reader of the text exposition format 0.0.4: returns {name: [(labels, value)]}."""
    types, samples = {}, {}
    assert text.endswith("\n"), "must end with a newline"
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, "TYPE twice: " + name
            types[name] = kind
            continue
        m = PROM_LINE.match(line)
        assert m, "not a sample: %r" % line
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, "sample before its TYPE: " + name
        samples.setdefault(name, []).append((m.group(3) or "", float(m.group(7))))
    return types, samples


class Metrics(InventoryBase):
    def test_metrics_need_token_or_management_network(self):
        # the test stack's [metrics] networks exclude 127.0.0.1; only the token opens it
        c = Client()
        self.assertJsonError(c.get("/metrics"), 401, "unauthenticated")
        self.assertEqual(c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status, 401)
        self.assertEqual(self.admin.get("/metrics").status, 401)  # an admin session is not a scraper

    def test_metrics_are_valid_exposition(self):
        a, _, _ = self.enrolled()
        a.heartbeat(full=True, desktops=[desktop(UUID1, "d1")])
        r = Client().get("/metrics", headers={"Authorization": "Bearer test-metrics-token"})
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("content-type").startswith("text/plain; version=0.0.4"))
        types, samples = parse_prometheus(r.body)
        self.assertEqual(types["bic_http_request_duration_seconds"], "histogram")
        buckets = [v for _, v in samples["bic_http_request_duration_seconds_bucket"]]
        self.assertEqual(buckets, sorted(buckets))
        self.assertEqual(buckets[-1], samples["bic_http_request_duration_seconds_count"][0][1])
        up = [v for l, v in samples["bic_server_up"] if 'server="%d"' % a.server_id in l]
        self.assertEqual(up, [1.0])
        cpu = [v for l, v in samples["bic_server_cpu_ratio"] if 'server="%d"' % a.server_id in l]
        self.assertEqual(cpu, [0.25])
        self.assertGreaterEqual(sum(v for l, v in samples["bic_desktops"] if 'state="running"' in l), 1)

    def test_prometheus_reader_rejects_bad_text(self):
        for bad in ["x{a=\"1\"} 1\n", "# TYPE x gauge\nx{a=1} 1\n", "# TYPE x gauge\nx 1"]:
            with self.assertRaises(AssertionError):
                parse_prometheus(bad)


class Topology(InventoryBase):
    def test_rollup_counts_and_capacity(self):
        bb = self.make_bb()
        m1, m2 = self.make_module(bb), self.make_module(bb)
        agents = []
        for m in (m1, m1, m2):
            a = FakeAgent(self.make_token(bb, module=m)["token"])
            a.enroll()
            agents.append(a)
        agents[0].heartbeat(full=True, desktops=[desktop(UUID1, "d1"), desktop(UUID2, "d2", "shutoff")])
        agents[1].heartbeat(full=True, desktops=[])
        r = self.admin.get("/api/v1/topology?limit=200")
        self.assertEqual(r.status, 200)
        node = [b for b in r.json["items"] if b["id"] == bb["id"]][0]
        mods = {m["id"]: m for m in node["modules"]}
        self.assertEqual(mods[m1["id"]]["servers"]["total"], 2)
        self.assertEqual(mods[m1["id"]]["servers"]["online"], 2)
        self.assertEqual(mods[m2["id"]]["servers"]["enrolling"], 1)
        self.assertEqual(mods[m1["id"]]["desktops"], {"running": 1, "shutoff": 1, "total": 2})
        self.assertEqual(mods[m1["id"]]["capacity"]["desktops"], 96)  # 2 servers x 8 cores x 6
        self.assertEqual(node["totals"]["servers"], 3)
        self.assertEqual(node["totals"]["capacity"], 144)
        self.assertEqual(r.json["limits"], {"desktops_per_server": 100, "desktops_per_core": 6, "desktops_per_gbps": 50})

    def test_topology_pages(self):
        for _ in range(3):
            self.make_bb()
        seen, after = [], 0
        while True:
            r = self.admin.get("/api/v1/topology?limit=2&after=%d" % after).json
            seen += [b["id"] for b in r["items"]]
            if r["next_after"] is None:
                break
            after = r["next_after"]
        self.assertEqual(seen, sorted(set(seen)))
        self.assertGreaterEqual(len(seen), 3)


if __name__ == "__main__":
    unittest.main()

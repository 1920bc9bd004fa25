"""The connection broker: connect, sessions, per-pool security policies and one-time console
tickets — the API alone, then a 40-desktop floating pool on a test-driver fleet (concurrent
connects, stickiness, timeouts, power, refusals of every kind of bad ticket), then a real QEMU
desktop whose console is read through nginx's /console/<ticket> websocket."""
import concurrent.futures
import glob
import os
import signal
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bictest import AdminTestCase, AgentProcess, Client, make_user, sql_root, unique, wait_until  # noqa: E402
from bictest import ensure_libvirtd, stop_libvirtd  # noqa: E402
from test_pools import Fleet, QemuAgent, desktops_of, published_image, spec, topology, virsh  # noqa: E402
import rfb  # noqa: E402


def group_with(admin, users):
    g = admin.post("/api/v1/groups", {"name": unique("g")}).json
    for u in users:
        assert admin.put("/api/v1/groups/%d/members/%d" % (g["id"], u["id"])).status in (200, 204)
    return g


def signed_in(user, password, source=None):
    c = Client()
    c.source = source
    c.login(user["username"], password)
    return c


def upgrade(client, path, origin=None, cookies=True, source=None):
    """Sends a websocket upgrade for path through nginx; returns (status, body head)."""
    raw = socket.create_connection((client.host, client.port), timeout=10,
                                   source_address=(source, 0) if source else None)
    s = client.ctx.wrap_socket(raw, server_hostname=client.host)
    h = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (client.host, client.port), "Upgrade: websocket",
         "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
         "Sec-WebSocket-Protocol: binary", "Origin: %s" % (origin or client.origin)]
    if cookies and client.cookies:
        h.append("Cookie: " + "; ".join("%s=%s" % kv for kv in client.cookies.items()))
    s.sendall(("\r\n".join(h) + "\r\n\r\n").encode())
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
        if status != 101:
            s.settimeout(2)
            try:
                while len(rest) < 4096:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    rest += chunk
            except (socket.timeout, ssl.SSLError):
                pass
        return status, rest.decode("utf-8", "replace")
    finally:
        s.close()


class BrokerApi(AdminTestCase):
    """Policies, entitlement and network refusals, roles, and tickets that never were."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.image_id, _ = published_image(cls.admin, "bimg")
        cls.spec_id = spec(cls.admin)
        cls.bb, cls.mods = topology(cls.admin, ("m1",))

    def pool(self, **kw):
        body = {"name": unique("bp"), "type": "floating", "image_id": self.image_id, "spec_id": self.spec_id,
                "min_size": 0, "max_size": 0, "name_pattern": unique("bp").replace("_", "-") + "-{n}",
                "modules": [self.mods[0]["id"]]}
        body.update(kw)
        r = self.admin.post("/api/v1/pools", body)
        self.assertEqual(r.status, 201, r)
        return r.json

    def test_policy_defaults_update_validation_and_audit(self):
        p = self.pool()
        r = self.admin.get("/api/v1/pools/%d/policy" % p["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"clipboard": "both", "view_only": False, "max_session_s": 0,
                                  "idle_timeout_s": 0, "disconnect_timeout_s": 0, "allowed_networks": [],
                                  "max_sessions_per_user": 0, "user_power": True, "refresh_on_logoff": True})
        r = self.admin.patch("/api/v1/pools/%d/policy" % p["id"], {
            "clipboard": "in", "view_only": True, "idle_timeout_s": 900,
            "allowed_networks": ["10.0.0.0/8", "127.0.0.1", "fd00::/8"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["clipboard"], r.json["view_only"], r.json["idle_timeout_s"],
                          r.json["allowed_networks"], r.json["disconnect_timeout_s"]),
                         ("in", True, 900, ["10.0.0.0/8", "127.0.0.1", "fd00::/8"], 0))
        a = self.admin.get("/api/v1/audit?action=pool.policy&target_id=%d" % p["id"]).json["items"]
        self.assertEqual(len(a), 1, a)
        self.assertEqual(a[0]["summary"]["changed"]["clipboard"], {"from": "both", "to": "in"})
        self.assertNotIn("max_session_s", a[0]["summary"]["changed"])
        with self.cases() as case:
            for body in ({"clipboard": "sideways"}, {"idle_timeout_s": -1}, {"view_only": "yes"},
                         {"allowed_networks": ["10.0.0.0/33"]}, {"allowed_networks": ["not-a-net"]},
                         {"allowed_networks": ["10.0.0.0/8x"]}, {"max_sessions_per_user": 5000},
                         {"unknown": 1}):
                with case(body=body):
                    self.assertJsonError(self.admin.patch("/api/v1/pools/%d/policy" % p["id"], body), 422,
                                         "validation_failed")
        # nothing of the refused changes was written
        self.assertEqual(self.admin.get("/api/v1/pools/%d/policy" % p["id"]).json, r.json)
        self.assertJsonError(self.admin.get("/api/v1/pools/999999/policy"), 404, "not_found")

    def test_roles(self):
        p = self.pool()
        user, pw = make_user(self.admin)
        op, opw = make_user(self.admin, role="operator")
        u, o = signed_in(user, pw), signed_in(op, opw)
        self.assertJsonError(u.get("/api/v1/sessions"), 403, "forbidden")
        self.assertJsonError(u.get("/api/v1/pools/%d/policy" % p["id"]), 403, "forbidden")
        self.assertEqual(o.get("/api/v1/pools/%d/policy" % p["id"]).status, 200)
        self.assertJsonError(o.patch("/api/v1/pools/%d/policy" % p["id"], {"view_only": True}), 403, "forbidden")
        self.assertEqual(o.get("/api/v1/sessions").status, 200)
        anon = Client()
        self.assertJsonError(anon.post("/api/v1/pools/%d/connect" % p["id"], {}), 401, "unauthenticated")
        self.assertJsonError(anon.get("/api/v1/my/pools"), 401, "unauthenticated")
        # the console check is nginx's internal location: from outside it does not exist
        self.assertEqual(anon.get("/_bic/console-check").status, 404)

    def test_refusals_say_why(self):
        user, pw = make_user(self.admin)
        u = signed_in(user, pw)
        p = self.pool()
        r = u.post("/api/v1/pools/%d/connect" % p["id"], {})
        self.assertJsonError(r, 403, "forbidden")
        self.assertEqual(r.json["error"]["reason"], "not_entitled")
        self.assertEqual(u.get("/api/v1/my/pools").json["items"], [])
        self.assertIn(self.admin.put("/api/v1/pools/%d/entitlements/users/%d" % (p["id"], user["id"])).status,
                      (200, 204))
        mine = u.get("/api/v1/my/pools").json["items"]
        self.assertEqual([(x["id"], x["desktop"], x["session"]) for x in mine], [(p["id"], None, None)])
        # an empty pool at its maximum size
        r = u.post("/api/v1/pools/%d/connect" % p["id"], {})
        self.assertJsonError(r, 409, "conflict")
        self.assertEqual(r.json["error"]["reason"], "pool_exhausted")
        # a pool that may grow but whose module has no server
        p2 = self.pool(max_size=5, spare=1)
        self.admin.put("/api/v1/pools/%d/entitlements/users/%d" % (p2["id"], user["id"]))
        r = u.post("/api/v1/pools/%d/connect" % p2["id"], {})
        self.assertJsonError(r, 409, "conflict")
        self.assertEqual(r.json["error"]["reason"], "module_full", r)
        # the network policy is checked before anything else is given
        self.admin.patch("/api/v1/pools/%d/policy" % p["id"], {"allowed_networks": ["10.0.0.0/8"]})
        r = u.post("/api/v1/pools/%d/connect" % p["id"], {})
        self.assertJsonError(r, 403, "forbidden")
        self.assertEqual(r.json["error"]["reason"], "network_forbidden")
        self.assertIn("127.0.0.1", r.json["error"]["message"])
        self.admin.patch("/api/v1/pools/%d/policy" % p["id"], {"allowed_networks": ["127.0.0.0/8"]})
        r = u.post("/api/v1/pools/%d/connect" % p["id"], {})
        self.assertEqual(r.json["error"]["reason"], "pool_exhausted")
        # a paused pool with nothing free
        self.admin.post("/api/v1/pools/%d/pause" % p["id"], {})
        r = u.post("/api/v1/pools/%d/connect" % p["id"], {})
        self.assertEqual((r.status, r.json["error"]["reason"]), (409, "pool_unavailable"))
        self.assertJsonError(u.post("/api/v1/pools/999999/connect", {}), 404, "not_found")

    def test_tickets_that_were_never_issued_are_refused(self):
        user, pw = make_user(self.admin)
        u = signed_in(user, pw)
        for path in ("/console/" + "A" * 43, "/console/short", "/console/" + "b" * 64):
            status, body = upgrade(u, path)
            self.assertEqual(status, 403, (path, body))
            self.assertIn("ticket", body)
        status, _ = upgrade(u, "/console/" + "A" * 65)  # not a ticket's shape: no such location
        self.assertEqual(status, 404)


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class BrokerOnFleet(AdminTestCase):
    """A floating pool of 40 ready desktops on 2 test-driver servers, and 50 users."""

    USERS = 50

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bb, cls.mods = topology(cls.admin, ("m1",))
        token = cls.admin.post("/api/v1/enrollment-tokens", {"building_block_id": cls.bb["id"]}).json["token"]
        cls.fleet = Fleet(cls.admin, token, 2).start()
        cls.image_id, _ = published_image(cls.admin, "fimg")
        cls.spec_id = spec(cls.admin)
        cls.users = [make_user(cls.admin) for _ in range(cls.USERS)]
        cls.group = group_with(cls.admin, [u for u, _ in cls.users])
        with concurrent.futures.ThreadPoolExecutor(10) as ex:
            cls.clients = list(ex.map(lambda up: signed_in(*up), cls.users))
        online = wait_until(lambda: len([s for s in cls.admin.get("/api/v1/servers?module=%d" % cls.mods[0]["id"])
                                         .json["items"] if s["state"] == "online"]) == 2, timeout=30)
        assert online, cls.fleet.log_text()[-3000:]

    @classmethod
    def tearDownClass(cls):
        cls.fleet.stop(signal.SIGKILL)
        reports = cls.fleet.sanitizer_reports()
        cls.fleet.cleanup()
        super().tearDownClass()
        assert reports == [], reports

    def make_pool(self, size, type_="floating", **policy):
        r = self.admin.post("/api/v1/pools", {
            "name": unique("fp"), "type": type_, "image_id": self.image_id, "spec_id": self.spec_id,
            "min_size": size, "max_size": size, "name_pattern": unique("fp").replace("_", "-") + "-{n:2}",
            "modules": [self.mods[0]["id"]]})
        self.assertEqual(r.status, 201, r)
        pid = r.json["id"]
        self.admin.put("/api/v1/pools/%d/entitlements/groups/%d" % (pid, self.group["id"]))
        if policy:
            self.assertEqual(self.admin.patch("/api/v1/pools/%d/policy" % pid, policy).status, 200)
        ok = wait_until(lambda: self.admin.get("/api/v1/pools/%d" % pid).json["counts"]["ready"] == size,
                        timeout=90, step=0.3)
        self.assertTrue(ok, self.admin.get("/api/v1/pools/%d" % pid).json)
        ok = wait_until(lambda: all(d["state"] == "running" and d["present"] for d in desktops_of(self.admin, pid)),
                        timeout=30, step=0.3)
        self.assertTrue(ok)
        return pid

    def connect(self, client, pid, until_ready=True, timeout=30):
        """Connects like the portal: follows 202 progress until a ticket (or a refusal) comes."""
        deadline = time.monotonic() + timeout
        while True:
            r = client.post("/api/v1/pools/%d/connect" % pid, {})
            if r.status != 202 or not until_ready or time.monotonic() > deadline:
                return r
            time.sleep(r.json["retry_after_ms"] / 1000.0)

    def logoff_all(self, pid):
        live = self.admin.get("/api/v1/sessions?pool=%d&limit=1000" % pid).json["items"]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            rs = list(ex.map(lambda s: self.admin.post("/api/v1/sessions/%d/logoff" % s["id"]), live))
        self.assertTrue(all(r.status == 200 for r in rs), [r for r in rs if r.status != 200][:3])

    def test_50_concurrent_connects_to_40_desktops_twenty_times(self):
        pid = self.make_pool(40, refresh_on_logoff=False)
        for round_ in range(20):
            with concurrent.futures.ThreadPoolExecutor(50) as ex:
                rs = list(ex.map(lambda c: c.post("/api/v1/pools/%d/connect" % pid, {}), self.clients))
            given = [r.json["desktop"]["id"] for r in rs if r.status == 200]
            refused = [r for r in rs if r.status != 200]
            self.assertEqual(len(given), 40, (round_, [r for r in refused if r.status != 409][:3]))
            self.assertEqual(len(set(given)), 40, "round %d gave a desktop twice" % round_)
            self.assertEqual(len(refused), 10, round_)
            for r in refused:
                self.assertEqual((r.status, r.json["error"]["reason"]), (409, "pool_exhausted"), r)
            for r in rs:
                if r.status == 200:
                    self.assertRegex(r.json["ticket"], r"^[A-Za-z0-9_-]{43}$")
                    self.assertEqual(r.json["console_path"], "/console/" + r.json["ticket"])
                    self.assertLessEqual(r.json["expires_in"], 30)
                    self.assertRegex(r.json["password"], r"^[A-Za-z0-9]{8}$")
            # the database agrees: 40 live sessions on 40 distinct desktops, each assigned to its user
            live = self.admin.get("/api/v1/sessions?pool=%d&limit=1000" % pid).json["items"]
            self.assertEqual(len(live), 40)
            self.assertEqual(len({s["desktop"]["id"] for s in live}), 40)
            self.logoff_all(pid)
            self.assertEqual(self.admin.get("/api/v1/sessions?pool=%d" % pid).json["items"], [])

    def test_a_ready_desktop_its_server_has_not_listed_yet_means_wait_not_exhausted(self):
        # a desktop is given only once its server's heartbeat lists it (present); a ready, free
        # desktop that is not listed yet is on its way: the answer is 202 waiting, never 409
        pid = self.make_pool(1, refresh_on_logoff=False)
        d = desktops_of(self.admin, pid)[0]
        sql_root(self.admin.var, "UPDATE desktops SET present = FALSE WHERE id = %d" % d["id"])
        c = self.clients[2]
        r = c.post("/api/v1/pools/%d/connect" % pid, {})
        # the server's next heartbeat may list it first (then it is given at once)
        self.assertIn(r.status, (200, 202), r)
        if r.status == 202:
            self.assertEqual(r.json["progress"]["step"], "waiting", r.json)
            self.assertIsNone(r.json["session"], r.json)
        sql_root(self.admin.var, "UPDATE desktops SET present = TRUE WHERE id = %d" % d["id"])
        r = self.connect(c, pid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["desktop"]["id"], d["id"])
        # once it is taken, the pool is exhausted for the next user: that stays a 409
        r = self.clients[3].post("/api/v1/pools/%d/connect" % pid, {})
        self.assertEqual((r.status, r.json["error"]["reason"]), (409, "pool_exhausted"), r)
        self.logoff_all(pid)

    def test_reconnect_dedicated_stickiness_power_and_session_limit(self):
        pid = self.make_pool(3, "dedicated", user_power=False)
        (user, pw), c = self.users[0], self.clients[0]
        first = self.connect(c, pid)
        self.assertEqual(first.status, 200, first)
        again = self.connect(c, pid)
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json["session"]["id"], first.json["session"]["id"], "a live session is reused")
        self.assertEqual(again.json["desktop"]["id"], first.json["desktop"]["id"])
        self.assertNotEqual(again.json["ticket"], first.json["ticket"])
        self.assertNotEqual(again.json["password"], first.json["password"])
        d = first.json["desktop"]["id"]
        mine = [x for x in c.get("/api/v1/my/pools").json["items"] if x["id"] == pid][0]
        self.assertEqual((mine["desktop"]["id"], mine["session"]["id"]), (d, first.json["session"]["id"]))
        # log off: a dedicated desktop stays the user's, the next connect gets it back
        self.assertEqual(c.post("/api/v1/sessions/%d/logoff" % first.json["session"]["id"]).json["state"],
                         "logged_off")
        self.assertEqual(self.admin.get("/api/v1/desktops/%d" % d).json["assigned_user_id"], user["id"])
        third = self.connect(c, pid)
        self.assertEqual(third.json["desktop"]["id"], d)
        self.assertNotEqual(third.json["session"]["id"], first.json["session"]["id"])
        # another user never gets it, even by asking for it
        r = self.clients[1].post("/api/v1/desktops/%d/connect" % d, {})
        self.assertEqual((r.status, r.json["error"]["reason"]), (409, "desktop_taken"), r)
        # power: the pool forbids it, then allows it
        r = c.post("/api/v1/desktops/%d/power" % d, {"action": "restart"})
        self.assertEqual((r.status, r.json["error"]["reason"]), (403, "power_not_allowed"), r)
        self.admin.patch("/api/v1/pools/%d/policy" % pid, {"user_power": True})
        r = c.post("/api/v1/desktops/%d/power" % d, {"action": "restart"})
        self.assertEqual(r.status, 202, r)
        t = wait_until(lambda: (lambda x: x if x["state"] in ("succeeded", "failed") else None)(
            self.admin.get("/api/v1/tasks/%d" % r.json["task_id"]).json), timeout=20)
        self.assertEqual((t["type"], t["state"]), ("domain.reboot", "succeeded"), t)
        self.assertJsonError(self.clients[1].post("/api/v1/desktops/%d/power" % d, {"action": "shutdown"}), 404,
                             "not_found")
        self.assertJsonError(c.post("/api/v1/desktops/%d/power" % d, {"action": "explode"}), 422,
                             "validation_failed")
        # at most one live session per user across pools where the policy says so
        p2 = self.make_pool(2, max_sessions_per_user=1)
        r = c.post("/api/v1/pools/%d/connect" % p2, {})
        self.assertEqual((r.status, r.json["error"]["reason"]), (409, "session_limit"), r)

    def test_timeouts_log_off_and_refresh_a_floating_desktop(self):
        pid = self.make_pool(2, disconnect_timeout_s=2)
        c = self.clients[2]
        r = self.connect(c, pid)
        self.assertEqual(r.status, 200, r)
        sid, d = r.json["session"]["id"], r.json["desktop"]["id"]
        # no console page reports: after the grace time (6 s here) the session is disconnected,
        # 2 s later logged off, and the floating desktop is refreshed and back in the pool
        s = wait_until(lambda: (lambda x: x if x["state"] == "logged_off" else None)(
            self.admin.get("/api/v1/sessions/%d" % sid).json), timeout=30, step=0.3)
        self.assertIsNotNone(s, self.admin.get("/api/v1/sessions/%d" % sid).json)
        self.assertEqual((s["end_reason"], s["ended_by"]), ("disconnect_timeout", "policy"))
        self.assertIsNotNone(s["disconnected_at"])
        back = wait_until(lambda: (lambda x: x if x["phase"] == "ready" and x["assigned_user_id"] is None
                                   and x["phase_changed_at"] > s["ended_at"] else None)(
            self.admin.get("/api/v1/desktops/%d" % d).json), timeout=30, step=0.3)
        self.assertIsNotNone(back, self.admin.get("/api/v1/desktops/%d" % d).json)
        audit = self.admin.get("/api/v1/audit?action=session.logoff&target_id=%d" % sid).json["items"]
        self.assertEqual(audit[0]["summary"]["reason"], "disconnect_timeout", audit)
        # idle: the console page keeps reporting but nobody types
        self.admin.patch("/api/v1/pools/%d/policy" % pid, {"disconnect_timeout_s": 0, "idle_timeout_s": 3})
        r = self.connect(c, pid)
        self.assertEqual(r.status, 200, r)
        sid = r.json["session"]["id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            a = c.post("/api/v1/sessions/%d/activity" % sid, {"idle_s": 3600})
            if a.status != 204:
                break
            time.sleep(0.5)
        self.assertEqual((a.status, a.json["error"]["reason"]), (409, "session_ended"), a)
        s = self.admin.get("/api/v1/sessions/%d" % sid).json
        self.assertEqual((s["state"], s["end_reason"]), ("logged_off", "idle_timeout"), s)

    def test_bad_tickets_are_refused(self):
        pid = self.make_pool(2)
        c, other = self.clients[3], self.clients[4]

        def ticket():
            r = self.connect(c, pid)
            self.assertEqual(r.status, 200, r)
            return r.json["ticket"]
        # another user's session cookie
        status, body = upgrade(other, "/console/" + ticket())
        self.assertEqual(status, 403, body)
        self.assertIn("another user", body)
        # a foreign Origin
        status, body = upgrade(c, "/console/" + ticket(), origin="https://evil.example")
        self.assertEqual(status, 403, body)
        self.assertIn("Origin", body)
        # no session cookie at all
        status, body = upgrade(c, "/console/" + ticket(), cookies=False)
        self.assertEqual(status, 403, body)
        # another client address (the ticket was issued to 127.0.0.1)
        status, body = upgrade(c, "/console/" + ticket(), source="127.0.0.2")
        self.assertEqual(status, 403, body)
        self.assertIn("another client address", body)
        # expired (tickets live 5 s in the test stack)
        t = ticket()
        time.sleep(6)
        status, body = upgrade(c, "/console/" + t)
        self.assertEqual(status, 403, body)
        self.assertIn("expired", body)
        # used once (here by a right request, refused only because a test driver has no console), then reused
        t = ticket()
        status, body = upgrade(c, "/console/" + t)
        self.assertEqual(status, 409, body)
        self.assertIn("no console", body)
        status, body = upgrade(c, "/console/" + t)
        self.assertEqual(status, 403, body)
        self.assertIn("already used", body)
        # a connect from a network the policy forbids gets no ticket at all (here: from 127.0.0.2)
        self.admin.patch("/api/v1/pools/%d/policy" % pid, {"allowed_networks": ["127.0.0.1/32"]})
        user, pw = self.users[5]
        far = signed_in(user, pw, source="127.0.0.2")
        r = far.post("/api/v1/pools/%d/connect" % pid, {})
        self.assertEqual((r.status, r.json["error"]["reason"]), (403, "network_forbidden"), r)
        # no ticket ever reaches a log file
        logs = ""
        for f in glob.glob(os.path.join(self.admin.var, "log", "*")):
            if os.path.isfile(f):
                with open(f, errors="replace") as fh:
                    logs += fh.read()
        self.assertNotIn(t, logs)
        self.assertIn("/console/…", logs)

    def test_admin_sees_disconnects_and_logs_off(self):
        pid = self.make_pool(2)
        c = self.clients[6]
        r = self.connect(c, pid)
        sid = r.json["session"]["id"]
        live = self.admin.get("/api/v1/sessions?state=live&pool=%d" % pid).json["items"]
        self.assertEqual([(s["id"], s["user"]["id"], s["client_ip"]) for s in live],
                         [(sid, self.users[6][0]["id"], "127.0.0.1")])
        self.assertIsNotNone(live[0]["server"]["hostname"])
        r = self.admin.post("/api/v1/sessions/%d/disconnect" % sid)
        self.assertEqual((r.status, r.json["state"], r.json["end_reason"]), (200, "disconnected", "admin_disconnect"))
        r = self.admin.post("/api/v1/sessions/%d/logoff" % sid)
        self.assertEqual((r.status, r.json["state"], r.json["end_reason"]), (200, "logged_off", "admin_logoff"))
        self.assertJsonError(self.admin.post("/api/v1/sessions/%d/logoff" % sid), 409, "conflict")
        self.assertEqual(self.admin.get("/api/v1/sessions?state=live&pool=%d" % pid).json["items"], [])
        self.assertEqual(len(self.admin.get("/api/v1/sessions?state=all&pool=%d" % pid).json["items"]), 1)
        # a user cannot see or end another user's session
        self.assertJsonError(self.clients[7].get("/api/v1/sessions/%d" % sid), 404, "not_found")
        self.assertJsonError(self.clients[7].post("/api/v1/sessions/%d/logoff" % sid), 404, "not_found")
        self.assertJsonError(self.admin.get("/api/v1/sessions?state=bogus"), 422, "validation_failed")


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class ConsoleOnQemu(AdminTestCase):
    """A real desktop on qemu:///system: its first frame read through nginx's /console/<ticket>."""

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
        token = self.admin.post("/api/v1/enrollment-tokens", {"building_block_id": self.bb["id"]}).json["token"]
        self.pool_name = unique("bicbroker").replace("_", "-")
        self.pool_dir = os.path.join("/var/lib/bic", self.pool_name)
        self.agent = QemuAgent(self.admin, token, self.pool_dir).start()
        self.image_id, _ = published_image(self.admin, "cgold")
        self.spec_id = spec(self.admin, memory_mib=256, vcpus=1, disk_gib=1)
        self.prefix = "pc-" + self.pool_name[-6:] + "-"

    def tearDown(self):
        self.agent.stop()
        reports = self.agent.sanitizer_reports()
        log = self.agent.log_text()
        self.agent.cleanup()
        for line in virsh("list", "--all", "--name").stdout.split():
            if line.startswith(self.prefix):
                virsh("destroy", line)
                virsh("undefine", line)
        virsh("pool-destroy", self.pool_name)
        virsh("pool-undefine", self.pool_name)
        import subprocess
        subprocess.run(["rm", "-rf", self.pool_dir])
        self.assertEqual(reports, [], "sanitizer reports from bic-agent:\n" + log[-2000:])

    def test_ticket_opens_the_desktop_screen_once_and_the_password_rotates(self):
        r = self.admin.post("/api/v1/pools", {
            "name": unique("cpool"), "type": "floating", "image_id": self.image_id, "spec_id": self.spec_id,
            "min_size": 1, "max_size": 1, "name_pattern": self.prefix + "{n}", "modules": [self.mods[0]["id"]]})
        self.assertEqual(r.status, 201, r)
        pid = r.json["id"]
        user, pw = make_user(self.admin)
        self.admin.put("/api/v1/pools/%d/entitlements/users/%d" % (pid, user["id"]))
        c = signed_in(user, pw)
        ok = wait_until(lambda: self.admin.get("/api/v1/pools/%d" % pid).json["counts"]["ready"] == 1,
                        timeout=90, step=0.5)
        self.assertTrue(ok, self.agent.log_text()[-3000:])
        d = desktops_of(self.admin, pid)[0]
        # a fresh desktop already has a VNC password nobody was told
        self.assertRegex(virsh("dumpxml", "--security-info", d["uuid"]).stdout, r"passwd='[A-Za-z0-9]{8}'")

        r = c.post("/api/v1/pools/%d/connect" % pid, {})
        for _ in range(60):
            if r.status != 202:
                break
            time.sleep(r.json["retry_after_ms"] / 1000.0)
            r = c.post("/api/v1/pools/%d/connect" % pid, {})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["console"], {"available": True})
        live = virsh("dumpxml", "--security-info", d["uuid"]).stdout
        self.assertIn("passwd='%s'" % r.json["password"], live, "the connect set the VNC password")
        cookie = "; ".join("%s=%s" % kv for kv in c.cookies.items())
        url = "wss://%s:%d%s" % (c.host, c.port, r.json["console_path"])
        conn = rfb.ws_connect(url, origin=c.origin, cookie=cookie, timeout=10)
        try:
            # the boot sector has run by now: SeaBIOS's text is on the screen
            best = None
            for _ in range(10):
                w, h, secs, nonzero = rfb.rfb_first_frame(conn, password=r.json["password"], timeout=15)
                best = (w, h, secs, nonzero)
                if nonzero > 0.001:
                    break
                conn.close()
                r = c.post("/api/v1/pools/%d/connect" % pid, {})
                url = "wss://%s:%d%s" % (c.host, c.port, r.json["console_path"])
                conn = rfb.ws_connect(url, origin=c.origin, cookie=cookie, timeout=10)
                time.sleep(1)
            self.assertGreater(best[0] * best[1], 0, best)
            self.assertGreater(best[3], 0.001, "the screen is blank: %r" % (best,))
        finally:
            conn.close()
        s = self.admin.get("/api/v1/sessions/%d" % r.json["session"]["id"]).json
        self.assertEqual(s["state"], "connected", s)
        # the ticket was used: a second upgrade with it is refused before QEMU is reached
        with self.assertRaises(rfb.WebSocketRefused) as e:
            rfb.ws_connect(url, origin=c.origin, cookie=cookie, timeout=10)
        self.assertEqual(e.exception.status, 403)
        # the old password no longer opens the console once a new connect rotated it
        old = r.json["password"]
        r2 = c.post("/api/v1/pools/%d/connect" % pid, {})
        self.assertEqual(r2.status, 200, r2)
        self.assertNotEqual(r2.json["password"], old)
        conn = rfb.ws_connect("wss://%s:%d%s" % (c.host, c.port, r2.json["console_path"]), origin=c.origin,
                              cookie=cookie, timeout=10)
        try:
            with self.assertRaises(rfb.RFBAuthFailed):
                rfb.rfb_first_frame(conn, password=old, timeout=10)
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()

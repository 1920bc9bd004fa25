"""Authorisation sweep (issue 12), driven by the real route table (`bicd routes`).

Every route is called by someone who must be refused, with real ids of resources that belong to
someone else, and with a body its field table accepts (so a missing check would show as a 2xx,
not hide behind a 422):
  - every operator and admin route by a plain user, every admin route by an operator: 403;
  - every user route that takes a desktop, pool or session id by a plain user with another
    user's desktop and session and a pool they are not entitled to: 403 or 404, never 2xx, and
    the other user's session and desktop are unchanged afterwards; the same call with the
    caller's own ids succeeds (so the refusals are about ownership, not a malformed request);
  - every agent route that takes an id by an enrolled agent with another server's task and an
    image version it holds no copy of: 403 or 404; by a signed-in user: 401;
  - every user GET without an id (the user's own lists) never shows another user's pools,
    desktops, sessions, addresses or name.
A route with an id that none of these rules covers fails the sweep, so a new route cannot be
added without deciding who may call it.
"""
import json
import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bictest import REPO, AdminTestCase, AgentProcess, Client, make_user, unique, wait_until  # noqa: E402
from test_inventory import FakeAgent  # noqa: E402
from test_pools import Fleet, desktops_of, published_image, spec, topology  # noqa: E402

# User routes that take an id: who may use the id (checked against another user's resources).
OWNED = [
    ("POST", "/api/v1/pools/{id}/connect"),      # entitled users only
    ("POST", "/api/v1/desktops/{id}/connect"),   # entitled users; not someone else's desktop
    ("POST", "/api/v1/desktops/{id}/power"),     # the desktop's user only
    ("GET", "/api/v1/sessions/{id}"),            # the session's user (or an operator)
    ("POST", "/api/v1/sessions/{id}/activity"),  # the session's user only
    ("POST", "/api/v1/sessions/{id}/disconnect"),
    ("POST", "/api/v1/sessions/{id}/logoff"),    # last: the baseline ends the caller's session
]
# Agent routes that take an id: only for the calling server's own tasks and image copies.
AGENT_OWNED = {
    ("GET", "/api/v1/agent/image-versions/{id}/content"),
    ("PUT", "/api/v1/agent/image-versions/{id}/content"),
    ("POST", "/api/v1/agent/tasks/{id}/status"),
}
# Anonymous routes that take an id by design (they carry no one's data).
PUBLIC = {
    ("GET", "/api/v1/auth/oidc/{id}/start"),  # starts a sign-in with provider {id}
}
# The raw-body upload route (nginx stores the body; no JSON).
RAW = {("PUT", "/api/v1/images/{id}/upload")}


def route_table():
    for b in (os.path.join(REPO, "build", "test", "bicd"), os.path.join(REPO, "build", "bicd")):
        if os.access(b, os.X_OK):
            return json.loads(subprocess.run([b, "routes"], check=True, capture_output=True, text=True).stdout)
    raise unittest.SkipTest("bicd is not built")


def sample(field):
    """A value the field's table accepts."""
    t = field["type"]
    if t == "string":
        if field["choices"]:
            return field["choices"][0]
        n = max(field["min"], 8)
        if field["max"]:
            n = min(n, field["max"])
        return ("sweep" + "x" * 200)[:n]
    if t == "integer":
        return max(field["min"], min(1, field["max"]))
    if t == "boolean":
        return False
    if t == "string[]":
        return ["127.0.0.0/8"] * max(1, field["min"])
    if t == "integer[]":
        return [1] * max(1, field["min"])
    if t == "object":
        return {}
    return []


# Bodies where the first choice of a field would not show what the sweep needs.
BODIES = {("POST", "/api/v1/desktops/{id}/power"): {"action": "restart"}}


def body_for(route):
    """The JSON body to send (None: none): required fields filled in; {} for an empty table."""
    if (route["method"], route["path"]) in BODIES:
        return BODIES[(route["method"], route["path"])]
    if route["method"] in ("GET", "DELETE") and route["body_limit"] <= 64:
        return None
    if route["fields"]:
        return {f["name"]: sample(f) for f in route["fields"] if f["required"]}
    return {} if route["body_limit"] > 64 else None


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class AuthzSweep(AdminTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.routes = route_table()
        a = cls.admin
        cls.victim, cls.victim_pw = make_user(a)
        cls.attacker, cls.attacker_pw = make_user(a)
        cls.operator, cls.operator_pw = make_user(a, role="operator")
        cls.bb, cls.mods = topology(a, ("m1",))
        token = a.post("/api/v1/enrollment-tokens", {"building_block_id": cls.bb["id"]}).json
        cls.token_id = token["id"]
        cls.fleet = Fleet(a, token["token"], 1).start()
        ok = wait_until(lambda: [s for s in a.get("/api/v1/servers?module=%d" % cls.mods[0]["id"]).json["items"]
                                 if s["state"] == "online"], timeout=30)
        assert ok, cls.fleet.log_text()[-3000:]
        cls.server_id = ok[0]["id"]
        cls.image_id, cls.version = published_image(a, "szimg")
        cls.spec_id = spec(a)
        cls.group = a.post("/api/v1/groups", {"name": unique("szg")}).json
        a.put("/api/v1/groups/%d/members/%d" % (cls.group["id"], cls.victim["id"]))
        cls.task_id = a.post("/api/v1/servers/%d/tasks" % cls.server_id, {"type": "inventory.refresh"}).json["id"]
        # one pool for each user, each entitled to it alone, each user connected
        cls.vpool, cls.apool = cls.make_pool(cls.victim), cls.make_pool(cls.attacker)
        cls.v, cls.a, cls.o = Client(), Client(), Client()
        cls.v.login(cls.victim["username"], cls.victim_pw)
        cls.a.login(cls.attacker["username"], cls.attacker_pw)
        cls.o.login(cls.operator["username"], cls.operator_pw)
        cls.vconn = cls.connect(cls.v, cls.vpool)
        cls.aconn = cls.connect(cls.a, cls.apool)
        cls.vdesk = a.get("/api/v1/desktops/%d" % cls.vconn["desktop"]["id"]).json

    @classmethod
    def tearDownClass(cls):
        cls.fleet.stop(signal.SIGKILL)
        reports = cls.fleet.sanitizer_reports()
        cls.fleet.cleanup()
        super().tearDownClass()
        assert reports == [], reports

    @classmethod
    def make_pool(cls, user):
        r = cls.admin.post("/api/v1/pools", {
            "name": unique("szp"), "type": "floating", "image_id": cls.image_id, "spec_id": cls.spec_id,
            "min_size": 1, "max_size": 1, "name_pattern": unique("szp").replace("_", "-") + "-{n}",
            "modules": [cls.mods[0]["id"]]})
        assert r.status == 201, r
        pid = r.json["id"]
        assert cls.admin.put("/api/v1/pools/%d/entitlements/users/%d" % (pid, user["id"])).status in (200, 204)
        def ready():
            ds = desktops_of(cls.admin, pid)
            return ds and all(d["state"] == "running" and d["present"] and d["phase"] == "ready" for d in ds)
        assert wait_until(ready, timeout=90, step=0.3), cls.admin.get("/api/v1/pools/%d" % pid).json
        return pid

    @classmethod
    def connect(cls, client, pid):
        def attempt():
            r = client.post("/api/v1/pools/%d/connect" % pid, {})
            return r if r.status == 200 else None
        r = wait_until(attempt, timeout=30, step=0.5)
        assert r, client.post("/api/v1/pools/%d/connect" % pid, {})
        return r.json

    # ---- ids

    def resources(self, owner):
        """The id each path segment names. owner 'victim': the victim's (or anyone's) resources."""
        victim = owner == "victim"
        return {
            "users": self.victim["id"], "members": self.victim["id"],
            "groups": self.group["id"], "building-blocks": self.bb["id"], "modules": self.mods[0]["id"],
            "servers": self.server_id, "tasks": self.task_id, "enrollment-tokens": self.token_id,
            "images": self.image_id, "image-versions": self.version["id"], "specs": self.spec_id,
            "pools": self.vpool if victim else self.apool,
            "desktops": (self.vconn if victim else self.aconn)["desktop"]["id"],
            "sessions": (self.vconn if victim else self.aconn)["session"]["id"],
            "entitlements/users": self.victim["id"], "entitlements/groups": self.group["id"],
            # none of these exist in this run; every route under them is admin-only, and the
            # role is checked before any id is looked up
            "directories": 999999, "oidc-providers": 999999, "group-maps": 999999, "oidc": 999999,
        }

    def fill(self, path, owner="victim"):
        ids = self.resources(owner)
        segs = path.split("/")
        out = []
        for i, s in enumerate(segs):
            if s.startswith("{"):
                key = segs[i - 1]
                if key in ("users", "groups") and i >= 2 and segs[i - 2] == "entitlements":
                    key = "entitlements/" + key
                if key not in ids:
                    raise AssertionError("the sweep does not know what id '%s' of %s names: add it to "
                                         "resources() in tests/api/test_authz_sweep.py" % (s, path))
                s = str(ids[key])
            out.append(s)
        return "/".join(out)

    def call(self, client, route, owner="victim"):
        key = (route["method"], route["path"])
        path = self.fill(route["path"], owner)
        if key in RAW:
            return client.request(route["method"], path, raw=b"QFI\xfb" + b"\0" * 60,
                                  headers={"Content-Type": "application/octet-stream"})
        return client.request(route["method"], path, body=body_for(route))

    # ---- the sweep

    def test_every_route_with_an_id_is_classified(self):
        owned = set(OWNED)
        unknown = []
        for r in self.routes:
            key = (r["method"], r["path"])
            if "{" not in r["path"]:
                continue
            if r["role"] in ("operator", "admin"):
                self.fill(r["path"])  # raises for an id the sweep cannot fill
            elif key not in owned | AGENT_OWNED | PUBLIC:
                unknown.append("%s %s (%s)" % (r["method"], r["path"], r["role"]))
        self.assertEqual(unknown, [], "routes with ids that tests/api/test_authz_sweep.py does not classify: "
                                      "say who may use the id (OWNED, AGENT_OWNED or PUBLIC) and test it")
        for key in owned | AGENT_OWNED | PUBLIC | RAW:
            self.assertIn(key, {(r["method"], r["path"]) for r in self.routes}, "stale entry %s" % (key,))

    def test_a_plain_user_is_refused_every_operator_and_admin_route(self):
        n = 0
        with self.cases() as case:
            for r in self.routes:
                if r["role"] not in ("operator", "admin"):
                    continue
                n += 1
                with case(route="%s %s" % (r["method"], r["path"])):
                    self.assertJsonError(self.call(self.a, r), 403, "forbidden")
        self.assertGreater(n, 50)
        # nothing the user tried happened to the victim's things
        self.assertEqual(self.admin.get("/api/v1/users/%d" % self.victim["id"]).json["username"],
                         self.victim["username"])
        self.assertEqual(self.admin.get("/api/v1/pools/%d" % self.vpool).status, 200)

    def test_an_operator_is_refused_every_admin_route(self):
        n = 0
        with self.cases() as case:
            for r in self.routes:
                if r["role"] != "admin":
                    continue
                n += 1
                with case(route="%s %s" % (r["method"], r["path"])):
                    self.assertJsonError(self.call(self.o, r), 403, "forbidden")
        self.assertGreater(n, 40)

    def test_someone_elses_desktop_pool_and_session_are_refused(self):
        routes = {(r["method"], r["path"]): r for r in self.routes}
        vs, vd = self.vconn["session"]["id"], self.vconn["desktop"]["id"]
        before = self.admin.get("/api/v1/sessions/%d" % vs).json
        with self.cases() as case:
            for key in OWNED:
                r = routes[key]
                with case(route="%s %s" % key, ids="victim's"):
                    got = self.call(self.a, r, "victim")
                    self.assertIn(got.status, (403, 404), got)
                    self.assertIn(got.json["error"]["code"], ("forbidden", "not_found"), got)
                    self.assertNotIn("ticket", got.json)
                with case(route="%s %s" % key, ids="none such"):
                    path = re.sub(r"\{[a-z_]+\}", "987654321", key[1])
                    got = self.a.request(key[0], path, body=body_for(r))
                    self.assertIn(got.status, (403, 404), got)
                with case(route="%s %s" % key, ids="own"):  # the same request with the caller's ids works
                    got = self.call(self.a, r, "attacker")
                    self.assertIn(got.status, (200, 202, 204), got)
        # the victim's session and desktop are as they were
        after = self.admin.get("/api/v1/sessions/%d" % vs).json
        self.assertEqual((after["state"], after.get("ended_at")), (before["state"], before.get("ended_at")))
        self.assertNotIn(after["state"], ("logged_off", "disconnected"))
        d = self.admin.get("/api/v1/desktops/%d" % vd).json
        self.assertEqual(d["assigned_user_id"], self.victim["id"])
        # the tickets and sessions of one user are not another's to read
        self.assertJsonError(self.a.get("/api/v1/sessions"), 403, "forbidden")

    def test_a_users_own_lists_show_nothing_of_anyone_else(self):
        victim_marks = {self.victim["username"], self.vdesk["name"], self.vdesk.get("uuid") or "",
                        '"id":%d' % self.vconn["session"]["id"]}
        if self.vdesk.get("console_host"):
            victim_marks.add("%s:%s" % (self.vdesk["console_host"], self.vdesk.get("console_port")))
        victim_marks.discard("")
        n = 0
        with self.cases() as case:
            for r in self.routes:
                if r["role"] != "user" or r["method"] != "GET" or "{" in r["path"]:
                    continue
                n += 1
                with case(route=r["path"]):
                    got = self.a.get(r["path"])
                    self.assertEqual(got.status, 200, got)
                    text = json.dumps(got.json, separators=(",", ":"))
                    for m in victim_marks:
                        # '"id":1' must not match '"id":19'
                        self.assertIsNone(re.search(re.escape(m) + (r"(?!\d)" if m[-1].isdigit() else ""), text), m)
        self.assertGreaterEqual(n, 2)
        mine = self.a.get("/api/v1/my/pools").json["items"]
        self.assertEqual([p["id"] for p in mine], [self.apool])
        self.assertEqual(mine[0]["desktop"]["id"], self.aconn["desktop"]["id"])
        me = self.a.get("/api/v1/auth/me").json["user"]  # {"user": {id, username, ...}, "csrf_token", ...}
        self.assertEqual((me["id"], me["username"]), (self.attacker["id"], self.attacker["username"]))
        # and the victim's list does show the victim's (the marks above are real)
        vmine = self.v.get("/api/v1/my/pools").json["items"]
        self.assertEqual([(p["id"], p["desktop"]["id"]) for p in vmine], [(self.vpool, self.vdesk["id"])])

    def test_agents_reach_only_their_own_servers_tasks_and_images(self):
        bb, _ = topology(self.admin, ("m1",))
        tok = self.admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb["id"]})
        a1 = FakeAgent(tok.json["token"])
        a1.enroll()
        tok2 = self.admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb["id"]}).json["token"]
        a2 = FakeAgent(tok2)
        a2.enroll()
        task = self.admin.post("/api/v1/servers/%d/tasks" % a1.server_id, {"type": "inventory.refresh"}).json
        routes = {(r["method"], r["path"]): r for r in self.routes}
        vid = self.version["id"]
        with self.cases() as case:
            for key in sorted(AGENT_OWNED):
                with case(route="%s %s" % key):
                    if key[1].endswith("/status"):
                        path, body, raw = "/api/v1/agent/tasks/%d/status" % task["id"], {"state": "succeeded"}, None
                    else:
                        path, body, raw = "/api/v1/agent/image-versions/%d/content" % vid, None, (
                            b"QFI\xfb" + b"\0" * 60 if key[0] == "PUT" else None)
                    hdr = dict(a2.auth())
                    if raw is not None:
                        hdr["Content-Type"] = "application/octet-stream"
                        hdr["X-BIC-SHA256"] = "0" * 64
                    got = a2.c.request(key[0], path, body=body, raw=raw, headers=hdr, origin=False, csrf=False)
                    self.assertIn(got.status, (403, 404), got)
                    # a signed-in user is no agent
                    got = self.a.request(key[0], path, body=body, raw=raw,
                                         headers={"Content-Type": "application/octet-stream"} if raw else None)
                    self.assertEqual(got.status, 401, got)
                    self.assertIsNotNone(routes[key])
        # a1's task is still a1's to report (the refusal above was about the caller)
        t = self.admin.get("/api/v1/tasks/%d" % task["id"]).json
        self.assertNotEqual(t["state"], "succeeded")
        self.assertEqual(a1.post("/api/v1/agent/tasks/%d/status" % task["id"], {"state": "succeeded"}).status, 204)


if __name__ == "__main__":
    unittest.main()

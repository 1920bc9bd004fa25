"""Console abuse (issue 12, docs/security.md).

  - Open consoles are counted by nginx (limit_conn) per user (4) and per desktop (2), keyed by
    the user and desktop ids bicd's ticket check returns: one more is refused with 429 before it
    reaches the desktop, and closing one frees its place. Shown with real websockets through
    nginx to small websocket servers that stand in for QEMU's (each desktop's console address is
    reported by a fake agent's heartbeat; sessions and tickets are written as the broker writes
    them, so that five consoles need no five running VMs).
  - Ticket minting is rate-limited per user ([security] ticket_rate per ticket_rate_window,
    default 30 per 60 s): the next connect answers 429 "ticket_rate" with Retry-After, nothing of
    it is stored, and other users are not affected. Shown on a test-driver fleet through the real
    connect route.
  - No ticket reaches the access log: /console/<anything> is written as /console/….
"""
import base64
import hashlib
import os
import signal
import socket
import ssl
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bictest import AdminTestCase, AgentProcess, Client, LoopbackServer, make_user, read_http_head, sql_root, unique, wait_until  # noqa: E402
from test_inventory import FakeAgent  # noqa: E402
from test_agent_trust import sql_value  # noqa: E402

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class FakeVncWebsocket(LoopbackServer):
    """Stands in for QEMU's VNC websocket: answers the upgrade with 101 and holds the connection
    until the peer closes it (hold(); subclasses may do more there). Counts the connections that
    are open; keeps the last request head (head) and connection (conn); closed is set when a
    connection ends."""

    def __init__(self):
        self.open = 0
        self.lock = threading.Lock()
        self.head = ""
        self.conn = None
        self.closed = threading.Event()
        super().__init__()

    def one(self, c):
        with c:
            head, _ = read_http_head(c)
            if head is None:
                return
            self.head = head.decode("latin-1")
            key = ""
            for line in self.head.split("\r\n"):
                if line.lower().startswith("sec-websocket-key:"):
                    key = line.split(":", 1)[1].strip()
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: binary\r\n\r\n" % accept).encode())
            self.conn = c
            with self.lock:
                self.open += 1
            try:
                self.hold(c)
            except OSError:
                pass
            with self.lock:
                self.open -= 1
            self.closed.set()

    def hold(self, c):
        while c.recv(4096):
            pass


def console_fixture(cls, vnc_class, uuid_base, name_prefix, desktops):
    """For a test class: a building block with a module, an enrolled fake agent (cls.agent) whose
    heartbeat reports `desktops` running desktops (ids in cls.desktops), each with its console on
    a vnc_class() stand-in (cls.vnc); a signed-in user (cls.user, client cls.c); cls.sessions."""
    bb = cls.admin.post("/api/v1/building-blocks", {"name": unique("bb")}).json
    cls.admin.post("/api/v1/building-blocks/%d/modules" % bb["id"], {"name": unique("m")})
    tok = cls.admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb["id"]}).json["token"]
    cls.agent = FakeAgent(tok)
    cls.agent.enroll()
    cls.vnc = [vnc_class() for _ in range(desktops)]
    uuids = [uuid_base + "%012d" % i for i in range(desktops)]
    r = cls.agent.heartbeat(full=True, desktops=[
        {"uuid": u, "name": unique(name_prefix), "state": "running", "console_host": "127.0.0.1",
         "console_port": v.port} for u, v in zip(uuids, cls.vnc)])
    assert r.status == 200, r
    by_uuid = {d["uuid"]: d for d in
               cls.admin.get("/api/v1/servers/%d/desktops" % cls.agent.server_id).json["items"]}
    cls.desktops = [by_uuid[u]["id"] for u in uuids]
    cls.user, pw = make_user(cls.admin)
    cls.c = Client()
    cls.c.login(cls.user["username"], pw)
    cls.sessions = {}


def open_console(client, path):
    """A websocket upgrade through nginx; returns (status, body, socket left open when 101)."""
    raw = socket.create_connection((client.host, client.port), timeout=10)
    s = client.ctx.wrap_socket(raw, server_hostname=client.host)
    h = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (client.host, client.port), "Upgrade: websocket",
         "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
         "Sec-WebSocket-Protocol: binary", "Origin: %s" % client.origin,
         "Cookie: " + "; ".join("%s=%s" % kv for kv in client.cookies.items())]
    s.sendall(("\r\n".join(h) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    if status == 101:
        return status, "", s
    s.settimeout(2)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    s.close()
    return status, rest.decode("utf-8", "replace"), None


class OpenConsoleLimits(AdminTestCase):
    DESKTOPS = 5

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        console_fixture(cls, FakeVncWebsocket, "7e000000-0000-4000-8000-", "cd", cls.DESKTOPS)
        cls.other, opw = make_user(cls.admin)
        cls.o = Client()
        cls.o.login(cls.other["username"], opw)
        cls.open = []

    @classmethod
    def tearDownClass(cls):
        for s in cls.open:
            s.close()
        for v in cls.vnc:
            v.close()
        super().tearDownClass()

    def ticket(self, user, i):
        """A ticket for desktop i, written as the broker's connect writes it (sha256 only)."""
        if i not in self.sessions:  # one live session per desktop (a unique key)
            sql_root(self.admin.var,
                     "INSERT INTO desktop_sessions (user_id, desktop_id, server_id, state, client_ip)"
                     " VALUES (%d, %d, %d, 'connecting', '127.0.0.1')"
                     % (user["id"], self.desktops[i], self.agent.server_id))
            self.sessions[i] = True
        t = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        sql_root(self.admin.var,
                 "INSERT INTO console_tickets (ticket_hash, session_id, user_id, desktop_id, client_ip, expires_at)"
                 " SELECT UNHEX(SHA2('%s', 256)), id, %d, desktop_id, '127.0.0.1', NOW(3) + INTERVAL 60 SECOND"
                 " FROM desktop_sessions WHERE desktop_id = %d AND state <> 'logged_off'"
                 % (t, user["id"], self.desktops[i]))
        return t

    def console(self, client, user, i):
        status, body, s = open_console(client, "/console/" + self.ticket(user, i))
        if s:
            self.open.append(s)
        return status, body, s

    def close(self, s):
        s.close()
        self.open.remove(s)

    def wait_open(self, i, n):
        self.assertTrue(wait_until(lambda: self.vnc[i].open == n, timeout=5), (i, self.vnc[i].open, n))

    def test_per_desktop_then_per_user(self):
        # one desktop: two consoles (a reconnect may overlap), a third is refused before the desktop
        st1, _, s1 = self.console(self.c, self.user, 0)
        st2, _, s2 = self.console(self.c, self.user, 0)
        self.assertEqual((st1, st2), (101, 101))
        self.wait_open(0, 2)
        status, body, _ = self.console(self.c, self.user, 0)
        self.assertEqual(status, 429, body)
        self.assertIn("console_limit", body)
        self.wait_open(0, 2)
        # closing one frees its place
        self.close(s1)
        self.wait_open(0, 1)
        ok = wait_until(lambda: self.console(self.c, self.user, 0)[0] == 101, timeout=5)
        self.assertTrue(ok)
        self.wait_open(0, 2)
        # per user: 4 at most over all desktops (2 on desktop 0 now, + desktops 1 and 2)
        self.assertEqual(self.console(self.c, self.user, 1)[0], 101)
        self.assertEqual(self.console(self.c, self.user, 2)[0], 101)
        status, body, _ = self.console(self.c, self.user, 3)
        self.assertEqual(status, 429, body)
        self.assertEqual(self.vnc[3].open, 0)
        # another user is counted on his own (desktop 3 has no console open)
        status, body, s = self.console(self.o, self.other, 3)
        self.assertEqual(status, 101, body)
        self.wait_open(3, 1)
        # ... but the per-desktop count is the desktop's, whoever opens it
        status, body, _ = self.console(self.o, self.other, 0)
        self.assertEqual(status, 429, body)
        # the used tickets were logged without themselves
        with open(os.path.join(self.admin.var, "log", "nginx-access.log"), errors="replace") as f:
            log = f.read()
        self.assertIn('"uri":"/console/…"', log)
        self.assertNotRegex(log, r'"/console/[A-Za-z0-9_-]{8,}')


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class TicketRate(AdminTestCase):
    def test_minting_is_rate_limited_per_user(self):
        from test_pools import Fleet, desktops_of, published_image, spec, topology  # noqa: E402
        bb, mods = topology(self.admin, ("m1",))
        token = self.admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb["id"]}).json["token"]
        fleet = Fleet(self.admin, token, 1).start()
        try:
            image_id, _ = published_image(self.admin, "trimg")
            r = self.admin.post("/api/v1/pools", {
                "name": unique("tr"), "type": "floating", "image_id": image_id, "spec_id": spec(self.admin),
                "min_size": 2, "max_size": 2, "name_pattern": unique("tr").replace("_", "-") + "-{n}",
                "modules": [mods[0]["id"]]})
            self.assertEqual(r.status, 201, r)
            pid = r.json["id"]
            (u1, p1), (u2, p2) = make_user(self.admin), make_user(self.admin)
            for u in (u1, u2):
                self.admin.put("/api/v1/pools/%d/entitlements/users/%d" % (pid, u["id"]))
            ok = wait_until(lambda: all(d["state"] == "running" and d["present"] for d in desktops_of(self.admin, pid))
                            and len(desktops_of(self.admin, pid)) == 2, timeout=90, step=0.3)
            self.assertTrue(ok, fleet.log_text()[-2000:])
            c1, c2 = Client(), Client()
            c1.login(u1["username"], p1)
            c2.login(u2["username"], p2)

            def connect(c):
                for _ in range(60):
                    r = c.post("/api/v1/pools/%d/connect" % pid, {})
                    if r.status != 202:
                        return r
                    time.sleep(r.json["retry_after_ms"] / 1000.0)
                return r
            tickets = set()
            for i in range(30):  # [security] ticket_rate (30) in ticket_rate_window (60 s)
                r = connect(c1)
                self.assertEqual(r.status, 200, (i, r))
                tickets.add(r.json["ticket"])
            self.assertEqual(len(tickets), 30)
            r = connect(c1)
            self.assertEqual((r.status, r.json["error"]["code"], r.json["error"]["reason"]),
                             (429, "rate_limited", "ticket_rate"), r)
            self.assertEqual(r.header("retry-after"), "60")
            # nothing of the refused connect was stored: still 30 tickets for this user
            self.assertEqual(sql_value(self.admin.var, "SELECT COUNT(*) FROM console_tickets WHERE user_id = %d"
                                       % u1["id"]), "30")
            # another user is not affected
            self.assertEqual(connect(c2).status, 200)
        finally:
            fleet.stop(signal.SIGKILL)
            reports = fleet.sanitizer_reports()
            fleet.cleanup()
        self.assertEqual(reports, [])


if __name__ == "__main__":
    unittest.main()

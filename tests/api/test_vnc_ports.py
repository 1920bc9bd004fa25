"""VNC ports under parallel starts, and console address conflicts (issue 12, docs/security.md).

  - ConsoleConflicts (fake agents' heartbeats, no VMs): a console address (host:port) that two
    live desktops report at once is flagged on the heartbeat (event `console.conflict`, once,
    and a warning in bicd's log; the heartbeat itself is stored), nginx's console check refuses
    a ticket of either desktop with 409 `console_conflict` before anything reaches the port, and
    when one of them stops reporting it the other's console works again (`console.resolved`).
  - VncPortsOnQemu (real bic-agent on qemu:///system, TCG): a pool of BIC_VNC_STARTS desktops
    (CI: 100) is provisioned and started through CCC's normal path (reconciler -> signed
    provision tasks -> the agent defines and starts each domain), while other threads start
    extra domains straight through libvirt at the same moment, so libvirt's port allocator
    serves concurrent starts. Then, from every running domain's live XML and from CCC's
    desktops table: every VNC port and every websocket port is distinct (also across the two
    kinds), CCC's console address of each desktop is its domain's websocket on the management
    address, the agent's domains listen only on the management address (the agent is
    configured with the wildcard 0.0.0.0 that the ISO's bServer role sets), QEMU's sockets are
    bound to that address only, and no conflict was flagged. Every domain the test made is
    destroyed and undefined, also when it fails.

Manual: BIC_VNC_STARTS=N BIC_TEST_LAYERS=api BIC_TEST_PATTERN=test_vnc_ports.py tests/run
(needs about 30 MiB of RAM per domain: the test skips when MemAvailable is short; above 100 it
raises the one server's desktop limit through PATCH /servers/{id}). 500 does not finish on a
2-core machine: an idle TCG domain still costs about 0.8 % of a core (0.16 s of CPU per 20 s
with SeaBIOS waiting for a boot disk; an idle KVM domain here costs more, 1.1 %), so 550
domains want more than four cores just to idle, and the run saturated at 262 pool desktops
plus 50 direct ones after 16 minutes (load average 32), when the pool API stopped answering
in time. 250 (+25 direct) started every domain (275 running) but did not pass either: with
load averages of 8-39 the agent answered 32 of 250 create tasks later than CCC's 120 s task deadline, so CCC paused the pool after 5 failures in a row
(its guard against a broken image) and the pool never counted 250 ready.
"""
import base64
import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bictest import AdminTestCase, AgentProcess, Client, Stack, make_user, sql_root, unique, wait_until  # noqa: E402
from bictest import REPO, ensure_libvirtd, stop_libvirtd  # noqa: E402
from test_inventory import FakeAgent  # noqa: E402
from test_console_limits import FakeVncWebsocket, open_console  # noqa: E402
from test_pools import QemuAgent, published_image, spec, topology, virsh  # noqa: E402

STARTS = int(os.environ.get("BIC_VNC_STARTS", "100"))
EXTRA = max(4, STARTS // 10)     # domains started straight through libvirt meanwhile
EXTRA_THREADS = 4
MIB_PER_DOMAIN = 30              # MemAvailable fell ~24 MiB per idle TCG domain here (RSS ~47 MiB, shared pages)


def sql(var, statement):
    r = subprocess.run(["mariadb", "--no-defaults", "-S", os.path.join(var, "run", "mysqld.sock"), "-u", "root",
                       "-N", "-B", "bic", "-e", statement], capture_output=True, text=True, check=True, timeout=60)
    return [line.split("\t") for line in r.stdout.splitlines()]


def events(admin, server_id):
    r = admin.get("/api/v1/servers/%d/events?limit=500" % server_id)
    assert r.status == 200, r
    return r.json["items"]


class ConsoleConflicts(AdminTestCase):
    """Two live desktops reporting one console address: flagged, and no console opens on it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        bb = cls.admin.post("/api/v1/building-blocks", {"name": unique("bb")}).json
        cls.admin.post("/api/v1/building-blocks/%d/modules" % bb["id"], {"name": unique("m")})
        tok = cls.admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb["id"]}).json["token"]
        cls.a, cls.b = FakeAgent(tok), FakeAgent(tok)
        cls.a.enroll()
        cls.b.enroll()
        cls.vnc = [FakeVncWebsocket() for _ in range(4)]
        cls.user, pw = make_user(cls.admin)
        cls.c = Client()
        cls.c.login(cls.user["username"], pw)
        cls.sessions = {}

    @classmethod
    def tearDownClass(cls):
        for v in cls.vnc:
            v.close()
        super().tearDownClass()

    @staticmethod
    def desk(uuid, port, state="running", name=None):
        d = {"uuid": uuid, "name": name or "cc-" + uuid[-4:], "state": state}
        if port:
            d.update(console_host="127.0.0.1", console_port=port)
        return d

    def ids(self, agent):
        return {d["uuid"]: d["id"] for d in
                self.admin.get("/api/v1/servers/%d/desktops" % agent.server_id).json["items"]}

    def ticket(self, server_id, desktop_id):
        """A ticket for the desktop, written as the broker's connect writes it (sha256 only)."""
        if desktop_id not in self.sessions:
            sql_root(self.admin.var,
                     "INSERT INTO desktop_sessions (user_id, desktop_id, server_id, state, client_ip)"
                     " VALUES (%d, %d, %d, 'connecting', '127.0.0.1')" % (self.user["id"], desktop_id, server_id))
            self.sessions[desktop_id] = True
        t = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        sql_root(self.admin.var,
                 "INSERT INTO console_tickets (ticket_hash, session_id, user_id, desktop_id, client_ip, expires_at)"
                 " SELECT UNHEX(SHA2('%s', 256)), id, %d, desktop_id, '127.0.0.1', NOW(3) + INTERVAL 60 SECOND"
                 " FROM desktop_sessions WHERE desktop_id = %d AND state <> 'logged_off'"
                 % (t, self.user["id"], desktop_id))
        return t

    def console(self, server_id, desktop_id):
        status, body, s = open_console(self.c, "/console/" + self.ticket(server_id, desktop_id))
        if s:
            s.close()
        return status, body

    def kinds(self, agent, uuid):
        return [e["kind"] for e in events(self.admin, agent.server_id)
                if e.get("desktop_uuid") == uuid and e["kind"].startswith("console.")]

    def test_a_shared_address_is_flagged_and_never_proxied(self):
        p0, p1, p2 = (v.port for v in self.vnc[:3])
        a1, a2, a3 = ("7c000000-0000-4000-8000-%012d" % i for i in (1, 2, 3))
        b1, b2 = ("7c000000-0000-4000-8000-%012d" % i for i in (11, 12))
        # a1 and a3 are this server's own (distinct ports); b1 on another server claims a1's
        # address; a2 is shut off with a stale address (a shut-off domain holds no port)
        r = self.a.heartbeat(full=True, desktops=[self.desk(a1, p0), self.desk(a3, p2),
                                                  self.desk(a2, p0, state="shutoff")])
        self.assertEqual(r.status, 200, r)
        ida = self.ids(self.a)
        self.assertEqual(self.kinds(self.a, a1), [], "one live desktop on an address is no conflict")
        st, body = self.console(self.a.server_id, ida[a1])
        self.assertEqual(st, 101, body)
        self.assertTrue(wait_until(lambda: self.vnc[0].open == 0, timeout=5))

        r = self.b.heartbeat(full=True, desktops=[self.desk(b1, p0), self.desk(b2, p1)])
        self.assertEqual(r.status, 200, "a conflict never refuses the heartbeat: %r" % r)
        idb = self.ids(self.b)
        self.assertEqual(self.kinds(self.b, b1), ["console.conflict"])
        self.assertEqual(self.kinds(self.b, b2), [])
        # the other side is flagged by its own next heartbeat, once however many follow
        for _ in range(3):
            self.assertEqual(self.a.heartbeat(full=True, desktops=[self.desk(a1, p0), self.desk(a3, p2)]).status, 200)
        self.assertEqual(self.kinds(self.a, a1), ["console.conflict"])
        self.assertEqual(self.kinds(self.a, a3), [])
        detail = [e["detail"] for e in events(self.admin, self.a.server_id) if e["kind"] == "console.conflict"][0]
        self.assertIn("127.0.0.1:%d" % p0, detail)
        self.assertIn("desktop %d" % idb[b1], detail)
        self.assertEqual(sql(self.admin.var, "SELECT console_conflict FROM desktops WHERE id IN (%d, %d, %d)"
                             " ORDER BY id" % (ida[a1], ida[a3], idb[b1])), [["1"], ["0"], ["1"]])

        # neither desktop's ticket reaches the port; the other desktops are not affected
        for sid, did in ((self.a.server_id, ida[a1]), (self.b.server_id, idb[b1])):
            st, body = self.console(sid, did)
            self.assertEqual(st, 409, body)
            self.assertIn('"console_conflict"', body)
        self.assertEqual(self.vnc[0].open, 0)
        st, body = self.console(self.b.server_id, idb[b2])
        self.assertEqual(st, 101, body)
        with open(os.path.join(self.admin.var, "log", "bicd-error.log"), errors="replace") as f:
            log = f.read()
        self.assertIn("is also reported by desktop", log)

        # b1 shuts off: its address is a1's alone again, on both servers' next heartbeats
        self.assertEqual(self.b.heartbeat(full=True, desktops=[self.desk(b1, 0, state="shutoff"),
                                                               self.desk(b2, p1)]).status, 200)
        self.assertEqual(self.a.heartbeat(full=True, desktops=[self.desk(a1, p0), self.desk(a3, p2)]).status, 200)
        self.assertEqual(self.kinds(self.a, a1), ["console.resolved", "console.conflict"])  # newest first
        self.assertEqual(self.kinds(self.b, b1), ["console.resolved", "console.conflict"])
        st, body = self.console(self.a.server_id, ida[a1])
        self.assertEqual(st, 101, body)

    def test_two_desktops_of_one_server_on_one_port(self):
        c = FakeAgent(self.a.token)
        c.enroll()
        u1, u2 = ("7d000000-0000-4000-8000-%012d" % i for i in (1, 2))
        port = self.vnc[3].port
        r = c.heartbeat(full=True, desktops=[self.desk(u1, port), self.desk(u2, port, state="paused")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.kinds(c, u1), ["console.conflict"])
        self.assertEqual(self.kinds(c, u2), ["console.conflict"])
        ids = self.ids(c)
        st, body = self.console(c.server_id, ids[u1])
        self.assertEqual(st, 409, body)
        # the paused one goes away: u1 is alone on the port
        self.assertEqual(c.heartbeat(full=True, desktops=[self.desk(u1, port)]).status, 200)
        self.assertEqual(self.kinds(c, u1), ["console.resolved", "console.conflict"])
        st, body = self.console(c.server_id, ids[u1])
        self.assertEqual(st, 101, body)


def listening_sockets():
    """{port: set of local addresses} of the TCP sockets in LISTEN state on this machine."""
    out = {}
    r = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) < 4:
            continue
        addr, _, port = f[3].rpartition(":")
        if port.isdigit():
            out.setdefault(int(port), set()).add(addr.strip("[]"))
    return out


def graphics_of(xml_text):
    """(vnc port, websocket port, listen attribute, <listen address>s) of a live domain XML."""
    g = ET.fromstring(xml_text).find("./devices/graphics[@type='vnc']")
    if g is None:
        return None
    return (int(g.get("port", "-1")), int(g.get("websocket", "-1")), g.get("listen"),
            [lst.get("address") for lst in g.findall("listen")])


def meminfo_mib(key="MemAvailable"):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    return 0


EXTRA_XML = """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>16</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
  <devices>
    <graphics type='vnc' listen='127.0.0.1' autoport='yes' websocket='-1'/>
    <video><model type='vga'/></video>
  </devices>
</domain>
"""


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK), "build/test/bic-agent is not built")
class VncPortsOnQemu(unittest.TestCase):
    """BIC_VNC_STARTS desktops started through CCC on one real agent, plus direct libvirt starts."""

    @classmethod
    def setUpClass(cls):
        if shutil.which("ss") is None:
            raise unittest.SkipTest("ss (iproute2) is not installed")
        need = (STARTS + EXTRA) * MIB_PER_DOMAIN + 1024
        if meminfo_mib() < need:
            raise unittest.SkipTest("%d domains need about %d MiB; MemAvailable is %d MiB"
                                    % (STARTS + EXTRA, need, meminfo_mib()))
        ok, cls.started, why = ensure_libvirtd()
        if not ok:
            raise unittest.SkipTest(why)
        # its own stack: one server must take STARTS desktops of 256 MiB (the smallest spec; above 100
    # the test raises the server's desktop limit through PATCH /servers/{id})
        cls.stack = Stack()
        host_mib = meminfo_mib("MemTotal")
        # (placement's per-core and per-NIC rules would stop at 12 desktops on 2 cores)
        cls.stack.env.update(BIC_POOLS_MAX_PER_SERVER=str(STARTS + 10),
                             BIC_POOLS_PER_CORE=str(STARTS + 10), BIC_POOLS_PER_GBPS=str(100 * (STARTS + 10)),
                             BIC_POOLS_MEM_OVERCOMMIT_PCT=str(max(150, 100 * (STARTS + 10) * 256 // host_mib + 1)),
                             BIC_AGENTS_HEARTBEAT_INTERVAL="2")
        cls.stack.up()
        cls.agent = None
        cls.tag = unique("vp").replace("_", "-")[-10:]
        cls.pool_name = "bicvnc-" + cls.tag
        cls.pool_dir = os.path.join("/var/lib/bic", cls.pool_name)
        cls.prefix = "vp-" + cls.tag[-6:] + "-"

    @classmethod
    def tearDownClass(cls):
        if cls.agent:
            cls.agent.stop()
        cls.cleanup_domains()
        virsh("pool-destroy", cls.pool_name)
        virsh("pool-undefine", cls.pool_name)
        subprocess.run(["rm", "-rf", cls.pool_dir])
        if cls.agent:
            cls.agent.cleanup()
        cls.stack.down()
        if os.environ.get("BIC_KEEP_TEST_VAR") == "1":
            print("  kept %s" % cls.stack.var, flush=True)
        else:
            cls.stack.remove()
        if cls.started:
            stop_libvirtd()

    @classmethod
    def cleanup_domains(cls):
        names = [n for n in virsh("list", "--all", "--name").stdout.split() if n.startswith(cls.prefix)]

        def gone(n):
            virsh("destroy", n)
            virsh("undefine", n)
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            list(ex.map(gone, names))
        left = [n for n in virsh("list", "--all", "--name").stdout.split() if n.startswith(cls.prefix)]
        assert left == [], "domains left behind: %r" % left

    def start_extra(self, names):
        """Transient diskless domains started straight through libvirt (SeaBIOS only)."""
        out = []
        for n in names:
            path = os.path.join(self.agent.dir, n + ".xml")
            with open(path, "w") as f:
                f.write(EXTRA_XML % n)
            t = time.monotonic()
            r = virsh("create", path)
            out.append((n, r.returncode, r.stderr.strip(), time.monotonic() - t))
        return out

    def test_parallel_starts_never_share_a_vnc_port(self):
        admin = Client(self.stack.var)
        admin.login_admin()
        bb, mods = topology(admin, ("m1",))
        token = admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb["id"]}).json["token"]
        agent = self.__class__.agent = QemuAgent(admin, token, self.pool_dir)
        # the ISO's bServer role sets a wildcard: the agent must put the management address there
        agent.env.update(BIC_AGENT_VNC_LISTEN="0.0.0.0")
        agent.start()
        assert wait_until(lambda: any(s["state"] == "online" for s in
                                      admin.get("/api/v1/servers?module=%d" % mods[0]["id"]).json["items"]),
                          timeout=60), agent.log_text()[-3000:]
        server = [s for s in admin.get("/api/v1/servers?module=%d" % mods[0]["id"]).json["items"]][0]
        if STARTS > server["capacity"]["by_servers"]:  # the paper's bServer holds 100: raise its limit
            r = admin.patch("/api/v1/servers/%d" % server["id"], {"max_desktops": STARTS + 10})
            self.assertEqual((r.status, r.json["capacity"]["by_servers"]), (200, STARTS + 10), r)
        mgmt = re.match(r"https?://\[?([^\]/]+?)\]?:\d+", server["listen_url"]).group(1)
        self.assertNotIn(mgmt, ("0.0.0.0", "::"))
        image_id, _ = published_image(admin, "vimg")
        spec_id = spec(admin, memory_mib=256, vcpus=1, disk_gib=1)
        mem0 = meminfo_mib()
        t0 = time.monotonic()
        r = admin.post("/api/v1/pools", {
            "name": unique("vpool"), "type": "floating", "image_id": image_id, "spec_id": spec_id,
            "min_size": STARTS, "max_size": STARTS, "name_pattern": self.prefix + "{n:3}",
            "modules": [mods[0]["id"]]})
        self.assertEqual(r.status, 201, r)
        pid = r.json["id"]
        # meanwhile: direct starts through libvirt from several threads (libvirt's allocator sees
        # concurrent starts; the agent runs its tasks one at a time)
        extra = [self.prefix + "x%03d" % i for i in range(EXTRA)]
        time.sleep(1.0)
        with concurrent.futures.ThreadPoolExecutor(EXTRA_THREADS) as ex:
            results = [x for part in ex.map(self.start_extra, [extra[i::EXTRA_THREADS] for i in range(EXTRA_THREADS)])
                       for x in part]
        self.assertEqual([x for x in results if x[1] != 0], [], "direct starts failed")

        def ready():
            r = admin.get("/api/v1/pools/%d" % pid)
            return r.status == 200 and r.json["counts"]["ready"] == STARTS  # (a busy machine may time out)
        ok = wait_until(ready, timeout=max(180, STARTS * 4), step=1.0)  # starts slow as idle TCG guests pile up
        t_ready = time.monotonic() - t0
        self.assertTrue(ok, (admin.get("/api/v1/pools/%d" % pid).json["counts"], agent.log_text()[-3000:]))

        # ---- libvirt: every running domain of this test, from its live XML
        names = [n for n in virsh("list", "--name").stdout.split() if n.startswith(self.prefix)]
        self.assertEqual(len(names), STARTS + EXTRA, "not every domain is running")

        def live(n):
            return n, virsh("dumpxml", n).stdout, virsh("domuuid", n).stdout.strip()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            doms = list(ex.map(live, names))
        g = {n: graphics_of(x) for n, x, _ in doms}
        uuid_of = {n: u for n, _, u in doms}
        self.assertEqual([n for n, v in g.items() if v is None], [], "a domain without VNC")
        vnc = [v[0] for v in g.values()]
        ws = [v[1] for v in g.values()]
        self.assertTrue(all(5900 <= p <= 65535 for p in vnc), sorted(vnc)[:5])
        self.assertTrue(all(0 < p <= 65535 for p in ws), sorted(ws)[:5])
        self.assertEqual(len(set(vnc)), len(vnc), "two domains share a VNC port")
        self.assertEqual(len(set(ws)), len(ws), "two domains share a websocket port")
        self.assertEqual(set(vnc) & set(ws), set(), "a VNC port is another domain's websocket")
        ours = [n for n in names if not n[len(self.prefix):].startswith("x")]
        self.assertEqual(len(ours), STARTS)
        for n in ours:
            _, _, listen, addrs = g[n]
            self.assertEqual(listen, mgmt, (n, g[n]))
            self.assertTrue(all(a == mgmt for a in addrs), (n, g[n]))
        # QEMU's sockets: every port is bound to the management address, none to a wildcard
        socks = listening_sockets()
        for n in ours:
            for port in g[n][:2]:
                self.assertEqual(socks.get(port), {mgmt}, (n, port, socks.get(port)))

        # ---- CCC: the desktops table, once the agent's heartbeats carried every domain
        sid = server["id"]

        def ccc_rows():
            return {u: (h, int(p) if p != "NULL" else None, c) for u, h, p, c in sql(
                self.stack.var, "SELECT uuid, IFNULL(console_host, 'NULL'), IFNULL(console_port, 'NULL'),"
                                " console_conflict FROM desktops WHERE server_id = %d AND present" % sid)}
        want = {uuid_of[n]: g[n][1] for n in names}
        ok = wait_until(lambda: all(ccc_rows().get(u, (0, None))[1] == p for u, p in want.items()),
                        timeout=30, step=1.0)
        rows = ccc_rows()
        self.assertTrue(ok, [(u, p, rows.get(u)) for u, p in want.items() if rows.get(u, (0, None))[1] != p][:5])
        mine = [rows[u] for u in want]
        self.assertEqual(len({(h, p) for h, p, _ in mine}), len(mine), "CCC holds one console address twice")
        self.assertEqual({h for h, _, _ in mine}, {mgmt})
        self.assertEqual([r for r in mine if r[2] != "0"], [], "a console conflict was flagged")
        pool_rows = sql(self.stack.var, "SELECT COUNT(DISTINCT console_port), COUNT(*) FROM desktops"
                                        " WHERE pool_id = %d AND console_port IS NOT NULL" % pid)
        self.assertEqual(pool_rows, [[str(STARTS), str(STARTS)]])
        conflicts = [e for e in events(admin, sid) if e["kind"].startswith("console.")]
        self.assertEqual(conflicts, [])

        rss = []
        for n in names[:20]:
            pidfile = "/run/libvirt/qemu/%s.pid" % n
            try:
                with open(pidfile) as f, open("/proc/%s/status" % f.read().strip()) as st:
                    rss += [int(line.split()[1]) // 1024 for line in st if line.startswith("VmRSS:")]
            except OSError:
                pass
        report = ("VNC ports: %d desktops through CCC (pool, one agent) + %d direct libvirt starts from %d threads;"
                  " pool ready in %.1f s; %d distinct VNC ports (%d-%d), %d distinct websocket ports (%d-%d);"
                  " listen %s; MemAvailable %d -> %d MiB; QEMU RSS (first 20) median %s MiB"
                  % (STARTS, EXTRA, EXTRA_THREADS, t_ready, len(set(vnc)), min(vnc), max(vnc), len(set(ws)),
                     min(ws), max(ws), mgmt, mem0, meminfo_mib(),
                     sorted(rss)[len(rss) // 2] if rss else "?"))
        print("\n  " + report, flush=True)
        art = os.path.join(REPO, "tests", "artifacts")
        if os.path.isdir(art):
            with open(os.path.join(art, "vnc-ports-%d.txt" % STARTS), "w") as f:
                f.write(report + "\n")
        self.assertEqual(agent.sanitizer_reports(), [])


if __name__ == "__main__":
    unittest.main()

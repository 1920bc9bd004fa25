"""Heartbeats never lose to load (issue 12).

A fleet of test-driver agents heartbeats at the shipped interval (10 s; a server is marked offline
after 3 x 10 s without one) while a load generator saturates bicd and MariaDB: sign-ins (argon2id,
from several client addresses so nginx's per-address limit does not shield bicd), connect/log-off
cycles on a floating pool, and the heavy admin lists (desktops, sessions, audit log, topology).
No server may be marked offline, and the oldest heartbeat of any server must stay inside the
window. Heartbeat latency (nginx's request time: queueing for a bicd worker included) is measured
without load first, then under load.

CI mode: 15 s quiet, then 60 s of load. Long mode (BIC_FAULTS_LONG=1): BIC_FAULTS_MINUTES of load
(default 10) and a bigger fleet. The figures go to tests/artifacts/faults-heartbeats.txt.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "api"))
import jepsen  # noqa: E402
from bictest import REPO, AgentProcess, Client, Stack, make_user, unique, wait_until  # noqa: E402
from test_pools import Fleet, desktops_of, published_image, spec, topology  # noqa: E402

LONG = os.environ.get("BIC_FAULTS_LONG") == "1"
INTERVAL = 10
SERVERS = 60 if LONG else 20
FLEET_DESKTOPS = 50 if LONG else 20   # unmanaged domains per server: each heartbeat carries them
POOL = 12
QUIET_SEC = 15
LOAD_SEC = float(os.environ.get("BIC_FAULTS_MINUTES", "10")) * 60 if LONG else 60
THREADS = {"login": 6, "connect": 8, "list": 8}
# a heartbeat's p99 under load (nginx's request time): a tenth of the interval; measured 19-66 ms
HEARTBEAT_P99_MS = 1000.0


def sql(var, statement):
    r = subprocess.run(["mariadb", "--no-defaults", "-S", os.path.join(var, "run", "mysqld.sock"), "-u", "root",
                        "-N", "-B", "bic", "-e", statement], capture_output=True, text=True, check=True, timeout=60)
    return [line.split("\t") for line in r.stdout.splitlines()]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Load(threading.Thread):
    def __init__(self, kind, fn, stop):
        super().__init__(daemon=True)
        self.kind, self.fn, self.stop = kind, fn, stop
        self.lat, self.status = [], {}

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                st = self.fn()
            except Exception as e:
                st = type(e).__name__
            self.lat.append(time.monotonic() - t)
            self.status[st] = self.status.get(st, 0) + 1


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK) and
                     os.access(os.path.join(REPO, "build", "test", "bicd"), os.X_OK),
                     "build/test/bicd or build/test/bic-agent is not built (make test-build)")
class HeartbeatsUnderLoad(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()
        cls.stack.env.update(BIC_SECURITY_TICKET_RATE="0",  # a user here connects far more often than a person
                             BIC_AGENTS_HEARTBEAT_INTERVAL=str(INTERVAL))
        cls.fleet = None
        cls.stack.up()
        try:
            cls.prepare()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def prepare(cls):
        var = cls.stack.var
        admin = cls.admin = Client(var)
        admin.login_admin()
        bb, mods = topology(admin, ("m1", "m2", "m3", "m4"), max_servers=max(10, SERVERS))
        cls.mods = mods
        token = admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb["id"]}).json["token"]
        cls.fleet = Fleet(admin, token, SERVERS, FLEET_DESKTOPS).start()
        ok = wait_until(lambda: len(cls.servers()) == SERVERS, timeout=120, step=0.5)
        assert ok, (len(cls.servers()), cls.fleet.log_text()[-3000:])
        image_id, _ = published_image(admin, "himg")
        r = admin.post("/api/v1/pools", {
            "name": unique("hbpool"), "type": "floating", "image_id": image_id, "spec_id": spec(admin),
            "min_size": POOL, "max_size": POOL, "name_pattern": "hb-{n:3}", "modules": [mods[0]["id"]]})
        assert r.status == 201, r
        cls.pool = r.json["id"]
        admin.patch("/api/v1/pools/%d/policy" % cls.pool, {"refresh_on_logoff": False})
        g = admin.post("/api/v1/groups", {"name": unique("hg")}).json
        cls.users = []
        for _ in range(2 * THREADS["connect"] + THREADS["login"]):
            u, pw = make_user(admin)
            admin.put("/api/v1/groups/%d/members/%d" % (g["id"], u["id"]))
            cls.users.append((u, pw))
        admin.put("/api/v1/pools/%d/entitlements/groups/%d" % (cls.pool, g["id"]))
        ok = wait_until(lambda: admin.get("/api/v1/pools/%d" % cls.pool).json["counts"]["ready"] == POOL,
                        timeout=120, step=0.5)
        assert ok, admin.get("/api/v1/pools/%d" % cls.pool).json
        assert wait_until(lambda: all(d["state"] == "running" for d in desktops_of(admin, cls.pool)), timeout=60)

    @classmethod
    def servers(cls):
        out = []
        for m in cls.mods:
            out += [s for s in cls.admin.get("/api/v1/servers?limit=1000&module=%d" % m["id"]).json["items"]
                    if s["state"] == "online"]
        return out

    @classmethod
    def tearDownClass(cls):
        if cls.fleet:
            cls.fleet.stop(signal.SIGKILL)
            cls.fleet.cleanup()
        cls.stack.down()
        if os.environ.get("BIC_KEEP_TEST_VAR") == "1":
            print("  kept %s" % cls.stack.var, flush=True)
        else:
            cls.stack.remove()

    # ---- the load ----
    def loads(self, stop):
        var, pool, out = self.stack.var, self.pool, []
        users = list(self.users)
        for i in range(THREADS["login"]):
            u, pw = users.pop()
            c = Client(var)
            c.source = "127.0.0.%d" % (10 + i)  # nginx limits sign-ins per address; bicd is the target

            def login(c=c, u=u, pw=pw):
                c.cookies.clear()  # a fresh sign-in each time (argon2id in bicd every time)
                return c.login(u["username"], pw, expect=None).status
            out.append(Load("login", login, stop))
        for i in range(THREADS["connect"]):
            mine = []
            for _ in range(2):
                u, pw = users.pop()
                c = Client(var)
                c.login(u["username"], pw)
                mine.append(c)

            def cycle(mine=mine, n=[0]):
                n[0] += 1
                c = mine[n[0] % len(mine)]
                r = c.post("/api/v1/pools/%d/connect" % pool, {})
                if r.status == 200:
                    c.post("/api/v1/sessions/%d/logoff" % r.json["session"]["id"])
                return r.status
            out.append(Load("connect", cycle, stop))
        paths = ["/api/v1/desktops?limit=1000", "/api/v1/sessions?state=all&limit=1000",
                 "/api/v1/audit?limit=1000", "/api/v1/topology", "/api/v1/servers?limit=1000",
                 "/api/v1/tasks?limit=500"]
        for i in range(THREADS["list"]):
            c = Client(var)
            c.login_admin()

            def lists(c=c, n=[i]):
                n[0] += 1
                return c.get(paths[n[0] % len(paths)]).status
            out.append(Load("list", lists, stop))
        return out

    def heartbeats(self, start, end):
        """nginx's log lines of heartbeats between two offsets of its access log."""
        with open(os.path.join(self.stack.var, "log", "nginx-access.log"), "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        out = []
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if j.get("uri") == "/api/v1/agent/heartbeat":
                out.append((j["status"], float(j["ms"])))
        return out

    def log_size(self, name="nginx-access.log"):
        return os.path.getsize(os.path.join(self.stack.var, "log", name))

    def bicd_lines(self, start, end):
        """bicd's own access log between two offsets: (path, ms inside bicd)."""
        with open(os.path.join(self.stack.var, "log", "bicd-access.log"), "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        out = []
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                j = json.loads(line)
                out.append((j["path"], float(j["ms"])))
            except (ValueError, KeyError):
                continue
        return out

    def max_age(self):
        ids = ",".join(str(s["id"]) for s in self.fleet_servers)
        r = sql(self.stack.var, "SELECT MAX(TIMESTAMPDIFF(MICROSECOND, last_heartbeat_at, NOW(6))) / 1e6,"
                                " SUM(state <> 'online') FROM servers WHERE id IN (%s)" % ids)
        return float(r[0][0]), int(r[0][1])

    def test_no_healthy_server_goes_offline_under_load(self):
        self.fleet_servers = self.servers()
        self.assertEqual(len(self.fleet_servers), SERVERS)
        since = sql(self.stack.var, "SELECT NOW(3)")[0][0]
        ages = {"quiet": [], "load": []}
        stop_sampling = threading.Event()
        phase = ["quiet"]

        def sample():
            while not stop_sampling.is_set():
                try:
                    ages[phase[0]].append(self.max_age()[0])
                except Exception:
                    pass
                stop_sampling.wait(1.0)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        off0 = self.log_size()
        time.sleep(QUIET_SEC)
        off1 = self.log_size()
        stop = threading.Event()
        loads = self.loads(stop)
        pids = {n: self.stack.pid(n) for n in ("bicd", "mariadbd")}
        b1 = self.log_size("bicd-access.log")
        cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
        t0 = time.monotonic()
        phase[0] = "load"
        for ld in loads:
            ld.start()
        try:
            time.sleep(LOAD_SEC)
        finally:
            stop.set()
            for ld in loads:
                ld.join(timeout=60)
        wall = time.monotonic() - t0
        cpu = {n: (cpu_seconds(p) - cpu0[n]) / wall for n, p in pids.items()}
        off2 = self.log_size()
        inside = self.bicd_lines(b1, self.log_size("bicd-access.log"))
        stop_sampling.set()
        sampler.join(timeout=30)
        offline = int(sql(self.stack.var, "SELECT COUNT(*) FROM events WHERE kind = 'offline' AND at >= '%s'"
                          % since)[0][0])
        _, not_online = self.max_age()
        quiet, load = self.heartbeats(off0, off1), self.heartbeats(off1, off2)
        self.report(quiet, load, ages, loads, wall, cpu, offline, not_online, inside)
        self.assertEqual(offline, 0, "healthy servers were marked offline under load")
        self.assertEqual(not_online, 0)
        self.assertLess(max(ages["load"] or [0]), 3 * INTERVAL, "a server's last heartbeat left the window")
        # the load was real: bicd's portal workers were busy nearly all the time, and heartbeats kept coming
        self.assertGreater(self.busy, 0.6, "the load did not saturate bicd's workers")
        # agents have their own socket and workers: a heartbeat does not wait for the portals' queue
        self.assertLess(jepsen.percentile([ms * 1000 for _, ms in load], 99) or 0, HEARTBEAT_P99_MS,
                        "heartbeat p99 under load")
        self.assertGreater(sum(sum(ld.status.values()) for ld in loads), 500)
        self.assertGreaterEqual(len(load), SERVERS * int(LOAD_SEC / INTERVAL) * 0.8, "heartbeats went missing")
        self.assertEqual([s for s, _ in load if s >= 300], [], "heartbeats refused under load")

    def report(self, quiet, load, ages, loads, wall, cpu, offline, not_online, inside):
        def lat(hb):
            v = [ms * 1000 for _, ms in hb]
            return "n=%d p50=%.0f ms p99=%.0f ms max=%.0f ms failed=%d" % (
                len(v), jepsen.percentile(v, 50) or 0, jepsen.percentile(v, 99) or 0, max(v or [0]),
                len([s for s, _ in hb if s >= 300]))
        lines = ["heartbeats under load (%s mode): %d servers x %d domains, heartbeat every %d s, offline after %d s"
                 % ("long" if LONG else "CI", SERVERS, FLEET_DESKTOPS, INTERVAL, 3 * INTERVAL),
                 "", "| phase | heartbeat latency (nginx request time) | oldest heartbeat seen |",
                 "| --- | --- | --- |",
                 "| quiet (%d s) | %s | %.1f s |" % (QUIET_SEC, lat(quiet), max(ages["quiet"] or [0])),
                 "| load (%.0f s) | %s | %.1f s |" % (wall, lat(load), max(ages["load"] or [0])),
                 "", "| load | requests | per s | p50 | p99 | answers |", "| --- | --- | --- | --- | --- | --- |"]
        for kind in ("login", "connect", "list"):
            ls = [ld for ld in loads if ld.kind == kind]
            v = [x * 1000 for ld in ls for x in ld.lat]
            st = {}
            for ld in ls:
                for k, n in ld.status.items():
                    st[k] = st.get(k, 0) + n
            lines.append("| %s x%d | %d | %.0f | %.0f ms | %.0f ms | %s |" % (
                kind, len(ls), len(v), len(v) / wall, jepsen.percentile(v, 50) or 0, jepsen.percentile(v, 99) or 0,
                ", ".join("%s: %d" % kv for kv in sorted(st.items(), key=str))))
        threads = int(self.stack.env.get("BIC_THREADS", "4"))
        busy = sum(ms for p, ms in inside if not p.startswith("/api/v1/agent/")) / 1000.0 / wall / threads
        hb_in = [ms for p, ms in inside if p == "/api/v1/agent/heartbeat"]
        lines += ["", "bicd's portal workers busy during the load: %.0f %% of %d workers (the sum of their request"
                  " times in bicd's access log over the wall time); a heartbeat inside bicd (served by the agents'"
                  " own workers): p50 %.0f ms, p99 %.0f ms, max %.0f ms"
                  % (100 * busy, threads, jepsen.percentile(hb_in, 50) or 0, jepsen.percentile(hb_in, 99) or 0,
                     max(hb_in or [0]))]
        self.busy = busy
        lines += ["", "CPU during the load (cores): " + ", ".join("%s %.2f" % kv for kv in sorted(cpu.items())),
                  "servers marked offline: %d; not online at the end: %d" % (offline, not_online)]
        text = "\n".join(lines) + "\n"
        name = "faults-heartbeats%s.txt" % ("-long" if LONG else "")
        with open(os.path.join(jepsen.artifacts_dir(), name), "w") as f:
            f.write(text)
        print("\n" + text, flush=True)


# ---- a user flood far above nginx's in-flight cap (BIC_USER_INFLIGHT) ----
CAP_SERVERS = 40          # x 10 domains, heartbeat every 10 s: 4 heartbeats/s to measure
CAP_PHASE_SEC = 22
FLOOD_SOURCES = 16        # client addresses; nginx allows 64 requests in progress per address
FLOOD_PARALLEL = 24       # requests each source keeps in progress (well under nginx's 64): 384 in all
FLOOD_RATE = 150          # requests each source starts per second at most: 1,200/s offered, ~6 x what bicd serves


def shipped_cap():
    """The default of BIC_USER_INFLIGHT in appliance/bic-stack."""
    with open(os.path.join(REPO, "appliance", "bic-stack")) as f:
        import re
        return int(re.search(r"USER_INFLIGHT=\$\{BIC_USER_INFLIGHT:-(\d+)\}", f.read()).group(1))


class Flood:
    """FLOOD_SOURCES curl processes, each keeping up to FLOOD_PARALLEL admin list requests in
    progress (HTTP/1.1 keep-alive, --parallel) and starting at most FLOOD_RATE a second, from its
    own loopback address, until stopped. (The rate keeps the refused requests from turning the
    load generator, which shares this machine's 2 cores, into the bottleneck.)"""

    PATHS = ["/api/v1/desktops?limit=1000", "/api/v1/sessions?state=all&limit=1000", "/api/v1/audit?limit=1000",
             "/api/v1/topology", "/api/v1/servers?limit=1000", "/api/v1/tasks?limit=500"]

    def __init__(self, client, workdir):
        self.client, self.dir, self.procs = client, workdir, []

    def start(self):
        cookie = "; ".join("%s=%s" % kv for kv in self.client.cookies.items())
        for i in range(FLOOD_SOURCES):
            cfg = os.path.join(self.dir, "flood-%d.cfg" % i)
            with open(cfg, "w") as f:
                f.write('header = "Cookie: %s"\n' % cookie)
                for n in range(20000):
                    f.write('url = "%s%s"\noutput = "/dev/null"\n' % (self.client.origin, self.PATHS[n % len(self.PATHS)]))
            self.procs.append(subprocess.Popen(
                ["curl", "-s", "--http1.1", "--parallel", "--parallel-immediate", "--parallel-max", str(FLOOD_PARALLEL),
                 "--rate", "%d/s" % FLOOD_RATE,
                 "--cacert", os.path.join(self.client.var, "tls", "cert.pem"), "--interface", "127.0.0.%d" % (40 + i),
                 "--max-time", "60", "-K", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK) and
                     os.access(os.path.join(REPO, "build", "test", "bicd"), os.X_OK),
                     "build/test/bicd or build/test/bic-agent is not built (make test-build)")
class HeartbeatsAboveTheUserCap(unittest.TestCase):
    """384 admin list requests kept in progress at once (3 x the shipped cap of 128) after a
    quiet phase. Heartbeats (not counted by the cap, served by bicd's agents' socket and workers)
    must keep a small p99, the cap must refuse the excess at once, and no server may go offline. About 70 s. (A phase with the cap lifted
    by an nginx reload, restart_nginx, was tried: the reload did not take effect in time, so the
    uncapped comparison is not part of the test; see docs/reliability.md.)"""

    @classmethod
    def setUpClass(cls):
        cls.cap = shipped_cap()
        cls.stack = Stack()
        cls.stack.env.update(BIC_AGENTS_HEARTBEAT_INTERVAL=str(INTERVAL), BIC_USER_INFLIGHT=str(cls.cap))
        cls.fleet = None
        cls.stack.up()
        try:
            cls.admin = Client(cls.stack.var)
            cls.admin.login_admin()
            bb, cls.mods = topology(cls.admin, ("m1", "m2"), max_servers=CAP_SERVERS)
            token = cls.admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb["id"]}).json["token"]
            cls.fleet = Fleet(cls.admin, token, CAP_SERVERS, 10).start()
            ok = wait_until(lambda: len(cls.online()) == CAP_SERVERS, timeout=90, step=0.5)
            assert ok, (len(cls.online()), cls.fleet.log_text()[-3000:])
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def online(cls):
        out = []
        for m in cls.mods:
            out += [s for s in cls.admin.get("/api/v1/servers?limit=1000&module=%d" % m["id"]).json["items"]
                    if s["state"] == "online"]
        return out

    @classmethod
    def tearDownClass(cls):
        if cls.fleet:
            cls.fleet.stop(signal.SIGKILL)
            cls.fleet.cleanup()
        cls.stack.down()
        if os.environ.get("BIC_KEEP_TEST_VAR") == "1":
            print("  kept %s" % cls.stack.var, flush=True)
        else:
            cls.stack.remove()

    def restart_nginx(self, cap):
        """nginx's configuration with another cap, reloaded (SIGHUP: bicd, MariaDB and nginx's
        master keep running; the old workers finish their requests)."""
        import re
        path = os.path.join(self.stack.var, "etc", "nginx.conf")
        with open(path) as f:
            conf, n = re.subn(r"limit_conn bic_users_total \d+;", "limit_conn bic_users_total %d;" % cap, f.read())
        self.assertGreater(n, 0)
        with open(path, "w") as f:
            f.write(conf)
        self.assertIsNotNone(self.stack.signal("nginx", signal.SIGHUP), "nginx is not running")
        time.sleep(2)

    def log(self, name, start, end):
        with open(os.path.join(self.stack.var, "log", name), "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        out = []
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def size(self, name):
        return os.path.getsize(os.path.join(self.stack.var, "log", name))

    def phase(self, label, flood):
        """Runs one phase; returns its figures."""
        n0, b0, t0 = self.size("nginx-access.log"), self.size("bicd-access.log"), time.monotonic()
        f = Flood(self.admin, self.stack.var).start() if flood else None
        try:
            time.sleep(CAP_PHASE_SEC)
        finally:
            if f:
                f.stop()
        wall = time.monotonic() - t0
        lines = self.log("nginx-access.log", n0, self.size("nginx-access.log"))
        inside = self.log("bicd-access.log", b0, self.size("bicd-access.log"))
        hb = [j for j in lines if j.get("uri") == "/api/v1/agent/heartbeat"]
        users = [j for j in lines if str(j.get("uri", "")).startswith("/api/") and
                 not str(j.get("uri")).startswith("/api/v1/agent/")]
        lat = [float(j["ms"]) * 1000 for j in hb]
        served = [float(j["ms"]) for j in inside if not str(j.get("path", "")).startswith("/api/v1/agent/")]
        # bicd's portal workers (the agents' own are not counted)
        threads = int(self.stack.env.get("BIC_THREADS", "4"))
        return {"label": label, "wall": wall, "hb": len(hb), "hb_failed": len([j for j in hb if j["status"] >= 300]),
                "p50": jepsen.percentile(lat, 50) or 0, "p99": jepsen.percentile(lat, 99) or 0, "max": max(lat or [0]),
                "users": len(users), "user_ok": len([j for j in users if j["status"] < 300]),
                "user_429": len([j for j in users if j["status"] == 429]),
                "user_other": len([j for j in users if j["status"] >= 300 and j["status"] != 429]),
                "service_ms": sum(served) / len(served) if served else 0,  # bicd logs milliseconds
                "busy": sum(served) / 1000.0 / wall / threads}

    def test_heartbeats_keep_their_latency_above_the_cap(self):
        since = sql(self.stack.var, "SELECT NOW(3)")[0][0]
        quiet = self.phase("quiet", False)
        after = self.phase("flood, cap %d" % self.cap, True)
        offline = int(sql(self.stack.var, "SELECT COUNT(*) FROM events WHERE kind = 'offline' AND at >= '%s'"
                          % since)[0][0])
        not_online = CAP_SERVERS - len(self.online())
        threads = int(self.stack.env.get("BIC_THREADS", "4"))
        # what a heartbeat would wait if it shared the portal workers' queue (cap requests ahead)
        bound = self.cap * after["service_ms"] / threads
        rows = ["heartbeats above the user cap: %d servers x 10 domains, heartbeat every %d s; %d requests kept in"
                " progress from %d addresses; bicd %d portal workers (agents have their own)" % (CAP_SERVERS, INTERVAL, FLOOD_SOURCES * FLOOD_PARALLEL,
                                                                  FLOOD_SOURCES, threads), "",
                "| phase | heartbeats | p50 | p99 | max | user requests (2xx / 429 / other) | mean user request in bicd"
                " | portal workers busy |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for p in (quiet, after):
            rows.append("| %s (%.0f s) | %d (%d failed) | %.0f ms | %.0f ms | %.0f ms | %d (%d / %d / %d) | %.1f ms |"
                        " %.0f %% |" % (p["label"], p["wall"], p["hb"], p["hb_failed"], p["p50"], p["p99"], p["max"],
                                        p["users"], p["user_ok"], p["user_429"], p["user_other"], p["service_ms"],
                                        100 * p["busy"]))
        rows += ["", "a heartbeat's wait if it shared the portal workers (cap x mean user request / workers):"
                 " %d x %.1f ms / %d = %.0f ms" % (self.cap, after["service_ms"], threads, bound),
                 "servers marked offline: %d; not online at the end: %d" % (offline, not_online)]
        text = "\n".join(rows) + "\n"
        with open(os.path.join(jepsen.artifacts_dir(), "faults-heartbeats-cap.txt"), "w") as f:
            f.write(text)
        print("\n" + text, flush=True)
        self.assertEqual(offline, 0, "servers were marked offline")
        self.assertEqual(not_online, 0)
        # the flood was far above the cap, and the cap refused the excess at once
        # (the cap full means 128 requests in progress for 4 portal workers: their queue never
        # emptied; how busy they were is reported, it depends on how much CPU nginx's refusals took)
        self.assertGreater(after["user_429"], after["user_ok"], "the flood did not go above the cap")
        self.assertEqual(after["hb_failed"], 0, "heartbeats refused under the cap")
        self.assertGreaterEqual(after["hb"], CAP_SERVERS * int(CAP_PHASE_SEC / INTERVAL) * 0.8, "heartbeats missing")
        # heartbeats go to the agents' own socket and workers: they wait for neither the cap's
        # queue nor the portal workers (before they had their own, the CI machine measured a
        # p99 of 1,653 ms here; see docs/reliability.md)
        self.assertLess(after["p99"], HEARTBEAT_P99_MS, "heartbeat p99 above the cap")

if __name__ == "__main__":
    unittest.main()

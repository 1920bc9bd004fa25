"""Allocation safety under faults (issue 12), Jepsen-style.

Users connect to, disconnect from and log off a floating pool of test-driver desktops, many at
once and with more users than desktops, while a nemesis kills bicd with kill -9 (and restarts it
after 2 s, as systemd's Restart=on-failure/RestartSec=2 does for the packaged service), kills
MariaDB with kill -9 (restarted after 2 s; InnoDB crash recovery) and pauses MariaDB with SIGSTOP
for 10 s before SIGCONT. Every operation is recorded as invoke/ok/fail/info; the checker in
tests/lib/jepsen.py then proves from that history and from the final database that no desktop was
held by two users at once and that every acknowledged assignment (and log-off) exists.

CI mode (default): each fault once, about 2 minutes with setup. Long mode: BIC_FAULTS_LONG=1
(random faults for BIC_FAULTS_MINUTES, default 10, and a bigger pool). The report goes to
tests/artifacts/faults-allocation.txt, the history to build/faults/.
"""
import os
import random
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
MINUTES = float(os.environ.get("BIC_FAULTS_MINUTES", "10"))
DESKTOPS = 40 if LONG else 16
USERS = 60 if LONG else 24
WORKERS = 12 if LONG else 8
RESTART_SEC = 2.0   # bicd.service: RestartSec=2
PAUSE_SEC = 10.0    # the issue: SIGSTOP ... SIGCONT after 10 s
HEALTHY_SEC = 6.0   # between faults
RECOVERY_BOUND = 60.0


def sql(var, statement):
    r = subprocess.run(["mariadb", "--no-defaults", "-S", os.path.join(var, "run", "mysqld.sock"), "-u", "root",
                        "-N", "-B", "bic", "-e", statement], capture_output=True, text=True, check=True, timeout=60)
    return [line.split("\t") for line in r.stdout.splitlines()]


class Nemesis:
    """Breaks the stack's daemons and records each fault in the history (process 'nemesis')."""

    def __init__(self, stack, history):
        self.stack, self.h = stack, history

    def _fault(self, name, act):
        inv = self.h.invoke("nemesis", name)
        healed_at, detail = act()
        self.h.complete(inv, "ok", {"healed_at": healed_at, "detail": detail})

    def kill_bicd(self):
        def act():
            pid = self.stack.kill9("bicd")
            time.sleep(RESTART_SEC)
            healed = self.h.now()
            t = time.monotonic()
            self.stack.start_missing()
            took = time.monotonic() - t
            # the killed bicd never released the leader lease: its controller work (offline
            # detection, tasks, reconciler, session policies) waits for the lease to expire
            new = self.stack.pid("bicd")
            held = wait_until(lambda: sql(self.stack.var, "SELECT holder FROM leases WHERE name = 'controller'"
                                          " AND expires_at > NOW(3) AND holder LIKE '%%:%d:%%'" % new),
                              timeout=60, step=0.2)
            lease = "controller resumed %.1f s after the restart" % (time.monotonic() - t) if held else \
                "controller did not resume within 60 s"
            return healed, "bicd %s killed; restart took %.2f s; %s" % (pid, took, lease)
        self._fault("kill -9 bicd", act)

    def kill_mariadbd(self):
        def act():
            pid = self.stack.kill9("mariadbd")
            time.sleep(RESTART_SEC)
            healed = self.h.now()
            t = time.monotonic()
            self.stack.start_missing()
            return healed, "mariadbd %s killed; restart (crash recovery) took %.2f s" % (pid, time.monotonic() - t)
        self._fault("kill -9 mariadbd", act)

    def pause_mariadbd(self, seconds=PAUSE_SEC):
        def act():
            pid = self.stack.signal("mariadbd", signal.SIGSTOP)
            try:
                time.sleep(seconds)
            finally:
                healed = self.h.now()
                os.kill(pid, signal.SIGCONT)
            return healed, "mariadbd %s stopped for %.0f s" % (pid, seconds)
        self._fault("SIGSTOP mariadbd %.0f s" % seconds, act)

    def long_pause(self):
        """Longer than the offline window (3 x 10 s): shows what the agents' servers go through."""
        self.pause_mariadbd(35.0)

    def schedule(self):
        faults = [self.kill_bicd, self.pause_mariadbd, self.kill_mariadbd]
        if not LONG:
            return faults
        rnd = random.Random(os.environ.get("BIC_FAULTS_SEED", "12"))
        n = max(3, int(MINUTES * 60 / (HEALTHY_SEC + 8)))
        return faults + [rnd.choice(faults) for _ in range(n - 3)] + [self.long_pause]


class Worker(threading.Thread):
    """One client process per user (Jepsen's 'process'): a user's operations never overlap."""

    def __init__(self, test, users, history, stop, seed):
        super().__init__(daemon=True)
        self.t, self.users, self.h, self.stop, self.rnd = test, users, history, stop, random.Random(seed)
        self.unexpected = []
        self.anomalies = []  # answers that break the API's contract but not allocation safety

    def call(self, process, f, value, do, classify):
        inv = self.h.invoke(process, f, value)
        try:
            r = do()
        except Exception as e:  # timeouts, refused connections: the outcome is unknown
            self.h.complete(inv, "info", {"error": type(e).__name__})
            return "info", None
        try:
            kind, val = classify(r)
        except Exception as e:  # an answer the test cannot read: a bug to report, outcome unknown
            self.unexpected.append((f, r.status, "%s: %s" % (type(e).__name__, r.body[:200])))
            kind, val = "info", {"status": r.status}
        self.h.complete(inv, kind, val)
        if kind == "fail" and r.status not in (404, 409):
            self.unexpected.append((f, r.status, r.body[:200]))
        return kind, val

    def connect(self, u):
        def classify(r):
            j = r.json if isinstance(r.json, dict) else {}
            if r.status in (200, 202) and j.get("session") and j.get("desktop"):
                return "ok", {"session": j["session"]["id"], "desktop": j["desktop"]["id"],
                              "pool": self.t.pool, "status": r.status}
            if r.status >= 500:
                return "info", {"status": r.status}
            if r.status == 200:
                # assigned (a ticket came), but the answer does not say which session: unknown
                self.anomalies.append(("connect", r.status, r.body[:200]))
                return "info", {"status": r.status, "anomaly": "no session in a 200 answer"}
            return "fail", {"status": r.status, "reason": (j.get("error") or {}).get("reason")}
        return self.call(u["id"], "connect", {"pool": self.t.pool},
                         lambda: u["client"].post("/api/v1/pools/%d/connect" % self.t.pool, {}), classify)

    def end(self, u, f, sid):
        def classify(r):
            if r.status == 200:
                if not isinstance(r.json, dict) or r.json.get("id") != sid:
                    self.anomalies.append((f, r.status, r.body[:200]))
                return "ok", {"session": sid, "state": (r.json or {}).get("state")}
            if r.status >= 500:
                return "info", {"session": sid, "status": r.status}
            return "fail", {"session": sid, "status": r.status}
        return self.call(u["id"], f, {"session": sid},
                         lambda: u["client"].post("/api/v1/sessions/%d/%s" % (sid, f)), classify)

    def run(self):
        while not self.stop.is_set():
            u = self.rnd.choice(self.users)
            st = u["state"]
            if st is None or st == "unknown":
                kind, val = self.connect(u)
                u["state"] = ("live", val["session"]) if kind == "ok" else ("unknown" if kind == "info" else None)
            elif st[0] == "ending":
                kind, _ = self.end(u, "logoff", st[1])
                u["state"] = st if kind == "info" else None
            else:
                x = self.rnd.random()
                if x < 0.45:
                    kind, _ = self.end(u, "logoff", st[1])
                    u["state"] = ("ending", st[1]) if kind == "info" else None
                elif x < 0.6:
                    kind, _ = self.end(u, "disconnect", st[1])
                else:
                    kind, val = self.connect(u)
                    if kind == "ok" and val["session"] != st[1]:
                        self.unexpected.append(("connect", "session %d replaced %d" % (val["session"], st[1]), ""))
                    if kind == "ok":
                        u["state"] = ("live", val["session"])
            time.sleep(0.2 if kind == "info" else self.rnd.uniform(0.0, 0.02))


@unittest.skipUnless(os.access(AgentProcess.BINARY, os.X_OK) and
                     os.access(os.path.join(REPO, "build", "test", "bicd"), os.X_OK),
                     "build/test/bicd or build/test/bic-agent is not built (make test-build)")
class AllocationUnderFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()
        cls.stack.env.update(BIC_SECURITY_TICKET_RATE="0",  # a user here connects far more often than a person
                             BIC_AGENTS_HEARTBEAT_INTERVAL="10")  # the shipped interval
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
        bb, mods = topology(admin, ("m1",))
        token = admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb["id"]}).json["token"]
        cls.fleet = Fleet(admin, token, 2).start()
        ok = wait_until(lambda: len([s for s in admin.get("/api/v1/servers?module=%d" % mods[0]["id"]).json["items"]
                                     if s["state"] == "online"]) == 2, timeout=60)
        assert ok, cls.fleet.log_text()[-3000:]
        image_id, _ = published_image(admin, "fimg")
        spec_id = spec(admin)
        r = admin.post("/api/v1/pools", {
            "name": unique("faultpool"), "type": "floating", "image_id": image_id, "spec_id": spec_id,
            "min_size": DESKTOPS, "max_size": DESKTOPS, "name_pattern": "fault-{n:3}", "modules": [mods[0]["id"]]})
        assert r.status == 201, r
        cls.pool = r.json["id"]
        # desktops go straight back to the pool at log-off (no refresh), so allocation is all there is
        assert admin.patch("/api/v1/pools/%d/policy" % cls.pool, {"refresh_on_logoff": False}).status == 200
        g = admin.post("/api/v1/groups", {"name": unique("fg")}).json
        cls.users = []
        for _ in range(USERS):
            u, pw = make_user(admin)
            admin.put("/api/v1/groups/%d/members/%d" % (g["id"], u["id"]))
            c = Client(var)
            c.login(u["username"], pw)
            cls.users.append({"id": u["id"], "client": c, "state": None})
        assert admin.put("/api/v1/pools/%d/entitlements/groups/%d" % (cls.pool, g["id"])).status in (200, 204)
        ok = wait_until(lambda: admin.get("/api/v1/pools/%d" % cls.pool).json["counts"]["ready"] == DESKTOPS,
                        timeout=120, step=0.5)
        assert ok, admin.get("/api/v1/pools/%d" % cls.pool).json
        ok = wait_until(lambda: all(d["state"] == "running" and d["present"] for d in desktops_of(admin, cls.pool)),
                        timeout=60, step=0.5)
        assert ok, "desktops did not all run"

    @classmethod
    def tearDownClass(cls):
        for name in ("mariadbd", "bicd"):  # never leave a daemon stopped (SIGSTOP) behind
            try:
                cls.stack.signal(name, signal.SIGCONT)
            except OSError:
                pass
        if cls.fleet:
            cls.fleet.stop(signal.SIGKILL)
            cls.fleet.cleanup()
        cls.stack.down()
        reports = [p for p in os.listdir(os.path.join(cls.stack.var, "log"))
                   if p.startswith(("asan", "ubsan")) and os.path.getsize(os.path.join(cls.stack.var, "log", p))]
        if reports or os.environ.get("BIC_KEEP_TEST_VAR") == "1":
            print("  kept %s (sanitizer reports: %s)" % (cls.stack.var, reports), flush=True)
        else:
            cls.stack.remove()
        cls.sanitizer_reports = reports

    def db_state(self):
        rows = sql(self.stack.var, "SELECT id, user_id, pool_id, desktop_id, state, UNIX_TIMESTAMP(started_at),"
                                   " UNIX_TIMESTAMP(ended_at) FROM desktop_sessions WHERE pool_id = %d" % self.pool)
        sessions = [{"id": int(r[0]), "user_id": int(r[1]), "pool_id": int(r[2]),
                     "desktop_id": int(r[3]) if r[3] != "NULL" else None, "state": r[4],
                     "started_at": float(r[5]), "ended_at": float(r[6]) if r[6] != "NULL" else None}
                    for r in rows]
        desktops = {int(r[0]): (int(r[1]) if r[1] != "NULL" else None)
                    for r in sql(self.stack.var, "SELECT id, assigned_user_id FROM desktops WHERE pool_id = %d"
                                 % self.pool)}
        return sessions, desktops

    def test_no_double_assignment_and_no_lost_assignment_under_faults(self):
        h = jepsen.History()
        stop = threading.Event()
        workers = [Worker(self, self.users[i::WORKERS], h, stop, i) for i in range(WORKERS)]
        nemesis = Nemesis(self.stack, h)
        since = sql(self.stack.var, "SELECT NOW(3)")[0][0]
        for w in workers:
            w.start()
        try:
            time.sleep(HEALTHY_SEC)
            for fault in nemesis.schedule():
                fault()
                time.sleep(HEALTHY_SEC + random.uniform(0, 4) * LONG)
            time.sleep(2)
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=60)
        end = h.now()
        self.assertTrue(all(not w.is_alive() for w in workers), "a client is stuck")
        sessions, desktops = self.db_state()
        result = jepsen.check_allocation(h, sessions, desktops, end_time=end)
        rec = jepsen.recovery_times(h)
        offline = sql(self.stack.var, "SELECT COUNT(*) FROM events WHERE kind = 'offline' AND at >= '%s'" % since)
        unexpected = [u for w in workers for u in w.unexpected]
        anomalies = [a for w in workers for a in w.anomalies]
        self.report(h, result, rec, int(offline[0][0]), unexpected, anomalies)
        self.assertTrue(result["valid"], "\n".join(result["errors"][:20]))
        oks = sum(v for k, v in result["counts"].items() if k.endswith(" ok"))
        self.assertGreater(result["counts"].get("connect ok", 0), 50, result["counts"])
        self.assertGreater(result["counts"].get("logoff ok", 0), 20, result["counts"])
        self.assertGreater(oks, 100, result["counts"])
        for r in rec:
            self.assertIsNotNone(r["recovery_s"], "no operation succeeded after %s" % r["fault"])
            self.assertLess(r["recovery_s"], RECOVERY_BOUND, r)
        # a refusal other than 404/409 (e.g. 401: a fault signed a user out) is a bug
        self.assertEqual(unexpected, [], unexpected[:10])

    def report(self, h, result, rec, offline, unexpected, anomalies):
        os.makedirs(os.path.join(REPO, "build", "faults"), exist_ok=True)
        hist = os.path.join(REPO, "build", "faults", "allocation-history.jsonl")
        h.save(hist)
        lines = ["allocation under faults (%s mode): %d desktops, %d users, %d client threads, %.0f s"
                 % ("long" if LONG else "CI", DESKTOPS, USERS, WORKERS, h.now()),
                 "checker: %s; %d acknowledged sessions, %d sessions in the database, %d errors"
                 % ("VALID" if result["valid"] else "INVALID", result["holds"], result["db_sessions"],
                    len(result["errors"])),
                 "operations: " + ", ".join("%s %d" % kv for kv in sorted(result["counts"].items())),
                 "", "| fault | fault lasted (s) | recovery: heal -> first ok (s) | outage: fault -> first ok (s)"
                 " | ops not ok | detail |", "| --- | --- | --- | --- | --- | --- |"]
        for r in rec:
            lines.append("| %s | %.2f | %s | %s | %d | %s |" % (r["fault"], r["fault_s"], r["recovery_s"],
                                                              r["outage_s"], r["not_ok_ops"], r["detail"]))
        lines += ["", "servers marked offline during the run (healthy agents, heartbeat every 10 s): %d" % offline,
                  "unexpected refusals: %d %s" % (len(unexpected), unexpected[:5]),
                  "answers without the session they acknowledge (200 with body null): %d %s"
                  % (len(anomalies), anomalies[:3]), "history: " + hist]
        text = "\n".join(lines) + "\n"
        name = "faults-allocation%s.txt" % ("-long" if LONG else "")
        with open(os.path.join(jepsen.artifacts_dir(), name), "w") as f:
            f.write(text)
        print("\n" + text, flush=True)


if __name__ == "__main__":
    unittest.main()

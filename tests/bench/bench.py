#!/usr/bin/env python3
"""`make bench`: BIC's benchmarks, each next to a bound measured in the same run on this machine.

Starts its own stack (release build of bicd) in a temporary directory, seeds data directly in
MariaDB where the API would only slow the seeding down, measures, prints one table
(metric, value, bound, ratio) and writes it to build/bench/results.md and results.json.

Environment: BENCH_LOGINS (2000) distinct users signing in, BENCH_THREADS (8) concurrent
clients, BENCH_USERS (100000) users in the database for the list endpoints, BENCH_FLEET (1000)
servers and BENCH_FLEET_DESKTOPS (100) desktops each for `bic-agent --fleet`, BENCH_FLEET_SECONDS
(60) of measured wall time, BENCH_PROV_SERVERS (20) servers and BENCH_PROV_DESKTOPS (500)
desktops for the provisioning bench, BENCH_ONLY (unset: all) a comma list of sections to run
(argon2, logins, lists, provisioning, fleet, heartbeats, health).

Heartbeat ingest is measured twice:
  fleet:      the real agent code (`build/bic-agent --fleet 1000 --desktops 100`, release build) on
              libvirt's test driver, each server heartbeating every 10 s as CCC tells it, spread
              evenly over the interval; the CPU bicd and MariaDB use per second of wall time. The
              test driver's running domains accumulate CPU time, so, as on real hosts, every
              running desktop is in every delta heartbeat.
  stand-ins:  Python clients that send heartbeats back to back as fast as bicd takes them, with
              all 100 desktops changed (worst case) and with none changed; the CPU per heartbeat,
              scaled to 1,000 servers at 10 s.
"""
import http.client
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import bictest  # noqa: E402

LOGINS = int(os.environ.get("BENCH_LOGINS", "2000"))
THREADS = int(os.environ.get("BENCH_THREADS", "8"))
USERS = int(os.environ.get("BENCH_USERS", "100000"))
PASSWORD = "bench-password-123"

rows = []


def row(metric, value, unit, bound=None, bound_name="", higher_is_better=True, note=""):
    ratio = None
    if bound:
        ratio = value / bound if higher_is_better else bound / value if value else None
    rows.append({"metric": metric, "value": round(value, 2), "unit": unit,
                 "bound": round(bound, 2) if bound else None, "bound_name": bound_name,
                 "ratio": round(ratio, 2) if ratio else None, "note": note})
    print("  %-44s %10.2f %-8s %s" % (metric, value, unit,
                                      ("bound %.2f (%s), ratio %.2f" % (bound, bound_name, ratio)) if bound else note),
          flush=True)


class Conn:
    """A keep-alive HTTPS connection that carries cookies, like one browser."""

    def __init__(self, port, cafile):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.conn = None
        self.cookies = {}
        self.origin = "https://127.0.0.1:%d" % port

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=60)
            h = {"Origin": self.origin}
            if self.cookies:
                h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
            if headers:
                h.update(headers)
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                h["Content-Type"] = "application/json"
            try:
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                payload = r.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            for c in r.headers.get_all("Set-Cookie") or []:
                name, _, rest = c.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
            return r.status, payload


def sql(var, statement):
    subprocess.run(["mariadb", "--no-defaults", "-S", os.path.join(var, "run", "mysqld.sock"), "-u", "root", "bic",
                    "-e", statement], check=True)


def login(conn, username):
    s, body = conn.request("GET", "/api/v1/auth/csrf")
    tok = json.loads(body)["csrf_token"]
    t = time.monotonic()
    s, body = conn.request("POST", "/api/v1/auth/login", {"username": username, "password": PASSWORD},
                           {"X-CSRF-Token": tok})
    return s, time.monotonic() - t


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def heartbeat_bench(stack, admin, cafile, var):
    import uuid
    servers = int(os.environ.get("BENCH_SERVERS", "1000"))
    beats = int(os.environ.get("BENCH_HEARTBEATS", "3000"))
    r = admin.post("/api/v1/building-blocks", {"name": "bench-bb"})
    bb = r.json["id"]
    for i in range((servers + 9) // 10):
        admin.post("/api/v1/building-blocks/%d/modules" % bb, {"name": "m%03d" % i, "max_servers": 10})
    token = admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb}).json["token"]
    facts = {"cpus": 32, "cores": 16, "memory_mib": 256000, "storage_gib": 2000,
             "nics": [{"name": "ens1f0", "speed_mbps": 1000}, {"name": "ens1f1", "speed_mbps": 1000}],
             "hypervisor": {"type": "QEMU", "version": "7.2.0"}}
    agents, lock = [], threading.Lock()

    def enroll(part):
        conn = Conn(stack.https_port, cafile)
        for i in part:
            s, body = conn.request("POST", "/api/v1/agent/enroll", {
                "token": token, "machine_id": "bench-machine-%05d" % i, "hostname": "bs-%05d" % i,
                "listen_url": "http://127.0.0.1:9", "facts": facts})
            assert s == 200, body
            j = json.loads(body)
            desks = [{"uuid": str(uuid.uuid4()), "name": "bs%05d-d%03d" % (i, k), "state": "running",
                      "vcpus": 2, "memory_mib": 2048, "cpu_time_ns": 0, "rx_bytes": 0, "tx_bytes": 0}
                     for k in range(100)]
            with lock:
                agents.append({"id": j["server_id"], "auth": "Bearer %d.%s" % (j["server_id"], j["credential"]),
                               "desks": desks, "seq": 0})

    t = time.monotonic()
    ths = [threading.Thread(target=enroll, args=(range(i, servers, THREADS),)) for i in range(THREADS)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    row("stand-ins: enroll %d agents" % servers, time.monotonic() - t, "s", note="setup")

    def beat(conn, a, full, changed):
        a["seq"] += 1
        for d in a["desks"][:changed]:
            d["cpu_time_ns"] += 1000000
        s, body = conn.request("POST", "/api/v1/agent/heartbeat", {
            "seq": a["seq"], "full": full, "host": {"cpu_pct": 40.0, "mem_total_mib": 256000, "mem_used_mib": 200000},
            "desktops": a["desks"][:changed]}, {"Authorization": a["auth"]})
        assert s == 200, body

    def run(part, full, count, changed=100):
        conn = Conn(stack.https_port, cafile)
        for n in range(count):
            beat(conn, part[n % len(part)], full, changed)

    # first the full heartbeats that register 100,000 desktops
    ths = [threading.Thread(target=run, args=(agents[i::THREADS], True, len(agents[i::THREADS]))) for i in range(THREADS)]
    t = time.monotonic()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    row("stand-ins: register %d desktops (full heartbeats)" % (servers * 100), time.monotonic() - t, "s",
        note="setup")

    pids = {}
    for name, f in (("bicd", "bicd.pid"), ("mariadbd", "mariadbd.pid")):
        with open(os.path.join(var, "run", f)) as fh:
            pids[name] = fh.read().strip()
    for changed, label in ((100, "all 100 desktops changed (worst case)"), (0, "no desktop changed (steady state)")):
        before = {k: cpu_seconds(p) for k, p in pids.items()}
        per = beats // THREADS
        ths = [threading.Thread(target=run, args=(agents[i::THREADS], False, per, changed)) for i in range(THREADS)]
        t = time.monotonic()
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        wall = time.monotonic() - t
        done = per * THREADS
        used = {k: cpu_seconds(p) - before[k] for k, p in pids.items()}
        row("stand-ins: heartbeats/s, %s" % label, done / wall, "1/s", 100.0, "needed: 1,000 servers / 10 s")
        for k in ("bicd", "mariadbd"):
            row("  %s CPU s per 1,000 heartbeats" % k, used[k] / done * 1000, "s")
        load = (used["bicd"] + used["mariadbd"]) / done * 100  # core-seconds per second at 100 heartbeats/s
        row("  bicd+MariaDB share of one core at 1,000 servers", load * 100, "%", 25.0, "target 25 % of a core",
            higher_is_better=False)


def rss_mib(pid):
    with open("/proc/%s/status" % pid) as f:
        return [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0] / 1024.0


def proc_threads(pid):
    with open("/proc/%s/status" % pid) as f:
        return [int(l.split()[1]) for l in f if l.startswith("Threads:")][0]


def fleet_bench(stack, admin, cafile, var):
    """`bic-agent --fleet N --desktops D` against the stack: the real agent code heartbeating at CCC's interval."""
    n = int(os.environ.get("BENCH_FLEET", "1000"))
    d = int(os.environ.get("BENCH_FLEET_DESKTOPS", "100"))
    window = float(os.environ.get("BENCH_FLEET_SECONDS", "60"))
    per_module = 10
    bb = admin.post("/api/v1/building-blocks", {"name": "bench-fleet"}).json["id"]
    for i in range((n + per_module - 1) // per_module):
        r = admin.post("/api/v1/building-blocks/%d/modules" % bb, {"name": "f%03d" % i, "max_servers": per_module})
        assert r.status == 201, r
    token = admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb}).json["token"]
    fleet_dir = os.path.join(var, "fleet")
    os.makedirs(fleet_dir, exist_ok=True)
    env = dict(os.environ, BIC_AGENT_CCC_URL="https://127.0.0.1:%d" % stack.https_port, BIC_AGENT_CA_FILE=cafile,
               BIC_AGENT_TOKEN=token, BIC_AGENT_STATE_DIR=os.path.join(fleet_dir, "state"),
               BIC_AGENT_LISTEN="127.0.0.1:0", BIC_AGENT_MACHINE_ID="bench-fleet-machine",
               BIC_AGENT_HOSTNAME="bench-fleet")
    for k in ("BIC_AGENT_HEARTBEAT_INTERVAL", "BIC_AGENT_ADVERTISE_URL", "BIC_AGENT_LIBVIRT_URI"):
        env.pop(k, None)  # the interval is what CCC says; the fleet makes its own hypervisors and URLs
    log_path = os.path.join(fleet_dir, "fleet.log")

    def log_tail():
        with open(log_path, errors="replace") as f:
            return f.read()[-3000:]

    def totals():
        after = 0
        while True:
            page = admin.get("/api/v1/topology?limit=200&after=%d" % after).json
            for b in page["items"]:
                if b["id"] == bb:
                    return b["totals"]
            if not page.get("next_after"):
                return {}
            after = page["next_after"]

    pids = {}
    for name, f in (("bicd", "bicd.pid"), ("mariadbd", "mariadbd.pid")):
        with open(os.path.join(var, "run", f)) as fh:
            pids[name] = fh.read().strip()
    with open(log_path, "ab") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen([os.path.join(REPO, "build", "bic-agent"), "--fleet", str(n), "--desktops", str(d),
                                 "run"], env=env, stdout=log, stderr=log)
    try:
        online = registered = None
        while time.monotonic() - t0 < 300:
            if proc.poll() is not None:
                raise RuntimeError("bic-agent --fleet exited with %s:\n%s" % (proc.returncode, log_tail()))
            t = totals()
            if online is None and t.get("online") == n:
                online = time.monotonic() - t0
            if registered is None and t.get("desktops") == n * d:
                registered = time.monotonic() - t0
            if online is not None and registered is not None:
                break
            time.sleep(1)
        else:
            raise RuntimeError("fleet: %s after 300 s (want %d online, %d desktops):\n%s" % (totals(), n, n * d,
                                                                                              log_tail()))
        row("fleet: %d servers enrolled and online" % n, online, "s", note="setup")
        row("fleet: %d desktops registered" % (n * d), registered, "s", note="setup")
        time.sleep(10)  # one interval: the first (full) heartbeats are over, every server is on its slot

        access = os.path.join(var, "log", "nginx-access.log")
        start_at = os.path.getsize(access)
        before = {k: cpu_seconds(p) for k, p in pids.items()}
        before["fleet"] = cpu_seconds(proc.pid)
        t = time.monotonic()
        time.sleep(window)
        wall = time.monotonic() - t
        used = {k: cpu_seconds(p) - before[k] for k, p in list(pids.items()) + [("fleet", proc.pid)]}
        beats = errors = 0
        with open(access, errors="replace") as f:
            f.seek(start_at)
            for line in f:
                if "/api/v1/agent/heartbeat" not in line:
                    continue
                beats += 1
                try:
                    errors += json.loads(line)["status"] != 200
                except ValueError:
                    errors += 1
        label = "%d servers x %d desktops, %d s" % (n, d, window)
        row("fleet: heartbeats/s received (%s)" % label, beats / wall, "1/s", n / 10.0,
            "%d servers / 10 s interval" % n)
        if errors:
            row("fleet: heartbeats not answered 200", errors, "count", note="see nginx-access.log")
        bicd, db = used["bicd"] / wall * 100, used["mariadbd"] / wall * 100
        row("fleet: bicd CPU, % of one core", bicd, "%", note="CPU s per s of wall time")
        row("fleet: MariaDB CPU, % of one core", db, "%", note="CPU s per s of wall time")
        row("fleet: bicd+MariaDB, % of one core", bicd + db, "%", 25.0, "target 25 % of a core",
            higher_is_better=False)
        row("fleet: bic-agent --fleet CPU, % of one core", used["fleet"] / wall * 100, "%",
            note="load generator, not a target")
        fleet_rss = rss_mib(proc.pid)
        row("fleet: bic-agent --fleet resident memory (%d x %d)" % (n, d), fleet_rss, "MiB",
            note="%d threads; %.2f MiB per server" % (proc_threads(proc.pid), fleet_rss / n))
        row("fleet: bicd resident memory", rss_mib(pids["bicd"]), "MiB")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def provisioning_bench(stack, admin, cafile, var):
    """Linked-clone provisioning on the test driver: a pool of BENCH_PROV_DESKTOPS desktops on a
    `bic-agent --fleet` of BENCH_PROV_SERVERS servers (8 cores each: 48 desktops a server); the
    time from creating the pool until every desktop is defined, started and reported running."""
    n = int(os.environ.get("BENCH_PROV_SERVERS", "20"))
    want = int(os.environ.get("BENCH_PROV_DESKTOPS", "500"))
    bb = admin.post("/api/v1/building-blocks", {"name": "bench-prov"}).json["id"]
    mods = []
    for i in range((n + 9) // 10):
        r = admin.post("/api/v1/building-blocks/%d/modules" % bb, {"name": "p%02d" % i, "max_servers": 10})
        assert r.status == 201, r
        mods.append(r.json["id"])
    token = admin.post("/api/v1/enrollment-tokens", {"building_block_id": bb}).json["token"]
    store = os.path.join(var, "images")
    os.makedirs(store, exist_ok=True)
    bictest.make_golden_qcow2(os.path.join(store, "bench-golden.qcow2"))
    img = admin.post("/api/v1/images", {"name": "bench-golden"}).json["id"]
    v = admin.post("/api/v1/images/%d/versions" % img, {"path": "bench-golden.qcow2"}).json["id"]
    admin.post("/api/v1/image-versions/%d/publish" % v)
    spec = admin.post("/api/v1/specs", {"name": "bench-spec", "vcpus": 2, "memory_mib": 2048, "disk_gib": 20}).json["id"]
    fleet_dir = os.path.join(var, "prov-fleet")
    os.makedirs(fleet_dir, exist_ok=True)
    env = dict(os.environ, BIC_AGENT_CCC_URL="https://127.0.0.1:%d" % stack.https_port, BIC_AGENT_CA_FILE=cafile,
               BIC_AGENT_TOKEN=token, BIC_AGENT_STATE_DIR=os.path.join(fleet_dir, "state"),
               BIC_AGENT_LISTEN="127.0.0.1:0", BIC_AGENT_MACHINE_ID="bench-prov-machine",
               BIC_AGENT_HOSTNAME="bench-prov",
               BIC_AGENT_ROOT_PREFIX=os.path.join(REPO, "tests", "fixtures", "sysroot-2socket"))
    for k in ("BIC_AGENT_HEARTBEAT_INTERVAL", "BIC_AGENT_ADVERTISE_URL", "BIC_AGENT_LIBVIRT_URI"):
        env.pop(k, None)
    with open(os.path.join(fleet_dir, "fleet.log"), "ab") as log:
        proc = subprocess.Popen([os.path.join(REPO, "build", "bic-agent"), "--fleet", str(n), "--desktops", "0",
                                 "run"], env=env, stdout=log, stderr=log)
    try:
        def online():
            c = 0
            for m in mods:
                c += sum(1 for s in admin.get("/api/v1/servers?module=%d&limit=100" % m).json["items"]
                         if s["state"] == "online")
            return c == n
        assert bictest.wait_until(online, timeout=120, step=0.5), "the provisioning fleet did not come online"
        t0 = time.monotonic()
        r = admin.post("/api/v1/pools", {"name": "bench-pool", "type": "floating", "image_id": img, "spec_id": spec,
                                         "min_size": want, "max_size": want, "name_pattern": "bench-{n:5}",
                                         "modules": mods})
        assert r.status == 201, r
        pid = r.json["id"]
        first = [None]

        def done():
            c = admin.get("/api/v1/pools/%d" % pid).json["counts"]
            if first[0] is None and c["ready"]:
                first[0] = time.monotonic() - t0
            return c["ready"] == want and c["running"] == want
        ok = bictest.wait_until(done, timeout=max(120, want), step=0.2)
        took = time.monotonic() - t0
        assert ok, admin.get("/api/v1/pools/%d" % pid).json
        label = "%d desktops on %d test-driver servers" % (want, n)
        row("provisioning: desktops defined + started per s (%s)" % label, want / took, "1/s",
            note="pool created -> all ready and reported running: %.1f s; first ready after %.2f s"
                 % (took, first[0] or 0))
        t0 = time.monotonic()
        assert admin.delete("/api/v1/pools/%d" % pid).status == 202
        gone = bictest.wait_until(lambda: admin.get("/api/v1/pools/%d" % pid).status == 404,
                                  timeout=max(120, want), step=0.2)
        took = time.monotonic() - t0
        assert gone, "the bench pool was not deleted"
        row("provisioning: desktops deleted per s (domain + overlay)", want / took, "1/s",
            note="pool deleted -> gone: %.1f s" % took)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "").split(","))) or None


def want(section):
    return ONLY is None or section in ONLY


def main():
    subprocess.run(["make", "-s", "-C", REPO, "build/bicd", "build/bic-agent"], check=True)
    stack = bictest.Stack(bicd=os.path.join(REPO, "build", "bicd"))
    stack.env["BIC_AGENTS_HEARTBEAT_INTERVAL"] = "10"  # the product's default: the fleet follows it
    stack.env["BIC_LOGIN_RATE"] = "100000r/s"
    stack.env["BIC_LOGIN_BURST"] = "100000"
    stack.env["BIC_AGENTS_RATE"] = "100000r/s"
    stack.env["BIC_AGENTS_BURST"] = "100000"
    stack.up()
    var = stack.var
    cafile = os.path.join(var, "tls", "cert.pem")
    ini = os.path.join(var, "etc", "bicd.ini")
    print("BIC benchmarks on %d cores (stack in %s)" % (os.cpu_count(), var), flush=True)
    try:
        c = bictest.Client(var)
        c.login_admin()
        if want("argon2") or want("logins") or want("lists"):
            # --- argon2id bound --------------------------------------------------------
            out = subprocess.run([os.path.join(REPO, "build", "bicd"), "-c", ini, "bench-argon2", "30"],
                                 check=True, capture_output=True, text=True).stdout
            a2 = json.loads(out)
            row("argon2id hash (m=19 MiB, t=2, p=1)", a2["ms_per_hash"], "ms")

            # --- seed users: one real hash, copied (every login still runs a full argon2id) ----
            admin = Conn(stack.https_port, cafile)
            c = bictest.Client(var)
            c.login_admin()
            r = c.post("/api/v1/users", {"username": "bench-seed", "password": PASSWORD})
            assert r.status == 201, r
            t = time.monotonic()
            sql(var, "INSERT INTO users (username, display_name, role, password_hash) "
                     "SELECT CONCAT('bench', LPAD(seq, 6, '0')), CONCAT('Bench User ', seq), 'user', "
                     "(SELECT password_hash FROM users WHERE username = 'bench-seed') FROM seq_1_to_%d" % USERS)
            row("seed %d users (SQL)" % USERS, time.monotonic() - t, "s", note="setup, not a target")

            # --- login storm ----------------------------------------------------------
            names = ["bench%06d" % i for i in range(1, LOGINS + 1)]
            lat, errors, lock = [], [], threading.Lock()

            def storm(part):
                conn = Conn(stack.https_port, cafile)
                for name in part:
                    conn.cookies = {}
                    s, dt = login(conn, name)
                    with lock:
                        (lat if s == 200 else errors).append(dt if s == 200 else s)

            threads = [threading.Thread(target=storm, args=(names[i::THREADS],)) for i in range(THREADS)]
            t = time.monotonic()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            wall = time.monotonic() - t
            rate = len(lat) / wall
            row("logins/s, %d distinct users, %d clients" % (LOGINS, THREADS), rate, "1/s",
                a2["bound_logins_per_s"], "cores / argon2id hash time")
            row("login p50 latency under storm", pct(lat, 50) * 1000, "ms")
            row("login p99 latency under storm", pct(lat, 99) * 1000, "ms")
            if errors:
                row("login errors", len(errors), "count", note=str(sorted(set(errors))))

            # --- admin list endpoints at USERS users ------------------------------------
            admin.cookies = dict(c.cookies)
            for label, path in [("GET /users first page", "/api/v1/users?limit=50"),
                                ("GET /users deep page", "/api/v1/users?limit=50&after=%d" % (USERS // 2)),
                                ("GET /users prefix search", "/api/v1/users?limit=50&q=bench0999"),
                                ("GET /users role filter", "/api/v1/users?limit=50&role=admin"),
                                ("GET /audit first page", "/api/v1/audit?limit=100")]:
                times = []
                for _ in range(200):
                    t = time.monotonic()
                    s, _ = admin.request("GET", path)
                    times.append(time.monotonic() - t)
                    assert s == 200, (path, s)
                row("%s p50 (%dk users)" % (label, USERS // 1000), pct(times, 50) * 1000, "ms")
                row("%s p99 (%dk users)" % (label, USERS // 1000), pct(times, 99) * 1000, "ms", 100.0,
                    "target p99 100 ms", higher_is_better=False)

        # --- linked-clone provisioning on the test driver ---------------------------
        if want("provisioning"):
            provisioning_bench(stack, c, cafile, var)

        # --- heartbeat ingest, real agent code: bic-agent --fleet ----------------
        if want("fleet"):
            fleet_bench(stack, c, cafile, var)

        # --- heartbeat ingest, Python stand-ins: SERVERS agents x 100 desktops ----
        if want("heartbeats"):
            heartbeat_bench(stack, c, cafile, var)

        # --- health through nginx -> bicd -> MariaDB --------------------------------
        conn = Conn(stack.https_port, cafile)
        t = time.monotonic()
        n = 0
        while time.monotonic() - t < 3:
            conn.request("GET", "/api/v1/health")
            n += 1
        row("health requests/s (1 keep-alive client)", n / (time.monotonic() - t), "1/s", note="client-bound")

        # --- resident memory of bicd ----------------------------------------------
        with open(os.path.join(var, "run", "bicd.pid")) as f:
            pid = f.read().strip()
        with open("/proc/%s/status" % pid) as f:
            rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
        row("bicd resident memory", rss / 1024.0, "MiB")
    finally:
        stack.down()
        stack.remove()

    outdir = os.path.join(REPO, "build", "bench")
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"cores": os.cpu_count(), "rows": rows}, f, indent=2)
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write("| metric | value | unit | bound | bound is | ratio |\n|---|---:|---|---:|---|---:|\n")
        for r in rows:
            f.write("| %s | %s | %s | %s | %s | %s |\n" % (r["metric"], r["value"], r["unit"],
                                                          r["bound"] if r["bound"] is not None else "",
                                                          r["bound_name"] or r["note"],
                                                          r["ratio"] if r["ratio"] is not None else ""))
    print("\nwritten to build/bench/results.md and results.json")


if __name__ == "__main__":
    main()

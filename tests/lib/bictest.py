"""Shared helpers for BIC's API tests: a real stack on free loopback ports and an HTTPS client.

The stack is started once per test run by tests/runner.py (see Stack) and described to the
tests through environment variables, so a test module can also be run alone against a stack
that is already up:  BIC_TEST_VAR=/path/to/var python3 -m unittest tests/api/test_x.py
"""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """A private BIC stack (MariaDB, bicd, nginx) in a temporary directory."""

    def __init__(self, bicd=None, var=None):
        self.var = var or tempfile.mkdtemp(prefix="bic-test-")
        self.https_port = free_port()
        self.http_port = free_port()
        self.db_port = free_port()
        self.bicd = bicd or os.path.join(REPO, "build", "test", "bicd")
        self.env = dict(os.environ, BIC_VAR=self.var, BIC_HTTPS_PORT=str(self.https_port),
                        BIC_HTTP_PORT=str(self.http_port), BIC_DB_PORT=str(self.db_port),
                        BIC_LISTEN="127.0.0.1", BIC_BICD=self.bicd, BIC_LIBVIRT="0",
                        BIC_LOGIN_RATE="50r/s", BIC_LOGIN_BURST="100",
                        BIC_AGENTS_RATE="5000r/s", BIC_AGENTS_BURST="10000",
                        BIC_AGENTS_HEARTBEAT_INTERVAL="1", BIC_AGENTS_TASK_MAX_ATTEMPTS="3",
                        BIC_AGENTS_PUSH_TIMEOUT_MS="2000", BIC_LEADER_TICK_MS="200",
                        BIC_BROKER_TICKET_TTL="5", BIC_BROKER_CLIENT_GRACE="6",
                        BIC_METRICS_TOKEN="test-metrics-token", BIC_METRICS_NETWORKS="192.0.2.0/24",
                        ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:log_path=" +
                        os.path.join(self.var, "log", "asan"),
                        UBSAN_OPTIONS="print_stacktrace=1:log_path=" + os.path.join(self.var, "log", "ubsan"))

    def run(self, *args, check=True):
        return subprocess.run([os.path.join(REPO, "appliance", "bic-stack"), *args], env=self.env,
                              check=check, capture_output=True, text=True)

    def up(self):
        r = self.run("up", check=False)
        if r.returncode != 0:
            raise RuntimeError("stack did not start:\n" + r.stdout + r.stderr)
        return self

    def down(self):
        self.run("down", check=False)

    def remove(self):
        shutil.rmtree(self.var, ignore_errors=True)

    def export(self):
        """Environment that tells test modules where the stack is."""
        return {"BIC_TEST_VAR": self.var}

    # ---- issue 12: faults (tests/fault/). Kill, pause and restart the stack's daemons.
    def pid(self, name):
        """The pid of a stack daemon ('bicd', 'mariadbd', 'nginx') from its pidfile, or None."""
        return daemon_pid(self.var, name)

    def signal(self, name, sig):
        """Sends sig to a stack daemon; returns its pid (None when it is not running)."""
        pid = self.pid(name)
        if pid is not None:
            os.kill(pid, sig)
        return pid

    def kill9(self, name, timeout=30):
        """kill -9 of a stack daemon, then waits until the process is gone; returns its pid."""
        import signal as _signal
        pid = self.signal(name, _signal.SIGKILL)
        if pid is not None:
            wait_until(lambda: not pid_alive(pid), timeout=timeout, step=0.02)
        return pid

    def start_missing(self):
        """Starts every daemon of the stack that is not running (what systemd's Restart= does for
        a real install); the running ones are left alone. Raises when the stack cannot start."""
        r = self.run("up", check=False)
        if r.returncode != 0:
            raise RuntimeError("stack did not restart:\n" + r.stdout + r.stderr)
        # after a kill -9 the old socket file is still there, so `bic-stack up` may return before
        # the new bicd listens: wait until the socket accepts
        sock = os.path.join(self.var, "run", "bicd.sock")

        def listening():
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(sock)
                    return True
                except OSError:
                    return False
        if not wait_until(lambda: listening() and self.pid("bicd"), timeout=30, step=0.02):
            raise RuntimeError("bicd does not listen on %s after the restart" % sock)


def daemon_pid(var, name):
    """The pid in <var>/run/<name>.pid when that process is alive, else None."""
    try:
        with open(os.path.join(var, "run", name + ".pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value), names lower-case
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def __repr__(self):
        return "<Response %d %s>" % (self.status, self.body[:200])


class Client:
    """HTTPS client that verifies the stack's own certificate and keeps cookies."""

    def __init__(self, var=None):
        self.var = var or os.environ["BIC_TEST_VAR"]
        env = {}
        with open(os.path.join(self.var, "stack.env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                env[k] = v
        self.port = int(env["BIC_HTTPS_PORT"])
        self.http_port = int(env["BIC_HTTP_PORT"])
        self.host = "127.0.0.1"
        self.origin = "https://%s:%d" % (self.host, self.port)
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.var, "tls", "cert.pem"))
        self.cookies = {}
        self.csrf = None
        self.source = None  # a loopback address to send from (e.g. "127.0.0.2"), None: any

    def admin_password(self):
        with open(os.path.join(self.var, "etc", "admin-password")) as f:
            return f.read().strip()

    def request(self, method, path, body=None, headers=None, raw=None, origin=True, csrf=True):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30,
                                           source_address=(self.source, 0) if self.source else None)
        h = {"Accept": "application/json"}
        if origin and method not in ("GET", "HEAD"):
            h["Origin"] = self.origin
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            h["X-CSRF-Token"] = self.csrf
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        resp = Response(r.status, [(k.lower(), v) for k, v in r.getheaders()],
                        r.read().decode("utf-8", "replace"))
        conn.close()
        record_secrets(self.var, body, h, resp)
        for c in resp.header_all("set-cookie"):
            name, _, rest = c.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in c.lower() or value == "":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return resp

    def login(self, username, password, expect=200):
        """Signs in the way the portal does: pre-session CSRF token, then POST /auth/login."""
        self.csrf = None
        r = self.get("/api/v1/auth/csrf")
        assert r.status == 200, r
        self.csrf = r.json["csrf_token"]
        r = self.post("/api/v1/auth/login", {"username": username, "password": password})
        if expect is not None:
            assert r.status == expect, r
        if r.status == 200:
            self.csrf = r.json["csrf_token"]
        return r

    def login_admin(self):
        return self.login("admin", self.admin_password())

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


# ---- issue 12: every secret a test client sends or receives (passwords, session/refresh/CSRF
# cookies, bearer credentials, enrollment tokens, console tickets, VNC passwords, TOTP secrets and
# recovery codes) is appended to <var>/test-secrets.txt, one per line, so that
# tests/api/test_zzz_secrets.py can check that no log the stack wrote holds any of them.
SECRET_KEYS = {"password", "new_password", "current_password", "old_password", "ticket", "credential",
               "token", "refresh_token", "csrf_token", "client_secret", "bind_password", "secret",
               "recovery_codes", "code_verifier"}
SECRETS_FILE = "test-secrets.txt"


def record_secrets(var, sent, headers, resp):
    found = []

    def walk(v, secret=False):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, k in SECRET_KEYS)
        elif isinstance(v, list):
            for x in v:
                walk(x, secret)
        elif secret and isinstance(v, str) and len(v) >= 8:
            found.append(v)

    walk(sent)
    walk(resp.json)
    for name in ("cookie", "authorization", "x-csrf-token"):
        for k, v in headers.items():
            if k.lower() == name:
                found += [p.partition("=")[2] if name == "cookie" else p for p in v.split("; ")]
    for c in resp.header_all("set-cookie"):
        found.append(c.partition("=")[2].split(";", 1)[0])
    found = {x.rpartition(" ")[2] for x in found}  # "Bearer <id>.<credential>" -> the value
    found = [x for x in found if len(x) >= 8 and "\n" not in x]
    if found:
        with open(os.path.join(var, SECRETS_FILE), "a") as f:
            f.write("".join(x + "\n" for x in found))


class LoopbackServer:
    """A TCP server on 127.0.0.1 (a free port) that hands every connection to self.one(sock) in
    a thread of its own; subclasses write one(). close() stops accepting."""

    def __init__(self, backlog=64):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(c,), daemon=True).start()

    def one(self, c):
        raise NotImplementedError

    def close(self):
        self.sock.close()


def read_http_head(c):
    """Reads an HTTP request head from socket c: (head, bytes after it), or (None, b"") when the
    peer closes first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def wait_until(pred, timeout=10.0, step=0.05):
    """Polls pred() until it returns a truthy value or timeout passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def quote(s):
    return urllib.parse.quote(s, safe="")


_counter = [0]


def unique(prefix):
    """A name no other test in this run uses."""
    _counter[0] += 1
    return "%s%d_%d" % (prefix, os.getpid(), _counter[0])


def make_user(admin, role="user", password=None, **fields):
    """Creates a user through the admin API; returns (user json, password)."""
    password = password or "pw-" + unique("secret") + "-long"
    body = {"username": unique(role), "password": password, "role": role}
    body.update(fields)
    r = admin.post("/api/v1/users", body)
    assert r.status == 201, r
    return r.json, password


class AdminTestCase(unittest.TestCase):
    """Base for API tests: an admin client signed in once per class, and the shared assertions."""

    @classmethod
    def setUpClass(cls):
        cls.admin = Client()
        cls.admin.login_admin()

    def assertJsonError(self, r, status, code):
        """r is an error answer of the API contract: status, JSON body {"error":{code,message,request_id}}."""
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("content-type"), "application/json", r)
        self.assertIsNotNone(r.json, r)
        err = r.json["error"]
        self.assertEqual(err["code"], code, r)
        self.assertTrue(err["message"], r)
        self.assertRegex(err["request_id"], r"^[0-9a-zA-Z-]{8,}$")

    def cases(self):
        """Runs labelled cases as sub-tests (the runner counts each failing one); use as
        `with self.cases() as case:` then `with case(x=1): ...`."""
        test = self

        class _Cases:
            def __enter__(self):
                return lambda **labels: test.subTest(**labels)

            def __exit__(self, *exc):
                return False

        return _Cases()


def sql_root(var, statement):
    """Runs SQL as MariaDB's root over the stack's socket (tests only: to move time, not data)."""
    subprocess.run(["mariadb", "--no-defaults", "-S", os.path.join(var, "run", "mysqld.sock"), "-u", "root",
                    "bic", "-e", statement], check=True, capture_output=True)


class AgentProcess:
    """A bic-agent process (sanitizer build) with its own directory: the environment that points
    it at the stack, its log, and its sanitizer reports. Subclasses say how it is started."""

    BINARY = os.path.join(REPO, "build", "test", "bic-agent")

    def __init__(self, admin, token, prefix, log_name, **env):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.log_path = os.path.join(self.dir, log_name)
        self.env = dict(os.environ,
                        BIC_AGENT_CCC_URL=admin.origin,
                        BIC_AGENT_CA_FILE=os.path.join(admin.var, "tls", "cert.pem"),
                        BIC_AGENT_TOKEN=token,
                        BIC_AGENT_STATE_DIR=os.path.join(self.dir, "state"),
                        BIC_AGENT_LISTEN="127.0.0.1:0",
                        ASAN_OPTIONS="detect_leaks=1:log_path=" + os.path.join(self.dir, "asan"),
                        **env)
        self.proc = None

    def args(self):
        raise NotImplementedError

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.BINARY, *self.args()], env=self.env, stdout=self.log,
                                     stderr=self.log)
        return self

    def stop(self, sig=None):
        """Stops the process (SIGTERM unless told otherwise); returns its exit status."""
        import signal
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig or signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and not self.log.closed:
            self.log.close()
        return self.proc.returncode if self.proc else None

    def sanitizer_reports(self):
        out = []
        for name in os.listdir(self.dir):
            if name.startswith("asan"):
                with open(os.path.join(self.dir, name)) as f:
                    out.append(f.read()[:3000])
        return out

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def libvirtd_running():
    return subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True).returncode == 0


def ensure_libvirtd():
    """Starts virtlogd and libvirtd when qemu:///system does not answer. Returns (ok, started, why):
    started is True when this call started libvirtd (stop it with stop_libvirtd)."""
    import shutil
    if shutil.which("libvirtd") is None or shutil.which("qemu-system-x86_64") is None:
        return False, False, "libvirtd or qemu-system-x86_64 is not installed"
    if libvirtd_running():
        return True, False, ""
    os.makedirs("/var/log/libvirt", exist_ok=True)
    os.makedirs("/run/libvirt", exist_ok=True)
    if subprocess.run(["pgrep", "-x", "virtlogd"], capture_output=True).returncode != 0:
        subprocess.run(["virtlogd", "-d"], check=False)
    subprocess.run(["libvirtd", "-d"], check=False)
    if wait_until(libvirtd_running, timeout=20):
        return True, True, ""
    return False, False, "libvirtd did not start here"


def stop_libvirtd():
    subprocess.run(["pkill", "-x", "libvirtd"], check=False)


# A 512-byte boot sector (real-mode x86, hand-assembled): it reads the disk's second sector,
# increments its first byte, writes it back (BIOS int 13h), prints a line and halts. Booting a
# linked clone from it therefore proves the firmware read the golden image through the overlay,
# and the counter shows writes landing in the overlay (the golden file never changes).
_BOOT_CODE = bytes([
    0x31, 0xC0, 0x8E, 0xD8, 0x8E, 0xC0,              # xor ax,ax; mov ds,ax; mov es,ax
    0xB8, 0x01, 0x02, 0xB9, 0x02, 0x00, 0xB6, 0x00,  # mov ax,0201h; mov cx,0002h; mov dh,0
    0xBB, 0x00, 0x06, 0xCD, 0x13,                    # mov bx,0600h; int 13h (read LBA 1)
    0xFE, 0x06, 0x00, 0x06,                          # inc byte [0600h]
    0xB8, 0x01, 0x03, 0xB9, 0x02, 0x00, 0xB6, 0x00,  # mov ax,0301h; mov cx,0002h; mov dh,0
    0xBB, 0x00, 0x06, 0xCD, 0x13,                    # mov bx,0600h; int 13h (write LBA 1)
    0xBE, 0x35, 0x7C, 0xB4, 0x0E,                    # mov si,msg; mov ah,0Eh
    0xAC, 0x84, 0xC0, 0x74, 0x04, 0xCD, 0x10, 0xEB, 0xF7,  # print loop
    0xF4, 0xEB, 0xFD,                                # hlt; jmp $-1
])
BOOT_MESSAGE = b"BIC golden image booted\r\n"


def make_golden_qcow2(path, size_mib=16):
    """Writes a bootable qcow2 golden image (see _BOOT_CODE) to path; returns its sha256."""
    import hashlib
    assert len(_BOOT_CODE) == 53
    sector = _BOOT_CODE + BOOT_MESSAGE + b"\0"
    sector = sector + b"\0" * (510 - len(sector)) + b"\x55\xAA"
    raw = path + ".raw"
    with open(raw, "wb") as f:
        f.write(sector)
        f.write(b"\0" * 512)  # LBA 1: the boot counter
        f.truncate(size_mib << 20)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, path], check=True,
                   capture_output=True)
    os.unlink(raw)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def boot_counter(qcow2_path):
    """The boot counter (first byte of LBA 1) as the guest sees the disk, read without locking."""
    import tempfile as _t
    with _t.TemporaryDirectory() as d:
        out = os.path.join(d, "disk.raw")
        r = subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", qcow2_path, out], capture_output=True)
        if r.returncode != 0:
            return None
        with open(out, "rb") as f:
            f.seek(512)
            return f.read(1)[0]

"""Slow and large requests (issue 12, docs/security.md, appliance/nginx/bic.conf.in).

While attackers on other loopback addresses (127.0.0.2, 127.0.0.3) hold 200 slowloris
connections (headers trickled a byte at a time), 20 slow bodies (a large Content-Length, a few
bytes sent), send oversized headers and bodies, and flood bicd with 100 concurrent request loops,
a normal client on 127.0.0.1 keeps getting /api/v1/health (which asks MariaDB) and signs in
within normal latency: its median stays within a few times its own quiet median and no request
takes more than a second. Then:
  - oversized headers are answered 400 and oversized bodies 413 at once, as JSON, before bicd;
  - the flood from one address is capped (limit_conn: 64 requests in progress per address; the
    rest get 429 at once);
  - nginx closes the slowloris and slow-body connections itself (client_header_timeout and
    client_body_timeout, 10 s): none is left open 25 s later.
All of it is bounded: about 40 s and a few hundred sockets.
"""
import os
import socket
import ssl
import statistics
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import AdminTestCase, Client, make_user  # noqa: E402

SLOWLORIS = 200
SLOW_BODIES = 20
HELD_BODIES = 100  # slow bodies from one address: 64 are held in progress, the rest refused
FLOODERS = 12


def tls_socket(client, source):
    raw = socket.create_connection((client.host, client.port), timeout=10, source_address=(source, 0))
    ctx = ssl.create_default_context(cafile=os.path.join(client.var, "tls", "cert.pem"))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx.wrap_socket(raw, server_hostname=client.host)


def read_status(s, timeout=10):
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, OSError):
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, head.decode("latin-1"), body.decode("utf-8", "replace")


def closed_by_peer(s):
    """True when the server has closed the connection (EOF or reset; a last answer such as a 408
    is read and skipped), False while it is open and silent."""
    s.setblocking(False)
    try:
        while True:
            if s.recv(4096) == b"":
                return True
    except (ssl.SSLWantReadError, BlockingIOError, socket.timeout):
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True


class SlowAndLarge(AdminTestCase):
    def latencies(self, n, fn):
        out = []
        for _ in range(n):
            t0 = time.monotonic()
            r = fn()
            out.append(time.monotonic() - t0)
            self.assertEqual(r.status, 200, r)
        return out

    def test_normal_clients_keep_normal_latency_under_slow_and_large_requests(self):
        c = Client()
        user, pw = make_user(self.admin)

        def health():
            return c.get("/api/v1/health")
        quiet = self.latencies(30, health)
        quiet_p50 = statistics.median(quiet)

        stop = threading.Event()
        sockets, lock = [], threading.Lock()
        flood_codes, held_codes = {}, {}

        def slowloris(i):
            try:
                s = tls_socket(c, "127.0.0.2")
                s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
                with lock:
                    sockets.append(("header", s))
                while not stop.is_set():
                    try:
                        s.sendall(b"X-a: b\r\n")  # never the blank line that ends the headers
                    except OSError:
                        return
                    stop.wait(3)
            except OSError:
                pass

        def slow_body(i):
            try:
                s = tls_socket(c, "127.0.0.2")
                s.sendall(b"POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 900000\r\n\r\n{\"a\":")
                with lock:
                    sockets.append(("body", s))
            except OSError:
                pass

        def held_body(i):
            try:
                s = tls_socket(c, "127.0.0.3")
                s.sendall(b"POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 900000\r\n\r\n{\"a\":")
                s.settimeout(2)
                status, _, _ = read_status(s, timeout=2)
                with lock:
                    held_codes[status] = held_codes.get(status, 0) + 1
                    if status == 0:
                        sockets.append(("held", s))
            except OSError:
                pass

        def flood():
            f = Client()
            f.source = "127.0.0.4"
            while not stop.is_set():
                try:
                    st = f.get("/api/v1/health").status
                except OSError:
                    st = -1
                with lock:
                    flood_codes[st] = flood_codes.get(st, 0) + 1

        attackers = [threading.Thread(target=slowloris, args=(i,), daemon=True) for i in range(SLOWLORIS)]
        attackers += [threading.Thread(target=slow_body, args=(i,), daemon=True) for i in range(SLOW_BODIES)]
        attackers += [threading.Thread(target=held_body, args=(i,), daemon=True) for i in range(HELD_BODIES)]
        for t in attackers:
            t.start()
        for t in attackers[SLOWLORIS:]:
            t.join(15)
        flooders = [threading.Thread(target=flood, daemon=True) for _ in range(FLOODERS)]
        for t in flooders:
            t.start()
        try:
            time.sleep(1)
            # oversized headers and bodies are refused by nginx at once, as JSON
            big = []
            for kind in ("header", "cookie", "body"):
                s = tls_socket(c, "127.0.0.2")
                if kind == "header":
                    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
                elif kind == "cookie":
                    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n"
                              + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 8000) for i in range(12)) + b"\r\n")
                else:
                    s.sendall(b"POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 5000000\r\n\r\n")
                t0 = time.monotonic()
                status, head, body = read_status(s)
                big.append((kind, status, time.monotonic() - t0, body))
                s.close()
            # the normal client meanwhile
            busy = self.latencies(30, health)
            t0 = time.monotonic()
            self.assertEqual(Client().login(user["username"], pw).status, 200)
            login_s = time.monotonic() - t0
        finally:
            stop.set()
            for t in flooders:
                t.join(15)
        with lock:
            held = list(sockets)
        busy_p50, busy_max = statistics.median(busy), max(busy)
        print("  quiet /health p50 %.1f ms max %.1f ms; under attack p50 %.1f ms max %.1f ms; login %.0f ms;"
              " %d slowloris + %d slow bodies held; one address's %d slow bodies: %s; flood answers %s"
              % (quiet_p50 * 1000, max(quiet) * 1000, busy_p50 * 1000, busy_max * 1000, login_s * 1000,
                 sum(1 for k, _ in held if k == "header"), sum(1 for k, _ in held if k == "body"),
                 HELD_BODIES, dict(sorted(held_codes.items())), dict(sorted(flood_codes.items()))),
              file=sys.stderr)

        for kind, status, secs, body in big:
            self.assertEqual(status, 413 if kind == "body" else 400, (kind, body))
            self.assertIn('"error"', body, kind)
            self.assertLess(secs, 2.0, kind)
        self.assertGreaterEqual(len([1 for k, _ in held if k == "header"]), SLOWLORIS * 0.9)
        # one address holds at most 64 requests in progress (limit_conn); the rest: 429 at once
        self.assertEqual(held_codes, {0: 64, 429: HELD_BODIES - 64}, held_codes)
        # the flood got answers, all of them (it stays under the per-address limit)
        self.assertGreater(flood_codes.get(200, 0), 50, flood_codes)
        self.assertEqual(set(flood_codes) - {200, 429}, set(), flood_codes)
        # the normal client: bounded and short
        self.assertLess(busy_p50, max(5 * quiet_p50, 0.15), (quiet, busy))
        self.assertLess(busy_max, 1.0, busy)
        self.assertLess(login_s, 2.0)

        # nginx closes what the slow clients hold (10 s timeouts), none is left open
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            still = [s for _, s in held if not closed_by_peer(s)]
            if not still:
                break
            time.sleep(1)
        open_left = len([s for _, s in held if not closed_by_peer(s)])
        for _, s in held:
            s.close()
        self.assertEqual(open_left, 0, "%d slow connections still open after 25 s" % open_left)


if __name__ == "__main__":
    unittest.main()

"""tests/lib/rfb.py against real servers: QEMU's own VNC websocket (plain ws://) with VNC
authentication, and a small HTTP server that refuses the upgrade.

Needs qemu-system-x86_64 (TCG: no KVM needed) and python3-cryptography; skipped, with the reason,
without them. Does not use the BIC stack.
"""
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import bictest  # noqa: E402
import rfb  # noqa: E402

QEMU = shutil.which("qemu-system-x86_64")
PASSWORD = "bicRfb42"

try:
    import cryptography  # noqa: F401
    HAVE_CRYPTO = True
except ImportError:
    HAVE_CRYPTO = False


class RefusingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request 403 with a JSON body, like nginx when console-check refuses."""

    seen = []

    def do_GET(self):
        RefusingHandler.seen.append(dict(self.headers))
        body = b'{"error":{"code":"forbidden","message":"ticket refused"}}'
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class TestWebSocketRefused(unittest.TestCase):
    def test_refused_upgrade_carries_the_status(self):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingHandler)
        th = threading.Thread(target=srv.serve_forever, daemon=True)
        th.start()
        try:
            url = "ws://127.0.0.1:%d/console/abc" % srv.server_address[1]
            with self.assertRaises(rfb.WebSocketRefused) as cm:
                rfb.ws_connect(url, origin="https://example.test", cookie="bic_session=xyz", timeout=5)
            self.assertEqual(cm.exception.status, 403)
            self.assertIn("ticket refused", cm.exception.body)
            self.assertIn("403", str(cm.exception))
            h = RefusingHandler.seen[-1]
            self.assertEqual(h.get("Origin"), "https://example.test")
            self.assertEqual(h.get("Cookie"), "bic_session=xyz")
            self.assertEqual(h.get("Sec-WebSocket-Protocol"), "binary")
            self.assertEqual(h.get("Upgrade"), "websocket")
        finally:
            srv.shutdown()
            srv.server_close()

    def test_bad_scheme(self):
        with self.assertRaises(ValueError):
            rfb.ws_connect("http://127.0.0.1:1/", timeout=1)


@unittest.skipUnless(HAVE_CRYPTO, "python3-cryptography is not installed (VNC authentication needs DES)")
class TestVncKey(unittest.TestCase):
    def test_key_bits_reversed_and_padded(self):
        self.assertEqual(rfb.vnc_key("a"), bytes([0x86, 0, 0, 0, 0, 0, 0, 0]))
        self.assertEqual(rfb.vnc_key("123456789"), rfb.vnc_key("12345678"))

    def test_des_known_answer(self):
        # FIPS 46 worked example: key 133457799BBCDFF1, plaintext 0123456789ABCDEF; vnc_key
        # reverses the bits back, so pass the bit-reversed key as the "password"
        key = bytes.fromhex("133457799BBCDFF1")
        pw = bytes(int("{:08b}".format(b)[::-1], 2) for b in key).decode("latin-1")
        out = rfb.vnc_response(pw, bytes.fromhex("0123456789ABCDEF") * 2)
        self.assertEqual(out.hex().upper(), "85E813540F0AB405" * 2)


class Qemu:
    """qemu-system-x86_64 (TCG) with a password-protected VNC display and its websocket."""

    def __init__(self):
        self.dir = None
        self.proc = None
        self.out = b""

    def start(self, password):
        # a free port above 5900 for the display, another for the websocket
        while True:
            self.vnc_port = bictest.free_port()
            if self.vnc_port > 5900 + 100:
                break
        self.ws_port = bictest.free_port()
        self.proc = subprocess.Popen(
            [QEMU, "-machine", "accel=tcg", "-nodefaults", "-vga", "std", "-display", "none", "-m", "64",
             "-vnc", "127.0.0.1:%d,websocket=%d,password=on" % (self.vnc_port - 5900, self.ws_port),
             "-monitor", "stdio"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._drain, daemon=True).start()
        self.monitor("set_password vnc %s" % password)
        if not bictest.wait_until(self._listening, timeout=20, step=0.1):
            raise RuntimeError("QEMU's VNC websocket did not listen: %s" % self.out[-2000:])
        return self

    def _drain(self):
        while True:
            b = self.proc.stdout.read1(4096)
            if not b:
                return
            self.out += b

    def _listening(self):
        import socket
        try:
            socket.create_connection(("127.0.0.1", self.ws_port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def monitor(self, line):
        """Sends one HMP command and waits for the prompt after it."""
        prompts = self.out.count(b"(qemu)")
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        if not bictest.wait_until(lambda: self.out.count(b"(qemu)") > prompts, timeout=20):
            raise RuntimeError("QEMU monitor did not answer %r: %s" % (line, self.out[-2000:]))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@unittest.skipUnless(QEMU, "qemu-system-x86_64 is not installed")
@unittest.skipUnless(HAVE_CRYPTO, "python3-cryptography is not installed (VNC authentication needs DES)")
class TestRfbAgainstQemu(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.qemu = Qemu().start(PASSWORD)
        cls.url = "ws://127.0.0.1:%d/" % cls.qemu.ws_port

    @classmethod
    def tearDownClass(cls):
        cls.qemu.stop()

    def test_first_frame_is_drawn(self):
        """SeaBIOS draws its banner: within a few seconds the first full frame has lit pixels."""
        deadline = time.monotonic() + 30
        frames = []
        while True:
            conn = rfb.ws_connect(self.url, origin="http://127.0.0.1", timeout=10)
            try:
                frames.append(rfb.rfb_first_frame(conn, PASSWORD, timeout=10))
            finally:
                conn.close()
            w, h, secs, lit = frames[-1]
            if lit > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertGreater(w, 0)
        self.assertGreater(h, 0)
        self.assertLess(secs, 10)
        self.assertGreater(lit, 0, "every frame was blank: %s" % frames)
        self.assertLess(lit, 1.0, "every pixel lit is not a BIOS screen: %s" % frames)

    def test_wrong_password_is_refused(self):
        conn = rfb.ws_connect(self.url, timeout=10)
        try:
            with self.assertRaises(rfb.RFBAuthFailed):
                rfb.rfb_first_frame(conn, "wrong-pw", timeout=10)
        finally:
            conn.close()

    def test_no_password_gets_no_usable_security_type(self):
        conn = rfb.ws_connect(self.url, timeout=10)
        try:
            with self.assertRaises(rfb.RFBError) as cm:
                rfb.rfb_first_frame(conn, None, timeout=10)
            self.assertNotIsInstance(cm.exception, rfb.RFBAuthFailed)
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()

"""Console abuse: oversized and malformed websocket frames (issue 12, docs/security.md).

nginx hands every checked console to bic-consoled (fcgi/wsrelay.c), which relays it to the
desktop's QEMU VNC websocket and reads the browser's frame headers as they pass. A frame above
the limit (BIC_CONSOLE_MAX_FRAME, 256 KiB) ends the console with a close frame 1009 before any
byte of it reaches the desktop; an unmasked or otherwise malformed frame ends it with 1002.
Frames within the limit pass unchanged both ways. Shown with real websockets through nginx and
the relay to a small websocket server standing in for QEMU's, which records what reaches it.
"""
import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bictest import AdminTestCase, wait_until  # noqa: E402
import test_console_limits  # noqa: E402
from test_console_limits import FakeVncWebsocket, console_fixture, open_console  # noqa: E402

LIMIT = 262144


class RecordingVnc(FakeVncWebsocket):
    """Like QEMU's websocket: answers the upgrade, then records every byte it gets; say() sends
    a binary frame to the browser."""

    def __init__(self):
        self.got = bytearray()
        super().__init__()

    def hold(self, c):
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            self.got += chunk

    def say(self, payload):
        self.conn.sendall(frame(payload, mask=False))


def frame(payload, opcode=2, mask=True, length=None):
    n = len(payload) if length is None else length
    b0 = 0x80 | opcode
    m = 0x80 if mask else 0
    if n < 126:
        h = struct.pack(">BB", b0, m | n)
    elif n <= 0xffff:
        h = struct.pack(">BBH", b0, m | 126, n)
    else:
        h = struct.pack(">BBQ", b0, m | 127, n)
    if not mask:
        return h + payload
    key = os.urandom(4)
    return h + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_exactly(s, n, timeout=10):
    s.settimeout(timeout)
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def read_to_end(s, timeout=10):
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out, True
            out += chunk
    except (socket.timeout, ssl.SSLError, OSError):
        return out, False


class ConsoleFrames(AdminTestCase):
    DESKTOPS = 5
    ticket = test_console_limits.OpenConsoleLimits.ticket  # (the class itself is not imported: it would run twice)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        console_fixture(cls, RecordingVnc, "7f000000-0000-4000-8000-", "fd", cls.DESKTOPS)

    @classmethod
    def tearDownClass(cls):
        for v in cls.vnc:
            v.close()
        super().tearDownClass()

    def console(self, i):
        status, body, s = open_console(self.c, "/console/" + self.ticket(self.user, i))
        self.assertEqual(status, 101, body)
        self.assertTrue(wait_until(lambda: self.vnc[i].open == 1, timeout=5))
        self.addCleanup(s.close)
        return s

    def assertClosedWith(self, s, code, vnc, sent_before):
        data, eof = read_to_end(s)
        self.assertEqual(data, struct.pack(">BBH", 0x88, 2, code), "a close frame %d, then the end" % code)
        self.assertTrue(eof, "the console stayed open")
        self.assertTrue(vnc.closed.wait(5), "the desktop's side stayed open")
        self.assertEqual(bytes(vnc.got), sent_before, "bytes of the refused frame reached the desktop")

    def relay_log(self):
        with open(os.path.join(self.admin.var, "log", "bic-consoled.log")) as f:
            return f.read()

    def test_frames_within_the_limit_pass_both_ways(self):
        s, vnc = self.console(0), self.vnc[0]
        self.assertNotIn("x-bic-console-target", vnc.head.lower(), "the relay's header reached the desktop")
        small = frame(b"\x00\x01\x02" * 100)
        biggest = frame(os.urandom(LIMIT))
        ping = frame(b"hi", opcode=9)
        s.sendall(small + biggest + ping)
        want = small + biggest + ping
        self.assertTrue(wait_until(lambda: len(vnc.got) >= len(want), timeout=10), len(vnc.got))
        self.assertEqual(bytes(vnc.got), want)
        vnc.say(b"framebuffer" * 1000)
        self.assertEqual(read_exactly(s, 4 + 11000), frame(b"framebuffer" * 1000, mask=False))

    def test_an_oversized_frame_closes_the_console(self):
        s, vnc = self.console(1), self.vnc[1]
        good = frame(b"key event")
        s.sendall(good)
        self.assertTrue(wait_until(lambda: bytes(vnc.got) == good, timeout=5))
        # one byte above the limit, sent in full: nothing of it may pass
        try:
            s.sendall(frame(os.urandom(LIMIT + 1)))
        except OSError:
            pass  # the relay may close before the whole frame is sent
        self.assertClosedWith(s, 1009, vnc, good)
        self.assertTrue(wait_until(lambda: '"reason":"frame_too_big"' in self.relay_log(), timeout=5))
        self.assertIn('"frame_bytes":%d' % (LIMIT + 1), self.relay_log())

    def test_a_huge_declared_length_closes_at_once(self):
        s, vnc = self.console(2), self.vnc[2]
        s.sendall(frame(b"", length=1 << 62)[:14])  # the header alone: 4 EiB announced
        self.assertClosedWith(s, 1009, vnc, b"")

    def test_an_unmasked_frame_is_a_protocol_error(self):
        s, vnc = self.console(3), self.vnc[3]
        s.sendall(frame(b"not masked", mask=False))
        self.assertClosedWith(s, 1002, vnc, b"")
        # nothing of the ticket or the cookies reaches the relay's log
        self.assertNotIn(self.c.cookies.get("bic_session", "no-such-cookie"), self.relay_log())
        self.assertTrue(wait_until(lambda: '"reason":"protocol_error"' in self.relay_log(), timeout=5))

    def test_the_desktop_closing_ends_the_console(self):
        s, vnc = self.console(4), self.vnc[4]
        vnc.say(b"last update")
        vnc.conn.shutdown(socket.SHUT_RDWR)  # QEMU goes away (the domain stopped)
        data, eof = read_to_end(s)
        self.assertEqual(data, frame(b"last update", mask=False), "what QEMU sent last was delivered")
        self.assertTrue(eof, "the console stayed open after the desktop's side ended")
        self.assertTrue(wait_until(lambda: '"reason":"desktop_closed"' in self.relay_log(), timeout=5))

"""A small WebSocket + RFB 3.8 client for tests and benchmarks: opens a console the way noVNC does
and reads the first full frame.

    conn = ws_connect("wss://127.0.0.1:8443/console/<ticket>", origin="https://127.0.0.1:8443",
                      cookie="bic_session=...", timeout=10)
    width, height, seconds, nonzero = rfb_first_frame(conn, password="abcd1234", timeout=10)
    conn.close()

Standard library only, plus python3-cryptography for the DES of VNC authentication. TLS
certificates are not verified (the stack's certificate is self-signed; the test is about the
console path, not PKI).
"""
import base64
import hashlib
import os
import socket
import ssl
import struct
import time
import urllib.parse

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

SEC_NONE, SEC_VNC = 1, 2
ENC_RAW = 0
ENC_DESKTOP_SIZE = -223


class WebSocketRefused(Exception):
    """The server answered the upgrade with something other than 101. status is the HTTP
    status (e.g. 403), body the start of the answer's body."""

    def __init__(self, status, reason, body):
        super().__init__("websocket upgrade refused: HTTP %d %s %s" % (status, reason, body[:300]))
        self.status = status
        self.reason = reason
        self.body = body


class WebSocketClosed(Exception):
    """The peer closed the connection (close frame or EOF) before the expected data."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class RFBError(Exception):
    """A protocol failure: unexpected version, no usable security type, bad message."""


class RFBAuthFailed(RFBError):
    """The server rejected the credentials (SecurityResult != 0); reason is its message."""

    def __init__(self, reason):
        super().__init__("VNC authentication failed: %s" % reason)
        self.reason = reason


class WebSocket:
    """A client WebSocket (RFC 6455) carrying binary frames; read() returns the payload bytes as
    one stream, whatever the framing."""

    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.raw = bytearray(leftover)  # bytes read from the socket, not yet parsed as frames
        self.data = bytearray()         # payload bytes of binary frames, not yet consumed
        self.closed = False
        self.close_code = None

    def settimeout(self, seconds):
        self.sock.settimeout(seconds)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("websocket: no data from the server in time") from None
        if not chunk:
            raise WebSocketClosed("websocket: the server closed the TCP connection")
        self.raw += chunk

    def _frame(self):
        """Reads one whole frame; returns (fin, opcode, payload). Consumes nothing from the
        buffer until the frame is complete, so a timeout leaves the stream intact."""
        while True:
            raw = self.raw
            if len(raw) >= 2:
                b0, b1 = raw[0], raw[1]
                n, pos = b1 & 0x7F, 2
                if n == 126 and len(raw) >= 4:
                    n, pos = struct.unpack_from("!H", raw, 2)[0], 4
                elif n == 127 and len(raw) >= 10:
                    n, pos = struct.unpack_from("!Q", raw, 2)[0], 10
                if (b1 & 0x7F) < 126 or pos > 2:
                    mask = None
                    if b1 & 0x80:
                        mask = bytes(raw[pos:pos + 4]) if len(raw) >= pos + 4 else b""
                        pos += 4
                    if len(raw) >= pos + n:
                        payload = bytes(raw[pos:pos + n])
                        del raw[:pos + n]
                        if mask:
                            payload = _mask(payload, mask)
                        return bool(b0 & 0x80), b0 & 0x0F, payload
            self._fill()

    def _send_frame(self, opcode, payload):
        key = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        self.sock.sendall(head + key + _mask(payload, key))

    def send(self, payload):
        """Sends payload as one masked binary frame."""
        if self.closed:
            raise WebSocketClosed("websocket: already closed", self.close_code)
        self._send_frame(OP_BINARY, bytes(payload))

    def read(self, n):
        """Returns exactly n payload bytes; raises WebSocketClosed or TimeoutError."""
        while len(self.data) < n:
            if self.closed:
                raise WebSocketClosed("websocket: closed by the server (code %s)" % self.close_code,
                                      self.close_code)
            fin, opcode, payload = self._frame()
            if opcode in (OP_BINARY, OP_CONT, OP_TEXT):
                self.data += payload
            elif opcode == OP_PING:
                self._send_frame(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                try:
                    self._send_frame(OP_CLOSE, payload[:2])
                except OSError:
                    pass
                self.closed = True
        out = bytes(self.data[:n])
        del self.data[:n]
        return out

    def close(self, code=1000):
        """Sends a close frame (when still open) and closes the socket. Never raises."""
        try:
            if not self.closed:
                self._send_frame(OP_CLOSE, struct.pack("!H", code))
                self.closed = True
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def _mask(payload, key):
    # XOR four bytes at a time through one big integer: fast enough for whole frames
    n = len(payload)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def ws_connect(url, origin=None, cookie=None, timeout=10.0, headers=None):
    """Opens a WebSocket to url (ws:// or wss://) asking for subprotocol "binary" with the given
    Origin and Cookie headers. Returns a WebSocket. Raises WebSocketRefused (with .status) when
    the server answers other than 101, OSError/TimeoutError when it cannot be reached."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("ws", "wss"):
        raise ValueError("ws_connect: %s is not a ws:// or wss:// URL" % url)
    host = u.hostname
    port = u.port or (443 if u.scheme == "wss" else 80)
    path = (u.path or "/") + ("?" + u.query if u.query else "")
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if u.scheme == "wss":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock, server_hostname=host)
        key = base64.b64encode(os.urandom(16)).decode()
        hostport = host if u.port is None else "%s:%d" % (host, port)
        h = ["GET %s HTTP/1.1" % path, "Host: %s" % hostport, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Protocol: binary"]
        if origin:
            h.append("Origin: %s" % origin)
        if cookie:
            h.append("Cookie: %s" % cookie)
        for k, v in (headers or {}).items():
            h.append("%s: %s" % (k, v))
        sock.sendall(("\r\n".join(h) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                raise WebSocketClosed("websocket: connection closed during the handshake")
            buf += chunk
            if len(buf) > 65536:
                raise WebSocketClosed("websocket: handshake answer too long")
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("iso-8859-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise WebSocketClosed("websocket: not an HTTP answer: %r" % lines[0])
        status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        fields = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            fields[k.strip().lower()] = v.strip()
        if status != 101:
            body = rest
            want = int(fields.get("content-length", "0") or 0)
            sock.settimeout(min(timeout, 2.0))
            try:
                while len(body) < min(want, 4096):
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    body += chunk
            except (socket.timeout, OSError):
                pass
            raise WebSocketRefused(status, reason, body.decode("utf-8", "replace"))
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        if fields.get("sec-websocket-accept") != accept:
            raise WebSocketClosed("websocket: wrong Sec-WebSocket-Accept %r" % fields.get("sec-websocket-accept"))
        sock.settimeout(timeout)
        return WebSocket(sock, rest)
    except BaseException:
        sock.close()
        raise


def vnc_key(password):
    """The DES key of VNC authentication: the password padded (or cut) to 8 bytes, each byte's
    bits reversed."""
    pw = password.encode("latin-1")[:8].ljust(8, b"\0")
    return bytes(int("{:08b}".format(b)[::-1], 2) for b in pw)


def vnc_response(password, challenge):
    """The 16-byte answer to a VNC authentication challenge (DES-ECB with vnc_key)."""
    try:  # cryptography >= 43 moved DES here; Debian 12's 38 only has the old place
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    except ImportError:
        from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes
    # 3DES with K1 = K2 = K3 is single DES
    enc = Cipher(TripleDES(vnc_key(password) * 3), modes.ECB()).encryptor()
    return enc.update(challenge) + enc.finalize()


def _u8(conn):
    return conn.read(1)[0]


def _u32(conn):
    return struct.unpack("!I", conn.read(4))[0]


def _reason(conn):
    n = _u32(conn)
    return conn.read(min(n, 4096)).decode("utf-8", "replace")


def rfb_handshake(conn, password=None):
    """Version, security and initialisation of RFB 3.8 over conn (anything with read(n) and
    send(bytes)). Uses VNC authentication when password is given and offered, None otherwise.
    Returns (width, height, name). Raises RFBAuthFailed, RFBError, WebSocketClosed."""
    version = conn.read(12)
    if not version.startswith(b"RFB 003."):
        raise RFBError("not an RFB server: %r" % version)
    conn.send(b"RFB 003.008\n")
    count = _u8(conn)
    if count == 0:
        raise RFBError("the server refused the connection: %s" % _reason(conn))
    types = list(conn.read(count))
    if password is not None and SEC_VNC in types:
        conn.send(bytes([SEC_VNC]))
        challenge = conn.read(16)
        conn.send(vnc_response(password, challenge))
    elif SEC_NONE in types:
        conn.send(bytes([SEC_NONE]))
    else:
        raise RFBError("no usable security type (offered %s, password %s)"
                       % (types, "given" if password is not None else "not given"))
    result = _u32(conn)
    if result != 0:
        try:
            reason = _reason(conn)
        except (WebSocketClosed, TimeoutError):
            reason = "(no reason given)"
        raise RFBAuthFailed(reason)
    conn.send(b"\x01")  # ClientInit: shared
    width, height = struct.unpack("!HH", conn.read(4))
    conn.read(16)  # the server's pixel format: replaced below
    name = conn.read(_u32(conn)).decode("utf-8", "replace")
    return width, height, name


# 32 bits per pixel, depth 24, little endian, true colour, 255/255/255 at shifts 16/8/0
PIXEL_FORMAT = struct.pack("!BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)


def rfb_first_frame(conn, password=None, timeout=10.0):
    """Runs the RFB handshake on conn, asks for the whole screen in Raw encoding and reads
    FramebufferUpdates until every pixel was received once. Returns (width, height,
    seconds_to_first_frame, fraction_of_nonzero_pixels), seconds counted from this call.
    Raises RFBAuthFailed on wrong credentials, TimeoutError when no frame arrives in time."""
    t0 = time.monotonic()
    conn.settimeout(timeout)
    width, height, _ = rfb_handshake(conn, password)
    conn.send(b"\x00\x00\x00\x00" + PIXEL_FORMAT)                       # SetPixelFormat
    # SetEncodings [Raw, DesktopSize]: the BIOS switches modes right after start
    conn.send(struct.pack("!BxHii", 2, 2, ENC_RAW, ENC_DESKTOP_SIZE))
    conn.send(struct.pack("!BBHHHH", 3, 0, 0, 0, width, height))        # non-incremental request
    covered = nonzero = 0
    total = width * height
    while covered < total:
        left = timeout - (time.monotonic() - t0)
        if left <= 0:
            raise TimeoutError("rfb: no full frame within %.1f s (%d of %d pixels)" % (timeout, covered, total))
        # QEMU may drop a request that arrives before the display is set up: ask again each second
        conn.settimeout(min(1.0, left))
        try:
            kind = _u8(conn)
        except TimeoutError:
            if not covered:
                conn.send(struct.pack("!BBHHHH", 3, 0, 0, 0, width, height))
            continue
        conn.settimeout(max(left, 0.1))
        if kind == 0:  # FramebufferUpdate
            conn.read(1)
            (rects,) = struct.unpack("!H", conn.read(2))
            for _ in range(rects):
                x, y, w, h, enc = struct.unpack("!HHHHi", conn.read(12))
                if enc == ENC_DESKTOP_SIZE:  # the framebuffer changed size
                    width, height, total, covered, nonzero = w, h, w * h, 0, 0
                    conn.send(struct.pack("!BBHHHH", 3, 0, 0, 0, width, height))
                    continue
                if enc != ENC_RAW:
                    raise RFBError("rfb: encoding %d was not asked for" % enc)
                pixels = bytearray(conn.read(w * h * 4))
                pixels[3::4] = bytes(w * h)  # the unused byte of each pixel
                words = memoryview(pixels).cast("I")
                covered += w * h
                nonzero += w * h - words.tolist().count(0)
        elif kind == 1:  # SetColourMapEntries
            conn.read(3)
            (n,) = struct.unpack("!H", conn.read(2))
            conn.read(6 * n)
        elif kind == 2:  # Bell
            pass
        elif kind == 3:  # ServerCutText
            conn.read(3)
            conn.read(_u32(conn))
        else:
            raise RFBError("rfb: unknown server message type %d" % kind)
    return width, height, time.monotonic() - t0, (nonzero / total if total else 0.0)

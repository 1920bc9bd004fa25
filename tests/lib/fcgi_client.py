"""A minimal FastCGI client (the responder role, one request per connection): enough to talk to
bicd's sockets directly, without nginx, in tests."""
import socket
import struct

BEGIN, END, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7


def _record(kind, content, request_id=1):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", 1, kind, request_id, len(content), pad, 0) + content + b"\0" * pad


def _length(n):
    return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)


def _params(params):
    out = b""
    for k, v in params.items():
        k, v = k.encode(), v.encode()
        out += _length(len(k)) + _length(len(v)) + k + v
    return out


def request(sock_path, method, path, body=b"", headers=None, timeout=10):
    """Returns (status, headers dict, body bytes) of one request to a FastCGI unix socket."""
    params = {"REQUEST_METHOD": method, "DOCUMENT_URI": path, "REQUEST_URI": path, "QUERY_STRING": "",
              "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": str(len(body)) if body else "",
              "SERVER_PROTOCOL": "HTTP/1.1"}
    if body:
        params["CONTENT_TYPE"] = "application/json"
    for k, v in (headers or {}).items():
        params["HTTP_" + k.upper().replace("-", "_")] = v
    msg = _record(BEGIN, struct.pack(">HB5x", 1, 0))  # responder, close the connection after
    msg += _record(PARAMS, _params(params)) + _record(PARAMS, b"")
    if body:
        msg += _record(STDIN, body)
    msg += _record(STDIN, b"")
    out = b""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(msg)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    while len(buf) >= 8:
        _, kind, _, n, pad, _ = struct.unpack(">BBHHBB", buf[:8])
        if kind == STDOUT:
            out += buf[8:8 + n]
        buf = buf[8 + n + pad:]
    head, _, rest = out.partition(b"\r\n\r\n")
    hdrs = {}
    for line in head.decode("latin-1").split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    status = int(hdrs.get("status", "200").split()[0])
    return status, hdrs, rest

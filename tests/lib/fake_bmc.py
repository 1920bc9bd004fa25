"""A Redfish BMC the test controls (failure recovery, docs/automation.md): plain HTTP on
127.0.0.1 and a free port, one computer system at /redfish/v1/Systems/1, HTTP basic auth.

    bmc = FakeBmc(user="admin", password="pw").start()
    bmc.url             -> "http://127.0.0.1:<port>", the address to give PUT /servers/{id}/bmc
    bmc.power           -> "On" / "Off"; ForceOff sets it to "Off" in mode "ok", On to "On"
                           (and calls on_power_on(), which the test uses to bring its host up)
    bmc.mode            -> "ok" | "refuse" (ForceOff and On answer 500) | "stuck" (accepts them,
                           the power stays as it was) | "down" (every request answers 503)
    bmc.requests        -> [(method, path, body, authorised)] as they came
    bmc.stop()
"""
import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SYSTEM = "/redfish/v1/Systems/1"


class FakeBmc:
    def __init__(self, user="admin", password="secret", power="On", mode="ok", on_power_on=None):
        self.user, self.password = user, password
        self.on_power_on = on_power_on
        self.power, self.mode = power, mode
        self.requests = []
        self.lock = threading.Lock()
        self.server = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def resets(self, kind=None):
        """The reset requests received (of one ResetType when kind is given)."""
        def reset_type(body):
            try:
                return json.loads(body).get("ResetType")
            except (ValueError, AttributeError):
                return None
        with self.lock:
            return [r for r in self.requests if r[0] == "POST" and r[1].endswith("ComputerSystem.Reset")
                    and (kind is None or reset_type(r[2]) == kind)]

    def start(self):
        bmc = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def answer(self, status, obj=None):
                body = json.dumps(obj).encode() if obj is not None else b""
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def authorised(self):
                want = "Basic " + base64.b64encode(("%s:%s" % (bmc.user, bmc.password)).encode()).decode()
                return self.headers.get("Authorization") == want

            def handle_one(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode(errors="replace") if n else ""
                ok = self.authorised()
                with bmc.lock:
                    bmc.requests.append((method, self.path, body, ok))
                    mode = bmc.mode
                if mode == "down":
                    return self.answer(503, {"error": "down"})
                if not ok:
                    return self.answer(401, {"error": "unauthorised"})
                if method == "GET" and self.path == "/redfish/v1/Systems":
                    return self.answer(200, {"Members": [{"@odata.id": SYSTEM}], "Members@odata.count": 1})
                if method == "GET" and self.path == SYSTEM:
                    with bmc.lock:
                        return self.answer(200, {"@odata.id": SYSTEM, "Id": "1", "PowerState": bmc.power})
                if method == "POST" and self.path == SYSTEM + "/Actions/ComputerSystem.Reset":
                    try:
                        kind = json.loads(body).get("ResetType")
                    except ValueError:
                        kind = None
                    if kind not in ("ForceOff", "On"):
                        return self.answer(400, {"error": "ResetType"})
                    if mode == "refuse":
                        return self.answer(500, {"error": "refused"})
                    if mode == "ok":
                        with bmc.lock:
                            bmc.power = "Off" if kind == "ForceOff" else "On"
                        if kind == "On" and bmc.on_power_on:
                            bmc.on_power_on()
                    return self.answer(204)
                return self.answer(404, {"error": "not found"})

            def do_GET(self):
                self.handle_one("GET")

            def do_POST(self):
                self.handle_one("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

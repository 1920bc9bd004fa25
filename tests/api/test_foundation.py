"""Foundation: health, version, the portal over HTTPS, and the shared error contract."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import Client  # noqa: E402

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class Foundation(unittest.TestCase):
    def setUp(self):
        self.c = Client()

    def assertJsonError(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertIsNotNone(r.json, r)
        err = r.json["error"]
        self.assertEqual(err["code"], code)
        self.assertTrue(err["message"])
        self.assertRegex(err["request_id"], r"^[0-9a-zA-Z-]{8,}$")

    def test_health_ok(self):
        r = self.c.get("/api/v1/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"status": "ok", "database": "ok"})

    def test_version(self):
        r = self.c.get("/api/v1/version")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["name"], "bic")
        self.assertRegex(r.json["version"], r"^\d+\.\d+\.\d+")
        self.assertGreaterEqual(r.json["schema"], 2)

    def test_security_headers_on_api(self):
        r = self.c.get("/api/v1/health")
        for k, v in SECURITY_HEADERS.items():
            self.assertEqual(r.header(k), v, k)
        self.assertIn("default-src 'none'", r.header("content-security-policy"))
        self.assertIn("max-age=", r.header("strict-transport-security"))
        self.assertTrue(r.header("x-request-id"))

    def test_request_id_matches_error_body(self):
        r = self.c.get("/api/v1/no-such-thing")
        self.assertEqual(r.json["error"]["request_id"], r.header("x-request-id"))

    def test_user_portal_served_over_https(self):
        r = self.c.get("/")
        self.assertEqual(r.status, 200)
        self.assertIn("text/html", r.header("content-type"))
        self.assertIn("<html", r.body.lower())
        self.assertIn("frame-ancestors 'none'", r.header("content-security-policy"))

    def test_admin_portal_served_over_https(self):
        r = self.c.get("/admin/")
        self.assertEqual(r.status, 200)
        self.assertIn("text/html", r.header("content-type"))

    def test_http_redirects_to_https(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.c.http_port, timeout=10)
        conn.request("GET", "/api/v1/health")
        r = conn.getresponse()
        self.assertEqual(r.status, 301)
        self.assertEqual(r.getheader("Location"), "https://127.0.0.1:%d/api/v1/health" % self.c.port)

    def test_unknown_api_path_404(self):
        self.assertJsonError(self.c.get("/api/v1/nothing/here"), 404, "not_found")

    def test_wrong_method_405_with_allow(self):
        r = self.c.request("DELETE", "/api/v1/health")
        self.assertJsonError(r, 405, "method_not_allowed")
        self.assertEqual(r.header("allow"), "GET")

    def test_unknown_method_405(self):
        r = self.c.request("PROPFIND", "/api/v1/version")
        self.assertIn(r.status, (405,))

    def test_body_over_nginx_limit_413(self):
        r = self.c.post("/api/v1/health", raw=b"x" * (2 * 1024 * 1024),
                        headers={"Content-Type": "application/json"})
        self.assertJsonError(r, 413, "payload_too_large")

    def test_body_on_bodyless_route_413_before_handler(self):
        # GET routes declare a body limit of 0: any body is refused before dispatch.
        r = self.c.request("GET", "/api/v1/version", raw=b'{"a":1}',
                           headers={"Content-Type": "application/json"})
        self.assertJsonError(r, 413, "payload_too_large")


if __name__ == "__main__":
    unittest.main()

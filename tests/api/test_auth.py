"""Sign-in, sessions, tokens, CSRF, brute-force protection and the route table's roles."""
import base64
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import REPO, Client, make_user, unique  # noqa: E402


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt(claims, key, alg="HS256"):
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    if alg == "none":
        return header + "." + payload + "."
    sig = hmac.new(key, (header + "." + payload).encode(), hashlib.sha256).digest()
    return header + "." + payload + "." + b64(sig)


class Login(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.admin = Client()
        cls.admin.login_admin()

    def test_login_sets_hardened_cookies(self):
        c = Client()
        r = c.login("admin", c.admin_password())
        cookies = r.header_all("set-cookie")
        names = sorted(x.split("=", 1)[0] for x in cookies)
        self.assertEqual(names, ["__Host-bic_refresh", "__Host-bic_session"])
        for x in cookies:
            low = x.lower()
            for flag in ("path=/", "secure", "httponly", "samesite=strict"):
                self.assertIn(flag, low, x)
            self.assertNotIn("domain=", low)
        self.assertEqual(r.json["user"]["username"], "admin")
        self.assertEqual(r.json["user"]["role"], "admin")
        self.assertEqual(len(r.json["csrf_token"]), 43)
        self.assertNotIn("password", r.body)

    def test_me_requires_session(self):
        r = Client().get("/api/v1/auth/me")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json["error"]["code"], "unauthenticated")

    def test_me_after_login(self):
        u, pw = make_user(self.admin, display_name="Kim Min-su")
        c = Client()
        c.login(u["username"], pw)
        r = c.get("/api/v1/auth/me")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["user"]["display_name"], "Kim Min-su")
        self.assertEqual(r.json["user"]["role"], "user")
        self.assertGreater(r.json["expires_in"], 0)

    def test_unicode_display_name_round_trips(self):
        u, pw = make_user(self.admin, display_name="김민수")
        c = Client()
        self.assertEqual(c.login(u["username"], pw).json["user"]["display_name"], "김민수")

    def test_stolen_cookie_useless_after_logout(self):
        u, pw = make_user(self.admin)
        c = Client()
        c.login(u["username"], pw)
        stolen = dict(c.cookies)
        stolen_csrf = c.csrf
        self.assertEqual(c.post("/api/v1/auth/logout").status, 204)
        self.assertEqual(c.get("/api/v1/auth/me").status, 401)
        thief = Client()
        thief.cookies = stolen
        thief.csrf = stolen_csrf
        self.assertEqual(thief.get("/api/v1/auth/me").status, 401)
        # refused either as an ended session (401) or, having no live session to match, by CSRF (403)
        self.assertIn(thief.post("/api/v1/auth/refresh").status, (401, 403))
        self.assertEqual(thief.get("/api/v1/auth/me").status, 401)

    def test_logout_requires_csrf(self):
        u, pw = make_user(self.admin)
        c = Client()
        c.login(u["username"], pw)
        r = c.post("/api/v1/auth/logout", csrf=False)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json["error"]["code"], "csrf_failed")
        self.assertEqual(c.get("/api/v1/auth/me").status, 200)

    def test_refresh_rotates_and_old_refresh_token_dies(self):
        u, pw = make_user(self.admin)
        c = Client()
        c.login(u["username"], pw)
        old = dict(c.cookies)
        r = c.post("/api/v1/auth/refresh")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["user"]["username"], u["username"])
        self.assertNotEqual(c.cookies["__Host-bic_refresh"], old["__Host-bic_refresh"])
        self.assertEqual(c.get("/api/v1/auth/me").status, 200)
        replay = Client()
        replay.cookies = {"__Host-bic_refresh": old["__Host-bic_refresh"]}
        replay.csrf = c.csrf
        self.assertIn(replay.post("/api/v1/auth/refresh").status, (401, 403))
        self.assertEqual(replay.get("/api/v1/auth/me").status, 401)

    def test_refresh_without_access_token(self):
        # An expired access token is simply absent: the refresh cookie and the CSRF token suffice.
        u, pw = make_user(self.admin)
        c = Client()
        c.login(u["username"], pw)
        del c.cookies["__Host-bic_session"]
        self.assertEqual(c.get("/api/v1/auth/me").status, 401)
        self.assertEqual(c.post("/api/v1/auth/refresh").status, 200)
        self.assertEqual(c.get("/api/v1/auth/me").status, 200)

    def test_password_change_revokes_sessions(self):
        u, pw = make_user(self.admin)
        c1, c2 = Client(), Client()
        c1.login(u["username"], pw)
        c2.login(u["username"], pw)
        r = c1.post("/api/v1/auth/password", {"current_password": "wrong-" + pw, "new_password": "x" * 16})
        self.assertEqual(r.status, 403)
        r = c1.post("/api/v1/auth/password", {"current_password": pw, "new_password": "short"})
        self.assertEqual(r.status, 422)
        new = "new-" + pw
        self.assertEqual(c1.post("/api/v1/auth/password", {"current_password": pw, "new_password": new}).status, 204)
        self.assertEqual(c1.get("/api/v1/auth/me").status, 401)
        self.assertEqual(c2.get("/api/v1/auth/me").status, 401)
        Client().login(u["username"], pw, expect=401)
        Client().login(u["username"], new)

    def test_password_length_bounded(self):
        r = Client().login("admin", "x" * 300, expect=None)
        self.assertEqual(r.status, 422)

    def test_malformed_login_body(self):
        c = Client()
        c.csrf = c.get("/api/v1/auth/csrf").json["csrf_token"]
        r = c.post("/api/v1/auth/login", raw=b'{"username": "a", "password": ', headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json["error"]["code"], "bad_json")
        r = c.post("/api/v1/auth/login", {"username": "a", "password": "b", "extra": 1})
        self.assertEqual(r.status, 422)
        self.assertIn("extra", r.json["error"]["message"])
        r = c.post("/api/v1/auth/login", raw=b'{"username":"a","username":"b","password":"c"}',
                   headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        r = c.post("/api/v1/auth/login", raw=b'username=a', headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 415)

    def test_body_over_route_limit_refused_by_bicd(self):
        # Under nginx's 4 KiB cap for the login location, over the route's 2 KiB limit.
        c = Client()
        c.csrf = c.get("/api/v1/auth/csrf").json["csrf_token"]
        r = c.post("/api/v1/auth/login", {"username": "a", "password": "p" * 3000})
        self.assertEqual(r.status, 413)
        self.assertEqual(r.json["error"]["code"], "payload_too_large")
        self.assertIsNotNone(r.header("x-request-id"))  # set by bicd, not nginx


class Tokens(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.admin = Client()
        cls.admin.login_admin()
        with open(os.path.join(cls.admin.var, "etc", "jwt.key"), "rb") as f:
            cls.key = f.read()

    def session(self):
        u, pw = make_user(self.admin)
        c = Client()
        c.login(u["username"], pw)
        claims = json.loads(unb64(c.cookies["__Host-bic_session"].split(".")[1]))
        return c, claims

    def me_with(self, c, token):
        t = Client()
        t.cookies = {"__Host-bic_session": token}
        return t.get("/api/v1/auth/me").status

    def test_crafted_token_with_right_key_accepted(self):
        # The control for the refusals below: our crafting is right.
        c, claims = self.session()
        self.assertEqual(self.me_with(c, jwt(dict(claims, exp=int(time.time()) + 60), self.key)), 200)

    def test_alg_none_refused(self):
        c, claims = self.session()
        self.assertEqual(self.me_with(c, jwt(claims, b"", alg="none")), 401)

    def test_other_algorithm_refused(self):
        c, claims = self.session()
        h = b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
        p = b64(json.dumps(claims).encode())
        sig = b64(hmac.new(self.key, (h + "." + p).encode(), hashlib.sha512).digest())
        self.assertEqual(self.me_with(c, h + "." + p + "." + sig), 401)

    def test_other_key_refused(self):
        c, claims = self.session()
        self.assertEqual(self.me_with(c, jwt(claims, os.urandom(64))), 401)

    def test_expired_refused(self):
        c, claims = self.session()
        now = int(time.time())
        self.assertEqual(self.me_with(c, jwt(dict(claims, iat=now - 100, nbf=now - 100, exp=now - 1), self.key)), 401)

    def test_not_yet_valid_refused(self):
        c, claims = self.session()
        now = int(time.time())
        self.assertEqual(self.me_with(c, jwt(dict(claims, nbf=now + 300, exp=now + 600), self.key)), 401)

    def test_wrong_audience_refused(self):
        c, claims = self.session()
        self.assertEqual(self.me_with(c, jwt(dict(claims, aud="someone-else"), self.key)), 401)

    def test_wrong_issuer_refused(self):
        c, claims = self.session()
        self.assertEqual(self.me_with(c, jwt(dict(claims, iss="evil"), self.key)), 401)

    def test_missing_exp_refused(self):
        c, claims = self.session()
        self.assertEqual(self.me_with(c, jwt({k: v for k, v in claims.items() if k != "exp"}, self.key)), 401)

    def test_other_users_session_id_refused(self):
        c, claims = self.session()
        _, other = self.session()
        self.assertEqual(self.me_with(c, jwt(dict(claims, sid=other["sid"]), self.key)), 401)

    def test_garbage_tokens_refused(self):
        c, _ = self.session()
        for bad in ["", "a.b.c", "x" * 5000, "....", "eyJhbGciOiJIUzI1NiJ9.e30."]:
            self.assertEqual(self.me_with(c, bad), 401, bad[:20])


class Csrf(unittest.TestCase):
    def setUp(self):
        self.admin = Client()
        self.admin.login_admin()

    def test_post_without_csrf_token_refused(self):
        r = self.admin.post("/api/v1/groups", {"name": unique("g")}, csrf=False)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json["error"]["code"], "csrf_failed")

    def test_post_with_wrong_csrf_token_refused(self):
        r = self.admin.post("/api/v1/groups", {"name": unique("g")}, headers={"X-CSRF-Token": "A" * 43})
        self.assertEqual(r.status, 403)

    def test_post_with_foreign_origin_refused(self):
        r = self.admin.post("/api/v1/groups", {"name": unique("g")}, headers={"Origin": "https://evil.example"})
        self.assertEqual(r.status, 403)
        r = self.admin.post("/api/v1/groups", {"name": unique("g")},
                            headers={"Origin": "https://127.0.0.1:%d" % (self.admin.port + 1)})
        self.assertEqual(r.status, 403)

    def test_post_without_origin_refused(self):
        r = self.admin.post("/api/v1/groups", {"name": unique("g")}, origin=False)
        self.assertEqual(r.status, 403)

    def test_post_with_token_and_origin_accepted(self):
        self.assertEqual(self.admin.post("/api/v1/groups", {"name": unique("g")}).status, 201)

    def test_login_needs_pre_session_token(self):
        c = Client()
        r = c.post("/api/v1/auth/login", {"username": "admin", "password": c.admin_password()})
        self.assertEqual(r.status, 403)
        c.csrf = "B" * 43  # not the cookie's value
        c.get("/api/v1/auth/csrf")
        r = c.post("/api/v1/auth/login", {"username": "admin", "password": c.admin_password()})
        self.assertEqual(r.status, 403)


class BruteForce(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.admin = Client()
        cls.admin.login_admin()

    def fail_login(self, name, password="wrong-password-123"):
        return Client().login(name, password, expect=None)

    def test_unknown_user_and_wrong_password_look_the_same(self):
        u, pw = make_user(self.admin)
        a = self.fail_login(u["username"])
        b = self.fail_login(unique("nobody"))
        self.assertEqual((a.status, a.json["error"]["code"], a.json["error"]["message"]),
                         (b.status, b.json["error"]["code"], b.json["error"]["message"]))
        self.assertEqual(a.status, 401)
        self.assertEqual(sorted(k for k, _ in a.headers if k not in ("date", "x-request-id")),
                         sorted(k for k, _ in b.headers if k not in ("date", "x-request-id")))

    def test_unknown_user_costs_a_hash_too(self):
        # Both paths run argon2id; without that the unknown user would answer ~20x faster.
        u, _ = make_user(self.admin)
        known, unknown = [], []
        for i in range(5):
            for name, out in ((u["username"], known), (unique("ghost"), unknown)):
                t = time.monotonic()
                self.fail_login(name, "wrong-%d-password" % i)
                out.append(time.monotonic() - t)
        ratio = statistics.median(unknown) / statistics.median(known)
        self.assertGreater(ratio, 0.33, (known, unknown))
        self.assertLess(ratio, 3.0, (known, unknown))

    def test_lockout_after_repeated_failures(self):
        u, pw = make_user(self.admin)
        for _ in range(5):
            self.assertEqual(self.fail_login(u["username"]).status, 401)
        r = self.fail_login(u["username"])
        self.assertEqual(r.status, 423)
        self.assertEqual(r.json["error"]["code"], "account_locked")
        self.assertGreaterEqual(int(r.header("retry-after")), 1)
        # the right password does not get through a lock
        self.assertEqual(Client().login(u["username"], pw, expect=None).status, 423)

    def test_lockout_same_for_unknown_user(self):
        ghost = unique("ghost")
        for _ in range(5):
            self.assertEqual(self.fail_login(ghost).status, 401)
        self.assertEqual(self.fail_login(ghost).status, 423)

    def test_failed_login_audited_with_source_ip(self):
        name = unique("ghost")
        self.fail_login(name)
        r = self.admin.get("/api/v1/audit?action=auth.login&target_type=user&target_id=" + name)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.json["items"]), 1)
        e = r.json["items"][0]
        self.assertFalse(e["success"])
        self.assertEqual(e["source_ip"], "127.0.0.1")
        self.assertNotIn("wrong-password-123", json.dumps(r.json))

    def test_nginx_rate_limit_answers_429_with_retry_after(self):
        # The test stack allows 50 r/s with a burst of 100 on the login location.
        c = Client()
        statuses, headers = [], []
        lock = threading.Lock()

        def hit():
            for _ in range(30):
                r = c.request("POST", "/api/v1/auth/login", raw=b"{}", headers={"Content-Type": "application/json"})
                with lock:
                    statuses.append(r.status)
                    if r.status == 429:
                        headers.append((r.header("retry-after"), r.json))

        threads = [threading.Thread(target=hit) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertIn(429, statuses)
        retry, body = headers[0]
        self.assertEqual(retry, "1")
        self.assertEqual(body["error"]["code"], "rate_limited")


class RouteTable(unittest.TestCase):
    """Walks every route of `bicd routes` and proves anonymous and under-privileged callers are refused."""

    @classmethod
    def setUpClass(cls):
        out = subprocess.run([os.path.join(REPO, "build", "bicd"), "routes"], capture_output=True, text=True, check=True)
        cls.routes = json.loads(out.stdout)
        cls.admin = Client()
        cls.admin.login_admin()
        cls.clients = {}
        for role in ("user", "operator"):
            u, pw = make_user(cls.admin, role=role)
            c = Client()
            c.login(u["username"], pw)
            cls.clients[role] = c

    def path(self, route):
        return route["path"].replace("{id}", "1").replace("{user_id}", "1")

    def call(self, c, route):
        body = {} if route["method"] in ("POST", "PUT", "PATCH") and route["body_limit"] else None
        return c.request(route["method"], self.path(route), body=body)

    def test_table_is_not_empty_and_roles_known(self):
        self.assertGreater(len(self.routes), 10)
        for r in self.routes:
            self.assertIn(r["role"], ("anonymous", "user", "operator", "admin", "enroll", "agent", "scraper"), r)

    def test_anonymous_refused_everywhere_but_public_routes(self):
        anon = Client()
        for r in self.routes:
            if r["role"] in ("anonymous", "enroll"):
                continue
            resp = self.call(anon, r)
            self.assertEqual(resp.status, 401, "%s %s -> %r" % (r["method"], r["path"], resp))
            self.assertEqual(resp.json["error"]["code"], "unauthenticated")

    def test_machine_routes_refuse_user_sessions(self):
        # agent and scraper routes take their own credentials; a signed-in admin's cookie is not one
        for r in self.routes:
            if r["role"] not in ("agent", "scraper"):
                continue
            resp = self.call(self.admin, r)
            self.assertEqual(resp.status, 401, "%s %s -> %r" % (r["method"], r["path"], resp))

    def test_under_privileged_refused(self):
        rank = {"anonymous": 0, "user": 1, "operator": 2, "admin": 3}
        for role, c in self.clients.items():
            for r in self.routes:
                if r["role"] not in rank or rank[r["role"]] <= rank[role]:
                    continue
                resp = self.call(c, r)
                self.assertEqual(resp.status, 403, "%s as %s: %s %s -> %r" % (role, role, r["method"], r["path"], resp))
                self.assertEqual(resp.json["error"]["code"], "forbidden")

    def test_public_routes_are_the_expected_few(self):
        public = sorted((r["method"], r["path"]) for r in self.routes if r["role"] == "anonymous")
        # /_bic/console-check is nginx's internal auth_request location (unreachable from outside,
        # see test_broker.BrokerApi.test_roles); it answers only with the ticket nginx passes
        self.assertEqual(public, [
            ("GET", "/_bic/console-check"),
            ("GET", "/api/v1/auth/csrf"), ("GET", "/api/v1/auth/oidc/callback"), ("GET", "/api/v1/auth/oidc/mfa"),
            ("GET", "/api/v1/auth/oidc/providers"), ("GET", "/api/v1/auth/oidc/{id}/start"),
            ("GET", "/api/v1/health"), ("GET", "/api/v1/version"),
            ("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/login/mfa"),
            ("POST", "/api/v1/auth/login/mfa/enroll"), ("POST", "/api/v1/auth/refresh"),
        ])
        enroll = [(r["method"], r["path"]) for r in self.routes if r["role"] == "enroll"]
        self.assertEqual(enroll, [("POST", "/api/v1/agent/enroll")])


if __name__ == "__main__":
    unittest.main()

"""OpenID Connect sign-in (docs/oidc.md) against a real provider run by the test
(tests/lib/oidc_provider.py: HTTPS with its own CA, RS256 ID tokens, PKCE checked at the token
endpoint). The browser is played by hand: the test follows each redirect itself and keeps the
cookies, so every step bicd takes is visible: the authorization request it builds, what it sends
to the token endpoint, the checks it makes on the ID token, the user and groups it makes, and the
way back to the portal."""
import base64
import hashlib
import http.client
import os
import ssl
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import AdminTestCase, Client, free_port, make_user, unique  # noqa: E402
from oidc_provider import OidcProvider  # noqa: E402

PROVIDERS = "/api/v1/oidc-providers"
START = "/api/v1/auth/oidc/%d/start"
CALLBACK = "/api/v1/auth/oidc/callback"
OIDC_MFA = "/api/v1/auth/oidc/mfa"


def sql_value(var, statement):
    r = subprocess.run(["mariadb", "--no-defaults", "-S", os.path.join(var, "run", "mysqld.sock"), "-u", "root",
                        "bic", "-N", "-B", "-e", statement], check=True, capture_output=True, text=True)
    return r.stdout.strip()


def totp(secret_b32, step):
    import hmac
    import struct
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


def s256(verifier):
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OidcBase(AdminTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.op = OidcProvider().start()
        cls.provider = cls.make_provider(cls.op)

    @classmethod
    def tearDownClass(cls):
        cls.op.stop()

    @classmethod
    def make_provider(cls, op, **over):
        body = {"name": unique("idp"), "display_name": "Test IdP " + unique("n"), "issuer": op.issuer,
                "client_id": op.client_id, "client_secret": op.client_secret, "ca_certs": [op.ca_pem]}
        body.update(over)
        r = cls.admin.post(PROVIDERS, body)
        assert r.status == 201, r
        return r.json

    def setUp(self):
        self.op.misbehave = set()
        self.op.user = None
        self.op.token_auth = "client_secret_basic"

    def person(self, **claims):
        """The provider's next user: a fresh name unless claims say otherwise."""
        name = unique("oidcuser")
        c = {"sub": "sub-" + name, "preferred_username": name, "name": "OIDC " + name,
             "email": name + "@example.test", "groups": []}
        c.update(claims)
        self.op.user = c
        return c

    def provider_get(self, url):
        """A browser's GET at the provider (its CA trusted): the answer's status and Location."""
        u = urllib.parse.urlsplit(url)
        ctx = ssl.create_default_context(cadata=self.op.ca_pem)
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
        conn.request("GET", u.path + ("?" + u.query if u.query else ""))
        r = conn.getresponse()
        r.read()
        conn.close()
        return r.status, r.getheader("Location")

    def start(self, c, provider=None, portal=None):
        pid = (provider or self.provider)["id"]
        r = c.get(START % pid + ("?portal=" + portal if portal else ""))
        self.assertEqual(r.status, 302, r)
        return r.header("location")

    def to_callback(self, c, authorize_url, tamper=None):
        """The provider's part: authorize (auto-approved), then the redirect back to bicd;
        returns the callback's path and query."""
        if tamper:
            authorize_url = tamper(authorize_url)
        status, back = self.provider_get(authorize_url)
        self.assertEqual(status, 302, back)
        self.assertTrue(back.startswith(c.origin + CALLBACK + "?"), back)
        return back[len(c.origin):]

    def sign_in(self, c=None, provider=None, portal=None, tamper=None):
        """The whole browser round trip; returns (client, callback answer)."""
        c = c or Client()
        loc = self.start(c, provider, portal)
        self.assertTrue(loc.startswith(self.op.issuer + "/authorize?"), loc)
        path = self.to_callback(c, loc, tamper)
        r = c.get(path)
        self.assertEqual(r.status, 302, r)
        return c, r

    def assertBack(self, r, query, portal="/"):
        self.assertEqual(r.status, 302, r)
        self.assertEqual(r.header("location"), portal + ("?" + query if query else ""), r)

    def assertSignedIn(self, c, username):
        self.assertIn("__Host-bic_session", c.cookies)
        self.assertIn("__Host-bic_refresh", c.cookies)
        me = c.get("/api/v1/auth/me")
        self.assertEqual(me.status, 200, me)
        self.assertEqual(me.json["user"]["username"], username)
        c.csrf = me.json["csrf_token"]
        return me.json["user"]

    def assertNotSignedIn(self, c):
        self.assertNotIn("__Host-bic_session", c.cookies)
        self.assertEqual(c.get("/api/v1/auth/me").status, 401)

    def audit(self, action, **params):
        qs = "&".join(["action=" + action] + ["%s=%s" % (k, urllib.parse.quote(str(v))) for k, v in params.items()])
        r = self.admin.get("/api/v1/audit?" + qs)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def last_refusal(self):
        rows = self.audit("auth.oidc.login", limit=1)
        self.assertTrue(rows, "no auth.oidc.login audit row")
        self.assertFalse(rows[0]["success"], rows[0])
        return rows[0]

    def user_by_name(self, name):
        r = self.admin.get("/api/v1/users?q=" + urllib.parse.quote(name))
        self.assertEqual(r.status, 200, r)
        return [u for u in r.json["items"] if u["username"] == name]


class SignIn(OidcBase):
    def test_full_code_pkce_login(self):
        who = self.person()
        c = Client()
        loc = self.start(c)
        # the authorization request bicd built
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        self.assertEqual(q["response_type"], "code")
        self.assertEqual(q["client_id"], self.op.client_id)
        self.assertEqual(q["redirect_uri"], c.origin + CALLBACK)
        self.assertEqual(q["scope"], "openid profile email")
        self.assertEqual(q["code_challenge_method"], "S256")
        for k in ("state", "nonce", "code_challenge"):
            self.assertRegex(q[k], r"^[A-Za-z0-9_-]{43}$", k)
        self.assertNotEqual(q["state"], q["nonce"])
        # the binding cookie: Lax (the way back is a cross-site navigation), HttpOnly, Secure
        r = c.get(START % self.provider["id"])
        cookie = [h for h in r.header_all("set-cookie") if h.startswith("__Host-bic_oidc=")][0]
        for attr in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
            self.assertIn(attr, cookie)
        path = self.to_callback(c, loc)
        r = c.get(path)
        self.assertBack(r, None)
        for h in r.header_all("set-cookie"):
            if h.startswith("__Host-bic_session=") or h.startswith("__Host-bic_refresh="):
                self.assertIn("SameSite=Strict", h)
                self.assertIn("HttpOnly", h)
        user = self.assertSignedIn(c, who["preferred_username"])
        self.assertEqual(user["display_name"], who["name"])
        self.assertEqual(user["role"], "user")
        # what the token endpoint got: the code, the same redirect_uri, the PKCE verifier, Basic auth
        tr = self.op.token_requests[-1]
        self.assertEqual(tr["form"]["grant_type"], "authorization_code")
        self.assertEqual(tr["form"]["redirect_uri"], c.origin + CALLBACK)
        self.assertEqual(s256(tr["form"]["code_verifier"]), q["code_challenge"])
        self.assertTrue(tr["authorization"].startswith("Basic "))
        self.assertNotIn("client_secret", tr["form"])
        # the account: made just in time, marked oidc, linked to the subject
        self.assertEqual(sql_value(self.admin.var, "SELECT CONCAT(source, '/', password_hash IS NULL) FROM users"
                                   " WHERE username = '%s'" % who["preferred_username"]), "oidc/1")
        self.assertEqual(sql_value(self.admin.var, "SELECT COUNT(*) FROM oidc_identities WHERE subject = '%s'"
                                   % who["sub"]), "1")
        u = self.user_by_name(who["preferred_username"])[0]
        self.assertEqual(u["email"], who["email"])
        created = self.audit("auth.oidc.user_create", target_id=u["id"])
        self.assertEqual(len(created), 1)
        logins = self.audit("auth.login", actor=who["preferred_username"])
        self.assertEqual(logins[0]["summary"]["method"], "oidc", logins[0])
        self.assertEqual(logins[0]["summary"]["provider"], self.provider["name"])
        # the session works like a password one: CSRF token, refresh, logout
        self.assertEqual(c.post("/api/v1/auth/logout").status, 204)
        self.assertNotSignedIn(c)

    def test_the_same_subject_signs_in_as_the_same_user_with_fresh_claims(self):
        who = self.person()
        c, r = self.sign_in()
        first = self.assertSignedIn(c, who["preferred_username"])
        who = dict(who, name="Renamed Person", email="new@example.test", preferred_username="ignored-later")
        self.op.user = who
        c2, r = self.sign_in()
        again = self.assertSignedIn(c2, first["username"])  # the account keeps its name
        self.assertEqual(again["id"], first["id"])
        self.assertEqual(again["display_name"], "Renamed Person")
        self.assertEqual(self.user_by_name(first["username"])[0]["email"], "new@example.test")
        self.assertEqual(self.user_by_name("ignored-later"), [])

    def test_a_providers_user_shows_its_source_and_gets_no_local_password(self):
        who = self.person()
        c, r = self.sign_in()
        me = self.assertSignedIn(c, who["preferred_username"])
        self.assertEqual(self.admin.get("/api/v1/users/%d" % me["id"]).json["source"], "oidc")
        r = self.admin.post("/api/v1/users/%d/password" % me["id"], {"password": "Another-long-pass-42"})
        self.assertJsonError(r, 409, "conflict")
        self.assertIn("OpenID Connect", r.json["error"]["message"])
        # nothing changed: no local sign-in with that password, the provider session still works
        Client().login(me["username"], "Another-long-pass-42", expect=401)
        self.assertEqual(c.get("/api/v1/auth/me").status, 200)
        self.assertEqual(self.admin.get("/api/v1/users?q=admin").json["items"][0]["source"], "local")

    def test_admin_portal_sign_in_returns_to_the_admin_portal(self):
        who = self.person()
        c, r = self.sign_in(portal="admin")
        self.assertBack(r, None, portal="/admin/")
        self.assertSignedIn(c, who["preferred_username"])

    def test_client_secret_post(self):
        op = OidcProvider(token_auth="client_secret_post").start()
        try:
            prov = self.make_provider(op, token_auth="client_secret_post")
            name = unique("postuser")
            op.user = {"sub": "s-" + name, "preferred_username": name}
            c = Client()
            loc = self.start(c, prov)
            status, back = self.provider_get_op(op, loc)
            r = c.get(back[len(c.origin):])
            self.assertBack(r, None)
            self.assertSignedIn(c, name)
            tr = op.token_requests[-1]
            self.assertIsNone(tr["authorization"])
            self.assertEqual(tr["form"]["client_secret"], op.client_secret)
            self.assertEqual(tr["form"]["client_id"], op.client_id)
        finally:
            op.stop()

    def provider_get_op(self, op, url):
        u = urllib.parse.urlsplit(url)
        ctx = ssl.create_default_context(cadata=op.ca_pem)
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
        conn.request("GET", u.path + "?" + u.query)
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Location")

    def test_rotated_keys_are_fetched_again_for_an_unknown_kid(self):
        who = self.person()
        c, r = self.sign_in()
        self.assertSignedIn(c, who["preferred_username"])  # the key set is cached now
        time.sleep(10.5)  # OIDC_JWKS_MIN_REFRESH: refetches forced by kids are rate-limited
        self.op.rotate_key()
        c, r = self.sign_in()
        self.assertBack(r, None)
        self.assertSignedIn(c, who["preferred_username"])

    def test_public_list_shows_enabled_providers_only(self):
        other = self.make_provider(self.op, enabled=False)
        r = Client().get("/api/v1/auth/oidc/providers")
        self.assertEqual(r.status, 200, r)
        ids = {p["id"]: p for p in r.json["items"]}
        self.assertIn(self.provider["id"], ids)
        self.assertEqual(ids[self.provider["id"]]["display_name"], self.provider["display_name"])
        self.assertEqual(set(ids[self.provider["id"]]), {"id", "name", "display_name"})
        self.assertNotIn(other["id"], ids)
        # and a disabled provider cannot be started
        self.person()
        c = Client()
        r = c.get(START % other["id"])
        self.assertBack(r, "oidc_error=unavailable")
        self.assertBack(c.get(START % 999999999), "oidc_error=unavailable")


class Refusals(OidcBase):
    def refused(self, error, reason_part, **sign_in):
        who = self.person()
        c, r = self.sign_in(**sign_in)
        self.assertBack(r, "oidc_error=" + error)
        self.assertNotSignedIn(c)
        row = self.last_refusal()
        self.assertEqual(row["summary"]["error"], error, row)
        self.assertIn(reason_part, row["summary"]["reason"], row)
        return who

    def test_id_token_checks(self):
        cases = {
            "wrong_nonce": "bad_nonce", "wrong_aud": "bad_audience", "multi_aud_no_azp": "bad_azp",
            "expired": "expired", "issued_in_future": "not_yet_valid", "other_key": "bad_signature",
            "unknown_kid": "unknown_key", "alg_none": "bad_alg", "hs256_pubkey": "bad_alg",
            "wrong_issuer": "bad_issuer", "no_sub": "no_subject",
        }
        with self.cases() as case:
            for switch, status in cases.items():
                with case(misbehave=switch):
                    self.op.misbehave = {switch}
                    who = self.refused("token", "the ID token was refused: " + status)
                    # nobody was made for a refused token
                    self.assertEqual(self.user_by_name(who["preferred_username"]), [])
        # and the same provider signs in once it behaves
        self.op.misbehave = set()
        who = self.person()
        c, r = self.sign_in()
        self.assertSignedIn(c, who["preferred_username"])

    def test_replayed_state_refused(self):
        who = self.person()
        c = Client()
        path = self.to_callback(c, self.start(c))
        self.assertBack(c.get(path), None)
        self.assertSignedIn(c, who["preferred_username"])
        sessions = sql_value(self.admin.var, "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id"
                                             " WHERE u.username = '%s'" % who["preferred_username"])
        r = c.get(path)
        self.assertBack(r, "oidc_error=state")
        self.assertIn("already used", self.last_refusal()["summary"]["reason"])
        self.assertEqual(sql_value(self.admin.var, "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id"
                                                   " WHERE u.username = '%s'" % who["preferred_username"]), sessions)

    def test_callback_in_another_browser_refused(self):
        # login CSRF: an attacker's own state delivered to a victim's browser must not sign it in
        self.person()
        attacker = Client()
        path = self.to_callback(attacker, self.start(attacker))
        victim = Client()
        r = victim.get(path)
        self.assertBack(r, "oidc_error=state")
        self.assertNotSignedIn(victim)
        self.assertIn("another browser", self.last_refusal()["summary"]["reason"])
        # the state is spent by that presentation
        self.assertBack(attacker.get(path), "oidc_error=state")
        self.assertNotSignedIn(attacker)

    def test_unknown_and_malformed_state_refused(self):
        c = Client()
        self.assertBack(c.get(CALLBACK + "?code=x&state=" + "A" * 43), "oidc_error=state")
        self.assertIn("unknown", self.last_refusal()["summary"]["reason"])
        self.assertBack(c.get(CALLBACK + "?code=x&state=short"), "oidc_error=state")
        self.assertBack(c.get(CALLBACK), "oidc_error=state")
        self.assertNotSignedIn(c)

    def test_expired_state_refused(self):
        self.person()
        c = Client()
        path = self.to_callback(c, self.start(c))
        state = dict(urllib.parse.parse_qsl(path.split("?", 1)[1]))["state"]
        h = hashlib.sha256(state.encode()).hexdigest()
        sql_value(self.admin.var, "UPDATE oidc_states SET expires_at = NOW(3) - INTERVAL 1 SECOND"
                                  " WHERE state_hash = UNHEX('%s')" % h)
        self.assertBack(c.get(path), "oidc_error=state")
        self.assertIn("expired", self.last_refusal()["summary"]["reason"])
        self.assertNotSignedIn(c)

    def test_authorization_request_without_pkce_is_refused_by_the_provider(self):
        def drop_pkce(url):
            u = urllib.parse.urlsplit(url)
            q = [(k, v) for k, v in urllib.parse.parse_qsl(u.query) if not k.startswith("code_challenge")]
            return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))
        self.refused("provider", "PKCE with S256 is required", tamper=drop_pkce)

    def test_a_code_bound_to_another_pkce_challenge_is_refused_at_the_token_endpoint(self):
        def other_challenge(url):
            u = urllib.parse.urlsplit(url)
            q = [(k, s256("another-verifier") if k == "code_challenge" else v)
                 for k, v in urllib.parse.parse_qsl(u.query)]
            return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))
        self.refused("provider", "PKCE verification failed", tamper=other_challenge)

    def test_user_who_says_no(self):
        c = Client()
        path = self.to_callback(c, self.start(c))  # op.user is None: access_denied
        self.assertBack(c.get(path), "oidc_error=denied")
        self.assertIn("access_denied", self.last_refusal()["summary"]["reason"])

    def test_token_endpoint_refusal_and_missing_id_token(self):
        self.op.misbehave = {"token_error"}
        self.refused("provider", "invalid_grant")
        self.op.misbehave = {"no_id_token"}
        self.refused("provider", "no id_token")

    def test_wrong_client_secret_refused_by_the_provider(self):
        prov = self.make_provider(self.op, client_secret="not-the-secret")
        self.refused("provider", "HTTP 401", provider=prov)

    def test_local_account_is_never_taken_over(self):
        local, pw = make_user(self.admin)
        self.person(preferred_username=local["username"])
        c, r = self.sign_in()
        self.assertBack(r, "oidc_error=account")
        self.assertNotSignedIn(c)
        self.assertIn("never taken over", self.last_refusal()["summary"]["reason"])
        self.assertEqual(sql_value(self.admin.var, "SELECT CONCAT(source, '/', last_login_at IS NULL) FROM users"
                                   " WHERE id = %d" % local["id"]), "local/1")
        self.assertEqual(sql_value(self.admin.var, "SELECT COUNT(*) FROM oidc_identities WHERE user_id = %d"
                                   % local["id"]), "0")
        # the local account still signs in with its password
        Client().login(local["username"], pw)

    def test_another_providers_user_is_not_taken_over(self):
        who = self.person()
        c, r = self.sign_in()
        self.assertSignedIn(c, who["preferred_username"])
        second = self.make_provider(self.op)  # same issuer, another provider row
        self.person(preferred_username=who["preferred_username"], sub="someone-else")
        c, r = self.sign_in(provider=second)
        self.assertBack(r, "oidc_error=account")
        self.assertIn("(oidc)", self.last_refusal()["summary"]["reason"])

    def test_bad_user_name_claim_refused(self):
        self.person(preferred_username="has space")
        c, r = self.sign_in()
        self.assertBack(r, "oidc_error=account")
        self.assertIn("preferred_username", self.last_refusal()["summary"]["reason"])

    def test_disabled_user_refused(self):
        who = self.person()
        c, r = self.sign_in()
        uid = self.assertSignedIn(c, who["preferred_username"])["id"]
        self.assertEqual(self.admin.patch("/api/v1/users/%d" % uid, {"disabled": True}).status, 200)
        c, r = self.sign_in()
        self.assertBack(r, "oidc_error=disabled")
        self.assertNotSignedIn(c)

    def test_provider_disabled_between_start_and_callback(self):
        prov = self.make_provider(self.op)
        self.person()
        c = Client()
        path = self.to_callback(c, self.start(c, prov))
        self.assertEqual(self.admin.patch(PROVIDERS + "/%d" % prov["id"], {"enabled": False}).status, 200)
        self.assertBack(c.get(path), "oidc_error=unavailable")
        self.assertNotSignedIn(c)

    def test_mix_up_issuer_parameter_refused(self):
        self.person()
        c = Client()
        path = self.to_callback(c, self.start(c))
        self.assertBack(c.get(path + "&iss=" + urllib.parse.quote("https://evil.example")), "oidc_error=provider")
        self.assertIn("evil.example", self.last_refusal()["summary"]["reason"])

    def test_open_sign_ins_per_address_are_bounded(self):
        c = Client()
        c.source = "127.0.0.%d" % (50 + os.getpid() % 150)
        for _ in range(30):
            self.assertTrue(self.start(c).startswith(self.op.issuer))
        self.assertBack(c.get(START % self.provider["id"]), "oidc_error=rate_limited")


class Groups(OidcBase):
    def group(self):
        r = self.admin.post("/api/v1/groups", {"name": unique("oidcgrp")})
        self.assertEqual(r.status, 201, r)
        return r.json

    def member_of(self, uid):
        r = self.admin.get("/api/v1/users/%d" % uid)
        self.assertEqual(r.status, 200, r)
        return {g["id"] for g in r.json["groups"]}

    def test_group_claim_mapping_follows_the_token(self):
        eng, ops, manual = self.group(), self.group(), self.group()
        prov = self.make_provider(self.op)
        base = PROVIDERS + "/%d/group-maps" % prov["id"]
        r = self.admin.post(base, {"claim_value": "eng", "group_id": eng["id"]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["group_name"], eng["name"])
        self.assertEqual(self.admin.post(base, {"claim_value": "ops", "group_id": ops["id"]}).status, 201)
        self.assertEqual(self.admin.post(base, {"claim_value": "ops-old", "group_id": ops["id"]}).status, 201)
        self.assertEqual(self.admin.post(base, {"claim_value": "eng", "group_id": eng["id"]}).status, 409)
        self.assertJsonError(self.admin.post(base, {"claim_value": "x", "group_id": 999999999}), 422, "validation_failed")
        listed = self.admin.get(base)
        self.assertEqual(sorted(m["claim_value"] for m in listed.json["items"]), ["eng", "ops", "ops-old"])

        who = self.person(groups=["eng", "unmapped"])
        c, r = self.sign_in(provider=prov)
        uid = self.assertSignedIn(c, who["preferred_username"])["id"]
        self.assertEqual(self.member_of(uid) & {eng["id"], ops["id"], manual["id"]}, {eng["id"]})
        self.assertEqual(self.admin.put("/api/v1/groups/%d/members/%d" % (manual["id"], uid)).status, 204)
        # next time the token says ops (through either of its values) and no longer eng
        self.op.user = dict(who, groups=["ops-old"])
        c, r = self.sign_in(provider=prov)
        self.assertSignedIn(c, who["preferred_username"])
        self.assertEqual(self.member_of(uid) & {eng["id"], ops["id"], manual["id"]}, {ops["id"], manual["id"]})
        rows = self.audit("auth.oidc.groups", target_id=uid)
        self.assertEqual(rows[0]["summary"]["added"], [ops["id"]])
        self.assertEqual(rows[0]["summary"]["removed"], [eng["id"]])
        # a single string claim counts too; no claim at all means no mapped group
        self.op.user = dict(who, groups="eng")
        self.sign_in(provider=prov)
        self.assertEqual(self.member_of(uid) & {eng["id"], ops["id"]}, {eng["id"]})
        self.op.user = {k: v for k, v in who.items() if k != "groups"}
        self.sign_in(provider=prov)
        self.assertEqual(self.member_of(uid) & {eng["id"], ops["id"], manual["id"]}, {manual["id"]})
        # removing a mapping
        mid = listed.json["items"][0]["id"]
        self.assertEqual(self.admin.delete(base + "/%d" % mid).status, 204)
        self.assertEqual(self.admin.delete(base + "/%d" % mid).status, 404)

    def test_second_factor_still_applies_after_the_provider(self):
        grp = self.group()
        self.assertEqual(self.admin.put("/api/v1/groups/%d/mfa" % grp["id"], {"mfa_required": True}).status, 200)
        prov = self.make_provider(self.op)
        self.assertEqual(self.admin.post(PROVIDERS + "/%d/group-maps" % prov["id"],
                                         {"claim_value": "secure", "group_id": grp["id"]}).status, 201)
        who = self.person(groups=["secure"])
        c, r = self.sign_in(provider=prov)
        self.assertBack(r, "oidc=mfa")
        self.assertNotIn("__Host-bic_session", c.cookies)
        cookie = [h for h in r.header_all("set-cookie") if h.startswith("__Host-bic_oidc_mfa=")][0]
        for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Max-Age=300"):
            self.assertIn(attr, cookie)
        step = c.get(OIDC_MFA)
        self.assertEqual(step.status, 200, step)
        self.assertEqual(step.json["mfa_step"], "enroll")
        self.assertEqual(step.json["username"], who["preferred_username"])
        self.assertNotIn("__Host-bic_oidc_mfa", c.cookies)  # read once
        again = c.get(OIDC_MFA)
        self.assertJsonError(again, 401, "unauthenticated")
        self.assertEqual(again.json["error"]["reason"], "mfa_expired")
        # the portal then runs the second step exactly as after a password
        c.csrf = c.get("/api/v1/auth/csrf").json["csrf_token"]
        token = step.json["mfa_token"]
        enrol = c.post("/api/v1/auth/login/mfa/enroll", {"mfa_token": token})
        self.assertEqual(enrol.status, 200, enrol)
        done = c.post("/api/v1/auth/login/mfa", {"mfa_token": token,
                                                 "code": totp(enrol.json["secret"], int(time.time() // 30))})
        self.assertEqual(done.status, 200, done)
        self.assertEqual(len(done.json["recovery_codes"]), 10)
        self.assertSignedIn(c, who["preferred_username"])
        ch = self.audit("auth.mfa.challenge", actor=who["preferred_username"])
        self.assertEqual(ch[0]["summary"]["method"], "oidc")


class Admin(OidcBase):
    def test_provider_crud_and_secret_never_returned(self):
        secret = "super-" + unique("secret")
        p = self.make_provider(self.op, client_secret=secret, groups_claim="roles", scopes="openid email")
        self.assertTrue(p["client_secret_set"])
        self.assertNotIn("client_secret", p)
        self.assertEqual(p["groups_claim"], "roles")
        self.assertEqual(p["token_auth"], "client_secret_basic")
        self.assertEqual(p["callback_uri"], self.admin.origin + CALLBACK)
        self.assertEqual(p["ca_certs"], [self.op.ca_pem])
        self.assertEqual(p["users"], 0)
        for r in (self.admin.get(PROVIDERS + "/%d" % p["id"]), self.admin.get(PROVIDERS)):
            self.assertEqual(r.status, 200, r)
            self.assertNotIn(secret, r.body)
        # stored sealed: the bytes of the secret are not in the row
        stored = sql_value(self.admin.var, "SELECT HEX(client_secret_enc) FROM oidc_providers WHERE id = %d" % p["id"])
        self.assertEqual(len(stored), 2 * (len(secret) + 28))
        self.assertNotIn(secret.encode().hex().upper(), stored)
        r = self.admin.patch(PROVIDERS + "/%d" % p["id"], {"display_name": "Staff login", "client_secret": None,
                                                          "token_auth": "none"})
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json["client_secret_set"])
        self.assertEqual(r.json["display_name"], "Staff login")
        upd = self.audit("oidc.provider.update", target_id=p["id"])[0]
        self.assertEqual(sorted(upd["summary"]["changed"]), ["client_secret", "display_name", "token_auth"])
        self.assertNotIn(secret, str(self.audit("oidc.provider.create", target_id=p["id"])))
        self.assertEqual(self.admin.delete(PROVIDERS + "/%d" % p["id"]).status, 204)
        self.assertEqual(self.admin.get(PROVIDERS + "/%d" % p["id"]).status, 404)

    def test_validation(self):
        base = {"name": unique("v"), "issuer": self.op.issuer, "client_id": "c", "client_secret": "s"}
        bad = [
            {"issuer": "http://login.example"}, {"issuer": "https://login.example/?x=1"},
            {"scopes": "profile email"}, {"scopes": "openid  email"}, {"ca_certs": ["not a certificate"]},
            {"ca_certs": [self.op.ca_pem + "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"]},
            {"ca_certs": [self.op.ca_pem + self.op.ca_pem]}, {"ca_certs": [42]}, {"ca_certs": "pem"},
            {"client_secret": None}, {"name": "has space"}, {"username_claim": "a b"},
            {"redirect_uri": "https://bic.example/elsewhere"}, {"token_auth": "private_key_jwt"},
        ]
        with self.cases() as case:
            for over in bad:
                with case(body=over):
                    body = dict(base, **over)
                    body = {k: v for k, v in body.items() if not (k == "client_secret" and v is None)}
                    self.assertJsonError(self.admin.post(PROVIDERS, body), 422, "validation_failed")
        ok = self.admin.post(PROVIDERS, dict(base, redirect_uri="https://bic.example" + CALLBACK))
        self.assertEqual(ok.status, 201, ok)
        self.assertEqual(ok.json["callback_uri"], "https://bic.example" + CALLBACK)
        self.assertJsonError(self.admin.post(PROVIDERS, base), 409, "conflict")
        self.assertJsonError(self.admin.get(PROVIDERS + "/999999999"), 404, "not_found")

    def test_provider_with_users_cannot_be_deleted(self):
        prov = self.make_provider(self.op)
        who = self.person()
        c, r = self.sign_in(provider=prov)
        self.assertSignedIn(c, who["preferred_username"])
        r = self.admin.delete(PROVIDERS + "/%d" % prov["id"])
        self.assertJsonError(r, 409, "conflict")
        self.assertIn("disable", r.json["error"]["message"])

    def test_roles(self):
        u, pw = make_user(self.admin)
        c = Client()
        c.login(u["username"], pw)
        self.assertJsonError(c.get(PROVIDERS), 403, "forbidden")
        self.assertJsonError(c.post(PROVIDERS + "/%d/test" % self.provider["id"]), 403, "forbidden")
        self.assertJsonError(Client().get(PROVIDERS), 401, "unauthenticated")


class TestConnection(OidcBase):
    def probe(self, provider):
        r = self.admin.post(PROVIDERS + "/%d/test" % provider["id"])
        self.assertEqual(r.status, 200, r)
        return r.json

    def assertExplains(self, provider, step, words):
        out = self.probe(provider)
        self.assertFalse(out["ok"], out)
        failed = [s for s in out["steps"] if not s["ok"]]
        self.assertEqual([s["step"] for s in failed], [step], out)
        self.assertIn(words, out["message"], out)
        return out

    def test_working_provider(self):
        out = self.probe(self.provider)
        self.assertTrue(out["ok"], out)
        self.assertEqual([s["step"] for s in out["steps"]], ["discovery", "issuer", "keys"])
        self.assertEqual(out["rs256_keys"], 1)
        self.assertEqual(out["jwks_uri"], self.op.issuer + "/jwks")
        self.assertIn(self.admin.origin + CALLBACK, out["message"])
        row = self.audit("oidc.provider.test", target_id=self.provider["id"])[0]
        self.assertTrue(row["success"])

    def test_explanations(self):
        closed = free_port()
        with self.cases() as case:
            with case(problem="connection refused"):
                p = self.make_provider(self.op, issuer="https://127.0.0.1:%d" % closed)
                self.assertExplains(p, "discovery", "could not connect to 127.0.0.1:%d" % closed)
            with case(problem="dns"):
                p = self.make_provider(self.op, issuer="https://no-such-host.invalid")
                self.assertExplains(p, "discovery", "could not be found in DNS")
            with case(problem="untrusted certificate"):
                p = self.make_provider(self.op, ca_certs=None)
                out = self.assertExplains(p, "discovery", "is not trusted")
                self.assertIn("CA bundle", out["message"])
            for switch, step, words in [
                ("discovery_404", "discovery", "HTTP 404"),
                ("discovery_not_json", "discovery", "not a JSON object"),
                ("discovery_wrong_issuer", "issuer", "calls itself"),
                ("discovery_no_s256", "issuer", "PKCE with S256"),
                ("jwks_no_rs256", "keys", "none is an RSA key"),
            ]:
                with case(problem=switch):
                    self.op.misbehave = {switch}
                    self.assertExplains(self.provider, step, words)
            self.op.misbehave = set()
        failed = self.audit("oidc.provider.test", target_id=self.provider["id"])
        self.assertFalse(failed[0]["success"])


if __name__ == "__main__":
    unittest.main()

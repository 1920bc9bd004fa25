"""The second factor: TOTP enrolment, sign-in with a code or a recovery code, replay and window
rules, lockout, the per-group MFA policy and the admin reset (docs/mfa.md).

Codes are computed here with Python's hmac (RFC 6238: HMAC-SHA1, 6 digits, 30 s), from the
secret the enrolment answer shows, never by asking the server.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import struct
import subprocess
import sys
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import AdminTestCase, Client, make_user, sql_root, unique  # noqa: E402

MFA = "/api/v1/auth/mfa"
LOGIN = "/api/v1/auth/login"
LOGIN_MFA = "/api/v1/auth/login/mfa"
RECOVERY_RE = re.compile(r"^[2-9a-hjkmnp-z]{4}(-[2-9a-hjkmnp-z]{4}){3}$")


def totp(secret_b32, step):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return "%06d" % (value % 1000000)


def safe_step(margin=10):
    """The current 30 s step, after waiting out the end of a step so that the test's codes
    keep their place relative to the server's clock for at least margin seconds."""
    left = 30 - time.time() % 30
    if left < margin:
        time.sleep(left + 0.2)
    return int(time.time() // 30)


def sql_value(var, statement):
    r = subprocess.run(["mariadb", "--no-defaults", "-S", os.path.join(var, "run", "mysqld.sock"), "-u", "root",
                        "bic", "-N", "-B", "-e", statement], check=True, capture_output=True, text=True)
    return r.stdout.strip()


class MfaBase(AdminTestCase):
    def signed_in(self, user=None):
        """A new user (or the given (user, password)) with a signed-in client."""
        u, pw = user or make_user(self.admin)
        c = Client()
        c.login(u["username"], pw)
        return u, pw, c

    def enrol(self, c, pw):
        """Enrols TOTP for c's user; confirms with the previous step's code so the current and
        next steps stay free for the test. Returns (secret, recovery codes, step t)."""
        r = c.post(MFA + "/totp", {"password": pw})
        self.assertEqual(r.status, 200, r)
        secret = r.json["secret"]
        t = safe_step()
        r = c.post(MFA + "/totp/confirm", {"code": totp(secret, t - 1)})
        self.assertEqual(r.status, 200, r)
        return secret, r.json["recovery_codes"], t

    def password_step(self, username, pw):
        """The first sign-in step, as the portal does it: (client, answer)."""
        c = Client()
        r = c.get("/api/v1/auth/csrf")
        c.csrf = r.json["csrf_token"]
        return c, c.post(LOGIN, {"username": username, "password": pw})

    def challenge(self, username, pw, step="verify"):
        c, r = self.password_step(username, pw)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["mfa_required"], True, r)
        self.assertEqual(r.json["mfa_step"], step, r)
        return c, r.json["mfa_token"]

    def second_step(self, c, token, **body):
        r = c.post(LOGIN_MFA, dict(mfa_token=token, **body))
        if r.status == 200:
            c.csrf = r.json["csrf_token"]
        return r

    def assertRefused(self, r, status, code, reason=None):
        self.assertJsonError(r, status, code)
        if reason is not None:
            self.assertEqual(r.json["error"].get("reason"), reason, r)

    def audit(self, action, **params):
        qs = "&".join(["action=" + action] + ["%s=%s" % kv for kv in params.items()])
        r = self.admin.get("/api/v1/audit?" + qs)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def make_group(self):
        r = self.admin.post("/api/v1/groups", {"name": unique("mfagrp")})
        self.assertEqual(r.status, 201, r)
        return r.json


class Enrolment(MfaBase):
    def test_enrolment_shows_secret_uri_and_qr_then_confirm_returns_ten_recovery_codes(self):
        u, pw, c = self.signed_in()
        self.assertRefused(c.post(MFA + "/totp", {"password": pw + "x"}), 403, "forbidden", "password_wrong")
        r = c.post(MFA + "/totp", {"password": pw})
        self.assertEqual(r.status, 200, r)
        j = r.json
        self.assertRegex(j["secret"], r"^[A-Z2-7]{32}$")
        self.assertEqual((j["issuer"], j["algorithm"], j["digits"], j["period"]), ("BIC", "SHA1", 6, 30))
        self.assertEqual(j["account"], u["username"] + "@127.0.0.1")
        self.assertEqual(j["otpauth_uri"], "otpauth://totp/BIC:%s%%40127.0.0.1?secret=%s&issuer=BIC"
                         "&algorithm=SHA1&digits=6&period=30" % (u["username"], j["secret"]))
        svg = ET.fromstring(j["qr_svg"])
        self.assertEqual(svg.tag, "{http://www.w3.org/2000/svg}svg")
        side = int(svg.get("viewBox").split()[2])
        self.assertGreaterEqual(side, 21 + 8)  # a version 1 symbol and the quiet zone at least
        self.assertEqual((side - 8 - 17) % 4, 0, "a QR symbol is 17 + 4 x version modules wide")
        # pending: shown as such, and it does not count at sign-in yet
        s = c.get(MFA).json
        self.assertEqual(s["totp"], {"enabled": False, "pending": True, "confirmed_at": None, "last_used_at": None})
        self.assertEqual(Client().login(u["username"], pw).status, 200)
        # confirm: a wrong code is refused without counting as a failed sign-in
        t = safe_step()
        wrong = "%06d" % ((int(totp(j["secret"], t)) + 500000) % 1000000)
        self.assertRefused(c.post(MFA + "/totp/confirm", {"code": wrong}), 422, "validation_failed", "mfa_code_invalid")
        self.assertRefused(c.post(MFA + "/totp/confirm", {"code": "12345"}), 422, "validation_failed")
        r = c.post(MFA + "/totp/confirm", {"code": totp(j["secret"], t)})
        self.assertEqual(r.status, 200, r)
        codes = r.json["recovery_codes"]
        self.assertEqual(len(codes), 10)
        self.assertEqual(len(set(codes)), 10)
        for code in codes:
            self.assertRegex(code, RECOVERY_RE)
        s = c.get(MFA).json
        self.assertTrue(s["totp"]["enabled"])
        self.assertFalse(s["totp"]["pending"])
        self.assertIsNotNone(s["totp"]["confirmed_at"])
        self.assertEqual(s["recovery_codes_left"], 10)
        self.assertEqual((s["required"], s["required_by"]), (False, []))
        # the secret is never shown again, and a second enrolment needs the first removed
        self.assertNotIn(j["secret"], c.get(MFA).body)
        self.assertRefused(c.post(MFA + "/totp", {"password": pw}), 409, "conflict")
        self.assertRefused(c.post(MFA + "/totp/confirm", {"code": totp(j["secret"], t + 1)}), 409, "conflict")
        uid = str(u["id"])
        # the wrong password of the first try is there too, as a failure
        self.assertEqual([x["success"] for x in self.audit("auth.mfa.enroll_start", target_id=uid)], [True, False])
        enrolled = self.audit("auth.mfa.enroll", target_id=uid)
        self.assertEqual(len(enrolled), 1)
        self.assertTrue(enrolled[0]["success"])
        everything = self.admin.get("/api/v1/audit?actor=" + u["username"]).body
        self.assertNotIn(j["secret"], everything)
        for code in codes:
            self.assertNotIn(code, everything)

    def test_secret_is_stored_sealed_and_recovery_codes_hashed(self):
        u, pw, c = self.signed_in()
        secret, codes, _ = self.enrol(c, pw)
        raw = base64.b32decode(secret)
        sealed = bytes.fromhex(sql_value(self.admin.var, "SELECT HEX(secret_enc) FROM user_totp WHERE user_id = %d" % u["id"]))
        self.assertEqual(len(sealed), 12 + 20 + 16)
        self.assertNotIn(raw[:8], sealed)
        hashes = sql_value(self.admin.var, "SELECT LOWER(HEX(code_hash)) FROM user_recovery_codes WHERE user_id = %d" % u["id"]).split()
        want = sorted(hashlib.sha256(code.replace("-", "").encode()).hexdigest() for code in codes)
        self.assertEqual(sorted(hashes), want)

    def test_start_and_confirm_validate_their_bodies(self):
        _, pw, c = self.signed_in()
        self.assertRefused(c.post(MFA + "/totp", {}), 422, "validation_failed")
        self.assertRefused(c.post(MFA + "/totp/confirm", {"code": "123456"}), 409, "conflict")  # nothing started
        c.post(MFA + "/totp", {"password": pw})
        for bad in ("abcdef", "1234567", "", "12 34 5"):
            with self.subTest(code=bad):
                self.assertRefused(c.post(MFA + "/totp/confirm", {"code": bad}), 422, "validation_failed")
        self.assertRefused(c.post(MFA + "/totp/confirm", {"code": "123456", "extra": 1}), 422, "validation_failed")

    def test_anonymous_callers_cannot_reach_the_account_routes(self):
        anon = Client()
        self.assertRefused(anon.get(MFA), 401, "unauthenticated")
        self.assertRefused(anon.post(MFA + "/totp", {"password": "x"}), 401, "unauthenticated")


class SignIn(MfaBase):
    def test_password_step_gives_a_token_and_no_session_then_a_valid_code_signs_in(self):
        u, pw, c = self.signed_in()
        secret, _, t = self.enrol(c, pw)
        b, r = self.password_step(u["username"], pw)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), {"mfa_required", "mfa_step", "mfa_token", "expires_in"})
        self.assertEqual(r.json["mfa_step"], "verify")
        self.assertRegex(r.json["mfa_token"], r"^[A-Za-z0-9_-]{43}$")
        self.assertEqual(r.json["expires_in"], 300)
        self.assertEqual([x for x in r.header_all("set-cookie") if "bic_session" in x or "bic_refresh" in x], [])
        self.assertRefused(b.get("/api/v1/auth/me"), 401, "unauthenticated")
        r = self.second_step(b, r.json["mfa_token"], code=totp(secret, t))
        self.assertEqual(r.status, 200, r)
        names = sorted(x.split("=", 1)[0] for x in r.header_all("set-cookie"))
        self.assertEqual(names, ["__Host-bic_refresh", "__Host-bic_session"])
        for x in r.header_all("set-cookie"):
            for flag in ("path=/", "secure", "httponly", "samesite=strict"):
                self.assertIn(flag, x.lower())
        self.assertEqual(r.json["user"]["username"], u["username"])
        self.assertEqual(len(r.json["csrf_token"]), 43)
        me = b.get("/api/v1/auth/me")
        self.assertEqual(me.status, 200, me)
        self.assertEqual(me.json["user"]["id"], u["id"])
        # the session works for writes too (its CSRF token came with the answer)
        self.assertEqual(b.post("/api/v1/auth/logout").status, 204)
        logins = self.audit("auth.login", target_id=u["username"])
        self.assertTrue(logins[0]["success"])
        self.assertEqual(logins[0]["summary"], {"session": logins[0]["summary"]["session"], "mfa": "totp"})
        self.assertIsInstance(logins[0]["summary"]["session"], int)
        self.assertEqual(len(self.audit("auth.mfa.challenge", target_id=u["username"])), 1)

    def test_reused_code_is_refused_even_inside_the_window(self):
        u, pw, c = self.signed_in()
        secret, _, t = self.enrol(c, pw)
        b, tok = self.challenge(u["username"], pw)
        self.assertEqual(self.second_step(b, tok, code=totp(secret, t)).status, 200)
        b, tok = self.challenge(u["username"], pw)
        self.assertRefused(self.second_step(b, tok, code=totp(secret, t)), 401, "bad_credentials", "mfa_code_reused")
        # an earlier step of the window is refused too, once a later one was used
        self.assertRefused(self.second_step(b, tok, code=totp(secret, t - 1)), 401, "bad_credentials", "mfa_code_reused")
        # the next step is new: it signs in, on the same second step
        r = self.second_step(b, tok, code=totp(secret, t + 1))
        self.assertEqual(r.status, 200, r)
        fails = self.audit("auth.mfa.verify", target_id=u["username"])
        self.assertEqual([f["summary"] for f in fails], [{"method": "totp", "reason": "reused code"}] * 2)
        self.assertTrue(all(not f["success"] for f in fails))

    def test_codes_two_steps_away_are_refused(self):
        u, pw, c = self.signed_in()
        secret, _, _ = self.enrol(c, pw)
        b, tok = self.challenge(u["username"], pw)
        t = safe_step()
        for d in (-2, 2):
            with self.subTest(step=d):
                self.assertRefused(self.second_step(b, tok, code=totp(secret, t + d)), 401, "bad_credentials",
                                   "mfa_code_invalid")
        self.assertRefused(b.get("/api/v1/auth/me"), 401, "unauthenticated")
        r = self.second_step(b, tok, code=totp(secret, t))
        self.assertEqual(r.status, 200, r)

    def test_a_code_given_as_people_type_it_is_accepted(self):
        u, pw, c = self.signed_in()
        secret, _, t = self.enrol(c, pw)
        b, tok = self.challenge(u["username"], pw)
        code = totp(secret, t)
        self.assertEqual(self.second_step(b, tok, code=" %s %s " % (code[:3], code[3:])).status, 200)

    def test_recovery_code_signs_in_once(self):
        u, pw, c = self.signed_in()
        _, codes, _ = self.enrol(c, pw)
        b, tok = self.challenge(u["username"], pw)
        r = self.second_step(b, tok, recovery_code=codes[3].upper().replace("-", " "))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["recovery_codes_left"], 9)
        self.assertEqual(b.get("/api/v1/auth/me").status, 200)
        b, tok = self.challenge(u["username"], pw)
        self.assertRefused(self.second_step(b, tok, recovery_code=codes[3]), 401, "bad_credentials", "mfa_code_invalid")
        self.assertEqual(c.get(MFA).json["recovery_codes_left"], 9)
        r = self.second_step(b, tok, recovery_code=codes[4])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["recovery_codes_left"], 8)
        login = self.audit("auth.login", target_id=u["username"])[0]
        self.assertEqual(login["summary"]["mfa"], "recovery_code")
        self.assertNotIn(codes[4], json.dumps(login))

    def test_second_step_is_single_use_and_expires(self):
        u, pw, c = self.signed_in()
        secret, _, t = self.enrol(c, pw)
        b, tok = self.challenge(u["username"], pw)
        self.assertEqual(self.second_step(b, tok, code=totp(secret, t)).status, 200)
        other, _ = self.password_step(unique("nobody"), "not-a-password")  # a pre-session CSRF token
        self.assertRefused(self.second_step(other, tok, code=totp(secret, t + 1)), 401, "unauthenticated", "mfa_expired")
        b, tok = self.challenge(u["username"], pw)
        sql_root(self.admin.var, "UPDATE mfa_challenges SET expires_at = NOW(3) - INTERVAL 1 SECOND"
                                 " WHERE user_id = %d AND used_at IS NULL" % u["id"])
        self.assertRefused(self.second_step(b, tok, code=totp(secret, t + 1)), 401, "unauthenticated", "mfa_expired")

    def test_second_step_validates_its_body(self):
        u, pw, c = self.signed_in()
        secret, codes, t = self.enrol(c, pw)
        b, tok = self.challenge(u["username"], pw)
        with self.cases() as case:
            for body in ({}, {"code": totp(secret, t), "recovery_code": codes[0]}, {"code": "12345"},
                         {"code": "12a456"}, {"recovery_code": "abcd-efgh"}, {"recovery_code": "0000-0000-0000-0000"}):
                with case(body=body):
                    self.assertRefused(b.post(LOGIN_MFA, dict(mfa_token=tok, **body)), 422, "validation_failed")
            with case(body="no token"):
                self.assertRefused(b.post(LOGIN_MFA, {"code": "123456"}), 422, "validation_failed")
            for bad in ("x" * 43, "short", tok[:-1] + ("A" if tok[-1] != "A" else "B")):
                with case(token=bad):
                    self.assertRefused(b.post(LOGIN_MFA, {"mfa_token": bad, "code": "123456"}), 401,
                                       "unauthenticated", "mfa_expired")
            with case(body="enrolment with a verify token"):
                self.assertRefused(b.post(LOGIN_MFA + "/enroll", {"mfa_token": tok}), 409, "conflict")
            with case(body="no CSRF token"):
                self.assertRefused(b.post(LOGIN_MFA, {"mfa_token": tok, "code": totp(secret, t)}, csrf=False),
                                   403, "csrf_failed")
        # none of the refusals used the step up
        self.assertEqual(self.second_step(b, tok, code=totp(secret, t)).status, 200)

    def test_bootstrap_admin_and_users_without_a_factor_sign_in_with_the_password_alone(self):
        c = Client()
        r = c.login_admin()
        self.assertEqual(r.status, 200)
        self.assertNotIn("mfa_required", r.json)
        self.assertEqual(r.json["user"]["username"], "admin")
        u, pw = make_user(self.admin)
        r = Client().login(u["username"], pw)
        self.assertNotIn("mfa_required", r.json)
        self.assertEqual(len(r.json["csrf_token"]), 43)


class Lockout(MfaBase):
    def test_wrong_codes_count_with_wrong_passwords_and_lock_the_account(self):
        u, pw, c = self.signed_in()
        secret, _, t = self.enrol(c, pw)
        b, tok = self.challenge(u["username"], pw)
        bad = "%06d" % ((int(totp(secret, t)) + 123457) % 1000000)
        for _ in range(4):
            self.assertRefused(self.second_step(b, tok, code=bad), 401, "bad_credentials", "mfa_code_invalid")
        # the fifth failure is a wrong password: the same counter, so the name is now locked
        self.assertEqual(Client().login(u["username"], "wrong-password-123", expect=None).status, 401)
        r = self.second_step(b, tok, code=totp(secret, t))
        self.assertRefused(r, 423, "account_locked")
        self.assertGreaterEqual(int(r.header("retry-after")), 1)
        self.assertRefused(b.get("/api/v1/auth/me"), 401, "unauthenticated")
        self.assertEqual(Client().login(u["username"], pw, expect=None).status, 423)
        locked = self.audit("auth.mfa.verify", target_id=u["username"])[0]
        self.assertFalse(locked["success"])
        self.assertEqual(locked["summary"], {"reason": "locked"})

    def test_five_wrong_codes_lock_the_password_step_and_close_the_second_step(self):
        u, pw, c = self.signed_in()
        secret, _, t = self.enrol(c, pw)
        b, tok = self.challenge(u["username"], pw)
        bad = "%06d" % ((int(totp(secret, t)) + 1) % 1000000)
        for _ in range(5):
            self.assertRefused(self.second_step(b, tok, code=bad), 401, "bad_credentials")
        self.assertRefused(self.second_step(b, tok, code=totp(secret, t)), 401, "unauthenticated", "mfa_expired")
        r = Client().login(u["username"], pw, expect=None)
        self.assertRefused(r, 423, "account_locked")

    def test_a_successful_second_step_clears_the_failures_but_the_password_alone_does_not(self):
        u, pw, c = self.signed_in()
        secret, _, t = self.enrol(c, pw)
        b, tok = self.challenge(u["username"], pw)
        bad = "%06d" % ((int(totp(secret, t)) + 2) % 1000000)
        for _ in range(3):
            self.second_step(b, tok, code=bad)
        # a right password must not reset the count: otherwise codes could be guessed forever
        b, tok = self.challenge(u["username"], pw)
        self.assertRefused(self.second_step(b, tok, code=bad), 401, "bad_credentials")
        self.assertRefused(self.second_step(b, tok, code=bad), 401, "bad_credentials")
        self.assertRefused(self.second_step(b, tok, code=totp(secret, t)), 423, "account_locked")
        # unlock by moving the lock into the past; then a good sign-in clears the count
        sql_root(self.admin.var, "UPDATE login_throttle SET locked_until = NOW(3) - INTERVAL 1 SECOND"
                                 " WHERE username = '%s'" % u["username"])
        b, tok = self.challenge(u["username"], pw)
        self.assertEqual(self.second_step(b, tok, code=totp(secret, t)).status, 200)
        self.assertEqual(sql_value(self.admin.var, "SELECT COUNT(*) FROM login_throttle WHERE username = '%s'"
                                   % u["username"]), "0")


class Policy(MfaBase):
    def test_group_policy_forces_enrolment_before_a_session(self):
        g = self.make_group()
        u, pw = make_user(self.admin)
        other, other_pw = make_user(self.admin)
        self.assertEqual(self.admin.put("/api/v1/groups/%d/members/%d" % (g["id"], u["id"])).status, 204)
        self.assertEqual(self.admin.get("/api/v1/groups/%d/mfa" % g["id"]).json, {"group_id": g["id"], "mfa_required": False})
        r = self.admin.put("/api/v1/groups/%d/mfa" % g["id"], {"mfa_required": True})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"group_id": g["id"], "mfa_required": True})
        self.assertEqual(self.admin.get("/api/v1/groups/%d/mfa" % g["id"]).json["mfa_required"], True)
        listed = self.admin.get("/api/v1/mfa/policy").json["items"]
        self.assertIn({"id": g["id"], "name": g["name"], "members": 1, "mfa_required": True}, listed)
        pol = self.audit("auth.mfa.policy", target_id=str(g["id"]))
        self.assertEqual(len(pol), 1)
        # the same value again changes nothing and is not audited again
        self.admin.put("/api/v1/groups/%d/mfa" % g["id"], {"mfa_required": True})
        self.assertEqual(len(self.audit("auth.mfa.policy", target_id=str(g["id"]))), 1)

        # outside the group: the password alone
        self.assertNotIn("mfa_required", Client().login(other["username"], other_pw).json)
        # in the group: an enrolment-only step, no session
        b, tok = self.challenge(u["username"], pw, step="enroll")
        self.assertRefused(b.get("/api/v1/auth/me"), 401, "unauthenticated")
        self.assertRefused(self.second_step(b, tok, code="123456"), 409, "conflict")  # nothing enrolled yet
        self.assertRefused(self.second_step(b, tok, recovery_code="abcd-efgh-jkmn-pqrs"), 422, "validation_failed")
        r = b.post(LOGIN_MFA + "/enroll", {"mfa_token": tok})
        self.assertEqual(r.status, 200, r)
        secret = r.json["secret"]
        self.assertTrue(r.json["otpauth_uri"].startswith("otpauth://totp/BIC:"))
        self.assertTrue(r.json["qr_svg"].startswith("<svg"))
        self.assertRefused(b.get("/api/v1/auth/me"), 401, "unauthenticated")
        t = safe_step()
        wrong = "%06d" % ((int(totp(secret, t)) + 99) % 1000000)
        self.assertRefused(self.second_step(b, tok, code=wrong), 401, "bad_credentials", "mfa_code_invalid")
        r = self.second_step(b, tok, code=totp(secret, t))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json["recovery_codes"]), 10)
        self.assertEqual(r.json["user"]["username"], u["username"])
        s = b.get(MFA)
        self.assertEqual(s.status, 200, s)
        self.assertTrue(s.json["totp"]["enabled"])
        self.assertEqual((s.json["required"], s.json["required_by"]), (True, [{"id": g["id"], "name": g["name"]}]))
        # the enrolment token is spent; the next sign-in asks for a code
        self.assertRefused(b.post(LOGIN_MFA + "/enroll", {"mfa_token": tok}), 401, "unauthenticated", "mfa_expired")
        b2, tok2 = self.challenge(u["username"], pw, step="verify")
        self.assertEqual(self.second_step(b2, tok2, code=totp(secret, t + 1)).status, 200)
        enrol = self.audit("auth.mfa.enroll", target_id=str(u["id"]))
        self.assertEqual(len(enrol), 1)
        # policy off again: a member without a factor signs in with the password alone
        self.admin.put("/api/v1/groups/%d/mfa" % g["id"], {"mfa_required": False})
        self.assertNotIn(g["id"], [x["id"] for x in self.admin.get("/api/v1/mfa/policy").json["items"]])

    def test_policy_routes_validate_and_know_their_group(self):
        g = self.make_group()
        self.assertRefused(self.admin.put("/api/v1/groups/%d/mfa" % g["id"], {"mfa_required": "yes"}), 422,
                           "validation_failed")
        self.assertRefused(self.admin.put("/api/v1/groups/%d/mfa" % g["id"], {}), 422, "validation_failed")
        self.assertRefused(self.admin.put("/api/v1/groups/999999999/mfa", {"mfa_required": True}), 404, "not_found")
        self.assertRefused(self.admin.get("/api/v1/groups/999999999/mfa"), 404, "not_found")
        # deleting a group drops its policy
        self.admin.put("/api/v1/groups/%d/mfa" % g["id"], {"mfa_required": True})
        self.assertEqual(self.admin.delete("/api/v1/groups/%d" % g["id"]).status, 204)
        self.assertNotIn(g["id"], [x["id"] for x in self.admin.get("/api/v1/mfa/policy").json["items"]])

    def test_non_admins_cannot_set_policy_or_reset_a_factor(self):
        g = self.make_group()
        victim, victim_pw, vc = self.signed_in()
        self.enrol(vc, victim_pw)
        for role in ("user", "operator"):
            u, pw = make_user(self.admin, role=role)
            c = Client()
            c.login(u["username"], pw)
            with self.subTest(role=role):
                self.assertRefused(c.put("/api/v1/groups/%d/mfa" % g["id"], {"mfa_required": True}), 403, "forbidden")
                self.assertRefused(c.get("/api/v1/groups/%d/mfa" % g["id"]), 403, "forbidden")
                self.assertRefused(c.get("/api/v1/mfa/policy"), 403, "forbidden")
                self.assertRefused(c.delete("/api/v1/users/%d/mfa" % victim["id"]), 403, "forbidden")
                self.assertRefused(c.get("/api/v1/users/%d/mfa" % victim["id"]), 403, "forbidden")
        self.assertFalse(self.admin.get("/api/v1/groups/%d/mfa" % g["id"]).json["mfa_required"])
        self.assertTrue(self.admin.get("/api/v1/users/%d/mfa" % victim["id"]).json["totp"]["enabled"])


class Manage(MfaBase):
    def test_admin_reset_removes_the_factor_ends_open_steps_and_is_audited(self):
        u, pw, c = self.signed_in()
        secret, _, t = self.enrol(c, pw)
        r = self.admin.get("/api/v1/users/%d/mfa" % u["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["user_id"], r.json["totp"]["enabled"], r.json["recovery_codes_left"]), (u["id"], True, 10))
        b, tok = self.challenge(u["username"], pw)
        self.assertEqual(self.admin.delete("/api/v1/users/%d/mfa" % u["id"]).status, 204)
        r = self.admin.get("/api/v1/users/%d/mfa" % u["id"]).json
        self.assertEqual((r["totp"]["enabled"], r["totp"]["pending"], r["recovery_codes_left"]), (False, False, 0))
        self.assertRefused(self.second_step(b, tok, code=totp(secret, t)), 401, "unauthenticated", "mfa_expired")
        rows = self.audit("auth.mfa.reset", target_id=str(u["id"]))
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["actor_name"], "admin")
        # the password alone works again; a second reset changes and audits nothing
        self.assertNotIn("mfa_required", Client().login(u["username"], pw).json)
        self.assertEqual(self.admin.delete("/api/v1/users/%d/mfa" % u["id"]).status, 204)
        self.assertEqual(len(self.audit("auth.mfa.reset", target_id=str(u["id"]))), 1)
        self.assertRefused(self.admin.delete("/api/v1/users/999999999/mfa"), 404, "not_found")
        self.assertRefused(self.admin.get("/api/v1/users/999999999/mfa"), 404, "not_found")

    def test_removing_needs_the_password_or_a_current_code(self):
        u, pw, c = self.signed_in()
        secret, _, t = self.enrol(c, pw)
        with self.cases() as case:
            for body in ({}, {"password": pw, "code": totp(secret, t)}, {"code": "12"}):
                with case(body=body):
                    self.assertRefused(c.request("DELETE", MFA + "/totp", body=body), 422, "validation_failed")
        self.assertRefused(c.request("DELETE", MFA + "/totp", body={"password": pw + "x"}), 403, "forbidden", "password_wrong")
        bad = "%06d" % ((int(totp(secret, t)) + 3) % 1000000)
        self.assertRefused(c.request("DELETE", MFA + "/totp", body={"code": bad}), 403, "forbidden", "mfa_code_invalid")
        self.assertRefused(c.request("DELETE", MFA + "/totp", body={"code": totp(secret, t - 1)}), 403, "forbidden",
                           "mfa_code_reused")  # the enrolment used that step
        self.assertTrue(c.get(MFA).json["totp"]["enabled"])
        r = c.request("DELETE", MFA + "/totp", body={"code": totp(secret, t)})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(c.get(MFA).json["totp"], {"enabled": False, "pending": False, "confirmed_at": None, "last_used_at": None})
        self.assertRefused(c.request("DELETE", MFA + "/totp", body={"password": pw}), 404, "not_found")
        off = self.audit("auth.mfa.disable", target_id=str(u["id"]))
        self.assertEqual([x["success"] for x in off], [True, False, False, False])
        self.assertNotIn("mfa_required", Client().login(u["username"], pw).json)

    def test_regenerated_recovery_codes_replace_the_old_ones(self):
        u, pw, c = self.signed_in()
        secret, old, t = self.enrol(c, pw)
        r = c.post(MFA + "/recovery-codes", {"password": pw})
        self.assertEqual(r.status, 200, r)
        new = r.json["recovery_codes"]
        self.assertEqual(len(new), 10)
        self.assertFalse(set(new) & set(old))
        self.assertEqual(c.get(MFA).json["recovery_codes_left"], 10)
        b, tok = self.challenge(u["username"], pw)
        self.assertRefused(self.second_step(b, tok, recovery_code=old[0]), 401, "bad_credentials")
        self.assertEqual(self.second_step(b, tok, recovery_code=new[0]).status, 200)
        self.assertEqual(len(self.audit("auth.mfa.recovery_regenerate", target_id=str(u["id"]))), 1)
        # needs a confirmed factor
        _, pw2, c2 = self.signed_in()
        self.assertRefused(c2.post(MFA + "/recovery-codes", {"password": pw2}), 409, "conflict")


if __name__ == "__main__":
    unittest.main()

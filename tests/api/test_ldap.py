"""Directory sign-in (LDAP / Active Directory) against a real slapd (tests/lib/slapd.py): users
created at their first sign-in, directory groups mapped to BIC groups and so to pool entitlements,
disabled and unknown users refused with the one generic answer, filter injection, lockout, the
directory going down (503 while local admins still sign in), StartTLS/LDAPS with the right and a
wrong CA, the test-connection action's plain words, and the leader's scheduled sync."""
import atexit
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import AdminTestCase, Client, make_golden_qcow2, make_user, unique, wait_until  # noqa: E402
from slapd import READER_DN, READER_PW, SUFFIX, Slapd  # noqa: E402

PEOPLE = "ou=people," + SUFFIX
GROUPS = "ou=groups," + SUFFIX
AD = "ou=ad," + SUFFIX

_slapd = None
_why = None


def shared_slapd():
    """The module's slapd, started on first use and stopped when the test process ends (the
    runner loads modules outside sys.modules, so setUpModule would never run). Returns (slapd,
    None) or (None, why it cannot run)."""
    global _slapd, _why
    if _slapd or _why:
        return _slapd, _why
    _why = Slapd.unavailable()
    if _why:
        return None, _why
    try:
        _slapd = Slapd().start()
    except Exception as e:  # noqa: BLE001 - every test skips with the reason
        _why = "slapd did not start here: %s" % str(e)[:500]
        return None, _why
    atexit.register(_slapd.cleanup)
    return _slapd, None


def one_line(pem):
    """PEM with its line breaks as spaces: the API's strict JSON refuses control characters in
    strings, and the server puts the line breaks back."""
    return " ".join(pem.split())


def openldap_settings(d, **kw):
    """A directory of slapd's ou=people in the OpenLDAP style: StartTLS with the test CA, the
    reader as service account, groupOfNames groups found by member DN."""
    body = {"name": unique("ldap"), "url": d.url, "starttls": True, "ca_cert": one_line(d.ca_pem),
            "bind_dn": READER_DN, "bind_password": READER_PW, "user_base": PEOPLE,
            "user_filter": "(&(objectClass=inetOrgPerson)(uid=%s))", "group_base": GROUPS,
            "group_filter": "(&(objectClass=groupOfNames)(member=%d))",
            "disabled_filter": "(employeeType=disabled)", "attr_username": "uid",
            "attr_display_name": "cn", "attr_email": "mail", "timeout": 3}
    body.update(kw)
    return body


def ad_settings(d, **kw):
    """The same slapd's ou=ad in the Active Directory style: LDAPS, sAMAccountName, memberOf on the
    user, userAccountControl for disabled accounts."""
    body = {"name": unique("ad"), "url": d.ldaps_url, "ca_cert": one_line(d.ca_pem), "bind_dn": READER_DN,
            "bind_password": READER_PW, "user_base": AD,
            "user_filter": "(&(objectClass=bicAdUser)(sAMAccountName=%s))",
            "attr_username": "sAMAccountName", "attr_display_name": "displayName",
            "attr_email": "mail", "attr_member_of": "memberOf", "timeout": 3}
    body.update(kw)
    return body


class LdapCase(AdminTestCase):
    @classmethod
    def setUpClass(cls):
        cls.d, why = shared_slapd()
        if why:
            raise unittest.SkipTest(why)
        super().setUpClass()

    def directory(self, body):
        """Creates a directory for this test and deletes it afterwards (sign-in of unknown names
        asks every enabled directory, so none may outlive its test)."""
        r = self.admin.post("/api/v1/directories", body)
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.admin.delete, "/api/v1/directories/%d" % r.json["id"])
        return r.json

    def person(self, cn=None, **kw):
        uid = unique("p")
        pw = "pw-" + unique("x") + "-long"
        dn = self.d.add_person(uid, pw, cn=cn or ("Person " + uid), **kw)
        return uid, pw, dn

    def audit(self, **q):
        query = "&".join("%s=%s" % kv for kv in q.items())
        r = self.admin.get("/api/v1/audit?" + query)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def dir_user(self, dir_id, username):
        r = self.admin.get("/api/v1/directories/%d/users?limit=500" % dir_id)
        self.assertEqual(r.status, 200, r)
        found = [u for u in r.json["items"] if u["username"] == username]
        return found[0] if found else None

    def user_groups(self, user_id):
        r = self.admin.get("/api/v1/users/%d" % user_id)
        self.assertEqual(r.status, 200, r)
        return sorted(g["name"] for g in r.json["groups"])

    def group(self):
        r = self.admin.post("/api/v1/groups", {"name": unique("dg")})
        self.assertEqual(r.status, 201, r)
        return r.json


class DirectoryApi(LdapCase):
    """Settings: validation, the write-only password, audit, the admin role."""

    def test_create_answers_the_settings_but_never_the_password(self):
        body = openldap_settings(self.d)
        r = self.admin.post("/api/v1/directories", body)
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.admin.delete, "/api/v1/directories/%d" % r.json["id"])
        j = r.json
        self.assertEqual(r.header("location"), "/api/v1/directories/%d" % j["id"])
        self.assertNotIn("bind_password", j)
        self.assertNotIn(READER_PW, r.body)
        self.assertTrue(j["bind_password_set"])
        self.assertEqual((j["url"], j["starttls"], j["user_base"], j["users"], j["group_maps"]),
                         (self.d.url, True, PEOPLE, 0, 0))
        self.assertEqual(j["ca"]["subject"], "CN=BIC test directory CA")
        self.assertEqual(j["warnings"], [])
        got = self.admin.get("/api/v1/directories/%d" % j["id"])
        self.assertNotIn(READER_PW, got.body)
        self.assertIn(j["id"], [x["id"] for x in self.admin.get("/api/v1/directories").json["items"]])
        audit = self.audit(action="directory.create", target_id=j["id"])
        self.assertEqual(len(audit), 1)
        self.assertNotIn(READER_PW, str(audit))
        # the password is kept when a PATCH leaves it out, and still works
        r = self.admin.patch("/api/v1/directories/%d" % j["id"], {"timeout": 4})
        self.assertEqual((r.status, r.json["timeout"], r.json["bind_password_set"]), (200, 4, True), r)
        self.assertTrue(self.admin.post("/api/v1/directories/%d/test" % j["id"], {}).json["ok"])
        upd = self.audit(action="directory.update", target_id=j["id"])
        self.assertEqual(upd[0]["summary"]["changes"], {"timeout": {"from": 3, "to": 4}})

    def test_plaintext_ldap_is_flagged(self):
        j = self.directory(openldap_settings(self.d, starttls=False, ca_cert=""))
        self.assertEqual(len(j["warnings"]), 1)
        self.assertIn("unencrypted", j["warnings"][0])

    def test_validation(self):
        before = len(self.admin.get("/api/v1/directories").json["items"])
        with self.cases() as case:
            for label, kw, words in [
                ("http url", {"url": "http://127.0.0.1:389"}, "only ldap:// and ldaps://"),
                ("base in url", {"url": self.d.url + "/dc=bic"}, "only the scheme"),
                ("starttls on ldaps", {"url": self.d.ldaps_url, "starttls": True}, "StartTLS is for ldap://"),
                ("user filter without %s", {"user_filter": "(uid=ann)"}, "%s"),
                ("unbalanced filter", {"user_filter": "(&(uid=%s)"}, "parentheses"),
                ("unknown placeholder", {"user_filter": "(uid=%x)"}, "placeholders"),
                ("%d in user filter", {"user_filter": "(member=%d)"}, "%d"),
                ("group base without filter", {"group_filter": ""}, "both group_base and group_filter"),
                ("group filter without user", {"group_filter": "(objectClass=groupOfNames)"}, "%d"),
                ("disabled filter with placeholder", {"disabled_filter": "(uid=%s)"}, "no placeholders"),
                ("bad base", {"user_base": "not a dn"}, "not a DN"),
                ("bad attribute", {"attr_username": "uid;x y"}, "attribute name"),
                ("bind dn without password", {"bind_password": ""}, "bind_password"),
                ("not a certificate", {"ca_cert": "hello"}, "no certificate"),
                ("private key", {"ca_cert": one_line(self.d.ca_pem) + " -----BEGIN PRIVATE KEY----- AA== -----END PRIVATE KEY-----"},
                 "private key"),
                ("timeout", {"timeout": 0}, "timeout"),
                ("unknown key", {"colour": "red"}, "unknown field 'colour'"),
            ]:
                with case(label=label):
                    r = self.admin.post("/api/v1/directories", openldap_settings(self.d, **kw))
                    self.assertJsonError(r, 422, "validation_failed")
                    self.assertIn(words, r.json["error"]["message"])
        # nothing was stored
        self.assertEqual(len(self.admin.get("/api/v1/directories").json["items"]), before)

    def test_duplicate_name_409_and_unknown_404(self):
        j = self.directory(openldap_settings(self.d))
        self.assertJsonError(self.admin.post("/api/v1/directories", openldap_settings(self.d, name=j["name"])),
                             409, "conflict")
        for path in ("/api/v1/directories/999999", "/api/v1/directories/999999/group-maps"):
            self.assertJsonError(self.admin.get(path), 404, "not_found")
        self.assertJsonError(self.admin.post("/api/v1/directories/999999/test", {}), 404, "not_found")
        self.assertJsonError(self.admin.delete("/api/v1/directories/%d/group-maps/999999" % j["id"]),
                             404, "not_found")

    def test_only_admins(self):
        u, pw = make_user(self.admin, role="operator")
        c = Client()
        c.login(u["username"], pw)
        self.assertJsonError(c.get("/api/v1/directories"), 403, "forbidden")
        self.assertJsonError(c.post("/api/v1/directories", openldap_settings(self.d)), 403, "forbidden")

    def test_group_maps(self):
        j = self.directory(openldap_settings(self.d))
        g = self.group()
        base = "/api/v1/directories/%d/group-maps" % j["id"]
        dn = "cn=Staff, " + GROUPS
        r = self.admin.post(base, {"group_dn": dn, "group_id": g["id"]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json["group_dn"], r.json["group"]["id"]), (dn, g["id"]))
        # the same group under another spelling of its DN is the same mapping
        self.assertJsonError(self.admin.post(base, {"group_dn": "CN=staff," + GROUPS.upper(), "group_id": g["id"]}),
                             409, "conflict")
        self.assertJsonError(self.admin.post(base, {"group_dn": "no dn", "group_id": g["id"]}), 422,
                             "validation_failed")
        self.assertJsonError(self.admin.post(base, {"group_dn": dn, "group_id": 999999}), 422, "validation_failed")
        self.assertEqual([m["id"] for m in self.admin.get(base).json["items"]], [r.json["id"]])
        self.assertEqual(self.admin.get("/api/v1/directories/%d" % j["id"]).json["group_maps"], 1)
        self.assertEqual(self.admin.delete(base + "/%d" % r.json["id"]).status, 204)
        self.assertEqual(self.admin.get(base).json["items"], [])
        acts = [a["action"] for a in self.audit(target_type="directory", target_id=j["id"])]
        self.assertEqual((acts.count("directory.map_add"), acts.count("directory.map_remove")), (1, 1))


class TestConnection(LdapCase):
    """POST /directories/{id}/test: each step, and failures in plain words."""

    def check(self, **kw):
        j = self.directory(openldap_settings(self.d, **kw))
        r = self.admin.post("/api/v1/directories/%d/test" % j["id"], {})
        self.assertEqual(r.status, 200, r)
        return r.json

    def test_starttls_with_the_right_ca_works(self):
        t = self.check()
        self.assertEqual((t["ok"], t["step"]), (True, None), t)
        self.assertEqual(len(t["servers"]), 1)
        self.assertTrue(t["servers"][0]["tls"].startswith("TLS1."), t)

    def test_ldaps_with_the_right_ca_works(self):
        t = self.check(url=self.d.ldaps_url, starttls=False)
        self.assertTrue(t["ok"], t)
        self.assertTrue(t["servers"][0]["tls"], t)

    def test_starttls_with_a_wrong_ca_says_so(self):
        t = self.check(ca_cert=one_line(self.d.other_ca_pem))
        self.assertEqual((t["ok"], t["step"]), (False, "starttls"), t)
        self.assertIn("not signed by the CA you gave", t["message"])
        self.assertIn("BIC test directory CA", t["message"])  # who did sign it

    def test_ldaps_with_a_wrong_ca_says_so(self):
        t = self.check(url=self.d.ldaps_url, starttls=False, ca_cert=one_line(self.d.other_ca_pem))
        self.assertEqual((t["ok"], t["step"]), (False, "connect"), t)
        self.assertIn("not signed by the CA you gave", t["message"])

    def test_certificate_for_another_name_says_so(self):
        t = self.check(url=self.d.other_name_url, starttls=False)
        self.assertEqual((t["ok"], t["step"]), (False, "connect"), t)
        self.assertIn("is for localhost, 127.0.0.1, not for '127.0.0.2'", t["message"])

    def test_wrong_bind_password_says_so(self):
        t = self.check(bind_password="not-the-reader-password")
        self.assertEqual((t["ok"], t["step"]), (False, "bind"), t)
        self.assertIn("refused the bind DN '%s' or its password" % READER_DN, t["message"])

    def test_missing_base_says_so(self):
        t = self.check(user_base="ou=nobody," + SUFFIX)
        self.assertEqual((t["ok"], t["step"]), (False, "search"), t)
        self.assertIn("does not exist", t["message"])
        self.assertIn("ou=nobody", t["message"])

    def test_closed_port_says_so(self):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed once the block ends
        t = self.check(url="ldap://127.0.0.1:%d" % port)
        self.assertEqual((t["ok"], t["step"]), (False, "connect"), t)
        self.assertIn("nothing listens on port %d" % port, t["message"])

    def test_ldaps_to_a_plain_port_says_so(self):
        t = self.check(url=self.d.url.replace("ldap://", "ldaps://"), starttls=False)
        self.assertEqual((t["ok"], t["step"]), (False, "connect"), t)
        self.assertIn("StartTLS", t["message"])

    def test_user_lookup_shows_groups_and_mappings(self):
        uid, _, dn = self.person(cn="Test Person", mail="tp@example.test")
        gdn = self.d.add_group(unique("tg"), [dn])
        j = self.directory(openldap_settings(self.d))
        g = self.group()
        self.admin.post("/api/v1/directories/%d/group-maps" % j["id"], {"group_dn": gdn, "group_id": g["id"]})
        r = self.admin.post("/api/v1/directories/%d/test" % j["id"], {"username": uid})
        self.assertTrue(r.json["ok"], r)
        u = r.json["user"]
        self.assertEqual((u["found"], u["dn"], u["username"], u["display_name"], u["email"], u["disabled"]),
                         (True, dn, uid, "Test Person", "tp@example.test", False))
        self.assertEqual(u["groups"], [{"dn": gdn, "bic_groups": [{"id": g["id"], "name": g["name"]}]}])
        r = self.admin.post("/api/v1/directories/%d/test" % j["id"], {"username": "nobody-" + uid})
        self.assertEqual((r.json["ok"], r.json["step"]), (False, "search"), r)
        self.assertIn("no entry under '%s' matches" % PEOPLE, r.json["message"])
        tests = self.audit(action="directory.test", target_id=j["id"])
        self.assertEqual([t["success"] for t in tests], [False, True])


class Login(LdapCase):
    """Sign-in through the directory."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.admin.post("/api/v1/directories", openldap_settings(cls.d))
        assert r.status == 201, r
        cls.dir = r.json

    @classmethod
    def tearDownClass(cls):
        cls.admin.delete("/api/v1/directories/%d" % cls.dir["id"])

    def test_first_sign_in_creates_the_user(self):
        uid, pw, dn = self.person(cn="Kim Min-su", mail="minsu@example.test")
        c = Client()
        r = c.login(uid, pw)
        self.assertEqual((r.json["user"]["username"], r.json["user"]["display_name"], r.json["user"]["role"]),
                         (uid, "Kim Min-su", "user"))
        self.assertEqual(c.get("/api/v1/auth/me").json["user"]["username"], uid)
        u = self.dir_user(self.dir["id"], uid)
        self.assertEqual((u["source"], u["dn"], u["email"], u["disabled_in_directory"]),
                         ("ldap", dn, "minsu@example.test", False))
        self.assertIsNotNone(u["last_login_at"])
        created = self.audit(action="directory.user_create", target_id=u["id"])
        self.assertEqual(len(created), 1)
        self.assertEqual(created[0]["summary"]["dn"], dn)
        # the second sign-in finds the same user
        Client().login(uid, pw)
        self.assertEqual(len([x for x in self.admin.get("/api/v1/directories/%d/users" % self.dir["id"]).json["items"]
                              if x["username"] == uid]), 1)
        self.assertEqual(len(self.audit(action="directory.user_create", target_id=u["id"])), 1)
        # an admin cannot give a directory user a local password: it would be a second way in
        self.assertEqual(self.admin.get("/api/v1/users/%d" % u["id"]).json["source"], "ldap")
        self.assertJsonError(self.admin.post("/api/v1/users/%d/password" % u["id"], {"password": "Another-long-pass-42"}),
                             409, "conflict")
        # a directory user has no local password
        self.assertJsonError(c.post("/api/v1/auth/password", {"current_password": pw, "new_password": pw + "x"}),
                             403, "forbidden")

    def test_concurrent_first_sign_ins_make_one_user(self):
        import threading
        uid, pw, _ = self.person()
        answers = []

        def one():
            answers.append(Client().login(uid, pw, expect=None).status)
        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(answers, [200] * 8)
        u = self.dir_user(self.dir["id"], uid)
        self.assertEqual(len(self.audit(action="directory.user_create", target_id=u["id"])), 1)

    def test_another_spelling_signs_in_as_the_same_user(self):
        uid, pw, _ = self.person()
        Client().login(uid, pw)
        r = Client().login(uid.upper(), pw)
        self.assertEqual(r.json["user"]["username"], uid)  # the directory's spelling

    def test_wrong_password_unknown_and_disabled_look_the_same(self):
        uid, pw, _ = self.person()
        off, off_pw, _ = self.person(employee_type="disabled")
        answers = []
        for name, password in [(uid, pw + "-wrong"), ("nobody-" + unique("n"), pw), (off, off_pw)]:
            r = Client().login(name, password, expect=None)
            self.assertJsonError(r, 401, "bad_credentials")
            answers.append(r.json["error"]["message"])
        self.assertEqual(len(set(answers)), 1, answers)
        self.assertIsNone(self.dir_user(self.dir["id"], off))  # refused before anything was made
        reasons = {a["target_id"]: a["summary"]["reason"] for a in self.audit(action="auth.login")
                   if a["target_id"] in (uid, off) and not a["success"]}
        self.assertEqual(reasons, {uid: "wrong password", off: "disabled in the directory"})

    def test_user_disabled_in_the_directory_after_sign_in_is_refused(self):
        uid, pw, dn = self.person()
        c = Client()
        c.login(uid, pw)
        self.d.set_attr(dn, "employeeType", ["disabled"])
        self.assertJsonError(Client().login(uid, pw, expect=None), 401, "bad_credentials")
        u = self.dir_user(self.dir["id"], uid)
        self.assertTrue(u["disabled_in_directory"])
        # and the session he had ended
        self.assertJsonError(c.get("/api/v1/auth/me"), 401, "unauthenticated")
        self.d.set_attr(dn, "employeeType", [])
        Client().login(uid, pw)
        self.assertFalse(self.dir_user(self.dir["id"], uid)["disabled_in_directory"])

    def test_disabled_by_an_admin_stays_disabled(self):
        uid, pw, _ = self.person()
        Client().login(uid, pw)
        u = self.dir_user(self.dir["id"], uid)
        self.assertEqual(self.admin.patch("/api/v1/users/%d" % u["id"], {"disabled": True}).status, 200)
        self.assertJsonError(Client().login(uid, pw, expect=None), 401, "bad_credentials")

    def test_empty_password_is_never_sent(self):
        uid, _, _ = self.person()
        c = Client()
        c.login(uid, "x", expect=None)  # fetches the CSRF token
        r = c.post("/api/v1/auth/login", {"username": uid, "password": ""})
        self.assertJsonError(r, 422, "validation_failed")
        self.assertIsNone(self.dir_user(self.dir["id"], uid))

    def test_filter_injection_is_refused(self):
        uid, pw, _ = self.person()
        with self.cases() as case:
            # unescaped, "<first letters>*" would match this one entry and bind with its password
            for name in (uid[:-1] + "*", "*", "*)(uid=*", "%s)(|(uid=*" % uid, uid + "\\2a"):
                with case(name=name):
                    r = Client().login(name, pw, expect=None)
                    self.assertJsonError(r, 401, "bad_credentials")
        self.assertIsNone(self.dir_user(self.dir["id"], uid))
        self.assertEqual([u for u in self.admin.get("/api/v1/directories/%d/users?limit=500" % self.dir["id"]).json["items"]
                          if "*" in u["username"] or "(" in u["username"]], [])

    def test_lockout_counts_on_the_directorys_spelling(self):
        uid, pw, _ = self.person()
        for i in range(5):
            name = uid if i % 2 else uid.upper()
            self.assertJsonError(Client().login(name, "wrong-" + str(i), expect=None), 401, "bad_credentials")
        r = Client().login(uid, pw, expect=None)
        self.assertJsonError(r, 423, "account_locked")
        self.assertTrue(r.header("retry-after"))
        self.assertJsonError(Client().login(uid.capitalize(), pw, expect=None), 423, "account_locked")

    def test_local_accounts_never_ask_the_directory(self):
        u, pw = make_user(self.admin)
        # a directory entry with the same name and another password does not sign in as him
        self.d.add_person(u["username"], "directory-password-1")
        self.assertJsonError(Client().login(u["username"], "directory-password-1", expect=None), 401,
                             "bad_credentials")
        Client().login(u["username"], pw)

    def test_group_mapping_entitles_to_a_pool(self):
        uid, pw, dn = self.person()
        outsider, opw, _ = self.person()
        gdn = self.d.add_group(unique("vdi"), [dn])
        g = self.group()
        m = self.admin.post("/api/v1/directories/%d/group-maps" % self.dir["id"], {"group_dn": gdn, "group_id": g["id"]})
        self.assertEqual(m.status, 201, m)
        pool = make_pool(self.admin)
        self.assertEqual(self.admin.put("/api/v1/pools/%d/entitlements/groups/%d" % (pool, g["id"])).status, 204)
        c = Client()
        c.login(uid, pw)
        self.assertEqual([p["id"] for p in c.get("/api/v1/my/pools").json["items"]], [pool])
        u = self.dir_user(self.dir["id"], uid)
        self.assertEqual(self.user_groups(u["id"]), [g["name"]])
        o = Client()
        o.login(outsider, opw)
        self.assertEqual(o.get("/api/v1/my/pools").json["items"], [])
        # taken out of the directory group: the next sign-in takes the BIC group away
        self.d.remove_member(gdn, dn)
        c2 = Client()
        c2.login(uid, pw)
        self.assertEqual(self.user_groups(u["id"]), [])
        self.assertEqual(c2.get("/api/v1/my/pools").json["items"], [])
        sync = self.audit(action="directory.user_sync", target_id=u["id"])
        self.assertEqual(sync[0]["summary"]["groups_removed"], [g["name"]])

    def test_a_mapped_group_with_a_role_gives_the_role(self):
        uid, pw, dn = self.person()
        gdn = self.d.add_group(unique("helpdesk"), [dn])
        g = self.admin.post("/api/v1/groups", {"name": unique("helpdesk"), "role": "operator"}).json
        m = self.admin.post("/api/v1/directories/%d/group-maps" % self.dir["id"], {"group_dn": gdn, "group_id": g["id"]})
        self.assertEqual(m.status, 201, m)
        c = Client()
        self.assertEqual(c.login(uid, pw).json["user"]["role"], "operator")
        self.assertEqual(c.get("/api/v1/servers").status, 200)
        self.assertJsonError(c.get("/api/v1/users"), 403, "forbidden")
        u = self.dir_user(self.dir["id"], uid)
        self.assertEqual(self.admin.get("/api/v1/users/%d" % u["id"]).json["effective_role"], "operator")
        # out of the directory group: the next sign-in drops the BIC group, and the role with it
        self.d.remove_member(gdn, dn)
        c2 = Client()
        self.assertEqual(c2.login(uid, pw).json["user"]["role"], "user")
        self.assertJsonError(c2.get("/api/v1/servers"), 403, "forbidden")
        self.assertJsonError(c.get("/api/v1/servers"), 403, "forbidden")  # the older session too

    def test_a_membership_an_admin_gave_is_kept(self):
        uid, pw, _ = self.person()
        Client().login(uid, pw)
        u = self.dir_user(self.dir["id"], uid)
        g = self.group()
        self.assertEqual(self.admin.put("/api/v1/groups/%d/members/%d" % (g["id"], u["id"])).status, 204)
        Client().login(uid, pw)
        self.assertEqual(self.user_groups(u["id"]), [g["name"]])


class ActiveDirectory(LdapCase):
    """The Active Directory style: sAMAccountName, memberOf, userAccountControl, LDAPS."""

    def test_member_of_and_account_control(self):
        d = self.directory(ad_settings(self.d))
        gdn = "cn=%s,%s" % (unique("adg"), GROUPS)
        g = self.group()
        self.admin.post("/api/v1/directories/%d/group-maps" % d["id"], {"group_dn": gdn.upper(), "group_id": g["id"]})
        sam = unique("ad")
        pw = "pw-" + unique("x") + "-long"
        self.d.add_ad_user(sam, pw, display="Ad User", member_of=[gdn])
        off = unique("ad")
        self.d.add_ad_user(off, pw, uac=514)  # 512 | ACCOUNTDISABLE
        r = Client().login(sam, pw)
        self.assertEqual(r.json["user"]["display_name"], "Ad User")
        u = self.dir_user(d["id"], sam)
        self.assertEqual(self.user_groups(u["id"]), [g["name"]])
        self.assertJsonError(Client().login(off, pw, expect=None), 401, "bad_credentials")
        self.assertIsNone(self.dir_user(d["id"], off))


class DirectoryDown(LdapCase):
    """A directory that cannot be reached: a clear 503, and local admins are not affected."""

    def test_directory_down_is_a_clear_503_and_local_admins_sign_in(self):
        own = Slapd().start()
        self.addCleanup(own.cleanup)
        uid = unique("p")
        pw = "pw-" + unique("x") + "-long"
        own.add_person(uid, pw)
        d = self.directory(openldap_settings(own, order=-100))
        Client().login(uid, pw)
        own.stop()
        t0 = time.monotonic()
        for name in (uid, "nobody-" + unique("n")):  # his account, and a name only a directory could know
            r = Client().login(name, pw, expect=None)
            self.assertJsonError(r, 503, "unavailable")
            self.assertEqual(r.json["error"]["reason"], "directory_unavailable")
            self.assertTrue(r.header("retry-after"))
            self.assertNotIn(READER_PW, r.body)
        self.assertLess(time.monotonic() - t0, 10)
        Client().login_admin()
        local, lpw = make_user(self.admin)
        Client().login(local["username"], lpw)
        # the failure is explained to the admin
        t = self.admin.post("/api/v1/directories/%d/test" % d["id"], {}).json
        self.assertEqual((t["ok"], t["step"]), (False, "connect"), t)
        self.assertIn("nothing listens", t["message"])
        # and it comes back
        own.start()
        Client().login(uid, pw)


class ScheduledSync(LdapCase):
    """The leader's sync: group changes and disabled accounts without a sign-in."""

    def test_sync_removes_a_membership_and_disables_a_removed_user(self):
        uid, pw, dn = self.person()
        gone, gpw, gdn_user = self.person()
        gdn = self.d.add_group(unique("sg"), [dn, gdn_user])
        d = self.directory(openldap_settings(self.d, sync_interval=1))
        g = self.group()
        self.admin.post("/api/v1/directories/%d/group-maps" % d["id"], {"group_dn": gdn, "group_id": g["id"]})
        c = Client()
        c.login(uid, pw)
        gc = Client()
        gc.login(gone, gpw)
        u = self.dir_user(d["id"], uid)
        ug = self.dir_user(d["id"], gone)
        self.assertEqual(self.user_groups(u["id"]), [g["name"]])
        self.d.remove_member(gdn, dn)
        self.d.delete(gdn_user)
        self.assertTrue(wait_until(lambda: self.user_groups(u["id"]) == [], timeout=20, step=0.3),
                        "the sync did not remove the membership")
        self.assertTrue(wait_until(lambda: self.dir_user(d["id"], gone)["disabled_in_directory"], timeout=20, step=0.3))
        self.assertEqual(self.user_groups(ug["id"]), [])
        self.assertJsonError(gc.get("/api/v1/auth/me"), 401, "unauthenticated")  # his session ended
        self.assertEqual(c.get("/api/v1/auth/me").status, 200)  # the other's did not
        acts = [(a["actor_name"], a["action"]) for a in self.audit(target_type="user", target_id=u["id"])]
        self.assertIn(("system", "directory.user_sync"), acts)
        got = self.admin.get("/api/v1/directories/%d" % d["id"]).json
        self.assertIsNotNone(got["sync"]["last_at"])
        self.assertEqual(got["sync"]["last_error"], "")

    def test_a_wrong_filter_disables_nobody(self):
        uid, pw, _ = self.person()
        d = self.directory(openldap_settings(self.d))
        Client().login(uid, pw)
        r = self.admin.patch("/api/v1/directories/%d" % d["id"],
                             {"user_filter": "(&(objectClass=inetOrgPerson)(mail=%s))", "sync_interval": 1})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.admin.post("/api/v1/directories/%d/sync" % d["id"]).status, 202)
        self.assertTrue(wait_until(lambda: "nobody was disabled" in
                                   self.admin.get("/api/v1/directories/%d" % d["id"]).json["sync"]["last_error"],
                                   timeout=20, step=0.3))
        self.assertFalse(self.dir_user(d["id"], uid)["disabled_in_directory"])

    def test_deleting_the_directory_ends_its_sessions(self):
        uid, pw, _ = self.person()
        r = self.admin.post("/api/v1/directories", openldap_settings(self.d))
        self.assertEqual(r.status, 201)
        c = Client()
        c.login(uid, pw)
        self.assertEqual(self.admin.delete("/api/v1/directories/%d" % r.json["id"]).status, 204)
        self.assertJsonError(c.get("/api/v1/auth/me"), 401, "unauthenticated")
        self.assertJsonError(Client().login(uid, pw, expect=None), 401, "bad_credentials")
        self.assertEqual(len(self.audit(action="directory.delete", target_id=r.json["id"])), 1)


def make_pool(admin):
    """A pool of nothing (min 0) that entitlements can point at: image, spec, module."""
    store = os.path.join(admin.var, "images")
    os.makedirs(store, exist_ok=True)
    name = unique("dimg") + ".qcow2"
    make_golden_qcow2(os.path.join(store, name))
    img = admin.post("/api/v1/images", {"name": unique("dimg")}).json
    v = admin.post("/api/v1/images/%d/versions" % img["id"], {"path": name}).json
    assert admin.post("/api/v1/image-versions/%d/publish" % v["id"]).status == 200
    spec = admin.post("/api/v1/specs", {"name": unique("dspec"), "vcpus": 1, "memory_mib": 256, "disk_gib": 1,
                                        "nic_type": "virtio"}).json
    bb = admin.post("/api/v1/building-blocks", {"name": unique("dbb")}).json
    mod = admin.post("/api/v1/building-blocks/%d/modules" % bb["id"], {"name": "m1"}).json
    r = admin.post("/api/v1/pools", {"name": unique("dpool"), "type": "floating", "image_id": img["id"],
                                     "spec_id": spec["id"], "min_size": 0, "max_size": 1,
                                     "name_pattern": "d-{n:3}", "modules": [mod["id"]]})
    assert r.status == 201, r
    return r.json["id"]


if __name__ == "__main__":
    unittest.main()

"""User administration: /api/v1/users (admin role only)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import AdminTestCase, Client, make_user, quote, unique  # noqa: E402

USERS = "/api/v1/users"
USER_KEYS = {"id", "username", "display_name", "email", "role", "disabled", "last_login_at", "created_at",
             "source", "effective_role"}


def new_password():
    return "pw-" + unique("secret") + "-long"


class UsersBase(AdminTestCase):
    def list_users(self, **params):
        qs = "&".join("%s=%s" % (k, quote(str(v))) for k, v in params.items())
        r = self.admin.get(USERS + ("?" + qs if qs else ""))
        self.assertEqual(r.status, 200, r)
        return r.json

    def usernames(self, **params):
        return [u["username"] for u in self.list_users(**params)["items"]]

    def user_client(self, username, password):
        c = Client()
        c.login(username, password)
        return c


class CreateUser(UsersBase):
    def test_create_returns_201_location_and_fields(self):
        name = unique("create")
        pw = new_password()
        r = self.admin.post(USERS, {"username": name, "password": pw, "display_name": "Ada Lovelace",
                                    "email": "ada@example.org", "role": "operator"})
        self.assertEqual(r.status, 201, r)
        u = r.json
        self.assertEqual(set(u), USER_KEYS)
        self.assertIsInstance(u["id"], int)
        self.assertGreater(u["id"], 0)
        self.assertEqual(r.header("location"), "%s/%d" % (USERS, u["id"]))
        self.assertEqual(u["username"], name)
        self.assertEqual(u["display_name"], "Ada Lovelace")
        self.assertEqual(u["email"], "ada@example.org")
        self.assertEqual(u["role"], "operator")
        self.assertIs(u["disabled"], False)
        self.assertIsNone(u["last_login_at"])
        self.assertRegex(u["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertNotIn(pw, r.body)
        self.assertNotIn("password", r.body)
        # the Location names the new user
        g = self.admin.get(r.header("location"))
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.json["username"], name)
        self.assertNotIn(pw, g.body)
        self.assertNotIn("password", g.body)

    def test_defaults_role_user_and_empty_names(self):
        r = self.admin.post(USERS, {"username": unique("dflt"), "password": new_password()})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["role"], "user")
        self.assertEqual(r.json["display_name"], "")
        self.assertEqual(r.json["email"], "")

    def test_created_user_can_log_in(self):
        u, pw = make_user(self.admin)
        c = Client()
        r = c.login(u["username"], pw)
        self.assertEqual(r.json["user"]["id"], u["id"])
        self.assertEqual(r.json["user"]["role"], "user")
        self.assertIsNotNone(self.admin.get("%s/%d" % (USERS, u["id"])).json["last_login_at"])

    def test_username_allows_letters_digits_and_dot_underscore_at_dash(self):
        name = unique("Ok.name_x") + "@corp-1"
        r = self.admin.post(USERS, {"username": name, "password": new_password()})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["username"], name)

    def test_duplicate_username_409(self):
        u, _ = make_user(self.admin)
        r = self.admin.post(USERS, {"username": u["username"], "password": new_password()})
        self.assertJsonError(r, 409, "conflict")
        self.assertEqual(self.list_users(q=u["username"])["total"], 1)

    def assertRejected(self, body, status=422, code="validation_failed"):
        r = self.admin.post(USERS, body)
        self.assertJsonError(r, status, code)
        name = body.get("username") if isinstance(body, dict) else None
        if isinstance(name, str) and name:
            self.assertEqual(self.list_users(q=name)["total"], 0, "rejected user was created")
        return r

    def test_bad_username_characters_422(self):
        with self.cases() as case:
            for bad in ("has space", "semi;colon", "slash/", "quote'", "percent%", "uml\u00e4ut", "star*"):
                with case(username=bad):
                    self.assertRejected({"username": unique("bad") + bad, "password": new_password()})

    def test_empty_and_too_long_username_422(self):
        self.assertRejected({"username": "", "password": new_password()})
        self.assertRejected({"username": unique("long") + "x" * 64, "password": new_password()})

    def test_password_shorter_than_12_422(self):
        r = self.assertRejected({"username": unique("shortpw"), "password": "x" * 11})
        self.assertIn("12", r.json["error"]["message"])

    def test_password_of_exactly_12_accepted(self):
        r = self.admin.post(USERS, {"username": unique("pw12"), "password": "abcdefghijkl"})
        self.assertEqual(r.status, 201, r)

    def test_unknown_field_422(self):
        self.assertRejected({"username": unique("unk"), "password": new_password(), "is_admin": True})

    def test_wrong_types_422(self):
        with self.cases() as case:
            for field, value in (("role", 5), ("display_name", ["x"]), ("email", {"a": 1}),
                                 ("password", 123456789012345), ("username", 42)):
                with case(field=field):
                    body = {"username": unique("type"), "password": new_password()}
                    body[field] = value
                    self.assertRejected(body)

    def test_role_outside_choices_422(self):
        with self.cases() as case:
            for role in ("superuser", "Admin", "anon", ""):
                with case(role=role):
                    self.assertRejected({"username": unique("role"), "password": new_password(), "role": role})

    def test_missing_password_422(self):
        self.assertRejected({"username": unique("nopw")})

    def test_missing_username_422(self):
        self.assertRejected({"password": new_password()})

    def test_malformed_json_400(self):
        r = self.admin.post(USERS, raw=b'{"username": "x", "password": ',
                            headers={"Content-Type": "application/json"})
        self.assertJsonError(r, 400, "bad_json")

    def test_json_that_is_not_an_object_400(self):
        r = self.admin.post(USERS, raw=b'["username", "password"]',
                            headers={"Content-Type": "application/json"})
        self.assertJsonError(r, 400, "bad_json")

    def test_missing_body_400(self):
        r = self.admin.post(USERS)
        self.assertJsonError(r, 400, "bad_json")

    def test_wrong_content_type_415(self):
        name = unique("ctype")
        body = ('{"username": "%s", "password": "%s"}' % (name, new_password())).encode()
        with self.cases() as case:
            for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
                with case(content_type=ctype):
                    r = self.admin.post(USERS, raw=body, headers={"Content-Type": ctype})
                    self.assertJsonError(r, 415, "unsupported_media_type")
        self.assertEqual(self.list_users(q=name)["total"], 0)

    def test_content_type_with_charset_accepted(self):
        name = unique("charset")
        body = ('{"username": "%s", "password": "%s"}' % (name, new_password())).encode()
        r = self.admin.post(USERS, raw=body, headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(r.status, 201, r)


class GetUser(UsersBase):
    def test_get_user_with_groups(self):
        u, pw = make_user(self.admin, display_name="With Groups")
        r = self.admin.get("%s/%d" % (USERS, u["id"]))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["groups"], [])
        names = sorted([unique("gb"), unique("ga")])
        gids = {}
        for n in names:
            g = self.admin.post("/api/v1/groups", {"name": n})
            self.assertEqual(g.status, 201, g)
            gids[n] = g.json["id"]
            m = self.admin.put("/api/v1/groups/%d/members/%d" % (g.json["id"], u["id"]))
            self.assertEqual(m.status, 204, m)
        r = self.admin.get("%s/%d" % (USERS, u["id"]))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), USER_KEYS | {"groups"})
        self.assertEqual(r.json["id"], u["id"])
        self.assertEqual(r.json["username"], u["username"])
        self.assertEqual(r.json["display_name"], "With Groups")
        self.assertEqual(r.json["groups"], [{"id": gids[n], "name": n} for n in names])
        self.assertNotIn(pw, r.body)

    def test_nonexistent_id_404(self):
        with self.cases() as case:
            for uid in ("999999999", "9223372036854775807", "99999999999999999999999"):
                with case(id=uid):
                    self.assertJsonError(self.admin.get("%s/%s" % (USERS, uid)), 404, "not_found")

    def test_non_numeric_and_non_canonical_id_404(self):
        u, _ = make_user(self.admin)
        with self.cases() as case:
            for uid in ("abc", "1x", "0", "-1", "+%d" % u["id"], "0%d" % u["id"], "%d.0" % u["id"]):
                with case(id=uid):
                    self.assertJsonError(self.admin.get("%s/%s" % (USERS, quote(uid))), 404, "not_found")

    def test_patch_and_password_on_missing_user_404(self):
        self.assertJsonError(self.admin.patch(USERS + "/999999999", {"display_name": "x"}), 404, "not_found")
        self.assertJsonError(self.admin.patch(USERS + "/abc", {"display_name": "x"}), 404, "not_found")
        self.assertJsonError(self.admin.post(USERS + "/999999999/password", {"password": new_password()}),
                             404, "not_found")
        self.assertJsonError(self.admin.post(USERS + "/abc/password", {"password": new_password()}),
                             404, "not_found")


class ListUsers(UsersBase):
    def test_paging_with_limit_and_next_after(self):
        prefix = unique("page") + "x"
        ids = []
        for i in range(7):
            r = self.admin.post(USERS, {"username": "%s%d" % (prefix, i), "password": new_password()})
            self.assertEqual(r.status, 201, r)
            ids.append(r.json["id"])
        seen, after, pages = [], None, 0
        while True:
            params = {"q": prefix, "limit": 3}
            if after is not None:
                params["after"] = after
            page = self.list_users(**params)
            pages += 1
            self.assertLessEqual(len(page["items"]), 3)
            self.assertEqual(page["total"], 7)
            seen.extend(u["id"] for u in page["items"])
            after = page["next_after"]
            if after is None:
                break
            self.assertEqual(after, page["items"][-1]["id"])
            self.assertLess(pages, 10, "paging does not end")
        self.assertEqual(seen, sorted(ids))
        self.assertEqual(len(set(seen)), 7)
        self.assertEqual(pages, 3)

    def test_default_list_is_in_id_order_and_has_total(self):
        page = self.list_users(limit=500)
        got = [u["id"] for u in page["items"]]
        self.assertEqual(got, sorted(got))
        self.assertGreaterEqual(page["total"], len(got))
        self.assertIn("admin", [u["username"] for u in page["items"]])
        for u in page["items"]:
            self.assertEqual(set(u), USER_KEYS)

    def test_q_prefix_matches_username_and_display_name(self):
        prefix = unique("qp") + "x"
        a, _ = make_user(self.admin, username=prefix + "one")
        b, _ = make_user(self.admin, username=unique("other"), display_name=prefix + " Display")
        make_user(self.admin, username=unique("zz") + prefix)  # contains, does not start with
        page = self.list_users(q=prefix)
        self.assertEqual(sorted(u["id"] for u in page["items"]), sorted([a["id"], b["id"]]))
        self.assertEqual(page["total"], 2)

    def test_q_percent_and_underscore_are_literal(self):
        base = unique("lit") + "x"
        under, _ = make_user(self.admin, username=base + "_a")
        make_user(self.admin, username=base + "Za")
        pct, _ = make_user(self.admin, username=unique("pctuser"), display_name=base + "%d")
        make_user(self.admin, username=unique("pctother"), display_name=base + "Qd")
        page = self.list_users(q=base + "_")
        self.assertEqual([u["id"] for u in page["items"]], [under["id"]])
        self.assertEqual(page["total"], 1)
        page = self.list_users(q=base + "%")
        self.assertEqual([u["id"] for u in page["items"]], [pct["id"]])
        self.assertEqual(page["total"], 1)
        self.assertEqual(self.list_users(q="%")["items"], [])
        self.assertEqual(self.list_users(q="_")["items"], [])
        self.assertEqual(self.list_users(q=base + "\\")["items"], [])

    def test_role_filter(self):
        prefix = unique("rf") + "x"
        made = {}
        for role in ("user", "operator", "admin"):
            u, _ = make_user(self.admin, role=role, username=prefix + role)
            made[role] = u["id"]
        with self.cases() as case:
            for role in ("user", "operator", "admin"):
                with case(role=role):
                    page = self.list_users(q=prefix, role=role)
                    self.assertEqual([u["id"] for u in page["items"]], [made[role]])
                    self.assertEqual(page["total"], 1)
        everyone = self.list_users(role="admin", limit=500)["items"]
        self.assertTrue(all(u["role"] == "admin" for u in everyone))
        self.assertIn("admin", [u["username"] for u in everyone])

    def test_bad_role_filter_422(self):
        with self.cases() as case:
            for role in ("root", "anon", "Admin"):
                with case(role=role):
                    self.assertJsonError(self.admin.get(USERS + "?role=" + role), 422, "validation_failed")

    def test_disabled_filter(self):
        prefix = unique("df") + "x"
        on, _ = make_user(self.admin, username=prefix + "on")
        off, _ = make_user(self.admin, username=prefix + "off")
        r = self.admin.patch("%s/%d" % (USERS, off["id"]), {"disabled": True})
        self.assertEqual(r.status, 200, r)
        with self.cases() as case:
            for value, expect in (("true", off), ("1", off), ("false", on), ("0", on)):
                with case(disabled=value):
                    page = self.list_users(q=prefix, disabled=value)
                    self.assertEqual([u["id"] for u in page["items"]], [expect["id"]])
                    self.assertEqual(page["total"], 1)
        self.assertEqual(self.list_users(q=prefix)["total"], 2)

    def test_bad_disabled_filter_422(self):
        self.assertJsonError(self.admin.get(USERS + "?disabled=maybe"), 422, "validation_failed")

    def test_bad_limit_or_after_422(self):
        with self.cases() as case:
            for qs in ("limit=abc", "limit=100000", "limit=501", "limit=-1", "limit=3x", "limit=1.5",
                       "after=abc", "after=-5"):
                with case(query=qs):
                    self.assertJsonError(self.admin.get(USERS + "?" + qs), 422, "validation_failed")

    def test_limit_bounds_accepted(self):
        one = self.list_users(limit=1)
        self.assertEqual(len(one["items"]), 1)
        self.assertEqual(one["next_after"], one["items"][0]["id"])
        page = self.list_users(limit=500)
        self.assertEqual(page["next_after"] is None, len(page["items"]) < 500)


class UpdateUser(UsersBase):
    def test_patch_display_name_email_role(self):
        u, _ = make_user(self.admin, display_name="Before", email="before@example.org")
        url = "%s/%d" % (USERS, u["id"])
        r = self.admin.patch(url, {"display_name": "After Name"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["display_name"], "After Name")
        self.assertEqual(r.json["email"], "before@example.org")  # untouched
        self.assertEqual(r.json["role"], "user")
        r = self.admin.patch(url, {"email": "after@example.org", "role": "operator"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["email"], "after@example.org")
        self.assertEqual(r.json["role"], "operator")
        self.assertEqual(r.json["display_name"], "After Name")
        g = self.admin.get(url).json
        self.assertEqual((g["display_name"], g["email"], g["role"], g["disabled"]),
                         ("After Name", "after@example.org", "operator", False))
        self.assertEqual(g["username"], u["username"])

    def test_patch_can_clear_display_name(self):
        u, _ = make_user(self.admin, display_name="Something")
        r = self.admin.patch("%s/%d" % (USERS, u["id"]), {"display_name": ""})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["display_name"], "")

    def test_role_change_takes_effect_on_permissions(self):
        u, pw = make_user(self.admin)
        c = self.user_client(u["username"], pw)
        self.assertJsonError(c.get(USERS), 403, "forbidden")
        r = self.admin.patch("%s/%d" % (USERS, u["id"]), {"role": "admin"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(c.get(USERS).status, 200)

    def test_patch_validation_422(self):
        u, _ = make_user(self.admin)
        url = "%s/%d" % (USERS, u["id"])
        with self.cases() as case:
            for body in ({"role": "root"}, {"username": "renamed"}, {"password": new_password()},
                         {"disabled": "yes"}, {"disabled": 1}, {"display_name": 5}, {"email": None}):
                with case(body=body):
                    self.assertJsonError(self.admin.patch(url, body), 422, "validation_failed")
        g = self.admin.get(url).json
        self.assertEqual((g["username"], g["role"], g["disabled"]), (u["username"], "user", False))

    def test_disable_revokes_session_and_blocks_login(self):
        u, pw = make_user(self.admin)
        c = self.user_client(u["username"], pw)
        self.assertEqual(c.get("/api/v1/auth/me").status, 200)
        r = self.admin.patch("%s/%d" % (USERS, u["id"]), {"disabled": True})
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json["disabled"], True)
        self.assertJsonError(c.get("/api/v1/auth/me"), 401, "unauthenticated")
        disabled_login = Client().login(u["username"], pw, expect=None)
        self.assertJsonError(disabled_login, 401, "bad_credentials")
        wrong_pw = Client().login(u["username"], pw + "-wrong", expect=None)
        self.assertJsonError(wrong_pw, 401, "bad_credentials")
        # the same answer as a wrong password: nothing tells that the account exists but is disabled
        self.assertEqual(disabled_login.json["error"]["message"], wrong_pw.json["error"]["message"])

    def test_disabled_user_refresh_token_is_refused(self):
        u, pw = make_user(self.admin)
        c = self.user_client(u["username"], pw)
        self.assertEqual(self.admin.patch("%s/%d" % (USERS, u["id"]), {"disabled": True}).status, 200)
        c.csrf = c.cookies.get("__Host-bic_csrf")
        r = c.post("/api/v1/auth/refresh")
        self.assertEqual(r.status, 401, r)
        self.assertJsonError(c.get("/api/v1/auth/me"), 401, "unauthenticated")

    def test_reenable_allows_login_again(self):
        u, pw = make_user(self.admin)
        url = "%s/%d" % (USERS, u["id"])
        self.assertEqual(self.admin.patch(url, {"disabled": True}).status, 200)
        self.assertJsonError(Client().login(u["username"], pw, expect=None), 401, "bad_credentials")
        r = self.admin.patch(url, {"disabled": False})
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json["disabled"], False)
        c = Client()
        c.login(u["username"], pw)
        self.assertEqual(c.get("/api/v1/auth/me").json["user"]["username"], u["username"])

    def test_admin_cannot_disable_or_demote_itself(self):
        # a throwaway admin, so that a faulty server cannot lock the shared admin out
        me, pw = make_user(self.admin, role="admin")
        c = self.user_client(me["username"], pw)
        url = "%s/%d" % (USERS, me["id"])
        with self.cases() as case:
            for body in ({"disabled": True}, {"role": "operator"}, {"role": "user"},
                         {"role": "user", "disabled": True}):
                with case(body=body):
                    self.assertJsonError(c.patch(url, body), 409, "conflict")
        g = self.admin.get(url).json
        self.assertEqual((g["role"], g["disabled"]), ("admin", False))
        self.assertEqual(c.get("/api/v1/auth/me").status, 200)
        # harmless self-updates still work
        r = c.patch(url, {"display_name": "Still Me", "role": "admin", "disabled": False})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["display_name"], "Still Me")

    def test_admin_can_disable_another_admin(self):
        other, pw = make_user(self.admin, role="admin")
        r = self.admin.patch("%s/%d" % (USERS, other["id"]), {"disabled": True})
        self.assertEqual(r.status, 200, r)
        self.assertJsonError(Client().login(other["username"], pw, expect=None), 401, "bad_credentials")


class ResetPassword(UsersBase):
    def test_reset_password(self):
        u, old = make_user(self.admin)
        c1 = self.user_client(u["username"], old)
        c2 = self.user_client(u["username"], old)
        self.assertEqual(c1.get("/api/v1/auth/me").status, 200)
        new = new_password()
        r = self.admin.post("%s/%d/password" % (USERS, u["id"]), {"password": new})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, "")
        # every existing session of that user ends
        self.assertJsonError(c1.get("/api/v1/auth/me"), 401, "unauthenticated")
        self.assertJsonError(c2.get("/api/v1/auth/me"), 401, "unauthenticated")
        c2.csrf = c2.cookies.get("__Host-bic_csrf")
        self.assertEqual(c2.post("/api/v1/auth/refresh").status, 401)
        # old password fails, new one works
        self.assertJsonError(Client().login(u["username"], old, expect=None), 401, "bad_credentials")
        c3 = Client()
        c3.login(u["username"], new)
        self.assertEqual(c3.get("/api/v1/auth/me").status, 200)
        # the admin's own session is untouched
        self.assertEqual(self.admin.get(USERS + "?limit=1").status, 200)

    def test_reset_validation(self):
        u, old = make_user(self.admin)
        url = "%s/%d/password" % (USERS, u["id"])
        with self.cases() as case:
            for body in ({"password": "x" * 11}, {}, {"password": 123456789012345},
                         {"password": new_password(), "extra": 1}):
                with case(body=body):
                    self.assertJsonError(self.admin.post(url, body), 422, "validation_failed")
        Client().login(u["username"], old)  # unchanged


class NonAdmin(UsersBase):
    def routes(self, target):
        url = "%s/%d" % (USERS, target)
        return [
            ("GET", USERS, None),
            ("GET", USERS + "?q=a", None),
            ("POST", USERS, {"username": unique("sneaky"), "password": new_password(), "role": "admin"}),
            ("GET", url, None),
            ("PATCH", url, {"role": "admin"}),
            ("PATCH", url, {"disabled": True}),
            ("POST", url + "/password", {"password": new_password()}),
        ]

    def check_forbidden(self, role):
        me, pw = make_user(self.admin, role=role)
        other, other_pw = make_user(self.admin)
        c = self.user_client(me["username"], pw)
        with self.cases() as case:
            for target in (me["id"], other["id"]):
                for method, path, body in self.routes(target):
                    with case(role=role, method=method, path=path, body=body):
                        self.assertJsonError(c.request(method, path, body=body), 403, "forbidden")
        # nothing changed
        for u in (me, other):
            g = self.admin.get("%s/%d" % (USERS, u["id"])).json
            self.assertEqual((g["role"], g["disabled"]), (u["role"], False))
        Client().login(other["username"], other_pw)
        self.assertEqual(self.list_users(q="sneaky")["total"], 0)

    def test_role_user_forbidden_everywhere(self):
        self.check_forbidden("user")

    def test_role_operator_forbidden_everywhere(self):
        self.check_forbidden("operator")

    def test_anonymous_unauthenticated(self):
        c = Client()
        self.assertJsonError(c.get(USERS), 401, "unauthenticated")
        self.assertJsonError(c.get(USERS + "/1"), 401, "unauthenticated")


if __name__ == "__main__":
    unittest.main()

"""The audit log: GET /api/v1/audit, and what admin actions and sign-ins write to it."""
import datetime
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import AdminTestCase, Client, make_user, quote, unique  # noqa: E402

AUDIT = "/api/v1/audit"
ENTRY_KEYS = {"id", "at", "actor_name", "action", "target_type", "target_id", "success", "summary", "source_ip"}
TIME_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


class AuditBase(AdminTestCase):
    def audit_raw(self, client=None, **params):
        qs = "&".join("%s=%s" % (k, quote(str(v))) for k, v in params.items())
        return (client or self.admin).get(AUDIT + ("?" + qs if qs else ""))

    def audit(self, **params):
        r = self.audit_raw(**params)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), {"items", "next_before"})
        ids = [e["id"] for e in r.json["items"]]
        self.assertEqual(ids, sorted(ids, reverse=True), "entries are not newest first")
        return r.json

    def entries_for(self, target_type, target_id, **params):
        return self.audit(target_type=target_type, target_id=str(target_id), **params)["items"]

    def only(self, entries, action):
        found = [e for e in entries if e["action"] == action]
        self.assertEqual(len(found), 1, "expected one %s entry in %r" % (action, entries))
        return found[0]

    def assertAdminEntry(self, e, action, target_type, target_id):
        self.assertEqual(set(e), ENTRY_KEYS)
        self.assertEqual(e["action"], action)
        self.assertEqual(e["actor_name"], "admin")
        self.assertEqual(e["target_type"], target_type)
        self.assertEqual(e["target_id"], str(target_id))
        self.assertIs(e["success"], True)
        self.assertEqual(e["source_ip"], "127.0.0.1")
        self.assertRegex(e["at"], TIME_RE)
        self.assertIsInstance(e["id"], int)
        self.assertIsInstance(e["summary"], dict)


class AdminActions(AuditBase):
    def test_user_create(self):
        u, _ = make_user(self.admin, role="operator", display_name="Audited Person")
        e = self.only(self.entries_for("user", u["id"]), "user.create")
        self.assertAdminEntry(e, "user.create", "user", u["id"])
        self.assertEqual(e["summary"], {"username": u["username"], "role": "operator",
                                        "display_name": "Audited Person"})

    def test_user_update_records_changes(self):
        u, _ = make_user(self.admin, display_name="Old Name")
        r = self.admin.patch("/api/v1/users/%d" % u["id"], {"role": "operator", "display_name": "New Name",
                                                             "email": ""})
        self.assertEqual(r.status, 200, r)
        e = self.only(self.entries_for("user", u["id"]), "user.update")
        self.assertAdminEntry(e, "user.update", "user", u["id"])
        self.assertEqual(e["summary"]["username"], u["username"])
        self.assertEqual(e["summary"]["changes"], {
            "role": {"from": "user", "to": "operator"},
            "display_name": {"from": "Old Name", "to": "New Name"},
        })  # email was sent but did not change, so it is not a change

    def test_user_disable_and_enable(self):
        u, _ = make_user(self.admin)
        url = "/api/v1/users/%d" % u["id"]
        self.assertEqual(self.admin.patch(url, {"disabled": True}).status, 200)
        e = self.only(self.entries_for("user", u["id"]), "user.disable")
        self.assertAdminEntry(e, "user.disable", "user", u["id"])
        self.assertEqual(e["summary"]["changes"], {"disabled": {"from": "false", "to": "true"}})
        self.assertEqual(self.admin.patch(url, {"disabled": False}).status, 200)
        entries = self.entries_for("user", u["id"])
        e2 = self.only(entries, "user.enable")
        self.assertAdminEntry(e2, "user.enable", "user", u["id"])
        self.assertEqual(e2["summary"]["changes"], {"disabled": {"from": "true", "to": "false"}})
        self.assertGreater(e2["id"], e["id"])
        self.assertEqual([x["action"] for x in entries], ["user.enable", "user.disable", "user.create"])

    def test_password_reset(self):
        u, _ = make_user(self.admin)
        pw = "pw-" + unique("reset") + "-long"
        self.assertEqual(self.admin.post("/api/v1/users/%d/password" % u["id"], {"password": pw}).status, 204)
        e = self.only(self.entries_for("user", u["id"]), "user.password_reset")
        self.assertAdminEntry(e, "user.password_reset", "user", u["id"])
        self.assertEqual(e["summary"], {"username": u["username"]})
        self.assertNotIn(pw, json.dumps(e))

    def test_failed_change_is_not_audited_as_success(self):
        u, _ = make_user(self.admin)
        before = self.entries_for("user", u["id"])
        r = self.admin.patch("/api/v1/users/%d" % u["id"], {"role": "root"})
        self.assertEqual(r.status, 422, r)
        self.assertEqual(self.entries_for("user", u["id"]), before)

    def test_group_create_update_delete(self):
        name = unique("agrp")
        r = self.admin.post("/api/v1/groups", {"name": name, "description": "audited"})
        self.assertEqual(r.status, 201, r)
        gid = r.json["id"]
        e = self.only(self.entries_for("group", gid), "group.create")
        self.assertAdminEntry(e, "group.create", "group", gid)
        self.assertEqual(e["summary"], {"name": name, "description": "audited"})
        new = unique("agrp_renamed")
        self.assertEqual(self.admin.patch("/api/v1/groups/%d" % gid, {"name": new}).status, 200)
        e = self.only(self.entries_for("group", gid), "group.update")
        self.assertAdminEntry(e, "group.update", "group", gid)
        self.assertEqual(e["summary"]["name_before"], name)
        self.assertEqual(e["summary"]["name"], new)
        self.assertEqual(self.admin.delete("/api/v1/groups/%d" % gid).status, 204)
        e = self.only(self.entries_for("group", gid), "group.delete")
        self.assertAdminEntry(e, "group.delete", "group", gid)
        self.assertEqual(e["summary"]["name"], new)

    def test_group_role_change_records_before_and_after(self):
        r = self.admin.post("/api/v1/groups", {"name": unique("arole"), "role": "operator"})
        self.assertEqual(r.status, 201, r)
        gid = r.json["id"]
        e = self.only(self.entries_for("group", gid), "group.create")
        self.assertEqual(e["summary"]["role"], "operator")
        self.assertEqual(self.admin.patch("/api/v1/groups/%d" % gid, {"role": None}).status, 200)
        e = self.only(self.entries_for("group", gid), "group.update")
        self.assertEqual(e["summary"]["role_before"], "operator")
        self.assertNotIn("role", e["summary"])  # no role any more: the key is left out

    def test_member_add_and_remove(self):
        r = self.admin.post("/api/v1/groups", {"name": unique("amem")})
        self.assertEqual(r.status, 201, r)
        g = r.json
        u, _ = make_user(self.admin)
        path = "/api/v1/groups/%d/members/%d" % (g["id"], u["id"])
        self.assertEqual(self.admin.put(path).status, 204)
        self.assertEqual(self.admin.put(path).status, 204)  # no change: no second entry
        e = self.only(self.entries_for("group", g["id"]), "group.member_add")
        self.assertAdminEntry(e, "group.member_add", "group", g["id"])
        self.assertEqual(e["summary"], {"group": g["name"], "user_id": u["id"], "username": u["username"]})
        self.assertEqual(self.admin.delete(path).status, 204)
        e = self.only(self.entries_for("group", g["id"]), "group.member_remove")
        self.assertAdminEntry(e, "group.member_remove", "group", g["id"])
        self.assertEqual(e["summary"]["user_id"], u["id"])


class Logins(AuditBase):
    def test_failed_login_recorded(self):
        u, pw = make_user(self.admin)
        r = Client().login(u["username"], pw + "-wrong", expect=401)
        self.assertEqual(r.json["error"]["code"], "bad_credentials")
        entries = self.audit(action="auth.login", actor=u["username"])["items"]
        self.assertEqual(len(entries), 1, entries)
        e = entries[0]
        self.assertEqual(set(e), ENTRY_KEYS)
        self.assertIs(e["success"], False)
        self.assertEqual(e["actor_name"], u["username"])
        self.assertEqual((e["target_type"], e["target_id"]), ("user", u["username"]))
        self.assertEqual(e["source_ip"], "127.0.0.1")
        self.assertTrue(e["summary"].get("reason"))

    def test_failed_login_for_unknown_user_recorded(self):
        name = unique("ghost")
        Client().login(name, "pw-nobody-knows-this", expect=401)
        entries = self.audit(action="auth.login", actor=name)["items"]
        self.assertEqual(len(entries), 1, entries)
        self.assertIs(entries[0]["success"], False)
        self.assertEqual(entries[0]["target_id"], name)

    def test_successful_login_recorded(self):
        u, pw = make_user(self.admin)
        Client().login(u["username"], pw)
        entries = self.audit(action="auth.login", actor=u["username"])["items"]
        self.assertEqual(len(entries), 1, entries)
        self.assertIs(entries[0]["success"], True)
        self.assertEqual(entries[0]["source_ip"], "127.0.0.1")


class Filters(AuditBase):
    def test_action_filter(self):
        u, _ = make_user(self.admin)
        self.assertEqual(self.admin.patch("/api/v1/users/%d" % u["id"], {"disabled": True}).status, 200)
        items = self.audit(action="user.disable", limit=1000)["items"]
        self.assertTrue(items)
        self.assertTrue(all(e["action"] == "user.disable" for e in items))
        self.assertIn(str(u["id"]), [e["target_id"] for e in items])
        self.assertEqual(self.audit(action="no.such.action")["items"], [])

    def test_actor_filter(self):
        boss, pw = make_user(self.admin, role="admin")
        c = Client()
        c.login(boss["username"], pw)
        made, _ = make_user(c)
        items = self.audit(actor=boss["username"])["items"]
        self.assertEqual([(e["action"], e["actor_name"]) for e in items],
                         [("user.create", boss["username"]), ("auth.login", boss["username"])])
        self.assertEqual(items[0]["target_id"], str(made["id"]))
        # the shared admin's entries are not among them, and vice versa
        admin_items = self.audit(actor="admin", target_type="user", target_id=str(boss["id"]))["items"]
        self.assertEqual([e["action"] for e in admin_items], ["user.create"])

    def test_target_filter(self):
        a, _ = make_user(self.admin)
        b, _ = make_user(self.admin)
        self.assertEqual(self.admin.patch("/api/v1/users/%d" % a["id"], {"role": "operator"}).status, 200)
        items = self.audit(target_type="user", target_id=str(a["id"]))["items"]
        self.assertEqual([e["action"] for e in items], ["user.update", "user.create"])
        self.assertTrue(all(e["target_type"] == "user" and e["target_id"] == str(a["id"]) for e in items))
        items = self.audit(target_type="user", target_id=str(b["id"]))["items"]
        self.assertEqual([e["action"] for e in items], ["user.create"])
        # target_id alone is not confused with another type's id
        r = self.admin.post("/api/v1/groups", {"name": unique("tg")})
        self.assertEqual(r.status, 201, r)
        items = self.audit(target_type="group", limit=1000)["items"]
        self.assertTrue(all(e["target_type"] == "group" for e in items))
        self.assertIn(str(r.json["id"]), [e["target_id"] for e in items])

    def test_filters_combine(self):
        u, _ = make_user(self.admin)
        self.assertEqual(self.admin.patch("/api/v1/users/%d" % u["id"], {"email": "x@example.org"}).status, 200)
        items = self.audit(action="user.update", actor="admin", target_type="user", target_id=str(u["id"]))["items"]
        self.assertEqual(len(items), 1)
        self.assertEqual(self.audit(action="user.update", actor="somebody-else", target_type="user",
                                    target_id=str(u["id"]))["items"], [])


class Paging(AuditBase):
    def test_limit_and_next_before(self):
        boss, pw = make_user(self.admin, role="admin")
        c = Client()
        c.login(boss["username"], pw)
        for _ in range(7):
            make_user(c)
        everything = self.audit(actor=boss["username"], limit=100)
        self.assertIsNone(everything["next_before"])
        all_ids = [e["id"] for e in everything["items"]]
        self.assertEqual(len(all_ids), 8)  # one sign-in, seven creations
        seen, before, pages = [], None, 0
        while True:
            params = {"actor": boss["username"], "limit": 3}
            if before is not None:
                params["before"] = before
            page = self.audit(**params)
            pages += 1
            ids = [e["id"] for e in page["items"]]
            self.assertLessEqual(len(ids), 3)
            if seen and ids:
                self.assertLess(max(ids), min(seen), "a later page is not older")
            self.assertFalse(set(ids) & set(seen), "pages overlap")
            seen.extend(ids)
            before = page["next_before"]
            if before is None:
                break
            self.assertEqual(before, ids[-1])
            self.assertLess(pages, 10, "paging does not end")
        self.assertEqual(seen, all_ids)
        self.assertEqual(pages, 3)

    def test_before_returns_only_older(self):
        u, _ = make_user(self.admin)
        self.assertEqual(self.admin.patch("/api/v1/users/%d" % u["id"], {"role": "operator"}).status, 200)
        items = self.entries_for("user", u["id"])
        self.assertEqual(len(items), 2)
        newer, older = items
        page = self.entries_for("user", u["id"], before=newer["id"])
        self.assertEqual(page, [older])
        self.assertEqual(self.entries_for("user", u["id"], before=older["id"]), [])

    def test_default_limit_is_bounded(self):
        page = self.audit()
        self.assertLessEqual(len(page["items"]), 100)
        self.assertEqual(len(self.audit(limit=1)["items"]), 1)

    def test_bad_limit_or_before_422(self):
        with self.cases() as case:
            for qs in ("limit=abc", "limit=100000", "limit=1001", "limit=-1", "before=abc", "before=-1",
                       "before=1.5"):
                with case(query=qs):
                    self.assertJsonError(self.admin.get(AUDIT + "?" + qs), 422, "validation_failed")


class TimeRange(AuditBase):
    def entry(self):
        u, _ = make_user(self.admin)
        items = self.entries_for("user", u["id"])
        self.assertEqual(len(items), 1)
        return u, items[0]

    def ids(self, u, **params):
        return [e["id"] for e in self.entries_for("user", u["id"], **params)]

    def test_date_form(self):
        u, e = self.entry()
        day = datetime.date.fromisoformat(e["at"][:10])
        nxt = (day + datetime.timedelta(days=1)).isoformat()
        self.assertEqual(self.ids(u, since=day.isoformat()), [e["id"]])
        self.assertEqual(self.ids(u, until=day.isoformat()), [])  # until is exclusive
        self.assertEqual(self.ids(u, since=nxt), [])
        self.assertEqual(self.ids(u, until=nxt), [e["id"]])
        self.assertEqual(self.ids(u, since=day.isoformat(), until=nxt), [e["id"]])

    def test_time_form(self):
        u, e = self.entry()
        sec = datetime.datetime.strptime(e["at"][:19], "%Y-%m-%dT%H:%M:%S")
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        this = sec.strftime(fmt)
        nxt = (sec + datetime.timedelta(seconds=1)).strftime(fmt)
        self.assertEqual(self.ids(u, since=this), [e["id"]])
        self.assertEqual(self.ids(u, until=this), [])
        self.assertEqual(self.ids(u, since=nxt), [])
        self.assertEqual(self.ids(u, until=nxt), [e["id"]])
        self.assertEqual(self.ids(u, since=this, until=nxt), [e["id"]])

    def test_time_form_with_milliseconds(self):
        u, e = self.entry()
        self.assertEqual(self.ids(u, since=e["at"]), [e["id"]])
        self.assertEqual(self.ids(u, until=e["at"]), [])

    def test_documented_examples_accepted(self):
        with self.cases() as case:
            for p in ("since", "until"):
                for v in ("2026-01-31", "2026-01-31T08:00:00Z"):
                    with case(param=p, value=v):
                        self.assertEqual(self.audit_raw(**{p: v}).status, 200)

    def test_garbage_422(self):
        with self.cases() as case:
            for v in ("yesterday", "2026-1-31", "31/01/2026", "2026-01-31T08:00:00", "2026-01-31 08:00:00",
                      "2026-01-31T08:00Z", "20260131", "2026-01-31T08:00:00+01:00", "1' OR '1'='1"):
                for p in ("since", "until"):
                    with case(param=p, value=v):
                        self.assertJsonError(self.audit_raw(**{p: v}), 422, "validation_failed")

    def test_impossible_calendar_values_422(self):
        # right shape, but no such day or time: must not be handed to MariaDB, which turns
        # them into the zero date (since= then matches everything, until= nothing)
        with self.cases() as case:
            for v in ("2026-13-45", "2026-02-30", "0000-00-00", "2026-01-31T25:00:00Z",
                      "2026-01-31T08:61:00Z", "2026-01-31T08:00:60Z"):
                for p in ("since", "until"):
                    with case(param=p, value=v):
                        self.assertJsonError(self.audit_raw(**{p: v}), 422, "validation_failed")

    def test_malformed_fraction_or_suffix_422(self):
        with self.cases() as case:
            for v in ("2026-01-31T08:00:00ZZ", "2026-01-31T08:00:00.Z", "2026-01-31T08:00:00.1ZZ",
                      "2026-01-31T08:00:00Z1"):
                for p in ("since", "until"):
                    with case(param=p, value=v):
                        self.assertJsonError(self.audit_raw(**{p: v}), 422, "validation_failed")


class Secrets(AuditBase):
    def test_no_password_in_audit(self):
        passwords = []
        u, pw = make_user(self.admin, display_name="Secret Keeper")
        passwords.append(pw)
        reset = "pw-" + unique("reset") + "-long"
        passwords.append(reset)
        self.assertEqual(self.admin.post("/api/v1/users/%d/password" % u["id"], {"password": reset}).status, 204)
        wrong = "pw-" + unique("wrong") + "-long"
        passwords.append(wrong)
        Client().login(u["username"], wrong, expect=401)
        c = Client()
        c.login(u["username"], reset)
        changed = "pw-" + unique("changed") + "-long"
        passwords.append(changed)
        r = c.post("/api/v1/auth/password", {"current_password": reset, "new_password": changed})
        self.assertEqual(r.status, 204, r)
        bad = "pw-" + unique("badcurrent") + "-long"
        passwords.append(bad)
        c2 = Client()
        c2.login(u["username"], changed)
        c2.post("/api/v1/auth/password", {"current_password": bad, "new_password": bad + "-x"})
        passwords.append(bad + "-x")
        short = unique("s")[:11]
        r = self.admin.post("/api/v1/users", {"username": unique("shortpw"), "password": short})
        self.assertEqual(r.status, 422, r)
        mine = self.audit(actor=u["username"], limit=1000)
        self.assertGreaterEqual(len(mine["items"]), 4, mine)  # logins, failures, password change
        texts = [self.audit_raw(limit=1000).body, json.dumps(mine),
                 json.dumps(self.entries_for("user", u["id"]))]
        for text in texts:
            for p in passwords:
                self.assertNotIn(p, text)
            self.assertNotIn(short, text)
            self.assertNotIn("$argon2", text)


class Access(AuditBase):
    def test_non_admin_forbidden(self):
        with self.cases() as case:
            for role in ("user", "operator"):
                u, pw = make_user(self.admin, role=role)
                c = Client()
                c.login(u["username"], pw)
                with case(role=role):
                    self.assertJsonError(c.get(AUDIT), 403, "forbidden")
                    self.assertJsonError(c.get(AUDIT + "?actor=admin"), 403, "forbidden")

    def test_anonymous_unauthenticated(self):
        self.assertJsonError(Client().get(AUDIT), 401, "unauthenticated")

    def test_read_only(self):
        r = self.admin.post(AUDIT, {"action": "x"})
        self.assertJsonError(r, 405, "method_not_allowed")
        self.assertEqual(r.header("allow"), "GET")


if __name__ == "__main__":
    unittest.main()

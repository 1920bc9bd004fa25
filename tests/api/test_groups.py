"""Groups and memberships: /api/v1/groups (admin role only)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import AdminTestCase, Client, make_user, quote, unique  # noqa: E402

GROUPS = "/api/v1/groups"
GROUP_KEYS = {"id", "name", "description", "members", "role"}


class GroupsBase(AdminTestCase):
    def make_group(self, name=None, description=None):
        body = {"name": name or unique("grp")}
        if description is not None:
            body["description"] = description
        r = self.admin.post(GROUPS, body)
        self.assertEqual(r.status, 201, r)
        return r.json

    def list_groups(self, **params):
        qs = "&".join("%s=%s" % (k, quote(str(v))) for k, v in params.items())
        r = self.admin.get(GROUPS + ("?" + qs if qs else ""))
        self.assertEqual(r.status, 200, r)
        return r.json

    def members(self, gid, **params):
        qs = "&".join("%s=%s" % (k, quote(str(v))) for k, v in params.items())
        r = self.admin.get("%s/%d/members%s" % (GROUPS, gid, "?" + qs if qs else ""))
        self.assertEqual(r.status, 200, r)
        return r.json

    def add(self, gid, uid):
        return self.admin.put("%s/%d/members/%d" % (GROUPS, gid, uid))

    def remove(self, gid, uid):
        return self.admin.delete("%s/%d/members/%d" % (GROUPS, gid, uid))

    def user_groups(self, uid):
        r = self.admin.get("/api/v1/users/%d" % uid)
        self.assertEqual(r.status, 200, r)
        return r.json["groups"]


class CreateGroup(GroupsBase):
    def test_create_201(self):
        name = unique("create")
        r = self.admin.post(GROUPS, {"name": name, "description": "Finance desktops"})
        self.assertEqual(r.status, 201, r)
        g = r.json
        self.assertEqual(set(g), GROUP_KEYS)
        self.assertIsInstance(g["id"], int)
        self.assertEqual(g["name"], name)
        self.assertEqual(g["description"], "Finance desktops")
        self.assertEqual(g["members"], 0)
        self.assertEqual(r.header("location"), "%s/%d" % (GROUPS, g["id"]))
        self.assertEqual(self.admin.get(r.header("location")).json, g)

    def test_description_defaults_to_empty(self):
        g = self.make_group()
        self.assertEqual(g["description"], "")

    def test_duplicate_name_409(self):
        g = self.make_group()
        r = self.admin.post(GROUPS, {"name": g["name"], "description": "again"})
        self.assertJsonError(r, 409, "conflict")
        self.assertEqual(self.list_groups(q=g["name"])["total"], 1)

    def test_validation_422(self):
        with self.cases() as case:
            for body in ({}, {"name": ""}, {"name": "x" * 65}, {"name": 5}, {"name": unique("v"), "extra": 1},
                         {"name": unique("v"), "description": "d" * 256}, {"name": unique("v"), "description": None},
                         {"name": "tab\nnewline"}):
                with case(body=body):
                    self.assertJsonError(self.admin.post(GROUPS, body), 422, "validation_failed")

    def test_malformed_json_and_content_type(self):
        self.assertJsonError(self.admin.post(GROUPS, raw=b'{"name":', headers={"Content-Type": "application/json"}),
                             400, "bad_json")
        self.assertJsonError(self.admin.post(GROUPS, raw=b'{"name":"x"}', headers={"Content-Type": "text/plain"}),
                             415, "unsupported_media_type")


class ListGroups(GroupsBase):
    def test_q_prefix(self):
        prefix = unique("gq") + "x"
        a = self.make_group(prefix + "alpha")
        b = self.make_group(prefix + "beta")
        self.make_group(unique("zz") + prefix)  # contains the prefix, does not start with it
        page = self.list_groups(q=prefix)
        self.assertEqual([g["id"] for g in page["items"]], [a["id"], b["id"]])
        self.assertEqual(page["total"], 2)
        page = self.list_groups(q=prefix + "b")
        self.assertEqual([g["id"] for g in page["items"]], [b["id"]])
        self.assertEqual(page["total"], 1)

    def test_q_wildcards_are_literal(self):
        base = unique("gw") + "x"
        pct = self.make_group(base + "%1")
        self.make_group(base + "A1")
        under = self.make_group(base + "_2")
        self.make_group(base + "B2")
        self.assertEqual([g["id"] for g in self.list_groups(q=base + "%")["items"]], [pct["id"]])
        self.assertEqual([g["id"] for g in self.list_groups(q=base + "_")["items"]], [under["id"]])

    def test_paging_with_limit_and_next_after(self):
        prefix = unique("gpage") + "x"
        ids = [self.make_group("%s%d" % (prefix, i))["id"] for i in range(5)]
        seen, after, pages = [], None, 0
        while True:
            params = {"q": prefix, "limit": 2}
            if after is not None:
                params["after"] = after
            page = self.list_groups(**params)
            pages += 1
            self.assertLessEqual(len(page["items"]), 2)
            self.assertEqual(page["total"], 5)
            seen.extend(g["id"] for g in page["items"])
            after = page["next_after"]
            if after is None:
                break
            self.assertEqual(after, page["items"][-1]["id"])
            self.assertLess(pages, 10, "paging does not end")
        self.assertEqual(seen, sorted(ids))
        self.assertEqual(pages, 3)

    def test_list_items_carry_member_counts(self):
        prefix = unique("gcnt") + "x"
        g = self.make_group(prefix + "g")
        for _ in range(2):
            u, _ = make_user(self.admin)
            self.assertEqual(self.add(g["id"], u["id"]).status, 204)
        items = self.list_groups(q=prefix)["items"]
        self.assertEqual(len(items), 1)
        self.assertEqual(set(items[0]), GROUP_KEYS)
        self.assertEqual(items[0]["members"], 2)

    def test_bad_limit_422(self):
        with self.cases() as case:
            for qs in ("limit=abc", "limit=100000", "limit=-1", "after=x"):
                with case(query=qs):
                    self.assertJsonError(self.admin.get(GROUPS + "?" + qs), 422, "validation_failed")


class OneGroup(GroupsBase):
    def test_get_one_with_member_count(self):
        g = self.make_group(description="desc")
        url = "%s/%d" % (GROUPS, g["id"])
        r = self.admin.get(url)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"id": g["id"], "name": g["name"], "description": "desc", "members": 0, "role": None})
        users = [make_user(self.admin)[0] for _ in range(3)]
        for u in users:
            self.assertEqual(self.add(g["id"], u["id"]).status, 204)
        self.assertEqual(self.admin.get(url).json["members"], 3)

    def test_missing_group_404(self):
        with self.cases() as case:
            for gid in ("999999999", "abc", "0", "-3"):
                with case(id=gid):
                    self.assertJsonError(self.admin.get(GROUPS + "/" + gid), 404, "not_found")
                    self.assertJsonError(self.admin.patch(GROUPS + "/" + gid, {"name": unique("n")}), 404, "not_found")
                    self.assertJsonError(self.admin.delete(GROUPS + "/" + gid), 404, "not_found")
                    self.assertJsonError(self.admin.get(GROUPS + "/" + gid + "/members"), 404, "not_found")

    def test_patch_rename(self):
        g = self.make_group(description="keep me")
        new = unique("renamed")
        r = self.admin.patch("%s/%d" % (GROUPS, g["id"]), {"name": new})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["name"], new)
        self.assertEqual(r.json["description"], "keep me")
        self.assertEqual(self.admin.get("%s/%d" % (GROUPS, g["id"])).json["name"], new)
        self.assertEqual(self.list_groups(q=g["name"])["total"], 0)
        self.assertEqual(self.list_groups(q=new)["total"], 1)

    def test_patch_description_only(self):
        g = self.make_group()
        r = self.admin.patch("%s/%d" % (GROUPS, g["id"]), {"description": "new words"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["name"], r.json["description"]), (g["name"], "new words"))

    def test_patch_same_name_is_fine(self):
        g = self.make_group()
        r = self.admin.patch("%s/%d" % (GROUPS, g["id"]), {"name": g["name"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["name"], g["name"])

    def test_rename_to_existing_name_409(self):
        a = self.make_group()
        b = self.make_group()
        r = self.admin.patch("%s/%d" % (GROUPS, b["id"]), {"name": a["name"]})
        self.assertJsonError(r, 409, "conflict")
        self.assertEqual(self.admin.get("%s/%d" % (GROUPS, b["id"])).json["name"], b["name"])
        self.assertEqual(self.admin.get("%s/%d" % (GROUPS, a["id"])).json["name"], a["name"])

    def test_patch_validation_422(self):
        g = self.make_group()
        with self.cases() as case:
            for body in ({"name": ""}, {"name": 1}, {"members": 3}, {"id": 1}):
                with case(body=body):
                    self.assertJsonError(self.admin.patch("%s/%d" % (GROUPS, g["id"]), body), 422, "validation_failed")

    def test_delete_then_404(self):
        g = self.make_group()
        url = "%s/%d" % (GROUPS, g["id"])
        r = self.admin.delete(url)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, "")
        self.assertJsonError(self.admin.get(url), 404, "not_found")
        self.assertJsonError(self.admin.delete(url), 404, "not_found")
        self.assertEqual(self.list_groups(q=g["name"])["total"], 0)

    def test_delete_group_with_members_drops_memberships_only(self):
        g = self.make_group()
        u, pw = make_user(self.admin)
        self.assertEqual(self.add(g["id"], u["id"]).status, 204)
        self.assertEqual(self.admin.delete("%s/%d" % (GROUPS, g["id"])).status, 204)
        self.assertEqual(self.user_groups(u["id"]), [])
        Client().login(u["username"], pw)  # the user itself is untouched
        # the name is free again
        self.assertEqual(self.admin.post(GROUPS, {"name": g["name"]}).status, 201)


class Members(GroupsBase):
    def test_add_member_204_and_listed_both_ways(self):
        g = self.make_group()
        u, _ = make_user(self.admin, display_name="Member One")
        r = self.add(g["id"], u["id"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, "")
        m = self.members(g["id"])
        self.assertEqual([x["id"] for x in m["items"]], [u["id"]])
        self.assertEqual(m["items"][0]["username"], u["username"])
        self.assertEqual(m["items"][0]["display_name"], "Member One")
        self.assertNotIn("password", m["items"][0])
        self.assertIsNone(m["next_after"])
        self.assertEqual(self.user_groups(u["id"]), [{"id": g["id"], "name": g["name"]}])
        self.assertEqual(self.admin.get("%s/%d" % (GROUPS, g["id"])).json["members"], 1)

    def test_add_twice_is_harmless(self):
        g = self.make_group()
        u, _ = make_user(self.admin)
        self.assertEqual(self.add(g["id"], u["id"]).status, 204)
        r = self.add(g["id"], u["id"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual([x["id"] for x in self.members(g["id"])["items"]], [u["id"]])
        self.assertEqual(self.admin.get("%s/%d" % (GROUPS, g["id"])).json["members"], 1)
        self.assertEqual(self.user_groups(u["id"]), [{"id": g["id"], "name": g["name"]}])

    def test_remove_member(self):
        g = self.make_group()
        stay, _ = make_user(self.admin)
        go, _ = make_user(self.admin)
        for u in (stay, go):
            self.assertEqual(self.add(g["id"], u["id"]).status, 204)
        r = self.remove(g["id"], go["id"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual([x["id"] for x in self.members(g["id"])["items"]], [stay["id"]])
        self.assertEqual(self.user_groups(go["id"]), [])
        self.assertEqual(self.user_groups(stay["id"]), [{"id": g["id"], "name": g["name"]}])
        self.assertEqual(self.admin.get("%s/%d" % (GROUPS, g["id"])).json["members"], 1)
        # removing a non-member is harmless too
        self.assertEqual(self.remove(g["id"], go["id"]).status, 204)
        self.assertEqual([x["id"] for x in self.members(g["id"])["items"]], [stay["id"]])

    def test_missing_group_or_user_404(self):
        g = self.make_group()
        u, _ = make_user(self.admin)
        cases = [(999999999, u["id"]), (g["id"], 999999999)]
        with self.cases() as case:
            for gid, uid in cases:
                with case(group=gid, user=uid):
                    self.assertJsonError(self.add(gid, uid), 404, "not_found")
                    self.assertJsonError(self.remove(gid, uid), 404, "not_found")
        with self.cases() as case:
            for path in ("%s/abc/members/%d" % (GROUPS, u["id"]), "%s/%d/members/abc" % (GROUPS, g["id"]),
                         "%s/%d/members/0" % (GROUPS, g["id"])):
                with case(path=path):
                    self.assertJsonError(self.admin.put(path), 404, "not_found")
                    self.assertJsonError(self.admin.delete(path), 404, "not_found")
        self.assertEqual(self.members(g["id"])["items"], [])
        self.assertEqual(self.user_groups(u["id"]), [])

    def test_members_paging(self):
        g = self.make_group()
        ids = sorted(make_user(self.admin)[0]["id"] for _ in range(5))
        for uid in ids:
            self.assertEqual(self.add(g["id"], uid).status, 204)
        seen, after = [], None
        for _ in range(10):
            params = {"limit": 2}
            if after is not None:
                params["after"] = after
            page = self.members(g["id"], **params)
            self.assertLessEqual(len(page["items"]), 2)
            seen.extend(x["id"] for x in page["items"])
            after = page["next_after"]
            if after is None:
                break
        self.assertEqual(seen, ids)
        self.assertJsonError(self.admin.get("%s/%d/members?limit=abc" % (GROUPS, g["id"])), 422,
                             "validation_failed")

    def test_member_routes_take_no_body(self):
        g = self.make_group()
        u, _ = make_user(self.admin)
        path = "%s/%d/members/%d" % (GROUPS, g["id"], u["id"])
        self.assertJsonError(self.admin.put(path, {"role": "x"}), 400, "bad_request")
        self.assertJsonError(self.admin.put(path, {"role": "x" * 100}), 413, "payload_too_large")
        self.assertEqual(self.members(g["id"])["items"], [])


class NonAdmin(GroupsBase):
    def check_forbidden(self, role):
        me, pw = make_user(self.admin, role=role)
        c = Client()
        c.login(me["username"], pw)
        g = self.make_group()
        url = "%s/%d" % (GROUPS, g["id"])
        calls = [("GET", GROUPS, None), ("POST", GROUPS, {"name": unique("sneaky")}), ("GET", url, None),
                 ("PATCH", url, {"name": unique("sneaky")}), ("GET", url + "/members", None),
                 ("PUT", "%s/members/%d" % (url, me["id"]), None),
                 ("DELETE", "%s/members/%d" % (url, me["id"]), None), ("DELETE", url, None)]
        with self.cases() as case:
            for method, path, body in calls:
                with case(role=role, method=method, path=path):
                    self.assertJsonError(c.request(method, path, body=body), 403, "forbidden")
        self.assertEqual(self.admin.get(url).json, g)
        self.assertEqual(self.user_groups(me["id"]), [])

    def test_role_user_forbidden(self):
        self.check_forbidden("user")

    def test_role_operator_forbidden(self):
        self.check_forbidden("operator")

    def test_anonymous_unauthenticated(self):
        self.assertJsonError(Client().get(GROUPS), 401, "unauthenticated")


if __name__ == "__main__":
    unittest.main()


class GroupRoles(GroupsBase):
    """A group may give its members a role: a member acts with the highest of its own role and
    its groups' roles, from the next request on (the role is read with the session each time)."""

    OPERATOR_ROUTE = "/api/v1/servers"   # operator and admin
    ADMIN_ROUTE = "/api/v1/users"        # admin only

    def test_validation_and_default(self):
        g = self.make_group()
        self.assertIsNone(g["role"])
        for bad in ("root", "user", "", 3, ["admin"]):
            with self.subTest(role=bad):
                self.assertJsonError(self.admin.post(GROUPS, {"name": unique("r"), "role": bad}), 422, "validation_failed")
                self.assertJsonError(self.admin.patch("%s/%d" % (GROUPS, g["id"]), {"role": bad}), 422,
                                     "validation_failed")
        self.assertIsNone(self.admin.get("%s/%d" % (GROUPS, g["id"])).json["role"])

    def test_a_groups_role_is_its_members_role_at_once(self):
        user, pw = make_user(self.admin)
        c = Client()
        c.login(user["username"], pw)
        self.assertJsonError(c.get(self.OPERATOR_ROUTE), 403, "forbidden")
        g = self.admin.post(GROUPS, {"name": unique("ops"), "role": "operator"}).json
        self.assertEqual(g["role"], "operator")
        self.assertEqual(self.add(g["id"], user["id"]).status, 204)
        # the same session, the next request: operator
        self.assertEqual(c.get(self.OPERATOR_ROUTE).status, 200)
        self.assertJsonError(c.get(self.ADMIN_ROUTE), 403, "forbidden")
        self.assertEqual(c.get("/api/v1/auth/me").json["user"]["role"], "operator")
        u = self.admin.get("/api/v1/users/%d" % user["id"]).json
        self.assertEqual((u["role"], u["effective_role"]), ("user", "operator"))
        # the group made admin: every member is an admin
        r = self.admin.patch("%s/%d" % (GROUPS, g["id"]), {"role": "admin"})
        self.assertEqual((r.status, r.json["role"]), (200, "admin"), r)
        self.assertEqual(c.get(self.ADMIN_ROUTE).status, 200)
        audit = self.admin.get("/api/v1/audit?action=group.update&target_id=%d" % g["id"]).json["items"]
        self.assertEqual((audit[0]["summary"]["role_before"], audit[0]["summary"]["role"]), ("operator", "admin"))
        # a rename keeps the role
        self.assertEqual(self.admin.patch("%s/%d" % (GROUPS, g["id"]), {"name": unique("ops2")}).json["role"], "admin")
        # the highest counts: a second group with a lower role changes nothing
        low = self.admin.post(GROUPS, {"name": unique("low"), "role": "operator"}).json
        self.add(low["id"], user["id"])
        self.assertEqual(c.get("/api/v1/auth/me").json["user"]["role"], "admin")
        # out of the admin group: operator (from the other); role cleared there too: user again
        self.assertEqual(self.remove(g["id"], user["id"]).status, 204)
        self.assertJsonError(c.get(self.ADMIN_ROUTE), 403, "forbidden")
        self.assertEqual(c.get(self.OPERATOR_ROUTE).status, 200)
        self.assertEqual(self.admin.patch("%s/%d" % (GROUPS, low["id"]), {"role": None}).json["role"], None)
        self.assertJsonError(c.get(self.OPERATOR_ROUTE), 403, "forbidden")
        u = self.admin.get("/api/v1/users/%d" % user["id"]).json
        self.assertEqual((u["role"], u["effective_role"]), ("user", "user"))
        # a fresh sign-in answers the effective role too
        self.add(g["id"], user["id"])
        self.assertEqual(Client().login(user["username"], pw).json["user"]["role"], "admin")

    def test_an_admins_own_role_is_never_lowered(self):
        admin_user, _ = make_user(self.admin, role="admin")
        g = self.admin.post(GROUPS, {"name": unique("ops"), "role": "operator"}).json
        self.add(g["id"], admin_user["id"])
        u = self.admin.get("/api/v1/users/%d" % admin_user["id"]).json
        self.assertEqual((u["role"], u["effective_role"]), ("admin", "admin"))

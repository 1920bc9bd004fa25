/*
 * h_groups.c - groups, memberships and each group's MFA policy (admin role). Groups are
 * what pool entitlements, the MFA policy and directory group mappings refer to. A group may
 * give its members a role (operator, admin): a member acts with the highest of its own role
 * and its groups' (EFFECTIVE_ROLE in stmts.def, read on every request).
 */
#include <string.h>

#include "audit.h"
#include "handlers.h"
#include "util.h"

static const char *const group_roles[] = {"operator", "admin", NULL};

const bic_field fields_group[] = {
    {"name", F_STR, true, 1, 64},
    {"description", F_STR, false, 0, 255},
    {"role", F_STR, false, 1, 8, group_roles, true},
    {0},
};

const bic_field fields_group_mfa[] = {
    {"mfa_required", F_BOOL, true},
    {0},
};

const bic_field fields_group_update[] = {
    {"name", F_STR, false, 1, 64},
    {"description", F_STR, false, 0, 255},
    {"role", F_STR, false, 1, 8, group_roles, true},
    {0},
};

static json_t *group_json(const bic_rows *r, size_t i)
{
    const char *role = rows_str(r, i, 4);
    return json_pack("{s:I, s:s, s:s, s:I, s:o}", "id", (json_int_t)rows_int(r, i, 0), "name",
                     rows_str(r, i, 1), "description", rows_str(r, i, 2), "members",
                     (json_int_t)rows_int(r, i, 3), "role",
                     role ? json_string(role) : json_null());
}

/* The body's "role": the role, NULL for JSON null, or dflt when the key is absent. */
static const char *body_role(const bic_req *req, const char *dflt)
{
    const json_t *v = json_object_get(req->json, "role");
    if (!v) return dflt;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bic_err load_group(bic_req *req, long long id, bic_rows *rows)
{
    bic_err e = DB_EXEC(req->db, req->arena, STMT_group_get, rows, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "group lookup failed");
    if (rows->nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no group %lld", id);
    return BIC_E_OK;
}

bic_err h_groups_list(bic_req *req, bic_resp *resp)
{
    long long limit, after;
    bic_err e = query_page(req, 50, 500, "after", 0, &limit, &after);
    if (e != BIC_E_OK) return e;
    const char *q = req_query(req, "q");
    const char *like = like_prefix(req, q && *q ? q : NULL);
    bic_rows rows, count;
    e = DB_EXEC(req->db, req->arena, STMT_group_list, &rows, P_INT(after), P_STR(like), P_STR(like),
                P_INT(limit));
    if (e == BIC_E_OK)
        e = DB_EXEC(req->db, req->arena, STMT_group_count, &count, P_STR(like), P_STR(like));
    if (e != BIC_E_OK) return fail(req, e, "group list failed");
    json_t *items = json_array();
    for (size_t i = 0; i < rows.nrows; i++)
        json_array_append_new(items, group_json(&rows, i));
    resp_json(req, resp, 200,
              json_pack("{s:o, s:o, s:I}", "items", items, "next_after", page_next(&rows, limit),
                        "total", (json_int_t)rows_int(&count, 0, 0)));
    return BIC_E_OK;
}

bic_err h_groups_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_group(req, id, &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, group_json(&rows, 0));
    return BIC_E_OK;
}

struct group_ctx {
    bic_req *req;
    long long id;
    long long user_id;
    const char *action;
};

static bic_err group_create_tx(bic_db *db, void *arg)
{
    struct group_ctx *c = arg;
    bic_req *req = c->req;
    const char *name = json_get_str(req->json, "name", "");
    const char *desc = json_get_str(req->json, "description", "");
    const char *role = body_role(req, NULL);
    bic_err e = DB_EXEC(db, req->arena, STMT_group_insert, NULL, P_STR(name), P_STR(desc),
                        P_STR(role));
    if (e == BIC_E_CONFLICT) return fail(req, e, "a group named '%s' already exists", name);
    if (e != BIC_E_OK) return fail(req, e, "cannot create group");
    c->id = (long long)db_insert_id(db);
    return audit_write(req, "group.create", "group", arena_printf(req->arena, "%lld", c->id), true,
                       json_pack("{s:s, s:s, s:s*}", "name", name, "description", desc, "role",
                                 role));
}

bic_err h_groups_create(bic_req *req, bic_resp *resp)
{
    struct group_ctx c = {req, 0, 0, NULL};
    bic_err e = db_tx(req->db, group_create_tx, &c);
    bic_rows rows;
    if (e == BIC_E_OK) e = load_group(req, c.id, &rows);
    if (e != BIC_E_OK) return e;
    resp_header(req, resp, "Location: /api/v1/groups/%lld", c.id);
    resp_json(req, resp, 201, group_json(&rows, 0));
    return BIC_E_OK;
}

static bic_err group_update_tx(bic_db *db, void *arg)
{
    struct group_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_group(req, c->id, &cur);
    if (e != BIC_E_OK) return e;
    const char *name = json_get_str(req->json, "name", rows_str(&cur, 0, 1));
    const char *desc = json_get_str(req->json, "description", rows_str(&cur, 0, 2));
    const char *role_before = rows_str(&cur, 0, 4);
    const char *role = body_role(req, role_before);
    e = DB_EXEC(db, req->arena, STMT_group_update, NULL, P_STR(name), P_STR(desc), P_STR(role),
                P_INT(c->id));
    if (e == BIC_E_CONFLICT) return fail(req, e, "a group named '%s' already exists", name);
    if (e != BIC_E_OK) return fail(req, e, "cannot update group");
    return audit_write(req, "group.update", "group", req->param[0], true,
                       json_pack("{s:s, s:s, s:s, s:s*, s:s*}", "name_before", rows_str(&cur, 0, 1),
                                 "name", name, "description", desc, "role_before", role_before,
                                 "role", role));
}

bic_err h_groups_update(bic_req *req, bic_resp *resp)
{
    struct group_ctx c = {req, 0, 0, NULL};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, group_update_tx, &c);
    bic_rows rows;
    if (e == BIC_E_OK) e = load_group(req, c.id, &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, group_json(&rows, 0));
    return BIC_E_OK;
}

static bic_err group_delete_tx(bic_db *db, void *arg)
{
    struct group_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_group(req, c->id, &cur);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(db, req->arena, STMT_group_delete, NULL, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot delete group");
    return audit_write(req, "group.delete", "group", req->param[0], true,
                       json_pack("{s:s, s:I}", "name", rows_str(&cur, 0, 1), "members",
                                 (json_int_t)rows_int(&cur, 0, 3)));
}

bic_err h_groups_delete(bic_req *req, bic_resp *resp)
{
    struct group_ctx c = {req, 0, 0, NULL};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, group_delete_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

bic_err h_groups_members(bic_req *req, bic_resp *resp)
{
    long long id, limit, after;
    bic_rows g, rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = query_page(req, 100, 1000, "after", 0, &limit, &after);
    if (e == BIC_E_OK) e = load_group(req, id, &g);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_group_members, &rows, P_INT(id), P_INT(after),
                P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "member list failed");
    resp_page(req, resp, &rows, user_json, limit, "next_after");
    return BIC_E_OK;
}

static bic_err member_tx(bic_db *db, void *arg)
{
    struct group_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows g, u;
    bic_err e = load_group(req, c->id, &g);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(db, req->arena, STMT_user_get, &u, P_INT(c->user_id));
    if (e != BIC_E_OK) return fail(req, e, "user lookup failed");
    if (u.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no user %lld", c->user_id);
    bool add = !strcmp(c->action, "group.member_add");
    e = DB_EXEC(db, req->arena, add ? STMT_group_member_add : STMT_group_member_remove, NULL,
                P_INT(c->id), P_INT(c->user_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot change membership");
    if (db_affected(db) == 0) return BIC_E_OK; /* already so: nothing changed, nothing to audit */
    return audit_write(req, c->action, "group", req->param[0], true,
                       json_pack("{s:s, s:I, s:s}", "group", rows_str(&g, 0, 1), "user_id",
                                 (json_int_t)c->user_id, "username", rows_str(&u, 0, 1)));
}

static bic_err member_change(bic_req *req, bic_resp *resp, const char *action)
{
    struct group_ctx c = {req, 0, 0, action};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = param_id(req, 1, &c.user_id);
    if (e == BIC_E_OK) e = db_tx(req->db, member_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

bic_err h_groups_member_add(bic_req *req, bic_resp *resp)
{
    return member_change(req, resp, "group.member_add");
}

bic_err h_groups_member_remove(bic_req *req, bic_resp *resp)
{
    return member_change(req, resp, "group.member_remove");
}

static json_t *group_mfa_json(long long id, bool required)
{
    return json_pack("{s:I, s:b}", "group_id", (json_int_t)id, "mfa_required", required);
}

static bic_err load_group_mfa(bic_req *req, bic_db *db, long long id, bool *required)
{
    bic_rows rows;
    bic_err e = DB_EXEC(db, req->arena, STMT_group_mfa_get, &rows, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "cannot read the MFA policy of group %lld", id);
    *required = rows_int(&rows, 0, 0) != 0;
    return BIC_E_OK;
}

bic_err h_groups_mfa_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows g;
    bool required = false;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_group(req, id, &g);
    if (e == BIC_E_OK) e = load_group_mfa(req, req->db, id, &required);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, group_mfa_json(id, required));
    return BIC_E_OK;
}

struct group_mfa_ctx {
    bic_req *req;
    long long id;
    bool required;
};

static bic_err group_mfa_tx(bic_db *db, void *arg)
{
    struct group_mfa_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows g;
    bool before = false;
    bic_err e = load_group(req, c->id, &g);
    if (e == BIC_E_OK) e = load_group_mfa(req, db, c->id, &before);
    if (e != BIC_E_OK) return e;
    if (before == c->required) return BIC_E_OK; /* already so: nothing to audit */
    e = DB_EXEC(db, req->arena, STMT_group_mfa_set, NULL, P_INT(c->id), P_INT(c->required));
    if (e != BIC_E_OK) return fail(req, e, "cannot change the MFA policy");
    return audit_write(req, "auth.mfa.policy", "group", req->param[0], true,
                       json_pack("{s:s, s:b, s:b}", "group", rows_str(&g, 0, 1), "from", before,
                                 "to", c->required));
}

bic_err h_groups_mfa_set(bic_req *req, bic_resp *resp)
{
    struct group_mfa_ctx c = {req, 0, json_get_bool(req->json, "mfa_required", false)};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, group_mfa_tx, &c);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, group_mfa_json(c.id, c.required));
    return BIC_E_OK;
}

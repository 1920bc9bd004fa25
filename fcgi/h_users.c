/*
 * h_users.c - user administration (admin role): list, create, read, update,
 * disable, reset password, reset the second factor. Every change is audited in the
 * same transaction.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "handlers.h"
#include "password.h"
#include "session.h"
#include "util.h"

static const char *const role_choices[] = {"user", "operator", "admin", NULL};

const bic_field fields_user_create[] = {
    {"username", F_STR, true, 1, 64},
    {"display_name", F_STR, false, 0, 128},
    {"email", F_STR, false, 0, 254},
    {"role", F_STR, false, 1, 16, role_choices},
    {"password", F_STR, true, 1, PASSWORD_MAX_LEN},
    {0},
};

const bic_field fields_user_update[] = {
    {"display_name", F_STR, false, 0, 128},
    {"email", F_STR, false, 0, 254},
    {"role", F_STR, false, 1, 16, role_choices},
    {"disabled", F_BOOL, false},
    {0},
};

const bic_field fields_user_password[] = {
    {"password", F_STR, true, 1, PASSWORD_MAX_LEN},
    {0},
};

json_t *user_json(bic_req *req, const bic_rows *r, size_t i)
{
    return json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:b, s:o, s:o, s:s, s:s}", "id", (json_int_t)rows_int(r, i, 0),
        "username", rows_str(r, i, 1), "display_name", rows_str(r, i, 2), "email", rows_str(r, i, 3),
        "role", rows_str(r, i, 4), "disabled", rows_int(r, i, 5) != 0, "last_login_at",
        json_time(req, rows_str(r, i, 6)), "created_at", json_time(req, rows_str(r, i, 7)), "source",
        rows_str(r, i, 8), "effective_role", rows_str(r, i, 9));
}

static bool username_ok(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._@-", *s)) return false;
    return true;
}

bic_err h_users_list(bic_req *req, bic_resp *resp)
{
    long long limit, after;
    bic_err e = query_page(req, 50, 500, "after", 0, &limit, &after);
    if (e != BIC_E_OK) return e;
    const char *q = req_query(req, "q");
    if (q && !*q) q = NULL;
    const char *like = like_prefix(req, q);
    const char *role = req_query(req, "role");
    if (role && !*role) role = NULL;
    if (role && role_parse(role) == ROLE__MAX)
        return fail(req, BIC_E_VALIDATION, "role must be user, operator or admin");
    const char *dis = req_query(req, "disabled");
    int disabled = dis && *dis ? parse_bool(dis) : -2;
    if (disabled == -1) return fail(req, BIC_E_VALIDATION, "disabled must be true or false");
    bic_param dp = disabled >= 0 ? P_INT(disabled) : P_NULL;

    bic_rows rows, count;
    e = DB_EXEC(req->db, req->arena, STMT_user_list, &rows, P_INT(after), P_STR(like), P_STR(like),
                P_STR(like), P_STR(role), P_STR(role), dp, dp, P_INT(limit));
    if (e == BIC_E_OK)
        e = DB_EXEC(req->db, req->arena, STMT_user_count, &count, P_STR(like), P_STR(like),
                    P_STR(like), P_STR(role), P_STR(role), dp, dp);
    if (e != BIC_E_OK) return fail(req, e, "user list failed");
    json_t *items = json_array();
    for (size_t i = 0; i < rows.nrows; i++)
        json_array_append_new(items, user_json(req, &rows, i));
    resp_json(req, resp, 200,
              json_pack("{s:o, s:o, s:I}", "items", items, "next_after", page_next(&rows, limit),
                        "total", (json_int_t)rows_int(&count, 0, 0)));
    return BIC_E_OK;
}

/* Loads user id into *rows (one row) or answers 404. */
static bic_err load_user(bic_req *req, bic_db *db, bic_stmt st, long long id, bic_rows *rows)
{
    bic_err e = DB_EXEC(db, req->arena, st, rows, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "user lookup failed");
    if (rows->nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no user %lld", id);
    return BIC_E_OK;
}

bic_err h_users_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows rows, groups;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_user(req, req->db, STMT_user_get, id, &rows);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_user_groups_of, &groups, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "group lookup failed");
    json_t *u = user_json(req, &rows, 0), *g = json_array();
    for (size_t i = 0; i < groups.nrows; i++)
        json_array_append_new(g, json_pack("{s:I, s:s}", "id", (json_int_t)rows_int(&groups, i, 0),
                                           "name", rows_str(&groups, i, 1)));
    json_object_set_new(u, "groups", g);
    resp_json(req, resp, 200, u);
    return BIC_E_OK;
}

struct create_ctx {
    bic_req *req;
    const char *hash;
    long long id;
};

static bic_err create_tx(bic_db *db, void *arg)
{
    struct create_ctx *c = arg;
    bic_req *req = c->req;
    const json_t *j = req->json;
    const char *username = json_get_str(j, "username", "");
    const char *role = json_get_str(j, "role", "user");
    bic_err e = DB_EXEC(db, req->arena, STMT_user_insert, NULL, P_STR(username),
                        P_STR(json_get_str(j, "display_name", "")),
                        P_STR(json_get_str(j, "email", "")), P_STR(role), P_STR(c->hash));
    if (e == BIC_E_CONFLICT) return fail(req, e, "a user named '%s' already exists", username);
    if (e != BIC_E_OK) return fail(req, e, "cannot create user");
    c->id = (long long)db_insert_id(db);
    return audit_write(req, "user.create", "user", arena_printf(req->arena, "%lld", c->id), true,
                       json_pack("{s:s, s:s, s:s}", "username", username, "role", role,
                                 "display_name", json_get_str(j, "display_name", "")));
}

bic_err h_users_create(bic_req *req, bic_resp *resp)
{
    const char *username = json_get_str(req->json, "username", "");
    if (!username_ok(username))
        return fail(req, BIC_E_VALIDATION, "username may hold letters, digits and . _ @ - only");
    char why[128], hash[PASSWORD_HASH_LEN];
    if (!password_acceptable(json_get_str(req->json, "password", ""), why, sizeof(why)))
        return fail(req, BIC_E_VALIDATION, "%s", why);
    bic_err e = password_hash(json_get_str(req->json, "password", ""), hash);
    if (e != BIC_E_OK) return fail(req, e, "cannot hash the password");
    struct create_ctx c = {req, hash, 0};
    e = db_tx(req->db, create_tx, &c);
    if (e != BIC_E_OK) return e;
    bic_rows rows;
    e = load_user(req, req->db, STMT_user_get, c.id, &rows);
    if (e != BIC_E_OK) return e;
    resp_header(req, resp, "Location: /api/v1/users/%lld", c.id);
    resp_json(req, resp, 201, user_json(req, &rows, 0));
    return BIC_E_OK;
}

struct update_ctx {
    bic_req *req;
    long long id;
};

static void note_change(json_t *changes, const char *field, const char *before, const char *after)
{
    if (strcmp(before, after))
        json_object_set_new(changes, field, json_pack("{s:s, s:s}", "from", before, "to", after));
}

static bic_err update_tx(bic_db *db, void *arg)
{
    struct update_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_user(req, db, STMT_user_get_for_update, c->id, &cur);
    if (e != BIC_E_OK) return e;
    const json_t *j = req->json;
    const char *display = json_get_str(j, "display_name", rows_str(&cur, 0, 2));
    const char *email = json_get_str(j, "email", rows_str(&cur, 0, 3));
    const char *role = json_get_str(j, "role", rows_str(&cur, 0, 4));
    bool was_disabled = rows_int(&cur, 0, 5) != 0;
    bool disabled = json_get_bool(j, "disabled", was_disabled);
    if (c->id == req->who.user_id && (disabled || strcmp(role, "admin")))
        return fail(req, BIC_E_CONFLICT, "you cannot disable or demote your own account");
    e = DB_EXEC(db, req->arena, STMT_user_update, NULL, P_STR(display), P_STR(email), P_STR(role),
                P_INT(disabled), P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot update user");
    if (disabled && !was_disabled) {
        e = session_revoke_user(req, c->id);
        if (e != BIC_E_OK) return e;
    }
    json_t *changes = json_object();
    note_change(changes, "display_name", rows_str(&cur, 0, 2), display);
    note_change(changes, "email", rows_str(&cur, 0, 3), email);
    note_change(changes, "role", rows_str(&cur, 0, 4), role);
    note_change(changes, "disabled", was_disabled ? "true" : "false", disabled ? "true" : "false");
    const char *action = disabled && !was_disabled   ? "user.disable"
                         : !disabled && was_disabled ? "user.enable"
                                                     : "user.update";
    return audit_write(
        req, action, "user", req->param[0], true,
        json_pack("{s:s, s:o}", "username", rows_str(&cur, 0, 1), "changes", changes));
}

bic_err h_users_update(bic_req *req, bic_resp *resp)
{
    struct update_ctx c = {req, 0};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, update_tx, &c);
    if (e != BIC_E_OK) return e;
    bic_rows rows;
    e = load_user(req, req->db, STMT_user_get, c.id, &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, user_json(req, &rows, 0));
    return BIC_E_OK;
}

struct reset_ctx {
    bic_req *req;
    long long id;
    const char *hash;
};

static bic_err reset_tx(bic_db *db, void *arg)
{
    struct reset_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_user(req, db, STMT_user_get_for_update, c->id, &cur);
    if (e != BIC_E_OK) return e;
    /* a directory's or provider's user signs in there; a local password would be a second way in */
    const char *source = rows_str(&cur, 0, 8);
    if (strcmp(source, "local") != 0)
        return fail(req, BIC_E_CONFLICT,
                    "%s signs in through %s; the password is kept there, not in BIC",
                    rows_str(&cur, 0, 1), !strcmp(source, "ldap") ? "a directory" : "an OpenID Connect provider");
    e = DB_EXEC(db, req->arena, STMT_user_set_password, NULL, P_STR(c->hash), P_INT(c->id));
    if (e == BIC_E_OK) e = session_revoke_user(req, c->id);
    if (e == BIC_E_OK)
        e = audit_write(req, "user.password_reset", "user", req->param[0], true,
                        json_pack("{s:s}", "username", rows_str(&cur, 0, 1)));
    return e; /* every step above reported its own failure */
}

bic_err h_users_password(bic_req *req, bic_resp *resp)
{
    struct reset_ctx c = {req, 0, NULL};
    bic_err e = param_id(req, 0, &c.id);
    if (e != BIC_E_OK) return e;
    char why[128], hash[PASSWORD_HASH_LEN];
    if (!password_acceptable(json_get_str(req->json, "password", ""), why, sizeof(why)))
        return fail(req, BIC_E_VALIDATION, "%s", why);
    e = password_hash(json_get_str(req->json, "password", ""), hash);
    if (e != BIC_E_OK) return fail(req, e, "cannot hash the password");
    c.hash = hash;
    e = db_tx(req->db, reset_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

bic_err h_users_mfa_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows rows;
    json_t *j = NULL;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_user(req, req->db, STMT_user_get, id, &rows);
    if (e == BIC_E_OK) e = mfa_status_json(req, id, &j);
    if (e != BIC_E_OK) return e;
    json_object_set_new(j, "user_id", json_integer(id));
    resp_json(req, resp, 200, j);
    return BIC_E_OK;
}

bic_err h_users_mfa_reset(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_user(req, req->db, STMT_user_get, id, &rows);
    if (e != BIC_E_OK) return e;
    bool removed = false;
    /* audited only when there was a factor; a reset of nothing changes nothing */
    e = mfa_remove(req, id, "auth.mfa.reset",
                   json_pack("{s:s, s:s}", "username", rows_str(&rows, 0, 1), "factor", "totp"),
                   &removed);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

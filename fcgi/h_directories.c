/*
 * h_directories.c - LDAP / Active Directory directories (admin role): their settings (the bind
 * password write-only), the test-connection action that explains failures in plain words, "sync
 * now", and the mappings from directory groups to BIC groups. Every change is audited
 * (directory.*) in its transaction. Sign-in and sync are in directory.c; docs/directories.md.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "directory.h"
#include "group_maps.h"
#include "handlers.h"
#include "session.h"
#include "util.h"

#define DIR_CA_MAX       32768  /* bytes of CA certificates (PEM) */
#define DIR_SYNC_MAX     604800 /* a week */
#define DIR_ORDER_LIMIT  1000000
#define DIR_DEFAULT_WAIT 5

const bic_field fields_dir_create[] = {
    {"name", F_STR, true, 1, 64},
    {"url", F_STR, true, 1, 1024},
    {"starttls", F_BOOL, false},
    {"ca_cert", F_STR, false, 0, DIR_CA_MAX},
    {"bind_dn", F_STR, false, 0, 1024},
    {"bind_password", F_STR, false, 0, DIR_PASSWORD_MAX},
    {"user_base", F_STR, true, 1, 1024},
    {"user_filter", F_STR, true, 3, 1024},
    {"group_base", F_STR, false, 0, 1024},
    {"group_filter", F_STR, false, 0, 1024},
    {"disabled_filter", F_STR, false, 0, 1024},
    {"attr_username", F_STR, false, 1, 64},
    {"attr_display_name", F_STR, false, 0, 64},
    {"attr_email", F_STR, false, 0, 64},
    {"attr_member_of", F_STR, false, 0, 64},
    {"timeout", F_INT, false, 1, DIR_TIMEOUT_MAX},
    {"sync_interval", F_INT, false, 0, DIR_SYNC_MAX},
    {"enabled", F_BOOL, false},
    {"order", F_INT, false, -DIR_ORDER_LIMIT, DIR_ORDER_LIMIT},
    {0},
};

const bic_field fields_dir_update[] = {
    {"name", F_STR, false, 1, 64},
    {"url", F_STR, false, 1, 1024},
    {"starttls", F_BOOL, false},
    {"ca_cert", F_STR, false, 0, DIR_CA_MAX},
    {"bind_dn", F_STR, false, 0, 1024},
    {"bind_password", F_STR, false, 0, DIR_PASSWORD_MAX},
    {"user_base", F_STR, false, 1, 1024},
    {"user_filter", F_STR, false, 3, 1024},
    {"group_base", F_STR, false, 0, 1024},
    {"group_filter", F_STR, false, 0, 1024},
    {"disabled_filter", F_STR, false, 0, 1024},
    {"attr_username", F_STR, false, 1, 64},
    {"attr_display_name", F_STR, false, 0, 64},
    {"attr_email", F_STR, false, 0, 64},
    {"attr_member_of", F_STR, false, 0, 64},
    {"timeout", F_INT, false, 1, DIR_TIMEOUT_MAX},
    {"sync_interval", F_INT, false, 0, DIR_SYNC_MAX},
    {"enabled", F_BOOL, false},
    {"order", F_INT, false, -DIR_ORDER_LIMIT, DIR_ORDER_LIMIT},
    {0},
};

const bic_field fields_dir_test[] = {
    {"username", F_STR, false, 1, 64},
    {0},
};

const bic_field fields_dir_map[] = {
    {"group_dn", F_STR, true, 1, 1024},
    {"group_id", F_INT, true, 1, (long long)9e18},
    {0},
};

static const char *col(const bic_rows *r, size_t i, size_t c)
{
    const char *s = rows_str(r, i, c);
    return s ? s : "";
}

/* Whether some URL of the list is ldap:// while StartTLS is off: passwords would travel in clear.
 */
static bool plaintext(bic_arena *a, const char *urls, bool starttls)
{
    const char *list[DIR_URLS_MAX];
    size_t n = dir_url_list(a, urls, list, DIR_URLS_MAX);
    for (size_t i = 0; i < n && i < DIR_URLS_MAX; i++)
        if (!starttls && strncasecmp(list[i], "ldaps://", 8)) return true;
    return false;
}

static json_t *warnings_json(bic_arena *a, const char *url, bool starttls, const char *member_of,
                             const char *group_base, long long maps)
{
    json_t *w = json_array();
    if (plaintext(a, url, starttls))
        json_array_append_new(w, json_string("passwords travel unencrypted: use ldaps:// or turn "
                                             "StartTLS on"));
    if (maps && !*member_of && !*group_base)
        json_array_append_new(w, json_string("groups are mapped, but neither a member-of "
                                             "attribute nor a group search is set: nobody gets "
                                             "a mapped group"));
    return w;
}

/* A row of DIR_COLS as the API shows it (never the bind password). */
static json_t *dir_json(bic_req *req, const bic_rows *r, size_t i)
{
    bic_arena *a = req->arena;
    const char *ca = col(r, i, 4), *subject = NULL, *not_after = NULL;
    json_t *caj = json_null();
    if (*ca && !dir_ca_check(a, ca, &subject, &not_after))
        caj = json_pack("{s:s, s:s}", "subject", subject, "not_after", not_after);
    const char *started = rows_str(r, i, 27), *last = rows_str(r, i, 20);
    bool running = started && (!last || strcmp(started, last) > 0);
    json_t *o = json_pack("{s:I, s:s, s:s, s:b, s:s, s:o, s:s, s:b, s:s, s:s, s:s, s:s, s:s}", "id",
                          (json_int_t)rows_int(r, i, 0), "name", col(r, i, 1), "url", col(r, i, 2),
                          "starttls", rows_int(r, i, 3) != 0, "ca_cert", ca, "ca", caj, "bind_dn",
                          col(r, i, 5), "bind_password_set", rows_str(r, i, 6) != NULL, "user_base",
                          col(r, i, 7), "user_filter", col(r, i, 8), "group_base", col(r, i, 9),
                          "group_filter", col(r, i, 10), "disabled_filter", col(r, i, 11));
    json_t *more = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:I, s:I, s:I, s:{s:o, s:s, s:I, s:b}, s:o, s:o, s:o}",
        "attr_username", col(r, i, 12), "attr_display_name", col(r, i, 13), "attr_email",
        col(r, i, 14), "attr_member_of", col(r, i, 15), "timeout", (json_int_t)rows_int(r, i, 16),
        "sync_interval", (json_int_t)rows_int(r, i, 17), "enabled", rows_int(r, i, 18) != 0,
        "order", (json_int_t)rows_int(r, i, 19), "users", (json_int_t)rows_int(r, i, 25),
        "group_maps", (json_int_t)rows_int(r, i, 26), "sync", "last_at", json_time(req, last),
        "last_error", col(r, i, 21), "last_users", (json_int_t)rows_int(r, i, 22), "running",
        running, "created_at", json_time(req, rows_str(r, i, 23)), "updated_at",
        json_time(req, rows_str(r, i, 24)), "warnings",
        warnings_json(a, col(r, i, 2), rows_int(r, i, 3) != 0, col(r, i, 15), col(r, i, 9),
                      rows_int(r, i, 26)));
    json_object_update(o, more);
    json_decref(more);
    return o;
}

static bic_err load_dir(bic_req *req, bic_db *db, bic_stmt st, long long id, bic_rows *rows)
{
    bic_err e = DB_EXEC(db, req->arena, st, rows, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "directory lookup failed");
    if (rows->nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no directory %lld", id);
    return BIC_E_OK;
}

bic_err h_dirs_list(bic_req *req, bic_resp *resp)
{
    bic_rows rows;
    bic_err e = DB_EXEC0(req->db, req->arena, STMT_dir_list, &rows);
    if (e != BIC_E_OK) return fail(req, e, "directory list failed");
    json_t *items = json_array();
    for (size_t i = 0; i < rows.nrows; i++)
        json_array_append_new(items, dir_json(req, &rows, i));
    resp_json(req, resp, 200, json_pack("{s:o}", "items", items));
    return BIC_E_OK;
}

bic_err h_dirs_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_dir(req, req->db, STMT_dir_get, id, &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, dir_json(req, &rows, 0));
    return BIC_E_OK;
}

/* ---- settings: one struct for create and update ---- */

struct dir_settings {
    const char *name, *url, *ca, *bind_dn, *user_base, *user_filter, *group_base, *group_filter;
    const char *disabled_filter, *attr_username, *attr_display_name, *attr_email, *attr_member_of;
    bool starttls, enabled;
    long long timeout, sync_interval, order;
    const char *password; /* NULL: keep the stored one; "": remove it */
    bool had_password;
};

/* Overlays the body on s (the defaults, or the stored row). */
static void settings_from_body(const json_t *j, struct dir_settings *s)
{
    s->name = json_get_str(j, "name", s->name);
    s->url = json_get_str(j, "url", s->url);
    s->starttls = json_get_bool(j, "starttls", s->starttls);
    s->ca = json_get_str(j, "ca_cert", s->ca);
    s->bind_dn = json_get_str(j, "bind_dn", s->bind_dn);
    s->password = json_get_str(j, "bind_password", NULL);
    s->user_base = json_get_str(j, "user_base", s->user_base);
    s->user_filter = json_get_str(j, "user_filter", s->user_filter);
    s->group_base = json_get_str(j, "group_base", s->group_base);
    s->group_filter = json_get_str(j, "group_filter", s->group_filter);
    s->disabled_filter = json_get_str(j, "disabled_filter", s->disabled_filter);
    s->attr_username = json_get_str(j, "attr_username", s->attr_username);
    s->attr_display_name = json_get_str(j, "attr_display_name", s->attr_display_name);
    s->attr_email = json_get_str(j, "attr_email", s->attr_email);
    s->attr_member_of = json_get_str(j, "attr_member_of", s->attr_member_of);
    s->timeout = json_get_int(j, "timeout", s->timeout);
    s->sync_interval = json_get_int(j, "sync_interval", s->sync_interval);
    s->enabled = json_get_bool(j, "enabled", s->enabled);
    s->order = json_get_int(j, "order", s->order);
}

/* The rules the field tables cannot express (422, reported). Normalises the CA text. */
static bic_err settings_check(bic_req *req, struct dir_settings *s)
{
    bic_arena *a = req->arena;
    const char *why = dir_url_check(a, s->url, s->starttls);
    if (why) return fail(req, BIC_E_VALIDATION, "url: %s", why);
    if (*s->ca) {
        const char *pem = dir_pem_normalize(a, s->ca, &why), *subject, *not_after;
        if (!pem) return fail(req, BIC_E_VALIDATION, "ca_cert: %s", why);
        why = dir_ca_check(a, pem, &subject, &not_after);
        if (why) return fail(req, BIC_E_VALIDATION, "ca_cert: %s", why);
        s->ca = pem;
    }
    if (*s->bind_dn && !dir_dn_ok(s->bind_dn))
        return fail(req, BIC_E_VALIDATION,
                    "bind_dn '%s' is not a DN such as "
                    "cn=bic,ou=services,dc=example,dc=com",
                    s->bind_dn);
    bool has_password = s->password ? *s->password != '\0' : s->had_password;
    if (*s->bind_dn && !has_password)
        return fail(req, BIC_E_VALIDATION,
                    "give the bind_password of '%s' (a bind DN without a password is an "
                    "unauthenticated bind, which servers refuse or treat as anonymous)",
                    s->bind_dn);
    if (!*s->bind_dn && s->password && *s->password)
        return fail(req, BIC_E_VALIDATION, "a bind_password needs its bind_dn");
    if (!dir_dn_ok(s->user_base))
        return fail(req, BIC_E_VALIDATION,
                    "user_base '%s' is not a DN such as "
                    "ou=people,dc=example,dc=com",
                    s->user_base);
    if ((why = dir_filter_check(s->user_filter, DIR_FILTER_USER)))
        return fail(req, BIC_E_VALIDATION, "user_filter: %s", why);
    if (!*s->group_base != !*s->group_filter)
        return fail(req, BIC_E_VALIDATION,
                    "give both group_base and group_filter for a group search, or neither");
    if (*s->group_base && !dir_dn_ok(s->group_base))
        return fail(req, BIC_E_VALIDATION, "group_base '%s' is not a DN", s->group_base);
    if (*s->group_filter && (why = dir_filter_check(s->group_filter, DIR_FILTER_GROUP)))
        return fail(req, BIC_E_VALIDATION, "group_filter: %s", why);
    if (*s->disabled_filter && (why = dir_filter_check(s->disabled_filter, DIR_FILTER_PLAIN)))
        return fail(req, BIC_E_VALIDATION, "disabled_filter: %s", why);
    const struct {
        const char *field, *value;
        bool required;
    } attrs[] = {{"attr_username", s->attr_username, true},
                 {"attr_display_name", s->attr_display_name, false},
                 {"attr_email", s->attr_email, false},
                 {"attr_member_of", s->attr_member_of, false}};
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
        if ((attrs[i].required || *attrs[i].value) && !dir_attr_ok(attrs[i].value))
            return fail(req, BIC_E_VALIDATION,
                        "%s '%s' is not an attribute name (letters, digits and '-', or an OID)",
                        attrs[i].field, attrs[i].value);
    return BIC_E_OK;
}

static void settings_from_row(const bic_rows *r, struct dir_settings *s)
{
    *s = (struct dir_settings){
        .name = col(r, 0, 1),
        .url = col(r, 0, 2),
        .starttls = rows_int(r, 0, 3) != 0,
        .ca = col(r, 0, 4),
        .bind_dn = col(r, 0, 5),
        .had_password = rows_str(r, 0, 6) != NULL,
        .user_base = col(r, 0, 7),
        .user_filter = col(r, 0, 8),
        .group_base = col(r, 0, 9),
        .group_filter = col(r, 0, 10),
        .disabled_filter = col(r, 0, 11),
        .attr_username = col(r, 0, 12),
        .attr_display_name = col(r, 0, 13),
        .attr_email = col(r, 0, 14),
        .attr_member_of = col(r, 0, 15),
        .timeout = rows_int(r, 0, 16),
        .sync_interval = rows_int(r, 0, 17),
        .enabled = rows_int(r, 0, 18) != 0,
        .order = rows_int(r, 0, 19),
    };
}

/* Stores s in row id (the password too when it changes). */
static bic_err settings_store(bic_req *req, bic_db *db, long long id, const struct dir_settings *s,
                              bool insert, long long *new_id)
{
    bic_param p[] = {P_STR(s->name),
                     P_STR(s->url),
                     P_INT(s->starttls),
                     P_STR(s->ca),
                     P_STR(s->bind_dn),
                     P_STR(s->user_base),
                     P_STR(s->user_filter),
                     P_STR(s->group_base),
                     P_STR(s->group_filter),
                     P_STR(s->disabled_filter),
                     P_STR(s->attr_username),
                     P_STR(s->attr_display_name),
                     P_STR(s->attr_email),
                     P_STR(s->attr_member_of),
                     P_INT(s->timeout),
                     P_INT(s->sync_interval),
                     P_INT(s->enabled),
                     P_INT(s->order),
                     P_INT(id)};
    size_t n = sizeof(p) / sizeof(p[0]);
    bic_err e = db_exec(db, req->arena, insert ? STMT_dir_insert : STMT_dir_update, p,
                        insert ? n - 1 : n, NULL);
    if (e == BIC_E_CONFLICT) return fail(req, e, "a directory named '%s' already exists", s->name);
    if (e != BIC_E_OK) return fail(req, e, "cannot store the directory");
    if (insert) id = *new_id = (long long)db_insert_id(db);
    if (!s->password) return BIC_E_OK;
    unsigned char *sealed = NULL;
    size_t sn = 0;
    if (*s->password) {
        e = dir_seal_password(req, id, s->password, &sealed, &sn);
        if (e != BIC_E_OK) return e;
    }
    e = DB_EXEC(db, req->arena, STMT_dir_set_password, NULL, sealed ? P_BLOB(sealed, sn) : P_NULL,
                P_INT(id));
    return e == BIC_E_OK ? e : fail(req, e, "cannot store the bind password");
}

struct dir_ctx {
    bic_req *req;
    long long id;
};

static bic_err create_tx(bic_db *db, void *arg)
{
    struct dir_ctx *c = arg;
    bic_req *req = c->req;
    struct dir_settings s = {.name = "",
                             .url = "",
                             .ca = "",
                             .bind_dn = "",
                             .user_base = "",
                             .user_filter = "",
                             .group_base = "",
                             .group_filter = "",
                             .disabled_filter = "",
                             .attr_username = "uid",
                             .attr_display_name = "cn",
                             .attr_email = "mail",
                             .attr_member_of = "",
                             .timeout = DIR_DEFAULT_WAIT,
                             .enabled = true,
                             .order = 100};
    settings_from_body(req->json, &s);
    bic_err e = settings_check(req, &s);
    if (e == BIC_E_OK) e = settings_store(req, db, 0, &s, true, &c->id);
    if (e != BIC_E_OK) return e;
    return audit_write(
        req, "directory.create", "directory", arena_printf(req->arena, "%lld", c->id), true,
        json_pack("{s:s, s:s, s:b, s:s, s:s, s:b, s:b}", "name", s.name, "url", s.url, "starttls",
                  s.starttls, "bind_dn", s.bind_dn, "user_base", s.user_base, "bind_password",
                  s.password && *s.password, "enabled", s.enabled));
}

bic_err h_dirs_create(bic_req *req, bic_resp *resp)
{
    struct dir_ctx c = {req, 0};
    bic_rows rows;
    bic_err e = db_tx(req->db, create_tx, &c);
    if (e == BIC_E_OK) e = load_dir(req, req->db, STMT_dir_get, c.id, &rows);
    if (e != BIC_E_OK) return e;
    resp_header(req, resp, "Location: /api/v1/directories/%lld", c.id);
    resp_json(req, resp, 201, dir_json(req, &rows, 0));
    return BIC_E_OK;
}

static void note_str(json_t *changes, const char *field, const char *before, const char *after)
{
    if (strcmp(before, after))
        json_object_set_new(changes, field, json_pack("{s:s, s:s}", "from", before, "to", after));
}

static void note_int(json_t *changes, const char *field, long long before, long long after)
{
    if (before != after)
        json_object_set_new(
            changes, field,
            json_pack("{s:I, s:I}", "from", (json_int_t)before, "to", (json_int_t)after));
}

static bic_err update_tx(bic_db *db, void *arg)
{
    struct dir_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_dir(req, db, STMT_dir_get_for_update, c->id, &cur);
    if (e != BIC_E_OK) return e;
    struct dir_settings old, s;
    settings_from_row(&cur, &old);
    s = old;
    settings_from_body(req->json, &s);
    e = settings_check(req, &s);
    if (e == BIC_E_OK) e = settings_store(req, db, c->id, &s, false, NULL);
    if (e != BIC_E_OK) return e;
    json_t *ch = json_object();
    note_str(ch, "name", old.name, s.name);
    note_str(ch, "url", old.url, s.url);
    note_int(ch, "starttls", old.starttls, s.starttls);
    if (strcmp(old.ca, s.ca)) json_object_set_new(ch, "ca_cert", json_string("changed"));
    note_str(ch, "bind_dn", old.bind_dn, s.bind_dn);
    if (s.password)
        json_object_set_new(ch, "bind_password", json_string(*s.password ? "set" : "removed"));
    note_str(ch, "user_base", old.user_base, s.user_base);
    note_str(ch, "user_filter", old.user_filter, s.user_filter);
    note_str(ch, "group_base", old.group_base, s.group_base);
    note_str(ch, "group_filter", old.group_filter, s.group_filter);
    note_str(ch, "disabled_filter", old.disabled_filter, s.disabled_filter);
    note_str(ch, "attr_username", old.attr_username, s.attr_username);
    note_str(ch, "attr_display_name", old.attr_display_name, s.attr_display_name);
    note_str(ch, "attr_email", old.attr_email, s.attr_email);
    note_str(ch, "attr_member_of", old.attr_member_of, s.attr_member_of);
    note_int(ch, "timeout", old.timeout, s.timeout);
    note_int(ch, "sync_interval", old.sync_interval, s.sync_interval);
    note_int(ch, "enabled", old.enabled, s.enabled);
    note_int(ch, "order", old.order, s.order);
    if (json_object_size(ch) == 0) {
        json_decref(ch);
        return BIC_E_OK;
    }
    return audit_write(req, "directory.update", "directory", req->param[0], true,
                       json_pack("{s:s, s:o}", "name", s.name, "changes", ch));
}

bic_err h_dirs_update(bic_req *req, bic_resp *resp)
{
    struct dir_ctx c = {req, 0};
    bic_rows rows;
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, update_tx, &c);
    if (e == BIC_E_OK) e = load_dir(req, req->db, STMT_dir_get, c.id, &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, dir_json(req, &rows, 0));
    return BIC_E_OK;
}

static bic_err delete_tx(bic_db *db, void *arg)
{
    struct dir_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_dir(req, db, STMT_dir_get_for_update, c->id, &cur);
    if (e != BIC_E_OK) return e;
    /* its users cannot sign in any more: sessions end now, not at their expiry */
    e = DB_EXEC(db, req->arena, STMT_dir_sessions_revoke, NULL, P_INT(c->id));
    if (e == BIC_E_OK) e = DB_EXEC(db, req->arena, STMT_dir_delete, NULL, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot delete the directory");
    return audit_write(req, "directory.delete", "directory", req->param[0], true,
                       json_pack("{s:s, s:s}", "name", col(&cur, 0, 1), "url", col(&cur, 0, 2)));
}

bic_err h_dirs_delete(bic_req *req, bic_resp *resp)
{
    struct dir_ctx c = {req, 0};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, delete_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

static bic_err sync_request_tx(bic_db *db, void *arg)
{
    struct dir_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_dir(req, db, STMT_dir_get_for_update, c->id, &cur);
    if (e != BIC_E_OK) return e;
    if (!rows_int(&cur, 0, 18))
        return fail(req, BIC_E_CONFLICT, "directory '%s' is disabled: enable it first",
                    col(&cur, 0, 1));
    e = DB_EXEC(db, req->arena, STMT_dir_sync_request, NULL, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot ask for a sync");
    return audit_write(req, "directory.sync_request", "directory", req->param[0], true,
                       json_pack("{s:s}", "name", col(&cur, 0, 1)));
}

bic_err h_dirs_sync(bic_req *req, bic_resp *resp)
{
    struct dir_ctx c = {req, 0};
    bic_rows rows;
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, sync_request_tx, &c);
    if (e == BIC_E_OK) e = load_dir(req, req->db, STMT_dir_get, c.id, &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 202, dir_json(req, &rows, 0));
    return BIC_E_OK;
}

/* ---- test connection ---- */

static long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* The step a fault is shown under: connect, starttls, bind or search. */
static const char *shown_step(const dir_fault *f)
{
    if (!strcmp(f->step, "connect") || !strcmp(f->step, "starttls") || !strcmp(f->step, "bind"))
        return f->step;
    return "search";
}

static const char *words(bic_arena *a, const dir_config *d, const dir_fault *f)
{
    const char *w = dir_diagnose(a, d, f);
    return w ? w : dir_explain(a, d, f);
}

/* The user part of a test: who the directory says the user is, and what BIC would make of him. */
static json_t *test_user(bic_req *req, const dir_config *d, dir_conn *conn, const char *name,
                         const char **step, const char **message)
{
    bic_arena *a = req->arena;
    dir_entry ent;
    dir_fault f;
    bool ambiguous;
    dir_status st = dir_find_user(conn, a, d, name, &ent, &ambiguous, &f);
    if (st == DIR_NO_USER) {
        *step = "search";
        *message =
            ambiguous ? arena_printf(a,
                                     "more than one entry under '%s' matches %s: make the "
                                     "user filter match one entry per user",
                                     d->user_base, dir_filter_expand(a, d->user_filter, name, NULL))
                      : arena_printf(a, "no entry under '%s' matches %s", d->user_base,
                                     dir_filter_expand(a, d->user_filter, name, NULL));
        return json_pack("{s:b}", "found", false);
    }
    if (st != DIR_OK) {
        *step = "search";
        *message = dir_explain(a, d, &f);
        return json_pack("{s:b}", "found", false);
    }
    bic_rows maps;
    bic_err e = DB_EXEC(req->db, a, STMT_dir_maps_of, &maps, P_INT(d->id));
    if (e != BIC_E_OK) maps.nrows = 0;
    json_t *groups = json_array();
    for (size_t i = 0; i < ent.ngroups; i++) {
        const char *norm = dir_dn_norm(a, ent.groups[i]);
        json_t *mapped = json_array();
        for (size_t j = 0; j < maps.nrows; j++)
            if (!strcmp(norm, dir_dn_norm(a, col(&maps, j, 1))))
                json_array_append_new(mapped, json_pack("{s:I, s:s}", "id",
                                                        (json_int_t)rows_int(&maps, j, 2), "name",
                                                        col(&maps, j, 3)));
        json_array_append_new(groups,
                              json_pack("{s:s, s:o}", "dn", ent.groups[i], "bic_groups", mapped));
    }
    if (!*ent.username) {
        *step = "search";
        *message = arena_printf(a,
                                "the entry %s has no %s attribute: BIC takes the user name from "
                                "it (attr_username)",
                                ent.dn, d->attr_username);
    }
    return json_pack("{s:b, s:s, s:s, s:s, s:s, s:b, s:o}", "found", true, "dn", ent.dn, "username",
                     ent.username, "display_name", ent.display_name, "email", ent.email, "disabled",
                     ent.disabled, "groups", groups);
}

bic_err h_dirs_test(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_dir(req, req->db, STMT_dir_get, id, &rows);
    if (e != BIC_E_OK) return e;
    bic_arena *a = req->arena;
    dir_config d;
    e = dir_config_from(req, &rows, 0, &d);
    if (e != BIC_E_OK) return e;
    const char *name = json_get_str(req->json, "username", NULL);
    const char *list[DIR_URLS_MAX];
    size_t n = dir_url_list(a, d.url, list, DIR_URLS_MAX);
    if (n > DIR_URLS_MAX) n = DIR_URLS_MAX;
    const char *step = NULL, *message = NULL;
    dir_conn *good = NULL;
    json_t *servers = json_array();
    for (size_t i = 0; i < n; i++) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        dir_conn *conn = NULL;
        dir_fault f;
        dir_status st = dir_connect_url(a, &d, list[i], &conn, &f);
        if (st == DIR_OK) st = dir_check_base(conn, a, d.user_base, &f);
        if (st == DIR_OK && *d.group_base) st = dir_check_base(conn, a, d.group_base, &f);
        json_t *s = json_pack("{s:s, s:b}", "url", list[i], "ok", st == DIR_OK);
        if (st == DIR_OK) {
            json_object_set_new(s, "tls", json_string(dir_conn_tls(a, conn)));
        } else {
            const char *w = words(a, &d, &f);
            json_object_set_new(s, "step", json_string(shown_step(&f)));
            json_object_set_new(s, "message", json_string(w));
            if (!step) {
                step = shown_step(&f);
                message = n > 1 ? arena_printf(a, "%s: %s", list[i], w) : w;
            }
        }
        json_object_set_new(s, "ms", json_integer(ms_since(&t0)));
        json_array_append_new(servers, s);
        if (st == DIR_OK && !good)
            good = conn;
        else if (conn)
            dir_close(conn);
    }
    json_t *out = json_object();
    if (name && good) {
        const char *ustep = NULL, *umsg = NULL;
        json_object_set_new(out, "user", test_user(req, &d, good, name, &ustep, &umsg));
        if (!step && ustep) {
            step = ustep;
            message = umsg;
        }
    }
    if (good) dir_close(good);
    json_object_set_new(out, "ok", json_boolean(step == NULL));
    json_object_set_new(out, "step", step ? json_string(step) : json_null());
    json_object_set_new(out, "message",
                        json_string(step   ? message
                                    : name ? "the servers answer and the user was found"
                                           : "the servers answer, the bind works and the bases "
                                             "exist"));
    json_object_set_new(out, "servers", servers);
    json_object_set_new(out, "warnings",
                        warnings_json(a, d.url, d.starttls, d.attr_member_of, d.group_base,
                                      rows_int(&rows, 0, 26)));
    json_t *sum = json_pack("{s:s, s:s}", "name", d.name, "step", step ? step : "");
    if (name) json_object_set_new(sum, "username", json_string(name));
    e = audit_write(req, "directory.test", "directory", req->param[0], step == NULL, sum);
    if (e != BIC_E_OK) {
        json_decref(out);
        return e;
    }
    resp_json(req, resp, 200, out);
    return BIC_E_OK;
}

/* ---- group mappings ---- */

static json_t *map_json(bic_req *req, const bic_rows *r, size_t i)
{
    return json_pack("{s:I, s:s, s:{s:I, s:s}, s:o}", "id", (json_int_t)rows_int(r, i, 0),
                     "group_dn", col(r, i, 1), "group", "id", (json_int_t)rows_int(r, i, 2), "name",
                     col(r, i, 3), "created_at", json_time(req, rows_str(r, i, 4)));
}

static bic_err map_check(bic_req *req)
{
    const char *dn = json_get_str(req->json, "group_dn", "");
    if (!dir_dn_ok(dn))
        return fail(req, BIC_E_VALIDATION,
                    "group_dn '%s' is not a DN such as cn=vdi-users,ou=groups,dc=example,dc=com",
                    dn);
    return BIC_E_OK;
}

static bic_err map_add(bic_req *req, bic_db *db, long long id, const bic_rows *d, long long *map_id)
{
    bic_rows g;
    const char *dn = json_get_str(req->json, "group_dn", "");
    long long gid = json_get_int(req->json, "group_id", 0);
    bic_err e = DB_EXEC(db, req->arena, STMT_group_get, &g, P_INT(gid));
    if (e != BIC_E_OK) return fail(req, e, "group lookup failed");
    if (g.nrows != 1) return fail(req, BIC_E_VALIDATION, "group_id %lld names no group", gid);
    unsigned char h[32];
    sha256_bytes(dir_dn_norm(req->arena, dn), h);
    e = DB_EXEC(db, req->arena, STMT_dir_map_insert, NULL, P_INT(id), P_STR(dn), P_BLOB(h, 32),
                P_INT(gid));
    if (e == BIC_E_CONFLICT)
        return fail(req, e, "'%s' is already mapped to group '%s'", dn, col(&g, 0, 1));
    if (e != BIC_E_OK) return fail(req, e, "cannot store the group mapping");
    *map_id = (long long)db_insert_id(db);
    return audit_write(req, "directory.map_add", "directory", req->param[0], true,
                       json_pack("{s:s, s:s, s:I, s:s}", "directory", col(d, 0, 1), "group_dn", dn,
                                 "group_id", (json_int_t)gid, "group", col(&g, 0, 1)));
}

static bic_err map_remove(bic_req *req, bic_db *db, long long id, const bic_rows *d,
                          const bic_rows *m)
{
    long long map_id = rows_int(m, 0, 0), gid = rows_int(m, 0, 2);
    bic_err e = DB_EXEC(db, req->arena, STMT_dir_map_delete, NULL, P_INT(map_id), P_INT(id));
    /* memberships the directory gave for a group it no longer maps go with the mapping */
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_dir_map_drop_members, NULL, P_INT(id), P_INT(gid),
                    P_INT(id), P_INT(gid));
    if (e != BIC_E_OK) return fail(req, e, "cannot remove the group mapping");
    unsigned long long dropped = db_affected(db);
    return audit_write(req, "directory.map_remove", "directory", req->param[0], true,
                       json_pack("{s:s, s:s, s:I, s:s, s:I}", "directory", col(d, 0, 1), "group_dn",
                                 col(m, 0, 1), "group_id", (json_int_t)gid, "group", col(m, 0, 3),
                                 "memberships_removed", (json_int_t)dropped));
}

static const bic_group_map_source dir_maps = {
    .noun = "directory",
    .path = "/api/v1/directories",
    .load = load_dir,
    .get = STMT_dir_conn_get,
    .get_for_update = STMT_dir_get_for_update,
    .lock_to_remove = true,
    .list = STMT_dir_maps_of,
    .map_get = STMT_dir_map_get,
    .item = map_json,
    .gone = BIC_E_NOT_FOUND,
    .check = map_check,
    .add = map_add,
    .remove = map_remove,
};

bic_err h_dirs_maps_list(bic_req *req, bic_resp *resp)
{
    return group_maps_list(req, resp, &dir_maps);
}

bic_err h_dirs_map_add(bic_req *req, bic_resp *resp)
{
    return group_maps_add(req, resp, &dir_maps);
}

bic_err h_dirs_map_delete(bic_req *req, bic_resp *resp)
{
    return group_maps_remove(req, resp, &dir_maps);
}

/* ---- the directory's users ---- */

static json_t *dir_user_json(bic_req *req, const bic_rows *r, size_t i)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:o, s:o}", "id",
                     (json_int_t)rows_int(r, i, 0), "username", col(r, i, 1), "display_name",
                     col(r, i, 2), "email", col(r, i, 3), "source", col(r, i, 9), "disabled",
                     rows_int(r, i, 4) != 0, "disabled_in_directory", rows_int(r, i, 5) != 0, "dn",
                     col(r, i, 6), "synced_at", json_time(req, rows_str(r, i, 7)), "last_login_at",
                     json_time(req, rows_str(r, i, 8)));
}

bic_err h_dirs_users(bic_req *req, bic_resp *resp)
{
    long long id, limit, after;
    bic_rows d, rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = query_page(req, 50, 500, "after", 0, &limit, &after);
    if (e == BIC_E_OK) e = load_dir(req, req->db, STMT_dir_conn_get, id, &d);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_dir_users, &rows, P_INT(id), P_INT(after), P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "directory user list failed");
    resp_page(req, resp, &rows, dir_user_json, limit, "next_after");
    return BIC_E_OK;
}

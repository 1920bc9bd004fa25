#include "directory.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "log.h"
#include "password.h"
#include "seal.h"
#include "session.h"

static const char *pw_aad(bic_req *req, long long id)
{
    return arena_printf(req->arena, "directory:%lld", id);
}

static void wipe_string(void *p)
{
    OPENSSL_cleanse(p, strlen(p));
}

bic_err dir_seal_password(bic_req *req, long long id, const char *password, unsigned char **out,
                          size_t *n)
{
    size_t len = strlen(password);
    if (len > DIR_PASSWORD_MAX)
        return fail(req, BIC_E_VALIDATION, "bind_password may be at most %d bytes",
                    DIR_PASSWORD_MAX);
    return seal_value(req, SEAL_DIRECTORY, pw_aad(req, id), password, len, out, n);
}

static const char *cell(const bic_rows *r, size_t i, size_t col)
{
    const char *s = rows_str(r, i, col);
    return s ? s : "";
}

bic_err dir_config_from(bic_req *req, const bic_rows *r, size_t i, dir_config *d)
{
    memset(d, 0, sizeof(*d));
    d->id = rows_int(r, i, 0);
    d->name = cell(r, i, 1);
    d->url = cell(r, i, 2);
    d->starttls = rows_int(r, i, 3) != 0;
    d->ca_pem = cell(r, i, 4);
    d->bind_dn = cell(r, i, 5);
    d->bind_password = "";
    d->user_base = cell(r, i, 7);
    d->user_filter = cell(r, i, 8);
    d->group_base = cell(r, i, 9);
    d->group_filter = cell(r, i, 10);
    d->disabled_filter = cell(r, i, 11);
    d->attr_username = cell(r, i, 12);
    d->attr_display_name = cell(r, i, 13);
    d->attr_email = cell(r, i, 14);
    d->attr_member_of = cell(r, i, 15);
    d->timeout = (int)rows_int(r, i, 16);
    if (d->timeout < 1 || d->timeout > DIR_TIMEOUT_MAX) d->timeout = 5;
    const char *sealed = rows_str(r, i, 6);
    if (!sealed) return BIC_E_OK;
    size_t n = r->len[i * r->ncols + 6];
    const unsigned char *key;
    bic_err e = seal_key(req, SEAL_DIRECTORY, &key);
    if (e != BIC_E_OK) return e;
    unsigned char *pw = arena_alloc(req->arena, n + 1);
    if (seal_decrypt(key, pw_aad(req, d->id), (const unsigned char *)sealed, n, pw) < 0)
        return fail(req, BIC_E_UNAVAILABLE,
                    "the bind password of directory '%s' does not open (was [auth] secret_file "
                    "replaced? set the password again)",
                    d->name);
    arena_defer(req->arena, wipe_string, pw);
    d->bind_password = (const char *)pw;
    return BIC_E_OK;
}

static bool in_list(const long long *ids, size_t n, long long id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

bic_err dir_mapped_groups(bic_req *req, long long dir_id, const dir_entry *e, long long **ids,
                          const char ***names, size_t *n)
{
    *n = 0;
    bic_rows m;
    bic_err err = DB_EXEC(req->db, req->arena, STMT_dir_maps_of, &m, P_INT(dir_id));
    if (err != BIC_E_OK) return fail(req, err, "cannot read the group mappings");
    *ids = arena_alloc(req->arena, (m.nrows + 1) * sizeof(**ids));
    *names = arena_alloc(req->arena, (m.nrows + 1) * sizeof(**names));
    if (!e || !e->ngroups || !m.nrows) return BIC_E_OK;
    const char **mine = arena_alloc(req->arena, e->ngroups * sizeof(*mine));
    for (size_t i = 0; i < e->ngroups; i++)
        mine[i] = dir_dn_norm(req->arena, e->groups[i]);
    for (size_t j = 0; j < m.nrows; j++) {
        long long gid = rows_int(&m, j, 2);
        if (in_list(*ids, *n, gid)) continue;
        const char *want = dir_dn_norm(req->arena, cell(&m, j, 1));
        for (size_t i = 0; i < e->ngroups; i++)
            if (!strcmp(mine[i], want)) {
                (*ids)[*n] = gid;
                (*names)[(*n)++] = cell(&m, j, 3);
                break;
            }
    }
    return BIC_E_OK;
}

/* ---- one user brought up to date with his entry ---- */

struct sync_ctx {
    bic_req *req;
    const dir_config *d;
    const dir_entry *e;   /* NULL: the directory no longer has this user */
    const char *username; /* for a new user */
    long long user_id;    /* 0: create the user */
    const long long *gids;
    const char **gnames;
    size_t ngroups;
    long long actor_id; /* 0 with actor "system" for the leader */
    const char *actor;
    long long id;  /* out: the user */
    bool conflict; /* out: the name or the row belongs to someone else now */
};

static json_t *names_json(const char **names, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

static void note(json_t *changes, const char *field, const char *before, const char *after)
{
    if (strcmp(before, after))
        json_object_set_new(changes, field, json_pack("{s:s, s:s}", "from", before, "to", after));
}

static bic_err sync_tx(bic_db *db, void *arg)
{
    struct sync_ctx *c = arg;
    bic_req *req = c->req;
    bic_arena *a = req->arena;
    c->id = c->user_id;
    c->conflict = false;
    bool created = false, was_disabled = false, disabled = c->e ? c->e->disabled : true;
    const char *old_display = "", *old_email = "";
    const char *display = c->e ? c->e->display_name : "", *email = c->e ? c->e->email : "";
    const char *dn = c->e ? c->e->dn : "";
    bic_err e;
    if (!c->id) {
        e = DB_EXEC(db, a, STMT_dir_user_insert, NULL, P_STR(c->username), P_STR(display),
                    P_STR(email), P_INT(c->d->id), P_STR(dn));
        if (e == BIC_E_CONFLICT) { /* created by a concurrent sign-in, or a local account */
            c->conflict = true;
            return BIC_E_OK;
        }
        if (e != BIC_E_OK) return fail(req, e, "cannot create the directory user");
        c->id = (long long)db_insert_id(db);
        created = true;
    } else {
        bic_rows u;
        e = DB_EXEC(db, a, STMT_dir_user_lock, &u, P_INT(c->id));
        if (e != BIC_E_OK) return fail(req, e, "cannot lock the directory user");
        if (u.nrows != 1 || strcmp(cell(&u, 0, 1), "ldap") || !rows_str(&u, 0, 2) ||
            rows_int(&u, 0, 2) != c->d->id) {
            c->conflict = true;
            return BIC_E_OK;
        }
        old_display = cell(&u, 0, 3);
        old_email = cell(&u, 0, 4);
        was_disabled = rows_int(&u, 0, 6) != 0;
        if (!c->e) {
            display = old_display;
            email = old_email;
            dn = cell(&u, 0, 5);
        }
        e = DB_EXEC(db, a, STMT_dir_user_update, NULL, P_STR(display), P_STR(email), P_STR(dn),
                    P_INT(disabled), P_INT(c->id));
        if (e != BIC_E_OK) return fail(req, e, "cannot update the directory user");
    }
    bic_rows m;
    e = DB_EXEC(db, a, STMT_dir_member_list, &m, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot read the user's groups");
    const char **added = arena_alloc(a, (c->ngroups + 1) * sizeof(*added));
    const char **removed = arena_alloc(a, (m.nrows + 1) * sizeof(*removed));
    size_t nadd = 0, nrm = 0;
    for (size_t j = 0; j < m.nrows; j++) {
        long long gid = rows_int(&m, j, 0);
        if (!rows_str(&m, j, 2) || rows_int(&m, j, 2) != c->d->id) continue;
        if (c->e && in_list(c->gids, c->ngroups, gid)) continue;
        e = DB_EXEC(db, a, STMT_dir_member_remove, NULL, P_INT(gid), P_INT(c->id), P_INT(c->d->id));
        if (e != BIC_E_OK) return fail(req, e, "cannot remove a directory membership");
        removed[nrm++] = cell(&m, j, 1);
    }
    for (size_t k = 0; c->e && k < c->ngroups; k++) {
        bool present = false;
        for (size_t j = 0; j < m.nrows && !present; j++)
            present = rows_int(&m, j, 0) == c->gids[k];
        if (present) continue; /* the directory's already, or an admin's that stays the admin's */
        e = DB_EXEC(db, a, STMT_dir_member_add, NULL, P_INT(c->gids[k]), P_INT(c->id),
                    P_INT(c->d->id));
        if (e != BIC_E_OK) return fail(req, e, "cannot add a directory membership");
        added[nadd++] = c->gnames[k];
    }
    if (disabled && !was_disabled && !created) {
        e = session_revoke_user(req, c->id);
        if (e != BIC_E_OK) return e;
    }
    const char *target = arena_printf(a, "%lld", c->id);
    long long actor_id = c->actor_id ? c->actor_id : 0;
    if (created) {
        if (!actor_id && strcmp(c->actor, "system")) actor_id = c->id;
        return audit_write_as(req, actor_id, c->actor, "directory.user_create", "user", target,
                              true,
                              json_pack("{s:s, s:I, s:s, s:s, s:o}", "directory", c->d->name,
                                        "directory_id", (json_int_t)c->d->id, "username",
                                        c->username, "dn", dn, "groups", names_json(added, nadd)));
    }
    json_t *changes = json_object();
    note(changes, "display_name", old_display, display);
    note(changes, "email", old_email, email);
    note(changes, "disabled_in_directory", was_disabled ? "true" : "false",
         disabled ? "true" : "false");
    if (nadd) json_object_set_new(changes, "groups_added", names_json(added, nadd));
    if (nrm) json_object_set_new(changes, "groups_removed", names_json(removed, nrm));
    if (json_object_size(changes) == 0) {
        json_decref(changes);
        return BIC_E_OK;
    }
    if (!c->e) json_object_set_new(changes, "reason", json_string("not in the directory any more"));
    json_object_set_new(changes, "directory", json_string(c->d->name));
    return audit_write_as(req, actor_id, c->actor,
                          disabled && !was_disabled ? "directory.user_disable"
                                                    : "directory.user_sync",
                          "user", target, true, changes);
}

/* ---- sign-in ---- */

static void close_conn(void *c)
{
    dir_close(c);
}

/* A refusal: the reason for the audit row, and a hash's worth of time like a local refusal. */
static bic_err refuse(bic_req *req, const char *password, const char **why, const char *reason)
{
    bool dummy = false;
    *why = reason;
    bic_err e = password_verify(password, NULL, &dummy);
    if (e != BIC_E_OK) return fail(req, e, "password check unavailable");
    return BIC_E_OK;
}

static bic_err unavailable(bic_req *req, bic_resp *resp, const dir_config *d, const dir_fault *f)
{
    const char *words = dir_explain(req->arena, d, f);
    req->err_reason = "directory_unavailable";
    resp_header(req, resp, "Retry-After: 10");
    return fail(req, BIC_E_UNAVAILABLE,
                "directory '%s' cannot be used for sign-in (%s, LDAP %d): %s", d->name,
                f->step ? f->step : "?", f->rc, words);
}

/* A name the directory gives that can be a BIC user name: 1..64 bytes of UTF-8 text. */
static bool name_usable(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return false;
    json_t *j = json_stringn(s, n); /* NULL when not UTF-8 */
    json_decref(j);
    return j != NULL;
}

/* At most max bytes of s, cut at a UTF-8 character boundary; "" when s is not UTF-8. */
static const char *fit(bic_arena *a, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    json_t *j = json_stringn(s, n);
    if (!j) return "";
    json_decref(j);
    return arena_strndup(a, s, n);
}

/* The directory found the user in d: checks, bind, then his BIC user. */
static bic_err login_found(bic_req *req, bic_resp *resp, const dir_config *d, dir_conn *conn,
                           dir_entry *ent, const char **username, const char *password,
                           long long owner_uid, bic_rows *rows, bool *ok, const char **why)
{
    const char *typed = *username;
    const char *name = ent->username;
    if (owner_uid) {
        name = typed; /* an existing user keeps his name even if the directory respelled it */
    } else if (!name_usable(name)) {
        LOG_WARN(req->request_id,
                 "directory '%s': entry '%s' has no usable %s (1-64 bytes of text); refused",
                 d->name, ent->dn, d->attr_username);
        return refuse(req, password, why, "no usable user name in the directory");
    }
    long long uid = owner_uid;
    if (!uid) {
        bic_rows u;
        bic_err e = DB_EXEC(req->db, req->arena, STMT_dir_user_by_name, &u, P_STR(name));
        if (e != BIC_E_OK) return fail(req, e, "user lookup failed");
        if (u.nrows) {
            if (strcmp(cell(&u, 0, 1), "ldap") || !rows_str(&u, 0, 2) ||
                rows_int(&u, 0, 2) != d->id) {
                LOG_WARN(req->request_id,
                         "directory '%s': '%s' is the name of a %s account of BIC; refused",
                         d->name, name,
                         !strcmp(cell(&u, 0, 1), "ldap") ? "another directory's" : "non-directory");
                return refuse(req, password, why, "the name belongs to another account");
            }
            uid = rows_int(&u, 0, 0);
        }
    }
    if (strcmp(name, typed)) {
        /* failures count on the directory's spelling, so other spellings gain no attempts */
        bic_rows lock;
        bic_err e = DB_EXEC(req->db, req->arena, STMT_throttle_locked, &lock, P_STR(name));
        if (e != BIC_E_OK) return fail(req, e, "throttle lookup failed");
        if (lock.nrows) {
            long long wait = rows_int(&lock, 0, 0);
            resp_header(req, resp, "Retry-After: %lld", wait > 0 ? wait : 1);
            audit_write_as(req, uid, name, "auth.login", "user", name, false,
                           json_pack("{s:s}", "reason", "locked"));
            return fail(req, BIC_E_LOCKED, "too many failed sign-ins; try again in %lld seconds",
                        wait > 0 ? wait : 1);
        }
        *username = name;
    }
    long long *gids;
    const char **gnames;
    size_t ng;
    bic_err e = dir_mapped_groups(req, d->id, ent, &gids, &gnames, &ng);
    if (e != BIC_E_OK) return e;
    ent->display_name = fit(req->arena, ent->display_name, 128);
    ent->email = fit(req->arena, ent->email, 254);
    struct sync_ctx c = {req, d, ent, name, uid, gids, gnames, ng, uid, name, 0, false};
    if (ent->disabled) {
        /* no bind for a disabled account: the directory may count it as a failure */
        if (uid) {
            e = db_tx(req->db, sync_tx, &c);
            if (e != BIC_E_OK) return e;
        }
        return refuse(req, password, why, "disabled in the directory");
    }
    dir_fault f;
    dir_status st = dir_bind_user(conn, ent->dn, password, &f);
    if (st == DIR_DOWN) return unavailable(req, resp, d, &f);
    if (st != DIR_OK) {
        if (f.rc != 49) /* not plain invalidCredentials: e.g. a password policy's lock */
            LOG_INFO(req->request_id, "directory '%s' refused the bind of '%s': %s (%s)", d->name,
                     ent->dn, dir_explain(req->arena, d, &f), f.diag);
        return refuse(req, password, why, "wrong password");
    }
    for (int attempt = 0;; attempt++) {
        e = db_tx(req->db, sync_tx, &c);
        if (e != BIC_E_OK) return e;
        if (!c.conflict) break;
        bic_rows u;
        e = DB_EXEC(req->db, req->arena, STMT_dir_user_by_name, &u, P_STR(name));
        if (e != BIC_E_OK) return fail(req, e, "user lookup failed");
        if (attempt || u.nrows != 1 || strcmp(cell(&u, 0, 1), "ldap") || !rows_str(&u, 0, 2) ||
            rows_int(&u, 0, 2) != d->id) {
            LOG_WARN(req->request_id, "directory '%s': the account '%s' changed hands; refused",
                     d->name, name);
            return refuse(req, password, why, "the name belongs to another account");
        }
        c.user_id = c.actor_id = rows_int(&u, 0, 0); /* a concurrent sign-in created him */
    }
    e = DB_EXEC(req->db, req->arena, STMT_user_auth_by_name, rows, P_STR(name));
    if (e != BIC_E_OK) return fail(req, e, "user lookup failed");
    if (rows->nrows != 1)
        return fail(req, BIC_E_INTERNAL, "the directory user '%s' vanished", name);
    *ok = true;
    return BIC_E_OK;
}

bic_err dir_login(bic_req *req, bic_resp *resp, const char **username, const char *password,
                  bic_rows *rows, bool *handled, bool *ok, const char **why)
{
    *handled = *ok = false;
    *why = NULL;
    const char *name = *username;
    long long owner = 0, owner_uid = 0;
    bic_rows dirs;
    bic_err e;
    if (rows->nrows == 1) {
        if (rows_str(rows, 0, 1)) return BIC_E_OK; /* a local password: no directory is asked */
        bic_rows u;
        e = DB_EXEC(req->db, req->arena, STMT_dir_user_by_name, &u, P_STR(name));
        if (e != BIC_E_OK) return fail(req, e, "user lookup failed");
        if (u.nrows != 1 || strcmp(cell(&u, 0, 1), "ldap")) return BIC_E_OK;
        *handled = true;
        if (!rows_str(&u, 0, 2)) return refuse(req, password, why, "the directory was deleted");
        owner = rows_int(&u, 0, 2);
        owner_uid = rows_int(&u, 0, 0);
        e = DB_EXEC(req->db, req->arena, STMT_dir_conn_get, &dirs, P_INT(owner));
        if (e != BIC_E_OK) return fail(req, e, "directory lookup failed");
        if (dirs.nrows != 1 || !rows_int(&dirs, 0, 18))
            return refuse(req, password, why, "the directory is disabled");
    } else {
        e = DB_EXEC0(req->db, req->arena, STMT_dir_enabled, &dirs);
        if (e != BIC_E_OK) return fail(req, e, "directory lookup failed");
        if (!dirs.nrows) return BIC_E_OK;
        *handled = true;
    }
    /* In order; the first directory that has the name decides. One that cannot be asked stops
     * the search, so a name never lands in a later directory because an earlier one is down. */
    for (size_t i = 0; i < dirs.nrows; i++) {
        dir_config d;
        e = dir_config_from(req, &dirs, i, &d);
        if (e != BIC_E_OK) {
            req->err_reason = "directory_unavailable";
            return e;
        }
        dir_conn *conn;
        dir_fault f;
        dir_status st = dir_connect(req->arena, &d, &conn, &f);
        if (st != DIR_OK) return unavailable(req, resp, &d, &f);
        arena_defer(req->arena, close_conn, conn);
        dir_entry ent;
        bool ambiguous;
        st = dir_find_user(conn, req->arena, &d, name, &ent, &ambiguous, &f);
        if (st == DIR_NO_USER) {
            if (ambiguous)
                LOG_WARN(req->request_id,
                         "directory '%s': more than one entry matches the user filter for '%s'",
                         d.name, name);
            if (owner || ambiguous)
                return refuse(req, password, why,
                              ambiguous ? "several entries in the directory"
                                        : "not in the directory");
            continue;
        }
        if (st != DIR_OK) return unavailable(req, resp, &d, &f);
        return login_found(req, resp, &d, conn, &ent, username, password, owner_uid, rows, ok, why);
    }
    return refuse(req, password, why, "unknown user");
}

/* ---- the leader's scheduled sync ---- */

/* The pass in progress; only the controller thread touches it. */
static struct {
    long long dir_id;
    long long after; /* user id */
    long users, found;
} pass;

static void end_pass(bic_req *req, const char *error)
{
    if (error && *error)
        LOG_WARN(req->request_id, "directory %lld: sync stopped: %s", pass.dir_id, error);
    DB_EXEC(req->db, req->arena, STMT_dir_sync_end, NULL, P_STR(error ? error : ""),
            P_INT(pass.users), P_INT(pass.dir_id));
    memset(&pass, 0, sizeof(pass));
}

/* Syncs one user with the entry the directory has for him (NULL: none). */
static void sync_one(bic_req *req, const dir_config *d, long long uid, const char *username,
                     const dir_entry *ent)
{
    long long *gids = NULL;
    const char **gnames = NULL;
    size_t ng = 0;
    if (ent && dir_mapped_groups(req, d->id, ent, &gids, &gnames, &ng) != BIC_E_OK) return;
    dir_entry fitted;
    if (ent) {
        fitted = *ent;
        fitted.display_name = fit(req->arena, ent->display_name, 128);
        fitted.email = fit(req->arena, ent->email, 254);
    }
    struct sync_ctx c = {
        req, d, ent ? &fitted : NULL, username, uid, gids, gnames, ng, 0, "system", 0, false};
    db_tx(req->db, sync_tx, &c);
}

void dir_tick(bic_db *db, bic_arena *a, const bic_config *cfg)
{
    bic_req req;
    memset(&req, 0, sizeof(req));
    req.db = db;
    req.arena = a;
    req.cfg = cfg;
    req.remote_addr = "";
    req.who.username = "system";
    snprintf(req.request_id, sizeof(req.request_id), "ctl-directory");
    bic_rows r;
    if (!pass.dir_id) {
        long every = cfg->directory_sync_interval > 0 ? cfg->directory_sync_interval : 0;
        if (DB_EXEC(db, a, STMT_dir_sync_due, &r, P_INT(every), P_INT(every)) != BIC_E_OK ||
            !r.nrows)
            return;
        pass.dir_id = rows_int(&r, 0, 0);
        if (DB_EXEC(db, a, STMT_dir_sync_start, NULL, P_INT(pass.dir_id)) != BIC_E_OK) {
            memset(&pass, 0, sizeof(pass));
            return;
        }
    }
    if (DB_EXEC(db, a, STMT_dir_conn_get, &r, P_INT(pass.dir_id)) != BIC_E_OK) return;
    if (r.nrows != 1 || !rows_int(&r, 0, 18)) { /* deleted or disabled meanwhile */
        memset(&pass, 0, sizeof(pass));
        return;
    }
    dir_config d;
    if (dir_config_from(&req, &r, 0, &d) != BIC_E_OK) {
        end_pass(&req, "the bind password does not open: set it again");
        return;
    }
    bic_rows users;
    if (DB_EXEC(db, a, STMT_dir_sync_users, &users, P_INT(d.id), P_INT(pass.after),
                P_INT(DIR_SYNC_BATCH)) != BIC_E_OK)
        return;
    if (!users.nrows) {
        end_pass(&req, "");
        return;
    }
    dir_conn *conn;
    dir_fault f;
    if (dir_connect(a, &d, &conn, &f) != DIR_OK) {
        end_pass(&req, dir_explain(a, &d, &f));
        return;
    }
    /* users the directory does not have are disabled only once the pass has found someone:
     * a wrong filter or base then disables nobody */
    long long *missing = arena_alloc(a, users.nrows * sizeof(*missing));
    const char **missing_names = arena_alloc(a, users.nrows * sizeof(*missing_names));
    size_t nmissing = 0;
    const char *error = NULL;
    for (size_t i = 0; i < users.nrows && !error; i++) {
        long long uid = rows_int(&users, i, 0);
        const char *uname = cell(&users, i, 1);
        dir_entry ent;
        bool ambiguous;
        dir_status st = dir_find_user(conn, a, &d, uname, &ent, &ambiguous, &f);
        if (st == DIR_OK) {
            pass.found++;
            sync_one(&req, &d, uid, uname, &ent);
        } else if (st == DIR_NO_USER && ambiguous) {
            LOG_WARN(req.request_id, "directory '%s': several entries match '%s'; not synced",
                     d.name, uname);
        } else if (st == DIR_NO_USER) {
            missing[nmissing] = uid;
            missing_names[nmissing++] = uname;
        } else {
            error = dir_explain(a, &d, &f);
            break;
        }
        pass.after = uid;
        pass.users++;
    }
    dir_close(conn);
    if (!error && nmissing && !pass.found)
        error = arena_printf(a,
                             "none of the %ld users looked at so far was found with the user "
                             "filter; nobody was disabled (check the user base and filter)",
                             pass.users);
    for (size_t i = 0; !error && i < nmissing; i++)
        sync_one(&req, &d, missing[i], missing_names[i], NULL);
    if (error || users.nrows < DIR_SYNC_BATCH) end_pass(&req, error ? error : "");
}

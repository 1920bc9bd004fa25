/*
 * h_recovery.c - failure recovery in the API (docs/automation.md, "Failure recovery"): a
 * module's settings and its servers' recovery states, the automation action log, a server's
 * BMC (the password sealed, never returned), and the two admin decisions: "this server is
 * off" (confirm: its desktops are recovered) and "this server is back" (clear). Every change
 * is audited in its transaction; the admin decisions are also automation actions and events.
 */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "fence.h"
#include "handlers.h"
#include "recovery.h"
#include "seal.h"
#include "util.h"

#define BMC_PASSWORD_MAX 256
#define BMC_CA_MAX       16384

static const char *const fallbacks[] = {"admin", "retry", NULL};
static const char *const bmc_types[] = {"none", "ipmi", "redfish", NULL};
static const char *const loops[] = {"recovery", "power", "balance", NULL};

const bic_field fields_recovery_settings[] = {
    {"enabled", F_BOOL, false},
    {"dry_run", F_BOOL, false},
    {"suspect_grace_s", F_INT, false, 1, 86400},
    {"fence_timeout_s", F_INT, false, 1, 3600},
    {"fence_fallback", F_STR, false, 1, 16, fallbacks},
    {"fence_retry_s", F_INT, false, 10, 86400},
    {"shared_storage", F_BOOL, false},
    {"batch", F_INT, false, 1, 1000},
    {0},
};

const bic_field fields_server_bmc[] = {
    {"type", F_STR, true, 1, 16, bmc_types},
    {"address", F_STR, false, 0, 255},
    {"user", F_STR, false, 0, 128},
    {"password", F_STR, false, 0, BMC_PASSWORD_MAX, NULL, true},
    {"ca_cert", F_STR, false, 0, BMC_CA_MAX, NULL, true},
    {0},
};

const bic_field fields_recovery_note[] = {
    {"confirm", F_BOOL, true},
    {"note", F_STR, false, 0, 255},
    {0},
};

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

/* ---- settings ---- */

static json_t *servers_json(bic_req *req, long long module)
{
    bic_rows r;
    json_t *items = json_array();
    if (DB_EXEC(req->db, req->arena, STMT_rec_module_servers, &r, P_INT(module)) != BIC_E_OK)
        return items;
    for (size_t i = 0; i < r.nrows; i++) {
        json_t *o =
            json_pack("{s:I, s:s, s:s, s:b, s:s, s:s, s:o, s:s, s:o}", "id",
                      (json_int_t)rows_int(&r, i, 0), "hostname", rows_str(&r, i, 1), "state",
                      rows_str(&r, i, 2), "maintenance", rows_int(&r, i, 3) != 0, "recovery_state",
                      rows_str(&r, i, 4), "recovery_reason", rows_str(&r, i, 5),
                      "recovery_changed_at", json_time(req, rows_str(&r, i, 6)), "fence_method",
                      rows_str(&r, i, 7), "last_heartbeat_at", json_time(req, rows_str(&r, i, 8)));
        json_object_set_new(o, "bmc",
                            json_pack("{s:s, s:s, s:s, s:b}", "type", rows_str(&r, i, 9), "address",
                                      rows_str(&r, i, 10), "user", rows_str(&r, i, 11),
                                      "password_set", rows_int(&r, i, 12) != 0));
        json_object_set_new(o, "recovery_done_at", json_time(req, rows_str(&r, i, 13)));
        json_object_set_new(o, "desktops", json_integer(rows_int(&r, i, 14)));
        json_object_set_new(o, "desktops_recovering", json_integer(rows_int(&r, i, 15)));
        json_object_set_new(o, "desktops_stranded", json_integer(rows_int(&r, i, 16)));
        json_array_append_new(items, o);
    }
    return items;
}

static json_t *settings_json(bic_req *req, const bic_rows *s)
{
    return json_pack("{s:I, s:b, s:b, s:I, s:I, s:s, s:I, s:b, s:I, s:s, s:o, s:b}", "module_id",
                     (json_int_t)rows_int(s, 0, 0), "enabled", rows_int(s, 0, 1) != 0, "dry_run",
                     rows_int(s, 0, 2) != 0, "suspect_grace_s", (json_int_t)rows_int(s, 0, 3),
                     "fence_timeout_s", (json_int_t)rows_int(s, 0, 4), "fence_fallback",
                     rows_str(s, 0, 5), "fence_retry_s", (json_int_t)rows_int(s, 0, 6),
                     "shared_storage", rows_int(s, 0, 7) != 0, "batch",
                     (json_int_t)rows_int(s, 0, 8), "updated_by", rows_str(s, 0, 9), "updated_at",
                     json_time(req, rows_str(s, 0, 10)), "defaults", rows_str(s, 0, 10) == NULL);
}

static bic_err settings_load(bic_req *req, long long *id, bic_rows *s)
{
    bic_err e = param_id(req, 0, id);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_rec_settings_get, s, P_INT(*id));
    if (e != BIC_E_OK) return fail(req, e, "settings lookup failed");
    if (s->nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no module %lld", *id);
    return BIC_E_OK;
}

bic_err h_recovery_settings_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows s;
    bic_err e = settings_load(req, &id, &s);
    if (e != BIC_E_OK) return e;
    json_t *o = settings_json(req, &s);
    json_object_set_new(o, "servers", servers_json(req, id));
    resp_json(req, resp, 200, o);
    return BIC_E_OK;
}

struct put_ctx {
    bic_req *req;
    long long id;
    json_t *out;
};

static bic_err settings_put_tx(bic_db *db, void *arg)
{
    struct put_ctx *p = arg;
    bic_req *req = p->req;
    const json_t *b = req->json;
    bic_rows s;
    bic_err e = DB_EXEC(db, req->arena, STMT_rec_settings_get, &s, P_INT(p->id));
    if (e != BIC_E_OK) return fail(req, e, "settings lookup failed");
    if (s.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no module %lld", p->id);
    bool enabled = json_get_bool(b, "enabled", rows_int(&s, 0, 1) != 0);
    bool dry = json_get_bool(b, "dry_run", rows_int(&s, 0, 2) != 0);
    long long grace = json_get_int(b, "suspect_grace_s", rows_int(&s, 0, 3));
    long long timeout = json_get_int(b, "fence_timeout_s", rows_int(&s, 0, 4));
    const char *fallback = json_get_str(b, "fence_fallback", rows_str(&s, 0, 5));
    long long retry = json_get_int(b, "fence_retry_s", rows_int(&s, 0, 6));
    bool shared = json_get_bool(b, "shared_storage", rows_int(&s, 0, 7) != 0);
    long long batch = json_get_int(b, "batch", rows_int(&s, 0, 8));
    e = DB_EXEC(db, req->arena, STMT_rec_settings_put, NULL, P_INT(p->id), P_INT(enabled),
                P_INT(dry), P_INT(grace), P_INT(timeout), P_STR(fallback), P_INT(retry),
                P_INT(shared), P_INT(batch), P_STR(req->who.username));
    if (e != BIC_E_OK) return fail(req, e, "settings update failed");
    json_t *changed = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)b, k, v) json_object_set(changed, k, v);
    e = audit_write(req, "recovery.settings", "module", arena_printf(req->arena, "%lld", p->id),
                    true, json_pack("{s:o}", "changed", changed));
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(db, req->arena, STMT_rec_settings_get, &s, P_INT(p->id));
    if (e != BIC_E_OK || s.nrows != 1) return fail(req, BIC_E_INTERNAL, "settings reread failed");
    p->out = settings_json(req, &s);
    return BIC_E_OK;
}

bic_err h_recovery_settings_put(bic_req *req, bic_resp *resp)
{
    struct put_ctx p = {.req = req};
    bic_err e = param_id(req, 0, &p.id);
    if (e != BIC_E_OK) return e;
    e = db_tx(req->db, settings_put_tx, &p);
    if (e != BIC_E_OK) {
        json_decref(p.out);
        return e;
    }
    json_object_set_new(p.out, "servers", servers_json(req, p.id));
    resp_json(req, resp, 200, p.out);
    return BIC_E_OK;
}

/* ---- the action log ---- */

static json_t *action_json(bic_req *req, const bic_rows *r, size_t i)
{
#define OPT_INT(c) (rows_str(r, i, c) ? json_integer(rows_int(r, i, c)) : json_null())
#define OPT_STR(c) (rows_str(r, i, c) ? json_string(rows_str(r, i, c)) : json_null())
    json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:o, s:o, s:o, s:s, s:b, s:s, s:o, s:o}", "id",
                          (json_int_t)rows_int(r, i, 0), "module_id", (json_int_t)rows_int(r, i, 1),
                          "loop", rows_str(r, i, 2), "action", rows_str(r, i, 3), "server_id",
                          OPT_INT(4), "desktop_id", OPT_INT(5), "target_server_id", OPT_INT(6),
                          "state", rows_str(r, i, 7), "dry_run", rows_int(r, i, 8) != 0, "reason",
                          rows_str(r, i, 9), "created_at", json_time(req, rows_str(r, i, 10)),
                          "updated_at", json_time(req, rows_str(r, i, 11)));
    json_object_set_new(o, "server", OPT_STR(12));
    json_object_set_new(o, "target_server", OPT_STR(13));
    json_object_set_new(o, "desktop", OPT_STR(14));
    return o;
#undef OPT_INT
#undef OPT_STR
}

bic_err h_automation_actions(bic_req *req, bic_resp *resp)
{
    long long id, limit, before;
    bic_rows s, r;
    bic_err e = settings_load(req, &id, &s);
    if (e != BIC_E_OK) return e;
    e = query_page(req, 100, 500, "before", (long long)9e18, &limit, &before);
    if (e != BIC_E_OK) return e;
    const char *loop = req_query(req, "loop");
    if (loop && !*loop) loop = NULL;
    bool ok = !loop;
    for (const char *const *l = loops; loop && *l; l++)
        ok |= !strcmp(*l, loop);
    if (!ok) return fail(req, BIC_E_VALIDATION, "loop must be recovery, power or balance");
    e = DB_EXEC(req->db, req->arena, STMT_rec_actions_list, &r, P_INT(id), P_STR(loop), P_STR(loop),
                P_INT(before), P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "action list failed");
    resp_page(req, resp, &r, action_json, limit, "next_before");
    return BIC_E_OK;
}

/* ---- a server's BMC ---- */

static json_t *server_recovery_json(bic_req *req, const bic_rows *r)
{
    return json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:b, s:{s:s, s:s, s:s, s:b, s:b}}",
                     "id", (json_int_t)rows_int(r, 0, 0), "module_id",
                     (json_int_t)rows_int(r, 0, 1), "hostname", rows_str(r, 0, 2), "state",
                     rows_str(r, 0, 3), "recovery_state", rows_str(r, 0, 4), "recovery_reason",
                     rows_str(r, 0, 10), "recovery_changed_at", json_time(req, rows_str(r, 0, 11)),
                     "fence_method", rows_str(r, 0, 12), "maintenance", rows_int(r, 0, 13) != 0,
                     "bmc", "type", rows_str(r, 0, 5), "address", rows_str(r, 0, 6), "user",
                     rows_str(r, 0, 7), "password_set", rows_int(r, 0, 8) != 0, "ca_cert_set",
                     rows_int(r, 0, 9) != 0);
}

struct srv_ctx {
    bic_req *req;
    long long id;
    json_t *out;
};

static bic_err server_lock(bic_req *req, long long id, bic_rows *s)
{
    bic_err e = DB_EXEC(req->db, req->arena, STMT_rec_server_get, s, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "server lookup failed");
    if (s->nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no server %lld", id);
    return BIC_E_OK;
}

/* The end of a change in its transaction: the server's new state becomes the answer. */
static bic_err server_reread(struct srv_ctx *p)
{
    bic_rows s;
    bic_err e = server_lock(p->req, p->id, &s);
    if (e != BIC_E_OK) return e;
    json_decref(p->out); /* from a run that db_tx repeats */
    p->out = server_recovery_json(p->req, &s);
    return BIC_E_OK;
}

/* Runs the change tx on server p->id and answers 200 with its new state. */
static bic_err server_change(bic_req *req, bic_resp *resp, struct srv_ctx *p, bic_tx_fn tx)
{
    bic_err e = db_tx(req->db, tx, p);
    if (e != BIC_E_OK) {
        json_decref(p->out);
        return e;
    }
    resp_json(req, resp, 200, p->out);
    return BIC_E_OK;
}

static bic_err bmc_tx(bic_db *db, void *arg)
{
    struct srv_ctx *p = arg;
    bic_req *req = p->req;
    const json_t *b = req->json;
    bic_rows s;
    bic_err e = server_lock(req, p->id, &s);
    if (e != BIC_E_OK) return e;
    const char *type = json_get_str(b, "type", "none");
    bool none = !strcmp(type, "none");
    const char *addr = none ? "" : json_get_str(b, "address", rows_str(&s, 0, 6));
    const char *user = none ? "" : json_get_str(b, "user", rows_str(&s, 0, 7));
    char why[160];
    if (!none && !fence_address_valid(!strcmp(type, "ipmi") ? FENCE_IPMI : FENCE_REDFISH, addr, why,
                                      sizeof(why)))
        return fail(req, BIC_E_VALIDATION, "address: %s", why);
    if (has_ctl(user) || (user[0] == '-'))
        return fail(req, BIC_E_VALIDATION,
                    "user must not start with '-' or hold control characters");
    json_t *pw = json_object_get(b, "password"), *ca = json_object_get(b, "ca_cert");
    bool clear_pw = none || json_is_null(pw) || (json_is_string(pw) && !*json_string_value(pw));
    bool clear_ca = none || json_is_null(ca) || (json_is_string(ca) && !*json_string_value(ca));
    if (!pw) clear_pw = none;
    if (!ca) clear_ca = none;
    unsigned char *sealed = NULL;
    size_t sn = 0;
    if (!clear_pw && json_is_string(pw)) {
        const char *v = json_string_value(pw);
        e = seal_value(req, SEAL_BMC, arena_printf(req->arena, "server:%lld", p->id), v, strlen(v),
                       &sealed, &sn);
        if (e != BIC_E_OK) return e;
    }
    const char *cav = json_is_string(ca) && !clear_ca ? json_string_value(ca) : NULL;
    if (cav && !strstr(cav, "-----BEGIN CERTIFICATE-----"))
        return fail(req, BIC_E_VALIDATION, "ca_cert must be PEM certificates");
    e = DB_EXEC(db, req->arena, STMT_rec_server_bmc_put, NULL, P_STR(type), P_STR(addr),
                P_STR(user), P_INT(clear_pw), sealed ? P_BLOB(sealed, sn) : P_NULL, P_INT(clear_ca),
                P_STR(cav), P_INT(p->id));
    if (e != BIC_E_OK) return fail(req, e, "BMC update failed");
    e = audit_write(req, "server.bmc", "server", arena_printf(req->arena, "%lld", p->id), true,
                    json_pack("{s:s, s:s, s:s, s:b, s:b}", "type", type, "address", addr, "user",
                              user, "password_changed", sealed != NULL || (pw && clear_pw),
                              "ca_changed", cav != NULL || (ca && clear_ca)));
    if (e != BIC_E_OK) return e;
    return server_reread(p);
}

bic_err h_server_bmc_put(bic_req *req, bic_resp *resp)
{
    struct srv_ctx p = {.req = req};
    bic_err e = param_id(req, 0, &p.id);
    return e == BIC_E_OK ? server_change(req, resp, &p, bmc_tx) : e;
}

/* ---- the admin's decisions ---- */

/* The end of a decision on server p->id (its locked row in s), in its transaction: recorded as
 * action for why (what names it in the log), then the server's new state becomes the answer. */
static bic_err decision_done(struct srv_ctx *p, const bic_rows *s, const char *action,
                             const char *what, const char *why)
{
    bic_err e = recovery_record(p->req, rows_int(s, 0, 1), action, p->id, 0, NULL, 0, "done", false,
                                why, NULL);
    if (e != BIC_E_OK) return fail(p->req, e, "cannot record the %s", what);
    return server_reread(p);
}

static bic_err confirm_tx(bic_db *db, void *arg)
{
    struct srv_ctx *p = arg;
    bic_req *req = p->req;
    bic_rows s;
    bic_err e = server_lock(req, p->id, &s);
    if (e != BIC_E_OK) return e;
    const char *host = rows_str(&s, 0, 2), *rs = rows_str(&s, 0, 4);
    if (!strcmp(rows_str(&s, 0, 3), "online"))
        return fail(req, BIC_E_CONFLICT,
                    "%s is heartbeating: it is not off, so its desktops cannot be restarted "
                    "elsewhere",
                    host);
    if (!strcmp(rs, "fenced")) return fail(req, BIC_E_CONFLICT, "%s is already fenced", host);
    const char *note = json_get_str(req->json, "note", "");
    if (has_ctl(note)) return fail(req, BIC_E_VALIDATION, "note must not hold control characters");
    const char *why = arena_printf(req->arena, "%s is off: confirmed by %s%s%s", host,
                                   req->who.username, *note ? ": " : "", note);
    e = DB_EXEC(db, req->arena, STMT_rec_fenced, NULL, P_STR(why), P_STR("admin"), P_INT(p->id),
                P_STR("none,suspect,fencing,unfenceable"));
    if (e != BIC_E_OK) return fail(req, e, "server update failed");
    return decision_done(p, &s, "fence", "confirmation", why);
}

bic_err h_server_fence_confirm(bic_req *req, bic_resp *resp)
{
    struct srv_ctx p = {.req = req};
    bic_err e = param_id(req, 0, &p.id);
    if (e != BIC_E_OK) return e;
    if (!json_get_bool(req->json, "confirm", false))
        return fail(req, BIC_E_VALIDATION,
                    "confirm must be true: you confirm that the server is powered off");
    return server_change(req, resp, &p, confirm_tx);
}

static bic_err clear_tx(bic_db *db, void *arg)
{
    struct srv_ctx *p = arg;
    bic_req *req = p->req;
    bic_rows s;
    bic_err e = server_lock(req, p->id, &s);
    if (e != BIC_E_OK) return e;
    const char *host = rows_str(&s, 0, 2), *rs = rows_str(&s, 0, 4);
    if (!strcmp(rs, "none"))
        return fail(req, BIC_E_CONFLICT, "%s is not in recovery: nothing to clear", host);
    if (!strcmp(rs, "fenced") && strcmp(rows_str(&s, 0, 3), "online"))
        return fail(req, BIC_E_CONFLICT,
                    "%s was fenced and does not heartbeat: clear it once it is repaired and its "
                    "agent reports again",
                    host);
    const char *why =
        arena_printf(req->arena, "%s was %s; cleared by %s", host, rs, req->who.username);
    e = DB_EXEC(db, req->arena, STMT_rec_clear, NULL, P_STR(why), P_INT(p->id));
    if (e != BIC_E_OK) return fail(req, e, "server update failed");
    return decision_done(p, &s, "clear", "clearing", why);
}

bic_err h_server_recovery_clear(bic_req *req, bic_resp *resp)
{
    struct srv_ctx p = {.req = req};
    bic_err e = param_id(req, 0, &p.id);
    return e == BIC_E_OK ? server_change(req, resp, &p, clear_tx) : e;
}

/*
 * h_broker.c - the connection broker's API: connect (a desktop and a one-time console
 * ticket, or progress), the user's own pools, power actions, sessions, per-pool
 * security policies, and nginx's console check that consumes a ticket.
 *
 * A connect allocates inside one transaction: the user's live session in the pool is
 * reused; otherwise a dedicated pool's desktop already given to the user, otherwise any
 * free ready desktop taken with SELECT ... FOR UPDATE SKIP LOCKED. The unique keys of
 * desktop_sessions (one live session per user and pool, one per desktop) make a double
 * assignment impossible even if that logic were wrong. The VNC password is then changed
 * on the agent (outside the transaction) and a ticket is issued; only its sha256 is kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentauth.h"
#include "audit.h"
#include "broker.h"
#include "handlers.h"
#include "log.h"
#include "placement.h"
#include "pools.h"
#include "session.h"
#include "util.h"

#define MAX_SECONDS (30LL * 86400)

static const char *const clipboard_modes[] = {"off", "in", "out", "both", NULL};
static const char *const power_actions[] = {"start", "shutdown", "restart", NULL};

const bic_field fields_connect[] = {{0}};

const bic_field fields_power[] = {
    {"action", F_STR, true, 1, 16, power_actions},
    {0},
};

const bic_field fields_activity[] = {
    {"idle_s", F_INT, false, 0, MAX_SECONDS},
    {0},
};

const bic_field fields_policy[] = {
    {"clipboard", F_STR, false, 1, 8, clipboard_modes},
    {"view_only", F_BOOL, false, 0, 0},
    {"max_session_s", F_INT, false, 0, MAX_SECONDS},
    {"idle_timeout_s", F_INT, false, 0, MAX_SECONDS},
    {"disconnect_timeout_s", F_INT, false, 0, MAX_SECONDS},
    {"allowed_networks", F_STR_ARRAY, false, 0, 32},
    {"max_sessions_per_user", F_INT, false, 0, 1000},
    {"user_power", F_BOOL, false, 0, 0},
    {"refresh_on_logoff", F_BOOL, false, 0, 0},
    {0},
};

/* A refusal the client can act on: the status of code plus a stable "reason". */
static bic_err refuse(bic_req *req, bic_err code, const char *reason, const char *msg)
{
    req->err_reason = reason;
    return fail(req, code, "%s", msg);
}

static bool is_operator(const bic_req *req) { return req->who.role >= ROLE_OPERATOR; }

static json_t *session_json(bic_req *req, const bic_rows *r, size_t i)
{
#define OPT_INT(c) (rows_str(r, i, c) ? json_integer(rows_int(r, i, c)) : json_null())
#define OPT_STR(c) (rows_str(r, i, c) ? json_string(rows_str(r, i, c)) : json_null())
    json_t *o = json_pack(
        "{s:I, s:s, s:{s:I, s:s}, s:o, s:o, s:o, s:s}", "id", (json_int_t)rows_int(r, i, 0),
        "state", rows_str(r, i, 1), "user", "id", (json_int_t)rows_int(r, i, 2), "username",
        rows_str(r, i, 3), "pool",
        rows_str(r, i, 4) ? json_pack("{s:I, s:o}", "id", (json_int_t)rows_int(r, i, 4), "name",
                                      OPT_STR(5))
                          : json_null(),
        "desktop",
        rows_str(r, i, 6) ? json_pack("{s:I, s:o}", "id", (json_int_t)rows_int(r, i, 6), "name",
                                      OPT_STR(7))
                          : json_null(),
        "server",
        rows_str(r, i, 8) ? json_pack("{s:I, s:o}", "id", (json_int_t)rows_int(r, i, 8),
                                      "hostname", OPT_STR(19))
                          : json_null(),
        "client_ip", rows_str(r, i, 9));
    static const char *const times[] = {"started_at",   "connected_at",     "disconnected_at",
                                        "ended_at",     "last_seen_at",     "last_activity_at"};
    for (size_t k = 0; k < 6; k++)
        json_object_set_new(o, times[k], json_time(req, rows_str(r, i, 10 + k)));
    json_object_set_new(o, "end_reason", json_string(rows_str(r, i, 16)));
    json_object_set_new(o, "ended_by", json_string(rows_str(r, i, 17)));
    json_object_set_new(o, "updated_at", json_time(req, rows_str(r, i, 18)));
    return o;
#undef OPT_INT
#undef OPT_STR
}

static json_t *session_load(bic_req *req, long long id)
{
    bic_rows r;
    if (DB_EXEC(req->db, req->arena, STMT_session_get, &r, P_INT(id)) != BIC_E_OK || r.nrows != 1)
        return json_null();
    return session_json(req, &r, 0);
}

/* ---- connect ---- */

struct conn {
    bic_req *req;
    long long pool_id, want_desktop;
    /* out */
    long long session_id, desktop_id, server_id;
    const char *step, *message; /* progress (202) when set */
    bool new_session;
    const char *clipboard;
    bool view_only;
    bic_rows d; /* the desktop (BROKER_DESKTOP_COLS) */
    long ttl;
    char ticket[RANDOM_TOKEN_LEN + 1]; /* issued with the session (running desktops) */
};

/*
 * The ticket is written in the connect transaction (one commit per connect). If the agent
 * then cannot set the password, the client never sees the ticket and it expires unused.
 */
static bic_err ticket_insert(struct conn *c)
{
    bic_req *req = c->req;
    unsigned char hash[32];
    long rate = req->cfg->security_ticket_rate, window = req->cfg->security_ticket_rate_window;
    if (rate > 0 && window > 0) { /* minting rate per user (issue 12, docs/security.md) */
        bic_rows n;
        bic_err e = DB_EXEC(req->db, req->arena, STMT_ticket_recent_count, &n,
                            P_INT(req->who.user_id), P_INT(window));
        if (e != BIC_E_OK) return fail(req, e, "ticket count failed");
        if (rows_int(&n, 0, 0) >= rate)
            return refuse(req, BIC_E_RATE_LIMITED, "ticket_rate",
                          arena_printf(req->arena,
                                       "you opened consoles %lld times in the last %ld s, the "
                                       "most allowed; wait a little",
                                       rows_int(&n, 0, 0), window));
    }
    if (random_token(c->ticket) < 0) return fail(req, BIC_E_INTERNAL, "no randomness");
    sha256_bytes(c->ticket, hash);
    c->ttl = req->cfg->broker_ticket_ttl < 1    ? 1
             : req->cfg->broker_ticket_ttl > 30 ? 30
                                                : req->cfg->broker_ticket_ttl;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_ticket_insert, NULL, P_BLOB(hash, 32),
                        P_INT(c->session_id), P_INT(req->who.user_id), P_INT(c->desktop_id),
                        P_STR(req->remote_addr ? req->remote_addr : ""), P_INT(c->ttl));
    return e == BIC_E_OK ? e : fail(req, e, "cannot issue the ticket");
}

/* Why no desktop can be given now: a refusal, or progress when one is on its way. */
static bic_err no_desktop(struct conn *c, const bic_rows *p)
{
    bic_req *req = c->req;
    const char *state = rows_str(p, 0, 3);
    if (strcmp(state, "active"))
        return refuse(req, BIC_E_CONFLICT, "pool_unavailable",
                      arena_printf(req->arena, "the pool is %s; no desktop can be given now",
                                   state));
    bic_rows n;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_broker_pool_census, &n, P_INT(c->pool_id));
    if (e != BIC_E_OK) return fail(req, e, "pool census failed");
    long long total = rows_int(&n, 0, 0), coming = rows_int(&n, 0, 1);
    long long max = rows_int(p, 0, 4), spare = rows_int(p, 0, 6);
    if (coming > 0) {
        c->step = "waiting";
        c->message = "every desktop is in use; one is being prepared";
        return BIC_E_OK;
    }
    if (total < max && spare > 0) {
        /* the reconciler grows the pool to keep its spare: is there room for one more? */
        bic_rows sp;
        e = DB_EXEC(req->db, req->arena, STMT_pool_spec_get, &sp, P_INT(rows_int(p, 0, 7)));
        if (e != BIC_E_OK || sp.nrows != 1) return fail(req, BIC_E_INTERNAL, "spec lookup failed");
        pl_server *s;
        size_t ns, nmod;
        long long *mods;
        const char **names;
        pl_rules rules;
        pools_rules(req->cfg, &rules);
        e = pools_server_load(req->db, req->arena, c->pool_id, rules.per_gbps, &s, &ns, &mods,
                              &names, &nmod);
        if (e != BIC_E_OK) return fail(req, e, "server lookup failed");
        pl_request r = {.memory_mib = rows_int(&sp, 0, 2),
                        .vcpus = (int)rows_int(&sp, 0, 1),
                        .vf = !strcmp(rows_str(&sp, 0, 4), "sriov"),
                        .modules = mods,
                        .module_names = names,
                        .nmodules = nmod,
                        .policy = !strcmp(rows_str(p, 0, 8), "pack") ? PL_PACK : PL_SPREAD};
        char why[400] = "";
        bool fell_back; /* the pool's NIC fallback: column 18, after POLICY_COLS */
        if (pools_choose(s, ns, &r, &rules, rows_int(p, 0, 18) != 0, &fell_back, why,
                         sizeof(why)) >= 0) {
            c->step = "provisioning";
            c->message = "every desktop is in use; the pool is growing";
            return BIC_E_OK;
        }
        return refuse(req, BIC_E_CONFLICT, "module_full",
                      arena_printf(req->arena, "every desktop is in use and the pool's modules "
                                               "have no room for another: %s",
                                   why));
    }
    return refuse(req, BIC_E_CONFLICT, "pool_exhausted",
                  arena_printf(req->arena, "every desktop of the pool is in use (%lld of %lld)",
                               total, max));
}

/* Decides what the session waits for; queues a start for a stopped desktop. */
static bic_err desktop_progress(struct conn *c, long long task_id)
{
    bic_req *req = c->req;
    const bic_rows *d = &c->d;
    const char *phase = rows_str(d, 0, 4), *state = rows_str(d, 0, 3);
    if (phase && strcmp(phase, "ready")) {
        c->step = phase;
        c->message = !strcmp(phase, "error")        ? "the desktop failed; an administrator must repair it"
                     : !strcmp(phase, "recovering") ? "your desktop is being moved to another server"
                                                    : "the desktop is being prepared";
        if (!strcmp(phase, "error") || !strcmp(phase, "deleting"))
            return refuse(req, BIC_E_CONFLICT, "desktop_unavailable",
                          arena_printf(req->arena, "the desktop is %s", phase));
        return BIC_E_OK;
    }
    if (!strcmp(state, "running")) return BIC_E_OK;
    c->step = "starting";
    c->message = "the desktop is starting";
    if (task_id) {
        bic_rows t;
        bic_err e = DB_EXEC(req->db, req->arena, STMT_broker_task_state, &t, P_INT(task_id));
        if (e != BIC_E_OK) return fail(req, e, "task lookup failed");
        if (t.nrows == 1) {
            const char *ts = rows_str(&t, 0, 0);
            if (strcmp(ts, "succeeded") && strcmp(ts, "failed")) return BIC_E_OK;
            if (!strcmp(ts, "succeeded") && rows_int(&t, 0, 2)) return BIC_E_OK;
        }
    }
    json_t *pj = json_pack("{s:s}", "uuid", rows_str(d, 0, 2));
    char *params = pj ? json_dumps(pj, JSON_COMPACT) : NULL;
    json_decref(pj);
    bic_err e = params ? DB_EXEC(req->db, req->arena, STMT_task_insert, NULL,
                                 P_INT(rows_int(d, 0, 6)), P_STR("domain.start"), P_STR(params),
                                 P_INT(req->cfg->agents_task_max_attempts), P_STR("broker"))
                       : BIC_E_INTERNAL;
    free(params);
    if (e != BIC_E_OK) return fail(req, e, "cannot queue the start");
    return DB_EXEC(req->db, req->arena, STMT_broker_session_task, NULL,
                   P_INT(db_insert_id(req->db)), P_INT(c->session_id));
}

static bic_err connect_tx(bic_db *db, void *arg)
{
    struct conn *c = arg;
    bic_req *req = c->req;
    long long uid = req->who.user_id;
    c->step = c->message = NULL;
    c->new_session = false;
    c->session_id = 0;
    bic_rows p;
    bic_err e = DB_EXEC(db, req->arena, STMT_broker_pool, &p, P_INT(uid), P_INT(uid),
                        P_INT(c->pool_id));
    if (e != BIC_E_OK) return fail(req, e, "pool lookup failed");
    if (p.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no pool %lld", c->pool_id);
    if (!rows_int(&p, 0, 5))
        return refuse(req, BIC_E_FORBIDDEN, "not_entitled", "you are not entitled to this pool");
    const char *nets = rows_str(&p, 0, 9 + 5);
    if (nets && *nets && !cidr_list_contains(nets, req->remote_addr ? req->remote_addr : ""))
        return refuse(req, BIC_E_FORBIDDEN, "network_forbidden",
                      arena_printf(req->arena,
                                   "the pool's policy does not allow connections from %s",
                                   req->remote_addr ? req->remote_addr : "this address"));
    c->clipboard = rows_str(&p, 0, 9);
    c->view_only = rows_int(&p, 0, 10);

    bic_rows s;
    e = DB_EXEC(db, req->arena, STMT_broker_live_session, &s, P_INT(uid), P_INT(c->pool_id));
    if (e != BIC_E_OK) return fail(req, e, "session lookup failed");
    long long task_id = 0;
    c->desktop_id = 0;
    if (s.nrows == 1 && rows_str(&s, 0, 1)) {
        c->session_id = rows_int(&s, 0, 0);
        c->desktop_id = rows_int(&s, 0, 1);
        task_id = rows_str(&s, 0, 3) ? rows_int(&s, 0, 3) : 0;
        if (c->want_desktop && c->want_desktop != c->desktop_id)
            return refuse(req, BIC_E_CONFLICT, "session_elsewhere",
                          arena_printf(req->arena,
                                       "you have a session on desktop %lld of this pool; log "
                                       "it off first",
                                       c->desktop_id));
    } else {
        if (s.nrows == 1) { /* its desktop is gone: end it and start over */
            long long kick;
            bool ended;
            e = broker_end_session(req, rows_int(&s, 0, 0), "desktop_deleted", "broker", &kick,
                                   &ended);
            if (e != BIC_E_OK) return fail(req, e, "cannot end a stale session");
        }
        long long limit = rows_int(&p, 0, 9 + 6);
        if (limit > 0) {
            bic_rows n;
            e = DB_EXEC(db, req->arena, STMT_broker_live_count, &n, P_INT(uid));
            if (e != BIC_E_OK) return fail(req, e, "session count failed");
            if (rows_int(&n, 0, 0) >= limit)
                return refuse(req, BIC_E_CONFLICT, "session_limit",
                              arena_printf(req->arena,
                                           "you already have %lld live sessions, the most this "
                                           "pool allows; log one off first",
                                           rows_int(&n, 0, 0)));
        }
        if (!strcmp(rows_str(&p, 0, 3), "deleting"))
            return refuse(req, BIC_E_CONFLICT, "pool_unavailable", "the pool is being deleted");
        bic_rows d;
        if (c->want_desktop) {
            e = DB_EXEC(db, req->arena, STMT_broker_take_this, &d, P_INT(c->want_desktop),
                        P_INT(c->pool_id), P_INT(uid));
            if (e != BIC_E_OK) return fail(req, e, "desktop lookup failed");
            if (d.nrows != 1)
                return refuse(req, BIC_E_CONFLICT, "desktop_taken",
                              "the desktop is given to someone else or being deleted");
        } else {
            d.nrows = 0;
            if (!strcmp(rows_str(&p, 0, 2), "dedicated")) {
                e = DB_EXEC(db, req->arena, STMT_broker_assigned, &d, P_INT(c->pool_id),
                            P_INT(uid));
                if (e != BIC_E_OK) return fail(req, e, "desktop lookup failed");
            }
            if (d.nrows == 0) {
                e = DB_EXEC(db, req->arena, STMT_broker_take_free, &d, P_INT(c->pool_id));
                if (e == BIC_E_OK && d.nrows == 0)
                    e = DB_EXEC(db, req->arena, STMT_broker_take_free_wait, &d, P_INT(c->pool_id));
                if (e != BIC_E_OK) return fail(req, e, "desktop allocation failed");
            }
            if (d.nrows == 0) return no_desktop(c, &p);
        }
        c->desktop_id = rows_int(&d, 0, 0);
        e = DB_EXEC(db, req->arena, STMT_broker_assign, NULL, P_INT(uid), P_INT(c->desktop_id));
        if (e != BIC_E_OK) return fail(req, e, "cannot assign the desktop");
    }
    e = DB_EXEC(db, req->arena, STMT_broker_desktop, &c->d, P_INT(c->desktop_id));
    if (e != BIC_E_OK || c->d.nrows != 1) return fail(req, BIC_E_INTERNAL, "desktop lookup failed");
    c->server_id = rows_int(&c->d, 0, 6);
    const char *ip = req->remote_addr ? req->remote_addr : "";
    if (!c->session_id) {
        e = DB_EXEC(db, req->arena, STMT_broker_session_insert, NULL, P_INT(uid),
                    P_INT(c->pool_id), P_INT(c->desktop_id), P_INT(c->server_id), P_STR("starting"),
                    P_STR(ip));
        if (e != BIC_E_OK) return fail(req, e, "cannot record the session");
        c->session_id = (long long)db_insert_id(db);
        c->new_session = true;
    }
    e = desktop_progress(c, task_id);
    if (e != BIC_E_OK) return e;
    const char *st = c->step ? "starting" : "connecting";
    e = DB_EXEC(db, req->arena, STMT_broker_session_touch, NULL, P_STR(st), P_STR(ip), P_STR(st),
                P_INT(c->session_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot update the session");
    if (!c->step && (e = ticket_insert(c)) != BIC_E_OK) return e;
    if (!c->new_session) return BIC_E_OK;
    return audit_write(req, "session.start", "session",
                       arena_printf(req->arena, "%lld", c->session_id), true,
                       json_pack("{s:I, s:I, s:s, s:s}", "pool_id", (json_int_t)c->pool_id,
                                 "desktop_id", (json_int_t)c->desktop_id, "desktop",
                                 rows_str(&c->d, 0, 1), "client_ip", ip));
}

static json_t *desktop_brief(const bic_rows *d)
{
    return json_pack("{s:I, s:s, s:s, s:o}", "id", (json_int_t)rows_int(d, 0, 0), "name",
                     rows_str(d, 0, 1), "state", rows_str(d, 0, 3), "phase",
                     rows_str(d, 0, 4) ? json_string(rows_str(d, 0, 4)) : json_null());
}

/*
 * A console address another live desktop also reports (issue 12, sql/014_console.sql): no
 * ticket is handed out or honoured for it, since the proxy could land on the other desktop.
 * Answers 409 console_conflict (reason) and logs it; BIC_E_OK when the address is its own.
 */
static bic_err console_shared(bic_req *req, const char *host, long long port, long long desktop)
{
    bic_rows o;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_console_conflict_other, &o, P_STR(host),
                        P_INT(port), P_INT(desktop));
    if (e != BIC_E_OK) return fail(req, e, "console lookup failed");
    if (o.nrows == 0) return BIC_E_OK;
    LOG_WARN(req->request_id, "desktop %lld: console %s:%lld is also reported by desktop %lld (%s) "
             "of server %lld: refused", desktop, host, port, rows_int(&o, 0, 0), rows_str(&o, 0, 1),
             rows_int(&o, 0, 2));
    req->err_reason = "console_conflict";
    return fail(req, BIC_E_CONFLICT,
                "another running desktop reports the same console address; try again shortly");
}

static bic_err do_connect(bic_req *req, bic_resp *resp, long long pool_id, long long desktop_id)
{
    struct conn c = {.req = req, .pool_id = pool_id, .want_desktop = desktop_id};
    bic_err e = db_tx(req->db, connect_tx, &c);
    if (e == BIC_E_RATE_LIMITED)
        resp_header(req, resp, "Retry-After: %ld", req->cfg->security_ticket_rate_window);
    if (e != BIC_E_OK) return e;
    if (!c.desktop_id) { /* waiting for a desktop of the pool */
        resp_json(req, resp, 202,
                  json_pack("{s:n, s:n, s:{s:s, s:s}, s:i}", "session", "desktop", "progress",
                            "step", c.step, "message", c.message, "retry_after_ms", 2000));
        return BIC_E_OK;
    }
    json_t *sess = session_load(req, c.session_id);
    if (json_is_null(sess)) /* committed, but the database went away: a retry answers it */
        return fail(req, BIC_E_DB_UNAVAILABLE, "session %lld cannot be read back", c.session_id);
    if (c.step) {
        resp_json(req, resp, 202,
                  json_pack("{s:o, s:o, s:{s:s, s:s}, s:i}", "session", sess, "desktop",
                            desktop_brief(&c.d), "progress", "step", c.step, "message", c.message,
                            "retry_after_ms", 1000));
        return BIC_E_OK;
    }
    /* a new VNC password for this connect; it also closes any other console of the desktop */
    char pw[9], err[256];
    json_t *result = NULL;
    if (broker_vnc_password(pw) < 0) {
        json_decref(sess);
        return fail(req, BIC_E_INTERNAL, "no randomness");
    }
    if (broker_agent_call(req->cfg, c.server_id, rows_str(&c.d, 0, 9), "desktop.console",
                          json_pack("{s:s, s:s, s:b}", "uuid", rows_str(&c.d, 0, 2), "password",
                                    pw, "disconnect", 1),
                          &result, err, sizeof(err)) < 0) {
        json_decref(sess);
        LOG_WARN(req->request_id, "desktop %lld: %s", c.desktop_id, err);
        req->err_reason = "console_unavailable";
        resp_header(req, resp, "Retry-After: 2");
        return fail(req, BIC_E_UNAVAILABLE, "desktop %lld: %s", c.desktop_id, err);
    }
    bool applied = json_is_true(json_object_get(result, "applied"));
    const char *chost = json_string_value(json_object_get(result, "console_host"));
    json_int_t cport = json_integer_value(json_object_get(result, "console_port"));
    if (chost && cport > 0 && cport < 65536 &&
        (!rows_str(&c.d, 0, 7) || strcmp(chost, rows_str(&c.d, 0, 7)) ||
         rows_int(&c.d, 0, 8) != cport))
        DB_EXEC(req->db, req->arena, STMT_broker_console_addr, NULL, P_STR(chost), P_INT(cport),
                P_INT(c.desktop_id));
    const char *ahost = chost && cport > 0 && cport < 65536 ? chost : rows_str(&c.d, 0, 7);
    long long aport = chost && cport > 0 && cport < 65536 ? cport : rows_int(&c.d, 0, 8);
    if (ahost && aport > 0 && (e = console_shared(req, ahost, aport, c.desktop_id)) != BIC_E_OK) {
        /* the ticket of this connect is never given out: drop it */
        DB_EXEC(req->db, req->arena, STMT_session_tickets_drop, NULL, P_INT(c.session_id));
        DB_EXEC(req->db, req->arena, STMT_event_insert, NULL, P_INT(c.server_id),
                P_STR(rows_str(&c.d, 0, 2)), P_STR("console.conflict"),
                P_STR(arena_printf(req->arena, "%.40s %.64s:%lld refused at connect",
                                   rows_str(&c.d, 0, 1), ahost, aport)));
        json_decref(result);
        json_decref(sess);
        resp_header(req, resp, "Retry-After: 10");
        return e;
    }
    json_t *console =
        applied ? json_pack("{s:b}", "available", 1)
                : json_pack("{s:b, s:s}", "available", 0, "reason",
                            json_string_value(json_object_get(result, "reason"))
                                ? json_string_value(json_object_get(result, "reason"))
                                : "the hypervisor did not take the password");
    json_decref(result);

    resp_header(req, resp, "Cache-Control: no-store");
    resp_json(req, resp, 200,
              json_pack("{s:o, s:o, s:s, s:s, s:i, s:s, s:{s:s, s:b}, s:o}", "session", sess,
                        "desktop", desktop_brief(&c.d), "ticket", c.ticket, "console_path",
                        arena_printf(req->arena, "/console/%s", c.ticket), "expires_in", (int)c.ttl,
                        "password", pw, "policy", "clipboard", c.clipboard, "view_only",
                        (int)c.view_only, "console", console));
    return BIC_E_OK;
}

bic_err h_pools_connect(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_err e = param_id(req, 0, &id);
    return e == BIC_E_OK ? do_connect(req, resp, id, 0) : e;
}

bic_err h_desktops_connect(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows d;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = DB_EXEC(req->db, req->arena, STMT_broker_desktop, &d, P_INT(id));
    if (e != BIC_E_OK) return e == BIC_E_NOT_FOUND ? e : fail(req, e, "desktop lookup failed");
    if (d.nrows != 1 || !rows_str(&d, 0, 10))
        return fail(req, BIC_E_NOT_FOUND, "no pool desktop %lld", id);
    return do_connect(req, resp, rows_int(&d, 0, 10), id);
}

/* ---- nginx's console check ---- */

bic_err h_console_check(bic_req *req, bic_resp *resp)
{
    const char *ticket = req->console_ticket;
    if (!ticket) return fail(req, BIC_E_NOT_FOUND, "no such resource");
    req->err_reason = "ticket_refused";
    if (strlen(ticket) != RANDOM_TOKEN_LEN)
        return fail(req, BIC_E_FORBIDDEN, "the console ticket is not valid");
    unsigned char h[32];
    sha256_bytes(ticket, h);
    /* the first presentation uses the ticket up, whatever the outcome */
    bic_err e = DB_EXEC(req->db, req->arena, STMT_ticket_burn, NULL, P_BLOB(h, 32));
    if (e != BIC_E_OK) return fail(req, e, "ticket update failed");
    bool first = db_affected(req->db) == 1;
    bic_rows t;
    e = DB_EXEC(req->db, req->arena, STMT_ticket_get, &t, P_BLOB(h, 32));
    if (e != BIC_E_OK) return fail(req, e, "ticket lookup failed");
    if (t.nrows != 1) return fail(req, BIC_E_FORBIDDEN, "the console ticket is not valid");
    if (!first) return fail(req, BIC_E_FORBIDDEN, "the console ticket was already used");
    if (!rows_int(&t, 0, 4)) return fail(req, BIC_E_FORBIDDEN, "the console ticket expired");
    if (!session_origin_allowed(req))
        return fail(req, BIC_E_FORBIDDEN, "the console must be opened from this site (Origin)");
    if (!req->who.user_id || req->who.user_id != rows_int(&t, 0, 1))
        return fail(req, BIC_E_FORBIDDEN, "the console ticket was issued to another user");
    if (!req->remote_addr || strcmp(req->remote_addr, rows_str(&t, 0, 3)))
        return fail(req, BIC_E_FORBIDDEN,
                    "the console ticket was issued to another client address");
    if (!strcmp(rows_str(&t, 0, 8), "logged_off"))
        return fail(req, BIC_E_FORBIDDEN, "the session was logged off");
    if (!rows_str(&t, 0, 6) || !rows_str(&t, 0, 7) || rows_int(&t, 0, 7) <= 0) {
        req->err_reason = "console_unavailable";
        return fail(req, BIC_E_CONFLICT, "the desktop has no console (is it running?)");
    }
    e = console_shared(req, rows_str(&t, 0, 6), rows_int(&t, 0, 7), rows_int(&t, 0, 2));
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_session_console_open, NULL, P_INT(rows_int(&t, 0, 0)));
    if (e != BIC_E_OK) return fail(req, e, "session update failed");
    req->err_reason = NULL;
    /* nginx counts open consoles per user and per desktop with these (limit_conn) */
    resp_header(req, resp, "X-BIC-Console-User: %lld", rows_int(&t, 0, 1));
    resp_header(req, resp, "X-BIC-Console-Desktop: %lld", rows_int(&t, 0, 2));
    const char *host = rows_str(&t, 0, 6);
    resp_header(req, resp, strchr(host, ':') ? "X-BIC-Console-Target: [%s]:%lld"
                                             : "X-BIC-Console-Target: %s:%lld",
                host, rows_int(&t, 0, 7));
    resp->status = 204;
    return BIC_E_OK;
}

/* ---- the user's own pools and desktops ---- */

static json_t *my_pool_json(bic_req *req, const bic_rows *r, size_t i)
{
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:{s:s, s:b, s:b}}", "id",
                          (json_int_t)rows_int(r, i, 0), "name", rows_str(r, i, 1), "description",
                          rows_str(r, i, 2), "type", rows_str(r, i, 3), "state", rows_str(r, i, 4),
                          "policy", "clipboard", rows_str(r, i, 5), "view_only",
                          (int)rows_int(r, i, 6), "user_power", (int)rows_int(r, i, 7));
    json_object_set_new(
        o, "session",
        rows_str(r, i, 8)
            ? json_pack("{s:I, s:s, s:o, s:o, s:o}", "id", (json_int_t)rows_int(r, i, 8), "state",
                        rows_str(r, i, 9), "started_at", json_time(req, rows_str(r, i, 10)),
                        "connected_at", json_time(req, rows_str(r, i, 11)), "disconnected_at",
                        json_time(req, rows_str(r, i, 12)))
            : json_null());
    json_object_set_new(o, "desktop",
                        rows_str(r, i, 13)
                            ? json_pack("{s:I, s:s, s:s, s:o}", "id", (json_int_t)rows_int(r, i, 13),
                                        "name", rows_str(r, i, 14), "state", rows_str(r, i, 15),
                                        "phase",
                                        rows_str(r, i, 16) ? json_string(rows_str(r, i, 16))
                                                           : json_null())
                            : json_null());
    return o;
}

bic_err h_my_pools(bic_req *req, bic_resp *resp)
{
    long long limit, after, uid = req->who.user_id;
    bic_err e = query_page(req, 100, 500, "after", 0, &limit, &after);
    if (e != BIC_E_OK) return e;
    bic_rows rows;
    e = DB_EXEC(req->db, req->arena, STMT_my_pools, &rows, P_INT(uid), P_INT(uid), P_INT(uid),
                P_INT(uid), P_INT(after), P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "pool list failed");
    resp_page(req, resp, &rows, my_pool_json, limit, "next_after");
    return BIC_E_OK;
}

struct power_ctx {
    bic_req *req;
    long long id, task;
    const char *action;
};

static bic_err power_tx(bic_db *db, void *arg)
{
    struct power_ctx *c = arg;
    bic_req *req = c->req;
    long long uid = req->who.user_id;
    bic_rows d;
    bic_err e = DB_EXEC(db, req->arena, STMT_my_desktop, &d, P_INT(uid), P_INT(c->id), P_INT(uid),
                        P_INT(uid));
    if (e != BIC_E_OK) return fail(req, e, "desktop lookup failed");
    if (d.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no desktop %lld of yours", c->id);
    if (!rows_int(&d, 0, 4))
        return refuse(req, BIC_E_FORBIDDEN, "power_not_allowed",
                      "the pool does not let users start or stop their desktops");
    if (strcmp(rows_str(&d, 0, 6), "ready"))
        return refuse(req, BIC_E_CONFLICT, "desktop_busy",
                      arena_printf(req->arena, "the desktop is %s; try again when it is ready",
                                   rows_str(&d, 0, 6)));
    const char *type = !strcmp(c->action, "start")      ? "domain.start"
                       : !strcmp(c->action, "shutdown") ? "domain.shutdown"
                                                        : "domain.reboot";
    json_t *pj = json_pack("{s:s}", "uuid", rows_str(&d, 0, 1));
    char *params = pj ? json_dumps(pj, JSON_COMPACT) : NULL;
    json_decref(pj);
    e = params ? DB_EXEC(db, req->arena, STMT_task_insert, NULL, P_INT(rows_int(&d, 0, 2)),
                         P_STR(type), P_STR(params), P_INT(req->cfg->agents_task_max_attempts),
                         P_STR(req->who.username))
               : BIC_E_INTERNAL;
    free(params);
    if (e != BIC_E_OK) return fail(req, e, "cannot queue the task");
    c->task = (long long)db_insert_id(db);
    return audit_write(req, "desktop.power", "desktop", req->param[0], true,
                       json_pack("{s:s, s:s, s:I}", "action", c->action, "name",
                                 rows_str(&d, 0, 3), "task_id", (json_int_t)c->task));
}

bic_err h_desktops_power(bic_req *req, bic_resp *resp)
{
    struct power_ctx c = {req, 0, 0,
                          json_string_value(json_object_get(req->json, "action"))};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, power_tx, &c);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 202, json_pack("{s:I, s:s}", "task_id", (json_int_t)c.task, "action",
                                        c.action));
    return BIC_E_OK;
}

/* ---- sessions ---- */

/* The session row if the caller may see/act on it (its user or an operator). */
static bic_err session_visible(bic_req *req, long long id, bic_rows *r)
{
    bic_err e = DB_EXEC(req->db, req->arena, STMT_session_get, r, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "session lookup failed");
    if (r->nrows != 1 || (!is_operator(req) && rows_int(r, 0, 2) != req->who.user_id))
        return fail(req, BIC_E_NOT_FOUND, "no session %lld", id);
    return BIC_E_OK;
}

bic_err h_sessions_list(bic_req *req, bic_resp *resp)
{
    long long limit, after;
    bic_err e = query_page(req, 100, 1000, "after", 0, &limit, &after);
    if (e != BIC_E_OK) return e;
    const char *state = req_query(req, "state");
    if (!state || !*state) state = "live";
    static const char *const states[] = {"live",      "all",          "starting",   "connecting",
                                         "connected", "disconnected", "logged_off", NULL};
    bool ok = false;
    for (const char *const *s = states; *s; s++) ok |= !strcmp(*s, state);
    if (!ok) return fail(req, BIC_E_VALIDATION, "state must be live, all or a session state");
    const char *f[3];
    static const char *const names[3] = {"pool", "user", "server"};
    for (size_t i = 0; i < 3; i++)
        if ((e = query_id(req, names[i], &f[i])) != BIC_E_OK) return e;
    bic_rows rows;
    e = DB_EXEC(req->db, req->arena, STMT_session_list, &rows, P_INT(after), P_STR(state),
                P_STR(state), P_STR(state), P_STR(f[0]), P_STR(f[0]), P_STR(f[1]), P_STR(f[1]),
                P_STR(f[2]), P_STR(f[2]), P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "session list failed");
    resp_page(req, resp, &rows, session_json, limit, "next_after");
    return BIC_E_OK;
}

bic_err h_sessions_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows r;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = session_visible(req, id, &r);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, session_json(req, &r, 0));
    return BIC_E_OK;
}

bic_err h_sessions_activity(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_err e = param_id(req, 0, &id);
    if (e != BIC_E_OK) return e;
    json_t *idle = json_object_get(req->json, "idle_s");
    e = DB_EXEC(req->db, req->arena, STMT_session_activity, NULL,
                P_INT(idle ? json_integer_value(idle) : 0), P_INT(id), P_INT(req->who.user_id));
    if (e != BIC_E_OK) return fail(req, e, "session update failed");
    if (db_affected(req->db) == 0) {
        bic_rows r;
        e = session_visible(req, id, &r);
        if (e != BIC_E_OK) return e;
        if (rows_int(&r, 0, 2) != req->who.user_id)
            return fail(req, BIC_E_FORBIDDEN, "only the session's user reports its activity");
        if (!strcmp(rows_str(&r, 0, 1), "logged_off"))
            return refuse(req, BIC_E_CONFLICT, "session_ended", "the session was logged off");
    }
    resp->status = 204;
    return BIC_E_OK;
}

struct end_ctx {
    bic_req *req;
    long long id, kick;
    bool logoff;
};

static bic_err end_tx(bic_db *db, void *arg)
{
    struct end_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows r;
    bic_err e = session_visible(req, c->id, &r);
    if (e != BIC_E_OK) return e;
    bool own = rows_int(&r, 0, 2) == req->who.user_id;
    const char *by = req->who.username;
    if (!strcmp(rows_str(&r, 0, 1), "logged_off"))
        return refuse(req, BIC_E_CONFLICT, "session_ended", "the session is already logged off");
    if (c->logoff) {
        bool ended;
        e = broker_end_session(req, c->id, own ? "user_logoff" : "admin_logoff", by, &c->kick,
                               &ended);
        return e == BIC_E_OK ? e : fail(req, e, "cannot log the session off");
    }
    e = DB_EXEC(db, req->arena, STMT_session_disconnect, NULL,
                P_STR(own ? "user_disconnect" : "admin_disconnect"), P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot disconnect the session");
    c->kick = rows_str(&r, 0, 6) ? rows_int(&r, 0, 6) : 0;
    return audit_write(req, "session.disconnect", "session", req->param[0], true,
                       json_pack("{s:I, s:s}", "user_id", (json_int_t)rows_int(&r, 0, 2), "by",
                                 by));
}

static bic_err end_session(bic_req *req, bic_resp *resp, bool logoff)
{
    struct end_ctx c = {req, 0, 0, logoff};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, end_tx, &c);
    if (e != BIC_E_OK) return e;
    broker_kick(req->db, req->arena, req->cfg, c.kick);
    json_t *s = session_load(req, c.id);
    if (json_is_null(s)) /* done, but not confirmed: never a 200 without the session */
        return fail(req, BIC_E_DB_UNAVAILABLE, "session %lld cannot be read back", c.id);
    resp_json(req, resp, 200, s);
    return BIC_E_OK;
}

bic_err h_sessions_disconnect(bic_req *req, bic_resp *resp) { return end_session(req, resp, false); }

bic_err h_sessions_logoff(bic_req *req, bic_resp *resp) { return end_session(req, resp, true); }

/* ---- policies ---- */

bic_err h_pools_policy_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows r;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = DB_EXEC(req->db, req->arena, STMT_policy_get, &r, P_INT(id));
    if (e != BIC_E_OK) return e == BIC_E_NOT_FOUND ? e : fail(req, e, "policy lookup failed");
    if (r.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no pool %lld", id);
    resp_json(req, resp, 200, broker_policy_json(&r, 0, 0));
    return BIC_E_OK;
}

struct policy_ctx {
    bic_req *req;
    long long id;
    const char *nets; /* validated, comma-joined */
};

static bic_err policy_tx(bic_db *db, void *arg)
{
    struct policy_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows r;
    bic_err e = DB_EXEC(db, req->arena, STMT_policy_lock, &r, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "policy lookup failed");
    if (r.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no pool %lld", c->id);
    json_t *old = broker_policy_json(&r, 0, 0);
    json_t *j = req->json;
#define INT_OR(k, col)                                                                             \
    (json_object_get(j, k) ? json_integer_value(json_object_get(j, k)) : rows_int(&r, 0, col))
#define BOOL_OR(k, col)                                                                            \
    (json_object_get(j, k) ? json_is_true(json_object_get(j, k)) : (int)rows_int(&r, 0, col))
    const char *clip = json_string_value(json_object_get(j, "clipboard"));
    e = DB_EXEC(db, req->arena, STMT_policy_update, NULL, P_STR(clip ? clip : rows_str(&r, 0, 0)),
                P_INT(BOOL_OR("view_only", 1)), P_INT(INT_OR("max_session_s", 2)),
                P_INT(INT_OR("idle_timeout_s", 3)), P_INT(INT_OR("disconnect_timeout_s", 4)),
                P_STR(c->nets ? c->nets : rows_str(&r, 0, 5)),
                P_INT(INT_OR("max_sessions_per_user", 6)), P_INT(BOOL_OR("user_power", 7)),
                P_INT(BOOL_OR("refresh_on_logoff", 8)), P_INT(c->id));
#undef INT_OR
#undef BOOL_OR
    if (e != BIC_E_OK) {
        json_decref(old);
        return fail(req, e, "cannot change the policy");
    }
    /* the summary names what changed, old and new */
    bic_rows now;
    e = DB_EXEC(db, req->arena, STMT_policy_get, &now, P_INT(c->id));
    if (e != BIC_E_OK || now.nrows != 1) {
        json_decref(old);
        return fail(req, BIC_E_INTERNAL, "policy reload failed");
    }
    json_t *cur = broker_policy_json(&now, 0, 0), *changed = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(cur, k, v)
    {
        json_t *was = json_object_get(old, k);
        if (!json_equal(was, v))
            json_object_set_new(changed, k, json_pack("{s:O, s:O}", "from", was, "to", v));
    }
    json_decref(old);
    json_decref(cur);
    return audit_write(req, "pool.policy", "pool", req->param[0], true,
                       json_pack("{s:s, s:o}", "name", rows_str(&r, 0, 9), "changed", changed));
}

bic_err h_pools_policy_update(bic_req *req, bic_resp *resp)
{
    struct policy_ctx c = {req, 0, NULL};
    bic_err e = param_id(req, 0, &c.id);
    if (e != BIC_E_OK) return e;
    json_t *nets = json_object_get(req->json, "allowed_networks");
    if (nets) {
        size_t i;
        json_t *n;
        char *joined = arena_strdup(req->arena, "");
        json_array_foreach(nets, i, n)
        {
            const char *s = json_string_value(n);
            if (!s || !broker_cidr_valid(s))
                return fail(req, BIC_E_VALIDATION,
                            "allowed_networks[%zu] is not an address or CIDR network", i);
            joined = arena_printf(req->arena, "%s%s%s", joined, i ? "," : "", s);
        }
        if (strlen(joined) > 1024)
            return fail(req, BIC_E_VALIDATION, "allowed_networks is too long");
        c.nets = joined;
    }
    e = db_tx(req->db, policy_tx, &c);
    return e == BIC_E_OK ? h_pools_policy_get(req, resp) : e;
}

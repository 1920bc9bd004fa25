/*
 * h_agent.c - the agent-facing API (docs/agent-protocol.md): enrollment,
 * heartbeats, lifecycle events and task status. Callers are machines: enroll
 * carries a token, the rest the agent's bearer credential (agentauth.c).
 */
#include <ctype.h>
#include <curl/curl.h>
#include <math.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit.h"
#include "handlers.h"
#include "log.h"
#include "session.h"
#include "sign.h"
#include "sriov.h"
#include "util.h"

const bic_field fields_enroll[] = {
    {"token", F_STR, true, RANDOM_TOKEN_LEN, RANDOM_TOKEN_LEN},
    {"machine_id", F_STR, true, 8, 64},
    {"hostname", F_STR, true, 1, 253},
    {"listen_url", F_STR, false, 0, 255},
    {"agent_version", F_STR, false, 0, 32},
    {"facts", F_OBJECT, true},
    {0},
};

const bic_field fields_heartbeat[] = {
    {"seq", F_INT, true, 0, 1LL << 53},
    {"epoch", F_INT, false, 0, 1LL << 53}, /* replay protection (issue 12) */
    {"full", F_BOOL, false},
    {"host", F_OBJECT, false},
    {"desktops", F_ARRAY, false, 0, 1000},
    {"removed", F_STR_ARRAY, false, 0, 1000},
    {"nics", F_ARRAY, false, 0, 64},
    {0},
};

const bic_field fields_events[] = {
    {"events", F_ARRAY, true, 0, 100},
    {0},
};

static const char *const task_status_states[] = {"running", "succeeded", "failed", NULL};
const bic_field fields_task_status[] = {
    {"state", F_STR, true, 1, 16, task_status_states},
    {"result", F_OBJECT, false},
    {"error", F_STR, false, 0, 4096}, /* stored truncated to 512 characters */
    {0},
};

static const char *const desktop_states[] = {"running",  "paused",      "shutoff",
                                             "crashed",  "pmsuspended", "blocked",
                                             "shutdown", "nostate",     NULL};

static bool is_desktop_state(const char *s)
{
    for (const char *const *d = desktop_states; s && *d; d++)
        if (!strcmp(*d, s)) return true;
    return false;
}

static bool is_uuid(const char *s)
{
    if (!s || strlen(s) != 36) return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* Checks every element of a desktops/events array; reports the first bad one. */
static bic_err check_items(bic_req *req, const json_t *arr, const char *field, bool need_name)
{
    size_t i;
    const json_t *it;
    json_array_foreach(arr, i, it)
    {
        if (!json_is_object(it))
            return fail(req, BIC_E_VALIDATION, "%s[%zu] must be an object", field, i);
        if (!is_uuid(json_get_str(it, "uuid", NULL)))
            return fail(req, BIC_E_VALIDATION, "%s[%zu].uuid must be a UUID", field, i);
        const char *name = json_get_str(it, "name", NULL);
        if ((need_name && !name) || (name && strlen(name) > 255))
            return fail(req, BIC_E_VALIDATION, "%s[%zu].name must be a string up to 255 bytes",
                        field, i);
        const char *st = json_get_str(it, "state", NULL);
        if (st && !is_desktop_state(st))
            return fail(req, BIC_E_VALIDATION, "%s[%zu].state is not a libvirt state", field, i);
        const json_t *ch = json_object_get(it, "console_host");
        if (ch &&
            (!json_is_string(ch) || !json_string_length(ch) || json_string_length(ch) > 63 ||
             strspn(json_string_value(ch), "0123456789abcdefABCDEF.:-") != json_string_length(ch)))
            return fail(req, BIC_E_VALIDATION, "%s[%zu].console_host must be an IP address", field,
                        i);
        const json_t *cp = json_object_get(it, "console_port");
        if (cp &&
            (!json_is_integer(cp) || json_integer_value(cp) < 1 || json_integer_value(cp) > 65535))
            return fail(req, BIC_E_VALIDATION, "%s[%zu].console_port must be a TCP port", field, i);
        static const char *const counters[] = {"vcpus",    "memory_mib", "cpu_time_ns",
                                               "rx_bytes", "tx_bytes",   NULL};
        for (const char *const *k = counters; *k; k++) {
            const json_t *v = json_object_get(it, *k);
            if (v && (!json_is_integer(v) || json_integer_value(v) < 0 ||
                      json_integer_value(v) > (1LL << 53)))
                return fail(req, BIC_E_VALIDATION, "%s[%zu].%s must be an integer from 0 to 2^53",
                            field, i, *k);
        }
    }
    return BIC_E_OK;
}

/* ---- enrollment ---- */

struct enroll_ctx {
    bic_req *req;
    const char *credential;
    long long server_id;
    bool again;
};

/* True when the request carries "Authorization: Bearer <id>.<credential>" matching srv's hash. */
static bool current_credential_ok(bic_req *req, long long id, const bic_rows *srv)
{
    const char *h = req->authorization;
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    char *end;
    long long given = strtoll(h + 7, &end, 10);
    if (given != id || *end != '.' || strlen(end + 1) != RANDOM_TOKEN_LEN) return false;
    unsigned char hh[32];
    sha256_bytes(end + 1, hh);
    return srv->len[3] == 32 && CRYPTO_memcmp(rows_str(srv, 0, 3), hh, 32) == 0;
}

/*
 * listen_url is where the leader will POST tasks: only http(s)://host[:port][/path] with a
 * plain path (fleet agents use /s/<n>), no credentials, query or fragment.
 */
static bool listen_url_ok(const char *u)
{
    if (!*u) return true; /* an agent without a listener: tasks fail with a reason */
    CURLU *h = curl_url();
    bool ok = h && curl_url_set(h, CURLUPART_URL, u, 0) == CURLUE_OK;
    char *scheme = NULL, *user = NULL, *query = NULL, *frag = NULL, *path = NULL, *host = NULL;
    if (ok) {
        curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
        curl_url_get(h, CURLUPART_USER, &user, 0);
        curl_url_get(h, CURLUPART_QUERY, &query, 0);
        curl_url_get(h, CURLUPART_FRAGMENT, &frag, 0);
        curl_url_get(h, CURLUPART_PATH, &path, 0);
        curl_url_get(h, CURLUPART_HOST, &host, 0);
        ok = scheme && (!strcmp(scheme, "http") || !strcmp(scheme, "https")) && host && *host &&
             !user && !query && !frag && strchr(u, '@') == NULL;
        for (const char *p = path; ok && p && *p; p++)
            ok = isalnum((unsigned char)*p) || *p == '/' || *p == '-' || *p == '_';
    }
    curl_free(scheme);
    curl_free(user);
    curl_free(query);
    curl_free(frag);
    curl_free(path);
    curl_free(host);
    curl_url_cleanup(h);
    return ok;
}

static long long fact(const json_t *facts, const char *k)
{
    long long v = json_get_int(facts, k, 0);
    return v < 0 ? 0 : v;
}

static bic_err enroll_tx(bic_db *db, void *arg)
{
    struct enroll_ctx *c = arg;
    bic_req *req = c->req;
    const json_t *j = req->json, *facts = json_object_get(j, "facts");
    const json_t *hv = json_object_get(facts, "hypervisor");
    unsigned char th[32], ch[32];
    sha256_bytes(json_get_str(j, "token", ""), th);
    sha256_bytes(c->credential, ch);
    bic_rows tok, srv, mod;
    bic_err e = DB_EXEC(db, req->arena, STMT_token_find_valid, &tok, P_BLOB(th, 32));
    if (e != BIC_E_OK) return fail(req, e, "token lookup failed");
    if (tok.nrows != 1)
        return fail(req, BIC_E_BAD_CREDENTIALS,
                    "the enrollment token is unknown, expired or revoked");
    const char *machine = json_get_str(j, "machine_id", "");
    const char *host = json_get_str(j, "hostname", "");
    const char *hv_type = json_get_str(hv, "type", "");
    const char *listen = json_get_str(j, "listen_url", "");
    const char *ver = json_get_str(j, "agent_version", "");
    e = DB_EXEC(db, req->arena, STMT_server_by_machine, &srv, P_STR(machine));
    if (e != BIC_E_OK) return fail(req, e, "server lookup failed");
    if (srv.nrows == 1) { /* the same machine again: same row, new credential */
        c->server_id = rows_int(&srv, 0, 0);
        c->again = true;
        /*
         * A machine id is no secret. Taking over an enrolled row needs a token of the
         * server's own building block (and module, when the token names one) and either
         * the server's current credential or an admin's reset of its enrollment.
         */
        if (rows_int(&srv, 0, 2) != rows_int(&tok, 0, 1) ||
            (rows_str(&tok, 0, 2) && rows_int(&tok, 0, 2) != rows_int(&srv, 0, 1)))
            return fail(req, BIC_E_CONFLICT,
                        "this machine is enrolled in another building block or module");
        if (rows_str(&srv, 0, 3) && !current_credential_ok(req, c->server_id, &srv))
            return fail(req, BIC_E_CONFLICT,
                        "this machine is already enrolled; an admin must reset its enrollment "
                        "(POST /api/v1/servers/%lld/reset-enrollment) or the agent must present "
                        "its current credential",
                        c->server_id);
        e = DB_EXEC(db, req->arena, STMT_server_enroll_update, NULL, P_STR(host), P_STR(hv_type),
                    P_STR(listen), P_STR(ver), P_INT(fact(facts, "cpus")),
                    P_INT(fact(facts, "cores")), P_INT(fact(facts, "memory_mib")),
                    P_INT(fact(facts, "storage_gib")), P_BLOB(ch, 32), P_INT(c->server_id));
    } else {
        const char *want = rows_str(&tok, 0, 2);
        /* lock the modules first so concurrent enrollments count servers one at a time */
        bic_rows lk;
        e = want ? DB_EXEC(db, req->arena, STMT_modules_lock_one, &lk, P_INT(rows_int(&tok, 0, 2)))
                 : DB_EXEC(db, req->arena, STMT_modules_lock_bb, &lk, P_INT(rows_int(&tok, 0, 1)));
        if (e != BIC_E_OK) return fail(req, e, "module lookup failed");
        e = want ? DB_EXEC(db, req->arena, STMT_module_has_room, &mod, P_INT(rows_int(&tok, 0, 2)))
                 : DB_EXEC(db, req->arena, STMT_module_pick, &mod, P_INT(rows_int(&tok, 0, 1)));
        if (e != BIC_E_OK) return fail(req, e, "module lookup failed");
        if (mod.nrows != 1)
            return fail(req, BIC_E_CONFLICT,
                        "no module of this building block has room for a server");
        e = DB_EXEC(db, req->arena, STMT_server_enroll_insert, NULL, P_INT(rows_int(&mod, 0, 0)),
                    P_STR(host), P_STR(machine), P_STR(hv_type), P_STR(listen), P_STR(ver),
                    P_INT(fact(facts, "cpus")), P_INT(fact(facts, "cores")),
                    P_INT(fact(facts, "memory_mib")), P_INT(fact(facts, "storage_gib")),
                    P_BLOB(ch, 32));
        c->server_id = (long long)db_insert_id(db);
    }
    if (e == BIC_E_CONFLICT) return fail(req, e, "another server is already named '%s'", host);
    if (e != BIC_E_OK) return fail(req, e, "cannot store the server");
    const json_t *nics = json_object_get(facts, "nics");
    if (nics) e = sriov_store_nics(req, c->server_id, nics);
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_token_use, NULL, P_INT(rows_int(&tok, 0, 0)));
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_event_insert, NULL, P_INT(c->server_id), P_NULL,
                    P_STR(c->again ? "re-enrolled" : "enrolled"), P_STR(host));
    if (e != BIC_E_OK) return fail(req, e, "cannot store the server's facts");
    return audit_write_as(req, 0, arena_printf(req->arena, "agent:%.50s", host),
                          c->again ? "server.reenroll" : "server.enroll", "server",
                          arena_printf(req->arena, "%lld", c->server_id), true,
                          json_pack("{s:s, s:s, s:I}", "hostname", host, "machine_id", machine,
                                    "token", (json_int_t)rows_int(&tok, 0, 0)));
}

bic_err h_agent_enroll(bic_req *req, bic_resp *resp)
{
    if (!listen_url_ok(json_get_str(req->json, "listen_url", "")))
        return fail(req, BIC_E_VALIDATION,
                    "listen_url must be http(s)://host[:port][/path] without credentials, "
                    "query or fragment");
    const json_t *nics = json_object_get(json_object_get(req->json, "facts"), "nics");
    char why[160];
    if (nics && !sriov_nics_valid(nics, why, sizeof(why)))
        return fail(req, BIC_E_VALIDATION, "facts.%s", why);
    if (!sign_public_b64()) return fail(req, BIC_E_UNAVAILABLE, "the signing key is not loaded");
    char cred[RANDOM_TOKEN_LEN + 1];
    if (random_token(cred) < 0) return fail(req, BIC_E_INTERNAL, "no randomness");
    struct enroll_ctx c = {req, cred, 0, false};
    bic_err e = db_tx(req->db, enroll_tx, &c);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200,
              json_pack("{s:I, s:s, s:s, s:I}", "server_id", (json_int_t)c.server_id, "credential",
                        cred, "ccc_public_key", sign_public_b64(), "heartbeat_interval",
                        (json_int_t)req->cfg->agents_heartbeat_interval));
    return BIC_E_OK;
}

/* ---- heartbeat ---- */

struct hb_ctx {
    bic_req *req;
    bool resync;
    bool replayed;                 /* (epoch, seq) not above the last accepted: nothing stored */
    long long last_epoch, last_seq; /* the last accepted pair */
};

static double jnum(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

/* A non-negative integer host figure, or SQL NULL (keep the stored value) when absent. */
static bic_param host_int(const json_t *host, const char *k)
{
    const json_t *v = json_object_get(host, k);
    if (!json_is_number(v)) return P_NULL;
    double d = json_number_value(v);
    if (!isfinite(d) || d < 0 || d > 9007199254740992.0) return P_NULL; /* 2^53 */
    return P_INT((long long)d);
}

/*
 * Console address conflicts (issue 12): a desktop of this server whose console address another
 * live desktop also reports is flagged (an event 'console.conflict' and a warning when the flag
 * goes up, 'console.resolved' when it clears); the broker refuses its consoles meanwhile
 * (console_conflict_other). The heartbeat itself is stored: refusing it would take the
 * server's other desktops, and the server, offline. Runs after this heartbeat's rows are written.
 */
static bic_err console_conflicts(bic_db *db, bic_req *req, long long id)
{
    bic_rows r;
    bic_err e = DB_EXEC(db, req->arena, STMT_console_conflicts_of_server, &r, P_INT(id));
    for (size_t i = 0; e == BIC_E_OK && i < r.nrows; i++) {
        long long did = rows_int(&r, i, 0);
        if (i > 0 && rows_int(&r, i - 1, 0) == did) continue; /* one line per desktop */
        bool flagged = rows_int(&r, i, 5) != 0, now = rows_str(&r, i, 6) != NULL;
        if (flagged == now) continue;
        e = DB_EXEC(db, req->arena, STMT_console_conflict_set, NULL, P_INT(now), P_INT(did));
        const char *detail =
            now ? arena_printf(req->arena, "%.40s %.64s:%lld also reported by desktop %lld (%.40s) of "
                                           "server %lld",
                               rows_str(&r, i, 2), rows_str(&r, i, 3), rows_int(&r, i, 4),
                               rows_int(&r, i, 6), rows_str(&r, i, 7), rows_int(&r, i, 8))
                : arena_printf(req->arena, "%.40s: its console address is its own again",
                               rows_str(&r, i, 2));
        if (e == BIC_E_OK)
            e = DB_EXEC(db, req->arena, STMT_event_insert, NULL, P_INT(id), P_STR(rows_str(&r, i, 1)),
                        P_STR(now ? "console.conflict" : "console.resolved"), P_STR(detail));
        if (e == BIC_E_OK && now)
            LOG_WARN(req->request_id, "server %lld: desktop %lld: console %s", id, did, detail);
        else if (e == BIC_E_OK)
            LOG_INFO(req->request_id, "server %lld: desktop %lld: console conflict resolved", id, did);
    }
    return e;
}

static bic_err heartbeat_tx(bic_db *db, void *arg)
{
    struct hb_ctx *c = arg;
    bic_req *req = c->req;
    const json_t *j = req->json, *host = json_object_get(j, "host");
    long long id = req->who.server_id, seq = json_get_int(j, "seq", 0);
    bool full = json_get_bool(j, "full", false);
    bic_rows cur;
    bic_err e = DB_EXEC(db, req->arena, STMT_hb_server, &cur, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "server lookup failed");
    if (cur.nrows != 1) return fail(req, BIC_E_UNAUTHENTICATED, "the server was removed");
    /* replay protection: (epoch, seq) must be above the last accepted pair (issue 12) */
    long long epoch = json_get_int(j, "epoch", 0);
    bic_rows ep;
    e = DB_EXEC(db, req->arena, STMT_hb_epoch_get, &ep, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "server lookup failed");
    c->last_epoch = ep.nrows == 1 ? rows_int(&ep, 0, 0) : 0;
    c->last_seq = rows_int(&cur, 0, 1);
    c->replayed = epoch < c->last_epoch || (epoch == c->last_epoch && seq <= c->last_seq);
    if (c->replayed) return BIC_E_OK;
    c->resync = !full && (epoch != c->last_epoch || seq != c->last_seq + 1);
    bool was_online = !strcmp(rows_str(&cur, 0, 0), "online");
    double cpu = jnum(host, "cpu_pct");
    char cpu_s[32];
    snprintf(cpu_s, sizeof(cpu_s), "%.2f", cpu < 0 ? 0 : cpu > 100 ? 100 : cpu);
    bool has_cpu = json_is_number(json_object_get(host, "cpu_pct"));
    long long total = (long long)jnum(host, "mem_total_mib");
    e = DB_EXEC(db, req->arena, STMT_hb_update, NULL, P_INT(seq), has_cpu ? P_STR(cpu_s) : P_NULL,
                host_int(host, "mem_used_mib"), P_INT(total), P_INT(total),
                host_int(host, "net_rx_bps"), host_int(host, "net_tx_bps"), P_INT(id));
    if (e == BIC_E_OK && epoch != c->last_epoch)
        e = DB_EXEC(db, req->arena, STMT_hb_epoch_set, NULL, P_INT(epoch), P_INT(id));
    const json_t *d = json_object_get(j, "desktops");
    char *dj = d ? json_dumps(d, JSON_COMPACT) : NULL;
    arena_defer(req->arena, free, dj);
    if (e == BIC_E_OK && dj && json_array_size(d))
        e = DB_EXEC(db, req->arena, STMT_hb_desktops_upsert, NULL, P_INT(id), P_STR(dj));
    if (e == BIC_E_OK && full)
        e = DB_EXEC(db, req->arena, STMT_hb_desktops_keep_only, NULL, P_INT(id),
                    P_STR(dj ? dj : "[]"));
    if (e == BIC_E_OK && full)
        e = DB_EXEC(db, req->arena, STMT_hb_managed_absent, NULL, P_INT(id), P_STR(dj ? dj : "[]"));
    const json_t *rm = json_object_get(j, "removed");
    if (e == BIC_E_OK && json_array_size(rm)) {
        char *rj = json_dumps(rm, JSON_COMPACT);
        arena_defer(req->arena, free, rj);
        e = DB_EXEC(db, req->arena, STMT_hb_desktops_remove, NULL, P_INT(id), P_STR(rj));
        if (e == BIC_E_OK)
            e = DB_EXEC(db, req->arena, STMT_hb_managed_removed, NULL, P_INT(id), P_STR(rj));
    }
    const json_t *nics = json_object_get(j, "nics");
    if (e == BIC_E_OK && nics) e = sriov_store_nics(req, id, nics);
    if (e == BIC_E_OK) e = console_conflicts(db, req, id);
    if (e != BIC_E_OK) return fail(req, e, "cannot store the heartbeat");
    if (!was_online) {
        e = DB_EXEC(db, req->arena, STMT_event_insert, NULL, P_INT(id), P_NULL, P_STR("online"),
                    P_STR("heartbeats resumed"));
        if (e != BIC_E_OK) return fail(req, e, "cannot record the event");
        return audit_write_as(req, 0, "system", "server.online", "server",
                              arena_printf(req->arena, "%lld", id), true,
                              json_pack("{s:s}", "from", rows_str(&cur, 0, 0)));
    }
    return BIC_E_OK;
}

bic_err h_agent_heartbeat(bic_req *req, bic_resp *resp)
{
    const json_t *d = json_object_get(req->json, "desktops");
    bic_err e = d ? check_items(req, d, "desktops", true) : BIC_E_OK;
    const json_t *rm = json_object_get(req->json, "removed");
    size_t i;
    const json_t *u;
    json_array_foreach(rm, i, u) if (!is_uuid(json_string_value(u))) return fail(
        req, BIC_E_VALIDATION, "removed[%zu] must be a UUID", i);
    const json_t *nics = json_object_get(req->json, "nics");
    char why[160];
    if (e == BIC_E_OK && nics && !sriov_nics_valid(nics, why, sizeof(why)))
        return fail(req, BIC_E_VALIDATION, "%s", why);
    struct hb_ctx c = {req, false, false, 0, 0};
    if (e == BIC_E_OK) e = db_tx(req->db, heartbeat_tx, &c);
    if (e != BIC_E_OK) return e;
    if (c.replayed) { /* the agent continues above last_epoch/last_seq (docs/agent-protocol.md) */
        LOG_WARN(req->request_id, "server %lld: heartbeat (%lld, %lld) refused as a replay",
                 req->who.server_id, json_get_int(req->json, "epoch", 0),
                 json_get_int(req->json, "seq", 0));
        resp_json(req, resp, 409,
                  json_pack("{s:{s:s, s:s, s:s, s:s, s:I, s:I}}", "error", "code",
                            bic_err_name(BIC_E_CONFLICT), "message",
                            "heartbeat replayed or out of order: (epoch, seq) must be above the "
                            "last accepted pair",
                            "request_id", req->request_id, "reason", "replayed", "last_epoch",
                            (json_int_t)c.last_epoch, "last_seq", (json_int_t)c.last_seq));
        return BIC_E_OK;
    }
    resp_json(req, resp, 200,
              json_pack("{s:I, s:b}", "interval", (json_int_t)req->cfg->agents_heartbeat_interval,
                        "resync", c.resync));
    return BIC_E_OK;
}

/* ---- events ---- */

static bic_err events_tx(bic_db *db, void *arg)
{
    bic_req *req = arg;
    const json_t *ev = json_object_get(req->json, "events");
    char *ej = json_dumps(ev, JSON_COMPACT);
    arena_defer(req->arena, free, ej);
    bic_err e = DB_EXEC(db, req->arena, STMT_events_insert_json, NULL, P_INT(req->who.server_id),
                        P_STR(ej));
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_events_apply_state, NULL, P_STR(ej),
                    P_INT(req->who.server_id));
    return e == BIC_E_OK ? e : fail(req, e, "cannot store the events");
}

bic_err h_agent_events(bic_req *req, bic_resp *resp)
{
    const json_t *ev = json_object_get(req->json, "events");
    bic_err e = check_items(req, ev, "events", false);
    size_t i;
    const json_t *it;
    json_array_foreach(ev, i, it)
    {
        const char *k = json_get_str(it, "event", NULL);
        if (e == BIC_E_OK && (!k || !*k || strlen(k) > 32))
            e = fail(req, BIC_E_VALIDATION, "events[%zu].event must be a word", i);
    }
    if (e == BIC_E_OK && json_array_size(ev)) e = db_tx(req->db, events_tx, req);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

/* ---- task status ---- */

struct status_ctx {
    bic_req *req;
    long long id;
};

static bic_err task_status_tx(bic_db *db, void *arg)
{
    struct status_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = DB_EXEC(db, req->arena, STMT_task_for_server, &cur, P_INT(c->id),
                        P_INT(req->who.server_id));
    if (e != BIC_E_OK) return fail(req, e, "task lookup failed");
    if (cur.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no task %lld for this server", c->id);
    const char *state = json_get_str(req->json, "state", "");
    if (!strcmp(state, "running"))
        return DB_EXEC(db, req->arena, STMT_task_mark_running, NULL, P_INT(c->id));
    const json_t *result = json_object_get(req->json, "result");
    char *rj = result ? json_dumps(result, JSON_COMPACT) : NULL;
    arena_defer(req->arena, free, rj);
    e = DB_EXEC(db, req->arena, STMT_task_finish, NULL, P_STR(state), P_STR(rj),
                P_STR(json_get_str(req->json, "error", "")), P_INT(c->id));
    return e == BIC_E_OK ? e : fail(req, e, "cannot store the task status");
}

bic_err h_agent_task_status(bic_req *req, bic_resp *resp)
{
    struct status_ctx c = {req, 0};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, task_status_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

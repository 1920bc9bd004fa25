/*
 * h_agent.c - the agent-facing API (docs/agent-protocol.md): enrollment,
 * heartbeats, lifecycle events and task status. Callers are machines: enroll
 * carries a token, the rest the agent's bearer credential (agentauth.c).
 */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "handlers.h"
#include "session.h"
#include "sign.h"
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
    {"full", F_BOOL, false},
    {"host", F_OBJECT, false},
    {"desktops", F_ARRAY, false, 0, 1000},
    {"removed", F_STR_ARRAY, false, 0, 1000},
    {0},
};

const bic_field fields_events[] = {
    {"events", F_ARRAY, true, 0, 1000},
    {0},
};

static const char *const task_status_states[] = {"running", "succeeded", "failed", NULL};
const bic_field fields_task_status[] = {
    {"state", F_STR, true, 1, 16, task_status_states},
    {"result", F_OBJECT, false},
    {"error", F_STR, false, 0, 512},
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
        e = DB_EXEC(db, req->arena, STMT_server_enroll_update, NULL, P_STR(host), P_STR(hv_type),
                    P_STR(listen), P_STR(ver), P_INT(fact(facts, "cpus")),
                    P_INT(fact(facts, "cores")), P_INT(fact(facts, "memory_mib")),
                    P_INT(fact(facts, "storage_gib")), P_BLOB(ch, 32), P_INT(c->server_id));
    } else {
        const char *want = rows_str(&tok, 0, 2);
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
    char *nj = json_is_array(nics) ? json_dumps(nics, JSON_COMPACT) : NULL;
    arena_defer(req->arena, free, nj);
    e = DB_EXEC(db, req->arena, STMT_server_nics_clear, NULL, P_INT(c->server_id));
    if (e == BIC_E_OK && nj)
        e = DB_EXEC(db, req->arena, STMT_server_nics_insert, NULL, P_INT(c->server_id), P_STR(nj));
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
    return P_INT(d < 0 ? 0 : (long long)d);
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
    c->resync = !full && seq != rows_int(&cur, 0, 1) + 1;
    bool was_online = !strcmp(rows_str(&cur, 0, 0), "online");
    double cpu = jnum(host, "cpu_pct");
    char cpu_s[32];
    snprintf(cpu_s, sizeof(cpu_s), "%.2f", cpu < 0 ? 0 : cpu > 100 ? 100 : cpu);
    bool has_cpu = json_is_number(json_object_get(host, "cpu_pct"));
    long long total = (long long)jnum(host, "mem_total_mib");
    e = DB_EXEC(db, req->arena, STMT_hb_update, NULL, P_INT(seq), has_cpu ? P_STR(cpu_s) : P_NULL,
                host_int(host, "mem_used_mib"), P_INT(total), P_INT(total),
                host_int(host, "net_rx_bps"), host_int(host, "net_tx_bps"), P_INT(id));
    const json_t *d = json_object_get(j, "desktops");
    char *dj = d ? json_dumps(d, JSON_COMPACT) : NULL;
    arena_defer(req->arena, free, dj);
    if (e == BIC_E_OK && dj && json_array_size(d))
        e = DB_EXEC(db, req->arena, STMT_hb_desktops_upsert, NULL, P_INT(id), P_STR(dj));
    if (e == BIC_E_OK && full)
        e = DB_EXEC(db, req->arena, STMT_hb_desktops_keep_only, NULL, P_INT(id),
                    P_STR(dj ? dj : "[]"));
    const json_t *rm = json_object_get(j, "removed");
    if (e == BIC_E_OK && json_array_size(rm)) {
        char *rj = json_dumps(rm, JSON_COMPACT);
        arena_defer(req->arena, free, rj);
        e = DB_EXEC(db, req->arena, STMT_hb_desktops_remove, NULL, P_INT(id), P_STR(rj));
    }
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
    struct hb_ctx c = {req, false};
    if (e == BIC_E_OK) e = db_tx(req->db, heartbeat_tx, &c);
    if (e != BIC_E_OK) return e;
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

/* h_power.c - power control and balancing routes: settings per module, the plan, a server's power. */
#include "h_power.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "drs.h"
#include "handlers.h"
#include "power.h"
#include "util.h"

#define WEEK_S (7 * 86400)

static const char *const wake_methods[] = {"auto", "wol", "bmc", NULL};
static const char *const power_actions[] = {"on", "off", NULL};

const bic_field fields_power_settings[] = {
    {"enabled", F_BOOL, false, 0, 0},
    {"dry_run", F_BOOL, false, 0, 0},
    {"min_on", F_INT, false, 0, 1000},
    {"spare_slots", F_INT, false, 0, 100000},
    {"empty_hold_s", F_INT, false, 0, WEEK_S},
    {"wake_timeout_s", F_INT, false, 10, 86400},
    {"max_parallel", F_INT, false, 1, 100},
    {"schedule", F_STR, false, 0, 1024},
    {"tz_offset_min", F_INT, false, -840, 840},
    {"peak_lead_s", F_INT, false, 0, 86400},
    {"peak_hold_s", F_INT, false, 0, 86400},
    {"wake_method", F_STR, false, 1, 8, wake_methods},
    {"wol_broadcast", F_STR, false, 7, 15},
    {"wol_port", F_INT, false, 1, 65535},
    {0},
};

const bic_field fields_balance_settings[] = {
    {"enabled", F_BOOL, false, 0, 0},
    {"dry_run", F_BOOL, false, 0, 0},
    {"cpu_high_pct", F_INT, false, 1, 100},
    {"mem_high_pct", F_INT, false, 1, 100},
    {"hold_s", F_INT, false, 0, 86400},
    {"min_gain_pct", F_INT, false, 1, 100},
    {"max_concurrent", F_INT, false, 1, 64},
    {"move_hold_s", F_INT, false, 0, WEEK_S},
    {0},
};

const bic_field fields_server_power[] = {
    {"action", F_STR, true, 2, 3, power_actions},
    {0},
};

const bic_field fields_server_power_config[] = {
    {"wol_mac", F_STR, false, 17, 17, NULL, true},
    {"migration_uri", F_STR, false, 0, 255},
    {0},
};

/* ---- settings ---- */

static bic_err power_load_or_404(bic_req *req, long long id, power_settings *s)
{
    bic_err e = power_settings_load(req->db, req->arena, id, s);
    if (e == BIC_E_NOT_FOUND) return fail(req, e, "no module %lld", id);
    if (e != BIC_E_OK) return fail(req, e, "cannot read the power settings");
    return BIC_E_OK;
}

static bic_err balance_load_or_404(bic_req *req, long long id, drs_settings *s)
{
    bic_err e = drs_settings_load(req->db, req->arena, id, s);
    if (e == BIC_E_NOT_FOUND) return fail(req, e, "no module %lld", id);
    if (e != BIC_E_OK) return fail(req, e, "cannot read the balancing settings");
    return BIC_E_OK;
}

bic_err h_automation_power_get(bic_req *req, bic_resp *resp)
{
    long long id;
    power_settings s;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = power_load_or_404(req, id, &s);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, power_settings_json(&s));
    return BIC_E_OK;
}

bic_err h_automation_balance_get(bic_req *req, bic_resp *resp)
{
    long long id;
    drs_settings s;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = balance_load_or_404(req, id, &s);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, drs_settings_json(&s));
    return BIC_E_OK;
}

/* {"key": {"from", "to"}} for every key whose value differs. New reference. */
static json_t *changes(json_t *old, json_t *cur)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(cur, k, v)
    {
        json_t *was = json_object_get(old, k);
        if (!json_equal(was, v) && strcmp(k, "configured") && strcmp(k, "updated_by"))
            json_object_set_new(out, k, json_pack("{s:O, s:O}", "from", was, "to", v));
    }
    return out;
}

struct set_ctx {
    bic_req *req;
    long long id;
    bool balance;
};

#define INT_OR(j, k, cur) (json_object_get(j, k) ? json_integer_value(json_object_get(j, k)) : (cur))
#define BOOL_OR(j, k, cur) (json_object_get(j, k) ? json_is_true(json_object_get(j, k)) : (cur))
#define STR_OR(j, k, cur) (json_object_get(j, k) ? json_string_value(json_object_get(j, k)) : (cur))

static bic_err settings_tx(bic_db *db, void *arg)
{
    struct set_ctx *c = arg;
    bic_req *req = c->req;
    json_t *j = req->json;
    bic_rows lock;
    bic_err e = DB_EXEC(db, req->arena, STMT_module_lock_for_settings, &lock, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot lock the module");
    if (lock.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no module %lld", c->id);
    json_t *old = NULL, *cur = NULL;
    if (!c->balance) {
        power_settings s;
        if ((e = power_load_or_404(req, c->id, &s)) != BIC_E_OK) return e;
        old = power_settings_json(&s);
        e = DB_EXEC(db, req->arena, STMT_power_settings_put, NULL, P_INT(c->id),
                    P_INT(BOOL_OR(j, "enabled", s.enabled)), P_INT(BOOL_OR(j, "dry_run", s.dry_run)),
                    P_INT(INT_OR(j, "min_on", s.min_on)),
                    P_INT(INT_OR(j, "spare_slots", s.spare_slots)),
                    P_INT(INT_OR(j, "empty_hold_s", s.empty_hold_s)),
                    P_INT(INT_OR(j, "wake_timeout_s", s.wake_timeout_s)),
                    P_INT(INT_OR(j, "max_parallel", s.max_parallel)),
                    P_STR(STR_OR(j, "schedule", s.schedule)),
                    P_INT(INT_OR(j, "tz_offset_min", s.tz_offset_min)),
                    P_INT(INT_OR(j, "peak_lead_s", s.peak_lead_s)),
                    P_INT(INT_OR(j, "peak_hold_s", s.peak_hold_s)),
                    P_STR(STR_OR(j, "wake_method", s.wake_method)),
                    P_STR(STR_OR(j, "wol_broadcast", s.wol_broadcast)),
                    P_INT(INT_OR(j, "wol_port", s.wol_port)), P_STR(req->who.username));
        if (e == BIC_E_OK && (e = power_load_or_404(req, c->id, &s)) == BIC_E_OK)
            cur = power_settings_json(&s);
    } else {
        drs_settings s;
        if ((e = balance_load_or_404(req, c->id, &s)) != BIC_E_OK) return e;
        old = drs_settings_json(&s);
        e = DB_EXEC(db, req->arena, STMT_balance_settings_put, NULL, P_INT(c->id),
                    P_INT(BOOL_OR(j, "enabled", s.enabled)), P_INT(BOOL_OR(j, "dry_run", s.dry_run)),
                    P_INT(INT_OR(j, "cpu_high_pct", s.cpu_high_pct)),
                    P_INT(INT_OR(j, "mem_high_pct", s.mem_high_pct)),
                    P_INT(INT_OR(j, "hold_s", s.hold_s)),
                    P_INT(INT_OR(j, "min_gain_pct", s.min_gain_pct)),
                    P_INT(INT_OR(j, "max_concurrent", s.max_concurrent)),
                    P_INT(INT_OR(j, "move_hold_s", s.move_hold_s)), P_STR(req->who.username));
        if (e == BIC_E_OK && (e = balance_load_or_404(req, c->id, &s)) == BIC_E_OK)
            cur = drs_settings_json(&s);
    }
    if (e != BIC_E_OK) {
        json_decref(old);
        return e == BIC_E_NOT_FOUND ? e : fail(req, e, "cannot store the settings");
    }
    json_t *ch = changes(old, cur);
    json_decref(old);
    json_decref(cur);
    return audit_write(req, c->balance ? "balance.settings" : "power.settings", "module",
                       req->param[0], true, json_pack("{s:o}", "changed", ch));
}

bic_err h_automation_power_put(bic_req *req, bic_resp *resp)
{
    struct set_ctx c = {req, 0, false};
    bic_err e = param_id(req, 0, &c.id);
    if (e != BIC_E_OK) return e;
    char why[200];
    const char *sched = json_string_value(json_object_get(req->json, "schedule"));
    if (sched && !power_schedule_valid(sched, why, sizeof(why)))
        return fail(req, BIC_E_VALIDATION, "%s", why);
    const char *bc = json_string_value(json_object_get(req->json, "wol_broadcast"));
    struct in_addr ia;
    if (bc && inet_pton(AF_INET, bc, &ia) != 1)
        return fail(req, BIC_E_VALIDATION, "wol_broadcast '%s' is not an IPv4 address", bc);
    e = db_tx(req->db, settings_tx, &c);
    return e == BIC_E_OK ? h_automation_power_get(req, resp) : e;
}

bic_err h_automation_balance_put(bic_req *req, bic_resp *resp)
{
    struct set_ctx c = {req, 0, true};
    bic_err e = param_id(req, 0, &c.id);
    if (e != BIC_E_OK) return e;
    e = db_tx(req->db, settings_tx, &c);
    return e == BIC_E_OK ? h_automation_balance_get(req, resp) : e;
}

/* ---- the plan ---- */

static json_t *recent_json(bic_req *req, const bic_rows *r)
{
    json_t *out = json_array();
    for (size_t i = 0; i < r->nrows; i++) {
        json_t *o = json_pack("{s:I, s:s, s:s, s:b, s:s, s:o}", "id", (json_int_t)rows_int(r, i, 0),
                              "action", rows_str(r, i, 1), "state", rows_str(r, i, 5), "dry_run",
                              rows_int(r, i, 6) != 0, "reason", rows_str(r, i, 7), "created_at",
                              json_time(req, rows_str(r, i, 8)));
        const char *keys[] = {NULL, NULL, "server_id", "desktop_id", "target_server_id"};
        for (size_t c = 2; c <= 4; c++)
            json_object_set_new(o, keys[c], rows_str(r, i, c) ? json_integer(rows_int(r, i, c))
                                                              : json_null());
        json_array_append_new(out, o);
    }
    return out;
}

bic_err h_automation_plan(bic_req *req, bic_resp *resp)
{
    long long id;
    json_t *pw = NULL, *bal = NULL;
    bic_err e = param_id(req, 0, &id);
    if (e != BIC_E_OK) return e;
    e = power_plan_json(req->db, req->arena, req->cfg, id, &pw);
    if (e == BIC_E_NOT_FOUND) return fail(req, e, "no module %lld", id);
    if (e != BIC_E_OK) return fail(req, e, "cannot make the power plan");
    arena_defer(req->arena, (void (*)(void *))json_decref, pw);
    e = drs_plan_json(req->db, req->arena, req->cfg, id, &bal);
    if (e != BIC_E_OK) return fail(req, e, "cannot make the balancing plan");
    arena_defer(req->arena, (void (*)(void *))json_decref, bal);
    bic_rows rp, rb;
    e = DB_EXEC(req->db, req->arena, STMT_aa_recent, &rp, P_INT(id), P_STR("power"), P_INT(20));
    if (e == BIC_E_OK)
        e = DB_EXEC(req->db, req->arena, STMT_aa_recent, &rb, P_INT(id), P_STR("balance"), P_INT(20));
    if (e != BIC_E_OK) return fail(req, e, "cannot read the recent actions");
    resp_json(req, resp, 200,
              json_pack("{s:I, s:O, s:O, s:{s:o, s:o}}", "module_id", (json_int_t)id, "power", pw,
                        "balance", bal, "recent", "power", recent_json(req, &rp), "balance",
                        recent_json(req, &rb)));
    return BIC_E_OK;
}

/* ---- a server's power ---- */

/* columns of power_server_get / power_server_lock */
enum { SP_ID, SP_MODULE, SP_HOST, SP_STATE, SP_POWER, SP_BUSY, SP_SESSIONS, SP_TASKS, SP_MAC,
       SP_RUNNING, SP_CHANGED, SP_MAC_SET, SP_MIG_URI };

static json_t *server_power_json(bic_req *req, const bic_rows *r)
{
    return json_pack("{s:I, s:I, s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I}, s:s?, s:s?, s:s, s:o}",
                     "id", (json_int_t)rows_int(r, 0, SP_ID), "module_id",
                     (json_int_t)rows_int(r, 0, SP_MODULE), "hostname", rows_str(r, 0, SP_HOST),
                     "state", rows_str(r, 0, SP_STATE), "power_state", rows_str(r, 0, SP_POWER),
                     "in_use", "desktops", (json_int_t)rows_int(r, 0, SP_BUSY), "running",
                     (json_int_t)rows_int(r, 0, SP_RUNNING), "sessions",
                     (json_int_t)rows_int(r, 0, SP_SESSIONS), "tasks",
                     (json_int_t)rows_int(r, 0, SP_TASKS), "wol_mac", rows_str(r, 0, SP_MAC),
                     "wol_mac_set", rows_str(r, 0, SP_MAC_SET), "migration_uri",
                     rows_str(r, 0, SP_MIG_URI), "power_changed_at",
                     json_time(req, rows_str(r, 0, SP_CHANGED)));
}

bic_err h_servers_power_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows r;
    bic_err e = param_id(req, 0, &id);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_power_server_get, &r, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "cannot read the server");
    if (r.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no server %lld", id);
    resp_json(req, resp, 200, server_power_json(req, &r));
    return BIC_E_OK;
}

struct pset_ctx {
    bic_req *req;
    long long id;
    const char *action;
    const char *sent_error; /* on: why the packet could not go, or NULL */
    const char *via;        /* on: where it went */
};

static bic_err pset_tx(bic_db *db, void *arg)
{
    struct pset_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows r;
    bic_err e = DB_EXEC(db, req->arena, STMT_power_server_lock, &r, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot lock the server");
    if (r.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no server %lld", c->id);
    long long module = rows_int(&r, 0, SP_MODULE);
    const char *host = rows_str(&r, 0, SP_HOST);
    const char *by = arena_printf(req->arena, "requested by %s", req->who.username);
    if (!strcmp(c->action, "off")) {
        if (strcmp(rows_str(&r, 0, SP_POWER), "on"))
            return fail(req, BIC_E_CONFLICT, "server '%s' is %s, not on", host,
                        rows_str(&r, 0, SP_POWER));
        long long busy = rows_int(&r, 0, SP_BUSY), ses = rows_int(&r, 0, SP_SESSIONS);
        long long run = rows_int(&r, 0, SP_RUNNING), tasks = rows_int(&r, 0, SP_TASKS);
        if (busy || ses || run)
            return fail(req, BIC_E_CONFLICT,
                        "server '%s' has desktops in use (%lld desktops, %lld running, %lld live "
                        "sessions): it is not powered off",
                        host, busy, run, ses);
        if (tasks)
            return fail(req, BIC_E_CONFLICT, "server '%s' has %lld unfinished tasks", host, tasks);
        e = DB_EXEC(db, req->arena, STMT_task_insert, NULL, P_INT(c->id), P_STR("host.power_off"),
                    P_STR("{}"), P_INT(req->cfg->agents_task_max_attempts),
                    P_STR(req->who.username));
        if (e == BIC_E_OK)
            e = DB_EXEC(db, req->arena, STMT_power_set_state, NULL, P_STR("powering_off"),
                        P_INT(c->id));
        if (e == BIC_E_OK)
            e = power_record(req, module, "power", "power_off", c->id, 0, 0, "running", false, by,
                             NULL);
        return e == BIC_E_OK ? e : fail(req, e, "cannot power the server off");
    }
    if (c->sent_error)
        return power_record(req, module, "power", "wake", c->id, 0, 0, "failed", false,
                            arena_printf(req->arena, "%s; cannot wake: %s", by, c->sent_error),
                            NULL);
    e = DB_EXEC(db, req->arena, STMT_power_set_state, NULL, P_STR("waking"), P_INT(c->id));
    if (e == BIC_E_OK)
        e = power_record(req, module, "power", "wake", c->id, 0, 0, "running", false,
                         arena_printf(req->arena, "%s (%s)", by, c->via), NULL);
    return e == BIC_E_OK ? e : fail(req, e, "cannot record the wake");
}

bic_err h_servers_power_set(bic_req *req, bic_resp *resp)
{
    struct pset_ctx c = {req, 0, json_string_value(json_object_get(req->json, "action")), NULL,
                         NULL};
    bic_err e = param_id(req, 0, &c.id);
    if (e != BIC_E_OK) return e;
    if (!strcmp(c.action, "on")) {
        bic_rows r;
        e = DB_EXEC(req->db, req->arena, STMT_power_server_get, &r, P_INT(c.id));
        if (e != BIC_E_OK) return fail(req, e, "cannot read the server");
        if (r.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no server %lld", c.id);
        const char *host = rows_str(&r, 0, SP_HOST), *mac = rows_str(&r, 0, SP_MAC);
        if (!strcmp(rows_str(&r, 0, SP_POWER), "on") && !strcmp(rows_str(&r, 0, SP_STATE), "online"))
            return fail(req, BIC_E_CONFLICT, "server '%s' is already on", host);
        if (!mac || !*mac)
            return fail(req, BIC_E_CONFLICT,
                        "no MAC address is known for server '%s': set wol_mac first", host);
        power_settings s;
        if ((e = power_load_or_404(req, rows_int(&r, 0, SP_MODULE), &s)) != BIC_E_OK) return e;
        char err[256];
        if (power_wol_send(mac, s.wol_broadcast, s.wol_port, err, sizeof(err)) < 0)
            c.sent_error = arena_strdup(req->arena, err);
        c.via = arena_printf(req->arena, "Wake-on-LAN %s to %s:%lld", mac, s.wol_broadcast,
                             s.wol_port);
    }
    e = db_tx(req->db, pset_tx, &c);
    if (e != BIC_E_OK) return e;
    if (c.sent_error)
        return fail(req, BIC_E_UNAVAILABLE, "the Wake-on-LAN packet could not be sent: %s",
                    c.sent_error);
    bic_rows r;
    e = DB_EXEC(req->db, req->arena, STMT_power_server_get, &r, P_INT(c.id));
    if (e != BIC_E_OK || r.nrows != 1) return fail(req, BIC_E_INTERNAL, "server reload failed");
    resp_json(req, resp, 202, server_power_json(req, &r));
    return BIC_E_OK;
}

struct pcfg_ctx {
    bic_req *req;
    long long id;
};

static bic_err pcfg_tx(bic_db *db, void *arg)
{
    struct pcfg_ctx *c = arg;
    bic_req *req = c->req;
    json_t *j = req->json;
    bic_rows r;
    bic_err e = DB_EXEC(db, req->arena, STMT_power_server_lock, &r, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot lock the server");
    if (r.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no server %lld", c->id);
    json_t *mac = json_object_get(j, "wol_mac");
    const char *m = mac ? json_string_value(mac) : rows_str(&r, 0, SP_MAC_SET);
    const char *uri = STR_OR(j, "migration_uri", rows_str(&r, 0, SP_MIG_URI));
    e = DB_EXEC(db, req->arena, STMT_power_server_config, NULL, P_STR(m), P_STR(uri), P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot change the server");
    return audit_write(req, "server.power_config", "server", req->param[0], true,
                       json_pack("{s:s, s:s?, s:s}", "hostname", rows_str(&r, 0, SP_HOST),
                                 "wol_mac", m, "migration_uri", uri));
}

bic_err h_servers_power_config(bic_req *req, bic_resp *resp)
{
    struct pcfg_ctx c = {req, 0};
    bic_err e = param_id(req, 0, &c.id);
    if (e != BIC_E_OK) return e;
    const char *mac = json_string_value(json_object_get(req->json, "wol_mac"));
    unsigned char pkt[POWER_MAGIC_LEN];
    if (mac && !power_magic_packet(mac, pkt))
        return fail(req, BIC_E_VALIDATION, "wol_mac '%s' is not a MAC address (aa:bb:cc:dd:ee:ff)",
                    mac);
    const char *uri = json_string_value(json_object_get(req->json, "migration_uri"));
    if (uri && *uri && (!strstr(uri, "://") || strpbrk(uri, " \t\"'")))
        return fail(req, BIC_E_VALIDATION, "migration_uri '%s' is not a libvirt URI", uri);
    e = db_tx(req->db, pcfg_tx, &c);
    return e == BIC_E_OK ? h_servers_power_get(req, resp) : e;
}

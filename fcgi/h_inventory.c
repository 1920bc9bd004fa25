/*
 * h_inventory.c - the hierarchy (read: operator, change: admin): building blocks (xCenter), modules
 * (bCenter), servers (bServer) and the enrollment tokens agents join with.
 * Every change is audited in the same transaction.
 */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "handlers.h"
#include "sriov.h"
#include "session.h"
#include "util.h"

const bic_field fields_bb[] = {
    {"name", F_STR, true, 1, 64},
    {"description", F_STR, false, 0, 255},
    {0},
};
const bic_field fields_bb_update[] = {
    {"name", F_STR, false, 1, 64},
    {"description", F_STR, false, 0, 255},
    {0},
};
const bic_field fields_module[] = {
    {"name", F_STR, true, 1, 64},
    {"description", F_STR, false, 0, 255},
    {"max_servers", F_INT, false, 1, 1000},
    {0},
};
const bic_field fields_module_update[] = {
    {"name", F_STR, false, 1, 64},
    {"description", F_STR, false, 0, 255},
    {"max_servers", F_INT, false, 1, 1000},
    {0},
};
const bic_field fields_server_update[] = {
    {"maintenance", F_BOOL, false},
    {"max_desktops", F_INT, false, 1, 1000},
    {0},
};
const bic_field fields_token[] = {
    {"building_block_id", F_INT, true, 1, 1LL << 53},
    {"module_id", F_INT, false, 1, 1LL << 53},
    {"description", F_STR, false, 0, 255},
    {"ttl_seconds", F_INT, false, 60, 90 * 86400},
    {0},
};

/* ---- shared shapes ---- */

static json_t *bb_json(bic_req *req, const bic_rows *r, size_t i)
{
    return json_pack("{s:I, s:s, s:s, s:o, s:I}", "id", (json_int_t)rows_int(r, i, 0), "name",
                     rows_str(r, i, 1), "description", rows_str(r, i, 2), "created_at",
                     json_time(req, rows_str(r, i, 3)), "modules", (json_int_t)rows_int(r, i, 4));
}

static json_t *module_json(bic_req *req, const bic_rows *r, size_t i)
{
    return json_pack("{s:I, s:I, s:s, s:s, s:I, s:o, s:I}", "id", (json_int_t)rows_int(r, i, 0),
                     "building_block_id", (json_int_t)rows_int(r, i, 1), "name", rows_str(r, i, 2),
                     "description", rows_str(r, i, 3), "max_servers", (json_int_t)rows_int(r, i, 4),
                     "created_at", json_time(req, rows_str(r, i, 5)), "servers",
                     (json_int_t)rows_int(r, i, 6));
}

json_t *server_json(bic_req *req, const bic_rows *r, size_t i)
{
    long long cores = rows_int(r, i, 12), nic_mbps = rows_int(r, i, 24);
    long long max_d = rows_int(r, i, 15);
    /* the paper's capacity rules: 100 per server, 6 per core, ~50 per 1 Gbps */
    long long by_cores = cores * 6, by_nic = nic_mbps * 50 / 1000;
    long long cap = max_d;
    if (by_cores < cap) cap = by_cores;
    if (by_nic < cap) cap = by_nic;
    return json_pack(
        "{s:I, s:I, s:s, s:I, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I},"
        " s:{s:f, s:I, s:I, s:I}, s:o, s:o, s:{s:I, s:I}, s:{s:I, s:I, s:I, s:I}}",
        "id", (json_int_t)rows_int(r, i, 0), "module_id", (json_int_t)rows_int(r, i, 1), "module",
        rows_str(r, i, 2), "building_block_id", (json_int_t)rows_int(r, i, 3), "building_block",
        rows_str(r, i, 4), "hostname", rows_str(r, i, 5), "state", rows_str(r, i, 6), "maintenance",
        rows_int(r, i, 7) != 0, "hypervisor", rows_str(r, i, 8), "listen_url", rows_str(r, i, 9),
        "agent_version", rows_str(r, i, 10), "hardware", "cpus", (json_int_t)rows_int(r, i, 11),
        "cores", (json_int_t)cores, "memory_mib", (json_int_t)rows_int(r, i, 13), "storage_gib",
        (json_int_t)rows_int(r, i, 14), "nic_mbps", (json_int_t)nic_mbps, "load", "cpu_pct",
        rows_str(r, i, 16) ? strtod(rows_str(r, i, 16), NULL) : 0.0, "mem_used_mib",
        (json_int_t)rows_int(r, i, 17), "net_rx_bps", (json_int_t)rows_int(r, i, 18), "net_tx_bps",
        (json_int_t)rows_int(r, i, 19), "last_heartbeat_at", json_time(req, rows_str(r, i, 20)),
        "created_at", json_time(req, rows_str(r, i, 21)), "desktops", "total",
        (json_int_t)rows_int(r, i, 22), "running", (json_int_t)rows_int(r, i, 23), "capacity",
        "desktops", (json_int_t)(cap > 0 ? cap : 0), "by_servers", (json_int_t)max_d, "by_cores",
        (json_int_t)by_cores, "by_nics", (json_int_t)by_nic);
}

static bic_err load_one(bic_req *req, bic_db *db, bic_stmt st, long long id, const char *what,
                        bic_rows *rows)
{
    bic_err e = DB_EXEC(db, req->arena, st, rows, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "%s lookup failed", what);
    if (rows->nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no %s %lld", what, id);
    return BIC_E_OK;
}

struct inv_ctx {
    bic_req *req;
    long long id, parent;
};

/* ---- building blocks ---- */

bic_err h_bb_list(bic_req *req, bic_resp *resp)
{
    long long limit, after;
    bic_rows rows;
    bic_err e = query_page(req, 50, 500, "after", 0, &limit, &after);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_bb_list, &rows, P_INT(after), P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "building block list failed");
    resp_page(req, resp, &rows, bb_json, limit, "next_after");
    return BIC_E_OK;
}

bic_err h_bb_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_one(req, req->db, STMT_bb_get, id, "building block", &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, bb_json(req, &rows, 0));
    return BIC_E_OK;
}

static bic_err bb_create_tx(bic_db *db, void *arg)
{
    struct inv_ctx *c = arg;
    bic_req *req = c->req;
    const char *name = json_get_str(req->json, "name", "");
    bic_err e = DB_EXEC(db, req->arena, STMT_bb_insert, NULL, P_STR(name),
                        P_STR(json_get_str(req->json, "description", "")));
    if (e == BIC_E_CONFLICT) return fail(req, e, "a building block named '%s' exists", name);
    if (e != BIC_E_OK) return fail(req, e, "cannot create building block");
    c->id = (long long)db_insert_id(db);
    return audit_write(req, "building_block.create", "building_block",
                       arena_printf(req->arena, "%lld", c->id), true,
                       json_pack("{s:s}", "name", name));
}

bic_err h_bb_create(bic_req *req, bic_resp *resp)
{
    struct inv_ctx c = {req, 0, 0};
    bic_rows rows;
    bic_err e = db_tx(req->db, bb_create_tx, &c);
    if (e == BIC_E_OK) e = load_one(req, req->db, STMT_bb_get, c.id, "building block", &rows);
    if (e != BIC_E_OK) return e;
    resp_header(req, resp, "Location: /api/v1/building-blocks/%lld", c.id);
    resp_json(req, resp, 201, bb_json(req, &rows, 0));
    return BIC_E_OK;
}

static bic_err bb_update_tx(bic_db *db, void *arg)
{
    struct inv_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_one(req, db, STMT_bb_get, c->id, "building block", &cur);
    if (e != BIC_E_OK) return e;
    const char *name = json_get_str(req->json, "name", rows_str(&cur, 0, 1));
    const char *desc = json_get_str(req->json, "description", rows_str(&cur, 0, 2));
    e = DB_EXEC(db, req->arena, STMT_bb_update, NULL, P_STR(name), P_STR(desc), P_INT(c->id));
    if (e == BIC_E_CONFLICT) return fail(req, e, "a building block named '%s' exists", name);
    if (e != BIC_E_OK) return fail(req, e, "cannot update building block");
    return audit_write(req, "building_block.update", "building_block", req->param[0], true,
                       json_pack("{s:s, s:s, s:s}", "name_before", rows_str(&cur, 0, 1), "name",
                                 name, "description", desc));
}

bic_err h_bb_update(bic_req *req, bic_resp *resp)
{
    struct inv_ctx c = {req, 0, 0};
    bic_rows rows;
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, bb_update_tx, &c);
    if (e == BIC_E_OK) e = load_one(req, req->db, STMT_bb_get, c.id, "building block", &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, bb_json(req, &rows, 0));
    return BIC_E_OK;
}

static bic_err bb_delete_tx(bic_db *db, void *arg)
{
    struct inv_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur, n;
    bic_err e = load_one(req, db, STMT_bb_get, c->id, "building block", &cur);
    if (e == BIC_E_OK) e = DB_EXEC(db, req->arena, STMT_bb_module_count, &n, P_INT(c->id));
    if (e != BIC_E_OK) return e == BIC_E_NOT_FOUND ? e : fail(req, e, "lookup failed");
    if (rows_int(&n, 0, 0) > 0)
        return fail(req, BIC_E_CONFLICT, "building block %lld still has modules", c->id);
    e = DB_EXEC(db, req->arena, STMT_bb_delete, NULL, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot delete building block");
    return audit_write(req, "building_block.delete", "building_block", req->param[0], true,
                       json_pack("{s:s}", "name", rows_str(&cur, 0, 1)));
}

bic_err h_bb_delete(bic_req *req, bic_resp *resp)
{
    struct inv_ctx c = {req, 0, 0};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, bb_delete_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

/* ---- modules ---- */

bic_err h_modules_list(bic_req *req, bic_resp *resp)
{
    long long bb, limit, after;
    bic_rows rows, parent;
    bic_err e = param_id(req, 0, &bb);
    if (e == BIC_E_OK) e = query_page(req, 50, 500, "after", 0, &limit, &after);
    if (e == BIC_E_OK) e = load_one(req, req->db, STMT_bb_get, bb, "building block", &parent);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_module_list, &rows, P_INT(bb), P_INT(after),
                P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "module list failed");
    resp_page(req, resp, &rows, module_json, limit, "next_after");
    return BIC_E_OK;
}

bic_err h_modules_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_one(req, req->db, STMT_module_get, id, "module", &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, module_json(req, &rows, 0));
    return BIC_E_OK;
}

static bic_err module_create_tx(bic_db *db, void *arg)
{
    struct inv_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows parent;
    bic_err e = load_one(req, db, STMT_bb_get, c->parent, "building block", &parent);
    if (e != BIC_E_OK) return e;
    const char *name = json_get_str(req->json, "name", "");
    long long max = json_get_int(req->json, "max_servers", 10);
    e = DB_EXEC(db, req->arena, STMT_module_insert, NULL, P_INT(c->parent), P_STR(name),
                P_STR(json_get_str(req->json, "description", "")), P_INT(max));
    if (e == BIC_E_CONFLICT)
        return fail(req, e, "building block %lld already has a module named '%s'", c->parent, name);
    if (e != BIC_E_OK) return fail(req, e, "cannot create module");
    c->id = (long long)db_insert_id(db);
    return audit_write(req, "module.create", "module", arena_printf(req->arena, "%lld", c->id),
                       true,
                       json_pack("{s:s, s:I, s:I}", "name", name, "building_block_id",
                                 (json_int_t)c->parent, "max_servers", (json_int_t)max));
}

bic_err h_modules_create(bic_req *req, bic_resp *resp)
{
    struct inv_ctx c = {req, 0, 0};
    bic_rows rows;
    bic_err e = param_id(req, 0, &c.parent);
    if (e == BIC_E_OK) e = db_tx(req->db, module_create_tx, &c);
    if (e == BIC_E_OK) e = load_one(req, req->db, STMT_module_get, c.id, "module", &rows);
    if (e != BIC_E_OK) return e;
    resp_header(req, resp, "Location: /api/v1/modules/%lld", c.id);
    resp_json(req, resp, 201, module_json(req, &rows, 0));
    return BIC_E_OK;
}

static bic_err module_update_tx(bic_db *db, void *arg)
{
    struct inv_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_one(req, db, STMT_module_get, c->id, "module", &cur);
    if (e != BIC_E_OK) return e;
    const char *name = json_get_str(req->json, "name", rows_str(&cur, 0, 2));
    const char *desc = json_get_str(req->json, "description", rows_str(&cur, 0, 3));
    long long max = json_get_int(req->json, "max_servers", rows_int(&cur, 0, 4));
    if (max < rows_int(&cur, 0, 6))
        return fail(req, BIC_E_CONFLICT, "module %lld already has %lld servers", c->id,
                    rows_int(&cur, 0, 6));
    e = DB_EXEC(db, req->arena, STMT_module_update, NULL, P_STR(name), P_STR(desc), P_INT(max),
                P_INT(c->id));
    if (e == BIC_E_CONFLICT) return fail(req, e, "a module named '%s' exists there", name);
    if (e != BIC_E_OK) return fail(req, e, "cannot update module");
    return audit_write(req, "module.update", "module", req->param[0], true,
                       json_pack("{s:s, s:s, s:I}", "name_before", rows_str(&cur, 0, 2), "name",
                                 name, "max_servers", (json_int_t)max));
}

bic_err h_modules_update(bic_req *req, bic_resp *resp)
{
    struct inv_ctx c = {req, 0, 0};
    bic_rows rows;
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, module_update_tx, &c);
    if (e == BIC_E_OK) e = load_one(req, req->db, STMT_module_get, c.id, "module", &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, module_json(req, &rows, 0));
    return BIC_E_OK;
}

static bic_err module_delete_tx(bic_db *db, void *arg)
{
    struct inv_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_one(req, db, STMT_module_get, c->id, "module", &cur);
    if (e != BIC_E_OK) return e;
    if (rows_int(&cur, 0, 6) > 0)
        return fail(req, BIC_E_CONFLICT, "module %lld still has servers", c->id);
    e = DB_EXEC(db, req->arena, STMT_module_delete, NULL, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot delete module");
    return audit_write(req, "module.delete", "module", req->param[0], true,
                       json_pack("{s:s}", "name", rows_str(&cur, 0, 2)));
}

bic_err h_modules_delete(bic_req *req, bic_resp *resp)
{
    struct inv_ctx c = {req, 0, 0};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, module_delete_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

/* ---- servers ---- */

static const char *const server_states[] = {"enrolling", "online", "offline", NULL};

bic_err h_servers_list(bic_req *req, bic_resp *resp)
{
    long long limit, after, bb = 0, module = 0;
    bic_err e = query_page(req, 50, 1000, "after", 0, &limit, &after);
    if (e == BIC_E_OK) e = query_int(req, "building_block", 0, 1LL << 53, &bb);
    if (e == BIC_E_OK) e = query_int(req, "module", 0, 1LL << 53, &module);
    if (e != BIC_E_OK) return e;
    const char *state = req_query(req, "state");
    if (state && !*state) state = NULL;
    bool known = !state;
    for (const char *const *s = server_states; state && *s; s++)
        known |= !strcmp(*s, state);
    if (!known) return fail(req, BIC_E_VALIDATION, "state must be enrolling, online or offline");
    const char *q = req_query(req, "q");
    const char *like = like_prefix(req, q && *q ? q : NULL);
    bic_param pb = bb ? P_INT(bb) : P_NULL, pm = module ? P_INT(module) : P_NULL;
    const char *maint = req_query(req, "maintenance");
    int mflag = maint && *maint ? parse_bool(maint) : -2;
    if (mflag == -1) return fail(req, BIC_E_VALIDATION, "maintenance must be true or false");
    bic_param pmt = mflag >= 0 ? P_INT(mflag) : P_NULL;
    bic_rows rows;
    e = DB_EXEC(req->db, req->arena, STMT_server_list, &rows, P_INT(after), pb, pb, pm, pm,
                P_STR(state), P_STR(state), pmt, pmt, P_STR(like), P_STR(like), P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "server list failed");
    resp_page(req, resp, &rows, server_json, limit, "next_after");
    return BIC_E_OK;
}

bic_err h_servers_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows rows, nics;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_one(req, req->db, STMT_server_get, id, "server", &rows);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_server_nics, &nics, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "nic lookup failed");
    json_t *s = server_json(req, &rows, 0), *n = json_array();
    for (size_t i = 0; i < nics.nrows; i++) {
        json_t *o = json_pack(
            "{s:s, s:I, s:b, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "name",
            rows_str(&nics, i, 0), "speed_mbps", (json_int_t)rows_int(&nics, i, 1), "sriov_capable",
            rows_int(&nics, i, 2) != 0, "sriov_total_vfs", (json_int_t)rows_int(&nics, i, 3),
            "driver", rows_str(&nics, i, 4), "pci", rows_str(&nics, i, 5), "vendor",
            rows_str(&nics, i, 6), "device", rows_str(&nics, i, 7), "mac", rows_str(&nics, i, 8),
            "link", rows_str(&nics, i, 9), "sriov_num_vfs", (json_int_t)rows_int(&nics, i, 10));
        json_object_set_new(o, "vfs_present", json_integer(rows_int(&nics, i, 11)));
        json_object_set_new(o, "vfs_held", json_integer(rows_int(&nics, i, 12)));
        json_object_set_new(o, "vfs_free", json_integer(rows_int(&nics, i, 13)));
        /* the NIC rule per port; a port whose link is down carries no desktop */
        bool down = !strcmp(rows_str(&nics, i, 9), "down");
        json_object_set_new(
            o, "desktop_cap",
            json_integer(
                down ? 0 : sriov_pf_cap((int)req->cfg->pools_per_gbps, rows_int(&nics, i, 1))));
        json_array_append_new(n, o);
    }
    json_object_set_new(s, "nics", n);
    resp_json(req, resp, 200, s);
    return BIC_E_OK;
}

static bic_err server_update_tx(bic_db *db, void *arg)
{
    struct inv_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_one(req, db, STMT_server_get, c->id, "server", &cur);
    if (e != BIC_E_OK) return e;
    const json_t *jm = json_object_get(req->json, "maintenance");
    const json_t *jd = json_object_get(req->json, "max_desktops");
    if (!jm && !jd)
        return fail(req, BIC_E_VALIDATION, "give maintenance, max_desktops or both");
    const char *host = rows_str(&cur, 0, 5);
    if (jd) {
        /* the per-server desktop limit (the paper's bServer holds 100); placement, the power
           controller and balancing take the smallest of it and the per-core and per-NIC rules.
           Lowering it below what runs there moves nothing: it only stops new placements. */
        long long before = rows_int(&cur, 0, 15), want = json_integer_value(jd);
        if (want != before) {
            e = DB_EXEC(db, req->arena, STMT_server_set_max_desktops, NULL, P_INT(want),
                        P_INT(c->id));
            if (e != BIC_E_OK) return fail(req, e, "cannot update server");
            e = audit_write(req, "server.limit", "server", req->param[0], true,
                            json_pack("{s:s, s:I, s:I}", "hostname", host, "max_desktops_before",
                                      (json_int_t)before, "max_desktops", (json_int_t)want));
            if (e != BIC_E_OK) return e;
        }
    }
    if (!jm) return BIC_E_OK;
    bool m = json_is_true(jm);
    if ((rows_int(&cur, 0, 7) != 0) == m) return BIC_E_OK; /* nothing changed */
    e = DB_EXEC(db, req->arena, STMT_server_set_maintenance, NULL, P_INT(m), P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot update server");
    e = DB_EXEC(db, req->arena, STMT_event_insert, NULL, P_INT(c->id), P_NULL,
                P_STR(m ? "maintenance_on" : "maintenance_off"), P_STR(req->who.username));
    if (e != BIC_E_OK) return fail(req, e, "cannot record the event");
    return audit_write(req, m ? "server.maintenance_on" : "server.maintenance_off", "server",
                       req->param[0], true, json_pack("{s:s}", "hostname", host));
}

bic_err h_servers_update(bic_req *req, bic_resp *resp)
{
    struct inv_ctx c = {req, 0, 0};
    bic_rows rows;
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, server_update_tx, &c);
    if (e == BIC_E_OK) e = load_one(req, req->db, STMT_server_get, c.id, "server", &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, server_json(req, &rows, 0));
    return BIC_E_OK;
}

bic_err h_servers_desktops(bic_req *req, bic_resp *resp)
{
    long long id, limit, after;
    bic_rows s, rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = query_page(req, 100, 1000, "after", 0, &limit, &after);
    if (e == BIC_E_OK) e = load_one(req, req->db, STMT_server_credential, id, "server", &s);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_desktops_of_server, &rows, P_INT(id), P_INT(after),
                P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "desktop list failed");
    json_t *items = json_array();
    for (size_t i = 0; i < rows.nrows; i++)
        json_array_append_new(
            items, json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "id",
                             (json_int_t)rows_int(&rows, i, 0), "uuid", rows_str(&rows, i, 1),
                             "name", rows_str(&rows, i, 2), "state", rows_str(&rows, i, 3), "vcpus",
                             (json_int_t)rows_int(&rows, i, 4), "memory_mib",
                             (json_int_t)rows_int(&rows, i, 5), "cpu_time_ns",
                             (json_int_t)rows_int(&rows, i, 6), "state_changed_at",
                             json_time(req, rows_str(&rows, i, 7)), "updated_at",
                             json_time(req, rows_str(&rows, i, 8))));
    resp_json(req, resp, 200,
              json_pack("{s:o, s:o}", "items", items, "next_after", page_next(&rows, limit)));
    return BIC_E_OK;
}

bic_err h_servers_events(bic_req *req, bic_resp *resp)
{
    long long id, limit, before;
    bic_rows s, rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = query_page(req, 50, 500, "before", 1LL << 62, &limit, &before);
    if (e == BIC_E_OK) e = load_one(req, req->db, STMT_server_credential, id, "server", &s);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_events_of_server, &rows, P_INT(id), P_INT(before),
                P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "event list failed");
    json_t *items = json_array();
    for (size_t i = 0; i < rows.nrows; i++)
        json_array_append_new(
            items,
            json_pack("{s:I, s:o, s:s?, s:s, s:s}", "id", (json_int_t)rows_int(&rows, i, 0), "at",
                      json_time(req, rows_str(&rows, i, 1)), "desktop_uuid", rows_str(&rows, i, 2),
                      "kind", rows_str(&rows, i, 3), "detail", rows_str(&rows, i, 4)));
    resp_json(req, resp, 200,
              json_pack("{s:o, s:o}", "items", items, "next_before", page_next(&rows, limit)));
    return BIC_E_OK;
}

static bic_err server_reset_tx(bic_db *db, void *arg)
{
    struct inv_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_one(req, db, STMT_server_get, c->id, "server", &cur);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(db, req->arena, STMT_server_reset_enrollment, NULL, P_INT(c->id));
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_event_insert, NULL, P_INT(c->id), P_NULL,
                    P_STR("enrollment_reset"), P_STR(req->who.username));
    if (e != BIC_E_OK) return fail(req, e, "cannot reset the enrollment");
    return audit_write(req, "server.reset_enrollment", "server", req->param[0], true,
                       json_pack("{s:s}", "hostname", rows_str(&cur, 0, 5)));
}

/*
 * POST /servers/{id}/reset-enrollment: revokes the agent's credential at once; the machine
 * may then enroll again (same row) with a token of its building block.
 */
bic_err h_servers_reset_enrollment(bic_req *req, bic_resp *resp)
{
    struct inv_ctx c = {req, 0, 0};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, server_reset_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

/* ---- enrollment tokens ---- */

static json_t *token_json(bic_req *req, const bic_rows *r, size_t i)
{
    const char *mod = rows_str(r, i, 2);
    return json_pack(
        "{s:I, s:I, s:o, s:s, s:s, s:o, s:o, s:I, s:s, s:o, s:b}", "id",
        (json_int_t)rows_int(r, i, 0), "building_block_id", (json_int_t)rows_int(r, i, 1),
        "module_id", mod ? json_integer(rows_int(r, i, 2)) : json_null(), "hint", rows_str(r, i, 3),
        "description", rows_str(r, i, 4), "expires_at", json_time(req, rows_str(r, i, 5)),
        "revoked_at", json_time(req, rows_str(r, i, 6)), "uses", (json_int_t)rows_int(r, i, 7),
        "created_by", rows_str(r, i, 8), "created_at", json_time(req, rows_str(r, i, 9)), "valid",
        rows_int(r, i, 10) != 0);
}

bic_err h_tokens_list(bic_req *req, bic_resp *resp)
{
    long long limit, after, bb = 0;
    bic_err e = query_page(req, 50, 500, "after", 0, &limit, &after);
    if (e == BIC_E_OK) e = query_int(req, "building_block", 0, 1LL << 53, &bb);
    if (e != BIC_E_OK) return e;
    bic_param pb = bb ? P_INT(bb) : P_NULL;
    bic_rows rows;
    e = DB_EXEC(req->db, req->arena, STMT_token_list, &rows, P_INT(after), pb, pb, P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "token list failed");
    resp_page(req, resp, &rows, token_json, limit, "next_after");
    return BIC_E_OK;
}

struct token_ctx {
    bic_req *req;
    long long id;
    const char *secret;
};

static bic_err token_create_tx(bic_db *db, void *arg)
{
    struct token_ctx *c = arg;
    bic_req *req = c->req;
    long long bb = json_get_int(req->json, "building_block_id", 0);
    long long mod = json_get_int(req->json, "module_id", 0);
    bic_rows r;
    bic_err e = load_one(req, db, STMT_bb_get, bb, "building block", &r);
    if (e != BIC_E_OK) return e;
    if (mod) {
        e = load_one(req, db, STMT_module_get, mod, "module", &r);
        if (e != BIC_E_OK) return e;
        if (rows_int(&r, 0, 1) != bb)
            return fail(req, BIC_E_VALIDATION, "module %lld is not in building block %lld", mod,
                        bb);
    }
    unsigned char h[32];
    sha256_bytes(c->secret, h);
    char hint[9];
    snprintf(hint, sizeof(hint), "%.8s", c->secret);
    e = DB_EXEC(db, req->arena, STMT_token_insert, NULL, P_INT(bb), mod ? P_INT(mod) : P_NULL,
                P_BLOB(h, 32), P_STR(hint), P_STR(json_get_str(req->json, "description", "")),
                P_INT(json_get_int(req->json, "ttl_seconds", 86400)), P_STR(req->who.username));
    if (e != BIC_E_OK) return fail(req, e, "cannot store the token");
    c->id = (long long)db_insert_id(db);
    return audit_write(req, "enrollment_token.create", "enrollment_token",
                       arena_printf(req->arena, "%lld", c->id), true,
                       json_pack("{s:I, s:s}", "building_block_id", (json_int_t)bb, "hint", hint));
}

bic_err h_tokens_create(bic_req *req, bic_resp *resp)
{
    char secret[RANDOM_TOKEN_LEN + 1];
    if (random_token(secret) < 0) return fail(req, BIC_E_INTERNAL, "no randomness");
    struct token_ctx c = {req, 0, secret};
    bic_rows rows;
    bic_err e = db_tx(req->db, token_create_tx, &c);
    if (e == BIC_E_OK) e = load_one(req, req->db, STMT_token_get, c.id, "token", &rows);
    if (e != BIC_E_OK) return e;
    json_t *t = token_json(req, &rows, 0);
    json_object_set_new(t, "token", json_string(secret)); /* shown once, stored hashed */
    resp_header(req, resp, "Location: /api/v1/enrollment-tokens/%lld", c.id);
    resp_json(req, resp, 201, t);
    return BIC_E_OK;
}

static bic_err token_revoke_tx(bic_db *db, void *arg)
{
    struct token_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_one(req, db, STMT_token_get, c->id, "token", &cur);
    if (e == BIC_E_OK) e = DB_EXEC(db, req->arena, STMT_token_revoke, NULL, P_INT(c->id));
    if (e != BIC_E_OK) return e == BIC_E_NOT_FOUND ? e : fail(req, e, "cannot revoke token");
    if (db_affected(db) == 0) return BIC_E_OK; /* already revoked */
    return audit_write(req, "enrollment_token.revoke", "enrollment_token", req->param[0], true,
                       json_pack("{s:s}", "hint", rows_str(&cur, 0, 3)));
}

bic_err h_tokens_revoke(bic_req *req, bic_resp *resp)
{
    struct token_ctx c = {req, 0, NULL};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, token_revoke_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

/*
 * h_pools.c - platform groups (desktop pools), their entitlements and the managed
 * desktops. Handlers only record what is wanted (sizes, phases); the leader's
 * reconciler (reconcile.c) turns that into agent tasks.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "handlers.h"
#include "placement.h"
#include "pools.h"
#include "util.h"

#define POOL_MAX_SIZE 10000

static const char *const pool_types[] = {"dedicated", "floating", NULL};
static const char *const pool_policies[] = {"spread", "pack", NULL};
static const char *const desktop_phases[] = {"pending",  "provisioning", "ready", "refreshing",
                                             "resizing", "deleting",     "error", NULL};

const bic_field fields_pool_create[] = {
    {"name", F_STR, true, 1, 64},
    {"description", F_STR, false, 0, 255},
    {"type", F_STR, true, 1, 16, pool_types},
    {"image_id", F_INT, true, 1, 1LL << 62},
    {"spec_id", F_INT, true, 1, 1LL << 62},
    {"min_size", F_INT, false, 0, POOL_MAX_SIZE},
    {"max_size", F_INT, true, 0, POOL_MAX_SIZE},
    {"spare", F_INT, false, 0, POOL_MAX_SIZE},
    {"name_pattern", F_STR, true, 1, 64},
    {"placement", F_STR, false, 1, 16, pool_policies},
    {"modules", F_INT_ARRAY, true, 1, 64},
    {"vlan", F_INT, false, 1, 4094, NULL, true},
    {"nic_fallback", F_BOOL, false},
    {0},
};

const bic_field fields_pool_update[] = {
    {"description", F_STR, false, 0, 255},
    {"min_size", F_INT, false, 0, POOL_MAX_SIZE},
    {"max_size", F_INT, false, 0, POOL_MAX_SIZE},
    {"spare", F_INT, false, 0, POOL_MAX_SIZE},
    {"placement", F_STR, false, 1, 16, pool_policies},
    {"spec_id", F_INT, false, 1, 1LL << 62},
    {"image_id", F_INT, false, 1, 1LL << 62},
    {"modules", F_INT_ARRAY, false, 1, 64},
    {"vlan", F_INT, false, 1, 4094, NULL, true},
    {"nic_fallback", F_BOOL, false},
    {0},
};

const bic_field fields_pool_pause[] = {
    {"reason", F_STR, false, 0, 255},
    {0},
};

const bic_field fields_desktop_spec[] = {
    {"vcpus", F_INT, false, 1, 64},
    {"memory_mib", F_INT, false, 256, 1048576},
    {0},
};

/* ---- names ---- */

bool pools_format_name(const char *pattern, long long n, char *out, size_t len)
{
    const char *open = strstr(pattern, "{n");
    if (!open) return false;
    const char *close = strchr(open, '}');
    if (!close || strstr(close, "{n")) return false;
    int width = 0;
    if (open[2] == ':') {
        if (close != open + 4 || open[3] < '1' || open[3] > '6') return false;
        width = open[3] - '0';
    } else if (close != open + 2) {
        return false;
    }
    int w = snprintf(out, len, "%.*s%0*lld%s", (int)(open - pattern), pattern, width, n, close + 1);
    if (w < 0 || (size_t)w >= len || w > 63) return false;
    for (const char *p = out; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-') return false;
    return out[0] != '-' && out[w - 1] != '-';
}

/* ---- JSON ---- */

static json_t *desktop_json(bic_req *req, const bic_rows *r, size_t i)
{
#define OPT_INT(c) (rows_str(r, i, c) ? json_integer(rows_int(r, i, c)) : json_null())
#define OPT_STR(c) (rows_str(r, i, c) ? json_string(rows_str(r, i, c)) : json_null())
    json_t *o = json_pack(
        "{s:I, s:s, s:s, s:o, s:o, s:I, s:s, s:I, s:s, s:o, s:s, s:b, s:I, s:I}", "id",
        (json_int_t)rows_int(r, i, 0), "uuid", rows_str(r, i, 1), "name", rows_str(r, i, 2),
        "pool_id", OPT_INT(3), "pool_name", OPT_STR(4), "server_id", (json_int_t)rows_int(r, i, 5),
        "hostname", rows_str(r, i, 6), "module_id", (json_int_t)rows_int(r, i, 7), "state",
        rows_str(r, i, 8), "phase", OPT_STR(9), "phase_error", rows_str(r, i, 10), "present",
        (int)rows_int(r, i, 11), "vcpus", (json_int_t)rows_int(r, i, 12), "memory_mib",
        (json_int_t)rows_int(r, i, 13));
    json_object_set_new(o, "spec_vcpus", OPT_INT(14));
    json_object_set_new(o, "spec_memory_mib", OPT_INT(15));
    json_object_set_new(o, "spec_disk_gib", OPT_INT(16));
    json_object_set_new(o, "nic_type", OPT_STR(17));
    json_object_set_new(o, "image_version_id", OPT_INT(18));
    json_object_set_new(o, "assigned_user_id", OPT_INT(19));
    json_object_set_new(o, "task_id", OPT_INT(20));
    json_object_set_new(o, "state_changed_at", json_time(req, rows_str(r, i, 21)));
    json_object_set_new(o, "phase_changed_at", json_time(req, rows_str(r, i, 22)));
    json_object_set_new(o, "created_at", json_time(req, rows_str(r, i, 23)));
    json_t *vf = rows_str(r, i, 26)
                     ? json_pack("{s:I, s:s, s:I, s:s}", "id", (json_int_t)rows_int(r, i, 26),
                                 "nic", rows_str(r, i, 27), "index",
                                 (json_int_t)rows_int(r, i, 28), "pci", rows_str(r, i, 29))
                     : json_null();
    json_object_set_new(o, "nic",
                        json_pack("{s:o, s:o, s:o, s:o, s:s}", "type", OPT_STR(17), "mac",
                                  OPT_STR(24), "vlan", OPT_INT(30), "vf", vf, "note",
                                  rows_str(r, i, 25) ? rows_str(r, i, 25) : ""));
    return o;
#undef OPT_INT
#undef OPT_STR
}

static json_t *pool_base_json(bic_req *req, const bic_rows *r, size_t i)
{
    json_t *o = json_pack(
        "{s:I, s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:s}",
        "id", (json_int_t)rows_int(r, i, 0), "name", rows_str(r, i, 1), "description",
        rows_str(r, i, 2), "type", rows_str(r, i, 3), "image_id", (json_int_t)rows_int(r, i, 4),
        "image_name", rows_str(r, i, 5), "spec_id", (json_int_t)rows_int(r, i, 6), "spec_name",
        rows_str(r, i, 7), "min_size", (json_int_t)rows_int(r, i, 8), "max_size",
        (json_int_t)rows_int(r, i, 9), "spare", (json_int_t)rows_int(r, i, 10), "name_pattern",
        rows_str(r, i, 11), "placement", rows_str(r, i, 12), "state", rows_str(r, i, 13),
        "pause_reason", rows_str(r, i, 14), "failures", (json_int_t)rows_int(r, i, 15),
        "last_error", rows_str(r, i, 16));
    json_object_set_new(o, "reconciled_at", json_time(req, rows_str(r, i, 17)));
    json_object_set_new(o, "created_at", json_time(req, rows_str(r, i, 18)));
    json_object_set_new(o, "updated_at", json_time(req, rows_str(r, i, 19)));
    json_object_set_new(o, "vlan",
                        rows_str(r, i, 20) ? json_integer(rows_int(r, i, 20)) : json_null());
    json_object_set_new(o, "nic_fallback", json_boolean(rows_int(r, i, 21) != 0));
    return o;
}

/* The modules and desktop counts of pools with ids from..to: two queries for a whole page. */
struct pool_extra {
    bic_rows m, c;
};

static bic_err pool_extra_load(bic_req *req, long long from, long long to, struct pool_extra *x)
{
    bic_err e = DB_EXEC(req->db, req->arena, STMT_pool_modules_range, &x->m, P_INT(from), P_INT(to));
    if (e == BIC_E_OK)
        e = DB_EXEC(req->db, req->arena, STMT_pool_counts_range, &x->c, P_INT(from), P_INT(to));
    return e == BIC_E_OK ? e : fail(req, e, "pool lookup failed");
}

/* Adds "modules", "counts" and "target" of pool id from x. */
static void pool_details(json_t *o, long long id, const struct pool_extra *x)
{
    json_t *mods = json_array();
    for (size_t i = 0; i < x->m.nrows; i++)
        if (rows_int(&x->m, i, 0) == id)
            json_array_append_new(mods, json_pack("{s:I, s:s}", "id",
                                                  (json_int_t)rows_int(&x->m, i, 1), "name",
                                                  rows_str(&x->m, i, 2)));
    json_object_set_new(o, "modules", mods);
    json_t *counts = json_object();
    for (const char *const *ph = desktop_phases; *ph; ph++)
        json_object_set_new(counts, *ph, json_integer(0));
    long long total = 0, running = 0, assigned = 0;
    for (size_t i = 0; i < x->c.nrows; i++) {
        if (rows_int(&x->c, i, 0) != id) continue;
        const char *ph = rows_str(&x->c, i, 1);
        long long n = rows_int(&x->c, i, 2);
        if (ph) json_object_set_new(counts, ph, json_integer(n));
        total += n;
        running += rows_int(&x->c, i, 3);
        assigned += rows_int(&x->c, i, 4);
    }
    /* the size the reconciler works towards (reconcile.c pool_tx) */
    long long min = json_integer_value(json_object_get(o, "min_size")),
              max = json_integer_value(json_object_get(o, "max_size")),
              spare = json_integer_value(json_object_get(o, "spare"));
    long long target = assigned + spare > min ? assigned + spare : min;
    json_object_set_new(o, "target", json_integer(target > max ? max : target));
    json_object_set_new(counts, "total", json_integer(total));
    json_object_set_new(counts, "running", json_integer(running));
    json_object_set_new(counts, "assigned", json_integer(assigned));
    json_object_set_new(o, "counts", counts);
}

static bic_err pool_answer(bic_req *req, bic_resp *resp, long long id, int status)
{
    bic_rows rows;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_pool_get, &rows, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "pool lookup failed");
    if (rows.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no pool %lld", id);
    struct pool_extra x;
    e = pool_extra_load(req, id, id, &x);
    if (e != BIC_E_OK) return e;
    json_t *o = pool_base_json(req, &rows, 0);
    pool_details(o, id, &x);
    resp_json(req, resp, status, o);
    return BIC_E_OK;
}

/* ---- pools ---- */

bic_err h_pools_list(bic_req *req, bic_resp *resp)
{
    long long limit, after;
    bic_err e = query_page(req, 50, 200, "after", 0, &limit, &after);
    if (e != BIC_E_OK) return e;
    const char *q = req_query(req, "q"), *state = req_query(req, "state");
    if (state && *state && strcmp(state, "active") && strcmp(state, "paused") &&
        strcmp(state, "deleting"))
        return fail(req, BIC_E_VALIDATION, "state must be active, paused or deleting");
    const char *like = like_prefix(req, q && *q ? q : NULL);
    state = state && *state ? state : NULL;
    bic_rows rows;
    e = DB_EXEC(req->db, req->arena, STMT_pool_list, &rows, P_INT(after), P_STR(like), P_STR(like),
                P_STR(state), P_STR(state), P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "pool list failed");
    struct pool_extra x = {0};
    if (rows.nrows &&
        (e = pool_extra_load(req, rows_int(&rows, 0, 0), rows_int(&rows, rows.nrows - 1, 0), &x)) !=
            BIC_E_OK)
        return e;
    json_t *items = json_array();
    for (size_t i = 0; i < rows.nrows; i++) {
        json_t *o = pool_base_json(req, &rows, i);
        pool_details(o, rows_int(&rows, i, 0), &x);
        json_array_append_new(items, o);
    }
    resp_json(req, resp, 200,
              json_pack("{s:o, s:o}", "items", items, "next_after", page_next(&rows, limit)));
    return BIC_E_OK;
}

bic_err h_pools_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_err e = param_id(req, 0, &id);
    return e == BIC_E_OK ? pool_answer(req, resp, id, 200) : e;
}

struct pool_ctx {
    bic_req *req;
    long long id, other;
};

/* Checks the image (published, ready version) and spec exist; 422 naming the field otherwise. */
static bic_err check_image_spec(bic_req *req, long long image_id, long long spec_id)
{
    bic_rows r;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_pool_image_published, &r, P_INT(image_id));
    if (e != BIC_E_OK) return fail(req, e, "image lookup failed");
    if (r.nrows != 1) return fail(req, BIC_E_VALIDATION, "image_id: no image %lld", image_id);
    if (!rows_str(&r, 0, 0) || strcmp(rows_str(&r, 0, 1) ? rows_str(&r, 0, 1) : "", "ready"))
        return fail(req, BIC_E_VALIDATION, "image_id: image %lld has no published ready version",
                    image_id);
    e = DB_EXEC(req->db, req->arena, STMT_pool_spec_get, &r, P_INT(spec_id));
    if (e != BIC_E_OK) return fail(req, e, "spec lookup failed");
    if (r.nrows != 1) return fail(req, BIC_E_VALIDATION, "spec_id: no spec %lld", spec_id);
    return BIC_E_OK;
}

static bic_err set_modules(bic_req *req, long long pool_id, const json_t *mods)
{
    bic_err e = DB_EXEC(req->db, req->arena, STMT_pool_modules_clear, NULL, P_INT(pool_id));
    size_t i;
    const json_t *v;
    json_array_foreach(mods, i, v)
    {
        if (e != BIC_E_OK) break;
        long long mid = json_integer_value(v);
        bic_rows r;
        e = DB_EXEC(req->db, req->arena, STMT_pool_module_exists, &r, P_INT(mid));
        if (e == BIC_E_OK && r.nrows != 1)
            return fail(req, BIC_E_VALIDATION, "modules[%zu]: no module %lld", i, mid);
        if (e == BIC_E_OK)
            e = DB_EXEC(req->db, req->arena, STMT_pool_module_add, NULL, P_INT(pool_id), P_INT(mid));
    }
    return e == BIC_E_OK ? e : fail(req, e, "cannot bind the modules");
}

static bic_err check_sizes(bic_req *req, long long min, long long max, long long spare)
{
    if (min > max)
        return fail(req, BIC_E_VALIDATION, "min_size (%lld) must not exceed max_size (%lld)", min,
                    max);
    if (spare > max)
        return fail(req, BIC_E_VALIDATION, "spare (%lld) must not exceed max_size (%lld)", spare,
                    max);
    return BIC_E_OK;
}

/* The pool's VLAN: the body's (null clears it), else the current row's (POOL_LOCK_COLS). */
static bic_param vlan_param(const json_t *j, const bic_rows *cur)
{
    const json_t *v = json_object_get(j, "vlan");
    if (json_is_integer(v)) return P_INT(json_integer_value(v));
    if (v || !cur || !rows_str(cur, 0, 13)) return P_NULL;
    return P_INT(rows_int(cur, 0, 13));
}

static bic_err pool_create_tx(bic_db *db, void *arg)
{
    struct pool_ctx *c = arg;
    bic_req *req = c->req;
    const json_t *j = req->json;
    const char *name = json_get_str(j, "name", ""), *pattern = json_get_str(j, "name_pattern", "");
    long long min = json_get_int(j, "min_size", 0), max = json_get_int(j, "max_size", 0),
              spare = json_get_int(j, "spare", 0), image = json_get_int(j, "image_id", 0),
              spec = json_get_int(j, "spec_id", 0);
    char probe[128];
    if (!pools_format_name(pattern, max > 0 ? max : 1, probe, sizeof(probe)))
        return fail(req, BIC_E_VALIDATION,
                    "name_pattern must hold one {n} or {n:W} (W 1-6) and give host names of "
                    "letters, digits and '-' up to 63 characters");
    bic_err e = check_sizes(req, min, max, spare);
    if (e == BIC_E_OK) e = check_image_spec(req, image, spec);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(db, req->arena, STMT_pool_insert, NULL, P_STR(name),
                P_STR(json_get_str(j, "description", "")), P_STR(json_get_str(j, "type", "")),
                P_INT(image), P_INT(spec), P_INT(min), P_INT(max), P_INT(spare), P_STR(pattern),
                P_STR(json_get_str(j, "placement", "spread")), vlan_param(j, NULL),
                P_INT(json_get_bool(j, "nic_fallback", false)));
    if (e == BIC_E_CONFLICT) return fail(req, e, "a pool named '%s' already exists", name);
    if (e != BIC_E_OK) return fail(req, e, "cannot create the pool");
    c->id = (long long)db_insert_id(db);
    e = set_modules(req, c->id, json_object_get(j, "modules"));
    if (e != BIC_E_OK) return e;
    json_t *summary = json_deep_copy(j);
    return audit_write(req, "pool.create", "pool", arena_printf(req->arena, "%lld", c->id), true,
                       summary);
}

bic_err h_pools_create(bic_req *req, bic_resp *resp)
{
    struct pool_ctx c = {req, 0, 0};
    bic_err e = db_tx(req->db, pool_create_tx, &c);
    if (e != BIC_E_OK) return e;
    resp_header(req, resp, "Location: /api/v1/pools/%lld", c.id);
    return pool_answer(req, resp, c.id, 201);
}

/* Locks the pool row; rows of STMT_pool_lock in *cur. */
static bic_err lock_pool(bic_req *req, long long id, bic_rows *cur)
{
    bic_err e = DB_EXEC(req->db, req->arena, STMT_pool_lock, cur, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "pool lookup failed");
    if (cur->nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no pool %lld", id);
    return BIC_E_OK;
}

static bic_err pool_update_tx(bic_db *db, void *arg)
{
    struct pool_ctx *c = arg;
    bic_req *req = c->req;
    const json_t *j = req->json;
    bic_rows cur, full;
    bic_err e = lock_pool(req, c->id, &cur);
    if (e == BIC_E_OK) e = DB_EXEC(db, req->arena, STMT_pool_get, &full, P_INT(c->id));
    if (e != BIC_E_OK) return e;
    if (!strcmp(rows_str(&cur, 0, 10), "deleting"))
        return fail(req, BIC_E_CONFLICT, "pool %lld is being deleted", c->id);
    long long min = json_get_int(j, "min_size", rows_int(&cur, 0, 5)),
              max = json_get_int(j, "max_size", rows_int(&cur, 0, 6)),
              spare = json_get_int(j, "spare", rows_int(&cur, 0, 7)),
              image = json_get_int(j, "image_id", rows_int(&cur, 0, 3)),
              spec = json_get_int(j, "spec_id", rows_int(&cur, 0, 4));
    char probe[128];
    if (!pools_format_name(rows_str(&cur, 0, 8), max > 0 ? max : 1, probe, sizeof(probe)))
        return fail(req, BIC_E_VALIDATION, "max_size: names of the pattern would be too long");
    e = check_sizes(req, min, max, spare);
    if (e == BIC_E_OK) e = check_image_spec(req, image, spec);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(db, req->arena, STMT_pool_update, NULL,
                P_STR(json_get_str(j, "description", rows_str(&full, 0, 2))), P_INT(min), P_INT(max),
                P_INT(spare), P_STR(json_get_str(j, "placement", rows_str(&cur, 0, 9))), P_INT(spec),
                P_INT(image), vlan_param(j, &cur),
                P_INT(json_get_bool(j, "nic_fallback", rows_int(&cur, 0, 14) != 0)), P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot update the pool");
    const json_t *mods = json_object_get(j, "modules");
    if (mods && (e = set_modules(req, c->id, mods)) != BIC_E_OK) return e;
    json_t *summary = json_deep_copy(j);
    json_object_set_new(summary, "before",
                        json_pack("{s:I, s:I, s:I}", "min_size", (json_int_t)rows_int(&cur, 0, 5),
                                  "max_size", (json_int_t)rows_int(&cur, 0, 6), "spare",
                                  (json_int_t)rows_int(&cur, 0, 7)));
    return audit_write(req, "pool.update", "pool", req->param[0], true, summary);
}

bic_err h_pools_update(bic_req *req, bic_resp *resp)
{
    struct pool_ctx c = {req, 0, 0};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, pool_update_tx, &c);
    return e == BIC_E_OK ? pool_answer(req, resp, c.id, 200) : e;
}

static bic_err pool_state_tx(bic_db *db, void *arg)
{
    struct pool_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = lock_pool(req, c->id, &cur);
    if (e != BIC_E_OK) return e;
    const char *was = rows_str(&cur, 0, 10);
    const char *to = c->other == 0 ? "paused" : c->other == 1 ? "active" : "deleting";
    if (!strcmp(was, "deleting"))
        return fail(req, BIC_E_CONFLICT, "pool %lld is being deleted", c->id);
    const char *reason = c->other == 0 ? json_get_str(req->json, "reason", "") : "";
    if (c->other == 0 && !*reason)
        reason = arena_printf(req->arena, "paused by %s", req->who.username);
    e = DB_EXEC(db, req->arena, STMT_pool_set_state, NULL, P_STR(to), P_STR(reason), P_STR(to),
                P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot change the pool");
    const char *action = c->other == 0 ? "pool.pause" : c->other == 1 ? "pool.resume" : "pool.delete";
    return audit_write(req, action, "pool", req->param[0], true,
                       json_pack("{s:s, s:s, s:s}", "name", rows_str(&cur, 0, 1), "was", was,
                                 "reason", reason));
}

static bic_err pool_state(bic_req *req, bic_resp *resp, long long which, int status)
{
    struct pool_ctx c = {req, 0, which};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, pool_state_tx, &c);
    return e == BIC_E_OK ? pool_answer(req, resp, c.id, status) : e;
}

bic_err h_pools_pause(bic_req *req, bic_resp *resp) { return pool_state(req, resp, 0, 200); }
bic_err h_pools_resume(bic_req *req, bic_resp *resp) { return pool_state(req, resp, 1, 200); }
bic_err h_pools_delete(bic_req *req, bic_resp *resp) { return pool_state(req, resp, 2, 202); }

/* ---- spec changes ---- */

struct spec_ctx {
    bic_req *req;
    long long id, count;
    bool pool;
};

static bic_err spec_tx(bic_db *db, void *arg)
{
    struct spec_ctx *c = arg;
    bic_req *req = c->req;
    const json_t *j = req->json;
    if (!json_object_get(j, "vcpus") && !json_object_get(j, "memory_mib"))
        return fail(req, BIC_E_VALIDATION, "give vcpus, memory_mib or both");
    bic_rows cur;
    bic_err e;
    long long vcpus, mem;
    if (c->pool) {
        e = lock_pool(req, c->id, &cur);
        if (e != BIC_E_OK) return e;
        bic_rows sp;
        e = DB_EXEC(db, req->arena, STMT_pool_spec_get, &sp, P_INT(rows_int(&cur, 0, 4)));
        if (e != BIC_E_OK || sp.nrows != 1) return fail(req, BIC_E_INTERNAL, "spec lookup failed");
        vcpus = json_get_int(j, "vcpus", rows_int(&sp, 0, 1));
        mem = json_get_int(j, "memory_mib", rows_int(&sp, 0, 2));
        e = DB_EXEC(db, req->arena, STMT_pool_desktops_set_spec, NULL, P_INT(vcpus), P_INT(mem),
                    P_INT(c->id));
        c->count = (long long)db_affected(db);
    } else {
        e = DB_EXEC(db, req->arena, STMT_desktop_lock, &cur, P_INT(c->id));
        if (e != BIC_E_OK) return fail(req, e, "desktop lookup failed");
        if (cur.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no desktop %lld", c->id);
        if (!rows_str(&cur, 0, 1))
            return fail(req, BIC_E_CONFLICT, "desktop %lld is not managed by a pool", c->id);
        const char *ph = rows_str(&cur, 0, 2);
        if (strcmp(ph, "ready") && strcmp(ph, "error"))
            return fail(req, BIC_E_CONFLICT, "desktop %lld is %s; try again when it is ready",
                        c->id, ph);
        vcpus = json_get_int(j, "vcpus", rows_int(&cur, 0, 8));
        mem = json_get_int(j, "memory_mib", rows_int(&cur, 0, 9));
        e = DB_EXEC(db, req->arena, STMT_desktop_set_spec, NULL, P_INT(vcpus), P_INT(mem),
                    P_INT(c->id));
        c->count = 1;
    }
    if (e != BIC_E_OK) return fail(req, e, "cannot change the spec");
    return audit_write(req, c->pool ? "pool.spec" : "desktop.spec", c->pool ? "pool" : "desktop",
                       req->param[0], true,
                       json_pack("{s:I, s:I, s:I}", "vcpus", (json_int_t)vcpus, "memory_mib",
                                 (json_int_t)mem, "desktops", (json_int_t)c->count));
}

bic_err h_pools_spec(bic_req *req, bic_resp *resp)
{
    struct spec_ctx c = {req, 0, 0, true};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, spec_tx, &c);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 202, json_pack("{s:I}", "desktops", (json_int_t)c.count));
    return BIC_E_OK;
}

/* ---- placement preview ---- */

bic_err h_pools_placement(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows p, sp;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = DB_EXEC(req->db, req->arena, STMT_pool_get, &p, P_INT(id));
    if (e != BIC_E_OK) return e == BIC_E_NOT_FOUND ? e : fail(req, e, "pool lookup failed");
    if (p.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no pool %lld", id);
    e = DB_EXEC(req->db, req->arena, STMT_pool_spec_get, &sp, P_INT(rows_int(&p, 0, 6)));
    if (e != BIC_E_OK || sp.nrows != 1) return fail(req, BIC_E_INTERNAL, "spec lookup failed");
    pl_server *s;
    size_t n, nmod;
    long long *mods;
    const char **names;
    pl_rules rules;
    pools_rules(req->cfg, &rules);
    e = pools_server_load(req->db, req->arena, id, rules.per_gbps, &s, &n, &mods, &names, &nmod);
    if (e != BIC_E_OK) return fail(req, e, "server lookup failed");
    pl_request r = {.memory_mib = rows_int(&sp, 0, 2),
                    .vcpus = (int)rows_int(&sp, 0, 1),
                    .vf = !strcmp(rows_str(&sp, 0, 4), "sriov"),
                    .modules = mods,
                    .module_names = names,
                    .nmodules = nmod,
                    .policy = !strcmp(rows_str(&p, 0, 12), "pack") ? PL_PACK : PL_SPREAD};
    char why[512] = "";
    bool fell_back;
    long k =
        pools_choose(s, n, &r, &rules, rows_int(&p, 0, 21) != 0, &fell_back, why, sizeof(why));
    const char *nic = fell_back ? "virtio (no free SR-IOV VF)" : r.vf ? "sriov" : "virtio";
    json_t *o = k >= 0 ? json_pack("{s:b, s:I, s:s, s:s, s:s}", "fits", 1, "server_id",
                                   (json_int_t)s[k].id, "hostname", s[k].hostname, "reason",
                                   fell_back ? why : "", "nic", nic)
                       : json_pack("{s:b, s:n, s:n, s:s}", "fits", 0, "server_id", "hostname",
                                   "reason", why);
    resp_json(req, resp, 200, o);
    return BIC_E_OK;
}

/* ---- entitlements ---- */

bic_err h_pools_ent_list(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows p, rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = DB_EXEC(req->db, req->arena, STMT_pool_get, &p, P_INT(id));
    if (e == BIC_E_OK && p.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no pool %lld", id);
    if (e == BIC_E_OK) e = DB_EXEC(req->db, req->arena, STMT_pool_ent_list, &rows, P_INT(id));
    if (e != BIC_E_OK) return e == BIC_E_NOT_FOUND ? e : fail(req, e, "entitlement list failed");
    json_t *items = json_array();
    for (size_t i = 0; i < rows.nrows; i++) {
        bool user = rows_str(&rows, i, 1) != NULL;
        json_t *o = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "id",
                              (json_int_t)rows_int(&rows, i, 0), "user_id",
                              user ? json_integer(rows_int(&rows, i, 1)) : json_null(), "username",
                              user ? json_string(rows_str(&rows, i, 2)) : json_null(), "group_id",
                              user ? json_null() : json_integer(rows_int(&rows, i, 3)),
                              "group_name", user ? json_null() : json_string(rows_str(&rows, i, 4)),
                              "created_at", json_time(req, rows_str(&rows, i, 5)));
        json_array_append_new(items, o);
    }
    resp_json(req, resp, 200, json_pack("{s:o}", "items", items));
    return BIC_E_OK;
}

struct ent_ctx {
    bic_req *req;
    long long pool, who;
    bool group, add;
};

static bic_err ent_tx(bic_db *db, void *arg)
{
    struct ent_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur, w;
    bic_err e = lock_pool(req, c->pool, &cur);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(db, req->arena, c->group ? STMT_group_get : STMT_user_get, &w, P_INT(c->who));
    if (e != BIC_E_OK) return fail(req, e, "lookup failed");
    if (w.nrows != 1)
        return fail(req, BIC_E_NOT_FOUND, "no %s %lld", c->group ? "group" : "user", c->who);
    bic_stmt st = c->group ? (c->add ? STMT_pool_ent_add_group : STMT_pool_ent_del_group)
                           : (c->add ? STMT_pool_ent_add_user : STMT_pool_ent_del_user);
    e = DB_EXEC(db, req->arena, st, NULL, P_INT(c->pool), P_INT(c->who));
    if (e != BIC_E_OK) return fail(req, e, "cannot change the entitlement");
    if (db_affected(db) == 0) return BIC_E_OK; /* already so */
    return audit_write(req, c->add ? "pool.entitle" : "pool.unentitle", "pool", req->param[0], true,
                       json_pack("{s:s, s:s, s:I, s:s}", "pool", rows_str(&cur, 0, 1), "kind",
                                 c->group ? "group" : "user", "id", (json_int_t)c->who, "name",
                                 rows_str(&w, 0, 1)));
}

static bic_err ent_change(bic_req *req, bic_resp *resp, bool group, bool add)
{
    struct ent_ctx c = {req, 0, 0, group, add};
    bic_err e = param_id(req, 0, &c.pool);
    if (e == BIC_E_OK) e = param_id(req, 1, &c.who);
    if (e == BIC_E_OK) e = db_tx(req->db, ent_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

bic_err h_pools_ent_user_add(bic_req *req, bic_resp *resp) { return ent_change(req, resp, false, true); }
bic_err h_pools_ent_user_del(bic_req *req, bic_resp *resp) { return ent_change(req, resp, false, false); }
bic_err h_pools_ent_group_add(bic_req *req, bic_resp *resp) { return ent_change(req, resp, true, true); }
bic_err h_pools_ent_group_del(bic_req *req, bic_resp *resp) { return ent_change(req, resp, true, false); }

/* ---- desktops ---- */

static bic_err desktops_page(bic_req *req, bic_resp *resp, const char *pool)
{
    long long limit, after;
    bic_err e = query_page(req, 100, 1000, "after", 0, &limit, &after);
    if (e != BIC_E_OK) return e;
    const char *server, *phase = req_query(req, "phase"), *state = req_query(req, "state"),
                        *q = req_query(req, "q");
    if (!pool && (e = query_id(req, "pool", &pool)) != BIC_E_OK) return e;
    if ((e = query_id(req, "server", &server)) != BIC_E_OK) return e;
#define EMPTY_NULL(x) x = (x && *x) ? x : NULL
    EMPTY_NULL(phase);
    EMPTY_NULL(state);
#undef EMPTY_NULL
    if (phase) {
        bool ok = false;
        for (const char *const *p = desktop_phases; *p; p++) ok |= !strcmp(*p, phase);
        if (!ok) return fail(req, BIC_E_VALIDATION, "phase is not a desktop phase");
    }
    const char *like = like_prefix(req, q && *q ? q : NULL);
    bic_rows rows;
    e = DB_EXEC(req->db, req->arena, STMT_desktop_list, &rows, P_INT(after), P_STR(pool),
                P_STR(pool), P_STR(server), P_STR(server), P_STR(phase), P_STR(phase),
                P_STR(state), P_STR(state), P_STR(like), P_STR(like), P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "desktop list failed");
    resp_page(req, resp, &rows, desktop_json, limit, "next_after");
    return BIC_E_OK;
}

bic_err h_desktops_list(bic_req *req, bic_resp *resp) { return desktops_page(req, resp, NULL); }

bic_err h_pools_desktops(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows p;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = DB_EXEC(req->db, req->arena, STMT_pool_get, &p, P_INT(id));
    if (e != BIC_E_OK) return e == BIC_E_NOT_FOUND ? e : fail(req, e, "pool lookup failed");
    if (p.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no pool %lld", id);
    return desktops_page(req, resp, req->param[0]);
}

static bic_err desktop_answer(bic_req *req, bic_resp *resp, long long id, int status)
{
    bic_rows rows;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_desktop_get, &rows, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "desktop lookup failed");
    if (rows.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no desktop %lld", id);
    resp_json(req, resp, status, desktop_json(req, &rows, 0));
    return BIC_E_OK;
}

bic_err h_desktops_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_err e = param_id(req, 0, &id);
    return e == BIC_E_OK ? desktop_answer(req, resp, id, 200) : e;
}

bic_err h_desktops_spec(bic_req *req, bic_resp *resp)
{
    struct spec_ctx c = {req, 0, 0, false};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, spec_tx, &c);
    return e == BIC_E_OK ? desktop_answer(req, resp, c.id, 202) : e;
}

struct phase_ctx {
    bic_req *req;
    long long id;
    const char *phase, *action;
};

static bic_err desktop_phase_tx(bic_db *db, void *arg)
{
    struct phase_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = DB_EXEC(db, req->arena, STMT_desktop_lock, &cur, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "desktop lookup failed");
    if (cur.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no desktop %lld", c->id);
    if (!rows_str(&cur, 0, 1))
        return fail(req, BIC_E_CONFLICT,
                    "desktop %lld is not managed by a pool; use the server's tasks", c->id);
    const char *ph = rows_str(&cur, 0, 2);
    bool deleting = !strcmp(c->phase, "deleting");
    if (!strcmp(ph, "deleting"))
        return fail(req, BIC_E_CONFLICT, "desktop %lld is already being deleted", c->id);
    /* a delete may interrupt a desktop waiting for its image; nothing else may */
    if (strcmp(ph, "ready") && strcmp(ph, "error") && !(deleting && !strcmp(ph, "pending")))
        return fail(req, BIC_E_CONFLICT, "desktop %lld is %s; try again when it is ready", c->id,
                    ph);
    e = DB_EXEC(db, req->arena, STMT_desktop_set_phase, NULL, P_STR(c->phase), P_STR(""),
                P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot change the desktop");
    return audit_write(req, c->action, "desktop", req->param[0], true,
                       json_pack("{s:s, s:s}", "name", rows_str(&cur, 0, 5), "was", ph));
}

static bic_err desktop_phase(bic_req *req, bic_resp *resp, const char *phase, const char *action)
{
    struct phase_ctx c = {req, 0, phase, action};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, desktop_phase_tx, &c);
    return e == BIC_E_OK ? desktop_answer(req, resp, c.id, 202) : e;
}

bic_err h_desktops_refresh(bic_req *req, bic_resp *resp)
{
    return desktop_phase(req, resp, "refreshing", "desktop.refresh");
}

bic_err h_desktops_delete(bic_req *req, bic_resp *resp)
{
    return desktop_phase(req, resp, "deleting", "desktop.delete");
}

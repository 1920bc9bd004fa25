/*
 * reconcile.c - the pool reconciler, run by the bicd holding the leader lease.
 *
 * Each pass, in short transactions:
 *  1. finished: desktops in a transitional phase whose agent task ended move on
 *     (ready, error, or their row goes away after a delete);
 *  2. waiting: desktops whose phase needs a task that was not sent yet get it
 *     (pending → desktop.create once the image is on the server, refreshing →
 *     desktop.refresh, resizing → desktop.set_spec, deleting → desktop.delete);
 *  3. pools: every active pool is brought to its size — broken desktops are
 *     replaced, missing ones placed (placement.c) and inserted as pending, extra
 *     ones trimmed; a deleting pool has its desktops deleted, then its row.
 * A pool whose tasks fail max_failures times in a row is paused with the reason.
 * Handlers never send tasks themselves: they set a phase and this loop acts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "audit.h"
#include "catalog.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "placement.h"
#include "pools.h"
#include "sriov.h"

void pools_rules(const bic_config *cfg, pl_rules *out)
{
    out->max_per_server = (int)cfg->pools_max_per_server;
    out->per_core = (int)cfg->pools_per_core;
    out->per_gbps = (int)cfg->pools_per_gbps;
    out->mem_overcommit_pct = (int)cfg->pools_mem_overcommit_pct;
    out->host_reserve_mib = cfg->pools_host_reserve_mib;
}

bic_err pools_server_load(bic_db *db, bic_arena *a, long long pool_id, int per_gbps,
                          pl_server **out, size_t *n, long long **modules,
                          const char ***module_names, size_t *nmodules)
{
    bic_rows r, m;
    bic_err e = DB_EXEC(db, a, STMT_rc_server_load, &r, P_INT(per_gbps), P_INT(pool_id));
    if (e == BIC_E_OK) e = DB_EXEC(db, a, STMT_pool_modules_of, &m, P_INT(pool_id));
    if (e != BIC_E_OK) return e;
    pl_server *s = arena_alloc(a, (r.nrows + 1) * sizeof(*s));
    memset(s, 0, (r.nrows + 1) * sizeof(*s));
    for (size_t i = 0; i < r.nrows; i++) {
        s[i].id = rows_int(&r, i, 0);
        s[i].module_id = rows_int(&r, i, 1);
        s[i].hostname = rows_str(&r, i, 2);
        s[i].module_name = rows_str(&r, i, 3);
        s[i].online = rows_int(&r, i, 4) != 0;
        s[i].maintenance = rows_int(&r, i, 5) != 0;
        s[i].cores = (int)rows_int(&r, i, 6);
        s[i].memory_mib = rows_int(&r, i, 7);
        s[i].nic_mbps = rows_int(&r, i, 8);
        s[i].max_desktops = (int)rows_int(&r, i, 9);
        long long vfs = rows_int(&r, i, 10);
        s[i].vfs_free = vfs > 0 ? (int)vfs : 0;
        s[i].desktops = (int)rows_int(&r, i, 11);
        s[i].mem_shared_mib = rows_int(&r, i, 12);
        s[i].mem_locked_mib = rows_int(&r, i, 13);
    }
    long long *mods = arena_alloc(a, (m.nrows + 1) * sizeof(*mods));
    const char **names = arena_alloc(a, (m.nrows + 1) * sizeof(*names));
    for (size_t i = 0; i < m.nrows; i++) {
        mods[i] = rows_int(&m, i, 0);
        names[i] = rows_str(&m, i, 1);
    }
    *module_names = names;
    *out = s;
    *n = r.nrows;
    *modules = mods;
    *nmodules = m.nrows;
    return BIC_E_OK;
}

long pools_choose(const pl_server *s, size_t n, pl_request *r, const pl_rules *rules, bool fallback,
                  bool *fell_back, char *why, size_t len)
{
    *fell_back = false;
    long k = placement_choose(s, n, r, rules, why, len);
    if (k >= 0 || !r->vf || !fallback) return k;
    char other[64];
    r->vf = false;
    k = placement_choose(s, n, r, rules, other, sizeof(other));
    if (k >= 0)
        *fell_back = true;
    else
        r->vf = true;
    return k;
}

struct rc {
    bic_db *db;
    bic_arena *a;
    const bic_config *cfg;
    const char *holder;
    bic_req req; /* for audit_write_as */
    long long pool_id;
};

static void make_uuid(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != sizeof(b)) abort(); /* the kernel always has entropy here */
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* Queues a task of type with params (stolen) for server; its id in *task. */
static bic_err queue_task(struct rc *c, long long server, const char *type, json_t *params,
                          long long *task)
{
    char *pj = json_dumps(params, JSON_COMPACT);
    json_decref(params);
    if (!pj) return BIC_E_INTERNAL;
    bic_err e = DB_EXEC(c->db, c->a, STMT_task_insert, NULL, P_INT(server), P_STR(type), P_STR(pj),
                        P_INT(c->cfg->agents_task_max_attempts), P_STR("reconciler"));
    free(pj);
    *task = e == BIC_E_OK ? (long long)db_insert_id(c->db) : 0;
    return e;
}

/* Counts a failure of pool_id; pauses the pool when they reach max_failures. */
static bic_err pool_failure(struct rc *c, long long pool_id, const char *why)
{
    if (!pool_id) return BIC_E_OK;
    bic_err e = DB_EXEC(c->db, c->a, STMT_rc_pool_failure, NULL, P_STR(why), P_INT(pool_id));
    long long max = c->cfg->pools_max_failures > 0 ? c->cfg->pools_max_failures : 5;
    const char *reason =
        arena_printf(c->a, "paused after %lld failures in a row; last: %.400s", max, why);
    if (e == BIC_E_OK)
        e = DB_EXEC(c->db, c->a, STMT_rc_pool_autopause, NULL, P_STR(reason), P_INT(pool_id),
                    P_INT(max));
    if (e == BIC_E_OK && db_affected(c->db) == 1) {
        LOG_WARN(NULL, "pool %lld paused: %s", pool_id, reason);
        e = audit_write_as(&c->req, 0, "system", "pool.paused", "pool",
                           arena_printf(c->a, "%lld", pool_id), true,
                           json_pack("{s:s}", "reason", reason));
    }
    return e;
}

/* ---- 1. finished tasks ---- */

static bic_err finished_tx(bic_db *db, void *arg)
{
    struct rc *c = arg;
    bic_rows r;
    bic_err e = DB_EXEC(db, c->a, STMT_rc_finished, &r, P_INT(c->cfg->pools_batch * 4));
    for (size_t i = 0; e == BIC_E_OK && i < r.nrows; i++) {
        long long id = rows_int(&r, i, 0), pool = rows_str(&r, i, 5) ? rows_int(&r, i, 5) : 0;
        const char *phase = rows_str(&r, i, 1), *err = rows_str(&r, i, 4);
        bool ok = !strcmp(rows_str(&r, i, 2), "succeeded");
        json_t *res = rows_str(&r, i, 3) ? json_loads(rows_str(&r, i, 3), 0, NULL) : NULL;
        bool later = json_is_true(json_object_get(res, "pending_restart"));
        json_decref(res);
        if (!strcmp(phase, "deleting") && ok) {
            e = DB_EXEC(db, c->a, STMT_rc_desktop_delete, NULL, P_INT(id));
        } else if (!strcmp(phase, "resizing")) {
            /* the desktop still works either way */
            const char *note = ok ? (later ? "the new spec applies at the next boot" : "")
                                  : arena_printf(c->a, "spec change failed: %.400s", err);
            e = DB_EXEC(db, c->a, STMT_rc_desktop_done, NULL, P_STR("ready"), P_STR(note), P_NULL,
                        P_INT(id));
        } else if (ok) {
            e = DB_EXEC(db, c->a, STMT_rc_desktop_done, NULL, P_STR("ready"), P_STR(""), P_NULL,
                        P_INT(id));
            if (e == BIC_E_OK) e = DB_EXEC(db, c->a, STMT_rc_desktop_present, NULL, P_INT(id));
            if (e == BIC_E_OK && pool)
                e = DB_EXEC(db, c->a, STMT_rc_pool_success, NULL, P_INT(pool));
        } else {
            const char *what = !strcmp(phase, "provisioning") ? "create"
                               : !strcmp(phase, "refreshing") ? "refresh"
                                                              : "delete";
            const char *why = arena_printf(c->a, "%s failed: %.400s", what, err);
            e = DB_EXEC(db, c->a, STMT_rc_desktop_done, NULL, P_STR("error"), P_STR(why), P_NULL,
                        P_INT(id));
            if (e == BIC_E_OK) e = pool_failure(c, pool, why);
        }
    }
    return e;
}

/* ---- 2. tasks that waiting desktops need ---- */

/* params.nic of desktop.create from a row of rc_waiting (docs/agent-protocol.md). */
static json_t *nic_json(const bic_rows *r, size_t i)
{
    const char *type = rows_str(r, i, 9) ? rows_str(r, i, 9) : "virtio";
    json_t *o = json_pack("{s:s}", "type", type);
    if (rows_str(r, i, 13)) json_object_set_new(o, "mac", json_string(rows_str(r, i, 13)));
    if (rows_str(r, i, 17)) json_object_set_new(o, "vlan", json_integer(rows_int(r, i, 17)));
    if (!strcmp(type, "sriov") && rows_str(r, i, 14)) {
        json_object_set_new(o, "vf_pci", json_string(rows_str(r, i, 14)));
        json_object_set_new(o, "pf", json_string(rows_str(r, i, 15)));
        json_object_set_new(o, "vf_index", json_integer(rows_int(r, i, 16)));
    }
    return o;
}

static bic_err waiting_tx(bic_db *db, void *arg)
{
    struct rc *c = arg;
    bic_rows r;
    bic_err e = DB_EXEC(db, c->a, STMT_rc_waiting, &r, P_INT(c->cfg->pools_batch));
    for (size_t i = 0; e == BIC_E_OK && i < r.nrows; i++) {
        long long id = rows_int(&r, i, 0), server = rows_int(&r, i, 2), task = 0;
        long long pool = rows_str(&r, i, 10) ? rows_int(&r, i, 10) : 0;
        const char *phase = rows_str(&r, i, 1), *uuid = rows_str(&r, i, 3),
                   *overlay = rows_str(&r, i, 5);
        if (!strcmp(phase, "deleting")) {
            e = queue_task(c, server, "desktop.delete",
                           json_pack("{s:s, s:s}", "uuid", uuid, "overlay", overlay), &task);
            if (e == BIC_E_OK)
                e = DB_EXEC(db, c->a, STMT_rc_desktop_task, NULL, P_INT(task), P_STR(phase), P_NULL,
                            P_INT(id));
            continue;
        }
        if (!strcmp(phase, "resizing")) {
            e = queue_task(c, server, "desktop.set_spec",
                           json_pack("{s:s, s:I, s:I}", "uuid", uuid, "vcpus",
                                     (json_int_t)rows_int(&r, i, 6), "memory_mib",
                                     (json_int_t)rows_int(&r, i, 7)),
                           &task);
            if (e == BIC_E_OK)
                e = DB_EXEC(db, c->a, STMT_rc_desktop_task, NULL, P_INT(task), P_STR(phase), P_NULL,
                            P_INT(id));
            continue;
        }
        /* pending and refreshing need the published image on the server */
        if (!rows_str(&r, i, 11)) {
            e = DB_EXEC(db, c->a, STMT_rc_desktop_done, NULL, P_STR("error"),
                        P_STR("the pool's image has no published version"), P_NULL, P_INT(id));
            continue;
        }
        long long version = rows_int(&r, i, 11);
        const char *volume = NULL, *error = NULL;
        const char *st = catalog_replica(db, c->a, version, server, &volume, &error);
        if (!st) {
            e = BIC_E_INTERNAL;
            break;
        }
        if (!strcmp(st, "fetching")) continue;
        if (!strcmp(st, "failed")) {
            const char *why = arena_printf(c->a, "image version %lld is not on the server: %.400s",
                                           version, error ? error : "");
            e = DB_EXEC(db, c->a, STMT_rc_desktop_done, NULL, P_STR("error"), P_STR(why), P_NULL,
                        P_INT(id));
            if (e == BIC_E_OK) e = pool_failure(c, pool, why);
            continue;
        }
        bool create = !strcmp(phase, "pending");
        if (create && rows_str(&r, i, 9) && !strcmp(rows_str(&r, i, 9), "sriov") &&
            !rows_str(&r, i, 14)) {
            e = DB_EXEC(db, c->a, STMT_rc_desktop_done, NULL, P_STR("error"),
                        P_STR("the desktop holds no SR-IOV VF (its VF is gone)"), P_NULL,
                        P_INT(id));
            continue;
        }
        json_t *params =
            create ? json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:o, s:b}", "uuid", uuid,
                               "name", rows_str(&r, i, 4), "vcpus", (json_int_t)rows_int(&r, i, 6),
                               "memory_mib", (json_int_t)rows_int(&r, i, 7), "disk_gib",
                               (json_int_t)rows_int(&r, i, 8), "base", volume, "overlay", overlay,
                               "nic", nic_json(&r, i), "start", 1)
                   : json_pack("{s:s, s:s, s:s, s:I, s:b}", "uuid", uuid, "base", volume, "overlay",
                               overlay, "disk_gib", (json_int_t)rows_int(&r, i, 8), "start", 1);
        e = queue_task(c, server, create ? "desktop.create" : "desktop.refresh", params, &task);
        if (e == BIC_E_OK)
            e = DB_EXEC(db, c->a, STMT_rc_desktop_task, NULL, P_INT(task),
                        P_STR(create ? "provisioning" : "refreshing"), P_INT(version), P_INT(id));
    }
    return e;
}

/* ---- 3. pool sizes ---- */

struct dk {
    long long id, seq;
    const char *phase, *state;
    bool present, assigned, stale, busy;
};

static bic_err set_phase(struct rc *c, long long id, const char *phase, const char *why)
{
    return DB_EXEC(c->db, c->a, STMT_desktop_set_phase, NULL, P_STR(phase), P_STR(why), P_INT(id));
}

/* What placing needs about a pool, loaded once per pass. */
struct placing {
    const bic_rows *pool; /* a row of POOL_LOCK_COLS */
    bic_rows sp, img;     /* its spec; its image's published version */
    pl_server *s;
    size_t n;
    pl_request req;
    pl_rules rules;
};

/* Loads what placing desktops of c->pool_id needs; *why set when the pool cannot grow. */
static bic_err placing_load(struct rc *c, const bic_rows *pool, struct placing *pl,
                            const char **why)
{
    pl->pool = pool;
    bic_err e = DB_EXEC(c->db, c->a, STMT_pool_spec_get, &pl->sp, P_INT(rows_int(pool, 0, 4)));
    if (e == BIC_E_OK)
        e = DB_EXEC(c->db, c->a, STMT_pool_image_published, &pl->img, P_INT(rows_int(pool, 0, 3)));
    if (e != BIC_E_OK) return e;
    if (pl->sp.nrows != 1 || pl->img.nrows != 1 || !rows_str(&pl->img, 0, 0)) {
        *why = "the pool's image has no published version";
        return BIC_E_OK;
    }
    pools_rules(c->cfg, &pl->rules);
    size_t nmod;
    long long *mods;
    const char **names;
    e = pools_server_load(c->db, c->a, c->pool_id, pl->rules.per_gbps, &pl->s, &pl->n, &mods,
                          &names, &nmod);
    if (e != BIC_E_OK) return e;
    pl->req = (pl_request){.memory_mib = rows_int(&pl->sp, 0, 2),
                           .vcpus = (int)rows_int(&pl->sp, 0, 1),
                           .vf = !strcmp(rows_str(&pl->sp, 0, 4), "sriov"),
                           .modules = mods,
                           .module_names = names,
                           .nmodules = nmod,
                           .policy = !strcmp(rows_str(pool, 0, 9), "pack") ? PL_PACK : PL_SPREAD};
    return BIC_E_OK;
}

/*
 * Places desktop number seq: chooses a server, reserves a VF there when the spec asks for
 * one (or falls back to virtio when the pool allows it), inserts the desktop and gives it
 * its MAC. *id = the new desktop, or 0 with *why when nothing fits.
 */
static bic_err place_one(struct rc *c, struct placing *pl, long long seq, long long *id,
                         const char **why)
{
    const bic_rows *pool = pl->pool, *sp = &pl->sp;
    bool want_vf = pl->req.vf, fallback = rows_int(pool, 0, 14) != 0, fell_back;
    char whybuf[512] = "", name[128], uuid[37], mac[18];
    *id = 0;
    long idx = pools_choose(pl->s, pl->n, &pl->req, &pl->rules, fallback, &fell_back, whybuf,
                            sizeof(whybuf));
    bool vf = pl->req.vf;
    pl->req.vf = want_vf;
    if (idx < 0) {
        *why = arena_strdup(c->a, whybuf);
        return BIC_E_OK;
    }
    const char *note =
        fell_back ? arena_printf(c->a, "no server has a free SR-IOV VF (%.300s); virtio NIC instead",
                                 whybuf)
                  : "";
    sriov_vf f;
    bool got = false;
    bic_err e = BIC_E_OK;
    /* The snapshot's free VFs may be gone (taken by a concurrent placement, or the NIC rule
       counted again under the PF's lock): that server is out, choose again. */
    while (vf && !got) {
        e = sriov_pick(c->db, c->a, pl->s[idx].id, pl->rules.per_gbps, &f, &got);
        if (e != BIC_E_OK) return e;
        if (got) break;
        pl->s[idx].vfs_free = 0;
        idx = placement_choose(pl->s, pl->n, &pl->req, &pl->rules, whybuf, sizeof(whybuf));
        if (idx >= 0) continue;
        if (fallback) {
            char virtio_why[512];
            pl->req.vf = false;
            idx = placement_choose(pl->s, pl->n, &pl->req, &pl->rules, virtio_why,
                                   sizeof(virtio_why));
            pl->req.vf = want_vf;
        }
        if (idx < 0) {
            *why = arena_strdup(c->a, whybuf);
            return BIC_E_OK;
        }
        note = arena_printf(c->a, "no server has a free SR-IOV VF (%.300s); virtio NIC instead",
                            whybuf);
        break;
    }
    const pl_server *host = &pl->s[idx];
    if (!pools_format_name(rows_str(pool, 0, 8), seq, name, sizeof(name))) {
        *why = "the name pattern gives no valid name for the next desktop";
        return BIC_E_OK;
    }
    pl_request as_placed = pl->req;
    as_placed.vf = got;
    placement_commit(&pl->s[idx], &as_placed);
    make_uuid(uuid);
    const char *nic = got ? "sriov" : "virtio";
    e = DB_EXEC(c->db, c->a, STMT_rc_desktop_insert, NULL, P_INT(host->id), P_INT(c->pool_id),
                P_INT(seq), P_STR(uuid), P_STR(name), P_INT(rows_int(&pl->img, 0, 0)),
                P_STR(arena_printf(c->a, "bic-desk-%s.qcow2", uuid)), P_INT(rows_int(sp, 0, 1)),
                P_INT(rows_int(sp, 0, 2)), P_INT(rows_int(sp, 0, 3)), P_STR(nic),
                P_INT(rows_int(sp, 0, 1)), P_INT(rows_int(sp, 0, 2)));
    if (e != BIC_E_OK) return e;
    long long did = (long long)db_insert_id(c->db);
    sriov_desktop_mac(did, mac);
    long long vlan = rows_str(pool, 0, 13) ? rows_int(pool, 0, 13) : 0;
    if (got) e = sriov_claim(c->db, c->a, &f, did, mac, vlan);
    if (e == BIC_E_OK)
        e = DB_EXEC(c->db, c->a, STMT_desktop_set_nic, NULL, P_STR(mac), P_STR(nic), P_STR(note),
                    P_INT(did));
    if (e == BIC_E_OK) *id = did;
    return e;
}

/* Places and inserts need new desktops; *why gets the refusal when placement stops early. */
static bic_err grow(struct rc *c, const bic_rows *pool, const struct dk *d, size_t nd,
                    long long need, const char **why)
{
    struct placing pl;
    bic_err e = placing_load(c, pool, &pl, why);
    if (e != BIC_E_OK || *why) return e;
    /* the lowest free numbers: used ones are sorted */
    long long next = 1;
    size_t k = 0;
    for (long long made = 0; made < need && e == BIC_E_OK; made++) {
        while (k < nd && d[k].seq < next)
            k++;
        while (k < nd && d[k].seq == next) {
            next++;
            k++;
        }
        long long id;
        e = place_one(c, &pl, next, &id, why);
        if (e != BIC_E_OK || !id) break;
        next++;
    }
    return e;
}

struct place_ctx {
    struct rc c;
    long long seq, id;
    const char *why;
};

static bic_err place_tx(bic_db *db, void *arg)
{
    struct place_ctx *p = arg;
    bic_rows pool;
    struct placing pl;
    p->c.db = db;
    p->id = 0;
    p->why = NULL;
    bic_err e = DB_EXEC(db, p->c.a, STMT_pool_row, &pool, P_INT(p->c.pool_id));
    if (e != BIC_E_OK) return e;
    if (pool.nrows != 1) {
        p->why = "no such pool";
        return BIC_E_OK;
    }
    e = placing_load(&p->c, &pool, &pl, &p->why);
    if (e == BIC_E_OK && !p->why) e = place_one(&p->c, &pl, p->seq, &p->id, &p->why);
    return e;
}

bic_err pools_place_one(bic_db *db, bic_arena *a, const bic_config *cfg, long long pool_id,
                        long long seq, long long *id, const char **why)
{
    struct place_ctx p = {.c = {.db = db, .a = a, .cfg = cfg, .pool_id = pool_id}, .seq = seq};
    bic_err e = db_tx(db, place_tx, &p);
    *id = p.id;
    *why = p.why;
    return e;
}

/* the desktops a pool should have: its assigned ones plus the spare, within min and max */
static long long pool_target(long long assigned, long long min, long long max, long long spare)
{
    long long target = assigned + spare > min ? assigned + spare : min;
    return target > max ? max : target;
}

static bic_err pool_tx(bic_db *db, void *arg)
{
    struct rc *c = arg;
    bic_rows p, r;
    bic_err e = DB_EXEC(db, c->a, STMT_pool_lock, &p, P_INT(c->pool_id));
    if (e != BIC_E_OK || p.nrows != 1) return e;
    const char *state = rows_str(&p, 0, 10);
    if (!strcmp(state, "paused")) return BIC_E_OK;
    long long min = rows_int(&p, 0, 5), max = rows_int(&p, 0, 6), spare = rows_int(&p, 0, 7);
    if (strcmp(state, "deleting")) {
        /* a pool at its size with nothing to replace (most pools, most ticks): one aggregate
         * instead of reading each of its desktops, which at 10,000 desktops cost the database
         * more than the users' connects did (docs/performance.md) */
        bic_rows n;
        e = DB_EXEC(db, c->a, STMT_rc_pool_census, &n, P_INT(c->pool_id));
        if (e != BIC_E_OK) return e;
        long long live = rows_int(&n, 0, 0);
        if (rows_int(&n, 0, 2) == 0 && live == pool_target(rows_int(&n, 0, 1), min, max, spare) &&
            rows_int(&p, 0, 11) == 0)
            return DB_EXEC(db, c->a, STMT_rc_pool_mark, NULL, P_STR(c->holder), P_STR(""),
                           P_INT(c->pool_id));
    }
    e = DB_EXEC(db, c->a, STMT_rc_pool_desktops, &r, P_INT(c->pool_id));
    if (e != BIC_E_OK) return e;
    struct dk *d = arena_alloc(c->a, (r.nrows + 1) * sizeof(*d));
    for (size_t i = 0; i < r.nrows; i++)
        d[i] = (struct dk){rows_int(&r, i, 0), rows_int(&r, i, 5), rows_str(&r, i, 1),
                           rows_str(&r, i, 2), rows_int(&r, i, 3), rows_int(&r, i, 4),
                           rows_int(&r, i, 6), rows_int(&r, i, 7)};
    if (!strcmp(state, "deleting")) {
        for (size_t i = 0; e == BIC_E_OK && i < r.nrows; i++)
            if (!d[i].busy && strcmp(d[i].phase, "deleting") &&
                (!strcmp(d[i].phase, "ready") || !strcmp(d[i].phase, "error") ||
                 !strcmp(d[i].phase, "pending")))
                e = set_phase(c, d[i].id, "deleting", "the pool is being deleted");
        if (e == BIC_E_OK && r.nrows == 0) {
            e = DB_EXEC(db, c->a, STMT_pool_delete, NULL, P_INT(c->pool_id));
            if (e == BIC_E_OK)
                e = audit_write_as(&c->req, 0, "system", "pool.deleted", "pool",
                                   arena_printf(c->a, "%lld", c->pool_id), true,
                                   json_pack("{s:s}", "name", rows_str(&p, 0, 1)));
        }
        return e;
    }
    long long live = 0, assigned = 0;
    for (size_t i = 0; e == BIC_E_OK && i < r.nrows; i++) {
        if (!strcmp(d[i].phase, "deleting")) continue;
        const char *broken = NULL;
        if (!strcmp(d[i].phase, "error"))
            broken = "replaced after an error";
        else if (!strcmp(d[i].phase, "ready") && !strcmp(d[i].state, "crashed"))
            broken = "replaced: the domain crashed";
        else if (!strcmp(d[i].phase, "ready") && !d[i].present && d[i].stale)
            broken = "replaced: the server no longer reports the domain";
        if (broken && !d[i].assigned && !d[i].busy) {
            e = set_phase(c, d[i].id, "deleting", broken);
            continue;
        }
        live++;
        assigned += d[i].assigned;
    }
    long long target = pool_target(assigned, min, max, spare);
    const char *why = NULL;
    if (e == BIC_E_OK && live < target) {
        long long need = target - live;
        if (need > c->cfg->pools_batch) need = c->cfg->pools_batch;
        e = grow(c, &p, d, r.nrows, need, &why);
    }
    /* trim: waiting desktops first, then ready ones from the highest number */
    for (size_t pass = 0; pass < 2 && e == BIC_E_OK && live > target; pass++)
        for (size_t i = r.nrows; i-- > 0 && e == BIC_E_OK && live > target;) {
            const char *want = pass == 0 ? "pending" : "ready";
            if (strcmp(d[i].phase, want) || d[i].assigned || d[i].busy) continue;
            e = set_phase(c, d[i].id, "deleting", "trimmed: the pool is above its size");
            live--;
        }
    if (e != BIC_E_OK) return e;
    const char *last = rows_str(&p, 0, 12);
    const char *now = why ? why : (rows_int(&p, 0, 11) > 0 ? last : "");
    if (why && strcmp(why, last)) {
        LOG_WARN(NULL, "pool %lld (%s): cannot place a desktop: %s", c->pool_id, rows_str(&p, 0, 1),
                 why);
        e = audit_write_as(&c->req, 0, "system", "pool.placement_failed", "pool",
                           arena_printf(c->a, "%lld", c->pool_id), false,
                           json_pack("{s:s, s:I, s:I}", "reason", why, "live", (json_int_t)live,
                                     "target", (json_int_t)target));
    }
    if (e == BIC_E_OK)
        e = DB_EXEC(db, c->a, STMT_rc_pool_mark, NULL, P_STR(c->holder), P_STR(now),
                    P_INT(c->pool_id));
    return e;
}

void reconcile_tick(bic_db *db, bic_arena *a, const bic_config *cfg, const char *holder)
{
    struct rc c = {.db = db, .a = a, .cfg = cfg, .holder = holder};
    memset(&c.req, 0, sizeof(c.req));
    c.req.db = db;
    c.req.arena = a;
    c.req.cfg = cfg;
    c.req.remote_addr = "";
    snprintf(c.req.request_id, sizeof(c.req.request_id), "ctl-reconcile");
    if (db_tx(db, finished_tx, &c) != BIC_E_OK) LOG_WARN(NULL, "reconciler: finished tasks failed");
    if (db_tx(db, waiting_tx, &c) != BIC_E_OK)
        LOG_WARN(NULL, "reconciler: waiting desktops failed");
    bic_rows pools;
    if (DB_EXEC0(db, a, STMT_rc_pools, &pools) != BIC_E_OK) return;
    for (size_t i = 0; i < pools.nrows; i++) {
        c.pool_id = rows_int(&pools, i, 0);
        if (db_tx(db, pool_tx, &c) != BIC_E_OK)
            LOG_WARN(NULL, "reconciler: pool %lld failed", c.pool_id);
    }
}

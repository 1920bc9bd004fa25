/*
 * drs.c - resource balancing: the leader's balancing loop and the plan the admin routes show
 * (see drs.h and docs/automation.md, "Resource balancing").
 *
 * Each pass:
 *  1. migrations in flight (every module): a desktop whose desktop.migrate task succeeded is
 *     moved to its new server in the database (its row, its live session; a row the
 *     destination's heartbeat made for the domain first is folded in); a failed one stays
 *     where it was;
 *  2. per enabled module: loads (in-flight moves counted as done), which servers are over a
 *     threshold and for how long, and the moves that pay (plan_make), then the tasks.
 * While it migrates, a desktop's task_id names the migration, so the reconciler leaves it
 * alone (a busy desktop is never replaced).
 */
#include "drs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "db.h"
#include "log.h"
#include "placement.h"
#include "pools.h"
#include "power.h"

#define DRS_STEPS 64

enum { BS_FIRST = 5 };

bic_err drs_settings_load(bic_db *db, bic_arena *a, long long module_id, drs_settings *out)
{
    bic_rows r;
    bic_err e = DB_EXEC(db, a, STMT_balance_settings_get, &r, P_INT(module_id));
    if (e != BIC_E_OK) return e;
    if (r.nrows != 1) return BIC_E_NOT_FOUND;
    bool row = rows_int(&r, 0, 2) != 0;
#define I(k, def) (row ? rows_int(&r, 0, BS_FIRST + (k)) : (def))
    *out = (drs_settings){.module_id = module_id,
                          .configured = row,
                          .enabled = I(0, 0) != 0,
                          .dry_run = I(1, 0) != 0,
                          .cpu_high_pct = I(2, 80),
                          .mem_high_pct = I(3, 85),
                          .hold_s = I(4, 300),
                          .min_gain_pct = I(5, 5),
                          .max_concurrent = I(6, 2),
                          .move_hold_s = I(7, 3600),
                          .module_name = arena_strdup(a, rows_str(&r, 0, 1)),
                          .updated_by = row ? arena_strdup(a, rows_str(&r, 0, 3)) : NULL};
#undef I
    return BIC_E_OK;
}

json_t *drs_settings_json(const drs_settings *s)
{
    return json_pack("{s:I, s:s, s:b, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}", "module_id",
                     (json_int_t)s->module_id, "module", s->module_name, "configured",
                     s->configured, "enabled", s->enabled, "dry_run", s->dry_run, "cpu_high_pct",
                     (json_int_t)s->cpu_high_pct, "mem_high_pct", (json_int_t)s->mem_high_pct,
                     "hold_s", (json_int_t)s->hold_s, "min_gain_pct", (json_int_t)s->min_gain_pct,
                     "max_concurrent", (json_int_t)s->max_concurrent, "move_hold_s",
                     (json_int_t)s->move_hold_s, "updated_by", s->updated_by);
}

/* ---- loads ---- */

typedef struct dsrv {
    long long id;
    const char *hostname, *listen_url, *mig_uri;
    bool usable;
    double cpu;          /* percent */
    long long mem_base;  /* MiB in use: max(measured, running desktops) */
    long long memory;    /* MiB */
    int running;
    long long over_age;  /* -1: not marked over */
    pl_server pl;
} dsrv;

static double mem_pct(const dsrv *s)
{
    return s->memory > 0 ? (double)s->mem_base * 100.0 / (double)s->memory : 0.0;
}

static double load_of(double cpu, double mem)
{
    return cpu > mem ? cpu : mem;
}

static bool is_over(const dsrv *s, const drs_settings *set)
{
    return s->cpu > (double)set->cpu_high_pct || mem_pct(s) > (double)set->mem_high_pct;
}

typedef struct dstep {
    const char *action; /* migrate, skip */
    long long desktop_id, server_id, target_id;
    const char *uuid, *name, *reason;
    const dsrv *target;
} dstep;

typedef struct dplan {
    drs_settings set;
    dsrv *s;
    size_t n;
    long long inflight;
    double spread;
    dstep steps[DRS_STEPS];
    size_t nsteps;
} dplan;

static dsrv *find(dplan *p, long long id)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->s[i].id == id) return &p->s[i];
    return NULL;
}

/* Moves a desktop of mem_mib between two snapshot servers (a move in flight, or planned). */
static void shift(dsrv *from, dsrv *to, long long mem_mib, int vcpus)
{
    double share = from && from->running > 0 ? from->cpu / from->running : 0.0;
    if (from) {
        from->mem_base = from->mem_base > mem_mib ? from->mem_base - mem_mib : 0;
        from->cpu -= share;
        if (from->cpu < 0) from->cpu = 0;
        if (from->running > 0) from->running--;
        if (from->pl.desktops > 0) from->pl.desktops--;
        from->pl.mem_shared_mib -= mem_mib;
        if (from->pl.mem_shared_mib < 0) from->pl.mem_shared_mib = 0;
    }
    if (to) {
        int fc = from && from->pl.cores > 0 ? from->pl.cores : 1;
        int tc = to->pl.cores > 0 ? to->pl.cores : 1;
        to->cpu += share * fc / tc;
        to->mem_base += mem_mib;
        to->running++;
        pl_request r = {.memory_mib = mem_mib, .vcpus = vcpus};
        placement_commit(&to->pl, &r);
    }
}

static void add_step(bic_arena *a, dplan *p, const char *action, long long desktop, const char *uuid,
                     const char *name, const dsrv *src, const dsrv *dst, const char *reason)
{
    if (p->nsteps == DRS_STEPS) return;
    p->steps[p->nsteps++] = (dstep){action,        desktop, src->id, dst ? dst->id : 0,
                                    uuid,          name,    arena_strdup(a, reason), dst};
}

static bic_err plan_make(bic_db *db, bic_arena *a, const bic_config *cfg, const drs_settings *set,
                         dplan *p)
{
    memset(p, 0, sizeof(*p));
    p->set = *set;
    pl_rules rules;
    pools_rules(cfg, &rules);
    bic_rows r, fl;
    bic_err e = DB_EXEC(db, a, STMT_drs_servers, &r, P_INT(set->module_id));
    if (e == BIC_E_OK) e = DB_EXEC0(db, a, STMT_drs_inflight, &fl);
    if (e != BIC_E_OK) return e;
    p->n = r.nrows;
    p->s = arena_alloc(a, (r.nrows + 1) * sizeof(*p->s));
    for (size_t i = 0; i < r.nrows; i++) {
        dsrv *s = &p->s[i];
        long long measured = rows_int(&r, i, 4), run = rows_int(&r, i, 6);
        *s = (dsrv){.id = rows_int(&r, i, 0),
                    .hostname = rows_str(&r, i, 1),
                    .usable = rows_int(&r, i, 2) != 0,
                    .cpu = atof(rows_str(&r, i, 3)),
                    .mem_base = measured > run ? measured : run,
                    .memory = rows_int(&r, i, 5),
                    .running = (int)rows_int(&r, i, 7),
                    .over_age = rows_str(&r, i, 8) ? rows_int(&r, i, 8) : -1,
                    .listen_url = rows_str(&r, i, 15),
                    .mig_uri = rows_str(&r, i, 16)};
        s->pl = (pl_server){.id = s->id,
                            .module_id = set->module_id,
                            .hostname = s->hostname,
                            .online = s->usable,
                            .cores = (int)rows_int(&r, i, 9),
                            .memory_mib = s->memory,
                            .nic_mbps = rows_int(&r, i, 10),
                            .max_desktops = (int)rows_int(&r, i, 11),
                            .desktops = (int)rows_int(&r, i, 12),
                            .mem_shared_mib = rows_int(&r, i, 13),
                            .mem_locked_mib = rows_int(&r, i, 14)};
    }
    /* moves in flight count as done: the source's row still holds the desktop */
    for (size_t i = 0; i < fl.nrows; i++) {
        if (rows_int(&fl, i, 1) != set->module_id) continue;
        p->inflight++;
        if (!rows_str(&fl, i, 10) || rows_int(&fl, i, 10) != rows_int(&fl, i, 3)) continue;
        shift(find(p, rows_int(&fl, i, 3)), find(p, rows_int(&fl, i, 4)), rows_int(&fl, i, 8), 0);
    }
    double lo = 0, hi = 0;
    bool first = true;
    for (size_t i = 0; i < p->n; i++) {
        if (!p->s[i].usable) continue;
        double l = load_of(p->s[i].cpu, mem_pct(&p->s[i]));
        if (first || l < lo) lo = l;
        if (first || l > hi) hi = l;
        first = false;
    }
    p->spread = hi - lo;
    long long slots = set->max_concurrent - p->inflight;
    if (slots <= 0) return BIC_E_OK;
    long long module = set->module_id;
    /* sources: over long enough, the most loaded first */
    for (;;) {
        dsrv *src = NULL;
        for (size_t i = 0; i < p->n; i++) {
            dsrv *s = &p->s[i];
            if (!s->usable || s->over_age < set->hold_s || !is_over(s, set)) continue;
            bool done = false;
            for (size_t k = 0; k < p->nsteps; k++)
                if (p->steps[k].server_id == s->id && !strcmp(p->steps[k].action, "done"))
                    done = true;
            if (done) continue;
            if (!src || load_of(s->cpu, mem_pct(s)) > load_of(src->cpu, mem_pct(src))) src = s;
        }
        if (!src || slots <= 0) break;
        bic_rows c;
        e = DB_EXEC(db, a, STMT_drs_candidates, &c, P_INT(src->id));
        if (e != BIC_E_OK) return e;
        bool moved_any = false;
        for (size_t k = 0; k < c.nrows && slots > 0 && is_over(src, set); k++) {
            long long did = rows_int(&c, k, 0), mem = rows_int(&c, k, 3);
            const char *uuid = rows_str(&c, k, 1), *name = rows_str(&c, k, 2);
            if (rows_str(&c, k, 6) && rows_int(&c, k, 6) < set->move_hold_s) continue;
            if (rows_int(&c, k, 5)) {
                add_step(a, p, "skip", did, uuid, name, src, NULL,
                         "holds an SR-IOV VF: it is not live-migrated (detaching and re-attaching "
                         "a VF around the move is not supported yet)");
                continue;
            }
            double ls = load_of(src->cpu, mem_pct(src));
            dsrv *best = NULL;
            double best_gain = 0, best_after = 0;
            for (size_t i = 0; i < p->n; i++) {
                dsrv *t = &p->s[i];
                if (t == src || !t->usable || is_over(t, set)) continue;
                pl_request req = {.memory_mib = mem, .modules = &module, .nmodules = 1};
                if (placement_fits(&t->pl, &req, &rules) != PL_FITS) continue;
                dsrv s2 = *src, t2 = *t;
                shift(&s2, &t2, mem, 0);
                if (is_over(&t2, set)) continue;
                double lt = load_of(t->cpu, mem_pct(t));
                double after = load_of(load_of(s2.cpu, mem_pct(&s2)), load_of(t2.cpu, mem_pct(&t2)));
                double gain = (ls > lt ? ls : lt) - after;
                double t_after = load_of(t2.cpu, mem_pct(&t2));
                /* equal gains: the target that ends lower, so moves spread over the module */
                if (!best || gain > best_gain + 0.01 ||
                    (gain > best_gain - 0.01 && t_after < best_after)) {
                    best = t;
                    best_gain = gain;
                    best_after = t_after;
                }
            }
            if (!best || best_gain < (double)set->min_gain_pct) continue;
            char why[256];
            snprintf(why, sizeof(why),
                     "%s at %.0f%% load (cpu %.0f%%, memory %.0f%%) for %lld s; moving %s to %s "
                     "lowers the higher load by %.1f points",
                     src->hostname, ls, src->cpu, mem_pct(src), src->over_age, name,
                     best->hostname, best_gain);
            add_step(a, p, "migrate", did, uuid, name, src, best, why);
            shift(src, best, mem, 0);
            slots--;
            moved_any = true;
        }
        if (!moved_any && is_over(src, set) && slots > 0)
            add_step(a, p, "skip", 0, NULL, NULL, src, NULL,
                     arena_printf(a, "over its threshold, but no move lowers the load by %lld points "
                                     "within the capacity rules",
                                  set->min_gain_pct));
        add_step(a, p, "done", 0, NULL, NULL, src, NULL, ""); /* marks the source as visited */
    }
    return BIC_E_OK;
}

static json_t *plan_json(const dplan *p)
{
    json_t *servers = json_array(), *actions = json_array();
    for (size_t i = 0; i < p->n; i++) {
        const dsrv *s = &p->s[i];
        double m = mem_pct(s);
        json_array_append_new(
            servers, json_pack("{s:I, s:s, s:b, s:f, s:f, s:f, s:b, s:o, s:i}", "id",
                               (json_int_t)s->id, "hostname", s->hostname, "usable", s->usable,
                               "cpu_pct", s->cpu, "mem_pct", m, "load_pct", load_of(s->cpu, m),
                               "over", is_over(s, &p->set), "over_for_s",
                               s->over_age >= 0 ? json_integer(s->over_age) : json_null(),
                               "running", s->running));
    }
    for (size_t k = 0; k < p->nsteps; k++) {
        const dstep *st = &p->steps[k];
        if (!strcmp(st->action, "done")) continue;
        json_t *o = json_pack("{s:s, s:I, s:s}", "action", st->action, "server_id",
                              (json_int_t)st->server_id, "reason", st->reason);
        if (st->desktop_id) {
            json_object_set_new(o, "desktop_id", json_integer(st->desktop_id));
            json_object_set_new(o, "desktop", json_string(st->name));
        }
        if (st->target_id) json_object_set_new(o, "target_server_id", json_integer(st->target_id));
        json_array_append_new(actions, o);
    }
    return json_pack("{s:I, s:b, s:b, s:f, s:I, s:o, s:o}", "module_id",
                     (json_int_t)p->set.module_id, "enabled", p->set.enabled, "dry_run",
                     p->set.dry_run, "spread_pct", p->spread, "in_flight", (json_int_t)p->inflight,
                     "servers", servers, "actions", actions);
}

bic_err drs_plan_json(bic_db *db, bic_arena *a, const bic_config *cfg, long long module_id,
                      json_t **out)
{
    drs_settings set;
    bic_err e = drs_settings_load(db, a, module_id, &set);
    if (e != BIC_E_OK) return e;
    dplan *p = arena_alloc(a, sizeof(*p));
    e = plan_make(db, a, cfg, &set, p);
    if (e != BIC_E_OK) return e;
    *out = plan_json(p);
    return BIC_E_OK;
}

/* ---- the pass ---- */

struct dc {
    bic_req req;
    const bic_config *cfg;
    dplan *p;
    const dstep *step;
};

static bic_err inflight_tx(bic_db *db, void *arg)
{
    struct dc *c = arg;
    bic_arena *a = c->req.arena;
    bic_rows r;
    bic_err e = DB_EXEC0(db, a, STMT_drs_inflight, &r);
    for (size_t i = 0; e == BIC_E_OK && i < r.nrows; i++) {
        long long aid = rows_int(&r, i, 0), module = rows_int(&r, i, 1);
        long long did = rows_str(&r, i, 2) ? rows_int(&r, i, 2) : 0;
        long long src = rows_int(&r, i, 3), dst = rows_int(&r, i, 4);
        const char *ts = rows_str(&r, i, 6), *uuid = rows_str(&r, i, 9);
        const char *state = NULL, *why = NULL;
        if (!rows_str(&r, i, 9)) {
            state = "failed", why = "the desktop is gone";
        } else if (!rows_str(&r, i, 5)) {
            state = "failed", why = "the desktop's migration task is no longer recorded on it";
        } else if (ts && !strcmp(ts, "failed")) {
            state = "failed";
            why = arena_printf(a, "desktop.migrate failed: %.400s",
                               rows_str(&r, i, 7) ? rows_str(&r, i, 7) : "");
            e = DB_EXEC(db, a, STMT_drs_desktop_untask, NULL, P_INT(did), P_INT(rows_int(&r, i, 5)));
        } else if (ts && !strcmp(ts, "succeeded")) {
            bic_rows dup;
            e = DB_EXEC(db, a, STMT_drs_dup_get, &dup, P_INT(dst), P_STR(uuid));
            if (e == BIC_E_OK && dup.nrows)
                e = DB_EXEC(db, a, STMT_drs_dup_delete, NULL, P_INT(dst), P_STR(uuid));
            if (e == BIC_E_OK)
                e = DB_EXEC(db, a, STMT_drs_desktop_moved, NULL, P_INT(dst),
                            P_STR(dup.nrows ? rows_str(&dup, 0, 0) : "running"),
                            P_STR(dup.nrows ? rows_str(&dup, 0, 1) : NULL),
                            dup.nrows && rows_str(&dup, 0, 2) ? P_INT(rows_int(&dup, 0, 2)) : P_NULL,
                            P_INT(did), P_INT(rows_int(&r, i, 5)));
            if (e == BIC_E_OK)
                e = DB_EXEC(db, a, STMT_drs_sessions_moved, NULL, P_INT(dst), P_INT(did));
            if (e == BIC_E_OK)
                e = DB_EXEC(db, a, STMT_event_insert, NULL, P_INT(dst), P_STR(uuid),
                            P_STR("balance.migrated_in"),
                            P_STR(arena_printf(a, "from server %lld", src)));
            state = "done", why = arena_printf(a, "moved from server %lld to %lld", src, dst);
        }
        if (e != BIC_E_OK || !state) continue;
        e = DB_EXEC(db, a, STMT_aa_update, NULL, P_STR(state), P_STR(why), P_INT(aid));
        if (e == BIC_E_OK)
            e = audit_write_as(&c->req, 0, "system", "balance.migrate", "desktop",
                               arena_printf(a, "%lld", did), !strcmp(state, "done"),
                               json_pack("{s:I, s:I, s:I, s:I, s:s, s:s}", "action_id",
                                         (json_int_t)aid, "module_id", (json_int_t)module,
                                         "server_id", (json_int_t)src, "target_server_id",
                                         (json_int_t)dst, "state", state, "reason", why));
        if (e == BIC_E_OK) LOG_INFO(NULL, "balance: desktop %lld: %s (%s)", did, state, why);
    }
    return e;
}

static bic_err over_tx(bic_db *db, void *arg)
{
    struct dc *c = arg;
    bic_err e = BIC_E_OK;
    for (size_t i = 0; e == BIC_E_OK && i < c->p->n; i++) {
        const dsrv *s = &c->p->s[i];
        bool over = s->usable && is_over(s, &c->p->set);
        if (over == (s->over_age >= 0)) continue;
        e = DB_EXEC(db, c->req.arena, STMT_drs_over_mark, NULL, P_INT(over), P_INT(s->id));
    }
    return e;
}

static bic_err step_tx(bic_db *db, void *arg)
{
    struct dc *c = arg;
    bic_arena *a = c->req.arena;
    const dstep *st = c->step;
    const drs_settings *set = &c->p->set;
    if (!strcmp(st->action, "skip"))
        return power_record(&c->req, set->module_id, "balance", "skip", st->server_id,
                            st->desktop_id, 0, "skipped", set->dry_run, st->reason, NULL);
    if (set->dry_run)
        return power_record(&c->req, set->module_id, "balance", "migrate", st->server_id,
                            st->desktop_id, st->target_id, "planned", true, st->reason, NULL);
    const dsrv *t = st->target;
    const char *uri = t->mig_uri && *t->mig_uri
                          ? t->mig_uri
                          : arena_printf(a, "qemu+ssh://%s/system", t->hostname);
    json_t *params = json_pack("{s:s, s:s, s:s, s:I, s:s}", "uuid", st->uuid, "dest_uri", uri,
                               "dest_listen_url", t->listen_url ? t->listen_url : "",
                               "dest_server_id", (json_int_t)t->id, "dest_hostname", t->hostname);
    char *pj = json_dumps(params, JSON_COMPACT);
    json_decref(params);
    if (!pj) return BIC_E_INTERNAL;
    bic_err e = DB_EXEC(db, a, STMT_task_insert, NULL, P_INT(st->server_id),
                        P_STR("desktop.migrate"), P_STR(pj),
                        P_INT(1), P_STR("balance")); /* a migration is never retried blindly */
    free(pj);
    if (e != BIC_E_OK) return e;
    long long task = (long long)db_insert_id(db);
    e = DB_EXEC(db, a, STMT_drs_desktop_task, NULL, P_INT(task), P_INT(st->desktop_id),
                P_INT(st->server_id));
    if (e != BIC_E_OK) return e;
    if (db_affected(db) != 1) return BIC_E_CONFLICT; /* it changed since the plan: roll back */
    return power_record(&c->req, set->module_id, "balance", "migrate", st->server_id,
                        st->desktop_id, st->target_id, "running", false, st->reason, NULL);
}

void drs_tick(bic_db *db, bic_arena *a, const bic_config *cfg)
{
    static power_loop loop = {"balance"};
    struct dc c = {.cfg = cfg};
    if (!power_loop_begin(&loop, cfg->balance_tick_ms, &c.req, db, a, cfg)) return;
    if (db_tx(db, inflight_tx, &c) != BIC_E_OK) LOG_WARN(NULL, "balance: migrations in flight failed");
    bic_rows mods;
    if (DB_EXEC0(db, a, STMT_balance_modules_enabled, &mods) != BIC_E_OK) return;
    for (size_t i = 0; i < mods.nrows; i++) {
        drs_settings set;
        if (drs_settings_load(db, a, rows_int(&mods, i, 0), &set) != BIC_E_OK) continue;
        c.p = arena_alloc(a, sizeof(*c.p));
        if (plan_make(db, a, cfg, &set, c.p) != BIC_E_OK) continue;
        if (db_tx(db, over_tx, &c) != BIC_E_OK) LOG_WARN(NULL, "balance: marking loads failed");
        for (size_t k = 0; k < c.p->nsteps; k++) {
            c.step = &c.p->steps[k];
            if (!strcmp(c.step->action, "done")) continue;
            bic_err e = db_tx(db, step_tx, &c);
            if (e != BIC_E_OK && e != BIC_E_CONFLICT)
                LOG_WARN(NULL, "balance: %s of desktop %lld failed", c.step->action,
                         c.step->desktop_id);
        }
    }
}

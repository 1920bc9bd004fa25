/*
 * recovery.c - the failure recovery loop, run by the bicd holding the leader lease
 * (controller.c calls recovery_tick after broker_tick; docs/automation.md).
 *
 * Each pass, in short transactions, never one held across a call to a BMC:
 *  1. observe: offline servers become suspect; a suspect server that heartbeats again goes
 *     back to none (nothing was done); after the module's grace a suspect server is fenced
 *     (dry-run: the plan is recorded once instead); an unfenceable server that heartbeats
 *     again goes back to none (nothing was moved), or with fallback 'retry' is fenced again;
 *  2. fence: for servers in 'fencing', the BMC (Redfish or IPMI, fence.c) is asked to power
 *     off, then polled until it says Off ('fenced') or the timeout passes ('unfenceable');
 *  3. recover: the desktops of fenced servers: floating ones (and dedicated ones that never
 *     ran) are removed so their pools provision new ones; dedicated ones are placed on
 *     another server of the module (placement.c, VF rules included) in phase 'recovering'
 *     when the module keeps disks on shared storage, else left 'stranded';
 *  4. follow: a 'recovering' desktop gets desktop.create (start) on its new server once the
 *     image is there, and is 'ready' when the task succeeded.
 * A desktop is only ever moved off a server in 'fenced' state, and the move changes its
 * server in the same row, so it is never started on two servers.
 */
#include "recovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "catalog.h"
#include "config.h"
#include "fence.h"
#include "log.h"
#include "placement.h"
#include "pools.h"
#include "seal.h"
#include "sriov.h"

#define FENCE_PER_TICK  4    /* BMCs asked per pass (each call has its own timeout) */
#define FENCE_CALL_MS   5000 /* the longest one BMC call may take */
#define FOLLOW_PER_TICK 400
#define REASON_MAX      500

struct rec {
    bic_db *db;
    bic_arena *a;
    const bic_config *cfg;
    bic_req req;
};

static const char *cut(bic_arena *a, const char *s, size_t max)
{
    size_t n = strlen(s ? s : "");
    if (n <= max) return s ? s : "";
    while (n > max || (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80))
        n--;
    return arena_strndup(a, s, n);
}

bic_err recovery_record(bic_req *req, long long module_id, const char *action, long long server_id,
                        long long desktop_id, const char *desktop_uuid, long long target_id,
                        const char *state, bool dry_run, const char *reason, long long *id)
{
    bic_arena *a = req->arena;
    reason = cut(a, reason, REASON_MAX);
    bic_err e =
        DB_EXEC(req->db, a, STMT_rec_action_insert, NULL, P_INT(module_id), P_STR(action),
                server_id ? P_INT(server_id) : P_NULL, desktop_id ? P_INT(desktop_id) : P_NULL,
                target_id ? P_INT(target_id) : P_NULL, P_STR(state), P_INT(dry_run), P_STR(reason));
    if (e != BIC_E_OK) return e;
    if (id) *id = (long long)db_insert_id(req->db);
    json_t *sum = json_pack("{s:I, s:s, s:s, s:b}", "module_id", (json_int_t)module_id, "state",
                            state, "reason", reason, "dry_run", dry_run);
    if (server_id) json_object_set_new(sum, "server_id", json_integer(server_id));
    if (desktop_id) json_object_set_new(sum, "desktop_id", json_integer(desktop_id));
    if (target_id) json_object_set_new(sum, "target_server_id", json_integer(target_id));
    const char *what = arena_printf(a, "recovery.%s", action);
    const char *ttype = desktop_id ? "desktop" : "server";
    const char *tid = arena_printf(a, "%lld", desktop_id ? desktop_id : server_id);
    bool ok = strcmp(state, "failed") != 0;
    e = req->who.user_id ? audit_write(req, what, ttype, tid, ok, sum)
                         : audit_write_as(req, 0, "system", what, ttype, tid, ok, sum);
    if (e == BIC_E_OK && server_id)
        e = DB_EXEC(req->db, a, STMT_event_insert, NULL, P_INT(server_id), P_STR(desktop_uuid),
                    P_STR(what),
                    P_STR(cut(a,
                              dry_run ? arena_printf(a, "dry run, %s: %s", state, reason)
                                      : arena_printf(a, "%s: %s", state, reason),
                              250)));
    return e;
}

static bic_err record(struct rec *c, long long module, const char *action, long long server,
                      long long desktop, const char *uuid, long long target, const char *state,
                      bool dry, const char *reason, long long *id)
{
    c->req.db = c->db;
    return recovery_record(&c->req, module, action, server, desktop, uuid, target, state, dry,
                           reason, id);
}

/* ---- placing the desktops of a fenced server ---- */

/* What placement needs about the module of a fenced server, loaded once per pass. */
struct targets {
    pl_server *s;
    size_t n;
    pl_rules rules;
    long long module;
    const char *module_name;
};

static bic_err targets_load(struct rec *c, long long pool_id, long long module, struct targets *t)
{
    pools_rules(c->cfg, &t->rules);
    long long *mods;
    const char **names;
    size_t nmod;
    bic_err e = pools_server_load(c->db, c->a, pool_id, t->rules.per_gbps, &t->s, &t->n, &mods,
                                  &names, &nmod);
    /* only servers that heartbeat now: one that failed with this one is not yet offline */
    bic_rows fresh;
    if (e == BIC_E_OK)
        e = DB_EXEC(
            c->db, c->a, STMT_rec_fresh_servers, &fresh, P_INT(module),
            P_INT(2 * (c->cfg->agents_heartbeat_interval > 0 ? c->cfg->agents_heartbeat_interval
                                                             : 10)));
    for (size_t i = 0; e == BIC_E_OK && i < t->n; i++) {
        bool ok = false;
        for (size_t j = 0; j < fresh.nrows && !ok; j++)
            ok = rows_int(&fresh, j, 0) == t->s[i].id;
        if (!ok) t->s[i].online = false;
    }
    t->module = module;
    t->module_name = NULL;
    for (size_t i = 0; e == BIC_E_OK && i < nmod; i++)
        if (mods[i] == module) t->module_name = names[i];
    return e;
}

/* A row of rec_server_desktops. */
struct victim {
    long long id, pool, vcpus, memory, vlan;
    const char *uuid, *name, *ptype, *phase, *nic, *note, *placement;
    bool fallback, assigned;
};

/*
 * Chooses a server of the module for v (reserving a VF there when it needs one). *idx = the
 * server (-1 with why when none fits), *vf = the locked VF when one was reserved.
 */
static bic_err choose(struct rec *c, struct targets *t, const struct victim *v, long *idx,
                      sriov_vf *f, bool *got, const char **note, char *why, size_t len, bool dry)
{
    pl_request r = {.memory_mib = v->memory,
                    .vcpus = (int)v->vcpus,
                    .vf = !strcmp(v->nic, "sriov"),
                    .modules = &t->module,
                    .module_names = t->module_name ? &t->module_name : NULL,
                    .nmodules = 1,
                    .policy = !strcmp(v->placement, "pack") ? PL_PACK : PL_SPREAD};
    bool want = r.vf, fell_back;
    *got = false;
    *note = "";
    *idx = pools_choose(t->s, t->n, &r, &t->rules, v->fallback, &fell_back, why, len);
    if (*idx < 0) return BIC_E_OK;
    if (fell_back) *note = "no server has a free SR-IOV VF; virtio NIC instead";
    /* the snapshot's free VFs may be gone: that server is out, choose again */
    while (r.vf && !dry) {
        bic_err e = sriov_pick(c->db, c->a, t->s[*idx].id, t->rules.per_gbps, f, got);
        if (e != BIC_E_OK) return e;
        if (*got) break;
        t->s[*idx].vfs_free = 0;
        *idx = pools_choose(t->s, t->n, &r, &t->rules, v->fallback, &fell_back, why, len);
        if (*idx < 0) return BIC_E_OK;
        if (fell_back) *note = "no server has a free SR-IOV VF; virtio NIC instead";
    }
    if (dry) *got = r.vf;
    pl_request placed = r;
    placed.vf = *got;
    placement_commit(&t->s[*idx], &placed);
    (void)want;
    return BIC_E_OK;
}

/* What happens to a desktop of a fenced server: 'remove', 'move' or 'strand'. */
static const char *fate(const struct victim *v, bool shared)
{
    if (!strcmp(v->ptype, "floating") || !strcmp(v->phase, "deleting")) return "remove";
    if (!v->assigned && (!strcmp(v->phase, "pending") || !strcmp(v->phase, "provisioning") ||
                         !strcmp(v->phase, "error")))
        return "remove";
    return shared ? "move" : "strand";
}

struct fenced {
    struct rec *c;
    long long id, module, batch;
    const char *host;
    bool shared, dry;
    long moved, removed, stranded, waiting;
};

/* Handles (or, dry, plans) up to batch desktops of a fenced server. */
static bic_err recover_server(struct fenced *fs)
{
    struct rec *c = fs->c;
    bic_rows r;
    bic_err e = DB_EXEC(c->db, c->a, STMT_rec_server_desktops, &r, P_INT(fs->id), P_INT(fs->batch));
    if (e != BIC_E_OK) return e;
    struct targets t = {0};
    bool loaded = false;
    for (size_t i = 0; e == BIC_E_OK && i < r.nrows; i++) {
        struct victim v = {
            .id = rows_int(&r, i, 0),
            .uuid = rows_str(&r, i, 1),
            .name = rows_str(&r, i, 2),
            .pool = rows_int(&r, i, 3),
            .ptype = rows_str(&r, i, 4),
            .phase = rows_str(&r, i, 5) ? rows_str(&r, i, 5) : "ready",
            .vcpus = rows_int(&r, i, 6),
            .memory = rows_int(&r, i, 7),
            .nic = rows_str(&r, i, 8) ? rows_str(&r, i, 8) : "virtio",
            .note = rows_str(&r, i, 9),
            .fallback = rows_int(&r, i, 10) != 0,
            .placement = rows_str(&r, i, 11),
            .assigned = rows_int(&r, i, 12) != 0,
            .vlan = rows_str(&r, i, 14) ? rows_int(&r, i, 14) : 0,
        };
        const char *what = fate(&v, fs->shared);
        if (!strcmp(what, "remove")) {
            const char *why =
                !strcmp(v.ptype, "floating")
                    ? arena_printf(c->a,
                                   "floating desktop %s of failed server %s removed: its pool "
                                   "provisions a new one",
                                   v.name, fs->host)
                    : arena_printf(c->a,
                                   "desktop %s (%s) of failed server %s removed: the pool "
                                   "makes it again",
                                   v.name, v.phase, fs->host);
            e = record(c, fs->module, "recover", fs->id, v.id, v.uuid, 0,
                       fs->dry ? "planned" : "done", fs->dry, why, NULL);
            if (fs->dry || e != BIC_E_OK) continue;
            e = DB_EXEC(c->db, c->a, STMT_rec_tickets_drop, NULL, P_INT(v.id));
            if (e == BIC_E_OK) e = DB_EXEC(c->db, c->a, STMT_rec_sessions_end, NULL, P_INT(v.id));
            if (e == BIC_E_OK) e = DB_EXEC(c->db, c->a, STMT_rec_vf_release, NULL, P_INT(v.id));
            if (e == BIC_E_OK) e = DB_EXEC(c->db, c->a, STMT_rec_desktop_delete, NULL, P_INT(v.id));
            fs->removed++;
            continue;
        }
        if (!strcmp(what, "strand")) {
            const char *why = arena_printf(c->a,
                                           "stranded: the disk of %s is on failed server %s (the "
                                           "module has no shared storage); it comes back with the "
                                           "server",
                                           v.name, fs->host);
            e = record(c, fs->module, "recover", fs->id, v.id, v.uuid, 0, "skipped", fs->dry, why,
                       NULL);
            if (e == BIC_E_OK && !fs->dry)
                e = DB_EXEC(c->db, c->a, STMT_rec_desktop_note, NULL, P_STR(why), P_INT(v.id));
            fs->stranded++;
            continue;
        }
        if (!loaded) {
            e = targets_load(c, v.pool, fs->module, &t);
            if (e != BIC_E_OK) break;
            loaded = true;
        }
        long idx;
        sriov_vf f;
        bool got;
        const char *nicnote;
        char why[512] = "";
        e = choose(c, &t, &v, &idx, &f, &got, &nicnote, why, sizeof(why), fs->dry);
        if (e != BIC_E_OK) break;
        if (idx < 0) {
            const char *note =
                arena_printf(c->a, "waiting: no server can take %s: %s", v.name, why);
            fs->waiting++;
            if (!fs->dry && !strcmp(note, v.note)) continue; /* said already */
            e = record(c, fs->module, "recover", fs->id, v.id, v.uuid, 0,
                       fs->dry ? "planned" : "failed", fs->dry, note, NULL);
            if (e == BIC_E_OK && !fs->dry)
                e = DB_EXEC(c->db, c->a, STMT_rec_desktop_note, NULL, P_STR(note), P_INT(v.id));
            continue;
        }
        const pl_server *to = &t.s[idx];
        long long action = 0;
        e = record(c, fs->module, "recover", fs->id, v.id, v.uuid, to->id,
                   fs->dry ? "planned" : "running", fs->dry,
                   arena_printf(c->a, "%s %s from failed server %s to %s",
                                fs->dry ? "would restart" : "restarting", v.name, fs->host,
                                to->hostname),
                   &action);
        if (fs->dry || e != BIC_E_OK) continue;
        const char *nic = got ? "sriov" : "virtio";
        e = DB_EXEC(c->db, c->a, STMT_rec_vf_release, NULL, P_INT(v.id));
        if (e == BIC_E_OK && got) {
            char mac[18];
            sriov_desktop_mac(v.id, mac);
            e = sriov_claim(c->db, c->a, &f, v.id, mac, v.vlan);
        }
        if (e == BIC_E_OK) e = DB_EXEC(c->db, c->a, STMT_rec_tickets_drop, NULL, P_INT(v.id));
        if (e == BIC_E_OK)
            e = DB_EXEC(c->db, c->a, STMT_rec_sessions_disconnect, NULL, P_INT(v.id));
        if (e == BIC_E_OK)
            e = DB_EXEC(c->db, c->a, STMT_rec_desktop_move, NULL, P_INT(to->id), P_STR(nic),
                        P_STR(nicnote), P_INT(fs->id), P_INT(action), P_INT(v.id));
        fs->moved++;
    }
    if (e == BIC_E_OK && !fs->dry && r.nrows == 0) {
        e = DB_EXEC(c->db, c->a, STMT_rec_server_done, NULL, P_INT(fs->id));
        if (e == BIC_E_OK)
            e = record(c, fs->module, "recovered", fs->id, 0, NULL, 0, "done", false,
                       arena_printf(c->a, "every desktop of %s was handled", fs->host), NULL);
    }
    return e;
}

static bic_err fenced_tx(bic_db *db, void *arg)
{
    struct fenced *fs = arg;
    fs->c->db = db;
    fs->moved = fs->removed = fs->stranded = fs->waiting = 0;
    return recover_server(fs);
}

/* ---- 1. observe ---- */

/* The BMC a server would be fenced through, for messages. */
static const char *bmc_words(const char *type)
{
    return !strcmp(type, "redfish") ? "its BMC over Redfish"
           : !strcmp(type, "ipmi")  ? "its BMC over IPMI"
                                    : "nothing (no BMC is configured)";
}

static bic_err observe_tx(bic_db *db, void *arg)
{
    struct rec *c = arg;
    c->db = db;
    bic_rows r;
    bic_err e = DB_EXEC0(db, c->a, STMT_rec_observe, &r);
    for (size_t i = 0; e == BIC_E_OK && i < r.nrows; i++) {
        long long id = rows_int(&r, i, 0), module = rows_int(&r, i, 1);
        const char *host = rows_str(&r, i, 2), *rs = rows_str(&r, i, 4);
        bool online = !strcmp(rows_str(&r, i, 3), "online");
        bool enabled = rows_int(&r, i, 5) != 0, dry = rows_int(&r, i, 6) != 0;
        long long grace = rows_int(&r, i, 7);
        bool retry = !strcmp(rows_str(&r, i, 9), "retry");
        bool grace_passed = rows_int(&r, i, 13) != 0, retry_due = rows_int(&r, i, 14) != 0;
        bool planned = rows_int(&r, i, 15) != 0;
        const char *bmc = rows_str(&r, i, 16);
        if (online && planned) e = DB_EXEC(db, c->a, STMT_rec_plan_reset, NULL, P_INT(id));
        if (e != BIC_E_OK || !enabled) continue;
        if (!strcmp(rs, "none")) {
            if (online) continue;
            const char *why = arena_printf(c->a,
                                           "%s stopped heartbeating; fenced through %s "
                                           "unless it is back within %lld s",
                                           host, bmc_words(bmc), grace);
            e = DB_EXEC(db, c->a, STMT_rec_set_state, NULL, P_STR("suspect"), P_STR(why), P_INT(id),
                        P_STR("none"));
            if (e == BIC_E_OK && db_affected(db) == 1)
                e = record(c, module, "suspect", id, 0, NULL, 0, "done", false, why, NULL);
            if (e == BIC_E_OK) LOG_WARN(NULL, "recovery: %s", why);
        } else if (!strcmp(rs, "suspect") || !strcmp(rs, "unfenceable")) {
            bool suspect = !strcmp(rs, "suspect");
            if (online) {
                const char *why =
                    suspect ? arena_printf(c->a,
                                           "%s heartbeats again while suspect: nothing was "
                                           "done",
                                           host)
                            : arena_printf(c->a,
                                           "%s heartbeats again: its fencing was never "
                                           "confirmed and no desktop was moved",
                                           host);
                e = DB_EXEC(db, c->a, STMT_rec_set_state, NULL, P_STR("none"), P_STR(why),
                            P_INT(id), P_STR(rs));
                if (e == BIC_E_OK && db_affected(db) == 1)
                    e = record(c, module, "clear", id, 0, NULL, 0, "done", false, why, NULL);
                continue;
            }
            if (suspect ? !grace_passed : !(retry && retry_due)) continue;
            if (dry) {
                if (planned) continue;
                e = record(
                    c, module, "fence", id, 0, NULL, 0, "planned", true,
                    arena_printf(c->a, "would power %s off through %s", host, bmc_words(bmc)),
                    NULL);
                if (e != BIC_E_OK) break;
                bic_rows s;
                e = DB_EXEC(db, c->a, STMT_rec_settings_get, &s, P_INT(module));
                if (e != BIC_E_OK || s.nrows != 1) break;
                struct fenced fs = {.c = c,
                                    .id = id,
                                    .module = module,
                                    .host = host,
                                    .batch = rows_int(&s, 0, 8),
                                    .shared = rows_int(&s, 0, 7) != 0,
                                    .dry = true};
                e = recover_server(&fs);
                if (e == BIC_E_OK) e = DB_EXEC(db, c->a, STMT_rec_planned, NULL, P_INT(id));
                continue;
            }
            const char *why =
                suspect ? arena_printf(c->a, "powering %s off through %s", host, bmc_words(bmc))
                        : arena_printf(c->a, "fencing %s again through %s", host, bmc_words(bmc));
            e = DB_EXEC(db, c->a, STMT_rec_set_state, NULL, P_STR("fencing"), P_STR(why), P_INT(id),
                        P_STR(rs));
            if (e == BIC_E_OK && db_affected(db) == 1)
                e = record(c, module, "fence", id, 0, NULL, 0, "running", false, why, NULL);
        }
    }
    return e;
}

/* ---- 2. fence ---- */

struct fence_done {
    struct rec *c;
    long long id, module;
    const char *host, *method, *why;
    fence_result result;
    bool sent, timed_out;
};

static bic_err fence_done_tx(bic_db *db, void *arg)
{
    struct fence_done *d = arg;
    struct rec *c = d->c;
    c->db = db;
    bic_err e = BIC_E_OK;
    if (d->result == FENCE_OFF) {
        const char *why = arena_printf(c->a, "%s is off: confirmed by %s", d->host, d->method);
        e = DB_EXEC(db, c->a, STMT_rec_fenced, NULL, P_STR(why), P_STR(d->method), P_INT(d->id),
                    P_STR("fencing"));
        if (e == BIC_E_OK && db_affected(db) == 1) {
            e = record(c, d->module, "fence", d->id, 0, NULL, 0, "done", false, why, NULL);
            LOG_WARN(NULL, "recovery: %s", why);
        }
        return e;
    }
    if (d->result == FENCE_PENDING && !d->timed_out) {
        if (!d->sent) e = DB_EXEC(db, c->a, STMT_rec_fence_sent, NULL, P_INT(d->id));
        return e;
    }
    const char *why =
        d->result == FENCE_PENDING
            ? arena_printf(c->a,
                           "%s: the BMC did not confirm power off in time (%s); its desktops "
                           "stay where they are until an admin confirms it is off",
                           d->host, d->why)
            : arena_printf(c->a,
                           "%s cannot be fenced: %s; its desktops stay where they are until "
                           "an admin confirms it is off",
                           d->host, d->why);
    e = DB_EXEC(db, c->a, STMT_rec_set_state, NULL, P_STR("unfenceable"),
                P_STR(cut(c->a, why, 500)), P_INT(d->id), P_STR("fencing"));
    if (e == BIC_E_OK && db_affected(db) == 1) {
        e = record(c, d->module, "fence_failed", d->id, 0, NULL, 0, "failed", false, why, NULL);
        LOG_WARN(NULL, "recovery: %s", why);
    }
    return e;
}

int recovery_bmc_target(bic_req *req, bic_arena *a, long long server_id, const char *type,
                        const char *address, const char *user, const char *sealed,
                        size_t sealed_len, const char *ca, long timeout_ms, fence_target *t,
                        char *why, size_t len)
{
    if (!type || !strcmp(type, "none")) return 1;
    *t = (fence_target){.type = !strcmp(type, "ipmi") ? FENCE_IPMI : FENCE_REDFISH,
                        .address = address ? address : "",
                        .user = user ? user : "",
                        .password = "",
                        .ca_pem = ca,
                        .timeout_ms = timeout_ms < FENCE_CALL_MS ? timeout_ms : FENCE_CALL_MS};
    if (!sealed) return 0;
    const unsigned char *key;
    unsigned char *pw = arena_alloc(a, sealed_len + 1);
    if (sealed_len <= SEAL_OVERHEAD || seal_key(req, SEAL_BMC, &key) != BIC_E_OK ||
        seal_decrypt(key, arena_printf(a, "server:%lld", server_id), (const unsigned char *)sealed,
                     sealed_len, pw) < 0) {
        snprintf(why, len, "the BMC password does not open (was [auth] secret_file replaced? "
                           "set it again)");
        return -1;
    }
    t->password = (const char *)pw;
    return 0;
}

void recovery_bmc_wipe(fence_target *t)
{
    if (t->password && *t->password) explicit_bzero((char *)t->password, strlen(t->password));
}

static void fence_pass(struct rec *c)
{
    bic_rows r;
    if (DB_EXEC(c->db, c->a, STMT_rec_fencing_due, &r, P_INT(FENCE_PER_TICK)) != BIC_E_OK) return;
    for (size_t i = 0; i < r.nrows; i++) {
        struct fence_done d = {.c = c,
                               .id = rows_int(&r, i, 0),
                               .module = rows_int(&r, i, 1),
                               .host = rows_str(&r, i, 2),
                               .sent = rows_int(&r, i, 8) != 0,
                               .timed_out = rows_int(&r, i, 9) != 0};
        if (!rows_int(&r, i, 12) || rows_int(&r, i, 11)) continue; /* disabled, or dry-run */
        const char *type = rows_str(&r, i, 3);
        char why[512] = "";
        long timeout_ms = rows_int(&r, i, 10) * 1000;
        fence_target t;
        int got = recovery_bmc_target(&c->req, c->a, d.id, type, rows_str(&r, i, 4),
                                      rows_str(&r, i, 5), rows_str(&r, i, 6),
                                      rows_str(&r, i, 6) ? r.len[i * r.ncols + 6] : 0,
                                      rows_str(&r, i, 7), timeout_ms, &t, why, sizeof(why));
        if (got == 1) {
            d.result = FENCE_FAILED;
            d.why = "no BMC is configured (the fallback: an admin confirms)";
            d.method = "none";
        } else if (got < 0) {
            d.result = FENCE_FAILED;
            d.why = arena_strdup(c->a, why);
            d.method = type;
        } else {
            d.method = type;
            d.result = d.sent ? fence_power_state(&t, why, sizeof(why))
                              : fence_power_off(&t, why, sizeof(why));
            recovery_bmc_wipe(&t);
            d.why = arena_strdup(c->a, why);
        }
        if (db_tx(c->db, fence_done_tx, &d) != BIC_E_OK)
            LOG_WARN(NULL, "recovery: cannot record the fencing of server %lld", d.id);
    }
}

/* ---- 4. follow the desktops being recovered ---- */

static json_t *nic_json(const bic_rows *r, size_t i)
{
    const char *type = rows_str(r, i, 8) ? rows_str(r, i, 8) : "virtio";
    json_t *o = json_pack("{s:s}", "type", type);
    if (rows_str(r, i, 10)) json_object_set_new(o, "mac", json_string(rows_str(r, i, 10)));
    if (rows_str(r, i, 14)) json_object_set_new(o, "vlan", json_integer(rows_int(r, i, 14)));
    if (!strcmp(type, "sriov") && rows_str(r, i, 11)) {
        json_object_set_new(o, "vf_pci", json_string(rows_str(r, i, 11)));
        json_object_set_new(o, "pf", json_string(rows_str(r, i, 12)));
        json_object_set_new(o, "vf_index", json_integer(rows_int(r, i, 13)));
    }
    return o;
}

static bic_err finish(struct rec *c, const bic_rows *r, size_t i, bool ok, const char *why)
{
    long long id = rows_int(r, i, 0), action = rows_str(r, i, 18) ? rows_int(r, i, 18) : 0;
    long long server = rows_int(r, i, 1);
    bic_err e = ok ? DB_EXEC(c->db, c->a, STMT_rec_desktop_recovered, NULL, P_INT(id))
                   : DB_EXEC(c->db, c->a, STMT_rec_desktop_failed, NULL, P_STR(why), P_INT(id));
    if (e == BIC_E_OK && action)
        e = DB_EXEC(c->db, c->a, STMT_rec_action_update, NULL, P_STR(ok ? "done" : "failed"),
                    P_STR(why), P_INT(action));
    if (e == BIC_E_OK)
        e = DB_EXEC(c->db, c->a, STMT_event_insert, NULL, P_INT(server), P_STR(rows_str(r, i, 2)),
                    P_STR(ok ? "recovery.restarted" : "recovery.restart_failed"),
                    P_STR(cut(c->a, why, 250)));
    return e;
}

static bic_err follow_tx(bic_db *db, void *arg)
{
    struct rec *c = arg;
    c->db = db;
    bic_rows r;
    bic_err e = DB_EXEC(db, c->a, STMT_rec_recovering, &r, P_INT(FOLLOW_PER_TICK));
    for (size_t i = 0; e == BIC_E_OK && i < r.nrows; i++) {
        long long id = rows_int(&r, i, 0), server = rows_int(&r, i, 1);
        const char *name = rows_str(&r, i, 3);
        if (rows_str(&r, i, 15)) { /* its task ended */
            bool ok = !strcmp(rows_str(&r, i, 16), "succeeded");
            e = finish(
                c, &r, i, ok,
                ok ? arena_printf(c->a, "%s runs on server %lld", name, server)
                   : arena_printf(c->a, "restarting %s failed: %.400s", name, rows_str(&r, i, 17)));
            continue;
        }
        if (!rows_str(&r, i, 9)) {
            e = finish(c, &r, i, false, "the desktop has no image version to start from");
            continue;
        }
        const char *volume = NULL, *error = NULL;
        const char *st = catalog_replica(db, c->a, rows_int(&r, i, 9), server, &volume, &error);
        if (!st) {
            e = BIC_E_INTERNAL;
            break;
        }
        if (!strcmp(st, "fetching")) continue;
        if (!strcmp(st, "failed")) {
            e = finish(c, &r, i, false,
                       arena_printf(c->a, "the image of %s is not on the new server: %.400s", name,
                                    error ? error : ""));
            continue;
        }
        json_t *params = json_pack(
            "{s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:o, s:b}", "uuid", rows_str(&r, i, 2), "name",
            name, "vcpus", (json_int_t)rows_int(&r, i, 5), "memory_mib",
            (json_int_t)rows_int(&r, i, 6), "disk_gib", (json_int_t)rows_int(&r, i, 7), "base",
            volume, "overlay", rows_str(&r, i, 4), "nic", nic_json(&r, i), "start", 1);
        char *pj = params ? json_dumps(params, JSON_COMPACT) : NULL;
        json_decref(params);
        if (!pj) {
            e = BIC_E_INTERNAL;
            break;
        }
        e = DB_EXEC(db, c->a, STMT_task_insert, NULL, P_INT(server), P_STR("desktop.create"),
                    P_STR(pj), P_INT(c->cfg->agents_task_max_attempts), P_STR("recovery"));
        free(pj);
        if (e == BIC_E_OK)
            e = DB_EXEC(db, c->a, STMT_rec_desktop_task, NULL, P_INT(db_insert_id(db)), P_INT(id));
    }
    return e;
}

/* ---- the pass ---- */

void recovery_tick(bic_db *db, bic_arena *a, const bic_config *cfg)
{
    static struct timespec last_prune;
    struct rec c = {.db = db, .a = a, .cfg = cfg};
    c.req.db = db;
    c.req.arena = a;
    c.req.cfg = cfg;
    c.req.remote_addr = "";
    snprintf(c.req.request_id, sizeof(c.req.request_id), "ctl-recovery");
    if (db_tx(db, observe_tx, &c) != BIC_E_OK) LOG_WARN(NULL, "recovery: observing failed");
    fence_pass(&c);
    bic_rows f;
    if (DB_EXEC0(db, a, STMT_rec_fenced_servers, &f) == BIC_E_OK)
        for (size_t i = 0; i < f.nrows; i++) {
            if (!rows_int(&f, i, 3)) continue; /* recovery is off in its module */
            struct fenced fs = {.c = &c,
                                .id = rows_int(&f, i, 0),
                                .module = rows_int(&f, i, 1),
                                .host = rows_str(&f, i, 2),
                                .dry = rows_int(&f, i, 4) != 0,
                                .shared = rows_int(&f, i, 5) != 0,
                                .batch = rows_int(&f, i, 6)};
            if (fs.dry) continue; /* switched to dry-run after it was fenced: wait */
            if (fs.batch < 1) fs.batch = 1;
            if (db_tx(db, fenced_tx, &fs) != BIC_E_OK)
                LOG_WARN(NULL, "recovery: recovering the desktops of %s failed", fs.host);
        }
    if (db_tx(db, follow_tx, &c) != BIC_E_OK)
        LOG_WARN(NULL, "recovery: following recovered desktops failed");
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - last_prune.tv_sec >= 60) {
        DB_EXEC0(db, a, STMT_rec_actions_prune, NULL);
        last_prune = now;
    }
}

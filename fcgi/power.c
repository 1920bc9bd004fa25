/*
 * power.c - automatic power control: the leader's power loop, the schedule, Wake-on-LAN and
 * the plan the admin routes show (see power.h and docs/automation.md, "Power control").
 *
 * Each pass:
 *  1. transitions (every module): waking -> on at the first heartbeat after the wake, or off
 *     after wake_timeout_s; powering_off -> off once the server went offline, or on when its
 *     host.power_off task failed; off -> on when it heartbeats again (turned on by hand);
 *  2. per enabled module: mark which servers are empty, make the plan (power_plan_make) and
 *     carry it out: wake through the BMC or by Wake-on-LAN (send_wake), power off through the
 *     agent.
 */
#include "power.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit.h"
#include "db.h"
#include "log.h"
#include "placement.h"
#include "recovery.h"
#include "pools.h"

/* ---- settings ---- */

/* columns of power_settings_get after m.id, m.name, exists, updated_by, updated_at */
enum { PS_FIRST = 5 };

bic_err power_settings_load(bic_db *db, bic_arena *a, long long module_id, power_settings *out)
{
    bic_rows r;
    bic_err e = DB_EXEC(db, a, STMT_power_settings_get, &r, P_INT(module_id));
    if (e != BIC_E_OK) return e;
    if (r.nrows != 1) return BIC_E_NOT_FOUND;
    bool row = rows_int(&r, 0, 2) != 0;
#define I(k, def) (row ? rows_int(&r, 0, PS_FIRST + (k)) : (def))
#define S(k, def) (row ? arena_strdup(a, rows_str(&r, 0, PS_FIRST + (k))) : (def))
    *out = (power_settings){.module_id = module_id,
                            .configured = row,
                            .enabled = I(0, 0) != 0,
                            .dry_run = I(1, 0) != 0,
                            .min_on = I(2, 1),
                            .spare_slots = I(3, 10),
                            .empty_hold_s = I(4, 1800),
                            .wake_timeout_s = I(5, 600),
                            .max_parallel = I(6, 2),
                            .schedule = S(7, ""),
                            .tz_offset_min = I(8, 0),
                            .peak_lead_s = I(9, 900),
                            .peak_hold_s = I(10, 3600),
                            .wake_method = S(11, "auto"),
                            .wol_broadcast = S(12, "255.255.255.255"),
                            .wol_port = I(13, 9),
                            .module_name = arena_strdup(a, rows_str(&r, 0, 1)),
                            .updated_by = row ? arena_strdup(a, rows_str(&r, 0, 3)) : NULL,
                            .updated_at = row ? arena_strdup(a, rows_str(&r, 0, 4)) : NULL};
#undef I
#undef S
    return BIC_E_OK;
}

json_t *power_settings_json(const power_settings *s)
{
    return json_pack("{s:I, s:s, s:b, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:s,"
                     " s:s, s:I, s:s?}",
                     "module_id", (json_int_t)s->module_id, "module", s->module_name, "configured",
                     s->configured, "enabled", s->enabled, "dry_run", s->dry_run, "min_on",
                     (json_int_t)s->min_on, "spare_slots", (json_int_t)s->spare_slots,
                     "empty_hold_s", (json_int_t)s->empty_hold_s, "wake_timeout_s",
                     (json_int_t)s->wake_timeout_s, "max_parallel", (json_int_t)s->max_parallel,
                     "schedule", s->schedule, "tz_offset_min", (json_int_t)s->tz_offset_min,
                     "peak_lead_s", (json_int_t)s->peak_lead_s, "peak_hold_s",
                     (json_int_t)s->peak_hold_s, "wake_method", s->wake_method, "wol_broadcast",
                     s->wol_broadcast, "wol_port", (json_int_t)s->wol_port, "updated_by",
                     s->updated_by);
}

/* ---- the schedule ---- */

struct entry {
    unsigned days; /* bit 0 = Sunday (struct tm's tm_wday) */
    int minute;    /* of the day */
    long long servers;
};

static int day_index(const char *s, size_t n)
{
    static const char *const names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    if (n != 3) return -1;
    for (int i = 0; i < 7; i++)
        if (!strncasecmp(s, names[i], 3)) return i;
    return -1;
}

/* Parses "mon-fri,sun" (or daily / *) of n bytes. */
static bool parse_days(const char *s, size_t n, unsigned *out, char *why, size_t len)
{
    *out = 0;
    if ((n == 5 && !strncasecmp(s, "daily", 5)) || (n == 1 && *s == '*')) {
        *out = 0x7f;
        return true;
    }
    const char *p = s, *end = s + n;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *stop = c ? c : end;
        const char *dash = memchr(p, '-', (size_t)(stop - p));
        int a = day_index(p, (size_t)((dash ? dash : stop) - p));
        int b = dash ? day_index(dash + 1, (size_t)(stop - dash - 1)) : a;
        if (a < 0 || b < 0) {
            snprintf(why, len, "'%.*s' is not a day or a range of days (mon..sun)", (int)(stop - p),
                     p);
            return false;
        }
        for (int d = a;; d = (d + 1) % 7) {
            *out |= 1u << d;
            if (d == b) break;
        }
        p = c ? c + 1 : end;
    }
    return *out != 0;
}

/* Parses a schedule into e (POWER_SCHEDULE_MAX entries); the count, or -1 with why. */
static int schedule_parse(const char *text, struct entry *e, char *why, size_t len)
{
    int n = 0;
    const char *p = text ? text : "";
    while (*p) {
        size_t l = strcspn(p, ";\n");
        char item[160];
        if (l >= sizeof(item)) {
            snprintf(why, len, "schedule entry %d is too long", n + 1);
            return -1;
        }
        memcpy(item, p, l);
        item[l] = '\0';
        p += l;
        if (*p) p++;
        char *q = item;
        while (isspace((unsigned char)*q))
            q++;
        if (!*q) continue;
        if (n == POWER_SCHEDULE_MAX) {
            snprintf(why, len, "a schedule has at most %d entries", POWER_SCHEDULE_MAX);
            return -1;
        }
        char days[64], hm[16], extra[8];
        long long servers;
        int hh, mm, used = 0;
        if (sscanf(q, "%63s %15s %lld %7s", days, hm, &servers, extra) != 3 ||
            sscanf(hm, "%2d:%2d%n", &hh, &mm, &used) != 2 || hm[used] || strlen(hm) != 5) {
            snprintf(why, len, "schedule entry '%.60s' is not 'DAYS HH:MM SERVERS'", q);
            return -1;
        }
        if (hh < 0 || hh > 23 || mm < 0 || mm > 59) {
            snprintf(why, len, "schedule entry '%.60s' has no valid time of day", q);
            return -1;
        }
        if (servers < 0 || servers > 1000) {
            snprintf(why, len, "schedule entry '%.60s': servers must be 0..1000", q);
            return -1;
        }
        if (!parse_days(days, strlen(days), &e[n].days, why, len)) return -1;
        e[n].minute = hh * 60 + mm;
        e[n].servers = servers;
        n++;
    }
    return n;
}

bool power_schedule_valid(const char *text, char *why, size_t len)
{
    struct entry e[POWER_SCHEDULE_MAX];
    return schedule_parse(text, e, why, len) >= 0;
}

long long power_schedule_min(const char *text, time_t now, long long tz_offset_min, long long lead_s,
                             long long hold_s, time_t *next)
{
    struct entry e[POWER_SCHEDULE_MAX];
    char why[128];
    int n = schedule_parse(text, e, why, sizeof(why));
    long long best = 0;
    time_t soonest = 0;
    /* local time as if it were UTC: midnight of today, local */
    time_t local = now + (time_t)tz_offset_min * 60;
    time_t midnight = local - local % 86400;
    struct tm tm;
    gmtime_r(&midnight, &tm);
    for (int i = 0; i < n; i++)
        for (int d = -1; d <= 8; d++) {
            int wday = ((tm.tm_wday + d) % 7 + 7) % 7;
            if (!(e[i].days & (1u << wday))) continue;
            time_t peak = midnight + (time_t)d * 86400 + (time_t)e[i].minute * 60 -
                          (time_t)tz_offset_min * 60; /* back to UTC */
            if (now >= peak - lead_s && now <= peak + hold_s && e[i].servers > best)
                best = e[i].servers;
            if (peak > now && (!soonest || peak < soonest)) soonest = peak;
        }
    if (next) *next = soonest;
    return best;
}

/* ---- Wake-on-LAN ---- */

bool power_magic_packet(const char *mac, unsigned char out[POWER_MAGIC_LEN])
{
    unsigned char m[6];
    if (!mac || strlen(mac) != 17) return false;
    for (int i = 0; i < 6; i++) {
        const char *p = mac + 3 * i;
        if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1])) return false;
        if (i < 5 && p[2] != ':' && p[2] != '-') return false;
        char hex[3] = {p[0], p[1], 0};
        m[i] = (unsigned char)strtoul(hex, NULL, 16);
    }
    memset(out, 0xff, 6);
    for (int i = 0; i < 16; i++)
        memcpy(out + 6 + 6 * i, m, 6);
    return true;
}

int power_wol_send(const char *mac, const char *addr, long port, char *err, size_t len)
{
    unsigned char pkt[POWER_MAGIC_LEN];
    if (!power_magic_packet(mac, pkt)) {
        snprintf(err, len, "'%s' is not a MAC address", mac ? mac : "");
        return -1;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (port < 1 || port > 65535 || inet_pton(AF_INET, addr, &to.sin_addr) != 1) {
        snprintf(err, len, "'%s:%ld' is not an IPv4 address and port", addr, port);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, len, "socket: %s", strerror(errno));
        return -1;
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof(on));
    ssize_t n = sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to));
    int saved = errno;
    close(fd);
    if (n != (ssize_t)sizeof(pkt)) {
        snprintf(err, len, "sendto %s:%ld: %s", addr, port, n < 0 ? strerror(saved) : "short");
        return -1;
    }
    return 0;
}

/* ---- the action log ---- */

bic_err power_record(bic_req *req, long long module_id, const char *loop, const char *action,
                     long long server_id, long long desktop_id, long long target_id,
                     const char *state, bool dry_run, const char *reason, long long *id)
{
    bic_db *db = req->db;
    bic_arena *a = req->arena;
    if (id) *id = 0;
    bool planned = !strcmp(state, "planned") || !strcmp(state, "skipped");
    if (planned) { /* the same record again within POWER_DEDUP_S: nothing new to say */
        bic_rows r;
        bic_err e = DB_EXEC(db, a, STMT_aa_recent_same, &r, P_INT(module_id), P_STR(loop),
                            P_STR(action), server_id ? P_INT(server_id) : P_NULL,
                            desktop_id ? P_INT(desktop_id) : P_NULL, P_STR(reason),
                            P_INT(POWER_DEDUP_S));
        if (e != BIC_E_OK) return e;
        if (rows_int(&r, 0, 0) > 0) return BIC_E_OK;
    }
    bic_err e = DB_EXEC(db, a, STMT_aa_insert, NULL, P_INT(module_id), P_STR(loop), P_STR(action),
                        server_id ? P_INT(server_id) : P_NULL,
                        desktop_id ? P_INT(desktop_id) : P_NULL,
                        target_id ? P_INT(target_id) : P_NULL, P_STR(state), P_INT(dry_run),
                        P_STR(reason));
    if (e != BIC_E_OK) return e;
    long long aid = (long long)db_insert_id(db);
    if (id) *id = aid;
    const char *kind = arena_printf(a, "%s.%s%s", loop, action, dry_run ? ".planned" : "");
    if (server_id)
        e = DB_EXEC(db, a, STMT_event_insert, NULL, P_INT(server_id), P_NULL, P_STR(kind),
                    P_STR(arena_printf(a, "%.250s", reason)));
    if (e != BIC_E_OK) return e;
    const char *audit_action = arena_printf(a, "%s.%s", loop, action);
    json_t *sum = json_pack("{s:I, s:I, s:s, s:b, s:s}", "action_id", (json_int_t)aid, "module_id",
                            (json_int_t)module_id, "state", state, "dry_run", dry_run, "reason",
                            reason);
    if (desktop_id) json_object_set_new(sum, "desktop_id", json_integer(desktop_id));
    if (target_id) json_object_set_new(sum, "target_server_id", json_integer(target_id));
    const char *tt = desktop_id ? "desktop" : "server";
    const char *tid = arena_printf(a, "%lld", desktop_id ? desktop_id : server_id);
    if (req->who.user_id)
        return audit_write(req, audit_action, tt, tid, strcmp(state, "failed") != 0, sum);
    return audit_write_as(req, 0, "system", audit_action, tt, tid, strcmp(state, "failed") != 0,
                          sum);
}

/* ---- the plan ---- */

typedef struct psrv {
    long long id;
    const char *hostname, *state, *power_state, *mac;
    bool online, maintenance, hb_after;
    long long changed_age, empty_age; /* -1: NULL */
    int cores, max_desktops, desktops, running;
    long long memory, nic, mem;
    long long busy, sessions, tasks;
    bool empty;
    long long free; /* desktop slots free (an off server: what it would bring) */
} psrv;

typedef struct pstep {
    const char *action; /* wake, power_off */
    const psrv *s;
    const char *reason;
} pstep;

typedef struct pplan {
    power_settings set;
    psrv *s;
    size_t n;
    long long need, free_on, on, min_on, sched_min, inflight;
    time_t next_peak;
    pstep steps[POWER_PLAN_STEPS];
    size_t nsteps;
} pplan;

static long long age(const bic_rows *r, size_t i, size_t c)
{
    return rows_str(r, i, c) ? rows_int(r, i, c) : -1;
}

/* Free desktop slots of s under the capacity rules, desktops of typical_mib each. */
static long long slots_free(const psrv *s, const pl_rules *rules, long long typical_mib)
{
    long long cap = rules->max_per_server;
    if (s->max_desktops > 0 && s->max_desktops < cap) cap = s->max_desktops;
    long long c = (long long)rules->per_core * s->cores;
    if (c < cap) cap = c;
    long long mbps = s->nic < 1000 ? 1000 : s->nic;
    c = (long long)rules->per_gbps * mbps / 1000;
    if (c < cap) cap = c;
    long long pct = rules->mem_overcommit_pct > 0 ? rules->mem_overcommit_pct : 100;
    long long avail = (s->memory - rules->host_reserve_mib) * pct / 100 - s->mem;
    if (typical_mib > 0) {
        c = s->desktops + (avail > 0 ? avail / typical_mib : 0);
        if (c < cap) cap = c;
    }
    return cap > s->desktops ? cap - s->desktops : 0;
}

static void add_step(bic_arena *a, pplan *p, const char *action, const psrv *s, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));
static void add_step(bic_arena *a, pplan *p, const char *action, const psrv *s, const char *fmt,
                     ...)
{
    if (p->nsteps == POWER_PLAN_STEPS) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    p->steps[p->nsteps++] = (pstep){action, s, arena_strdup(a, buf)};
}

/* Loads the module's servers and needs into p and decides what to do now. */
static bic_err plan_make(bic_db *db, bic_arena *a, const bic_config *cfg, const power_settings *set,
                         time_t now, pplan *p)
{
    memset(p, 0, sizeof(*p));
    p->set = *set;
    bic_rows r, need;
    bic_err e = DB_EXEC(db, a, STMT_power_servers, &r, P_INT(set->module_id));
    if (e == BIC_E_OK) e = DB_EXEC(db, a, STMT_power_pool_need, &need, P_INT(set->module_id));
    if (e != BIC_E_OK) return e;
    long long typical = 0;
    for (size_t i = 0; i < need.nrows; i++) {
        p->need += rows_int(&need, i, 1);
        if (rows_int(&need, i, 2) > typical) typical = rows_int(&need, i, 2);
    }
    p->need += set->spare_slots;
    pl_rules rules;
    pools_rules(cfg, &rules);
    p->s = arena_alloc(a, (r.nrows + 1) * sizeof(*p->s));
    p->n = r.nrows;
    for (size_t i = 0; i < r.nrows; i++) {
        psrv *s = &p->s[i];
        *s = (psrv){.id = rows_int(&r, i, 0),
                    .hostname = rows_str(&r, i, 1),
                    .state = rows_str(&r, i, 2),
                    .online = !strcmp(rows_str(&r, i, 2), "online"),
                    .maintenance = rows_int(&r, i, 3) != 0,
                    .power_state = rows_str(&r, i, 4),
                    .changed_age = age(&r, i, 5),
                    .empty_age = age(&r, i, 6),
                    .cores = (int)rows_int(&r, i, 7),
                    .memory = rows_int(&r, i, 8),
                    .nic = rows_int(&r, i, 9),
                    .max_desktops = (int)rows_int(&r, i, 10),
                    .desktops = (int)rows_int(&r, i, 11),
                    .mem = rows_int(&r, i, 12),
                    .busy = rows_int(&r, i, 13),
                    .sessions = rows_int(&r, i, 14),
                    .tasks = rows_int(&r, i, 15),
                    .mac = rows_str(&r, i, 16),
                    .hb_after = rows_int(&r, i, 17) != 0,
                    .running = (int)rows_int(&r, i, 18)};
        s->empty = s->busy == 0 && s->sessions == 0 && s->tasks == 0 && s->running == 0;
        s->free = slots_free(s, &rules, typical);
    }
    p->sched_min =
        power_schedule_min(set->schedule, now, set->tz_offset_min, set->peak_lead_s,
                           set->peak_hold_s, &p->next_peak);
    p->min_on = set->min_on > p->sched_min ? set->min_on : p->sched_min;
    /* capacity that is on, or coming */
    for (size_t i = 0; i < p->n; i++) {
        psrv *s = &p->s[i];
        if (s->maintenance) continue;
        bool on = !strcmp(s->power_state, "on") && s->online;
        bool waking = !strcmp(s->power_state, "waking");
        if (waking || !strcmp(s->power_state, "powering_off")) p->inflight++;
        if (on || waking) {
            p->on++;
            p->free_on += s->free;
        }
    }
    long long on = p->on, free_on = p->free_on, inflight = p->inflight;
    /* wake: the off servers with the most room first (then the lowest id) */
    bool woke = false;
    while ((free_on < p->need || on < p->min_on) && inflight < set->max_parallel) {
        psrv *best = NULL;
        for (size_t i = 0; i < p->n; i++) {
            psrv *s = &p->s[i];
            if (s->maintenance || strcmp(s->power_state, "off")) continue;
            bool planned = false;
            for (size_t k = 0; k < p->nsteps; k++)
                if (p->steps[k].s == s) planned = true;
            if (planned) continue;
            if (!best || s->free > best->free) best = s;
        }
        if (!best) break;
        if (on < p->min_on)
            add_step(a, p, "wake", best, "%lld servers on, %s%lld wanted", on,
                     p->sched_min >= p->min_on && p->sched_min > set->min_on ? "the schedule has "
                                                                              : "",
                     p->min_on);
        else
            add_step(a, p, "wake", best, "%lld free desktop slots on powered-on servers, %lld needed",
                     free_on, p->need);
        on++;
        free_on += best->free;
        inflight++;
        woke = true;
    }
    if (woke) return BIC_E_OK;
    /* power off: empty long enough, and the rest still meets the need; the highest id first */
    for (size_t k = p->n; k-- > 0 && inflight < set->max_parallel;) {
        psrv *s = &p->s[k];
        if (s->maintenance || strcmp(s->power_state, "on") || !s->online || !s->empty) continue;
        if (s->empty_age < set->empty_hold_s) continue;
        if (s->changed_age >= 0 && s->changed_age < set->empty_hold_s) continue;
        if (on - 1 < p->min_on || free_on - s->free < p->need) continue;
        add_step(a, p, "power_off", s,
                 "empty for %lld s; %lld servers and %lld free slots stay on (%lld and %lld needed)",
                 s->empty_age, on - 1, free_on - s->free, p->min_on, p->need);
        on--;
        free_on -= s->free;
        inflight++;
    }
    return BIC_E_OK;
}

static json_t *time_json(time_t t)
{
    if (!t) return json_null();
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *plan_json(const pplan *p)
{
    json_t *servers = json_array(), *actions = json_array();
    for (size_t i = 0; i < p->n; i++) {
        const psrv *s = &p->s[i];
        json_array_append_new(
            servers,
            json_pack("{s:I, s:s, s:s, s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:s?, s:o}", "id",
                      (json_int_t)s->id, "hostname", s->hostname, "state", s->state, "power_state",
                      s->power_state, "maintenance", s->maintenance, "empty", s->empty, "desktops",
                      (json_int_t)s->desktops, "sessions", (json_int_t)s->sessions, "free_slots",
                      (json_int_t)s->free, "empty_for_s", (json_int_t)s->empty_age, "wol_mac",
                      s->mac, "power_changed_s",
                      s->changed_age >= 0 ? json_integer(s->changed_age) : json_null()));
    }
    for (size_t k = 0; k < p->nsteps; k++)
        json_array_append_new(actions, json_pack("{s:s, s:I, s:s, s:s}", "action",
                                                 p->steps[k].action, "server_id",
                                                 (json_int_t)p->steps[k].s->id, "hostname",
                                                 p->steps[k].s->hostname, "reason",
                                                 p->steps[k].reason));
    return json_pack("{s:I, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "module_id",
                     (json_int_t)p->set.module_id, "enabled", p->set.enabled, "dry_run",
                     p->set.dry_run, "need_slots", (json_int_t)p->need, "free_slots",
                     (json_int_t)p->free_on, "on", (json_int_t)p->on, "min_on",
                     (json_int_t)p->min_on, "scheduled_min", (json_int_t)p->sched_min, "in_flight",
                     (json_int_t)p->inflight, "next_peak", time_json(p->next_peak), "servers",
                     servers, "actions", actions);
}

bic_err power_plan_json(bic_db *db, bic_arena *a, const bic_config *cfg, long long module_id,
                        json_t **out)
{
    power_settings set;
    bic_err e = power_settings_load(db, a, module_id, &set);
    if (e != BIC_E_OK) return e;
    pplan *p = arena_alloc(a, sizeof(*p));
    e = plan_make(db, a, cfg, &set, time(NULL), p);
    if (e != BIC_E_OK) return e;
    *out = plan_json(p);
    return BIC_E_OK;
}

/* ---- carrying the plan out ---- */

struct pw {
    bic_req req;
    const bic_config *cfg;
    pplan *p;
    const pstep *step;
    const char *outcome; /* wake: NULL, or why the packet could not be sent */
};

static bic_err transitions_tx(bic_db *db, void *arg)
{
    struct pw *c = arg;
    bic_arena *a = c->req.arena;
    bic_rows r;
    bic_err e = DB_EXEC(db, a, STMT_power_transitions, &r);
    for (size_t i = 0; e == BIC_E_OK && i < r.nrows; i++) {
        long long id = rows_int(&r, i, 0), module = rows_int(&r, i, 1), secs = rows_int(&r, i, 4);
        const char *ps = rows_str(&r, i, 2), *st = rows_str(&r, i, 3);
        bool hb = rows_int(&r, i, 5) != 0 && !strcmp(st, "online");
        const char *task = rows_str(&r, i, 7), *terr = rows_str(&r, i, 8);
        const char *to = NULL, *outcome = NULL, *why = NULL;
        if (!strcmp(ps, "waking")) {
            if (hb) {
                to = "on", outcome = "done";
                why = arena_printf(a, "heartbeating again %lld s after the wake", secs);
            } else if (secs > rows_int(&r, i, 6)) {
                to = "off", outcome = "failed";
                why = arena_printf(a, "no heartbeat within %lld s of the wake", secs);
            }
        } else if (!strcmp(ps, "powering_off")) {
            if (task && !strcmp(task, "failed")) {
                to = "on", outcome = "failed";
                why = arena_printf(a, "host.power_off failed: %.400s", terr ? terr : "");
            } else if (!strcmp(st, "offline")) {
                to = "off", outcome = "done";
                why = arena_printf(a, "stopped heartbeating %lld s after host.power_off", secs);
            }
        } else if (!strcmp(ps, "off") && hb) {
            to = "on";
            why = "heartbeating again (powered on outside the power loop)";
        }
        if (!to) continue;
        e = DB_EXEC(db, a, STMT_power_set_state, NULL, P_STR(to), P_INT(id));
        bic_rows run;
        if (e == BIC_E_OK) e = DB_EXEC(db, a, STMT_aa_power_running, &run, P_INT(id));
        if (e == BIC_E_OK && outcome && run.nrows == 1)
            e = DB_EXEC(db, a, STMT_aa_update, NULL, P_STR(outcome), P_STR(why),
                        P_INT(rows_int(&run, 0, 0)));
        if (e == BIC_E_OK)
            e = DB_EXEC(db, a, STMT_event_insert, NULL, P_INT(id), P_NULL,
                        P_STR(arena_printf(a, "power.%s", to)), P_STR(why));
        if (e == BIC_E_OK)
            e = audit_write_as(&c->req, 0, "system", arena_printf(a, "power.state_%s", to),
                               "server", arena_printf(a, "%lld", id),
                               !outcome || strcmp(outcome, "failed"),
                               json_pack("{s:I, s:s, s:s, s:s}", "module_id", (json_int_t)module,
                                         "from", ps, "to", to, "reason", why));
        if (e == BIC_E_OK) LOG_INFO(NULL, "power: server %lld %s -> %s: %s", id, ps, to, why);
    }
    return e;
}

static bic_err mark_empty_tx(bic_db *db, void *arg)
{
    struct pw *c = arg;
    bic_err e = BIC_E_OK;
    for (size_t i = 0; e == BIC_E_OK && i < c->p->n; i++) {
        const psrv *s = &c->p->s[i];
        bool empty = s->empty && s->online && !strcmp(s->power_state, "on");
        if (empty == (s->empty_age >= 0)) continue;
        e = DB_EXEC(db, c->req.arena, STMT_power_empty_mark, NULL, P_INT(empty), P_INT(s->id));
    }
    return e;
}

/* The power-off of one server in the caller's transaction: checked again under the row lock. */
static bic_err off_tx(bic_db *db, void *arg)
{
    struct pw *c = arg;
    bic_arena *a = c->req.arena;
    const psrv *s = c->step->s;
    const power_settings *set = &c->p->set;
    if (set->dry_run)
        return power_record(&c->req, set->module_id, "power", "power_off", s->id, 0, 0, "planned",
                            true, c->step->reason, NULL);
    bic_rows r;
    bic_err e = DB_EXEC(db, a, STMT_power_server_lock, &r, P_INT(s->id));
    if (e != BIC_E_OK || r.nrows != 1) return e;
    if (strcmp(rows_str(&r, 0, 4), "on") || rows_int(&r, 0, 5) || rows_int(&r, 0, 6) ||
        rows_int(&r, 0, 7) || rows_int(&r, 0, 9))
        return BIC_E_OK; /* something arrived since the plan: not empty any more */
    e = DB_EXEC(db, a, STMT_task_insert, NULL, P_INT(s->id), P_STR("host.power_off"), P_STR("{}"),
                P_INT(c->cfg->agents_task_max_attempts), P_STR("power"));
    if (e == BIC_E_OK) e = DB_EXEC(db, a, STMT_power_set_state, NULL, P_STR("powering_off"), P_INT(s->id));
    if (e == BIC_E_OK)
        e = power_record(&c->req, set->module_id, "power", "power_off", s->id, 0, 0, "running",
                         false, c->step->reason, NULL);
    return e;
}

static bic_err wake_tx(bic_db *db, void *arg)
{
    struct pw *c = arg;
    const psrv *s = c->step->s;
    const power_settings *set = &c->p->set;
    if (set->dry_run)
        return power_record(&c->req, set->module_id, "power", "wake", s->id, 0, 0, "planned", true,
                            c->step->reason, NULL);
    if (c->outcome)
        return power_record(&c->req, set->module_id, "power", "wake", s->id, 0, 0, "failed", false,
                            arena_printf(c->req.arena, "%s; cannot wake: %s", c->step->reason,
                                         c->outcome),
                            NULL);
    bic_err e = DB_EXEC(db, c->req.arena, STMT_power_set_state, NULL, P_STR("waking"), P_INT(s->id));
    if (e == BIC_E_OK)
        e = power_record(&c->req, set->module_id, "power", "wake", s->id, 0, 0, "running", false,
                         c->step->reason, NULL);
    return e;
}

#define BMC_WAKE_MS 5000 /* the longest one BMC call of a wake may take */

/*
 * Powers s on through its BMC (Redfish "On" / IPMI "chassis power on"); NULL, or why not
 * (arena). *none is set when s has no BMC configured.
 */
static const char *bmc_wake(struct pw *c, const psrv *s, bool *none)
{
    bic_arena *a = c->req.arena;
    bic_rows r;
    *none = false;
    if (DB_EXEC(c->req.db, a, STMT_power_server_bmc, &r, P_INT(s->id)) != BIC_E_OK || !r.nrows)
        return "its BMC settings could not be read";
    char why[512] = "";
    fence_target t;
    int got = recovery_bmc_target(&c->req, a, s->id, rows_str(&r, 0, 0), rows_str(&r, 0, 1),
                                  rows_str(&r, 0, 2), rows_str(&r, 0, 3),
                                  rows_str(&r, 0, 3) ? r.len[3] : 0, rows_str(&r, 0, 4),
                                  BMC_WAKE_MS, &t, why, sizeof(why));
    if (got == 1) {
        *none = true;
        return "no BMC is configured for it";
    }
    if (got < 0) return arena_strdup(a, why);
    int rc = fence_power_on(&t, why, sizeof(why));
    recovery_bmc_wipe(&t);
    if (rc < 0) return arena_printf(a, "the BMC (%s): %s", rows_str(&r, 0, 0), why);
    LOG_INFO(NULL, "power: BMC power-on of server %lld (%s): %s", s->id, s->hostname, why);
    return NULL;
}

/*
 * Sends the wake of s: wake_method "wol" a Wake-on-LAN packet, "bmc" a BMC power-on, "auto"
 * the BMC when s has one configured, else Wake-on-LAN. NULL, or why it could not be sent.
 */
static const char *send_wake(struct pw *c, const power_settings *set, const psrv *s)
{
    bic_arena *a = c->req.arena;
    if (strcmp(set->wake_method, "wol") != 0) {
        bool none;
        const char *why = bmc_wake(c, s, &none);
        if (!none || !strcmp(set->wake_method, "bmc")) return why;
    }
    if (!s->mac || !*s->mac) return "no MAC address to send Wake-on-LAN to";
    char err[256];
    if (power_wol_send(s->mac, set->wol_broadcast, set->wol_port, err, sizeof(err)) < 0)
        return arena_strdup(a, err);
    LOG_INFO(NULL, "power: Wake-on-LAN for server %lld (%s, %s) sent to %s:%lld", s->id,
             s->hostname, s->mac, set->wol_broadcast, set->wol_port);
    return NULL;
}

static void module_pass(struct pw *c, long long module_id)
{
    bic_db *db = c->req.db;
    bic_arena *a = c->req.arena;
    power_settings set;
    if (power_settings_load(db, a, module_id, &set) != BIC_E_OK || !set.enabled) return;
    c->p = arena_alloc(a, sizeof(*c->p));
    if (plan_make(db, a, c->cfg, &set, time(NULL), c->p) != BIC_E_OK) return;
    if (db_tx(db, mark_empty_tx, c) != BIC_E_OK) LOG_WARN(NULL, "power: marking empty servers failed");
    for (size_t k = 0; k < c->p->nsteps; k++) {
        c->step = &c->p->steps[k];
        c->outcome = NULL;
        bic_err e;
        if (!strcmp(c->step->action, "wake")) {
            if (!set.dry_run) c->outcome = send_wake(c, &set, c->step->s);
            e = db_tx(db, wake_tx, c);
        } else {
            e = db_tx(db, off_tx, c);
        }
        if (e != BIC_E_OK)
            LOG_WARN(NULL, "power: %s of server %lld failed", c->step->action, c->step->s->id);
    }
}

bool power_loop_begin(power_loop *l, long long tick_ms, bic_req *req, bic_db *db, bic_arena *a,
                      const bic_config *cfg)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms = (now.tv_sec - l->last.tv_sec) * 1000 + (now.tv_nsec - l->last.tv_nsec) / 1000000;
    if (l->last.tv_sec && ms < tick_ms) return false;
    l->last = now;
    memset(req, 0, sizeof(*req));
    req->db = db;
    req->arena = a;
    req->cfg = cfg;
    req->remote_addr = "";
    snprintf(req->request_id, sizeof(req->request_id), "ctl-%s", l->name);
    if (!l->last_prune.tv_sec || now.tv_sec - l->last_prune.tv_sec >= 3600) {
        DB_EXEC(db, a, STMT_aa_prune, NULL, P_STR(l->name));
        l->last_prune = now;
    }
    return true;
}

void power_tick(bic_db *db, bic_arena *a, const bic_config *cfg)
{
    static power_loop loop = {"power"};
    struct pw c = {.cfg = cfg};
    if (!power_loop_begin(&loop, cfg->power_tick_ms, &c.req, db, a, cfg)) return;
    if (db_tx(db, transitions_tx, &c) != BIC_E_OK) LOG_WARN(NULL, "power: transitions failed");
    bic_rows mods;
    if (DB_EXEC0(db, a, STMT_power_modules_enabled, &mods) != BIC_E_OK) return;
    for (size_t i = 0; i < mods.nrows; i++)
        module_pass(&c, rows_int(&mods, i, 0));
}

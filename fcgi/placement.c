#include "placement.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- arithmetic that cannot overflow (inputs come from agents and the database) ---- */

static long long nonneg(long long v)
{
    return v < 0 ? 0 : v;
}

static long long sat_add(long long a, long long b)
{
    long long r;
    if (!__builtin_add_overflow(a, b, &r)) return r;
    return a < 0 ? LLONG_MIN : LLONG_MAX;
}

static long long sat_mul(long long a, long long b)
{
    long long r;
    if (!__builtin_mul_overflow(a, b, &r)) return r;
    return (a < 0) != (b < 0) ? LLONG_MIN : LLONG_MAX;
}

static int overcommit_pct(const pl_rules *rules)
{
    return rules->mem_overcommit_pct > 0 ? rules->mem_overcommit_pct : 100;
}

/* ceil(x * 100 / pct) for x >= 0, split so that x * 100 is never formed */
static long long shared_cost(long long x, int pct)
{
    return sat_add(sat_mul(x / pct, 100), ((x % pct) * 100 + pct - 1) / pct);
}

/* ---- the rules ---- */

/* What placing r on s would mean, computed once for fits and for load. */
struct eval {
    long long after;     /* desktops once r's desktop is added */
    long long cap_desk;  /* min(max_per_server, max_desktops) */
    long long cap_cores; /* per_core * cores */
    long long cap_nic;   /* per_gbps * max(nic_mbps, 1000) / 1000 */
    long long mem_used;  /* locked + ceil(shared * 100 / pct), r included */
    long long mem_avail; /* memory_mib - host_reserve_mib */
};

static void evaluate(const pl_server *s, const pl_request *r, const pl_rules *rules, struct eval *e)
{
    long long mem = nonneg(r->memory_mib);
    e->after = (long long)s->desktops + 1;
    e->cap_desk = rules->max_per_server;
    if (s->max_desktops > 0 && s->max_desktops < e->cap_desk) e->cap_desk = s->max_desktops;
    e->cap_cores = (long long)rules->per_core * s->cores;
    long long mbps = s->nic_mbps < 1000 ? 1000 : s->nic_mbps;
    e->cap_nic = sat_add(sat_mul(rules->per_gbps, mbps / 1000),
                         (long long)rules->per_gbps * (mbps % 1000) / 1000);
    long long locked = sat_add(nonneg(s->mem_locked_mib), r->vf ? mem : 0);
    long long shared = sat_add(nonneg(s->mem_shared_mib), r->vf ? 0 : mem);
    e->mem_used = sat_add(locked, shared_cost(shared, overcommit_pct(rules)));
    e->mem_avail = sat_add(nonneg(s->memory_mib), -nonneg(rules->host_reserve_mib));
}

static bool module_bound(long long module_id, const pl_request *r)
{
    for (size_t i = 0; i < r->nmodules; i++)
        if (r->modules[i] == module_id) return true;
    return false;
}

static pl_limit judge(const pl_server *s, const pl_request *r, const struct eval *e)
{
    if (!s->online) return PL_OFFLINE;
    if (s->maintenance) return PL_MAINTENANCE;
    if (!module_bound(s->module_id, r)) return PL_OTHER_MODULE;
    if (e->after > e->cap_desk) return PL_MAX_DESKTOPS;
    if (e->after > e->cap_cores) return PL_CORES;
    if (e->after > e->cap_nic) return PL_NIC;
    if (e->mem_used > e->mem_avail) return PL_MEMORY;
    if (r->vf && s->vfs_free < 1) return PL_NO_VF;
    return PL_FITS;
}

pl_limit placement_fits(const pl_server *s, const pl_request *r, const pl_rules *rules)
{
    struct eval e;
    evaluate(s, r, rules, &e);
    return judge(s, r, &e);
}

static double ratio(long long num, long long den)
{
    if (den > 0) return (double)num / (double)den;
    return num > 0 ? (double)LLONG_MAX : 0.0;
}

/* Only meaningful for a server that fits: every ratio is then in [0, 1]. */
static double load_after(const struct eval *e)
{
    double l = ratio(e->after, e->cap_desk);
    double c = ratio(e->after, e->cap_cores);
    double n = ratio(e->after, e->cap_nic);
    double m = ratio(e->mem_used, e->mem_avail);
    if (c > l) l = c;
    if (n > l) l = n;
    if (m > l) l = m;
    return l;
}

const char *placement_limit_text(pl_limit l)
{
    static const char *const text[PL__MAX] = {
        [PL_FITS] = "fits",
        [PL_OFFLINE] = "offline",
        [PL_MAINTENANCE] = "in maintenance",
        [PL_OTHER_MODULE] = "in a module not bound to the pool",
        [PL_MAX_DESKTOPS] = "at its desktop limit",
        [PL_CORES] = "at its desktops-per-core limit",
        [PL_NIC] = "at its desktops-per-Gbps limit",
        [PL_MEMORY] = "memory full",
        [PL_NO_VF] = "no free SR-IOV VF",
    };
    return (unsigned)l < PL__MAX ? text[l] : "unknown limit";
}

/* ---- the why text ---- */

/* A bounded string builder: keeps what fits and remembers that something did not. */
typedef struct {
    char *p;
    size_t cap, len;
    bool over;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_add(sbuf *b, const char *fmt, ...)
{
    if (b->over || b->cap == 0) {
        b->over = true;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->over = true;
        b->len = strlen(b->p);
    } else {
        b->len += (size_t)n;
    }
}

static void sb_rewind(sbuf *b, size_t len)
{
    b->len = len;
    b->over = false;
    if (b->cap) b->p[len] = '\0';
}

/* Ends a text that did not fit with "..." on a UTF-8 character boundary. */
static void sb_cut(sbuf *b)
{
    if (b->cap == 0) return;
    const char *dots = b->cap >= 4 ? "..." : "";
    size_t pos = b->len;
    if (pos > b->cap - 1 - strlen(dots)) pos = b->cap - 1 - strlen(dots);
    if (pos > 0) { /* drop a character that vsnprintf or pos cut in two */
        size_t lead = pos - 1;
        while (lead > 0 && ((unsigned char)b->p[lead] & 0xC0) == 0x80)
            lead--;
        unsigned char c = (unsigned char)b->p[lead];
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (lead + need > pos) pos = lead;
    }
    memcpy(b->p + pos, dots, strlen(dots) + 1);
    b->len = pos + strlen(dots);
    b->over = false;
}

/* Limits as the why text groups them: pl_limit values plus "core count unknown". */
enum { WK_CORES_UNKNOWN = PL__MAX, WK__MAX };

/* Order of equally common limits. */
static const int wk_order[] = {PL_OFFLINE, PL_MAINTENANCE, PL_MAX_DESKTOPS, WK_CORES_UNKNOWN,
                               PL_CORES,   PL_NIC,         PL_MEMORY,       PL_NO_VF};
#define WK_N (sizeof(wk_order) / sizeof(wk_order[0]))

struct mod_why {
    const char *name;
    char idname[24];
    int servers;
    int count[WK__MAX];
    long long cap_min, cap_max; /* desktop caps of the servers at PL_MAX_DESKTOPS */
    int sorted[WK_N];           /* keys with count > 0, most common first */
    int nkeys;
};

static void mod_why_fill(struct mod_why *w, size_t mi, const pl_server *s, size_t n,
                         const pl_request *r, const pl_rules *rules)
{
    long long id = r->modules[mi];
    memset(w, 0, sizeof(*w));
    w->name = r->module_names ? r->module_names[mi] : NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i].module_id != id) continue;
        if (!w->name) w->name = s[i].module_name;
        struct eval e;
        evaluate(&s[i], r, rules, &e);
        pl_limit l = judge(&s[i], r, &e);
        if (l == PL_FITS || l == PL_OTHER_MODULE) continue; /* cannot happen on refusal */
        int key = l == PL_CORES && s[i].cores <= 0 ? WK_CORES_UNKNOWN : (int)l;
        if (l == PL_MAX_DESKTOPS) {
            if (!w->count[key] || e.cap_desk < w->cap_min) w->cap_min = e.cap_desk;
            if (!w->count[key] || e.cap_desk > w->cap_max) w->cap_max = e.cap_desk;
        }
        w->count[key]++;
        w->servers++;
    }
    if (!w->name) {
        snprintf(w->idname, sizeof(w->idname), "#%lld", id);
        w->name = w->idname;
    }
    for (size_t k = 0; k < WK_N; k++) {
        int key = wk_order[k];
        if (!w->count[key]) continue;
        int j = w->nkeys++;
        while (j > 0 && w->count[w->sorted[j - 1]] < w->count[key]) {
            w->sorted[j] = w->sorted[j - 1];
            j--;
        }
        w->sorted[j] = key;
    }
}

static void phrase(sbuf *b, int key, const struct mod_why *w, const pl_rules *rules)
{
    switch (key) {
    case PL_OFFLINE:
        sb_add(b, "offline");
        break;
    case PL_MAINTENANCE:
        sb_add(b, "in maintenance");
        break;
    case PL_MAX_DESKTOPS:
        if (w->cap_min == w->cap_max)
            sb_add(b, "at %lld desktops", w->cap_min);
        else
            sb_add(b, "at %lld-%lld desktops", w->cap_min, w->cap_max);
        break;
    case WK_CORES_UNKNOWN:
        sb_add(b, "with unknown core count");
        break;
    case PL_CORES:
        sb_add(b, "at %d desktops per core", rules->per_core);
        break;
    case PL_NIC:
        sb_add(b, "at %d desktops per Gbps of NIC", rules->per_gbps);
        break;
    case PL_MEMORY:
        sb_add(b, "with memory full (overcommit %d%%)", overcommit_pct(rules));
        break;
    case PL_NO_VF:
        sb_add(b, "with no free SR-IOV VF");
        break;
    }
}

/* "module m1: 6 servers at 100 desktops, 4 offline"; brief: only the most common limit. */
static void mod_why_text(sbuf *b, const struct mod_why *w, const pl_rules *rules, bool brief)
{
    sb_add(b, "module %s: ", w->name);
    if (w->nkeys == 0) {
        sb_add(b, "no servers");
        return;
    }
    int first = w->count[w->sorted[0]];
    if (w->nkeys == 1 && w->servers > 1)
        sb_add(b, "all %d servers ", first);
    else
        sb_add(b, "%d server%s ", first, first == 1 ? "" : "s");
    phrase(b, w->sorted[0], w, rules);
    if (brief) {
        if (w->nkeys > 1) sb_add(b, ", %d other", w->servers - first);
        return;
    }
    for (int k = 1; k < w->nkeys; k++) {
        sb_add(b, ", %d ", w->count[w->sorted[k]]);
        phrase(b, w->sorted[k], w, rules);
    }
}

static bool module_repeated(const pl_request *r, size_t mi)
{
    for (size_t j = 0; j < mi; j++)
        if (r->modules[j] == r->modules[mi]) return true;
    return false;
}

/* Room kept for "; and N more modules" while modules are still to come. */
#define WHY_TAIL_ROOM 32

static void why_text(const pl_server *s, size_t n, const pl_request *r, const pl_rules *rules,
                     sbuf *b)
{
    if (r->nmodules == 0) {
        sb_add(b, "no module is bound to this pool");
        if (b->over) sb_cut(b);
        return;
    }
    size_t unique = 0;
    for (size_t mi = 0; mi < r->nmodules; mi++)
        if (!module_repeated(r, mi)) unique++;
    /* level 0: every limit; 1: the most common one per module; 2: as many modules as fit */
    for (int level = 0; level < 3; level++) {
        sb_rewind(b, 0);
        size_t done = 0;
        for (size_t mi = 0; mi < r->nmodules; mi++) {
            if (module_repeated(r, mi)) continue;
            struct mod_why w;
            mod_why_fill(&w, mi, s, n, r, rules);
            size_t mark = b->len;
            if (done) sb_add(b, "; ");
            mod_why_text(b, &w, rules, level > 0);
            done++;
            if (level < 2) continue;
            size_t left = unique - done;
            if (!b->over && (left == 0 || b->cap - b->len > WHY_TAIL_ROOM)) continue;
            if (done > 1 || !b->over) {
                if (done > 1) {
                    sb_rewind(b, mark);
                    left++;
                }
                sb_add(b, "; and %zu more module%s", left, left == 1 ? "" : "s");
            }
            if (b->over) sb_cut(b);
            return;
        }
        if (!b->over) return;
    }
}

long placement_choose(const pl_server *s, size_t n, const pl_request *r, const pl_rules *rules,
                      char *why, size_t whylen)
{
    long best = -1;
    double best_load = 0;
    for (size_t i = 0; i < n; i++) {
        struct eval e;
        evaluate(&s[i], r, rules, &e);
        if (judge(&s[i], r, &e) != PL_FITS) continue;
        double load = load_after(&e);
        bool better;
        if (best < 0)
            better = true;
        else if (load != best_load)
            better = r->policy == PL_PACK ? load > best_load : load < best_load;
        else if (r->policy == PL_SPREAD && s[i].desktops != s[best].desktops)
            better = s[i].desktops < s[best].desktops;
        else
            better = s[i].id < s[best].id;
        if (better) {
            best = (long)i;
            best_load = load;
        }
    }
    sbuf b = {why, whylen, 0, false};
    if (whylen) why[0] = '\0';
    if (best < 0) why_text(s, n, r, rules, &b);
    return best;
}

void placement_commit(pl_server *s, const pl_request *r)
{
    long long mem = nonneg(r->memory_mib);
    if (s->desktops < INT_MAX) s->desktops++;
    if (r->vf) {
        s->mem_locked_mib = sat_add(s->mem_locked_mib, mem);
        if (s->vfs_free > INT_MIN) s->vfs_free--;
    } else {
        s->mem_shared_mib = sat_add(s->mem_shared_mib, mem);
    }
}

/*
 * placement.h - where a pool's next desktop goes: the paper's capacity rules and the
 * spread/pack policies over a snapshot of servers. Pure functions: no database, no
 * allocation, no global state.
 *
 * A server fits a request when all of these hold after the desktop is added:
 *   - it is online and not in maintenance;
 *   - its module is one of the request's modules;
 *   - desktops + 1 <= min(max_per_server, max_desktops or max_per_server);
 *   - desktops + 1 <= per_core * cores;
 *   - desktops + 1 <= per_gbps * max(nic_mbps, 1000) / 1000 (integer division);
 *   - mem_locked + (vf ? memory : 0)
 *       + ceil((mem_shared + (vf ? 0 : memory)) * 100 / mem_overcommit_pct)
 *       <= memory_mib - host_reserve_mib;
 *   - vf: vfs_free >= 1.
 * The first rule that fails, in that order, is the server's pl_limit.
 *
 * A server's load after placing is the highest of desktops/desktop cap,
 * desktops/core cap, desktops/NIC cap and memory used/memory available (each in
 * [0, 1] for a fitting server). Spread picks the lowest load (ties: fewer
 * desktops, then lower id); pack the highest (ties: lower id); then lower index.
 *
 * Memory is in MiB. Negative memory figures count as 0 and sums saturate, so no
 * input can overflow.
 */
#ifndef BIC_PLACEMENT_H
#define BIC_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { PL_SPREAD, PL_PACK } pl_policy;

/* The capacity rules ([pools] configuration, see pools_rules()). */
typedef struct pl_rules {
    int max_per_server;         /* hard cap of desktops per server (paper: 100); the server's
                                   own max_desktops can only lower it */
    int per_core;               /* desktops per physical core (paper: 6) */
    int per_gbps;               /* desktops per 1 Gbps of NIC bandwidth (paper: 50) */
    int mem_overcommit_pct;     /* ordinary desktops' memory may total this % of the host's
                                   available memory (150 = 1.5x); <= 0 counts as 100 */
    long long host_reserve_mib; /* memory kept for the host, never given to desktops */
} pl_rules;

/* One server as placement sees it (pools_server_load() fills these). */
typedef struct pl_server {
    long long id;            /* servers.id: the last tie-break */
    long long module_id;     /* servers.module_id */
    const char *hostname;    /* borrowed; not read by placement */
    const char *module_name; /* borrowed; names the module in the why text (NULL: "#<id>") */
    bool online;             /* servers.state = 'online' */
    bool maintenance;        /* servers.maintenance */
    int cores;               /* physical cores; 0 = unknown → nothing fits (PL_CORES) */
    long long memory_mib;    /* host memory */
    long long nic_mbps;      /* sum of physical NIC speeds; below 1000 (0 = unknown) counts
                                as one 1 Gbps NIC */
    int max_desktops;        /* the server row's own cap; 0 = rules.max_per_server */
    int vfs_free;            /* SR-IOV virtual functions not yet given to a desktop */
    /* current load */
    int desktops;             /* every desktop on it, managed or not */
    long long mem_shared_mib; /* memory of desktops without a VF (overcommittable) */
    long long mem_locked_mib; /* memory of desktops with a VF (never overcommitted: pinned
                                 for DMA) */
} pl_server;

/* One desktop to place (a pool's spec, modules and policy). */
typedef struct pl_request {
    long long memory_mib; /* the spec's memory */
    int vcpus;            /* the spec's vCPUs; not a rule (the paper counts desktops per core) */
    bool vf;              /* needs an SR-IOV VF: vfs_free >= 1, memory not overcommitted */
    const long long *modules;        /* borrowed: the pool's module ids; a server elsewhere never
                                        fits; their order is the order of the why text */
    size_t nmodules;                 /* entries in modules; 0: nothing fits */
    const char *const *module_names; /* optional (NULL), borrowed, parallel to modules: the
                                        names the why text uses, needed for a module with no
                                        server in the list; else the servers' module_name,
                                        else "#<id>" */
    pl_policy policy;
} pl_request;

/* Why a server does not fit, in the order the rules are checked. PL__MAX: sentinel. */
typedef enum {
    PL_FITS,
    PL_OFFLINE,
    PL_MAINTENANCE,
    PL_OTHER_MODULE,
    PL_MAX_DESKTOPS,
    PL_CORES,
    PL_NIC,
    PL_MEMORY,
    PL_NO_VF,
    PL__MAX
} pl_limit;

/* PL_FITS, or the first rule s breaks once r's desktop is added. */
pl_limit placement_fits(const pl_server *s, const pl_request *r, const pl_rules *rules);

/*
 * A short phrase for l without numbers ("offline", "at its desktop limit"); the why
 * text of placement_choose() carries the numbers. Static storage; "unknown limit" for
 * a value out of range.
 */
const char *placement_limit_text(pl_limit l);

/*
 * Index of the server r's desktop goes to under r->policy, or -1 when none fits.
 * why (whylen bytes, may be NULL when whylen is 0) receives "" on success, else the
 * reason per bound module in r->modules order, most common limit first, e.g.
 *   "module m1: 6 servers at 100 desktops, 4 offline; module m2: all 10 servers at
 *    6 desktops per core", "module m1: no servers", "no module is bound to this pool".
 * The text is always NUL-terminated valid UTF-8 (given valid names) shorter than
 * whylen; when the full text would not fit it keeps only each module's most common
 * limit, then ends with "; and N more modules" (or "...").
 */
long placement_choose(const pl_server *s, size_t n, const pl_request *r, const pl_rules *rules,
                      char *why, size_t whylen);

/* Adds r's desktop to s (call after choosing, so later choices in one pass see it). */
void placement_commit(pl_server *s, const pl_request *r);

#endif

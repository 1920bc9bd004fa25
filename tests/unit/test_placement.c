/*
 * test_placement.c - fcgi/placement.c: every capacity rule at its boundary, spread and
 * pack, the why text, and random fleets filled until refused against an independent
 * checker written here from the rules in placement.h.
 */
#include "bic_test.h"

#include <limits.h>
#include <time.h>

#include "placement.h"

/* SRV(...) and RULES(...) override fields of a base server and the paper's rules */
#pragma GCC diagnostic ignored "-Woverride-init"

/* Fits easily: 100 desktops by the rules, 192 by cores, 200 by NIC, 1 TiB of memory. */
#define SRV(...)                                                                                   \
    {                                                                                              \
        .id = 1, .module_id = 1, .hostname = "s1", .module_name = "m1", .online = true,            \
        .cores = 32, .memory_mib = 1048576, .nic_mbps = 4000, .vfs_free = 8, __VA_ARGS__           \
    }
#define RULES(...)                                                                                 \
    {                                                                                              \
        .max_per_server = 100, .per_core = 6, .per_gbps = 50, .mem_overcommit_pct = 150,           \
        __VA_ARGS__                                                                                \
    }

static const long long mods_12[] = {1, 2};

static pl_request req(long long memory, bool vf, pl_policy policy, const long long *mods,
                      size_t nmods)
{
    pl_request r = {.memory_mib = memory,
                    .vcpus = 2,
                    .vf = vf,
                    .modules = mods,
                    .nmodules = nmods,
                    .policy = policy};
    return r;
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xE0) == 0xC0 ? 1
                : (*p & 0xF0) == 0xE0 ? 2
                : (*p & 0xF8) == 0xF0 ? 3
                                      : -1;
        if (n < 0) return false;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xC0) != 0x80) return false;
    }
    return true;
}

/* ---- one row per rule ---- */

struct fit_row {
    const char *name;
    pl_rules rules;
    pl_server s;
    long long memory;
    bool vf;
    pl_limit want;
};

static const struct fit_row fit_rows[] = {
    {"a plain server fits", RULES(), SRV(), 2048, false, PL_FITS},
    {"offline", RULES(), SRV(.online = false), 2048, false, PL_OFFLINE},
    {"in maintenance", RULES(), SRV(.maintenance = true), 2048, false, PL_MAINTENANCE},
    {"offline is reported before maintenance", RULES(), SRV(.online = false, .maintenance = true),
     2048, false, PL_OFFLINE},
    {"a module the pool is not bound to", RULES(), SRV(.module_id = 3), 2048, false,
     PL_OTHER_MODULE},
    {"99 desktops: the 100th fits", RULES(), SRV(.desktops = 99), 2048, false, PL_FITS},
    {"100 desktops: a 101st is over the cap", RULES(), SRV(.desktops = 100), 2048, false,
     PL_MAX_DESKTOPS},
    {"own max_desktops 40: the 40th fits", RULES(), SRV(.max_desktops = 40, .desktops = 39), 2048,
     false, PL_FITS},
    {"own max_desktops 40: a 41st is over", RULES(), SRV(.max_desktops = 40, .desktops = 40), 2048,
     false, PL_MAX_DESKTOPS},
    {"own max_desktops above the rules cannot raise the cap", RULES(),
     SRV(.max_desktops = 150, .desktops = 100), 2048, false, PL_MAX_DESKTOPS},
    {"max_per_server 120 with own cap 0: the 120th fits", RULES(.max_per_server = 120),
     SRV(.cores = 64, .nic_mbps = 10000, .desktops = 119), 2048, false, PL_FITS},
    {"max_per_server 120: a 121st is over", RULES(.max_per_server = 120),
     SRV(.cores = 64, .nic_mbps = 10000, .desktops = 120), 2048, false, PL_MAX_DESKTOPS},
    {"10 cores: the 60th fits", RULES(), SRV(.cores = 10, .desktops = 59), 2048, false, PL_FITS},
    {"10 cores: a 61st is over 6 per core", RULES(), SRV(.cores = 10, .desktops = 60), 2048, false,
     PL_CORES},
    {"unknown cores: nothing fits", RULES(), SRV(.cores = 0), 2048, false, PL_CORES},
    {"per_core 1, 3 cores: the 3rd fits", RULES(.per_core = 1), SRV(.cores = 3, .desktops = 2),
     2048, false, PL_FITS},
    {"per_core 1, 3 cores: a 4th is over", RULES(.per_core = 1), SRV(.cores = 3, .desktops = 3),
     2048, false, PL_CORES},
    {"1 Gbps: the 50th fits", RULES(), SRV(.nic_mbps = 1000, .desktops = 49), 2048, false, PL_FITS},
    {"1 Gbps: a 51st is over", RULES(), SRV(.nic_mbps = 1000, .desktops = 50), 2048, false, PL_NIC},
    {"unknown NIC speed counts as 1 Gbps: the 50th fits", RULES(),
     SRV(.nic_mbps = 0, .desktops = 49), 2048, false, PL_FITS},
    {"unknown NIC speed counts as 1 Gbps: a 51st is over", RULES(),
     SRV(.nic_mbps = 0, .desktops = 50), 2048, false, PL_NIC},
    {"100 Mbps counts as 1 Gbps", RULES(), SRV(.nic_mbps = 100, .desktops = 49), 2048, false,
     PL_FITS},
    {"1999 Mbps floors to 99 desktops: the 99th fits", RULES(),
     SRV(.nic_mbps = 1999, .desktops = 98), 2048, false, PL_FITS},
    {"1999 Mbps floors to 99 desktops: a 100th is over", RULES(),
     SRV(.nic_mbps = 1999, .desktops = 99), 2048, false, PL_NIC},
    {"2.5 Gbps: the 125th fits", RULES(.max_per_server = 200),
     SRV(.nic_mbps = 2500, .desktops = 124), 2048, false, PL_FITS},
    {"2.5 Gbps: a 126th is over", RULES(.max_per_server = 200),
     SRV(.nic_mbps = 2500, .desktops = 125), 2048, false, PL_NIC},
    /* (12952 + 2048) * 100 / 150 = 10000 exactly */
    {"memory at 150% overcommit exactly full fits", RULES(),
     SRV(.memory_mib = 10000, .mem_shared_mib = 12952), 2048, false, PL_FITS},
    {"memory one MiB over 150% overcommit", RULES(),
     SRV(.memory_mib = 10000, .mem_shared_mib = 12953), 2048, false, PL_MEMORY},
    {"host reserve is taken off first: exactly full fits", RULES(.host_reserve_mib = 2000),
     SRV(.memory_mib = 12000, .mem_shared_mib = 12952), 2048, false, PL_FITS},
    {"host reserve is taken off first: one MiB over", RULES(.host_reserve_mib = 2000),
     SRV(.memory_mib = 12000, .mem_shared_mib = 12953), 2048, false, PL_MEMORY},
    {"overcommit 100%: exactly full fits", RULES(.mem_overcommit_pct = 100),
     SRV(.memory_mib = 10000, .mem_shared_mib = 7952), 2048, false, PL_FITS},
    {"overcommit 100%: one MiB over", RULES(.mem_overcommit_pct = 100),
     SRV(.memory_mib = 10000, .mem_shared_mib = 7953), 2048, false, PL_MEMORY},
    {"overcommit 0 counts as 100%: exactly full fits", RULES(.mem_overcommit_pct = 0),
     SRV(.memory_mib = 10000), 10000, false, PL_FITS},
    {"overcommit 0 counts as 100%: one MiB over", RULES(.mem_overcommit_pct = 0),
     SRV(.memory_mib = 10000), 10001, false, PL_MEMORY},
    /* 8634 + ceil(2048 / 1.5) = 8634 + 1366 = 10000 */
    {"VF desktops' memory counts in full: exactly full fits", RULES(),
     SRV(.memory_mib = 10000, .mem_locked_mib = 8634), 2048, false, PL_FITS},
    {"VF desktops' memory counts in full: one MiB over", RULES(),
     SRV(.memory_mib = 10000, .mem_locked_mib = 8635), 2048, false, PL_MEMORY},
    /* ceil(11928 / 1.5) + 2048 = 7952 + 2048 = 10000 */
    {"a VF desktop's memory is not overcommitted: exactly full fits", RULES(),
     SRV(.memory_mib = 10000, .mem_shared_mib = 11928), 2048, true, PL_FITS},
    {"a VF desktop's memory is not overcommitted: one MiB over", RULES(),
     SRV(.memory_mib = 10000, .mem_shared_mib = 11929), 2048, true, PL_MEMORY},
    {"the same load fits a desktop without a VF", RULES(),
     SRV(.memory_mib = 10000, .mem_shared_mib = 11929), 2048, false, PL_FITS},
    {"an empty host takes a VF desktop of all its memory", RULES(), SRV(.memory_mib = 10000), 10000,
     true, PL_FITS},
    {"an empty host refuses a VF desktop one MiB larger", RULES(), SRV(.memory_mib = 10000), 10001,
     true, PL_MEMORY},
    {"an empty host takes an ordinary desktop of 1.5x its memory", RULES(),
     SRV(.memory_mib = 10000), 15000, false, PL_FITS},
    {"an empty host refuses an ordinary desktop one MiB larger", RULES(), SRV(.memory_mib = 10000),
     15001, false, PL_MEMORY},
    {"a reserve larger than the host leaves no memory", RULES(.host_reserve_mib = 20000),
     SRV(.memory_mib = 10000), 1, false, PL_MEMORY},
    {"one free VF fits a VF desktop", RULES(), SRV(.vfs_free = 1), 2048, true, PL_FITS},
    {"no free VF", RULES(), SRV(.vfs_free = 0), 2048, true, PL_NO_VF},
    {"more VFs in use than exist", RULES(), SRV(.vfs_free = -1), 2048, true, PL_NO_VF},
    {"no free VF does not matter without a VF", RULES(), SRV(.vfs_free = 0), 2048, false, PL_FITS},
    {"the desktop cap is reported before memory", RULES(),
     SRV(.desktops = 100, .memory_mib = 1000, .mem_shared_mib = 1500), 2048, false,
     PL_MAX_DESKTOPS},
    {"cores are reported before the NIC", RULES(),
     SRV(.cores = 0, .nic_mbps = 1000, .desktops = 50), 2048, false, PL_CORES},
    {"the NIC is reported before memory", RULES(),
     SRV(.nic_mbps = 1000, .desktops = 50, .memory_mib = 1000), 2048, false, PL_NIC},
    {"memory is reported before the VF", RULES(), SRV(.memory_mib = 1000, .vfs_free = 0), 2048,
     true, PL_MEMORY},
    {"a module is checked before capacity", RULES(), SRV(.module_id = 3, .desktops = 100), 2048,
     false, PL_OTHER_MODULE},
    {"absurd NIC speed and memory saturate and fit", RULES(),
     SRV(.nic_mbps = LLONG_MAX, .memory_mib = LLONG_MAX, .mem_shared_mib = LLONG_MAX / 2), 2048,
     false, PL_FITS},
    {"absurd locked memory saturates and is full", RULES(),
     SRV(.memory_mib = 1LL << 40, .mem_locked_mib = LLONG_MAX), 2048, false, PL_MEMORY},
    /* ceil(4501 / 1.5) = 3001: a negative load must not make room */
    {"negative memory figures count as 0", RULES(),
     SRV(.memory_mib = 3000, .mem_shared_mib = -1000000, .mem_locked_mib = -5), 4501, false,
     PL_MEMORY},
    {"negative memory figures count as 0: exactly full fits", RULES(),
     SRV(.memory_mib = 3000, .mem_shared_mib = -1000000, .mem_locked_mib = -5), 4500, false,
     PL_FITS},
};

static void every_rule_holds_exactly_at_its_boundary_and_breaks_one_over(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fit_rows) / sizeof(fit_rows[0]); i++) {
        const struct fit_row *t = &fit_rows[i];
        pl_request r = req(t->memory, t->vf, PL_SPREAD, mods_12, 2);
        pl_limit got = placement_fits(&t->s, &r, &t->rules);
        if (got != t->want)
            test_fail("%s: got %s, want %s", t->name, placement_limit_text(got),
                      placement_limit_text(t->want));
        char why[512];
        long k = placement_choose(&t->s, 1, &r, &t->rules, why, sizeof(why));
        if (k != (t->want == PL_FITS ? 0 : -1)) test_fail("%s: choose gave %ld", t->name, k);
        if ((why[0] == '\0') != (t->want == PL_FITS)) test_fail("%s: why is '%s'", t->name, why);
    }
}

static void every_limit_has_a_text_and_out_of_range_is_unknown(void **state)
{
    (void)state;
    for (int l = 0; l < PL__MAX; l++) {
        const char *t = placement_limit_text((pl_limit)l);
        assert_non_null(t);
        assert_true(strlen(t) > 0);
        for (int m = 0; m < l; m++)
            assert_string_not_equal(t, placement_limit_text((pl_limit)m));
    }
    assert_string_equal(placement_limit_text(PL_OFFLINE), "offline");
    assert_string_equal(placement_limit_text(PL__MAX), "unknown limit");
    assert_string_equal(placement_limit_text((pl_limit)-1), "unknown limit");
}

/* ---- choosing ---- */

static void spread_takes_the_least_loaded_and_pack_the_most_loaded_that_fits(void **state)
{
    (void)state;
    pl_rules rules = RULES();
    pl_server s[] = {
        SRV(.id = 1, .desktops = 50),                /* 51/100 */
        SRV(.id = 2, .desktops = 10),                /* 11/100 */
        SRV(.id = 3, .desktops = 80),                /* 81/100 */
        SRV(.id = 4, .desktops = 100),               /* full */
        SRV(.id = 5, .desktops = 0, .module_id = 3), /* empty, wrong module */
        SRV(.id = 6, .desktops = 0, .maintenance = true),
    };
    char why[512];
    pl_request r = req(2048, false, PL_SPREAD, mods_12, 2);
    assert_int_equal(placement_choose(s, 6, &r, &rules, why, sizeof(why)), 1);
    assert_string_equal(why, "");
    r.policy = PL_PACK;
    assert_int_equal(placement_choose(s, 6, &r, &rules, why, sizeof(why)), 2);
}

static void load_is_the_highest_ratio_not_the_desktop_count(void **state)
{
    (void)state;
    pl_rules rules = RULES();
    pl_server s[] = {
        /* 31/100 desktops, memory nearly empty */
        SRV(.id = 1, .desktops = 30, .memory_mib = 100000),
        /* 2/100 desktops but memory (0 + 2048) / 1.5 = 1366 of 1500: 0.91 */
        SRV(.id = 2, .desktops = 1, .memory_mib = 1500),
        /* 11 of 12 by cores (2 cores): 0.92 */
        SRV(.id = 3, .desktops = 10, .cores = 2),
        /* 41 of 50 by NIC: 0.82 */
        SRV(.id = 4, .desktops = 40, .nic_mbps = 1000),
    };
    pl_request r = req(2048, false, PL_SPREAD, mods_12, 2);
    assert_int_equal(placement_choose(s, 4, &r, &rules, NULL, 0), 0);
    r.policy = PL_PACK;
    assert_int_equal(placement_choose(s, 4, &r, &rules, NULL, 0), 2);
    s[2].desktops = 11; /* 12/12 by cores: still fits, now the fullest */
    assert_int_equal(placement_choose(s, 4, &r, &rules, NULL, 0), 2);
    s[2].desktops = 12; /* full: pack moves to the memory-bound one */
    assert_int_equal(placement_choose(s, 4, &r, &rules, NULL, 0), 1);
}

static void spread_ties_go_to_fewer_desktops_then_lower_id(void **state)
{
    (void)state;
    pl_rules rules = RULES();
    /* memory (x + 2048) / 1.5 of 10000 dominates both: 0.3 */
    pl_server s[] = {
        SRV(.id = 5, .desktops = 9, .memory_mib = 10000, .mem_shared_mib = 2452),
        SRV(.id = 9, .desktops = 4, .memory_mib = 10000, .mem_shared_mib = 2452),
        SRV(.id = 7, .desktops = 4, .memory_mib = 10000, .mem_shared_mib = 2452),
    };
    pl_request r = req(2048, false, PL_SPREAD, mods_12, 2);
    assert_int_equal(placement_choose(s, 3, &r, &rules, NULL, 0), 2);
    s[2].id = 11;
    assert_int_equal(placement_choose(s, 3, &r, &rules, NULL, 0), 1);
    s[1].desktops = 5;
    assert_int_equal(placement_choose(s, 3, &r, &rules, NULL, 0), 2);
}

static void pack_ties_go_to_the_lower_id_whatever_the_desktops(void **state)
{
    (void)state;
    pl_rules rules = RULES();
    pl_server s[] = {
        SRV(.id = 8, .desktops = 2, .memory_mib = 10000, .mem_shared_mib = 2452),
        SRV(.id = 3, .desktops = 9, .memory_mib = 10000, .mem_shared_mib = 2452),
        SRV(.id = 4, .desktops = 1, .memory_mib = 10000, .mem_shared_mib = 2452),
    };
    pl_request r = req(2048, false, PL_PACK, mods_12, 2);
    assert_int_equal(placement_choose(s, 3, &r, &rules, NULL, 0), 1);
}

static void only_servers_of_the_pools_modules_are_chosen(void **state)
{
    (void)state;
    pl_rules rules = RULES();
    pl_server s[] = {
        SRV(.id = 1, .module_id = 7, .desktops = 0),
        SRV(.id = 2, .module_id = 2, .desktops = 60),
        SRV(.id = 3, .module_id = 8, .desktops = 0),
    };
    pl_request r = req(2048, false, PL_SPREAD, mods_12, 2);
    assert_int_equal(placement_choose(s, 3, &r, &rules, NULL, 0), 1);
    static const long long only7[] = {7};
    r.modules = only7;
    r.nmodules = 1;
    assert_int_equal(placement_choose(s, 3, &r, &rules, NULL, 0), 0);
    r.nmodules = 0;
    assert_int_equal(placement_choose(s, 3, &r, &rules, NULL, 0), -1);
}

static void commit_adds_the_desktop_so_the_next_choice_sees_it(void **state)
{
    (void)state;
    pl_rules rules = RULES();
    pl_server s[] = {SRV(.id = 1), SRV(.id = 2), SRV(.id = 3)};
    pl_request r = req(1000, false, PL_SPREAD, mods_12, 2);
    long order[6];
    for (int i = 0; i < 6; i++) {
        order[i] = placement_choose(s, 3, &r, &rules, NULL, 0);
        assert_true(order[i] >= 0);
        placement_commit(&s[order[i]], &r);
    }
    long want[6] = {0, 1, 2, 0, 1, 2};
    assert_memory_equal(order, want, sizeof(want));
    assert_int_equal(s[0].desktops, 2);
    assert_int_equal(s[0].mem_shared_mib, 2000);
    assert_int_equal(s[0].mem_locked_mib, 0);
    assert_int_equal(s[0].vfs_free, 8);

    r.vf = true;
    placement_commit(&s[1], &r);
    assert_int_equal(s[1].desktops, 3);
    assert_int_equal(s[1].mem_shared_mib, 2000);
    assert_int_equal(s[1].mem_locked_mib, 1000);
    assert_int_equal(s[1].vfs_free, 7);

    /* pack fills one server until a rule stops it: 10 cores * 6 = 60 */
    pl_server p[] = {SRV(.id = 1, .cores = 10), SRV(.id = 2, .cores = 10)};
    r.vf = false;
    r.policy = PL_PACK;
    int placed = 0;
    long k;
    while ((k = placement_choose(p, 2, &r, &rules, NULL, 0)) == 0) {
        placement_commit(&p[0], &r);
        placed++;
    }
    assert_int_equal(placed, 60);
    assert_int_equal(k, 1);
}

static void vf_desktops_use_up_the_free_vfs(void **state)
{
    (void)state;
    pl_rules rules = RULES();
    pl_server s[] = {SRV(.id = 1, .vfs_free = 2), SRV(.id = 2, .vfs_free = 1)};
    pl_request r = req(1024, true, PL_SPREAD, mods_12, 2);
    const char *names[] = {"m1", "m2"};
    r.module_names = names;
    char why[512];
    for (int i = 0; i < 3; i++) {
        long k = placement_choose(s, 2, &r, &rules, why, sizeof(why));
        assert_true(k >= 0);
        placement_commit(&s[k], &r);
    }
    assert_int_equal(placement_choose(s, 2, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why,
                        "module m1: all 2 servers with no free SR-IOV VF; module m2: no servers");
    r.vf = false;
    assert_true(placement_choose(s, 2, &r, &rules, why, sizeof(why)) >= 0);
}

/* ---- the why text ---- */

/* n servers of module mod named name, ids from id0, each at the base server's values */
static size_t add_servers(pl_server *s, size_t at, size_t n, long long mod, const char *name,
                          long long id0)
{
    for (size_t i = 0; i < n; i++) {
        pl_server b = SRV(.id = id0 + (long long)i, .module_id = mod, .module_name = name);
        s[at + i] = b;
    }
    return at + n;
}

static void why_text_has_the_documented_shape(void **state)
{
    (void)state;
    pl_rules rules = RULES();
    pl_server s[40];
    char why[512];
    size_t n;

    /* no module bound, even with servers around */
    n = add_servers(s, 0, 3, 1, "m1", 1);
    pl_request r = req(2048, false, PL_SPREAD, NULL, 0);
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "no module is bound to this pool");

    /* a bound module without servers: named by module_names, else by id */
    static const long long m1[] = {1}, m7[] = {7};
    const char *m1name[] = {"m1"};
    r = req(2048, false, PL_SPREAD, m1, 1);
    r.module_names = m1name;
    assert_int_equal(placement_choose(s, 0, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m1: no servers");
    r = req(2048, false, PL_SPREAD, m7, 1);
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module #7: no servers");

    /* every server at the cap */
    n = add_servers(s, 0, 10, 1, "m1", 1);
    for (size_t i = 0; i < n; i++)
        s[i].desktops = 100;
    r = req(2048, false, PL_SPREAD, m1, 1);
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m1: all 10 servers at 100 desktops");

    /* two modules, most common limit first, modules in the pool's order */
    n = add_servers(s, 0, 10, 1, "m1", 1);
    n = add_servers(s, n, 10, 2, "m2", 11);
    for (size_t i = 0; i < 10; i++) {
        if (i % 5 == 1 || i % 5 == 3)
            s[i].online = false;
        else
            s[i].desktops = 100;
        s[10 + i].cores = 5;
        s[10 + i].desktops = 30;
    }
    r = req(2048, false, PL_SPREAD, mods_12, 2);
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m1: 6 servers at 100 desktops, 4 offline; "
                             "module m2: all 10 servers at 6 desktops per core");
    static const long long m21[] = {2, 1};
    r.modules = m21;
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m2: all 10 servers at 6 desktops per core; "
                             "module m1: 6 servers at 100 desktops, 4 offline");
    /* a repeated module is named once */
    static const long long m121[] = {1, 2, 1};
    r.modules = m121;
    r.nmodules = 3;
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m1: 6 servers at 100 desktops, 4 offline; "
                             "module m2: all 10 servers at 6 desktops per core");

    /* memory, NIC, VF, maintenance, unknown cores; equally common: rule order */
    n = add_servers(s, 0, 2, 1, "m1", 1);
    s[0].memory_mib = s[1].memory_mib = 1000;
    r = req(2048, false, PL_SPREAD, m1, 1);
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m1: all 2 servers with memory full (overcommit 150%)");
    rules.mem_overcommit_pct = 120;
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m1: all 2 servers with memory full (overcommit 120%)");
    rules = (pl_rules)RULES();

    n = add_servers(s, 0, 1, 1, "m1", 1);
    s[0].nic_mbps = 0;
    s[0].desktops = 50;
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m1: 1 server at 50 desktops per Gbps of NIC");

    n = add_servers(s, 0, 3, 1, "m1", 1);
    for (size_t i = 0; i < n; i++)
        s[i].vfs_free = 0;
    r.vf = true;
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m1: all 3 servers with no free SR-IOV VF");
    r.vf = false;

    n = add_servers(s, 0, 4, 1, "m1", 1);
    s[0].maintenance = s[1].maintenance = true;
    s[2].online = s[3].online = false;
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m1: 2 servers offline, 2 in maintenance");

    n = add_servers(s, 0, 4, 1, "m1", 1);
    s[0].online = false;
    s[1].cores = s[2].cores = s[3].cores = 0;
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m1: 3 servers with unknown core count, 1 offline");

    /* servers with different caps; a server of another module is not mentioned */
    n = add_servers(s, 0, 3, 1, "m1", 1);
    s[0].max_desktops = 40;
    s[0].desktops = 40;
    s[1].desktops = 100;
    s[2].max_desktops = 70;
    s[2].desktops = 70;
    n = add_servers(s, n, 1, 9, "m9", 4);
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m1: all 3 servers at 40-100 desktops");

    /* one server, one limit: no "all" */
    n = add_servers(s, 0, 1, 1, "m1", 1);
    s[0].online = false;
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_string_equal(why, "module m1: 1 server offline");
}

static void why_is_emptied_when_a_server_fits(void **state)
{
    (void)state;
    pl_rules rules = RULES();
    pl_server s[] = {SRV()};
    pl_request r = req(2048, false, PL_SPREAD, mods_12, 2);
    char why[16];
    memset(why, 'x', sizeof(why));
    assert_int_equal(placement_choose(s, 1, &r, &rules, why, sizeof(why)), 0);
    assert_string_equal(why, "");
}

/* 8 servers per module, each stopped by a different limit */
static size_t every_limit_module(pl_server *s, size_t at, long long mod, const char *name,
                                 long long id0)
{
    size_t n = add_servers(s, at, 8, mod, name, id0);
    pl_server *p = s + at;
    p[0].online = false;
    p[1].maintenance = true;
    p[2].desktops = 100;
    p[3].cores = 0;
    p[4].cores = 1;
    p[4].desktops = 6;
    p[5].nic_mbps = 1000;
    p[5].desktops = 50;
    p[6].memory_mib = 100;
    p[7].vfs_free = 0;
    return n;
}

static void a_long_why_text_keeps_every_module_first_then_cuts_cleanly(void **state)
{
    (void)state;
    pl_rules rules = RULES();
    char a[101], b[101], want[512];
    memset(a, 'a', 100);
    memset(b, 'b', 100);
    a[100] = b[100] = '\0';
    pl_server s[16];
    size_t n = every_limit_module(s, 0, 1, a, 1);
    n = every_limit_module(s, n, 2, b, 11);
    pl_request r = req(2048, true, PL_SPREAD, mods_12, 2);

    char big[2048];
    assert_int_equal(placement_choose(s, n, &r, &rules, big, sizeof(big)), -1);
    snprintf(want, sizeof(want),
             "module %s: 1 server offline, 1 in maintenance, 1 at 100 desktops, 1 with unknown "
             "core count, 1 at 6 desktops per core, 1 at 50 desktops per Gbps of NIC, 1 with "
             "memory full (overcommit 150%%), 1 with no free SR-IOV VF",
             a);
    assert_true(strncmp(big, want, strlen(want)) == 0);
    assert_true(strlen(big) > 511);

    /* in 512 bytes: only the most common limit per module */
    char why[512];
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    snprintf(want, sizeof(want),
             "module %s: 1 server offline, 7 other; module %s: 1 server "
             "offline, 7 other",
             a, b);
    assert_string_equal(why, want);

    /* 30 modules of 100-byte names: as many as fit, then a count of the rest */
    long long mods[30];
    for (int i = 0; i < 30; i++)
        mods[i] = i % 2 + 1 + (i / 2) * 10; /* modules 1, 2, 11, 12, ...: only 1, 2 have servers */
    const char *names[30];
    char namebuf[30][101];
    for (int i = 0; i < 30; i++) {
        memset(namebuf[i], 'c', 100);
        namebuf[i][100] = '\0';
        namebuf[i][0] = (char)('A' + i % 26);
        names[i] = i < 2 ? (i ? b : a) : namebuf[i];
    }
    r.modules = mods;
    r.nmodules = 30;
    r.module_names = names;
    assert_int_equal(placement_choose(s, n, &r, &rules, why, sizeof(why)), -1);
    assert_true(strlen(why) < sizeof(why));
    snprintf(want, sizeof(want),
             "module %s: 1 server offline, 7 other; module %s: 1 server "
             "offline, 7 other; module %s: no servers; and 27 more modules",
             a, b, names[2]);
    assert_string_equal(why, want);
}

static void a_why_text_never_overruns_the_buffer_nor_splits_a_character(void **state)
{
    (void)state;
    pl_rules rules = RULES();
    /* 2-, 3- and 4-byte characters in the names */
    const char *names[] = {"modul\xc3\xa9-\xe2\x82\xac\xe2\x82\xac-\xf0\x9f\x96\xa5-one",
                           "\xeb\xaa\xa8\xeb\x93\x88\xeb\xaa\xa8\xeb\x93\x88"};
    pl_server s[16];
    size_t n = every_limit_module(s, 0, 1, names[0], 1);
    n = every_limit_module(s, n, 2, names[1], 11);
    pl_request r = req(2048, true, PL_SPREAD, mods_12, 2);
    r.module_names = names;
    char full[2048];
    assert_int_equal(placement_choose(s, n, &r, &rules, full, sizeof(full)), -1);
    size_t fulllen = strlen(full);
    assert_true(fulllen > 100);
    assert_int_equal(placement_choose(s, n, &r, &rules, NULL, 0), -1);
    for (size_t len = 1; len <= fulllen + 2; len++) {
        char *why = malloc(len); /* exact size: ASan sees a single byte too many */
        assert_non_null(why);
        memset(why, 'x', len);
        assert_int_equal(placement_choose(s, n, &r, &rules, why, len), -1);
        if (!memchr(why, '\0', len)) test_fail("len %zu: not terminated", len);
        if (!utf8_valid(why)) test_fail("len %zu: invalid UTF-8 '%s'", len, why);
        if (len > fulllen && strcmp(why, full) != 0)
            test_fail("len %zu: '%s' differs from the full text", len, why);
        if (len <= fulllen && len >= 4 && !test_contains(why, "...") &&
            !test_contains(why, "more module") && !test_contains(why, " other"))
            test_fail("len %zu: '%s' does not say it was shortened", len, why);
        free(why);
    }
}

/* ---- random fleets against an independent checker ---- */

typedef struct {
    uint64_t s;
} rng;

static uint64_t rnd(rng *g)
{
    uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static long long rr(rng *g, long long lo, long long hi)
{
    return lo + (long long)(rnd(g) % (uint64_t)(hi - lo + 1));
}

static bool chance(rng *g, int pct)
{
    return rr(g, 1, 100) <= pct;
}

/* The rules of placement.h, written out plainly; test values stay far from overflow. */
static pl_limit ref_limit(const pl_server *s, const pl_request *r, const pl_rules *ru)
{
    if (!s->online) return PL_OFFLINE;
    if (s->maintenance) return PL_MAINTENANCE;
    bool bound = false;
    for (size_t i = 0; i < r->nmodules; i++)
        bound = bound || r->modules[i] == s->module_id;
    if (!bound) return PL_OTHER_MODULE;
    long long after = s->desktops + 1;
    long long cap = ru->max_per_server;
    if (s->max_desktops != 0 && s->max_desktops < cap) cap = s->max_desktops;
    if (after > cap) return PL_MAX_DESKTOPS;
    if (after > (long long)ru->per_core * s->cores) return PL_CORES;
    long long mbps = s->nic_mbps > 1000 ? s->nic_mbps : 1000;
    if (after > ru->per_gbps * mbps / 1000) return PL_NIC;
    long long locked = s->mem_locked_mib + (r->vf ? r->memory_mib : 0);
    long long shared = s->mem_shared_mib + (r->vf ? 0 : r->memory_mib);
    long long used = locked + (shared * 100 + ru->mem_overcommit_pct - 1) / ru->mem_overcommit_pct;
    if (used > s->memory_mib - ru->host_reserve_mib) return PL_MEMORY;
    if (r->vf && s->vfs_free < 1) return PL_NO_VF;
    return PL_FITS;
}

/* Load of a fitting server after placing r. */
static double ref_load(const pl_server *s, const pl_request *r, const pl_rules *ru)
{
    long long after = s->desktops + 1;
    long long cap = ru->max_per_server;
    if (s->max_desktops != 0 && s->max_desktops < cap) cap = s->max_desktops;
    long long mbps = s->nic_mbps > 1000 ? s->nic_mbps : 1000;
    long long locked = s->mem_locked_mib + (r->vf ? r->memory_mib : 0);
    long long shared = s->mem_shared_mib + (r->vf ? 0 : r->memory_mib);
    long long used = locked + (shared * 100 + ru->mem_overcommit_pct - 1) / ru->mem_overcommit_pct;
    long long avail = s->memory_mib - ru->host_reserve_mib;
    double q[4] = {(double)after / (double)cap,
                   (double)after / (double)((long long)ru->per_core * s->cores),
                   (double)after / (double)(ru->per_gbps * mbps / 1000),
                   avail > 0 ? (double)used / (double)avail : 0.0};
    double l = 0;
    for (int i = 0; i < 4; i++)
        if (q[i] > l) l = q[i];
    return l;
}

/*
 * The server's present load obeys every capacity rule (it received a desktop, and
 * each placement checked the rules with that desktop included). Returns the broken
 * rule's name or NULL.
 */
static const char *ref_state_broken(const pl_server *s, const pl_rules *ru, bool got_vf)
{
    if (!s->online) return "online";
    if (s->maintenance) return "maintenance";
    long long cap = ru->max_per_server;
    if (s->max_desktops != 0 && s->max_desktops < cap) cap = s->max_desktops;
    if (s->desktops > cap) return "max desktops";
    if (s->desktops > (long long)ru->per_core * s->cores) return "per core";
    long long mbps = s->nic_mbps > 1000 ? s->nic_mbps : 1000;
    if (s->desktops > ru->per_gbps * mbps / 1000) return "per Gbps";
    long long used = s->mem_locked_mib + (s->mem_shared_mib * 100 + ru->mem_overcommit_pct - 1) /
                                             ru->mem_overcommit_pct;
    if (used > s->memory_mib - ru->host_reserve_mib) return "memory";
    if (got_vf && s->vfs_free < 0) return "VF";
    return NULL;
}

#define MAXMOD 4
#define MAXSRV (MAXMOD * 30 + 6)

struct fleet {
    pl_rules rules;
    size_t nmod;
    long long mod[MAXMOD];
    char modname[MAXMOD][32];
    pl_server s[MAXSRV], initial[MAXSRV];
    size_t n;
    /* what the test placed on each server, to recompute its load independently */
    int placed[MAXSRV], placed_vf[MAXSRV];
    long long placed_shared[MAXSRV], placed_locked[MAXSRV];
    char host[MAXSRV][16];
};

static long long pick(rng *g, const long long *v, size_t n)
{
    return v[rr(g, 0, (long long)n - 1)];
}
#define PICK(g, ...)                                                                               \
    pick(g, (const long long[]){__VA_ARGS__},                                                      \
         sizeof((const long long[]){__VA_ARGS__}) / sizeof(long long))

static void fleet_make(struct fleet *f, rng *g)
{
    memset(f, 0, sizeof(*f));
    f->rules.max_per_server = chance(g, 50) ? 100 : (int)rr(g, 1, 120);
    f->rules.per_core = chance(g, 50) ? 6 : (int)rr(g, 1, 8);
    f->rules.per_gbps = chance(g, 50) ? 50 : (int)rr(g, 1, 60);
    f->rules.mem_overcommit_pct = (int)PICK(g, 150, 150, 100, 200, rr(g, 50, 300));
    f->rules.host_reserve_mib = chance(g, 50) ? 0 : rr(g, 0, 8192);
    f->nmod = (size_t)rr(g, 1, MAXMOD);
    for (size_t m = 0; m < f->nmod; m++) {
        bool again;
        do { /* distinct ids from a small range, so ids and names overlap as prefixes */
            f->mod[m] = rr(g, 1, 12);
            again = false;
            for (size_t j = 0; j < m; j++)
                again = again || f->mod[j] == f->mod[m];
        } while (again);
        if (chance(g, 30))
            snprintf(f->modname[m], sizeof(f->modname[m]), "\xeb\xaa\xa8\xeb\x93\x88-%lld",
                     f->mod[m]);
        else
            snprintf(f->modname[m], sizeof(f->modname[m]), "m%lld", f->mod[m]);
    }
    /* servers of the fleet's modules, then a few of modules no pool here is bound to */
    size_t extra = (size_t)rr(g, 0, 6);
    for (size_t m = 0; m < f->nmod + extra; m++) {
        long long per = m < f->nmod ? rr(g, 0, 30) : 1;
        for (long long k = 0; k < per; k++) {
            pl_server *s = &f->s[f->n];
            s->module_id = m < f->nmod ? f->mod[m] : 100 + (long long)m;
            s->module_name = m < f->nmod ? f->modname[m] : "other";
            s->online = chance(g, 90);
            s->maintenance = chance(g, 8);
            s->cores = chance(g, 5) ? 0 : (int)rr(g, 1, 48);
            s->memory_mib = chance(g, 3) ? rr(g, 0, 4096) : rr(g, 8, 1024) * 1024;
            s->nic_mbps = PICK(g, 0, 100, 1000, 2000, 2500, 10000, rr(g, 1, 40000));
            s->max_desktops = chance(g, 60) ? 0 : (int)rr(g, 1, 150);
            s->vfs_free = chance(g, 20) ? 0 : chance(g, 3) ? -1 : (int)rr(g, 0, 64);
            s->desktops = chance(g, 40) ? 0 : (int)rr(g, 0, 120);
            s->mem_shared_mib = chance(g, 40) ? 0 : rr(g, 0, s->memory_mib * 2);
            s->mem_locked_mib = chance(g, 60) ? 0 : rr(g, 0, s->memory_mib / 2);
            f->n++;
        }
    }
    /* shuffle, then give ids that do not follow the order */
    for (size_t i = f->n; i > 1; i--) {
        size_t j = (size_t)rr(g, 0, (long long)i - 1);
        pl_server t = f->s[i - 1];
        f->s[i - 1] = f->s[j];
        f->s[j] = t;
    }
    long long used_ids[MAXSRV];
    for (size_t i = 0; i < f->n; i++) {
        bool again;
        do {
            f->s[i].id = rr(g, 1, 1000);
            again = false;
            for (size_t j = 0; j < i; j++)
                again = again || used_ids[j] == f->s[i].id;
        } while (again);
        used_ids[i] = f->s[i].id;
        snprintf(f->host[i], sizeof(f->host[i]), "h%lld", f->s[i].id);
        f->s[i].hostname = f->host[i];
    }
    memcpy(f->initial, f->s, sizeof(f->s));
}

struct totals {
    long fleets, passes, placements, refusals, fits_checks, no_module;
};

static unsigned long long cur_seed;
static int cur_pass;
static long cur_step;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("seed %llu pass %d step %ld: ", cur_seed, cur_pass, cur_step);             \
            test_fail(__VA_ARGS__);                                                                \
        }                                                                                          \
    } while (0)

static void check_all_servers(const struct fleet *f)
{
    for (size_t i = 0; i < f->n; i++) {
        const pl_server *s = &f->s[i], *o = &f->initial[i];
        CHECK(s->desktops == o->desktops + f->placed[i] &&
                  s->mem_shared_mib == o->mem_shared_mib + f->placed_shared[i] &&
                  s->mem_locked_mib == o->mem_locked_mib + f->placed_locked[i] &&
                  s->vfs_free == o->vfs_free - f->placed_vf[i] && s->id == o->id &&
                  s->cores == o->cores && s->memory_mib == o->memory_mib,
              "server %lld: load is not its initial load plus what was placed", s->id);
        if (!f->placed[i]) continue;
        const char *broken = ref_state_broken(s, &f->rules, f->placed_vf[i] > 0);
        CHECK(broken == NULL, "server %lld breaks the %s rule after placements", s->id, broken);
    }
}

/* The index the policy must pick, from the checker's fits and loads; -1 when none fits. */
static long ref_choice(const struct fleet *f, const pl_request *r)
{
    long best = -1;
    double bl = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (ref_limit(&f->s[i], r, &f->rules) != PL_FITS) continue;
        double l = ref_load(&f->s[i], r, &f->rules);
        CHECK(l >= 0 && l <= 1, "load %g of a fitting server", l);
        if (best < 0) {
            best = (long)i;
            bl = l;
            continue;
        }
        const pl_server *b = &f->s[best], *s = &f->s[i];
        bool take;
        if (r->policy == PL_SPREAD)
            take = l < bl || (l == bl && (s->desktops < b->desktops ||
                                          (s->desktops == b->desktops && s->id < b->id)));
        else
            take = l > bl || (l == bl && s->id < b->id);
        if (take) {
            best = (long)i;
            bl = l;
        }
    }
    return best;
}

static void check_refusal(const struct fleet *f, const pl_request *r, const char *why)
{
    for (size_t i = 0; i < f->n; i++)
        CHECK(ref_limit(&f->s[i], r, &f->rules) != PL_FITS, "refused but server %lld fits",
              f->s[i].id);
    CHECK(strlen(why) > 0 && strlen(why) < 512 && utf8_valid(why), "bad why '%s'", why);
    if (r->nmodules == 0) {
        CHECK(!strcmp(why, "no module is bound to this pool"), "why '%s'", why);
        return;
    }
    for (size_t m = 0; m < r->nmodules; m++) {
        char want[64];
        const char *name = r->module_names ? r->module_names[m] : NULL;
        for (size_t i = 0; !name && i < f->n; i++)
            if (f->s[i].module_id == r->modules[m]) name = f->s[i].module_name;
        bool servers = false;
        for (size_t i = 0; i < f->n; i++)
            servers = servers || f->s[i].module_id == r->modules[m];
        if (name)
            snprintf(want, sizeof(want), "module %s: %s", name, servers ? "" : "no servers");
        else
            snprintf(want, sizeof(want), "module #%lld: no servers", r->modules[m]);
        CHECK(test_contains(why, want), "why '%s' lacks '%s'", why, want);
    }
}

static void run_pass(struct fleet *f, rng *g, struct totals *t)
{
    long long mods[MAXMOD + 1];
    const char *names[MAXMOD + 1];
    size_t nm = 0;
    if (!chance(g, 3)) {
        for (size_t m = 0; m < f->nmod; m++) {
            if (!chance(g, 75)) continue;
            names[nm] = f->modname[m];
            mods[nm++] = f->mod[m];
        }
        if (nm == 0) {
            names[nm] = f->modname[0];
            mods[nm++] = f->mod[0];
        }
        if (chance(g, 10)) { /* a bound module with no server */
            names[nm] = "empty-module";
            mods[nm++] = 50;
        }
    }
    /* one statement each: the order of the draws is part of the seed */
    pl_request r = {.modules = mods, .nmodules = nm};
    r.memory_mib = PICK(g, 512, 1024, 2048, 4096, 8192, rr(g, 1, 32768));
    r.vcpus = (int)rr(g, 1, 8);
    r.vf = chance(g, 30);
    r.module_names = chance(g, 70) ? names : NULL; /* else the servers' names, or "#50" */
    r.policy = chance(g, 50) ? PL_SPREAD : PL_PACK;
    t->passes++;
    for (cur_step = 0;; cur_step++) {
        CHECK(cur_step < 100000, "no refusal after %ld placements", cur_step);
        for (size_t i = 0; i < f->n; i++) {
            pl_limit want = ref_limit(&f->s[i], &r, &f->rules);
            pl_limit got = placement_fits(&f->s[i], &r, &f->rules);
            CHECK(got == want, "server %lld: placement_fits says %s, the rules say %s", f->s[i].id,
                  placement_limit_text(got), placement_limit_text(want));
            t->fits_checks++;
        }
        char why[512];
        long k = placement_choose(f->s, f->n, &r, &f->rules, why, sizeof(why));
        long want = ref_choice(f, &r);
        CHECK(k == want, "%s chose %ld (id %lld), the rules pick %ld (id %lld)",
              r.policy == PL_PACK ? "pack" : "spread", k, k >= 0 ? f->s[k].id : 0, want,
              want >= 0 ? f->s[want].id : 0);
        if (k < 0) {
            check_refusal(f, &r, why);
            t->refusals++;
            t->no_module += r.nmodules == 0;
            return;
        }
        CHECK(why[0] == '\0', "why '%s' after a placement", why);
        placement_commit(&f->s[k], &r);
        f->placed[k]++;
        if (r.vf) {
            f->placed_vf[k]++;
            f->placed_locked[k] += r.memory_mib;
        } else {
            f->placed_shared[k] += r.memory_mib;
        }
        t->placements++;
        check_all_servers(f);
    }
}

static void random_fleets_fill_up_within_every_rule_and_refuse_only_when_full(void **state)
{
    (void)state;
    enum { FLEETS = 600 };
    const char *only = getenv("BIC_PLACEMENT_SEED"); /* reproduce one failing seed */
    static struct fleet fleet; /* static: a failed CHECK leaves nothing to leak */
    struct fleet *f = &fleet;
    struct totals t = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned long long i = 0; i < FLEETS; i++) {
        cur_seed = only ? strtoull(only, NULL, 10) : 20240601ull + i * 7919ull;
        rng g = {cur_seed};
        fleet_make(f, &g);
        t.fleets++;
        int passes = (int)rr(&g, 1, 3);
        for (cur_pass = 0; cur_pass < passes; cur_pass++)
            run_pass(f, &g, &t);
        if (only) break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("# %ld fleets, %ld passes, %ld placements, %ld refusals (%ld with no module), "
                  "%ld fit checks in %.2f s\n",
                  t.fleets, t.passes, t.placements, t.refusals, t.no_module, t.fits_checks, secs);
    if (!only) {
        assert_true(t.placements > 10000);
        assert_true(t.refusals == t.passes);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_rule_holds_exactly_at_its_boundary_and_breaks_one_over),
        cmocka_unit_test(every_limit_has_a_text_and_out_of_range_is_unknown),
        cmocka_unit_test(spread_takes_the_least_loaded_and_pack_the_most_loaded_that_fits),
        cmocka_unit_test(load_is_the_highest_ratio_not_the_desktop_count),
        cmocka_unit_test(spread_ties_go_to_fewer_desktops_then_lower_id),
        cmocka_unit_test(pack_ties_go_to_the_lower_id_whatever_the_desktops),
        cmocka_unit_test(only_servers_of_the_pools_modules_are_chosen),
        cmocka_unit_test(commit_adds_the_desktop_so_the_next_choice_sees_it),
        cmocka_unit_test(vf_desktops_use_up_the_free_vfs),
        cmocka_unit_test(why_text_has_the_documented_shape),
        cmocka_unit_test(why_is_emptied_when_a_server_fits),
        cmocka_unit_test(a_long_why_text_keeps_every_module_first_then_cuts_cleanly),
        cmocka_unit_test(a_why_text_never_overruns_the_buffer_nor_splits_a_character),
        cmocka_unit_test(random_fleets_fill_up_within_every_rule_and_refuse_only_when_full),
    };
    return cmocka_run_group_tests_name("placement", tests, NULL, NULL);
}

#include "bench_alloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"

struct bench_thread {
    const bic_config *cfg;
    int index;
    double deadline; /* monotonic seconds */
    pthread_t tid;
    double *ms; /* one latency per allocation, malloc'ed */
    size_t n, cap;
    long resets, errors;
    int failed; /* could not connect */
};

struct take_ctx {
    bic_arena *a;
    long long taken_by;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One allocation: BIC_E_OK, BIC_E_NOT_FOUND when no free row is left, or a db error. */
static bic_err take_one(bic_db *db, void *arg)
{
    struct take_ctx *c = arg;
    bic_rows r;
    bic_err e = DB_EXEC0(db, c->a, STMT_bench_alloc_pick, &r);
    if (e != BIC_E_OK) return e;
    if (r.nrows == 0) return BIC_E_NOT_FOUND;
    e = DB_EXEC(db, c->a, STMT_bench_alloc_take, NULL, P_INT(c->taken_by),
                P_INT(rows_int(&r, 0, 0)));
    if (e != BIC_E_OK) return e;
    return db_affected(db) == 1 ? BIC_E_OK : BIC_E_CONFLICT; /* the row lock was ours */
}

static void *bench_thread_main(void *arg)
{
    struct bench_thread *t = arg;
    bic_db *db = db_new(t->cfg, t->cfg->database_user, t->cfg->database_password);
    bic_arena *a = arena_new(0);
    if (!db || !a || db_ensure(db) != BIC_E_OK) {
        t->failed = 1;
        goto out;
    }
    struct take_ctx c = {.a = a, .taken_by = (long long)t->index * 1000000000LL};
    for (double start = now_s(); start < t->deadline; start = now_s()) {
        c.taken_by++;
        bic_err e = db_tx(db, take_one, &c);
        double end = now_s();
        arena_reset(a);
        if (e == BIC_E_NOT_FOUND) {
            if (DB_EXEC0(db, a, STMT_bench_alloc_reset, NULL) != BIC_E_OK) t->errors++;
            t->resets++;
            continue;
        }
        if (e != BIC_E_OK) {
            t->errors++;
            continue;
        }
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 4096;
            double *ms = realloc(t->ms, cap * sizeof(*ms));
            if (!ms) break;
            t->ms = ms;
            t->cap = cap;
        }
        t->ms[t->n++] = (end - start) * 1e3;
    }
out:
    arena_free(a);
    db_free(db);
    return NULL;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double percentile(const double *v, size_t n, double p)
{
    if (!n) return 0;
    size_t k = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[k < n ? k : n - 1];
}

static int parse_opt(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static void usage(void)
{
    fputs("usage: bicd bench-alloc [--threads N] [--seconds S] [--rows R]\n"
          "Allocation transactions (SELECT ... FOR UPDATE SKIP LOCKED + UPDATE + COMMIT) on a\n"
          "scratch table of R rows in one pool, N threads for S seconds; prints JSON.\n"
          "Needs the [migrate] account to create and drop the table bench_alloc.\n",
          stderr);
}

int bench_alloc_run(const bic_config *cfg, int argc, char **argv)
{
    long threads = 4, seconds = 10, nrows = 10000;
    for (int i = 1; i < argc; i++) {
        long *dst = !strcmp(argv[i], "--threads")   ? &threads
                    : !strcmp(argv[i], "--seconds") ? &seconds
                    : !strcmp(argv[i], "--rows")    ? &nrows
                                                    : NULL;
        long max = dst == &threads ? 256 : dst == &seconds ? 3600 : 10000000;
        if (!dst || i + 1 >= argc || parse_opt(argv[++i], 1, max, dst) < 0) {
            usage();
            return 2;
        }
    }
    bic_db *ddl = db_new(cfg, cfg->migrate_user, cfg->migrate_password);
    bic_arena *a = arena_new(0);
    struct bench_thread *t = calloc((size_t)threads, sizeof(*t));
    int rc = 1;
    if (!ddl || !a || !t) goto out;
    if (DB_EXEC0(ddl, a, STMT_bench_alloc_drop, NULL) != BIC_E_OK ||
        DB_EXEC0(ddl, a, STMT_bench_alloc_create, NULL) != BIC_E_OK ||
        DB_EXEC(ddl, a, STMT_bench_alloc_seed, NULL, P_INT(nrows)) != BIC_E_OK) {
        fprintf(stderr, "bicd bench-alloc: cannot create the scratch table as %s\n",
                cfg->migrate_user);
        goto drop;
    }
    double deadline = now_s() + (double)seconds, start = now_s();
    long started = 0;
    for (; started < threads; started++) {
        t[started] =
            (struct bench_thread){.cfg = cfg, .index = (int)started + 1, .deadline = deadline};
        if (pthread_create(&t[started].tid, NULL, bench_thread_main, &t[started])) break;
    }
    for (long i = 0; i < started; i++)
        pthread_join(t[i].tid, NULL);
    double wall = now_s() - start;
    size_t total = 0;
    long resets = 0, errors = 0, failed = started < threads;
    for (long i = 0; i < started; i++) {
        total += t[i].n;
        resets += t[i].resets;
        errors += t[i].errors;
        failed |= t[i].failed;
    }
    if (failed) {
        fprintf(stderr, "bicd bench-alloc: a thread could not start or connect as %s\n",
                cfg->database_user);
        goto drop;
    }
    double *all = malloc((total ? total : 1) * sizeof(*all));
    if (!all) goto drop;
    size_t k = 0;
    for (long i = 0; i < started; i++) {
        memcpy(all + k, t[i].ms, t[i].n * sizeof(*all));
        k += t[i].n;
    }
    qsort(all, total, sizeof(*all), cmp_double);
    printf("{\"threads\": %ld, \"seconds\": %.2f, \"allocations\": %zu, \"per_s\": %.1f, "
           "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"resets\": %ld, \"errors\": %ld}\n",
           threads, wall, total, (double)total / wall, percentile(all, total, 50),
           percentile(all, total, 99), resets, errors);
    free(all);
    rc = total > 0 ? 0 : 1;
drop:
    if (DB_EXEC0(ddl, a, STMT_bench_alloc_drop, NULL) != BIC_E_OK) rc = 1;
out:
    if (t)
        for (long i = 0; i < threads; i++)
            free(t[i].ms);
    free(t);
    arena_free(a);
    db_free(ddl);
    return rc;
}

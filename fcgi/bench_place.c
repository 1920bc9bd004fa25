#include "bench_place.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "pools.h"

struct shared {
    const bic_config *cfg;
    long long pool_id;
    long long next_seq, last_seq; /* numbers still to place: next_seq..last_seq */
    pthread_mutex_t mu;
    pthread_barrier_t start;
    long placed, sriov, refused, errors;
    char why[256];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
    struct shared *sh = arg;
    bic_db *db = db_new(sh->cfg, sh->cfg->database_user, sh->cfg->database_password);
    bic_arena *a = arena_new(0);
    bool ok = db && a && db_ensure(db) == BIC_E_OK;
    pthread_barrier_wait(&sh->start); /* every connection is open: go together */
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        long long seq = sh->next_seq <= sh->last_seq ? sh->next_seq++ : 0;
        if (seq && !ok) sh->errors++;
        pthread_mutex_unlock(&sh->mu);
        if (!seq) break;
        if (!ok) continue;
        long long id = 0;
        const char *why = NULL;
        bic_err e = pools_place_one(db, a, sh->cfg, sh->pool_id, seq, &id, &why);
        bool vf = false;
        if (e == BIC_E_OK && id) {
            bic_rows r;
            vf = DB_EXEC(db, a, STMT_vf_of_desktop, &r, P_INT(id)) == BIC_E_OK && r.nrows == 1;
        }
        pthread_mutex_lock(&sh->mu);
        if (e != BIC_E_OK) {
            sh->errors++;
        } else if (id) {
            sh->placed++;
            sh->sriov += vf;
        } else {
            sh->refused++;
            if (!sh->why[0] && why) snprintf(sh->why, sizeof(sh->why), "%s", why);
        }
        pthread_mutex_unlock(&sh->mu);
        arena_reset(a);
    }
    arena_free(a);
    db_free(db);
    return NULL;
}

static int parse_opt(const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int bench_place_run(const bic_config *cfg, int argc, char **argv)
{
    long long pool = 0, count = 200, threads = 0;
    for (int i = 1; i < argc; i++) {
        long long *dst = !strcmp(argv[i], "--pool")      ? &pool
                         : !strcmp(argv[i], "--count")   ? &count
                         : !strcmp(argv[i], "--threads") ? &threads
                                                         : NULL;
        long long max = dst == &threads ? 256 : dst == &count ? 100000 : 1LL << 62;
        if (!dst || i + 1 >= argc || parse_opt(argv[++i], 1, max, dst) < 0) pool = -1;
    }
    if (pool <= 0) {
        fputs("usage: bicd bench-place --pool ID [--count N] [--threads T]\n", stderr);
        return 2;
    }
    if (!threads) threads = count < 256 ? count : 256;
    bic_db *db = db_new(cfg, cfg->database_user, cfg->database_password);
    bic_arena *a = arena_new(0);
    bic_rows r;
    if (!db || !a || DB_EXEC(db, a, STMT_bench_place_last_seq, &r, P_INT(pool)) != BIC_E_OK) {
        fputs("bicd bench-place: cannot read the pool's desktops\n", stderr);
        arena_free(a);
        db_free(db);
        return 1;
    }
    struct shared sh = {.cfg = cfg, .pool_id = pool};
    sh.next_seq = rows_int(&r, 0, 0) + 1;
    sh.last_seq = sh.next_seq + count - 1;
    arena_free(a);
    db_free(db);
    pthread_mutex_init(&sh.mu, NULL);
    pthread_barrier_init(&sh.start, NULL, (unsigned)threads);
    pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
    if (!tid) return 1;
    double start = now_s();
    long long started = 0;
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, worker, &sh)) break;
    if (started < threads) { /* the barrier waits for all: cannot go on */
        fputs("bicd bench-place: cannot start the threads\n", stderr);
        exit(1);
    }
    for (long long i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    double wall = now_s() - start;
    free(tid);
    json_t *out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:s}", "pool",
                            (json_int_t)pool, "threads", (json_int_t)threads, "placed",
                            (json_int_t)sh.placed, "sriov", (json_int_t)sh.sriov, "virtio",
                            (json_int_t)(sh.placed - sh.sriov), "refused", (json_int_t)sh.refused,
                            "errors", (json_int_t)sh.errors, "seconds", wall, "per_s",
                            wall > 0 ? (double)sh.placed / wall : 0.0, "why", sh.why);
    char *txt = json_dumps(out, JSON_COMPACT);
    printf("%s\n", txt ? txt : "{}");
    free(txt);
    json_decref(out);
    return sh.errors ? 1 : 0;
}

/*
 * test_db.c - fcgi/db.c against the real MariaDB of a test stack.
 *
 * Run by tests/runner.py inside the api layer with BIC_CONFIG pointing at the
 * stack's bicd.ini. Uses rows of login_throttle with names no one else uses.
 * Proves: typed binds and NULLs, duplicate keys map to BIC_E_CONFLICT,
 * db_tx retries a deadlocked transaction until it commits, and a killed
 * connection is replaced transparently for read-only statements.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#undef fail

#include <mysql.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"

static bic_config cfg;
static char prefix[64];

static int setup(void **state)
{
    (void)state;
    char err[256];
    const char *path = getenv("BIC_CONFIG");
    if (!path || config_load(&cfg, path, err, sizeof(err)) < 0) return -1;
    snprintf(prefix, sizeof(prefix), "dbtest-%ld-", (long)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    config_free(&cfg);
    return 0;
}

static const char *name(bic_arena *a, const char *what)
{
    return arena_printf(a, "%s%s", prefix, what);
}

static void binds_and_rows(void **state)
{
    (void)state;
    bic_db *db = db_new(&cfg, cfg.database_user, cfg.database_password);
    bic_arena *a = arena_new(0);
    const char *n = name(a, "binds");
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_insert, NULL, P_STR(n), P_INT(41)), BIC_E_OK);
    assert_int_equal(db_affected(db), 1);
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_bump, NULL, P_STR(n)), BIC_E_OK);
    bic_rows rows;
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_get, &rows, P_STR(n)), BIC_E_OK);
    assert_int_equal(rows.nrows, 1);
    assert_int_equal(rows_int(&rows, 0, 0), 42);
    /* a NULL parameter matches nothing */
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_get, &rows, P_STR(NULL)), BIC_E_OK);
    assert_int_equal(rows.nrows, 0);
    /* wrong parameter count is refused before reaching the server */
    assert_int_equal(DB_EXEC0(db, a, STMT_throttle_get, &rows), BIC_E_INTERNAL);
    arena_free(a);
    db_free(db);
}

static void duplicate_is_conflict(void **state)
{
    (void)state;
    bic_db *db = db_new(&cfg, cfg.database_user, cfg.database_password);
    bic_arena *a = arena_new(0);
    const char *n = name(a, "dup");
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_insert, NULL, P_STR(n), P_INT(1)), BIC_E_OK);
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_insert, NULL, P_STR(n), P_INT(1)),
                     BIC_E_CONFLICT);
    /* the handle stays usable after the error (statement reset) */
    bic_rows rows;
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_get, &rows, P_STR(n)), BIC_E_OK);
    assert_int_equal(rows.nrows, 1);
    arena_free(a);
    db_free(db);
}

/* --- deadlock: two transactions lock rows X and Y in opposite order ---------- */

struct dl {
    const char *x, *y;
    int attempts;
    pthread_barrier_t both_hold_first; /* only on the first attempt of each side */
    int first[2];
};

static bic_err lock_two(bic_db *db, struct dl *d, int side, const char *first, const char *second)
{
    bic_arena *a = arena_new(0);
    bic_err e = DB_EXEC(db, a, STMT_throttle_bump, NULL, P_STR(first));
    if (e == BIC_E_OK && !d->first[side]) {
        d->first[side] = 1;
        pthread_barrier_wait(&d->both_hold_first);
    }
    if (e == BIC_E_OK) e = DB_EXEC(db, a, STMT_throttle_bump, NULL, P_STR(second));
    arena_free(a);
    return e;
}

static bic_err side_a(bic_db *db, void *arg)
{
    struct dl *d = arg;
    __atomic_add_fetch(&d->attempts, 1, __ATOMIC_SEQ_CST);
    return lock_two(db, d, 0, d->x, d->y);
}

static bic_err side_b(bic_db *db, void *arg)
{
    struct dl *d = arg;
    __atomic_add_fetch(&d->attempts, 1, __ATOMIC_SEQ_CST);
    return lock_two(db, d, 1, d->y, d->x);
}

static void *run_b(void *arg)
{
    bic_db *db = db_new(&cfg, cfg.database_user, cfg.database_password);
    bic_err *out = malloc(sizeof(*out));
    *out = db_tx(db, side_b, arg);
    db_free(db);
    return out;
}

static void deadlock_is_retried(void **state)
{
    (void)state;
    bic_db *db = db_new(&cfg, cfg.database_user, cfg.database_password);
    bic_arena *a = arena_new(0);
    struct dl d = {.x = name(a, "x"), .y = name(a, "y")};
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_insert, NULL, P_STR(d.x), P_INT(0)), BIC_E_OK);
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_insert, NULL, P_STR(d.y), P_INT(0)), BIC_E_OK);
    pthread_barrier_init(&d.both_hold_first, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, run_b, &d);
    bic_err ea = db_tx(db, side_a, &d);
    void *rb;
    pthread_join(t, &rb);
    bic_err eb = *(bic_err *)rb;
    free(rb);
    assert_int_equal(ea, BIC_E_OK);
    assert_int_equal(eb, BIC_E_OK);
    /* one side was chosen as the deadlock victim and ran again */
    assert_true(d.attempts >= 3);
    /* both transactions committed exactly once: each row bumped twice */
    bic_rows rows;
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_get, &rows, P_STR(d.x)), BIC_E_OK);
    assert_int_equal(rows_int(&rows, 0, 0), 2);
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_get, &rows, P_STR(d.y)), BIC_E_OK);
    assert_int_equal(rows_int(&rows, 0, 0), 2);
    pthread_barrier_destroy(&d.both_hold_first);
    arena_free(a);
    db_free(db);
}

/* --- a connection killed by the server is replaced ---------------------------- */

static void kill_connection(bic_db *victim, bic_arena *a)
{
    bic_rows rows;
    assert_int_equal(DB_EXEC0(victim, a, STMT_connection_id, &rows), BIC_E_OK);
    bic_db *killer = db_new(&cfg, cfg.database_user, cfg.database_password);
    assert_int_equal(db_ensure(killer), BIC_E_OK);
    char q[64];
    snprintf(q, sizeof(q), "KILL CONNECTION %s", rows_str(&rows, 0, 0));
    assert_int_equal(mysql_query(db_raw(killer), q), 0);
    db_free(killer);
}

static void killed_connection_replaced(void **state)
{
    (void)state;
    bic_db *db = db_new(&cfg, cfg.database_user, cfg.database_password);
    bic_arena *a = arena_new(0);
    bic_rows rows;
    assert_int_equal(DB_EXEC0(db, a, STMT_connection_id, &rows), BIC_E_OK);
    long long before = rows_int(&rows, 0, 0);
    kill_connection(db, a);
    /* read-only: retried on a fresh connection, the caller sees no error */
    assert_int_equal(DB_EXEC0(db, a, STMT_ping, &rows), BIC_E_OK);
    assert_int_equal(DB_EXEC0(db, a, STMT_connection_id, &rows), BIC_E_OK);
    assert_true(rows_int(&rows, 0, 0) != before);
    /* a write is not blindly repeated: it reports unavailable once, then works */
    const char *n = name(a, "gone");
    kill_connection(db, a);
    bic_err e = DB_EXEC(db, a, STMT_throttle_insert, NULL, P_STR(n), P_INT(7));
    assert_int_equal(e, BIC_E_DB_UNAVAILABLE);
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_insert, NULL, P_STR(n), P_INT(7)), BIC_E_OK);
    arena_free(a);
    db_free(db);
}

/* --- a transaction whose connection dies is rolled back and re-run whole ----- */

struct midtx {
    const char *x, *y;
    int attempts;
};

static bic_err midtx_fn(bic_db *db, void *arg)
{
    struct midtx *m = arg;
    bic_arena *a = arena_new(0);
    m->attempts++;
    bic_err e = DB_EXEC(db, a, STMT_throttle_bump, NULL, P_STR(m->x));
    if (e == BIC_E_OK && m->attempts == 1) kill_connection(db, a);
    bic_rows rows;
    /* read-only, but inside a transaction: must fail, not reconnect in autocommit */
    if (e == BIC_E_OK) e = DB_EXEC(db, a, STMT_throttle_get, &rows, P_STR(m->x));
    if (e == BIC_E_OK) e = DB_EXEC(db, a, STMT_throttle_bump, NULL, P_STR(m->y));
    arena_free(a);
    return e;
}

static void lost_connection_rolls_back_whole_transaction(void **state)
{
    (void)state;
    bic_db *db = db_new(&cfg, cfg.database_user, cfg.database_password);
    bic_arena *a = arena_new(0);
    struct midtx m = {name(a, "tx-x"), name(a, "tx-y"), 0};
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_insert, NULL, P_STR(m.x), P_INT(0)), BIC_E_OK);
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_insert, NULL, P_STR(m.y), P_INT(0)), BIC_E_OK);
    assert_int_equal(db_tx(db, midtx_fn, &m), BIC_E_OK);
    assert_int_equal(m.attempts, 2);
    bic_rows rows;
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_get, &rows, P_STR(m.x)), BIC_E_OK);
    assert_int_equal(rows_int(&rows, 0, 0), 1); /* the first attempt's bump was rolled back */
    assert_int_equal(DB_EXEC(db, a, STMT_throttle_get, &rows, P_STR(m.y)), BIC_E_OK);
    assert_int_equal(rows_int(&rows, 0, 0), 1);
    arena_free(a);
    db_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(binds_and_rows),
        cmocka_unit_test(duplicate_is_conflict),
        cmocka_unit_test(deadlock_is_retried),
        cmocka_unit_test(killed_connection_replaced),
        cmocka_unit_test(lost_connection_rolls_back_whole_transaction),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

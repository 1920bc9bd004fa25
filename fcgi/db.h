/*
 * db.h - MariaDB access for one worker thread.
 *
 * One bic_db per thread: its own connection (READ COMMITTED, UTC, utf8mb4) and
 * its own lazily prepared copy of every statement in stmts.def. Errors are
 * classified here, once: duplicate key -> BIC_E_CONFLICT, deadlock or lock wait
 * timeout -> retried by db_tx() then BIC_E_UNAVAILABLE, server gone -> reconnect
 * on the next call and BIC_E_DB_UNAVAILABLE, anything else -> BIC_E_INTERNAL.
 * Each failure is logged where it happens with the current request id.
 */
#ifndef BIC_DB_H
#define BIC_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "errors.h"

#define DB_RO 1u

typedef enum {
#define STMT(name, flags, sql) STMT_##name,
#include "stmts.def"
#undef STMT
    STMT__MAX
} bic_stmt;

typedef enum { BP_NULL, BP_INT, BP_STR } bic_ptype;

typedef struct {
    bic_ptype type;
    long long i;
    const char *s;
    unsigned long len;
} bic_param;

#define P_INT(x) ((bic_param){.type = BP_INT, .i = (long long)(x)})
#define P_NULL   ((bic_param){.type = BP_NULL})
/* A string parameter; NULL binds SQL NULL. */
static inline bic_param P_STR(const char *s)
{
    bic_param p = {.type = s ? BP_STR : BP_NULL, .s = s, .len = s ? (unsigned long)strlen(s) : 0};
    return p;
}
static inline bic_param P_BLOB(const void *s, size_t n)
{
    bic_param p = {.type = BP_STR, .s = s, .len = (unsigned long)n};
    return p;
}

/* Result rows, all in the caller's arena. cell is NULL for SQL NULL. */
typedef struct {
    size_t nrows, ncols;
    char **cell;        /* nrows * ncols, row-major */
    unsigned long *len; /* byte length of each cell */
} bic_rows;

static inline const char *rows_str(const bic_rows *r, size_t row, size_t col)
{
    return r->cell[row * r->ncols + col];
}
long long rows_int(const bic_rows *r, size_t row, size_t col);

typedef struct bic_db bic_db;

/* Returns an owned handle for user/password (does not connect yet), or NULL. */
bic_db *db_new(const bic_config *cfg, const char *user, const char *password);
void db_free(bic_db *db);

/* Sets the request id that error log lines carry (borrowed until the next call). */
void db_set_request(bic_db *db, const char *request_id);

/* Connects now if not connected. BIC_E_OK or BIC_E_DB_UNAVAILABLE. */
bic_err db_ensure(bic_db *db);

/*
 * Runs catalogue statement id with n parameters. When out is not NULL the
 * result set is copied into arena a. Returns BIC_E_OK or a classified error.
 */
bic_err db_exec(bic_db *db, bic_arena *a, bic_stmt id, const bic_param *params, size_t n,
                bic_rows *out);
#define DB_EXEC(db, a, id, out, ...)                                                               \
    db_exec((db), (a), (id), (bic_param[]){__VA_ARGS__},                                           \
            sizeof((bic_param[]){__VA_ARGS__}) / sizeof(bic_param), (out))
#define DB_EXEC0(db, a, id, out) db_exec((db), (a), (id), NULL, 0, (out))

/* Rows changed and the AUTO_INCREMENT id of the last successful db_exec. */
unsigned long long db_affected(const bic_db *db);
unsigned long long db_insert_id(const bic_db *db);

/* True when the last error was a deadlock or lock wait timeout. */
bool db_last_retryable(const bic_db *db);

/*
 * Runs fn(db, ctx) inside one transaction and commits. Rolls back on any error
 * fn returns. Retries the whole transaction (fn must be re-runnable) on
 * deadlock up to 5 times with jittered back-off, and once after a lost
 * connection when the loss happened before COMMIT was sent.
 */
typedef bic_err (*bic_tx_fn)(bic_db *db, void *ctx);
bic_err db_tx(bic_db *db, bic_tx_fn fn, void *ctx);

/* The raw connection, for the migration runner only (multi-statement DDL). */
struct st_mysql *db_raw(bic_db *db);

/* SQL text of a catalogue statement (for tests and docs). */
const char *db_stmt_sql(bic_stmt id);

#endif

#include "db.h"

#include <errno.h>
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

static const struct {
    const char *name, *sql;
    unsigned flags;
} catalogue[STMT__MAX] = {
#define STMT(nm, fl, text) [STMT_##nm] = {#nm, text, fl},
#include "stmts.def"
#undef STMT
};

enum err_class { EC_NONE, EC_DUP, EC_RETRY, EC_GONE, EC_OTHER };

struct bic_db {
    const bic_config *cfg;
    char *user, *password;
    MYSQL *conn;
    MYSQL_STMT *stmt[STMT__MAX];
    const char *request_id;
    enum err_class last;
    unsigned long long affected, insert_id;
    bool in_tx;    /* the server-side transaction is open on conn */
    bool tx_scope; /* inside db_tx's fn: never reconnect or retry on our own */
};

const char *db_stmt_sql(bic_stmt id)
{
    return id < STMT__MAX ? catalogue[id].sql : NULL;
}

long long rows_int(const bic_rows *r, size_t row, size_t col)
{
    const char *s = rows_str(r, row, col);
    return s ? strtoll(s, NULL, 10) : 0;
}

bic_db *db_new(const bic_config *cfg, const char *user, const char *password)
{
    bic_db *db = calloc(1, sizeof(*db));
    if (!db) return NULL;
    db->cfg = cfg;
    db->user = strdup(user ? user : "");
    db->password = strdup(password ? password : "");
    if (!db->user || !db->password) {
        db_free(db);
        return NULL;
    }
    return db;
}

static void disconnect(bic_db *db)
{
    for (int i = 0; i < STMT__MAX; i++)
        if (db->stmt[i]) {
            mysql_stmt_close(db->stmt[i]);
            db->stmt[i] = NULL;
        }
    if (db->conn) mysql_close(db->conn);
    db->conn = NULL;
    db->in_tx = false;
}

void db_free(bic_db *db)
{
    if (!db) return;
    disconnect(db);
    free(db->user);
    free(db->password);
    free(db);
}

void db_set_request(bic_db *db, const char *request_id)
{
    db->request_id = request_id;
}

MYSQL *db_raw(bic_db *db)
{
    return db->conn;
}

static enum err_class classify(unsigned err)
{
    switch (err) {
    case 0:
        return EC_NONE;
    case ER_DUP_ENTRY:
    case ER_DUP_KEY:
        return EC_DUP;
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
        return EC_RETRY;
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_CONN_UNKNOWN_PROTOCOL:
    case ER_CONNECTION_KILLED:
    case ER_SERVER_SHUTDOWN:
    case 4031: /* ER_CLIENT_INTERACTION_TIMEOUT */
    case CR_COMMANDS_OUT_OF_SYNC:
        return EC_GONE;
    default:
        return EC_OTHER;
    }
}

static bic_err class_to_err(enum err_class c)
{
    switch (c) {
    case EC_NONE:
        return BIC_E_OK;
    case EC_DUP:
        return BIC_E_CONFLICT;
    case EC_RETRY:
        return BIC_E_UNAVAILABLE;
    case EC_GONE:
        return BIC_E_DB_UNAVAILABLE;
    default:
        return BIC_E_INTERNAL;
    }
}

bic_err db_ensure(bic_db *db)
{
    if (db->conn) return BIC_E_OK;
    MYSQL *c = mysql_init(NULL);
    if (!c) {
        LOG_ERROR(db->request_id, "mysql_init: out of memory");
        return BIC_E_DB_UNAVAILABLE;
    }
    unsigned ct = (unsigned)db->cfg->database_connect_timeout;
    unsigned io = (unsigned)db->cfg->database_io_timeout;
    mysql_options(c, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_options(c, MYSQL_OPT_READ_TIMEOUT, &io);
    mysql_options(c, MYSQL_OPT_WRITE_TIMEOUT, &io);
    mysql_options(c, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    /* allocation with SKIP LOCKED deadlocks constantly at REPEATABLE READ */
    mysql_options(c, MYSQL_INIT_COMMAND, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
    mysql_options(c, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
    const char *host = db->cfg->database_host;
    const char *sock = db->cfg->database_socket;
    bool use_tcp = host && *host;
    if (!mysql_real_connect(c, use_tcp ? host : "localhost", db->user, db->password,
                            db->cfg->database_name, (unsigned)db->cfg->database_port,
                            use_tcp ? NULL : sock, CLIENT_MULTI_STATEMENTS | CLIENT_FOUND_ROWS)) {
        LOG_ERROR(db->request_id, "cannot connect to MariaDB (%s) as %s: %s", use_tcp ? host : sock,
                  db->user, mysql_error(c));
        mysql_close(c);
        db->last = EC_GONE;
        return BIC_E_DB_UNAVAILABLE;
    }
    db->conn = c;
    db->in_tx = false;
    return BIC_E_OK;
}

/* Records and logs a statement error; returns its class. */
static enum err_class stmt_failed(bic_db *db, bic_stmt id, MYSQL_STMT *st, const char *step)
{
    unsigned code = st ? mysql_stmt_errno(st) : mysql_errno(db->conn);
    const char *msg = st ? mysql_stmt_error(st) : mysql_error(db->conn);
    enum err_class c = classify(code);
    db->last = c;
    if (c != EC_DUP)
        LOG_ERROR(db->request_id, "statement %s: %s failed: %u %s", catalogue[id].name, step, code,
                  msg);
    if (st) mysql_stmt_reset(st); /* connector-c can hang on reuse otherwise */
    if (c == EC_GONE) disconnect(db);
    return c;
}

static MYSQL_STMT *prepared(bic_db *db, bic_stmt id)
{
    if (db->stmt[id]) return db->stmt[id];
    MYSQL_STMT *st = mysql_stmt_init(db->conn);
    if (!st) return NULL;
    if (mysql_stmt_prepare(st, catalogue[id].sql, (unsigned long)strlen(catalogue[id].sql))) {
        stmt_failed(db, id, st, "prepare");
        mysql_stmt_close(st); /* safe after disconnect(): the handle is detached */
        return NULL;
    }
    db->stmt[id] = st;
    return st;
}

static bic_err fetch_rows(bic_db *db, bic_stmt id, MYSQL_STMT *st, bic_arena *a, bic_rows *out)
{
    MYSQL_RES *meta = mysql_stmt_result_metadata(st);
    if (!meta) {
        memset(out, 0, sizeof(*out));
        return BIC_E_OK;
    }
    bool update_max = true;
    mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max);
    if (mysql_stmt_store_result(st)) {
        mysql_free_result(meta);
        return class_to_err(stmt_failed(db, id, st, "store_result"));
    }
    size_t ncols = mysql_num_fields(meta);
    size_t nrows = (size_t)mysql_stmt_num_rows(st);
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    MYSQL_BIND *bind = arena_alloc(a, ncols * sizeof(*bind));
    unsigned long *lengths = arena_alloc(a, ncols * sizeof(*lengths));
    my_bool *nulls = arena_alloc(a, ncols * sizeof(*nulls));
    for (size_t c = 0; c < ncols; c++) {
        unsigned long cap = fields[c].max_length + 1;
        if (cap < 32) cap = 32; /* numbers and dates converted to text */
        bind[c].buffer_type = MYSQL_TYPE_STRING;
        bind[c].buffer = arena_alloc(a, cap);
        bind[c].buffer_length = cap;
        bind[c].length = &lengths[c];
        bind[c].is_null = &nulls[c];
    }
    mysql_free_result(meta);
    out->nrows = nrows;
    out->ncols = ncols;
    out->cell = arena_alloc(a, (nrows * ncols + 1) * sizeof(char *));
    out->len = arena_alloc(a, (nrows * ncols + 1) * sizeof(unsigned long));
    if (ncols && mysql_stmt_bind_result(st, bind)) {
        bic_err e = class_to_err(stmt_failed(db, id, st, "bind_result"));
        return e == BIC_E_OK ? BIC_E_INTERNAL : e;
    }
    for (size_t r = 0; r < nrows; r++) {
        int rc = mysql_stmt_fetch(st);
        if (rc == 1 || rc == MYSQL_NO_DATA) {
            bic_err e = class_to_err(stmt_failed(db, id, st, "fetch"));
            return e == BIC_E_OK ? BIC_E_INTERNAL : e;
        }
        for (size_t c = 0; c < ncols; c++) {
            size_t k = r * ncols + c;
            if (nulls[c]) continue;
            unsigned long n =
                lengths[c] < bind[c].buffer_length ? lengths[c] : bind[c].buffer_length;
            out->cell[k] = arena_memdup(a, bind[c].buffer, n); /* BINARY columns may hold NULs */
            out->len[k] = n;
        }
    }
    mysql_stmt_free_result(st);
    return BIC_E_OK;
}

static bic_err exec_once(bic_db *db, bic_arena *a, bic_stmt id, const bic_param *params, size_t n,
                         bic_rows *out)
{
    if (!db->conn && db->tx_scope) {
        /* the transaction died with its connection: a fresh one would autocommit */
        db->last = EC_GONE;
        return BIC_E_DB_UNAVAILABLE;
    }
    if (db_ensure(db) != BIC_E_OK) return BIC_E_DB_UNAVAILABLE;
    MYSQL_STMT *st = prepared(db, id);
    if (!st) return class_to_err(db->last == EC_NONE ? EC_OTHER : db->last);
    if (mysql_stmt_param_count(st) != n) {
        LOG_ERROR(db->request_id, "statement %s: %lu parameters expected, %zu given",
                  catalogue[id].name, mysql_stmt_param_count(st), n);
        return BIC_E_INTERNAL;
    }
    MYSQL_BIND bind[n ? n : 1];
    memset(bind, 0, sizeof(bind));
    for (size_t i = 0; i < n; i++) {
        switch (params[i].type) {
        case BP_NULL:
            bind[i].buffer_type = MYSQL_TYPE_NULL;
            break;
        case BP_INT:
            bind[i].buffer_type = MYSQL_TYPE_LONGLONG;
            bind[i].buffer = (void *)&params[i].i;
            break;
        case BP_STR:
            bind[i].buffer_type = MYSQL_TYPE_STRING;
            bind[i].buffer = (void *)params[i].s;
            bind[i].buffer_length = params[i].len;
            bind[i].length = (unsigned long *)&params[i].len;
            break;
        }
    }
    if (n && mysql_stmt_bind_param(st, bind)) return class_to_err(stmt_failed(db, id, st, "bind"));
    if (mysql_stmt_execute(st)) return class_to_err(stmt_failed(db, id, st, "execute"));
    db->affected = mysql_stmt_affected_rows(st);
    db->insert_id = mysql_stmt_insert_id(st);
    if (out) return fetch_rows(db, id, st, a, out);
    /* Drain a result set nobody asked for so the connection stays in sync. */
    if (mysql_stmt_field_count(st)) {
        mysql_stmt_store_result(st);
        mysql_stmt_free_result(st);
    }
    return BIC_E_OK;
}

bic_err db_exec(bic_db *db, bic_arena *a, bic_stmt id, const bic_param *params, size_t n,
                bic_rows *out)
{
    if (id >= STMT__MAX) return BIC_E_INTERNAL;
    db->last = EC_NONE;
    bool was_connected = db->conn != NULL;
    bic_err e = exec_once(db, a, id, params, n, out);
    /*
     * A pooled connection may have died while idle (server restarted). Outside a
     * transaction, a read-only statement is always safe to run again on a fresh
     * connection.
     */
    if (e == BIC_E_DB_UNAVAILABLE && was_connected && !db->tx_scope &&
        (catalogue[id].flags & DB_RO)) {
        db->last = EC_NONE;
        e = exec_once(db, a, id, params, n, out);
    }
    return e;
}

unsigned long long db_affected(const bic_db *db)
{
    return db->affected;
}

unsigned long long db_insert_id(const bic_db *db)
{
    return db->insert_id;
}

bool db_last_retryable(const bic_db *db)
{
    return db->last == EC_RETRY;
}

static void backoff(int attempt)
{
    struct timespec ts = {0, (long)(1000000L * (1 << attempt) + rand() % 1000000)};
    nanosleep(&ts, NULL);
}

bic_err db_tx(bic_db *db, bic_tx_fn fn, void *ctx)
{
    bool retried_gone = false;
    for (int attempt = 0; attempt < 6; attempt++) {
        if (db_ensure(db) != BIC_E_OK) return BIC_E_DB_UNAVAILABLE;
        db->last = EC_NONE;
        if (mysql_autocommit(db->conn, 0)) {
            enum err_class c = classify(mysql_errno(db->conn));
            LOG_ERROR(db->request_id, "begin transaction: %s", mysql_error(db->conn));
            if (c == EC_GONE) disconnect(db);
            if (c == EC_GONE && !retried_gone) {
                retried_gone = true;
                continue;
            }
            return class_to_err(c == EC_NONE ? EC_OTHER : c);
        }
        db->in_tx = true;
        db->tx_scope = true;
        bic_err e = fn(db, ctx);
        db->tx_scope = false;
        if (e == BIC_E_OK) {
            if (!mysql_commit(db->conn)) {
                mysql_autocommit(db->conn, 1);
                db->in_tx = false;
                return BIC_E_OK;
            }
            enum err_class c = classify(mysql_errno(db->conn));
            LOG_ERROR(db->request_id, "commit: %u %s", mysql_errno(db->conn),
                      mysql_error(db->conn));
            db->last = c;
            if (c == EC_GONE) {
                /* Outcome unknown: never re-run; the caller reports unavailable. */
                disconnect(db);
                return BIC_E_DB_UNAVAILABLE;
            }
            e = class_to_err(c == EC_NONE ? EC_OTHER : c);
        }
        enum err_class last = db->last;
        if (db->conn) {
            mysql_rollback(db->conn);
            mysql_autocommit(db->conn, 1);
        }
        db->in_tx = false;
        if (last == EC_RETRY) {
            backoff(attempt);
            continue;
        }
        if (last == EC_GONE && !retried_gone) {
            retried_gone = true; /* the statement never committed: safe to re-run */
            continue;
        }
        return e;
    }
    LOG_ERROR(db->request_id, "transaction still deadlocking after 6 attempts");
    return BIC_E_UNAVAILABLE;
}

#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <mysql.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

struct migration {
    int version;
    char name[256];
    char path[4096];
};

static int cmp_migration(const void *a, const void *b)
{
    return ((const struct migration *)a)->version - ((const struct migration *)b)->version;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r < 4096) break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Runs a script of several statements; returns 0 or -1 after logging the failing one. */
static int run_script(MYSQL *c, const char *label, const char *sql, size_t len)
{
    if (mysql_real_query(c, sql, (unsigned long)len)) {
        fprintf(stderr, "bicd migrate: %s: %s\n", label, mysql_error(c));
        return -1;
    }
    int status;
    do {
        MYSQL_RES *r = mysql_store_result(c);
        if (r)
            mysql_free_result(r);
        else if (mysql_field_count(c) != 0) {
            fprintf(stderr, "bicd migrate: %s: %s\n", label, mysql_error(c));
            return -1;
        }
        status = mysql_next_result(c);
        if (status > 0) {
            fprintf(stderr, "bicd migrate: %s: %s\n", label, mysql_error(c));
            return -1;
        }
    } while (status == 0);
    return 0;
}

/* The bookkeeping statements below run with fixed text; values are bound. */
static int exec_bound(MYSQL *c, const char *sql, MYSQL_BIND *bind, MYSQL_BIND *result)
{
    MYSQL_STMT *st = mysql_stmt_init(c);
    int rc = -1;
    if (!st) return -1;
    if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) ||
        (bind && mysql_stmt_bind_param(st, bind)) || mysql_stmt_execute(st)) {
        fprintf(stderr, "bicd migrate: %s\n", mysql_stmt_error(st));
        goto out;
    }
    if (result) {
        if (mysql_stmt_bind_result(st, result) || mysql_stmt_store_result(st)) goto out;
        rc = mysql_stmt_fetch(st) == 0 ? 1 : 0;
    } else {
        rc = 0;
    }
out:
    mysql_stmt_close(st);
    return rc;
}

static int list_migrations(const char *dir, struct migration **out, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "bicd migrate: cannot open %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct migration *list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int v;
        char tail;
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".sql")) continue;
        if (sscanf(e->d_name, "%d%c", &v, &tail) != 2 || tail != '_' || v <= 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct migration *nl = realloc(list, cap * sizeof(*list));
            if (!nl) {
                free(list);
                closedir(d);
                return -1;
            }
            list = nl;
        }
        list[n].version = v;
        snprintf(list[n].name, sizeof(list[n].name), "%s", e->d_name);
        snprintf(list[n].path, sizeof(list[n].path), "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    qsort(list, n, sizeof(*list), cmp_migration);
    for (size_t i = 1; i < n; i++)
        if (list[i].version == list[i - 1].version) {
            fprintf(stderr, "bicd migrate: two migrations numbered %d\n", list[i].version);
            free(list);
            return -1;
        }
    *out = list;
    *count = n;
    return 0;
}

int migrate_run(const bic_config *cfg, const char *dir)
{
    struct migration *list = NULL;
    size_t count = 0;
    if (list_migrations(dir, &list, &count) < 0) return 1;

    bic_db *db = db_new(cfg, cfg->migrate_user, cfg->migrate_password);
    if (!db || db_ensure(db) != BIC_E_OK) {
        fprintf(stderr, "bicd migrate: cannot connect to the database as %s\n", cfg->migrate_user);
        db_free(db);
        free(list);
        return 1;
    }
    MYSQL *c = db_raw(db);
    int rc = 1, applied = 0;
    static const char create[] =
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL,"
        " sha256 CHAR(64) NOT NULL, applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
    long long got_lock = 0;
    MYSQL_BIND lockres = {.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &got_lock};
    if (run_script(c, "schema_migrations", create, strlen(create)) < 0) goto out;
    if (exec_bound(c, "SELECT GET_LOCK('bic_migrate', 60)", NULL, &lockres) != 1 || got_lock != 1) {
        fprintf(stderr, "bicd migrate: another migration holds the lock\n");
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        size_t len;
        char *sql = read_file(list[i].path, &len);
        if (!sql) {
            fprintf(stderr, "bicd migrate: cannot read %s\n", list[i].path);
            goto unlock;
        }
        char sum[65], have[65] = {0};
        unsigned long have_len = 0;
        sha256_hex(sql, len, sum);
        long long version = list[i].version;
        MYSQL_BIND p[3] = {{.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &version}};
        MYSQL_BIND r = {.buffer_type = MYSQL_TYPE_STRING,
                        .buffer = have,
                        .buffer_length = sizeof(have) - 1,
                        .length = &have_len};
        int found = exec_bound(c, "SELECT sha256 FROM schema_migrations WHERE version = ?", p, &r);
        if (found < 0) {
            free(sql);
            goto unlock;
        }
        if (found == 1) {
            have[have_len < 64 ? have_len : 64] = '\0';
            free(sql);
            if (strcmp(have, sum)) {
                fprintf(stderr,
                        "bicd migrate: %s changed after it was applied (sha256 %s, was %s)\n",
                        list[i].name, sum, have);
                goto unlock;
            }
            continue;
        }
        int ok = run_script(c, list[i].name, sql, len);
        free(sql);
        if (ok < 0) goto unlock;
        unsigned long name_len = (unsigned long)strlen(list[i].name), sum_len = 64;
        p[1] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING,
                            .buffer = list[i].name,
                            .buffer_length = name_len,
                            .length = &name_len};
        p[2] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING,
                            .buffer = sum,
                            .buffer_length = sum_len,
                            .length = &sum_len};
        if (exec_bound(c, "INSERT INTO schema_migrations (version, name, sha256) VALUES (?, ?, ?)",
                       p, NULL) < 0)
            goto unlock;
        printf("applied %s\n", list[i].name);
        applied++;
    }
    printf("schema up to date (%zu migrations, %d applied now)\n", count, applied);
    rc = 0;
unlock:
    exec_bound(c, "SELECT RELEASE_LOCK('bic_migrate')", NULL, NULL);
out:
    db_free(db);
    free(list);
    return rc;
}

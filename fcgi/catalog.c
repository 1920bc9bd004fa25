#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit.h"
#include "http.h"
#include "log.h"

#define TICK_BATCH 100

const char *catalog_replica(bic_db *db, bic_arena *a, long long version_id, long long server_id,
                            const char **volume, const char **error)
{
    bic_rows v, r;
    const char *ignored;
    if (!volume) volume = &ignored;
    if (!error) error = &ignored;
    *volume = *error = NULL;
    if (DB_EXEC(db, a, STMT_replica_version, &v, P_INT(version_id)) != BIC_E_OK) return NULL;
    if (v.nrows != 1) {
        *error = arena_printf(a, "image version %lld does not exist", version_id);
        return "failed";
    }
    if (strcmp(rows_str(&v, 0, 0), "ready")) {
        *error = arena_printf(a, "image version %lld is %s", version_id, rows_str(&v, 0, 0));
        return "failed";
    }
    if (DB_EXEC(db, a, STMT_replica_lock, &r, P_INT(CATALOG_REFETCH_SECONDS), P_INT(version_id),
                P_INT(server_id)) != BIC_E_OK)
        return NULL;
    if (r.nrows == 1) {
        const char *st = rows_str(&r, 0, 0);
        if (!strcmp(st, "ready")) {
            *volume = arena_strdup(a, rows_str(&r, 0, 1));
            return "ready";
        }
        if (!strcmp(st, "fetching")) return "fetching";
        if (!rows_int(&r, 0, 3)) {
            *error = arena_strdup(a, rows_str(&r, 0, 2));
            return "failed";
        }
    }
    /* no replica yet, or a failure old enough to try again */
    json_t *params =
        json_pack("{s:I, s:s, s:s, s:I, s:s}", "version_id", (json_int_t)version_id, "path",
                  arena_printf(a, "/api/v1/agent/image-versions/%lld/content", version_id),
                  "sha256", rows_str(&v, 0, 1), "size", (json_int_t)rows_int(&v, 0, 2), "volume",
                  arena_printf(a, "bic-image-%lld.qcow2", version_id));
    char *pj = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(params);
    bic_err e = pj ? DB_EXEC(db, a, STMT_task_insert, NULL, P_INT(server_id), P_STR("image.fetch"),
                             P_STR(pj), P_INT(CATALOG_FETCH_ATTEMPTS), P_STR("reconciler"))
                   : BIC_E_INTERNAL;
    free(pj);
    if (e != BIC_E_OK) return NULL;
    long long task = (long long)db_insert_id(db);
    e = r.nrows ? DB_EXEC(db, a, STMT_replica_refetch, NULL, P_INT(task), P_INT(version_id),
                          P_INT(server_id))
                : DB_EXEC(db, a, STMT_replica_insert, NULL, P_INT(version_id), P_INT(server_id),
                          P_INT(task));
    return e == BIC_E_OK ? "fetching" : NULL;
}

/* The value of key in a task's result (JSON text) as a string, copied into a; NULL if absent. */
static const char *result_str(bic_arena *a, const char *result, const char *key)
{
    json_error_t jerr;
    json_t *j = result ? json_loads(result, 0, &jerr) : NULL;
    const char *v = json_string_value(json_object_get(j, key));
    const char *out = v ? arena_strdup(a, v) : NULL;
    json_decref(j);
    return out;
}

/* ---- replicas ---- */

static void replica_outcome(bic_db *db, bic_arena *a, const bic_rows *r, size_t i)
{
    long long version = rows_int(r, i, 0), server = rows_int(r, i, 1);
    const char *tstate = rows_str(r, i, 3), *result = rows_str(r, i, 4);
    const char *err = NULL, *volume = "", *verified = "";
    if (!tstate) {
        err = "the image.fetch task is gone";
    } else if (!strcmp(tstate, "failed")) {
        const char *le = rows_str(r, i, 5);
        err = le && *le ? le : "the image.fetch task failed";
    } else {
        const char *sha = result_str(a, result, "sha256");
        const char *vol = result_str(a, result, "volume");
        const char *ver = result_str(a, result, "verified");
        if (!sha || strcasecmp(sha, rows_str(r, i, 6)))
            err = arena_printf(a, "the fetched file's sha256 %.64s is not the version's %s",
                               sha ? sha : "(none)", rows_str(r, i, 6));
        else if (!vol || vol[0] != '/' || strlen(vol) > 255)
            err = "the image.fetch result names no absolute volume path";
        else
            volume = vol;
        if (!err && ver && (!strcmp(ver, "content") || !strcmp(ver, "download"))) verified = ver;
    }
    if (DB_EXEC(db, a, STMT_replica_done, NULL, P_STR(err ? "failed" : "ready"), P_STR(volume),
                P_STR(verified), P_STR(err ? arena_printf(a, "%.500s", err) : ""), P_INT(version),
                P_INT(server), rows_str(r, i, 2) ? P_INT(rows_int(r, i, 2)) : P_NULL) != BIC_E_OK)
        return;
    if (err && db_affected(db))
        LOG_WARN(NULL, "image version %lld on server %lld: %s", version, server, err);
}

/* ---- captures ---- */

struct capture_done {
    bic_arena *a;
    const bic_rows *r;
    size_t i;
};

static bic_err capture_done_tx(bic_db *db, void *arg)
{
    struct capture_done *c = arg;
    const bic_rows *r = c->r;
    size_t i = c->i;
    bic_arena *a = c->a;
    long long id = rows_int(r, i, 0);
    const char *tstate = rows_str(r, i, 2), *have = rows_str(r, i, 5), *err = NULL;
    if (!tstate) {
        err = "the desktop.capture task is gone";
    } else if (!strcmp(tstate, "failed")) {
        const char *le = rows_str(r, i, 4);
        err = arena_printf(a, "capture failed: %s", le && *le ? le : "the task failed");
    } else if (!*have) {
        err = "the desktop.capture task succeeded but no file was uploaded";
    } else {
        const char *sha = result_str(a, rows_str(r, i, 3), "sha256");
        if (sha && strcasecmp(sha, have))
            err = arena_printf(a, "the capture task reports sha256 %.64s, the upload was %s", sha,
                               have);
    }
    bic_err e = DB_EXEC(db, a, STMT_capture_done, NULL, P_STR(err ? "failed" : "ready"),
                        P_STR(err ? arena_printf(a, "%.500s", err) : ""), P_INT(id),
                        rows_str(r, i, 1) ? P_INT(rows_int(r, i, 1)) : P_NULL);
    if (e != BIC_E_OK || db_affected(db) == 0) return e;
    bic_req req;
    memset(&req, 0, sizeof(req));
    req.db = db;
    req.arena = a;
    req.remote_addr = "";
    snprintf(req.request_id, sizeof(req.request_id), "ctl-catalog");
    json_t *sum = json_pack("{s:I, s:I, s:s}", "image_id", (json_int_t)rows_int(r, i, 6), "version",
                            (json_int_t)rows_int(r, i, 7), "state", err ? "failed" : "ready");
    if (err) json_object_set_new(sum, "error", json_string(err));
    return audit_write_as(&req, 0, "system", "image_version.captured", "image_version",
                          arena_printf(a, "%lld", id), err == NULL, sum);
}

void catalog_tick(bic_db *db, bic_arena *a)
{
    bic_rows rows;
    if (DB_EXEC(db, a, STMT_replica_finished, &rows, P_INT(TICK_BATCH)) == BIC_E_OK)
        for (size_t i = 0; i < rows.nrows; i++)
            replica_outcome(db, a, &rows, i);
    if (DB_EXEC(db, a, STMT_capture_finished, &rows, P_INT(TICK_BATCH)) == BIC_E_OK)
        for (size_t i = 0; i < rows.nrows; i++) {
            struct capture_done c = {a, &rows, i};
            db_tx(db, capture_done_tx, &c);
        }
}

/*
 * h_tasks.c - commands to agents (operator role): create, list, read. A task is
 * recorded here and pushed by the leader's dispatcher (controller.c); no
 * request ever waits for an agent.
 */
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "handlers.h"
#include "util.h"

static const char *const task_types[] = {"domain.start",   "domain.shutdown",   "domain.reboot",
                                         "domain.destroy", "inventory.refresh", NULL};
const bic_field fields_task[] = {
    {"type", F_STR, true, 1, 32, task_types},
    {"params", F_OBJECT, false},
    {0},
};

json_t *task_json(bic_req *req, const bic_rows *r, size_t i)
{
    json_error_t jerr;
    json_t *params = json_loads(rows_str(r, i, 3), 0, &jerr);
    json_t *result = rows_str(r, i, 8) ? json_loads(rows_str(r, i, 8), 0, &jerr) : NULL;
    return json_pack(
        "{s:I, s:I, s:s, s:o, s:s, s:I, s:I, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "id",
        (json_int_t)rows_int(r, i, 0), "server_id", (json_int_t)rows_int(r, i, 1), "type",
        rows_str(r, i, 2), "params", params ? params : json_object(), "state", rows_str(r, i, 4),
        "attempts", (json_int_t)rows_int(r, i, 5), "max_attempts", (json_int_t)rows_int(r, i, 6),
        "last_error", rows_str(r, i, 7), "result", result ? result : json_null(), "created_by",
        rows_str(r, i, 9), "created_at", json_time(req, rows_str(r, i, 10)), "sent_at",
        json_time(req, rows_str(r, i, 11)), "started_at", json_time(req, rows_str(r, i, 12)),
        "finished_at", json_time(req, rows_str(r, i, 13)), "next_attempt_at",
        json_time(req, rows_str(r, i, 14)));
}

struct task_ctx {
    bic_req *req;
    long long server_id, id;
};

static bic_err task_create_tx(bic_db *db, void *arg)
{
    struct task_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows s;
    bic_err e = DB_EXEC(db, req->arena, STMT_server_credential, &s, P_INT(c->server_id));
    if (e != BIC_E_OK) return fail(req, e, "server lookup failed");
    if (s.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no server %lld", c->server_id);
    const char *type = json_get_str(req->json, "type", "");
    const json_t *params = json_object_get(req->json, "params");
    char *pj = params ? json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
    arena_defer(req->arena, free, pj);
    e = DB_EXEC(db, req->arena, STMT_task_insert, NULL, P_INT(c->server_id), P_STR(type), P_STR(pj),
                P_INT(req->cfg->agents_task_max_attempts), P_STR(req->who.username));
    if (e != BIC_E_OK) return fail(req, e, "cannot queue the task");
    c->id = (long long)db_insert_id(db);
    return audit_write(
        req, "task.create", "server", req->param[0], true,
        json_pack("{s:I, s:s, s:s}", "task", (json_int_t)c->id, "type", type, "params", pj));
}

bic_err h_tasks_create(bic_req *req, bic_resp *resp)
{
    struct task_ctx c = {req, 0, 0};
    bic_err e = param_id(req, 0, &c.server_id);
    if (e != BIC_E_OK) return e;
    const char *type = json_get_str(req->json, "type", "");
    const json_t *params = json_object_get(req->json, "params");
    if (!strncmp(type, "domain.", 7)) {
        const char *uuid = json_get_str(params, "uuid", NULL);
        if (!uuid || strlen(uuid) != 36)
            return fail(req, BIC_E_VALIDATION, "%s needs params.uuid (the domain's UUID)", type);
        if (json_object_size(params) != 1)
            return fail(req, BIC_E_VALIDATION, "%s takes only params.uuid", type);
    } else if (params && json_object_size(params)) {
        return fail(req, BIC_E_VALIDATION, "%s takes no params", type);
    }
    e = db_tx(req->db, task_create_tx, &c);
    bic_rows rows;
    if (e == BIC_E_OK) e = DB_EXEC(req->db, req->arena, STMT_task_get, &rows, P_INT(c.id));
    if (e != BIC_E_OK) return e;
    resp_header(req, resp, "Location: /api/v1/tasks/%lld", c.id);
    resp_json(req, resp, 202, task_json(req, &rows, 0));
    return BIC_E_OK;
}

static const char *const task_states[] = {"queued", "sent", "running", "succeeded", "failed", NULL};

bic_err h_tasks_list(bic_req *req, bic_resp *resp)
{
    long long limit, before, server = 0;
    bic_err e = query_page(req, 50, 500, "before", 1LL << 62, &limit, &before);
    if (e == BIC_E_OK) e = query_int(req, "server", 0, 1LL << 53, &server);
    if (e != BIC_E_OK) return e;
    const char *state = req_query(req, "state");
    if (state && !*state) state = NULL;
    bool known = !state;
    for (const char *const *s = task_states; state && *s; s++)
        known |= !strcmp(*s, state);
    if (!known)
        return fail(req, BIC_E_VALIDATION,
                    "state must be one of queued, sent, running, succeeded, failed");
    bic_param ps = server ? P_INT(server) : P_NULL;
    bic_rows rows;
    e = DB_EXEC(req->db, req->arena, STMT_task_list, &rows, P_INT(before), ps, ps, P_STR(state),
                P_STR(state), P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "task list failed");
    resp_page(req, resp, &rows, task_json, limit, "next_before");
    return BIC_E_OK;
}

bic_err h_tasks_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = DB_EXEC(req->db, req->arena, STMT_task_get, &rows, P_INT(id));
    if (e != BIC_E_OK) return e == BIC_E_NOT_FOUND ? e : fail(req, e, "task lookup failed");
    if (rows.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no task %lld", id);
    resp_json(req, resp, 200, task_json(req, &rows, 0));
    return BIC_E_OK;
}

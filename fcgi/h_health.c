/*
 * h_health.c - GET /api/v1/health and GET /api/v1/version.
 */
#include "handlers.h"
#include "version.h"

bic_err h_health_get(bic_req *req, bic_resp *resp)
{
    bic_rows rows;
    bic_err e = DB_EXEC0(req->db, req->arena, STMT_ping, &rows);
    if (e != BIC_E_OK)
        return fail(req, BIC_E_DB_UNAVAILABLE, "health: the database did not answer");
    resp_json(req, resp, 200, json_pack("{s:s, s:s}", "status", "ok", "database", "ok"));
    return BIC_E_OK;
}

bic_err h_version_get(bic_req *req, bic_resp *resp)
{
    bic_rows rows;
    json_t *schema = json_null();
    if (DB_EXEC0(req->db, req->arena, STMT_schema_version, &rows) == BIC_E_OK && rows.nrows)
        schema = json_integer(rows_int(&rows, 0, 0));
    resp_json(req, resp, 200,
              json_pack("{s:s, s:s, s:s, s:o}", "name", "bic", "version", BIC_VERSION, "revision",
                        BIC_GIT_REV, "schema", schema));
    return BIC_E_OK;
}

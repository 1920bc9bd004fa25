/*
 * h_sriov.c - the SR-IOV virtual functions of a server, and who holds each one.
 */
#include "handlers.h"
#include "sriov.h"
#include "util.h"

bic_err h_servers_vfs(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows s, v;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = DB_EXEC(req->db, req->arena, STMT_server_exists, &s, P_INT(id));
    if (e == BIC_E_OK && s.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no server %lld", id);
    if (e == BIC_E_OK) e = DB_EXEC(req->db, req->arena, STMT_server_vfs_list, &v, P_INT(id));
    if (e != BIC_E_OK) return e == BIC_E_NOT_FOUND ? e : fail(req, e, "VF list failed");
    json_t *items = json_array();
    for (size_t i = 0; i < v.nrows; i++) {
        /* a released VF keeps its last MAC and VLAN in the row (the foreign key clears only
           the holder): they mean nothing until the next claim */
        bool held = rows_str(&v, i, 9) != NULL;
        json_t *holder =
            rows_str(&v, i, 9)
                ? json_pack("{s:I, s:s, s:o, s:o}", "id", (json_int_t)rows_int(&v, i, 9), "name",
                            rows_str(&v, i, 10), "pool_id",
                            rows_str(&v, i, 11) ? json_integer(rows_int(&v, i, 11)) : json_null(),
                            "pool_name",
                            rows_str(&v, i, 12) ? json_string(rows_str(&v, i, 12)) : json_null())
                : json_null();
        json_array_append_new(
            items,
            json_pack("{s:I, s:s, s:I, s:s, s:s, s:b, s:o, s:o, s:o, s:o}", "id",
                      (json_int_t)rows_int(&v, i, 0), "nic", rows_str(&v, i, 1), "index",
                      (json_int_t)rows_int(&v, i, 2), "pci", rows_str(&v, i, 3), "driver",
                      rows_str(&v, i, 4), "present", rows_int(&v, i, 5) != 0, "mac",
                      held && rows_str(&v, i, 6) ? json_string(rows_str(&v, i, 6)) : json_null(),
                      "vlan",
                      held && rows_str(&v, i, 7) ? json_integer(rows_int(&v, i, 7)) : json_null(),
                      "reserved_at", held ? json_time(req, rows_str(&v, i, 8)) : json_null(),
                      "desktop", holder));
    }
    resp_json(req, resp, 200, json_pack("{s:o}", "items", items));
    return BIC_E_OK;
}

#include "audit.h"

#include <stdlib.h>

bic_err audit_write_as(bic_req *req, long long actor_id, const char *actor_name, const char *action,
                       const char *target_type, const char *target_id, bool success,
                       json_t *summary)
{
    char *text = summary ? json_dumps(summary, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(summary);
    bic_err e = DB_EXEC(
        req->db, req->arena, STMT_audit_insert, NULL, actor_id > 0 ? P_INT(actor_id) : P_NULL,
        P_STR(actor_name ? actor_name : ""), P_STR(action), P_STR(target_type ? target_type : ""),
        P_STR(target_id ? target_id : ""), P_INT(success ? 1 : 0), P_STR(text ? text : "{}"),
        P_STR(req->remote_addr ? req->remote_addr : ""), P_STR(req->request_id));
    free(text);
    return e == BIC_E_OK ? e : fail(req, e, "cannot write the audit entry for %s", action);
}

bic_err audit_write(bic_req *req, const char *action, const char *target_type,
                    const char *target_id, bool success, json_t *summary)
{
    return audit_write_as(req, req->who.user_id, req->who.username, action, target_type, target_id,
                          success, summary);
}

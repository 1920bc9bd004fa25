/*
 * audit.h - the audit log: sign-ins and every administrative change.
 *
 * Rows are written with the caller's statement handle, so inside a
 * transaction the audit entry commits or rolls back with the change itself.
 */
#ifndef BIC_AUDIT_H
#define BIC_AUDIT_H

#include <jansson.h>
#include <stdbool.h>

#include "http.h"

/*
 * Records action (e.g. "user.update") on target by the signed-in caller,
 * with summary (stolen; may be NULL) describing what changed. Never put
 * secrets in a summary.
 */
bic_err audit_write(bic_req *req, const char *action, const char *target_type,
                    const char *target_id, bool success, json_t *summary);

/* Same, naming the actor explicitly (sign-in attempts, where nobody is signed in yet). */
bic_err audit_write_as(bic_req *req, long long actor_id, const char *actor_name, const char *action,
                       const char *target_type, const char *target_id, bool success,
                       json_t *summary);

#endif

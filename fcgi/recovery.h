/*
 * recovery.h - failure recovery, run by the bicd that holds the leader lease
 * (docs/automation.md, "Failure recovery").
 *
 * A server that stops heartbeating (the controller marks it offline) becomes suspect; after
 * the module's grace it is fenced through its BMC (fence.c); only once the BMC confirms it
 * is off, or an admin confirms it (h_recovery.c), are its desktops recovered: dedicated
 * desktops restarted on another server of the module when the module keeps disks on shared
 * storage, floating ones removed so that their pool provisions new ones. A server whose
 * fencing cannot be confirmed is 'unfenceable' and its desktops are never started elsewhere.
 */
#ifndef BIC_RECOVERY_H
#define BIC_RECOVERY_H

#include <stdbool.h>

#include "db.h"
#include "http.h"

struct bic_config;
struct bic_arena;

/* One pass of the loop (observe, fence, recover, follow the desktops being recovered). */
void recovery_tick(bic_db *db, struct bic_arena *a, const struct bic_config *cfg);

/*
 * Records an action of the recovery loop: an automation_actions row, an audit row
 * ("recovery.<action>", actor "system" unless req names a signed-in user) and, when a server
 * is concerned, an events row ("recovery.<action>"). In the caller's transaction; *id gets the
 * action's id when id is not NULL.
 */
bic_err recovery_record(bic_req *req, long long module_id, const char *action, long long server_id,
                        long long desktop_id, const char *desktop_uuid, long long target_id,
                        const char *state, bool dry_run, const char *reason, long long *id);

#endif

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

#include "fence.h"

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

/*
 * A server's BMC from its columns (bmc_type, bmc_address, bmc_user, bmc_password_sealed of
 * sealed_len bytes or NULL, bmc_ca_cert or NULL) as a fence_target for fence.c, the password
 * opened into a: 0; 1 when bmc_type is "none"; -1 when the password does not open (why says
 * so). Wipe the password after the calls with recovery_bmc_wipe. Also used by power.c's wake.
 */
int recovery_bmc_target(bic_req *req, struct bic_arena *a, long long server_id, const char *type,
                        const char *address, const char *user, const char *sealed,
                        size_t sealed_len, const char *ca, long timeout_ms, fence_target *t,
                        char *why, size_t len);
void recovery_bmc_wipe(fence_target *t);

#endif

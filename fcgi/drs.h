/*
 * drs.h - dynamic resource distribution (balancing, issue 8), run by the bicd holding the
 * leader lease.
 *
 * Per module with balance_settings.enabled: a server whose CPU or memory load stays above
 * its threshold for hold_s sheds running pool desktops (no session first, then
 * disconnected ones, then the longest idle) by live migration (the agent task
 * desktop.migrate) to the server of the module where the move lowers the higher of the two
 * loads the most, if by at least min_gain_pct, within the capacity rules (placement.c) and
 * without pushing the target over a threshold; at most max_concurrent migrations at once,
 * and no desktop is moved again within move_hold_s. Desktops holding an SR-IOV VF are not
 * moved (recorded as skipped). See docs/automation.md, "Resource balancing".
 */
#ifndef BIC_DRS_H
#define BIC_DRS_H

#include <jansson.h>
#include <stdbool.h>

#include "http.h"

typedef struct drs_settings {
    long long module_id;
    bool configured, enabled, dry_run;
    long long cpu_high_pct, mem_high_pct, hold_s, min_gain_pct, max_concurrent, move_hold_s;
    const char *module_name, *updated_by;
} drs_settings;

/* Loads module_id's settings (defaults without a row). BIC_E_OK, BIC_E_NOT_FOUND (not
 * reported) or the database error. */
bic_err drs_settings_load(bic_db *db, bic_arena *a, long long module_id, drs_settings *out);

/* New reference. */
json_t *drs_settings_json(const drs_settings *s);

/*
 * What the balancer would do now for module_id: {"module_id", "enabled", "dry_run",
 * "servers": [{"id", "hostname", "cpu_pct", "mem_pct", "load_pct", "over", "over_for_s",
 * "running"}], "spread_pct", "in_flight", "actions": [{"action": "migrate"|"skip",
 * "desktop_id", "server_id", "target_server_id", "reason"}]}. New reference in *out.
 */
bic_err drs_plan_json(bic_db *db, bic_arena *a, const bic_config *cfg, long long module_id,
                      json_t **out);

/* The leader's pass (at most every [balance] tick_ms). */
void drs_tick(bic_db *db, bic_arena *a, const bic_config *cfg);

#endif

/*
 * ag_power.h - the host.power_off task (docs/agent-protocol.md, "Host power").
 *
 * On a real hypervisor the agent refuses while any domain runs, then schedules the host's
 * power-off a minute ahead (`shutdown -P +1`, posix_spawn, no shell) so that its status
 * reaches CCC first. On the libvirt test driver (fleet members, tests) it simulates the
 * power-off: it writes <state_dir>/powered-off, and while that file exists the agent sends
 * no heartbeats or events and refuses tasks (503), as a powered-off host would. Removing the
 * file is the simulated power-on (what the test's Wake-on-LAN listener or BMC does).
 */
#ifndef BIC_AG_POWER_H
#define BIC_AG_POWER_H

#include <jansson.h>
#include <stddef.h>

#include "ag_config.h"
#include "ag_exec.h"

#define AG_POWER_OFF_FILE "powered-off"
#define AG_POWER_SHUTDOWN "/sbin/shutdown"

/* 1 when cfg's hypervisor is the libvirt test driver (the power-off is simulated). */
int ag_power_simulated(const ag_config *cfg);

/* 1 while a simulated power-off is in force (<state_dir>/powered-off exists), else 0. */
int ag_power_is_off(const ag_config *cfg);

/*
 * Runs host.power_off (params: {} or {"reason": string}). Returns 0 with *result
 * {"simulated": bool, "domains_running": 0, "in_s": seconds until the power goes}, -1 with err
 * ("<n> domains are running: not powering off", the spawn error), or AG_PROV_NOT_MINE for
 * any other type.
 */
int ag_power_task(const ag_exec_env *env, const char *type, const json_t *params, json_t **result,
                  char *err, size_t errlen);

#endif

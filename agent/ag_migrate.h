/*
 * ag_migrate.h - the desktop.migrate task (docs/agent-protocol.md, "Live migration").
 *
 * params: {"uuid", "dest_uri", "dest_listen_url", "dest_server_id", "dest_hostname"}, and
 * optionally "copy_storage": "none" (default: disks on shared storage) | "inc" | "all".
 * A real agent opens dest_uri and live-migrates the domain there with virDomainMigrate3
 * (live, persistent on the destination, undefined here). A fleet member (test driver) whose
 * fleet holds the destination (env->peer_conn finds it by dest_listen_url) simulates it: the
 * destination defines the domain (and starts it when it ran here), then this host destroys
 * and undefines it.
 */
#ifndef BIC_AG_MIGRATE_H
#define BIC_AG_MIGRATE_H

#include <jansson.h>
#include <stddef.h>

#include "ag_exec.h"

/*
 * Runs desktop.migrate. 0 with *result {"mode": "libvirt"|"simulated", "dest_uri", "state":
 * the domain's state at the destination}, -1 with err, or AG_PROV_NOT_MINE for another type.
 */
int ag_migrate_task(const ag_exec_env *env, const char *type, const json_t *params,
                    json_t **result, char *err, size_t errlen);

#endif

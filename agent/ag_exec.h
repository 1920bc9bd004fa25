/*
 * ag_exec.h - runs one task or one call of docs/agent-protocol.md against
 * libvirt.
 *
 * Task types: domain.start, domain.shutdown (ACPI), domain.reboot,
 * domain.destroy with params {"uuid"}, inventory.refresh (no params), and the
 * provisioning tasks of ag_provision.h (image.fetch, desktop.create,
 * desktop.refresh, desktop.delete, desktop.set_spec, desktop.capture).
 * Call types (answered synchronously, never queued): desktop.console
 * (ag_console.h).
 */
#ifndef BIC_AG_EXEC_H
#define BIC_AG_EXEC_H

#include <jansson.h>
#include <libvirt/libvirt.h>
#include <stddef.h>

#include "ag_config.h"
#include "ag_http.h"

#define AG_EXEC_UNKNOWN_TYPE "unknown task type"
#define AG_EXEC_NOT_A_CALL   "not a call type (calls: desktop.console)"

typedef struct ag_exec_env {
    virConnectPtr conn; /* borrowed; NULL while the hypervisor connection is down */
    /* inventory.refresh: sends a full heartbeat and sets *seq; 0, or -1 with err */
    int (*refresh)(void *arg, long long *seq, char *err, size_t errlen);
    void *arg;
    /* provisioning (all borrowed; NULL: those tasks fail saying what is missing) */
    const ag_config *cfg; /* storage_pool, image_dir, domain_type, vnc_listen, network, state_dir */
    ag_http *http;        /* to CCC (ccc_url, ca_file), used by this thread only */
    /* writes "<server_id>.<credential>" into buf (the caller wipes it); 0, or -1 */
    int (*bearer)(void *arg, char *buf, size_t len);
    /* desktop.migrate in a fleet: a new reference to the member listening at listen_url, or
       NULL (then a real migration to dest_uri); NULL outside fleets (ag_migrate.h) */
    virConnectPtr (*peer_conn)(void *arg, const char *listen_url);
    void *peer_arg;
    /* the management address (host of listen_url): new domains' VNC listens there when
       vnc_listen is a wildcard (0.0.0.0, ::), never on every address; NULL or "": as given */
    const char *mgmt_host;
} ag_exec_env;

/*
 * Runs the task. Returns 0 with *result set to a new object, or -1 with the
 * reason in err (what the agent reports as "error"):
 *   domain.*: {"state": state after, "changed": false when the domain already was
 *   in the wanted state (start of a running domain, shutdown or destroy of a
 *   stopped one)}; errors "domain not found: <uuid>", "params.uuid ...",
 *   "hypervisor connection is down", "<op>: <libvirt message>".
 *   inventory.refresh: {"heartbeat_seq": seq of the full heartbeat}.
 *   provisioning tasks: see ag_provision.h.
 *   anything else: -1 with AG_EXEC_UNKNOWN_TYPE.
 */
int ag_exec_task(const ag_exec_env *env, const char *type, const json_t *params, json_t **result,
                 char *err, size_t errlen);

/*
 * Runs a call of type with params (borrowed) on conn (borrowed; NULL while the
 * hypervisor is down); console_host replaces a wildcard VNC listen address.
 * Returns the HTTP status of the answer: 200 with *result (new), else the
 * reason in err. A type that is not a call is 400 with AG_EXEC_NOT_A_CALL
 * (tasks are never run this way); desktop.console: see ag_console_call.
 */
int ag_exec_call(virConnectPtr conn, const char *console_host, const char *type,
                 const json_t *params, json_t **result, char *err, size_t errlen);

#endif

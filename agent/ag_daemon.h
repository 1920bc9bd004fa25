/*
 * ag_daemon.h - `bic-agent run`: enrollment, heartbeats, events, the task
 * listener and the task worker (docs/agent-protocol.md).
 *
 * Threads: the caller of ag_daemon_run (enrollment, heartbeats, events, libvirt
 * reconnection), libvirt's event loop, the listener's polling thread and the
 * task worker. Several daemons may run in one machine (different state_dir,
 * listen, machine_id), and even in one process (tests).
 */
#ifndef BIC_AG_DAEMON_H
#define BIC_AG_DAEMON_H

#include "ag_config.h"

#define AG_EVENTS_MAX    256 /* queued lifecycle events; the oldest are dropped */
#define AG_CCC_BACKOFF_S 30  /* cap of the back-off when CCC cannot be reached */
#define AG_TASK_KEEP_S   (7 * 24 * 3600)

typedef struct ag_daemon ag_daemon;

/*
 * Prepares a daemon for a resolved configuration (borrowed; it must outlive the
 * daemon): locks state_dir, loads the state, binds the listener. Returns NULL
 * with err (config problem, state_dir in use by another agent, port taken).
 */
ag_daemon *ag_daemon_new(const ag_config *cfg, char *err, size_t errlen);

/* Runs until ag_daemon_stop. Returns 0. */
int ag_daemon_run(ag_daemon *d);

/* Asks ag_daemon_run to return; callable from any thread (not a signal handler). */
void ag_daemon_stop(ag_daemon *d);

/* The task listener's bound port (useful with listen port 0). */
int ag_daemon_listen_port(const ag_daemon *d);

/* The URL the agent gives CCC for its listener. */
const char *ag_daemon_listen_url(const ag_daemon *d);

void ag_daemon_free(ag_daemon *d);

#endif

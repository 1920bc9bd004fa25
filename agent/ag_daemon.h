/*
 * ag_daemon.h - `bic-agent run`: one agent (ag_agent.h) driven by a loop of its
 * own, with its own task listener and task worker.
 *
 * Threads: the caller of ag_daemon_run (enrollment, heartbeats, events, libvirt
 * reconnection), libvirt's event loop, the listener's polling thread and the
 * task worker. Several daemons may run in one machine (different state_dir,
 * listen, machine_id), and even in one process (tests).
 */
#ifndef BIC_AG_DAEMON_H
#define BIC_AG_DAEMON_H

#include "ag_config.h"

typedef struct ag_daemon ag_daemon;

/*
 * Prepares a daemon for a resolved configuration (borrowed; it must outlive the
 * daemon): binds the listener, locks state_dir, loads the state. Returns NULL
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

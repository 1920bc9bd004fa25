/*
 * ag_agent.h - one bServer's side of docs/agent-protocol.md: enrollment,
 * heartbeats, lifecycle events and tasks, for one identity (state_dir,
 * machine_id, credential, seq) and one libvirt connection.
 *
 * An agent owns no thread, socket or CCC connection; a driver runs it:
 * ag_daemon drives one (its own loop, listener and task worker), ag_fleet many
 * from a few threads sharing one listener. The driver
 *   - calls ag_agent_step() from one thread at a time, when the time it
 *     returned has come or when the agent called opts.wake;
 *   - hands the task requests of this agent to ag_agent_on_task() and its
 *     calls to ag_agent_on_call() (any threads, also at the same time);
 *   - runs accepted tasks with a worker of the agent's own
 *     (ag_agent_start_worker) or, after opts.tasks_ready, by calling
 *     ag_agent_work_task() from one thread at a time.
 * libvirt's event loop (ag_hv) is the only thread the agent starts itself.
 */
#ifndef BIC_AG_AGENT_H
#define BIC_AG_AGENT_H

#include <libvirt/libvirt.h>
#include <stddef.h>

#include "ag_config.h"
#include "ag_http.h"

#define AG_EVENTS_MAX      256 /* queued lifecycle events; the oldest are dropped */
#define AG_EVENTS_PER_POST 100 /* CCC takes at most this many events a request */
#define AG_CCC_BACKOFF_S   30  /* cap of the back-off when CCC cannot be reached */
#define AG_TASK_KEEP_S     (7 * 24 * 3600)
#define AG_MAX_SLEEP_MS    60000 /* ag_agent_step asks to be stepped again within this */

typedef struct ag_agent_opts {
    const char *listen_url; /* what CCC is told to call for tasks (copied) */
    const char *log_tag;    /* put before each log line of this agent ("" or NULL: none) */
    /*
     * Heartbeat slots: with slots > 0, heartbeats after the first keep to slot
     * `slot` of `slots` equal parts of the interval (ag_agent_slot_next), so
     * that agents driven together spread their heartbeats evenly. slots 0:
     * one interval after the previous heartbeat.
     */
    size_t slot, slots;
    /*
     * Work became due (a lifecycle event, an inventory.refresh, a lost
     * hypervisor): step the agent soon. Called from any thread, with no lock
     * of the agent held. Required.
     */
    void (*wake)(void *arg);
    /*
     * A task job was queued: call ag_agent_work_task() soon. Only for drivers
     * that do not use ag_agent_start_worker(); NULL otherwise.
     */
    void (*tasks_ready)(void *arg);
    /* desktop.migrate: the connection of a peer by its listen URL (ag_exec_env); may be NULL */
    virConnectPtr (*peer_conn)(void *arg, const char *listen_url);
    void *arg;
} ag_agent_opts;

typedef struct ag_agent ag_agent;

/*
 * Prepares an agent for a resolved configuration (borrowed; it must outlive
 * the agent): creates and locks state_dir, loads the state, makes the task
 * manager and the libvirt manager (not connected yet: the first step
 * connects). Returns NULL with err (state_dir in use by another agent or not
 * usable, not enrolled and no token, out of memory).
 */
ag_agent *ag_agent_new(const ag_config *cfg, const ag_agent_opts *opts, char *err, size_t errlen);

/*
 * Does what is due at now_ms (monotonic): the libvirt connection, enrollment,
 * queued events, the heartbeat, pruning of old task records. Requests to CCC
 * go through h. Returns when the agent wants to be stepped next (monotonic ms,
 * at most AG_MAX_SLEEP_MS after now_ms).
 */
long long ag_agent_step(ag_agent *a, ag_http *h, long long now_ms);

/*
 * Decides a task request (docs/agent-protocol.md, "Tasks") and queues an
 * accepted one. Returns the HTTP status and sets *answer to a malloc'd JSON
 * text (or NULL). Any thread; an ag_listener_fn with the route left out.
 */
int ag_agent_on_task(ag_agent *a, const char *body, size_t len, const char *sig, char **answer);

/*
 * Decides a call (docs/agent-protocol.md, "Calls"): verifies it like a task
 * (with task_id 0), runs it if its type is on the allow-list (ag_exec_call)
 * and answers with its outcome. Returns the HTTP status and sets *answer to a
 * malloc'd JSON text: 200 {"ok":true,"result":{...}}, or {"ok":false,"error":
 * "<verdict name>"} for a refused envelope (ag_verdict_status) and {"ok":false,
 * "error":"<reason>"} with ag_exec_call's status for a failed call (*answer
 * NULL when out of memory). Any thread, also while tasks run.
 */
int ag_agent_on_call(ag_agent *a, const char *body, size_t len, const char *sig, char **answer);

/*
 * Starts a worker thread of the agent's own that runs its tasks and reports
 * them through h (borrowed, used by that thread only). 0, or -1 with err.
 */
int ag_agent_start_worker(ag_agent *a, ag_http *h, char *err, size_t errlen);

/*
 * Runs the next queued task job in the calling thread, reporting through h.
 * Returns 1 when a job ran, 0 when there was none. One thread at a time.
 */
int ag_agent_work_task(ag_agent *a, ag_http *h);

/*
 * Asks the agent to wind down: waits for a refresh end, the task worker takes
 * no further job. Any thread; the driver stops stepping it.
 */
void ag_agent_stop(ag_agent *a);

/* Stops the worker (after its running job) and the hypervisor, frees a. NULL is fine. */
void ag_agent_free(ag_agent *a);

/* A new reference to the agent's hypervisor connection (virConnectClose), or NULL when down. */
virConnectPtr ag_agent_conn(ag_agent *a);

/* The URL CCC is told to call for tasks. Borrowed. */
const char *ag_agent_listen_url(const ag_agent *a);

/* The server id while the credential is believed to work, else 0. */
long long ag_agent_server_id(ag_agent *a);

/* Where slot of slots starts within an interval: slot * interval_ms / slots. */
long long ag_agent_slot_phase(size_t slot, size_t slots, long long interval_ms);

/*
 * When the heartbeat after one sent at now_ms is due on a slot with this
 * phase: the first time t with t = phase_ms (mod interval_ms) and
 * t >= now_ms + interval_ms / 2, so that consecutive heartbeats are between
 * half and one and a half intervals apart, and exactly one interval once on
 * the slot.
 */
long long ag_agent_slot_next(long long now_ms, long long phase_ms, long long interval_ms);

#endif

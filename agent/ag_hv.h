/*
 * ag_hv.h - the agent's libvirt connection: libvirt's default event loop on its
 * own thread, lifecycle and console (graphics) events, and reconnection with
 * back-off.
 *
 * Threads: the owner (the daemon's main loop) calls ag_hv_tick(); any thread may
 * borrow the connection with ag_hv_conn(). The event and close callbacks run on
 * the event thread and only record and wake: no hypervisor call happens there.
 */
#ifndef BIC_AG_HV_H
#define BIC_AG_HV_H

#include <libvirt/libvirt.h>

#include "ag_events.h"

#define AG_HV_BACKOFF_CAP_S 30

typedef struct ag_hv_ops {
    /*
     * a lifecycle or console event (ev is the callee's to keep: copy it, ag_event_clear
     * later). Console events of clients on a UNIX socket (the agent's own, see
     * ag_console_kick) are not passed on.
     */
    void (*on_event)(void *arg, ag_event *ev);
    /* something changed: the connection was lost; the owner should tick soon */
    void (*wake)(void *arg);
    void *arg;
} ag_hv_ops;

typedef struct ag_hv ag_hv;

/*
 * Starts libvirt's event loop (once per process) and returns a manager for uri;
 * it does not connect yet (ag_hv_tick does). NULL on failure.
 */
ag_hv *ag_hv_new(const char *uri, const ag_hv_ops *ops);

/* Closes the connection and frees hv. */
void ag_hv_free(ag_hv *hv);

/*
 * Housekeeping from the owner's loop, at now_ms (monotonic): closes a connection
 * that was lost, and (re)connects when the back-off allows. Returns 1 when a
 * connection was (re)established by this call (send a full heartbeat), else 0.
 * *next_ms, when not NULL, is lowered to when the next attempt is due.
 */
int ag_hv_tick(ag_hv *hv, long long now_ms, long long *next_ms);

/* A new reference to the connection (release with virConnectClose), or NULL when down. */
virConnectPtr ag_hv_conn(ag_hv *hv);

/* Marks the connection lost after a call on it failed in a way that means it is gone. */
void ag_hv_mark_lost(ag_hv *hv, const char *why);

/* True when the last libvirt error of this thread means the connection is gone. */
int ag_hv_error_is_fatal(void);

/* Silences libvirt's default printing of errors to stderr (once per process). */
void ag_hv_quiet(void);

#endif

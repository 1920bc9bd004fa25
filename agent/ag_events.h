/*
 * ag_events.h - libvirt lifecycle and console (VNC graphics) events in the
 * protocol's words (docs/agent-protocol.md, "Events").
 */
#ifndef BIC_AG_EVENTS_H
#define BIC_AG_EVENTS_H

#include <jansson.h>
#include <libvirt/libvirt.h>

typedef struct ag_event {
    char uuid[VIR_UUID_STRING_BUFLEN];
    char name[256];
    int event, detail; /* virDomainEventType and its detail enum */
    const char *state; /* NULL until ag_event_resolve_state */
    char at[32];       /* 2026-11-24T08:00:00.123Z */
    virDomainPtr dom;  /* owned reference until ag_event_clear */
    char console[80];  /* a console event's detail ("connect 10.0.0.5:51234"); "": lifecycle */
} ag_event;

/* started, stopped, suspended, resumed, defined, undefined, shutdown, pmsuspended,
 * crashed; "unknown" for an enum value this build does not know. */
const char *ag_event_name(int event);

/* The detail of an event, e.g. (STARTED, BOOTED) → "booted", (STOPPED, DESTROYED)
 * → "destroyed"; "unknown" when not known. */
const char *ag_event_detail(int event, int detail);

/*
 * The state a domain is in right after an event, for when it cannot be asked
 * (undefined → "nostate"); a protocol state word.
 */
const char *ag_event_state(int event, int detail);

/*
 * Fills ev from a lifecycle callback's domain and enums, at = now. Makes no call
 * to the hypervisor (it runs in libvirt's event loop); takes a reference to dom
 * for ag_event_resolve_state.
 */
void ag_event_fill(ag_event *ev, virDomainPtr dom, int event, int detail);

/*
 * Fills ev from a graphics callback's domain, phase (virDomainEventGraphicsPhase)
 * and remote address: detail "connect", "initialize" or "disconnect", then a
 * space and the client's address as host:port ([v6]:port) when there is one.
 * at = now. Makes no call to the hypervisor and keeps no domain reference (a
 * console event carries no state).
 */
void ag_event_fill_console(ag_event *ev, virDomainPtr dom, int phase,
                           const virDomainEventGraphicsAddress *remote);

/*
 * Sets ev->state (not for a console event): the domain's current state from virDomainGetState, or,
 * when it cannot be asked (undefined, connection gone), ag_event_state. Call it outside the event
 * loop. Releases the domain reference.
 */
void ag_event_resolve_state(ag_event *ev);

/* Releases the domain reference, if still held. */
void ag_event_clear(ag_event *ev);

/*
 * {"uuid","name","event","detail","state","at"}; for a console event
 * {"uuid","name","event":"console","detail","at"}. NULL on OOM.
 */
json_t *ag_event_json(const ag_event *ev);

#endif

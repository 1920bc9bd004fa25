#include "ag_events.h"

#include <stdio.h>
#include <string.h>

#include "ag_domains.h"
#include "ag_log.h"
#include "ag_util.h"

static const char *const event_names[] = {
    [VIR_DOMAIN_EVENT_DEFINED] = "defined",   [VIR_DOMAIN_EVENT_UNDEFINED] = "undefined",
    [VIR_DOMAIN_EVENT_STARTED] = "started",   [VIR_DOMAIN_EVENT_SUSPENDED] = "suspended",
    [VIR_DOMAIN_EVENT_RESUMED] = "resumed",   [VIR_DOMAIN_EVENT_STOPPED] = "stopped",
    [VIR_DOMAIN_EVENT_SHUTDOWN] = "shutdown", [VIR_DOMAIN_EVENT_PMSUSPENDED] = "pmsuspended",
    [VIR_DOMAIN_EVENT_CRASHED] = "crashed",
};

static const char *const defined_details[] = {
    [VIR_DOMAIN_EVENT_DEFINED_ADDED] = "added",
    [VIR_DOMAIN_EVENT_DEFINED_UPDATED] = "updated",
    [VIR_DOMAIN_EVENT_DEFINED_RENAMED] = "renamed",
    [VIR_DOMAIN_EVENT_DEFINED_FROM_SNAPSHOT] = "from_snapshot",
};
static const char *const undefined_details[] = {
    [VIR_DOMAIN_EVENT_UNDEFINED_REMOVED] = "removed",
    [VIR_DOMAIN_EVENT_UNDEFINED_RENAMED] = "renamed",
};
static const char *const started_details[] = {
    [VIR_DOMAIN_EVENT_STARTED_BOOTED] = "booted",
    [VIR_DOMAIN_EVENT_STARTED_MIGRATED] = "migrated",
    [VIR_DOMAIN_EVENT_STARTED_RESTORED] = "restored",
    [VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT] = "from_snapshot",
    [VIR_DOMAIN_EVENT_STARTED_WAKEUP] = "wakeup",
};
static const char *const suspended_details[] = {
    [VIR_DOMAIN_EVENT_SUSPENDED_PAUSED] = "paused",
    [VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED] = "migrated",
    [VIR_DOMAIN_EVENT_SUSPENDED_IOERROR] = "ioerror",
    [VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG] = "watchdog",
    [VIR_DOMAIN_EVENT_SUSPENDED_RESTORED] = "restored",
    [VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT] = "from_snapshot",
    [VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR] = "api_error",
    [VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY] = "postcopy",
    [VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED] = "postcopy_failed",
};
static const char *const resumed_details[] = {
    [VIR_DOMAIN_EVENT_RESUMED_UNPAUSED] = "unpaused",
    [VIR_DOMAIN_EVENT_RESUMED_MIGRATED] = "migrated",
    [VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT] = "from_snapshot",
    [VIR_DOMAIN_EVENT_RESUMED_POSTCOPY] = "postcopy",
};
static const char *const stopped_details[] = {
    [VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN] = "shutdown",
    [VIR_DOMAIN_EVENT_STOPPED_DESTROYED] = "destroyed",
    [VIR_DOMAIN_EVENT_STOPPED_CRASHED] = "crashed",
    [VIR_DOMAIN_EVENT_STOPPED_MIGRATED] = "migrated",
    [VIR_DOMAIN_EVENT_STOPPED_SAVED] = "saved",
    [VIR_DOMAIN_EVENT_STOPPED_FAILED] = "failed",
    [VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT] = "from_snapshot",
};
static const char *const shutdown_details[] = {
    [VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED] = "finished",
    [VIR_DOMAIN_EVENT_SHUTDOWN_GUEST] = "guest",
    [VIR_DOMAIN_EVENT_SHUTDOWN_HOST] = "host",
};
static const char *const pmsuspended_details[] = {
    [VIR_DOMAIN_EVENT_PMSUSPENDED_MEMORY] = "memory",
    [VIR_DOMAIN_EVENT_PMSUSPENDED_DISK] = "disk",
};
static const char *const crashed_details[] = {
    [VIR_DOMAIN_EVENT_CRASHED_PANICKED] = "panicked",
    [VIR_DOMAIN_EVENT_CRASHED_CRASHLOADED] = "crashloaded",
};

static const struct {
    const char *const *names;
    size_t n;
} details[] = {
#define AG_DETAILS(ev, tab) [ev] = {tab, AG_NELEM(tab)}
    AG_DETAILS(VIR_DOMAIN_EVENT_DEFINED, defined_details),
    AG_DETAILS(VIR_DOMAIN_EVENT_UNDEFINED, undefined_details),
    AG_DETAILS(VIR_DOMAIN_EVENT_STARTED, started_details),
    AG_DETAILS(VIR_DOMAIN_EVENT_SUSPENDED, suspended_details),
    AG_DETAILS(VIR_DOMAIN_EVENT_RESUMED, resumed_details),
    AG_DETAILS(VIR_DOMAIN_EVENT_STOPPED, stopped_details),
    AG_DETAILS(VIR_DOMAIN_EVENT_SHUTDOWN, shutdown_details),
    AG_DETAILS(VIR_DOMAIN_EVENT_PMSUSPENDED, pmsuspended_details),
    AG_DETAILS(VIR_DOMAIN_EVENT_CRASHED, crashed_details),
#undef AG_DETAILS
};

const char *ag_event_name(int event)
{
    if (event < 0 || event >= (int)AG_NELEM(event_names) || !event_names[event]) return "unknown";
    return event_names[event];
}

const char *ag_event_detail(int event, int detail)
{
    if (event < 0 || event >= (int)AG_NELEM(details) || !details[event].names) return "unknown";
    if (detail < 0 || detail >= (int)details[event].n || !details[event].names[detail])
        return "unknown";
    return details[event].names[detail];
}

const char *ag_event_state(int event, int detail)
{
    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
    case VIR_DOMAIN_EVENT_RESUMED:
        return "running";
    case VIR_DOMAIN_EVENT_SUSPENDED:
        return "paused";
    case VIR_DOMAIN_EVENT_STOPPED:
        return detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ? "crashed" : "shutoff";
    case VIR_DOMAIN_EVENT_SHUTDOWN:
        /* finished: the guest is down and a STOPPED event follows */
        return detail == VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED ? "shutoff" : "shutdown";
    case VIR_DOMAIN_EVENT_PMSUSPENDED:
        return "pmsuspended";
    case VIR_DOMAIN_EVENT_CRASHED:
        return "crashed";
    case VIR_DOMAIN_EVENT_DEFINED:
        return "shutoff";
    default:
        return "nostate";
    }
}

void ag_event_fill(ag_event *ev, virDomainPtr dom, int event, int detail)
{
    memset(ev, 0, sizeof(*ev));
    if (virDomainGetUUIDString(dom, ev->uuid) < 0) ev->uuid[0] = '\0';
    const char *name = virDomainGetName(dom);
    snprintf(ev->name, sizeof(ev->name), "%s", name ? name : "");
    ev->event = event;
    ev->detail = detail;
    if (virDomainRef(dom) == 0) ev->dom = dom;
    ag_now_iso(ev->at, sizeof(ev->at));
}

void ag_event_fill_console(ag_event *ev, virDomainPtr dom, int phase,
                           const virDomainEventGraphicsAddress *remote)
{
    static const char *const phases[] = {
        [VIR_DOMAIN_EVENT_GRAPHICS_CONNECT] = "connect",
        [VIR_DOMAIN_EVENT_GRAPHICS_INITIALIZE] = "initialize",
        [VIR_DOMAIN_EVENT_GRAPHICS_DISCONNECT] = "disconnect",
    };
    memset(ev, 0, sizeof(*ev));
    if (virDomainGetUUIDString(dom, ev->uuid) < 0) ev->uuid[0] = '\0';
    const char *name = virDomainGetName(dom);
    snprintf(ev->name, sizeof(ev->name), "%s", name ? name : "");
    const char *word = phase >= 0 && phase < (int)AG_NELEM(phases) ? phases[phase] : "unknown";
    const char *node = remote && remote->node ? remote->node : "";
    const char *service = remote && remote->service ? remote->service : "";
    int v6 = remote && remote->family == VIR_DOMAIN_EVENT_GRAPHICS_ADDRESS_IPV6;
    if (!*node)
        snprintf(ev->console, sizeof(ev->console), "%s", word);
    else
        snprintf(ev->console, sizeof(ev->console), "%s %s%.46s%s%s%.5s", word, v6 ? "[" : "", node,
                 v6 ? "]" : "", *service ? ":" : "", service);
    ag_now_iso(ev->at, sizeof(ev->at));
}

void ag_event_resolve_state(ag_event *ev)
{
    if (*ev->console) {
        ag_event_clear(ev);
        return;
    }
    int st = -1, reason;
    /* an undefined domain is gone; a redefined running one is still running */
    if (ev->dom && ev->event != VIR_DOMAIN_EVENT_UNDEFINED &&
        virDomainGetState(ev->dom, &st, &reason, 0) == 0)
        ev->state = ag_dom_state_name(st);
    else
        ev->state = ag_event_state(ev->event, ev->detail);
    ag_event_clear(ev);
}

void ag_event_clear(ag_event *ev)
{
    if (ev->dom) virDomainFree(ev->dom);
    ev->dom = NULL;
}

json_t *ag_event_json(const ag_event *ev)
{
    if (*ev->console)
        return json_pack("{s:s, s:s, s:s, s:s, s:s}", "uuid", ev->uuid, "name", ev->name, "event",
                         "console", "detail", ev->console, "at", ev->at);
    const char *state = ev->state ? ev->state : ag_event_state(ev->event, ev->detail);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "uuid", ev->uuid, "name", ev->name, "event",
                     ag_event_name(ev->event), "detail", ag_event_detail(ev->event, ev->detail),
                     "state", state, "at", ev->at);
}

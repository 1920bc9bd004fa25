/*
 * ag_domains.h - snapshots of the domains libvirt knows on this host, and the
 * heartbeat delta between two snapshots.
 */
#ifndef BIC_AG_DOMAINS_H
#define BIC_AG_DOMAINS_H

#include <jansson.h>
#include <libvirt/libvirt.h>
#include <stddef.h>

#include "ag_console.h"

/*
 * CCC takes counters up to 2^53 (exact as a JSON number anywhere). Larger
 * cumulative counters (cpu_time_ns of libvirt's test driver is the wall clock
 * in ns) are reported modulo 2^53, like a counter that wrapped.
 */
#define AG_COUNTER_WRAP (1ULL << 53)

/*
 * A desktop whose only change is its counters (cpu_time_ns, rx_bytes, tx_bytes)
 * is sent in a delta heartbeat at most once every AG_COUNTERS_INTERVAL_S
 * seconds; a change of state, name, vcpus, memory or console is sent at once.
 */
#define AG_COUNTERS_INTERVAL_S 60

typedef struct ag_dom {
    char uuid[VIR_UUID_STRING_BUFLEN];
    char name[256];
    int state; /* virDomainState */
    long long vcpus, memory_mib, cpu_time_ns, rx_bytes, tx_bytes;
    /* the VNC websocket of a running domain (console_port 0: none, not reported) */
    char console_host[AG_CONSOLE_HOST_MAX + 1];
    int console_port;
    int id;           /* virDomainGetID: changes whenever the domain starts; -1 when off */
    int console_read; /* console_* come from the live XML of this run (id) */
    /* monotonic seconds when the counters were last sent (not collected: set
       by ag_snapshot_delta / ag_snapshot_mark_sent) */
    long long counters_sent_at;
} ag_dom;

/* Domains sorted by uuid. An all-zero snapshot is empty and valid. */
typedef struct ag_snapshot {
    ag_dom *d;
    size_t n;
} ag_snapshot;

/*
 * Collects every domain (active and inactive) with virConnectGetAllDomainStats,
 * completing what a driver leaves out (the test driver reports only the state)
 * with virDomainGetInfo; counters modulo AG_COUNTER_WRAP. A running domain
 * gets its console from its live XML (ag_console_from_xml with console_host
 * for a wildcard listen address), or from prev (may be NULL) when prev has it
 * read for the same run (same id): the port is chosen when the domain starts,
 * so the XML is read once per start. Returns 0 and fills *out (release with
 * ag_snapshot_clear), or -1 with libvirt's message in err.
 */
int ag_domains_collect(virConnectPtr conn, const ag_snapshot *prev, const char *console_host,
                       ag_snapshot *out, char *err, size_t errlen);

void ag_snapshot_clear(ag_snapshot *s);
/* Moves src into dst (dst's old contents are released; src becomes empty). */
void ag_snapshot_move(ag_snapshot *dst, ag_snapshot *src);
/* The domain with this uuid, or NULL. */
const ag_dom *ag_snapshot_find(const ag_snapshot *s, const char *uuid);
/* Sorts d[0..n) by uuid; for snapshots built by hand (tests). */
void ag_snapshot_sort(ag_snapshot *s);

/* The protocol's word for a virDomainState: running, paused, shutoff, ... nostate. */
const char *ag_dom_state_name(int state);

/*
 * {"uuid","name","state","vcpus","memory_mib","cpu_time_ns","rx_bytes","tx_bytes"}, plus
 * "console_host" and "console_port" when d has a console.
 */
json_t *ag_dom_json(const ag_dom *d);

/* Every domain of s as an array of ag_dom_json objects (a full heartbeat). */
json_t *ag_snapshot_json(const ag_snapshot *s);

/* Marks every domain of s as sent at now (monotonic seconds): a full heartbeat. */
void ag_snapshot_mark_sent(ag_snapshot *s, long long now);

/*
 * The delta heartbeat at now (monotonic seconds): returns the array of domains
 * of cur that are new, whose name, state, vcpus, memory or console differ from prev, or
 * whose counters differ from prev and were last sent AG_COUNTERS_INTERVAL_S or
 * more ago; sets *removed to the array of uuids in prev that cur does not have.
 * prev may be empty. Updates cur so that it can become the next prev: a domain
 * sent gets counters_sent_at = now; a domain left out keeps prev's counters and
 * counters_sent_at (what CCC was last told). NULL on OOM.
 */
json_t *ag_snapshot_delta(const ag_snapshot *prev, ag_snapshot *cur, long long now,
                          json_t **removed);

#endif

/*
 * ag_fleet.h - `bic-agent --fleet N run`: one process acting as N bServers, so
 * that one machine can load CCC the way N real agents do. Each member is an
 * ag_agent, the same protocol code a real agent runs, with its own
 * enrollment, credential, seq, events and tasks, on a private libvirt
 * test-driver hypervisor holding D running domains.
 *
 * Member i of a fleet built on configuration C (after ag_fleet_resolve):
 *   machine_id   <C.machine_id>-fleet-<i>   (C.machine_id: configured, else
 *                <root_prefix>/etc/machine-id, else C.hostname)
 *   hostname     <C.hostname>-<i>
 *   state_dir    <C.state_dir>/<i>          (C.state_dir made absolute)
 *   libvirt_uri  test://<state_dir>/hv.xml  (rewritten at start; see
 *                ag_fleet_hv_xml; every open of such a URI is a hypervisor of
 *                its own, libvirt shares only test:///default)
 *   listen_url   <base>/s/<i>               (base: C.advertise_url, else
 *                http://<listen>; one listener serves every member and routes
 *                by i, see ag_listener_route)
 *
 * Threads: `threads` steppers (enrollment, heartbeats, events; the agent due
 * first goes next) and AG_FLEET_TASK_THREADS task runners, each with one
 * keep-alive connection to CCC; the listener; libvirt's event loop; the
 * caller of ag_fleet_run. Heartbeats keep to slot i of N of the interval, so
 * they are spread evenly over it.
 */
#ifndef BIC_AG_FLEET_H
#define BIC_AG_FLEET_H

#include <libvirt/libvirt.h>
#include <stddef.h>

#include "ag_config.h"

#define AG_FLEET_MAX          100000
#define AG_FLEET_DESKTOPS_MAX 10000
#define AG_FLEET_DESKTOPS     100 /* default D */
#define AG_FLEET_THREADS      8   /* default steppers (CCC connections for heartbeats) */
#define AG_FLEET_THREADS_MAX  256
#define AG_FLEET_TASK_THREADS 4
#define AG_FLEET_HV_FILE      "hv.xml"
/* what each generated domain is given */
#define AG_FLEET_DOMAIN_MIB   2048
#define AG_FLEET_DOMAIN_VCPUS 2

typedef struct ag_fleet_opts {
    size_t members;  /* N: 1 .. AG_FLEET_MAX */
    size_t desktops; /* D: 0 .. AG_FLEET_DESKTOPS_MAX */
    size_t threads;  /* steppers: 1 .. AG_FLEET_THREADS_MAX (0: AG_FLEET_THREADS) */
} ag_fleet_opts;

typedef struct ag_fleet ag_fleet;

/*
 * Fills in the base configuration of a fleet: hostname (gethostname),
 * machine_id (as above), state_dir made absolute (created), listen_host and
 * listen_port from listen. The rest is checked per member. 0 or -1 with err.
 */
int ag_fleet_resolve(ag_config *cfg, char *err, size_t errlen);

/*
 * The resolved configuration of member i (out: release with ag_config_free,
 * also after an error) of a base resolved by ag_fleet_resolve, its listen_url
 * <advertise_base>/s/<i> as advertise_url. 0 or -1 with err.
 */
int ag_fleet_member_config(const ag_config *base, size_t i, const char *advertise_base,
                           ag_config *out, char *err, size_t errlen);

/*
 * The UUID of domain k of the member with this machine_id: stable across
 * restarts, distinct between members (sha256 of "<machine_id>/<k>", RFC 9562
 * version 8).
 */
void ag_fleet_domain_uuid(const char *machine_id, size_t k, char out[VIR_UUID_STRING_BUFLEN]);

/*
 * The libvirt test-driver document of a member: <node> with `desktops`
 * running domains named <hostname>-d<k> (characters other than letters,
 * digits, '.', '_' and '-' as '_'), with ag_fleet_domain_uuid UUIDs,
 * AG_FLEET_DOMAIN_MIB MiB and AG_FLEET_DOMAIN_VCPUS vCPUs. A new string, or
 * NULL when out of memory.
 */
char *ag_fleet_hv_xml(const char *machine_id, const char *hostname, size_t desktops);

/*
 * Prepares a fleet on a base configuration resolved by ag_fleet_resolve
 * (borrowed; it must outlive the fleet): binds the listener, writes each
 * member's hypervisor file and makes its agent (locking its state_dir), then
 * serves tasks. Returns NULL with err.
 */
ag_fleet *ag_fleet_new(const ag_config *base, const ag_fleet_opts *opts, char *err, size_t errlen);

/* Runs the members until ag_fleet_stop. Returns 0, or 1 when a thread could not start. */
int ag_fleet_run(ag_fleet *f);

/* Asks ag_fleet_run to return; any thread (not a signal handler). */
void ag_fleet_stop(ag_fleet *f);

/* The shared task listener's bound port. */
int ag_fleet_listen_port(const ag_fleet *f);

/* How many members hold a credential they believe works. */
size_t ag_fleet_enrolled(ag_fleet *f);

void ag_fleet_free(ag_fleet *f);

#endif

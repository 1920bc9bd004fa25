/*
 * sriov.h - SR-IOV virtual functions on the CCC side: the NIC/VF inventory agents report,
 * and reserving a VF for a desktop in the transaction that places it.
 *
 * A VF row (server_vfs) is held by at most one desktop: the claim is an
 * UPDATE ... WHERE desktop_id IS NULL on a row first locked with FOR UPDATE SKIP LOCKED,
 * and desktop_id is a unique key whose foreign key clears it when the desktop row is
 * deleted. So no interleaving of placing transactions gives one VF to two desktops
 * (tests/api/test_sriov.py runs 200 at once).
 *
 * The NIC rule applies per physical function: a PF carries at most
 * per_gbps * max(speed, 1000 Mb/s) / 1000 VF desktops (about 50 per Gbps, the paper's
 * figure), and a PF whose link is down gives none.
 */
#ifndef BIC_SRIOV_H
#define BIC_SRIOV_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "http.h"
#include "json.h"

/*
 * Checks an agent's `nics` array (docs/agent-protocol.md): names, PCI addresses, numbers in
 * range, at most 64 NICs and 512 VFs each. true, or false with the reason in why.
 */
bool sriov_nics_valid(const json_t *nics, char *why, size_t len);

/* true when s is a PCI address dddd:bb:ss.f in lower-case hex. */
bool sriov_pci_valid(const char *s);

/*
 * Replaces the server's NIC rows and merges its VF rows with a validated report: VFs no
 * longer listed are deleted unless a desktop holds one (kept, present = false, and an event
 * says so). Runs inside the caller's transaction.
 */
bic_err sriov_store_nics(bic_req *req, long long server_id, const json_t *nics);

/* The MAC CCC gives desktop id: locally administered unicast 02:b1:<id as 32 bits>. */
void sriov_desktop_mac(long long desktop_id, char out[18]);

/* The NIC rule: VF desktops one PF of speed_mbps carries. */
long long sriov_pf_cap(int per_gbps, long long speed_mbps);

typedef struct sriov_vf {
    long long id, index;
    const char *nic, *pci; /* in the arena */
} sriov_vf;

/*
 * Locks the free VF of server_id the next desktop should get: on the PF with the lowest
 * share of its NIC-rule capacity in use (link not down, capacity left), the lowest free
 * index nobody else is taking (SKIP LOCKED). The PF's server_nics row is locked first and
 * its VF desktops counted again, so concurrent placements cannot push a PF past the NIC
 * rule. *found = false when there is none.
 */
bic_err sriov_pick(bic_db *db, bic_arena *a, long long server_id, int per_gbps, sriov_vf *vf,
                   bool *found);

/* Gives the locked VF to desktop_id with its MAC and VLAN (0 = none). BIC_E_CONFLICT when
   another desktop holds it (never overwritten). */
bic_err sriov_claim(bic_db *db, bic_arena *a, const sriov_vf *vf, long long desktop_id,
                    const char *mac, long long vlan);

#endif

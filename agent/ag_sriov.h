/*
 * ag_sriov.h - physical NICs and their SR-IOV virtual functions (issue 7).
 *
 * Discovery reads sysfs below a root prefix (<root>/sys/class/net/...), as
 * facts.c does, so the tests run on fixture trees that mirror real machines
 * (tests/fixtures/sysroot-sriov-*). Writing happens in exactly two places:
 *   - ag_sriov_set_numvfs(): device/sriov_numvfs of a PF that discovery found,
 *     the one attribute on the allow-list, never a path taken from a request;
 *   - ag_sriov_vf_set(): a VF's MAC and VLAN through rtnetlink (libnl-route-3).
 * See docs/agent-protocol.md, "SR-IOV".
 */
#ifndef BIC_AG_SRIOV_H
#define BIC_AG_SRIOV_H

#include <jansson.h>
#include <stddef.h>

struct nl_msg;

#define AG_SRIOV_IFNAME_MAX 15   /* IFNAMSIZ - 1 */
#define AG_SRIOV_PCI_LEN    12   /* 0000:3b:02.3 */
#define AG_SRIOV_VFS_MAX    4096 /* a PF never has more (the SR-IOV capability's field is 16 bits) */
#define AG_SRIOV_WANT_MAX   32   /* PFs named in sriov_numvfs */

typedef struct ag_sriov_vf {
    int index;                      /* N of device/virtfnN */
    char pci[AG_SRIOV_PCI_LEN + 1]; /* basename of the virtfnN link */
    char driver[64];                /* basename of virtfnN/driver, "" when unbound */
} ag_sriov_vf;

typedef struct ag_sriov_nic {
    char name[AG_SRIOV_IFNAME_MAX + 1];
    char pci[AG_SRIOV_PCI_LEN + 1]; /* "" when the device is not PCI (nor below a PCI device) */
    char driver[64];
    char vendor[16], device[16]; /* "0x8086", "" when absent */
    char mac[32];                /* xx:xx:xx:xx:xx:xx; "" when absent or not an Ethernet address */
    long long speed_mbps;        /* -1 or absent: 0 */
    const char *link;            /* "up", "down" or "unknown" (static) */
    int total_vfs, num_vfs;
    ag_sriov_vf *vfs; /* ordered by index */
    size_t nvfs;
} ag_sriov_nic;

/*
 * The physical NICs below root: the interfaces of <root>/sys/class/net with a
 * device link, except a VF's own netdev (its device has a physfn link: the VF
 * is listed under its PF). Sorted by name. Returns 0 with *nics (release with
 * ag_sriov_free) and *n, or -1 when out of memory. A missing tree gives 0 NICs.
 */
int ag_sriov_discover(const char *root, ag_sriov_nic **nics, size_t *n);
void ag_sriov_free(ag_sriov_nic *nics, size_t n);

/* The contract's "nics" array for nics (docs/agent-protocol.md). NULL when out of memory. */
json_t *ag_sriov_nics_json(const ag_sriov_nic *nics, size_t n);

/* ag_sriov_discover + ag_sriov_nics_json: a new array, NULL when out of memory. */
json_t *ag_sriov_collect(const char *root);

/* 1 when name is a valid interface name (1..15 bytes, no '/', ':', whitespace, not . or ..). */
int ag_sriov_ifname_ok(const char *name);

/* 1 for a PCI address in the sysfs form dddd:bb:ss.f (ss at most 1f, f at most 7). */
int ag_sriov_pci_ok(const char *s);

/*
 * Checks that discovery below root shows vf_pci as VF vf_index of PF pf.
 * Returns 0, or -1 with err: "<vf_pci> is not VF <n> of <pf> on this server
 * (<what discovery shows>)".
 */
int ag_sriov_vf_check(const char *root, const char *pf, int vf_index, const char *vf_pci, char *err,
                      size_t errlen);

/* One entry of the sriov_numvfs setting: PF name and the VF count wanted. */
typedef struct ag_sriov_want {
    char pf[AG_SRIOV_IFNAME_MAX + 1];
    int numvfs;
} ag_sriov_want;

/*
 * Parses "ens1f0=8,enp3s0f0=4" (spaces around items allowed; "" = none).
 * Returns the number of entries (0..max), or -1 with err (bad name, count not
 * 0..AG_SRIOV_VFS_MAX, a PF named twice, more than max entries).
 */
int ag_sriov_numvfs_parse(const char *spec, ag_sriov_want *out, size_t max, char *err,
                          size_t errlen);

/*
 * Sets device/sriov_numvfs of PF pf below root to numvfs: only for a PF that
 * discovery finds with SR-IOV, numvfs at most its sriov_totalvfs. Nothing is
 * written when the count is already numvfs. A non-zero count is first set to 0
 * (the kernel refuses to change one non-zero count into another), and that
 * is refused while one of the PF's VFs is bound to vfio-pci (assigned to a
 * guest: taking the VFs away would pull the device out of a running desktop).
 * Returns 1 when it wrote, 0 when nothing was to be done, -1 with err; msg
 * (may be NULL) says what happened, e.g. "ens1f1: sriov_numvfs 2 -> 0 -> 4".
 */
int ag_sriov_set_numvfs(const char *root, const char *pf, int numvfs, char *msg, size_t msglen,
                        char *err, size_t errlen);

/*
 * Applies the sriov_numvfs setting (a spec already checked at configuration
 * time) below root, logging each PF changed, left alone or refused with
 * log_tag in front. Returns the number of PFs that could not be set.
 */
int ag_sriov_apply_numvfs(const char *root, const char *spec, const char *log_tag);

/*
 * Parses "52:54:00:12:34:56" (hex digits in either case) into mac. Returns 0,
 * or -1 when it is not 6 colon-separated bytes, or is a multicast (or
 * broadcast) address, or all zeros: a VF needs a unicast MAC.
 */
int ag_sriov_mac_parse(const char *s, unsigned char mac[6]);

/*
 * Builds the RTM_NEWLINK request that sets VF vf of the PF with ifindex to
 * mac and VLAN vlan (0: none, which also clears an old VLAN), exactly what
 * ag_sriov_vf_set() sends. Returns 0 with *msg (nlmsg_free it), or -1 with err.
 */
int ag_sriov_vf_request(int ifindex, int vf, const unsigned char mac[6], int vlan,
                        struct nl_msg **msg, char *err, size_t errlen);

/*
 * Sets MAC and VLAN (0: none) of VF vf of PF pf on this machine through
 * rtnetlink. Returns 0, or -1 with err, e.g. "ens1f0 VF 3: set MAC/VLAN:
 * Operation not supported" or "no interface ens1f0 on this machine".
 */
int ag_sriov_vf_set(const char *pf, int vf, const unsigned char mac[6], int vlan, char *err,
                    size_t errlen);

#endif

#include "ag_sriov.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/sriov.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ag_log.h"
#include "ag_util.h"

/* ---- reading sysfs below the root ---- */

/* The first line of <root>/sys/class/net/<ifname>/<rel> into buf; 0, or -1 (buf ""). */
static int net_line(const char *root, const char *ifname, const char *rel, char *buf, size_t len)
{
    char path[PATH_MAX];
    *buf = '\0';
    int n = snprintf(path, sizeof(path), "%s/sys/class/net/%s/%s", root, ifname, rel);
    if (n < 0 || (size_t)n >= sizeof(path)) return -1;
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    char *ok = fgets(buf, (int)len, f);
    fclose(f);
    if (!ok) {
        *buf = '\0';
        return -1;
    }
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

/* A decimal sysfs value; def when absent or not a number. */
static long long net_ll(const char *root, const char *ifname, const char *rel, long long def)
{
    char buf[64], *end;
    if (net_line(root, ifname, rel, buf, sizeof(buf)) < 0) return def;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    return errno || end == buf || *end ? def : v;
}

/* The basename of the link <root>/sys/class/net/<ifname>/<rel> into buf ("" when none). */
static void net_link_base(const char *root, const char *ifname, const char *rel, char *buf,
                          size_t len)
{
    char path[PATH_MAX], target[PATH_MAX];
    *buf = '\0';
    int n = snprintf(path, sizeof(path), "%s/sys/class/net/%s/%s", root, ifname, rel);
    if (n < 0 || (size_t)n >= sizeof(path)) return;
    ssize_t t = readlink(path, target, sizeof(target) - 1);
    if (t <= 0) return;
    target[t] = '\0';
    const char *base = strrchr(target, '/');
    snprintf(buf, len, "%s", base ? base + 1 : target);
}

static int net_exists(const char *root, const char *ifname, const char *rel)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/sys/class/net/%s/%s", root, ifname, rel);
    return n > 0 && (size_t)n < sizeof(path) && access(path, F_OK) == 0;
}

int ag_sriov_pci_ok(const char *s)
{
    if (strlen(s) != AG_SRIOV_PCI_LEN || s[4] != ':' || s[7] != ':' || s[10] != '.') return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isxdigit((unsigned char)s[i])) return 0;
    return strtol(s + 8, NULL, 16) <= 0x1f && s[11] >= '0' && s[11] <= '7';
}

int ag_sriov_ifname_ok(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > AG_SRIOV_IFNAME_MAX || !strcmp(name, ".") || !strcmp(name, "..")) return 0;
    for (const char *c = name; *c; c++)
        if (*c == '/' || *c == ':' || (unsigned char)*c <= ' ' || *c == 0x7f) return 0;
    return 1;
}

/*
 * The PCI address of the interface's device: the device itself, or for a
 * device on another bus (virtio0) the PCI device it sits on. "" when neither.
 */
static void nic_pci(const char *root, const char *ifname, char *buf, size_t len)
{
    char path[PATH_MAX], real[PATH_MAX];
    *buf = '\0';
    int n = snprintf(path, sizeof(path), "%s/sys/class/net/%s/device", root, ifname);
    if (n < 0 || (size_t)n >= sizeof(path) || !realpath(path, real)) return;
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(real, '/');
        if (!slash) return;
        if (ag_sriov_pci_ok(slash + 1)) {
            snprintf(buf, len, "%s", slash + 1);
            return;
        }
        *slash = '\0';
    }
}

static const char *nic_link(const char *root, const char *ifname)
{
    char carrier[16], oper[32];
    net_line(root, ifname, "carrier", carrier, sizeof(carrier));
    if (!strcmp(carrier, "1")) return "up";
    if (!strcmp(carrier, "0")) return "down";
    net_line(root, ifname, "operstate", oper, sizeof(oper));
    if (!strcmp(oper, "down") || !strcmp(oper, "lowerlayerdown") || !strcmp(oper, "notpresent"))
        return "down";
    return "unknown";
}

/* 1 for six colon-separated hex bytes (an Ethernet address as sysfs prints it). */
static int mac_form_ok(const char *s)
{
    if (strlen(s) != 17) return 0;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i])) return 0;
    return 1;
}

static int vf_cmp(const void *a, const void *b)
{
    const ag_sriov_vf *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

/* N of "virtfnN" (digits only, no leading zero), or -1. */
static int virtfn_index(const char *name)
{
    if (strncmp(name, "virtfn", 6)) return -1;
    const char *d = name + 6;
    size_t n = strlen(d);
    if (!n || n > 4 || strspn(d, "0123456789") != n || (d[0] == '0' && n > 1)) return -1;
    int v = atoi(d);
    return v < AG_SRIOV_VFS_MAX ? v : -1;
}

/* The VFs of the interface's device from its virtfnN links, ordered by N. 0, or -1 on OOM. */
static int nic_vfs(const char *root, ag_sriov_nic *nic)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/sys/class/net/%s/device", root, nic->name);
    if (n < 0 || (size_t)n >= sizeof(path)) return 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    size_t cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        int idx = virtfn_index(e->d_name);
        if (idx < 0) continue;
        if (nic->nvfs == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            ag_sriov_vf *v = realloc(nic->vfs, ncap * sizeof(*v));
            if (!v) {
                rc = -1;
                break;
            }
            nic->vfs = v;
            cap = ncap;
        }
        ag_sriov_vf *vf = &nic->vfs[nic->nvfs];
        memset(vf, 0, sizeof(*vf));
        vf->index = idx;
        char rel[64], pci[PATH_MAX];
        snprintf(rel, sizeof(rel), "device/%.16s", e->d_name);
        net_link_base(root, nic->name, rel, pci, sizeof(pci));
        if (!ag_sriov_pci_ok(pci)) continue; /* not a VF link as the kernel makes them */
        memcpy(vf->pci, pci, AG_SRIOV_PCI_LEN + 1);
        snprintf(rel, sizeof(rel), "device/%.16s/driver", e->d_name);
        net_link_base(root, nic->name, rel, vf->driver, sizeof(vf->driver));
        nic->nvfs++;
    }
    closedir(d);
    if (nic->nvfs) qsort(nic->vfs, nic->nvfs, sizeof(*nic->vfs), vf_cmp);
    return rc;
}

/* Reads interface name: 1 when it is a physical NIC (nic filled), 0 when not, -1 on OOM. */
static int nic_read(const char *root, const char *name, ag_sriov_nic *nic)
{
    memset(nic, 0, sizeof(*nic));
    if (!ag_sriov_ifname_ok(name)) return 0;
    if (!net_exists(root, name, "device")) return 0;       /* virtual: lo, bridges, VLANs */
    if (net_exists(root, name, "device/physfn")) return 0; /* a VF's netdev: listed under its PF */
    memcpy(nic->name, name, strlen(name) + 1); /* checked: at most AG_SRIOV_IFNAME_MAX */
    nic_pci(root, name, nic->pci, sizeof(nic->pci));
    net_link_base(root, name, "device/driver", nic->driver, sizeof(nic->driver));
    net_line(root, name, "device/vendor", nic->vendor, sizeof(nic->vendor));
    net_line(root, name, "device/device", nic->device, sizeof(nic->device));
    net_line(root, name, "address", nic->mac, sizeof(nic->mac));
    if (!mac_form_ok(nic->mac)) *nic->mac = '\0'; /* e.g. InfiniBand's 20-byte addresses */
    long long speed = net_ll(root, name, "speed", 0);
    nic->speed_mbps = speed > 0 ? speed : 0;
    nic->link = nic_link(root, name);
    long long total = net_ll(root, name, "device/sriov_totalvfs", 0);
    long long num = net_ll(root, name, "device/sriov_numvfs", 0);
    nic->total_vfs = total > 0 && total <= AG_SRIOV_VFS_MAX ? (int)total : 0;
    nic->num_vfs = num > 0 && num <= AG_SRIOV_VFS_MAX ? (int)num : 0;
    if (nic_vfs(root, nic) < 0) {
        free(nic->vfs);
        return -1;
    }
    return 1;
}

static int nic_cmp(const void *a, const void *b)
{
    return strcmp(((const ag_sriov_nic *)a)->name, ((const ag_sriov_nic *)b)->name);
}

int ag_sriov_discover(const char *root, ag_sriov_nic **nics, size_t *n)
{
    *nics = NULL;
    *n = 0;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/sys/class/net", root);
    DIR *d = opendir(path);
    if (!d) return 0;
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            ag_sriov_nic *v = realloc(*nics, ncap * sizeof(*v));
            if (!v) {
                rc = -1;
                break;
            }
            *nics = v;
            cap = ncap;
        }
        int r = nic_read(root, e->d_name, &(*nics)[*n]);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 1) (*n)++;
    }
    closedir(d);
    if (rc < 0) {
        ag_sriov_free(*nics, *n);
        *nics = NULL;
        *n = 0;
        return -1;
    }
    if (*n) qsort(*nics, *n, sizeof(**nics), nic_cmp);
    return 0;
}

void ag_sriov_free(ag_sriov_nic *nics, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(nics[i].vfs);
    free(nics);
}

json_t *ag_sriov_nics_json(const ag_sriov_nic *nics, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        const ag_sriov_nic *c = &nics[i];
        json_t *vfs = json_array();
        for (size_t j = 0; vfs && j < c->nvfs; j++)
            if (json_array_append_new(vfs,
                                      json_pack("{s:i, s:s, s:s}", "index", c->vfs[j].index, "pci",
                                                c->vfs[j].pci, "driver", c->vfs[j].driver)) < 0) {
                json_decref(vfs);
                vfs = NULL;
            }
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:b, s:i, s:i, s:o*}", "name",
                      c->name, "pci", c->pci, "driver", c->driver, "vendor", c->vendor, "device",
                      c->device, "mac", c->mac, "speed_mbps", (json_int_t)c->speed_mbps, "link",
                      c->link, "sriov_capable", c->total_vfs > 0, "sriov_total_vfs", c->total_vfs,
                      "sriov_num_vfs", c->num_vfs, "vfs", vfs);
        if (!o || !json_object_get(o, "vfs") || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *ag_sriov_collect(const char *root)
{
    ag_sriov_nic *nics;
    size_t n;
    if (ag_sriov_discover(root, &nics, &n) < 0) return NULL;
    json_t *j = ag_sriov_nics_json(nics, n);
    ag_sriov_free(nics, n);
    return j;
}

static const ag_sriov_nic *nic_named(const ag_sriov_nic *nics, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(nics[i].name, name)) return &nics[i];
    return NULL;
}

int ag_sriov_vf_check(const char *root, const char *pf, int vf_index, const char *vf_pci, char *err,
                      size_t errlen)
{
    ag_sriov_nic *nics;
    size_t n;
    if (ag_sriov_discover(root, &nics, &n) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const ag_sriov_nic *nic = ag_sriov_ifname_ok(pf) ? nic_named(nics, n, pf) : NULL;
    const ag_sriov_vf *vf = NULL;
    for (size_t i = 0; nic && i < nic->nvfs && !vf; i++)
        if (nic->vfs[i].index == vf_index) vf = &nic->vfs[i];
    int ok = vf && !strcasecmp(vf->pci, vf_pci);
    if (!ok) {
        char seen[128];
        if (!nic)
            snprintf(seen, sizeof(seen), "there is no physical NIC %.20s", pf);
        else if (!vf)
            snprintf(seen, sizeof(seen), "%s has %zu VFs enabled", nic->name, nic->nvfs);
        else
            snprintf(seen, sizeof(seen), "VF %d of %s is %s", vf_index, nic->name, vf->pci);
        snprintf(err, errlen, "%.16s is not VF %d of %.20s on this server (%s)", vf_pci, vf_index,
                 pf, seen);
    }
    ag_sriov_free(nics, n);
    return ok ? 0 : -1;
}

/* ---- enabling VFs ---- */

int ag_sriov_numvfs_parse(const char *spec, ag_sriov_want *out, size_t max, char *err,
                          size_t errlen)
{
    size_t n = 0;
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[64];
        while (len && isspace((unsigned char)*p))
            p++, len--;
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        if (!len || len >= sizeof(item)) {
            snprintf(err, errlen, "sriov_numvfs: '%.*s' is not <interface>=<count>",
                     (int)(len > 40 ? 40 : len), p);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char *eq = strchr(item, '=');
        if (!eq) {
            snprintf(err, errlen, "sriov_numvfs: '%s' is not <interface>=<count>", item);
            return -1;
        }
        *eq = '\0';
        char *name = item, *count = eq + 1;
        size_t nl = strlen(name);
        while (nl && isspace((unsigned char)name[nl - 1]))
            name[--nl] = '\0';
        while (isspace((unsigned char)*count))
            count++;
        if (!ag_sriov_ifname_ok(name)) {
            snprintf(err, errlen, "sriov_numvfs: '%s' is not an interface name", name);
            return -1;
        }
        char *cend;
        errno = 0;
        long v = strtol(count, &cend, 10);
        if (errno || cend == count || *cend || !isdigit((unsigned char)*count) || v < 0 ||
            v > AG_SRIOV_VFS_MAX) {
            snprintf(err, errlen, "sriov_numvfs: %s: '%s' is not a count from 0 to %d", name, count,
                     AG_SRIOV_VFS_MAX);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            if (!strcmp(out[i].pf, name)) {
                snprintf(err, errlen, "sriov_numvfs: %s is named twice", name);
                return -1;
            }
        if (n == max) {
            snprintf(err, errlen, "sriov_numvfs: more than %zu interfaces", max);
            return -1;
        }
        memcpy(out[n].pf, name, strlen(name) + 1); /* checked: at most AG_SRIOV_IFNAME_MAX */
        out[n].numvfs = (int)v;
        n++;
        if (!end) break;
        p = end + 1;
        if (!*p) {
            snprintf(err, errlen, "sriov_numvfs: a trailing comma");
            return -1;
        }
    }
    return (int)n;
}

/* Writes "<value>\n" to the attribute at path (a regular file: O_NOFOLLOW). 0, or -1 with errno. */
static int attr_write(const char *path, int value)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return -1;
    char buf[16];
    int len = snprintf(buf, sizeof(buf), "%d\n", value);
    ssize_t w = write(fd, buf, (size_t)len);
    int saved = errno;
    if (close(fd) < 0 && w == len) return -1;
    errno = saved;
    return w == len ? 0 : -1;
}

int ag_sriov_set_numvfs(const char *root, const char *pf, int numvfs, char *msg, size_t msglen,
                        char *err, size_t errlen)
{
    if (msg && msglen) *msg = '\0';
    if (!ag_sriov_ifname_ok(pf)) {
        snprintf(err, errlen, "'%.40s' is not an interface name", pf);
        return -1;
    }
    ag_sriov_nic *nics;
    size_t n;
    if (ag_sriov_discover(root, &nics, &n) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = -1;
    const ag_sriov_nic *nic = nic_named(nics, n, pf);
    const ag_sriov_vf *busy = NULL;
    for (size_t i = 0; nic && i < nic->nvfs && !busy; i++)
        if (!strcmp(nic->vfs[i].driver, "vfio-pci")) busy = &nic->vfs[i];
    char path[PATH_MAX];
    if (!nic) {
        snprintf(err, errlen, "%s: no physical NIC of that name on this server", pf);
    } else if (!nic->total_vfs) {
        snprintf(err, errlen, "%s: the device has no SR-IOV (no sriov_totalvfs)", pf);
    } else if (numvfs < 0 || numvfs > nic->total_vfs) {
        snprintf(err, errlen, "%s: %d VFs wanted, the device has at most %d", pf, numvfs,
                 nic->total_vfs);
    } else if (nic->num_vfs == numvfs) {
        if (msg) snprintf(msg, msglen, "%s: sriov_numvfs is already %d", pf, numvfs);
        rc = 0;
    } else if (nic->num_vfs && busy) {
        snprintf(err, errlen,
                 "%s: not changing sriov_numvfs %d -> %d: VF %d (%s) is bound to vfio-pci, "
                 "probably assigned to a running desktop",
                 pf, nic->num_vfs, numvfs, busy->index, busy->pci);
    } else if (snprintf(path, sizeof(path), "%s/sys/class/net/%s/device/sriov_numvfs", root,
                        nic->name) >= (int)sizeof(path)) {
        snprintf(err, errlen, "%s: the root prefix is too long", pf);
    } else if (nic->num_vfs && attr_write(path, 0) < 0) {
        snprintf(err, errlen, "%s: writing 0 to sriov_numvfs: %s", pf, strerror(errno));
    } else if (numvfs && attr_write(path, numvfs) < 0) {
        snprintf(err, errlen, "%s: writing %d to sriov_numvfs%s: %s", pf, numvfs,
                 nic->num_vfs ? " (after 0)" : "", strerror(errno));
    } else {
        if (msg && nic->num_vfs && numvfs)
            snprintf(msg, msglen, "%s: sriov_numvfs %d -> 0 -> %d", pf, nic->num_vfs, numvfs);
        else if (msg)
            snprintf(msg, msglen, "%s: sriov_numvfs %d -> %d", pf, nic->num_vfs, numvfs);
        rc = 1;
    }
    ag_sriov_free(nics, n);
    return rc;
}

int ag_sriov_apply_numvfs(const char *root, const char *spec, const char *log_tag)
{
    ag_sriov_want want[AG_SRIOV_WANT_MAX];
    char err[512], msg[256];
    const char *tag = log_tag ? log_tag : "";
    int n = ag_sriov_numvfs_parse(spec, want, AG_NELEM(want), err, sizeof(err));
    if (n < 0) {
        ag_log_tagged(AG_LOG_ERROR, tag, "%s", err);
        return 1;
    }
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int r = ag_sriov_set_numvfs(root, want[i].pf, want[i].numvfs, msg, sizeof(msg), err,
                                    sizeof(err));
        if (r < 0) {
            ag_log_tagged(AG_LOG_ERROR, tag, "sriov_numvfs: %s", err);
            failed++;
        } else {
            ag_log_tagged(r ? AG_LOG_INFO : AG_LOG_DEBUG, tag, "%s", msg);
        }
    }
    return failed;
}

/* ---- VF MAC and VLAN through rtnetlink ---- */

int ag_sriov_mac_parse(const char *s, unsigned char mac[6])
{
    if (strlen(s) != 17) return -1;
    for (int i = 0; i < 6; i++) {
        const char *b = s + 3 * i;
        if (!isxdigit((unsigned char)b[0]) || !isxdigit((unsigned char)b[1]) ||
            (i < 5 && b[2] != ':'))
            return -1;
        char hex[3] = {b[0], b[1], '\0'};
        mac[i] = (unsigned char)strtoul(hex, NULL, 16);
    }
    static const unsigned char zero[6];
    if (mac[0] & 1 || !memcmp(mac, zero, 6)) return -1; /* multicast, broadcast, none */
    return 0;
}

/*
 * Why libnl and not a message put together by hand: IFLA_VFINFO_LIST is a
 * nest of IFLA_VF_INFO nests whose members are fixed-layout structs (struct
 * ifla_vf_mac carries a 32-byte MAC field, ifla_vf_vlan vf/vlan/qos), and the
 * kernel silently ignores a VF attribute whose size does not match its
 * policy. libnl-route-3's rtnl_link_vf_* objects fill those structs from the
 * kernel's own <linux/if_link.h>, choose IFLA_VF_VLAN (802.1Q, one tag) over
 * IFLA_VF_VLAN_LIST as iproute2 does, align the nests, and nl_send_sync()
 * matches the kernel's ACK or error to our sequence number. The same library
 * is already what libvirt (virNetDevSetVfConfig) uses for this job.
 */
int ag_sriov_vf_request(int ifindex, int vf, const unsigned char mac[6], int vlan,
                        struct nl_msg **msg, char *err, size_t errlen)
{
    *msg = NULL;
    if (ifindex <= 0 || vf < 0 || vf >= AG_SRIOV_VFS_MAX || vlan < 0 || vlan > 4094) {
        snprintf(err, errlen, "bad VF request (ifindex %d, VF %d, VLAN %d)", ifindex, vf, vlan);
        return -1;
    }
    struct rtnl_link *orig = rtnl_link_alloc(), *changes = rtnl_link_alloc();
    struct rtnl_link_vf *v = rtnl_link_vf_alloc();
    struct nl_addr *addr = nl_addr_build(AF_LLC, mac, 6);
    nl_vf_vlans_t *vlans = NULL;
    int rc = -NLE_NOMEM;
    if (orig && changes && v && addr && rtnl_link_vf_vlan_alloc(&vlans, 1) == 0) {
        rtnl_link_set_ifindex(orig, ifindex);
        rtnl_link_vf_set_index(v, (uint32_t)vf);
        rtnl_link_vf_set_addr(v, addr);
        vlans->vlans[0].vf_vlan = (uint32_t)vlan;
        vlans->vlans[0].vf_vlan_qos = 0;
        vlans->vlans[0].vf_vlan_proto = ETH_P_8021Q;
        rtnl_link_vf_set_vlans(v, vlans);
        rc = rtnl_link_vf_add(changes, v);
        if (rc == 0) rc = rtnl_link_build_change_request(orig, changes, 0, msg);
    }
    if (vlans) rtnl_link_vf_vlan_put(vlans);
    if (addr) nl_addr_put(addr);
    if (v) rtnl_link_vf_put(v);
    if (changes) rtnl_link_put(changes);
    if (orig) rtnl_link_put(orig);
    if (rc < 0) {
        snprintf(err, errlen, "building the VF request: %s", nl_geterror(rc));
        *msg = NULL;
        return -1;
    }
    return 0;
}

int ag_sriov_vf_set(const char *pf, int vf, const unsigned char mac[6], int vlan, char *err,
                    size_t errlen)
{
    if (!ag_sriov_ifname_ok(pf)) {
        snprintf(err, errlen, "'%.40s' is not an interface name", pf);
        return -1;
    }
    unsigned idx = if_nametoindex(pf);
    if (!idx) {
        snprintf(err, errlen, "no interface %s on this machine: %s", pf, strerror(errno));
        return -1;
    }
    struct nl_msg *msg;
    if (ag_sriov_vf_request((int)idx, vf, mac, vlan, &msg, err, errlen) < 0) return -1;
    struct nl_sock *sk = nl_socket_alloc();
    int rc = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
    if (rc == 0)
        rc = nl_send_sync(sk, msg); /* frees msg, waits for the kernel's ACK */
    else
        nlmsg_free(msg);
    if (sk) nl_socket_free(sk);
    if (rc < 0) {
        snprintf(err, errlen, "%s VF %d: setting MAC and VLAN through rtnetlink: %s", pf, vf,
                 nl_geterror(rc));
        return -1;
    }
    return 0;
}

/*
 * test_agent_sriov.c - agent/ag_sriov.c and the SR-IOV parts of ag_provision.c
 * and ag_agent.c (issue 7):
 *   - discovery of tests/fixtures/sysroot-sriov-{ixgbe,i40e} equals the
 *     expected JSON next to each tree, exactly;
 *   - sriov_numvfs on a copy of a tree: 0 then N, the allow-list, refusals;
 *   - the rtnetlink request that sets a VF's MAC and VLAN, parsed back, and
 *     the kernel's answer for an interface without VFs (lo);
 *   - desktop.create with a VF: the domain XML (virt-xml-validate, libvirt's
 *     test driver), the refusal of a VF discovery does not show;
 *   - the nics array in full heartbeats only (a fake CCC on loopback).
 */
#include "bic_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libvirt/virterror.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <pthread.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ag_agent.h"
#include "ag_config.h"
#include "ag_exec.h"
#include "ag_fleet.h"
#include "ag_hv.h"
#include "ag_log.h"
#include "ag_provision.h"
#include "ag_sriov.h"
#include "ag_util.h"
#include "facts.h"

#define UUID1 "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
#define UUID2 "7a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
#define MAC1  "52:54:00:aa:bb:03"

/* ---- helpers ---- */

static char *fixture(const char *name)
{
    char buf[4096];
    test_fixture(buf, sizeof(buf), name);
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/sys/class/net", buf);
    if (access(probe, F_OK) != 0 && !strstr(name, ".json"))
        test_fail("fixture %s is missing (BIC_REPO?)", probe);
    return strdup(buf);
}

static void expect_json_equal(json_t *got, json_t *want, const char *what)
{
    if (json_equal(got, want)) return;
    char *g = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS);
    char *w = json_dumps(want, JSON_INDENT(1) | JSON_SORT_KEYS);
    print_error("%s differs.\n--- got:\n%s\n--- expected:\n%s\n", what, g, w);
    free(g);
    free(w);
    test_fail("%s is not the expected JSON", what);
}

static json_t *load_expected(const char *tree)
{
    char name[128];
    snprintf(name, sizeof(name), "%s.expected.json", tree);
    AG_AUTOFREE char *path = fixture(name);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) test_fail("%s: %s (line %d)", path, je.text, je.line);
    return j;
}

/* A copy of a fixture tree in a new temporary directory (links copied as links). */
static char copy_dst[256];
static size_t copy_src_len;

static int copy_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    char dst[4096];
    snprintf(dst, sizeof(dst), "%s%s", copy_dst, path + copy_src_len);
    if (flag == FTW_D) return mkdir(dst, 0755) < 0 && errno != EEXIST ? -1 : 0;
    if (flag == FTW_SL || flag == FTW_SLN) {
        char target[4096];
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n < 0) return -1;
        target[n] = '\0';
        return symlink(target, dst);
    }
    if (flag != FTW_F) return -1;
    size_t len;
    AG_AUTOFREE char *data = ag_file_read(path, 1 << 20, &len);
    if (!data) return -1;
    int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 0777);
    if (fd < 0) return -1;
    ssize_t w = write(fd, data, len);
    close(fd);
    return w == (ssize_t)len ? 0 : -1;
}

static char *tree_copy(const char *tree)
{
    AG_AUTOFREE char *src = fixture(tree);
    snprintf(copy_dst, sizeof(copy_dst), "/tmp/bic-sriov-XXXXXX");
    if (!mkdtemp(copy_dst)) test_fail("mkdtemp: %s", strerror(errno));
    copy_src_len = strlen(src);
    if (nftw(src, copy_one, 16, FTW_PHYS) != 0) test_fail("copying %s: %s", src, strerror(errno));
    return strdup(copy_dst);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tree_remove(char *root)
{
    if (root && !strncmp(root, "/tmp/bic-", 9)) nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(root);
}

/* The text of <root>/<rel> (malloc'd), or NULL. */
static char *tree_read(const char *root, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    return ag_file_read(path, 4096, NULL);
}

#define I40E_PF0  "sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0"
#define I40E_PF1  "sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.1"
#define IXGBE_PF1 "sys/devices/pci0000:00/0000:00:01.0/0000:03:00.1"

/* Watches one file for writes: an inotify fd. */
static int watch(const char *root, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    assert_true(fd >= 0);
    if (inotify_add_watch(fd, path, IN_CLOSE_WRITE | IN_MODIFY) < 0)
        test_fail("inotify_add_watch %s: %s", path, strerror(errno));
    return fd;
}

/* How many times the watched file was opened for writing, written and closed since; closes fd. */
static int writes_seen(int fd, int *modifies)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int closes = 0;
    *modifies = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            closes += !!(e->mask & IN_CLOSE_WRITE);
            *modifies += !!(e->mask & IN_MODIFY);
            p += sizeof(*e) + e->len;
        }
    close(fd);
    return closes;
}

/* ---- discovery ---- */

static void discovery_equals_the_expected_json(const char *tree)
{
    AG_AUTOFREE char *root = fixture(tree);
    json_t *want = load_expected(tree);
    json_t *facts = facts_collect(root);
    assert_non_null(facts);
    expect_json_equal(facts, want, tree);
    json_t *nics = ag_sriov_collect(root);
    expect_json_equal(nics, json_object_get(want, "nics"), "ag_sriov_collect");
    json_decref(nics);
    json_decref(facts);
    json_decref(want);
}

static void ixgbe_tree_gives_the_expected_json(void **state)
{
    (void)state;
    discovery_equals_the_expected_json("sysroot-sriov-ixgbe");
}

static void i40e_tree_gives_the_expected_json(void **state)
{
    (void)state;
    discovery_equals_the_expected_json("sysroot-sriov-i40e");
}

static void discovery_structs_follow_the_kernel_layout(void **state)
{
    (void)state;
    AG_AUTOFREE char *root = fixture("sysroot-sriov-ixgbe");
    ag_sriov_nic *nics;
    size_t n;
    assert_int_equal(ag_sriov_discover(root, &nics, &n), 0);
    /* enp3s0f0v0 and enp3s0f0v2 have device links but are VFs (physfn): not NICs; lo is virtual */
    assert_int_equal(n, 2);
    assert_string_equal(nics[0].name, "enp3s0f0");
    assert_string_equal(nics[1].name, "enp3s0f1");
    /* the 82599 spaces its VFs by sriov_stride 2: port 0's are functions 0, 2, 4, 6 */
    assert_int_equal(nics[0].nvfs, 4);
    const char *pci[] = {"0000:03:10.0", "0000:03:10.2", "0000:03:10.4", "0000:03:10.6"};
    const char *drv[] = {"ixgbevf", "vfio-pci", "ixgbevf", "vfio-pci"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(nics[0].vfs[i].index, i);
        assert_string_equal(nics[0].vfs[i].pci, pci[i]);
        assert_string_equal(nics[0].vfs[i].driver, drv[i]);
    }
    assert_int_equal(nics[1].nvfs, 0);
    assert_null(nics[1].vfs);
    ag_sriov_free(nics, n);
}

static void vfs_are_ordered_by_index_not_by_name(void **state)
{
    (void)state;
    /* virtfn10 sorts before virtfn2 as a name: 4 more VFs on a copy of the tree show the order */
    char *root = tree_copy("sysroot-sriov-i40e");
    for (int i = 8; i < 12; i++) {
        char link[4200], target[64];
        snprintf(link, sizeof(link), "%s/" I40E_PF0 "/virtfn%d", root, i);
        snprintf(target, sizeof(target), "../0000:3b:03.%d", i - 8);
        assert_int_equal(symlink(target, link), 0);
        snprintf(link, sizeof(link), "%s/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:03.%d", root,
                 i - 8);
        assert_int_equal(mkdir(link, 0755), 0);
    }
    ag_sriov_nic *nics;
    size_t n;
    assert_int_equal(ag_sriov_discover(root, &nics, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(nics[1].name, "ens1f0");
    assert_int_equal(nics[1].nvfs, 12);
    for (int i = 0; i < 12; i++)
        assert_int_equal(nics[1].vfs[i].index, i);
    assert_string_equal(nics[1].vfs[10].pci, "0000:3b:03.2");
    assert_string_equal(nics[1].vfs[10].driver, ""); /* no driver link */
    ag_sriov_free(nics, n);
    tree_remove(root);
}

static void a_missing_tree_has_no_nics(void **state)
{
    (void)state;
    json_t *nics = ag_sriov_collect("/nonexistent/bic-root");
    assert_true(json_is_array(nics));
    assert_int_equal(json_array_size(nics), 0);
    json_decref(nics);
}

static void vf_check_compares_with_discovery(void **state)
{
    (void)state;
    AG_AUTOFREE char *root = fixture("sysroot-sriov-i40e");
    char err[512];
    assert_int_equal(ag_sriov_vf_check(root, "ens1f0", 3, "0000:3b:02.3", err, sizeof(err)), 0);
    assert_int_equal(ag_sriov_vf_check(root, "ens1f1", 1, "0000:3b:0a.1", err, sizeof(err)), 0);
    const struct {
        const char *pf;
        int index;
        const char *pci, *msg;
    } bad[] = {
        {"ens1f0", 4, "0000:3b:02.3",
         "0000:3b:02.3 is not VF 4 of ens1f0 on this server "
         "(VF 4 of ens1f0 is 0000:3b:02.4)"},
        {"ens1f0", 8, "0000:3b:03.0", "is not VF 8 of ens1f0 on this server (ens1f0 has 8 VFs"},
        {"ens1f1", 0, "0000:3b:02.0", "is not VF 0 of ens1f1"},
        {"ens9f9", 0, "0000:3b:02.0", "(there is no physical NIC ens9f9)"},
        {"ens1f0v0", 0, "0000:3b:02.0", "there is no physical NIC"}, /* a VF's netdev */
        {"virbr0", 0, "0000:3b:02.0", "there is no physical NIC"},
        {"../ens1f0", 3, "0000:3b:02.3", "is not VF 3 of ../ens1f0"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        *err = '\0';
        if (ag_sriov_vf_check(root, bad[i].pf, bad[i].index, bad[i].pci, err, sizeof(err)) == 0)
            test_fail("%s VF %d %s was accepted", bad[i].pf, bad[i].index, bad[i].pci);
        if (!test_contains(err, bad[i].msg)) test_fail("'%s' does not say '%s'", err, bad[i].msg);
    }
}

/* ---- sriov_numvfs ---- */

static void numvfs_writes_zero_then_the_count(void **state)
{
    (void)state;
    char *root = tree_copy("sysroot-sriov-i40e");
    char msg[256] = "", err[256] = "";
    int w = watch(root, I40E_PF1 "/sriov_numvfs"), mods;
    assert_int_equal(ag_sriov_set_numvfs(root, "ens1f1", 4, msg, sizeof(msg), err, sizeof(err)), 1);
    /* two opens for writing, two writes: "0" (the kernel's rule), then "4" */
    assert_int_equal(writes_seen(w, &mods), 2);
    assert_int_equal(mods, 2);
    assert_string_equal(msg, "ens1f1: sriov_numvfs 2 -> 0 -> 4");
    AG_AUTOFREE char *v = tree_read(root, I40E_PF1 "/sriov_numvfs");
    assert_string_equal(v, "4\n");

    /* the same count again: nothing written */
    w = watch(root, I40E_PF1 "/sriov_numvfs");
    assert_int_equal(ag_sriov_set_numvfs(root, "ens1f1", 4, msg, sizeof(msg), err, sizeof(err)), 0);
    assert_int_equal(writes_seen(w, &mods), 0);
    assert_string_equal(msg, "ens1f1: sriov_numvfs is already 4");

    /* down to 0: one write */
    w = watch(root, I40E_PF1 "/sriov_numvfs");
    assert_int_equal(ag_sriov_set_numvfs(root, "ens1f1", 0, msg, sizeof(msg), err, sizeof(err)), 1);
    assert_int_equal(writes_seen(w, &mods), 1);
    assert_string_equal(msg, "ens1f1: sriov_numvfs 4 -> 0");
    free(v);
    v = tree_read(root, I40E_PF1 "/sriov_numvfs");
    assert_string_equal(v, "0\n");
    tree_remove(root);

    /* from 0 (VFs disabled, no virtfn links): one write of the count */
    root = tree_copy("sysroot-sriov-ixgbe");
    w = watch(root, IXGBE_PF1 "/sriov_numvfs");
    assert_int_equal(ag_sriov_set_numvfs(root, "enp3s0f1", 63, msg, sizeof(msg), err, sizeof(err)),
                     1);
    assert_int_equal(writes_seen(w, &mods), 1);
    assert_string_equal(msg, "enp3s0f1: sriov_numvfs 0 -> 63");
    free(v);
    v = tree_read(root, IXGBE_PF1 "/sriov_numvfs");
    assert_string_equal(v, "63\n");
    tree_remove(root);
}

static void numvfs_refuses_what_is_not_an_sriov_pf_here(void **state)
{
    (void)state;
    char *root = tree_copy("sysroot-sriov-i40e");
    const struct {
        const char *pf;
        int n;
        const char *msg;
    } bad[] = {
        {"ens9f9", 4, "ens9f9: no physical NIC of that name on this server"},
        {"virbr0", 4, "no physical NIC"},   /* a virtual bridge */
        {"ens1f0v0", 1, "no physical NIC"}, /* a VF's own netdev */
        {"eno1", 2, "eno1: the device has no SR-IOV"},
        {"ens1f1", 65, "ens1f1: 65 VFs wanted, the device has at most 64"},
        {"ens1f1", -1, "at most 64"},
        {"../../../../tmp", 4, "is not an interface name"},
        {"ens1f1/../ens1f0", 4, "is not an interface name"},
        {"..", 4, "is not an interface name"},
        {"", 4, "is not an interface name"},
        {"ens1f0", 4,
         "ens1f0: not changing sriov_numvfs 8 -> 4: VF 6 (0000:3b:02.6) is bound "
         "to vfio-pci"},
        {"ens1f0", 0, "VF 6 (0000:3b:02.6) is bound to vfio-pci"},
    };
    int w0 = watch(root, I40E_PF0 "/sriov_numvfs"), w1 = watch(root, I40E_PF1 "/sriov_numvfs");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char msg[256] = "", err[256] = "";
        if (ag_sriov_set_numvfs(root, bad[i].pf, bad[i].n, msg, sizeof(msg), err, sizeof(err)) !=
            -1)
            test_fail("'%s' = %d was not refused (%s)", bad[i].pf, bad[i].n, msg);
        if (!test_contains(err, bad[i].msg))
            test_fail("'%s' = %d: '%s' does not say '%s'", bad[i].pf, bad[i].n, err, bad[i].msg);
    }
    int mods;
    assert_int_equal(writes_seen(w0, &mods), 0);
    assert_int_equal(writes_seen(w1, &mods), 0);
    AG_AUTOFREE char *v = tree_read(root, I40E_PF0 "/sriov_numvfs");
    assert_string_equal(v, "8\n");
    tree_remove(root);
}

static void numvfs_never_follows_a_link_at_the_attribute(void **state)
{
    (void)state;
    char *root = tree_copy("sysroot-sriov-ixgbe");
    char path[4200], bait[4200];
    snprintf(bait, sizeof(bait), "%s/bait", root);
    FILE *f = fopen(bait, "w");
    fputs("0\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/" IXGBE_PF1 "/sriov_numvfs", root);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("../../../../../bait", path), 0);
    char msg[256] = "", err[256] = "";
    assert_int_equal(ag_sriov_set_numvfs(root, "enp3s0f1", 8, msg, sizeof(msg), err, sizeof(err)),
                     -1);
    if (!test_contains(err, "enp3s0f1: writing 8 to sriov_numvfs: "))
        test_fail("unexpected error '%s'", err);
    AG_AUTOFREE char *v = tree_read(root, "bait");
    assert_string_equal(v, "0\n"); /* untouched */
    tree_remove(root);
}

static void apply_numvfs_sets_each_pf_and_counts_failures(void **state)
{
    (void)state;
    char *root = tree_copy("sysroot-sriov-i40e");
    /* ens1f1 is set; ens1f0 is refused (VFs on vfio-pci); enp3s0f1 is not on this server */
    assert_int_equal(ag_sriov_apply_numvfs(root, "ens1f1=6, ens1f0=4,enp3s0f1=2", "test: "), 2);
    AG_AUTOFREE char *v1 = tree_read(root, I40E_PF1 "/sriov_numvfs");
    AG_AUTOFREE char *v0 = tree_read(root, I40E_PF0 "/sriov_numvfs");
    assert_string_equal(v1, "6\n");
    assert_string_equal(v0, "8\n");
    /* the discovery that follows reports the new count (the fixture has no kernel to add VFs) */
    json_t *nics = ag_sriov_collect(root);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(nics, 2), "sriov_num_vfs")),
                     6);
    json_decref(nics);
    assert_int_equal(ag_sriov_apply_numvfs(root, "", "test: "), 0);
    assert_int_equal(ag_sriov_apply_numvfs(root, "ens1f1=x", "test: "), 1);
    tree_remove(root);
}

static void numvfs_spec_parsing(void **state)
{
    (void)state;
    ag_sriov_want w[4];
    char err[256];
    assert_int_equal(ag_sriov_numvfs_parse("ens1f0=8,enp3s0f0=4", w, 4, err, sizeof(err)), 2);
    assert_string_equal(w[0].pf, "ens1f0");
    assert_int_equal(w[0].numvfs, 8);
    assert_string_equal(w[1].pf, "enp3s0f0");
    assert_int_equal(w[1].numvfs, 4);
    assert_int_equal(ag_sriov_numvfs_parse("  ", w, 4, err, sizeof(err)), -1);
    assert_int_equal(ag_sriov_numvfs_parse("", w, 4, err, sizeof(err)), 0);
    assert_int_equal(ag_sriov_numvfs_parse("a=1,b=2,c=3", w, 2, err, sizeof(err)), -1);
    assert_true(test_contains(err, "more than 2"));
    assert_int_equal(ag_sriov_numvfs_parse("a=+1", w, 4, err, sizeof(err)), -1);
    assert_int_equal(ag_sriov_numvfs_parse("a=1=2", w, 4, err, sizeof(err)), -1);
    assert_int_equal(ag_sriov_numvfs_parse("=1", w, 4, err, sizeof(err)), -1);
}

/* ---- MAC and VLAN through rtnetlink ---- */

static void mac_parsing_wants_a_unicast_address(void **state)
{
    (void)state;
    unsigned char m[6];
    assert_int_equal(ag_sriov_mac_parse("52:54:00:AA:bb:03", m), 0);
    const unsigned char want[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0x03};
    assert_memory_equal(m, want, 6);
    const char *bad[] = {
        "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00",  "52:54:00:aa:bb",
        "52-54-00-aa-bb-03", "52:54:00:aa:bb:0g", "52:54:00:aa:bb:033", "",
        "525400aabb03"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ag_sriov_mac_parse(bad[i], m) == 0) test_fail("'%s' was accepted", bad[i]);
}

struct vf_attrs {
    int ifindex, nlmsg_type, n_vf_info, has_vlan_list;
    struct ifla_vf_mac mac;
    struct ifla_vf_vlan vlan;
    int have_mac, have_vlan;
};

/* Parses a request the way the kernel's rtnetlink does, independently of how it was built. */
static void parse_vf_request(struct nl_msg *msg, struct vf_attrs *out)
{
    memset(out, 0, sizeof(*out));
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    out->nlmsg_type = nlh->nlmsg_type;
    struct ifinfomsg *ifi = nlmsg_data(nlh);
    out->ifindex = ifi->ifi_index;
    struct nlattr *tb[IFLA_MAX + 1];
    assert_int_equal(nlmsg_parse(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL), 0);
    if (!tb[IFLA_VFINFO_LIST]) test_fail("no IFLA_VFINFO_LIST in the request");
    struct nlattr *info;
    int rem;
    nla_for_each_nested(info, tb[IFLA_VFINFO_LIST], rem)
    {
        assert_int_equal(nla_type(info), IFLA_VF_INFO);
        out->n_vf_info++;
        struct nlattr *vf[IFLA_VF_MAX + 1];
        assert_int_equal(nla_parse_nested(vf, IFLA_VF_MAX, info, NULL), 0);
        if (vf[IFLA_VF_MAC]) {
            assert_int_equal(nla_len(vf[IFLA_VF_MAC]), sizeof(struct ifla_vf_mac));
            memcpy(&out->mac, nla_data(vf[IFLA_VF_MAC]), sizeof(out->mac));
            out->have_mac = 1;
        }
        if (vf[IFLA_VF_VLAN]) {
            assert_int_equal(nla_len(vf[IFLA_VF_VLAN]), sizeof(struct ifla_vf_vlan));
            memcpy(&out->vlan, nla_data(vf[IFLA_VF_VLAN]), sizeof(out->vlan));
            out->have_vlan = 1;
        }
        out->has_vlan_list |= vf[IFLA_VF_VLAN_LIST] != NULL;
    }
}

static void vf_request_carries_index_mac_and_vlan(void **state)
{
    (void)state;
    unsigned char mac[6];
    assert_int_equal(ag_sriov_mac_parse(MAC1, mac), 0);
    struct nl_msg *msg = NULL;
    char err[256];
    assert_int_equal(ag_sriov_vf_request(7, 3, mac, 100, &msg, err, sizeof(err)), 0);
    assert_non_null(msg);
    struct vf_attrs a;
    parse_vf_request(msg, &a);
    nlmsg_free(msg);
    assert_int_equal(a.nlmsg_type, RTM_NEWLINK);
    assert_int_equal(a.ifindex, 7); /* the PF: VFs are set through their PF */
    assert_int_equal(a.n_vf_info, 1);
    assert_true(a.have_mac);
    assert_int_equal(a.mac.vf, 3);
    assert_memory_equal(a.mac.mac, mac, 6);
    static const unsigned char zero[26];
    assert_memory_equal(a.mac.mac + 6, zero, sizeof(a.mac.mac) - 6);
    assert_true(a.have_vlan);
    assert_int_equal(a.vlan.vf, 3);
    assert_int_equal(a.vlan.vlan, 100);
    assert_int_equal(a.vlan.qos, 0);
    assert_false(a.has_vlan_list); /* one 802.1Q tag: IFLA_VF_VLAN, as iproute2 sends it */

    /* no VLAN: VLAN 0 is sent, which clears the tag a VF kept from its previous desktop */
    assert_int_equal(ag_sriov_vf_request(12, 0, mac, 0, &msg, err, sizeof(err)), 0);
    parse_vf_request(msg, &a);
    nlmsg_free(msg);
    assert_int_equal(a.ifindex, 12);
    assert_int_equal(a.mac.vf, 0);
    assert_true(a.have_vlan);
    assert_int_equal(a.vlan.vf, 0);
    assert_int_equal(a.vlan.vlan, 0);
}

static void vf_request_refuses_bad_values(void **state)
{
    (void)state;
    unsigned char mac[6];
    ag_sriov_mac_parse(MAC1, mac);
    struct nl_msg *msg = (struct nl_msg *)&msg;
    char err[256];
    assert_int_equal(ag_sriov_vf_request(7, 3, mac, 4095, &msg, err, sizeof(err)), -1);
    assert_null(msg);
    assert_true(test_contains(err, "VLAN 4095"));
    assert_int_equal(ag_sriov_vf_request(7, -1, mac, 1, &msg, err, sizeof(err)), -1);
    assert_int_equal(ag_sriov_vf_request(0, 1, mac, 1, &msg, err, sizeof(err)), -1);
}

static void the_kernel_refuses_vf_settings_on_an_interface_without_vfs(void **state)
{
    (void)state;
    unsigned char mac[6];
    ag_sriov_mac_parse(MAC1, mac);
    char err[512] = "";
    /* lo exists in every network namespace and has no VFs: the kernel answers with an error */
    assert_int_equal(ag_sriov_vf_set("lo", 0, mac, 100, err, sizeof(err)), -1);
    print_message("    kernel answer for lo: %s\n", err);
    if (!test_contains(err, "lo VF 0: setting MAC and VLAN through rtnetlink: "))
        test_fail("unexpected error '%s'", err);
    /* EOPNOTSUPP as root (lo has no ndo_set_vf_mac), EPERM without CAP_NET_ADMIN */
    if (!test_contains(err, "not supported") && !test_contains(err, "not permitted"))
        test_fail("unexpected reason in '%s'", err);
    assert_int_equal(ag_sriov_vf_set("bicnone0", 0, mac, 0, err, sizeof(err)), -1);
    assert_true(test_contains(err, "no interface bicnone0 on this machine"));
    assert_int_equal(ag_sriov_vf_set("../lo", 0, mac, 0, err, sizeof(err)), -1);
    assert_true(test_contains(err, "is not an interface name"));
}

/* ---- desktop.create with a VF ---- */

struct prov_fx {
    char dir[64];
    ag_config cfg;
    virConnectPtr conn;
    char base[512];
};

static int prov_setup(void **state)
{
    struct prov_fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/bic-sriov-prov-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    char err[256], v[128];
    if (ag_config_load(&f->cfg, NULL, err, sizeof(err)) < 0) return -1;
    ag_config_set(&f->cfg, "state_dir", f->dir);
    snprintf(v, sizeof(v), "%s/images", f->dir);
    ag_config_set(&f->cfg, "image_dir", v);
    AG_AUTOFREE char *root = fixture("sysroot-sriov-i40e");
    ag_config_set(&f->cfg, "root_prefix", root);
    snprintf(f->base, sizeof(f->base),
             "/var/lib/bic/images/base.qcow2"); /* make_base: a real one */
    ag_hv_quiet();
    f->conn = virConnectOpen("test:///default");
    if (!f->conn) return -1;
    *state = f;
    return 0;
}

static int prov_teardown(void **state)
{
    struct prov_fx *f = *state;
    virConnectClose(f->conn);
    ag_config_free(&f->cfg);
    nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static int prov_run(struct prov_fx *f, const char *type, json_t *params, json_t **result, char *err,
                    size_t errlen)
{
    ag_exec_env env = {.conn = f->conn, .cfg = &f->cfg};
    *result = NULL;
    int rc = ag_exec_task(&env, type, params, result, err, errlen);
    json_decref(params);
    return rc;
}

/* The pool (made by the first task) and a 1 GiB qcow2 base volume in it. */
static void make_base(struct prov_fx *f)
{
    json_t *r;
    char err[512];
    if (prov_run(f, "desktop.delete", json_pack("{s:s, s:s}", "uuid", UUID2, "overlay", "none"), &r,
                 err, sizeof(err)) < 0)
        test_fail("desktop.delete: %s", err);
    json_decref(r);
    virStoragePoolPtr pool = virStoragePoolLookupByName(f->conn, "bic");
    assert_non_null(pool);
    virStorageVolPtr v =
        virStorageVolCreateXML(pool,
                               "<volume><name>base.qcow2</name><capacity unit='GiB'>1</capacity>"
                               "<target><format type='qcow2'/></target></volume>",
                               0);
    assert_non_null(v);
    char *path = virStorageVolGetPath(v);
    snprintf(f->base, sizeof(f->base), "%s", path);
    free(path);
    virStorageVolFree(v);
    virStoragePoolFree(pool);
}

static json_t *create_params(const struct prov_fx *f, const char *uuid, json_t *nic)
{
    char overlay[96];
    snprintf(overlay, sizeof(overlay), "bic-desk-%s.qcow2", uuid);
    return json_pack("{s:s, s:s, s:i, s:i, s:i, s:s, s:s, s:o, s:b}", "uuid", uuid, "name",
                     uuid + 30, "vcpus", 2, "memory_mib", 1024, "disk_gib", 20, "base", f->base,
                     "overlay", overlay, "nic", nic, "start", 0);
}

static json_t *vf_nic(const char *pci, const char *pf, int index, int vlan)
{
    json_t *n = json_pack("{s:s, s:s, s:s, s:i, s:s}", "type", "sriov", "vf_pci", pci, "pf", pf,
                          "vf_index", index, "mac", MAC1);
    if (vlan) json_object_set_new(n, "vlan", json_integer(vlan));
    return n;
}

/*
 * Runs virt-xml-validate <file> domain (argv, no shell). 0 when valid, 1 when
 * not (its output printed), -1 when the tool is not there (reason printed).
 */
static int xml_validate(const char *xml, const char *dir)
{
    const char *tool = "/usr/bin/virt-xml-validate";
    if (access(tool, X_OK) != 0) {
        print_message("    SKIP virt-xml-validate: %s is not installed (package libvirt-clients)\n",
                      tool);
        return -1;
    }
    char file[256], out[256];
    snprintf(file, sizeof(file), "%s/domain.xml", dir);
    snprintf(out, sizeof(out), "%s/validate.out", dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fputs(xml, fp);
    fclose(fp);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        char *const argv[] = {(char *)tool, file, (char *)"domain", NULL};
        execvp(tool, argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    AG_AUTOFREE char *text = ag_file_read(out, 65536, NULL);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    print_error("virt-xml-validate failed (%d):\n%s\n--- XML:\n%s\n", st, text ? text : "", xml);
    return 1;
}

static void vf_desktop_xml_is_valid_and_libvirt_takes_it(void **state)
{
    struct prov_fx *f = *state;
    json_t *params = create_params(f, UUID1, vf_nic("0000:3b:02.3", "ens1f0", 3, 100));
    char err[512];
    AG_AUTOFREE char *xml = ag_provision_domain_xml(
        f->conn, &f->cfg, params, "/var/lib/bic/images/d.qcow2", err, sizeof(err));
    json_decref(params);
    if (!xml) test_fail("%s", err);
    const char *want[] = {
        "<interface type='hostdev' managed='yes'>",
        "<mac address='" MAC1 "'/>",
        "<source><address type='pci' domain='0x0000' bus='0x3b' slot='0x02' "
        "function='0x3'/></source>",
        "<vlan><tag id='100'/></vlan>",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!test_contains(xml, want[i])) test_fail("no %s in:\n%s", want[i], xml);
    assert_false(test_contains(xml, "<model type='virtio'/>\n    </interface>"));
    int v = xml_validate(xml, f->dir);
    assert_true(v <= 0); /* -1: skipped, said why */

    /* libvirt's test driver takes the definition and keeps the NIC as written */
    virDomainPtr dom = virDomainDefineXML(f->conn, xml);
    if (!dom) test_fail("virDomainDefineXML: %s", virGetLastErrorMessage());
    char *back = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
    assert_non_null(back);
    assert_true(test_contains(back, "<interface type='hostdev' managed='yes'>"));
    assert_true(test_contains(back, "<mac address='" MAC1 "'/>"));
    assert_true(test_contains(back, "<tag id='100'/>"));
    assert_true(test_contains(back, "bus='0x3b' slot='0x02' function='0x3'"));
    free(back);
    virDomainUndefine(dom);
    virDomainFree(dom);
}

static void virtio_xml_on_a_bridge_has_the_mac_and_no_vlan(void **state)
{
    struct prov_fx *f = *state;
    ag_config_set(&f->cfg, "bridge", "br-desk");
    ag_config_set(&f->cfg, "network", "default"); /* the bridge wins */
    json_t *nic =
        json_pack("{s:s, s:s, s:i}", "type", "virtio", "mac", "52:54:00:00:00:42", "vlan", 300);
    json_t *params = create_params(f, UUID1, nic);
    char err[512];
    AG_AUTOFREE char *xml = ag_provision_domain_xml(
        f->conn, &f->cfg, params, "/var/lib/bic/images/d.qcow2", err, sizeof(err));
    json_decref(params);
    if (!xml) test_fail("%s", err);
    assert_true(test_contains(xml, "<interface type='bridge'>\n      <source bridge='br-desk'/>\n"
                                   "      <mac address='52:54:00:00:00:42'/>\n"
                                   "      <model type='virtio'/>\n    </interface>"));
    /* libvirt 9 tags only on Open vSwitch: a virtio NIC's VLAN is not applied */
    assert_false(test_contains(xml, "<vlan>"));
    assert_false(test_contains(xml, "network="));
    assert_true(xml_validate(xml, f->dir) <= 0);
    virDomainPtr dom = virDomainDefineXML(f->conn, xml);
    if (!dom) test_fail("virDomainDefineXML: %s", virGetLastErrorMessage());
    virDomainUndefine(dom);
    virDomainFree(dom);

    /* without a bridge: the network, and a user-mode NIC without either; no MAC when none given */
    ag_config_set(&f->cfg, "bridge", "");
    params = create_params(f, UUID1, json_pack("{s:s}", "type", "virtio"));
    AG_AUTOFREE char *x2 =
        ag_provision_domain_xml(f->conn, &f->cfg, params, "/x/d.qcow2", err, sizeof(err));
    assert_true(test_contains(x2, "<interface type='network'>\n      <source network='default'/>"));
    assert_false(test_contains(x2, "<mac "));
    ag_config_set(&f->cfg, "network", "");
    AG_AUTOFREE char *x3 =
        ag_provision_domain_xml(f->conn, &f->cfg, params, "/x/d.qcow2", err, sizeof(err));
    json_decref(params);
    assert_true(test_contains(x3, "<interface type='user'>\n      <model type='virtio'/>"));
}

static void desktop_create_with_a_vf_reports_the_nic(void **state)
{
    struct prov_fx *f = *state;
    make_base(f);
    json_t *r;
    char err[512];
    if (prov_run(f, "desktop.create",
                 create_params(f, UUID1, vf_nic("0000:3b:02.3", "ens1f0", 3, 100)), &r, err,
                 sizeof(err)) < 0)
        test_fail("desktop.create: %s", err);
    /* root_prefix is a fixture tree: sriov_netlink auto is off, the VF was not programmed */
    json_t *want = json_pack("{s:s, s:s, s:s}", "type", "sriov", "vf_pci", "0000:3b:02.3",
                             "vf_config", "skipped");
    expect_json_equal(json_object_get(r, "nic"), want, "result.nic");
    json_decref(want);
    assert_true(json_is_true(json_object_get(r, "changed")));
    json_decref(r);
    virDomainPtr dom = virDomainLookupByUUIDString(f->conn, UUID1);
    assert_non_null(dom);
    char *x = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
    assert_true(test_contains(x, "<interface type='hostdev' managed='yes'>"));
    assert_true(test_contains(x, "bus='0x3b' slot='0x02' function='0x3'"));
    free(x);
    virDomainFree(dom);

    /* a virtio desktop: vf_pci null */
    if (prov_run(f, "desktop.create", create_params(f, UUID2, json_pack("{s:s}", "type", "virtio")),
                 &r, err, sizeof(err)) < 0)
        test_fail("desktop.create: %s", err);
    want = json_pack("{s:s, s:n, s:s}", "type", "virtio", "vf_pci", "vf_config", "skipped");
    expect_json_equal(json_object_get(r, "nic"), want, "result.nic");
    json_decref(want);
    json_decref(r);
}

static void desktop_create_refuses_a_vf_that_is_not_on_the_server(void **state)
{
    struct prov_fx *f = *state;
    make_base(f);
    json_t *r;
    char err[512];
    /* CCC believes 0000:3b:02.3 is VF 4; discovery says it is VF 3 */
    assert_int_equal(prov_run(f, "desktop.create",
                              create_params(f, UUID1, vf_nic("0000:3b:02.3", "ens1f0", 4, 0)), &r,
                              err, sizeof(err)),
                     -1);
    assert_null(r);
    if (!test_contains(err, "0000:3b:02.3 is not VF 4 of ens1f0 on this server"))
        test_fail("unexpected error '%s'", err);
    /* nothing was made */
    assert_null(virDomainLookupByUUIDString(f->conn, UUID1));
    virStoragePoolPtr pool = virStoragePoolLookupByName(f->conn, "bic");
    virStorageVolPtr ov = virStorageVolLookupByName(pool, "bic-desk-" UUID1 ".qcow2");
    assert_null(ov);
    virStoragePoolFree(pool);
    /* a PF that is not there, and a VF past the enabled ones */
    assert_int_equal(prov_run(f, "desktop.create",
                              create_params(f, UUID1, vf_nic("0000:3b:02.0", "ens7f0", 0, 0)), &r,
                              err, sizeof(err)),
                     -1);
    assert_true(test_contains(err, "there is no physical NIC ens7f0"));
    assert_int_equal(prov_run(f, "desktop.create",
                              create_params(f, UUID1, vf_nic("0000:3b:0a.2", "ens1f1", 2, 0)), &r,
                              err, sizeof(err)),
                     -1);
    assert_true(test_contains(err, "ens1f1 has 2 VFs enabled"));
}

static void nic_params_are_checked_strictly(void **state)
{
    struct prov_fx *f = *state;
    const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"type\":\"sriov\",\"vf_pci\":\"0000:3b:02.3\",\"vf_index\":3,\"mac\":\"" MAC1 "\"}",
         "nic.type sriov needs nic.pf"},
        {"{\"type\":\"sriov\",\"vf_pci\":\"0000:3b:02.3\",\"pf\":\"ens1f0\",\"mac\":\"" MAC1 "\"}",
         "nic.type sriov needs nic.vf_index"},
        {"{\"type\":\"sriov\",\"vf_pci\":\"0000:3b:02.3\",\"pf\":\"ens1f0\",\"vf_index\":3}",
         "nic.type sriov needs nic.mac"},
        {"{\"type\":\"sriov\",\"pf\":\"ens1f0\",\"vf_index\":3,\"mac\":\"" MAC1 "\"}",
         "nic.type sriov needs nic.vf_pci"},
        {"{\"type\":\"sriov\",\"vf_pci\":\"0000:3b:02.3\",\"pf\":\"ens1f0\",\"vf_index\":3,"
         "\"mac\":\"01:00:5e:00:00:01\"}",
         "params.nic.mac must be a unicast MAC address"},
        {"{\"type\":\"sriov\",\"vf_pci\":\"0000:3b:02.3\",\"pf\":\"ens1f0\",\"vf_index\":3,"
         "\"mac\":\"" MAC1 "\",\"vlan\":0}",
         "params.nic.vlan must be an integer from 1 to 4094"},
        {"{\"type\":\"sriov\",\"vf_pci\":\"0000:3b:02.3\",\"pf\":\"ens1f0\",\"vf_index\":3,"
         "\"mac\":\"" MAC1 "\",\"vlan\":4095}",
         "params.nic.vlan must be an integer from 1 to 4094"},
        {"{\"type\":\"sriov\",\"vf_pci\":\"0000:3b:02.3\",\"pf\":\"ens1f0\",\"vf_index\":-1,"
         "\"mac\":\"" MAC1 "\"}",
         "params.nic.vf_index must be an integer from 0 to"},
        {"{\"type\":\"sriov\",\"vf_pci\":\"0000:3b:02.3\",\"pf\":\"../ens1f0\",\"vf_index\":3,"
         "\"mac\":\"" MAC1 "\"}",
         "params.nic.pf must be an interface name"},
        {"{\"type\":\"sriov\",\"vf_pci\":\"0000:3b:02.3\",\"pf\":\"ens1f0\",\"vf_index\":\"3\","
         "\"mac\":\"" MAC1 "\"}",
         "params.nic.vf_index must be an integer"},
        {"{\"type\":\"virtio\",\"vf_pci\":\"0000:3b:02.3\"}",
         "params.nic.vf_pci is only for nic.type sriov"},
        {"{\"type\":\"virtio\",\"pf\":\"ens1f0\"}", "params.nic.pf is only for nic.type sriov"},
        {"{\"type\":\"virtio\",\"mac\":\"52:54:00\"}", "params.nic.mac must be a unicast MAC"},
        {"{\"type\":\"virtio\",\"vlan\":\"100\"}", "params.nic.vlan must be an integer"},
        {"{\"type\":\"virtio\",\"bridge\":\"br0\"}", "unknown parameter 'nic.bridge'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *nic = json_loads(bad[i].json, 0, NULL);
        if (!nic) test_fail("bad test JSON %s", bad[i].json);
        json_t *r;
        char err[512] = "";
        if (prov_run(f, "desktop.create", create_params(f, UUID1, nic), &r, err, sizeof(err)) == 0)
            test_fail("%s was accepted", bad[i].json);
        if (!test_contains(err, bad[i].msg))
            test_fail("%s: '%s' does not say '%s'", bad[i].json, err, bad[i].msg);
    }
    /* refused before the pool was even looked at */
    assert_null(virStoragePoolLookupByName(f->conn, "bic"));
    /* null counts as absent */
    json_t *nic = json_pack("{s:s, s:n, s:n, s:n}", "type", "virtio", "vf_pci", "mac", "vlan");
    json_t *params = create_params(f, UUID1, nic);
    char err[512];
    AG_AUTOFREE char *xml =
        ag_provision_domain_xml(f->conn, &f->cfg, params, "/x/d.qcow2", err, sizeof(err));
    json_decref(params);
    if (!xml) test_fail("nulls refused: %s", err);
}

/* ---- fleets ---- */

static void fleet_members_never_program_the_hosts_vfs_unless_told(void **state)
{
    (void)state;
    ag_config base, m;
    char err[256];
    assert_int_equal(ag_config_load(&base, NULL, err, sizeof(err)), 0);
    ag_config_set(&base, "ccc_url", "https://127.0.0.1:1");
    ag_config_set(&base, "machine_id", "0123456789abcdef");
    ag_config_set(&base, "hostname", "fleet");
    ag_config_set(&base, "state_dir", "/tmp/bic-sriov-fleet");
    ag_config_set(&base, "listen", "127.0.0.1:0");
    AG_AUTOFREE char *root = fixture("sysroot-sriov-i40e");
    ag_config_set(&base, "root_prefix", root);
    assert_int_equal(ag_fleet_member_config(&base, 3, "http://127.0.0.1:9", &m, err, sizeof(err)),
                     0);
    assert_string_equal(m.root_prefix, root); /* the same NICs for every member */
    assert_string_equal(m.sriov_netlink, "off");
    ag_config_free(&m);
    ag_config_set(&base, "root_prefix", ""); /* even on the real /sys */
    assert_int_equal(ag_fleet_member_config(&base, 3, "http://127.0.0.1:9", &m, err, sizeof(err)),
                     0);
    assert_int_equal(ag_config_sriov_netlink(&m), 0);
    ag_config_free(&m);
    ag_config_set(&base, "sriov_netlink", "on");
    assert_int_equal(ag_fleet_member_config(&base, 3, "http://127.0.0.1:9", &m, err, sizeof(err)),
                     0);
    assert_string_equal(m.sriov_netlink, "on");
    ag_config_free(&m);
    ag_config_free(&base);
}

/* ---- heartbeats: nics in full ones only ---- */

#define CREDENTIAL "cred_sriov_test_0123456789abcdefghijklmnopq"

struct ccc {
    struct MHD_Daemon *mhd;
    int port;
    pthread_mutex_t lock;
    json_t *heartbeats; /* bodies */
    int resync;         /* answer resync:true to this many heartbeats */
    json_t *enroll;     /* the enrollment body */
};

struct upload {
    char *data;
    size_t len;
};

static enum MHD_Result ccc_request(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *data,
                                   size_t *size, void **con_cls)
{
    (void)method;
    (void)version;
    struct ccc *x = cls;
    struct upload *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof(*u));
        return MHD_YES;
    }
    if (*size) {
        u->data = realloc(u->data, u->len + *size + 1);
        memcpy(u->data + u->len, data, *size);
        u->len += *size;
        u->data[u->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    json_t *body = u->data ? json_loads(u->data, 0, NULL) : NULL;
    char answer[256] = "{}";
    unsigned status = 200;
    pthread_mutex_lock(&x->lock);
    if (!strcmp(url, "/api/v1/agent/enroll")) {
        json_decref(x->enroll);
        x->enroll = json_incref(body);
        /* any 32 bytes as CCC's key: no task is signed here */
        snprintf(answer, sizeof(answer),
                 "{\"server_id\":5,\"credential\":\"%s\",\"ccc_public_key\":"
                 "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\",\"heartbeat_interval\":1}",
                 CREDENTIAL);
    } else if (!strcmp(url, "/api/v1/agent/heartbeat")) {
        json_array_append(x->heartbeats, body);
        snprintf(answer, sizeof(answer), "{\"interval\":1,\"resync\":%s}",
                 x->resync > 0 && json_array_size(x->heartbeats) == 3 ? "true" : "false");
    } else {
        status = 204;
        *answer = '\0';
    }
    pthread_mutex_unlock(&x->lock);
    json_decref(body);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(answer), answer, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void ccc_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct upload *u = *con_cls;
    if (u) free(u->data);
    free(u);
    *con_cls = NULL;
}

static void no_wake(void *arg)
{
    (void)arg;
}

static size_t heartbeats(struct ccc *x)
{
    pthread_mutex_lock(&x->lock);
    size_t n = json_array_size(x->heartbeats);
    pthread_mutex_unlock(&x->lock);
    return n;
}

static void full_heartbeats_carry_the_nics_and_deltas_do_not(void **state)
{
    (void)state;
    struct ccc x = {.heartbeats = json_array(), .resync = 1};
    pthread_mutex_init(&x.lock, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    x.mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
                             ccc_request, &x, MHD_OPTION_NOTIFY_COMPLETED, ccc_completed, NULL,
                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    assert_non_null(x.mhd);
    x.port = MHD_get_daemon_info(x.mhd, MHD_DAEMON_INFO_BIND_PORT)->port;

    /* a copy of the i40e tree, with sriov_numvfs asking for 3 VFs on ens1f1 at start */
    char *root = tree_copy("sysroot-sriov-i40e");
    char state_dir[4200], url[64], err[512];
    snprintf(state_dir, sizeof(state_dir), "%s/state", root);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", x.port);
    ag_config cfg;
    assert_int_equal(ag_config_load(&cfg, NULL, err, sizeof(err)), 0);
    ag_config_set(&cfg, "ccc_url", url);
    ag_config_set(&cfg, "token", "bbt_sriov_test_token");
    ag_config_set(&cfg, "state_dir", state_dir);
    ag_config_set(&cfg, "listen", "127.0.0.1:0");
    ag_config_set(&cfg, "libvirt_uri", "test:///default");
    ag_config_set(&cfg, "machine_id", "0123456789abcdef0123456789abcdef");
    ag_config_set(&cfg, "hostname", "bs-sriov");
    ag_config_set(&cfg, "root_prefix", root);
    ag_config_set(&cfg, "sriov_numvfs", "ens1f1=3");
    cfg.heartbeat_interval = 1;
    if (ag_config_resolve(&cfg, err, sizeof(err)) < 0) test_fail("config: %s", err);
    ag_agent_opts opts = {.listen_url = "http://127.0.0.1:7443", .wake = no_wake};
    ag_agent *a = ag_agent_new(&cfg, &opts, err, sizeof(err));
    if (!a) test_fail("ag_agent_new: %s", err);
    AG_AUTOFREE char *nv = tree_read(root, I40E_PF1 "/sriov_numvfs");
    assert_string_equal(nv, "3\n"); /* set at start, before enrollment */

    ag_http *h = ag_http_new(url, "", NULL);
    long long until = ag_mono_ms() + 15000;
    while (heartbeats(&x) < 5 && ag_mono_ms() < until) {
        long long now = ag_mono_ms();
        long long next = ag_agent_step(a, h, now);
        long long wait = next - ag_mono_ms();
        if (wait > 100) wait = 100;
        if (wait > 0) usleep((useconds_t)wait * 1000);
    }
    ag_http_free(h);
    ag_agent_free(a);
    MHD_stop_daemon(x.mhd);

    if (json_array_size(x.heartbeats) < 5)
        test_fail("only %zu heartbeats in 15 s", json_array_size(x.heartbeats));
    /* what discovery shows after the start: ens1f1 with sriov_num_vfs 3 */
    json_t *want = ag_sriov_collect(root);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(want, 2), "sriov_num_vfs")),
                     3);
    expect_json_equal(json_object_get(json_object_get(x.enroll, "facts"), "nics"), want,
                      "enrollment facts.nics");
    /* 1: full (the first); 2, 3: deltas; 3 was answered resync, so 4 is full; 5: delta */
    const int full[] = {1, 0, 0, 1, 0};
    for (size_t i = 0; i < 5; i++) {
        json_t *hb = json_array_get(x.heartbeats, i);
        assert_int_equal(json_is_true(json_object_get(hb, "full")), full[i]);
        if (full[i])
            expect_json_equal(json_object_get(hb, "nics"), want, "nics of a full heartbeat");
        else if (json_object_get(hb, "nics"))
            test_fail("delta heartbeat %zu carries nics", i + 1);
    }
    json_decref(want);
    json_decref(x.heartbeats);
    json_decref(x.enroll);
    pthread_mutex_destroy(&x.lock);
    ag_config_free(&cfg);
    tree_remove(root);
}

int main(void)
{
    ag_log_set_level(AG_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ixgbe_tree_gives_the_expected_json),
        cmocka_unit_test(i40e_tree_gives_the_expected_json),
        cmocka_unit_test(discovery_structs_follow_the_kernel_layout),
        cmocka_unit_test(vfs_are_ordered_by_index_not_by_name),
        cmocka_unit_test(a_missing_tree_has_no_nics),
        cmocka_unit_test(vf_check_compares_with_discovery),
        cmocka_unit_test(numvfs_writes_zero_then_the_count),
        cmocka_unit_test(numvfs_refuses_what_is_not_an_sriov_pf_here),
        cmocka_unit_test(numvfs_never_follows_a_link_at_the_attribute),
        cmocka_unit_test(apply_numvfs_sets_each_pf_and_counts_failures),
        cmocka_unit_test(numvfs_spec_parsing),
        cmocka_unit_test(mac_parsing_wants_a_unicast_address),
        cmocka_unit_test(vf_request_carries_index_mac_and_vlan),
        cmocka_unit_test(vf_request_refuses_bad_values),
        cmocka_unit_test(the_kernel_refuses_vf_settings_on_an_interface_without_vfs),
        cmocka_unit_test_setup_teardown(vf_desktop_xml_is_valid_and_libvirt_takes_it, prov_setup,
                                        prov_teardown),
        cmocka_unit_test_setup_teardown(virtio_xml_on_a_bridge_has_the_mac_and_no_vlan, prov_setup,
                                        prov_teardown),
        cmocka_unit_test_setup_teardown(desktop_create_with_a_vf_reports_the_nic, prov_setup,
                                        prov_teardown),
        cmocka_unit_test_setup_teardown(desktop_create_refuses_a_vf_that_is_not_on_the_server,
                                        prov_setup, prov_teardown),
        cmocka_unit_test_setup_teardown(nic_params_are_checked_strictly, prov_setup, prov_teardown),
        cmocka_unit_test(fleet_members_never_program_the_hosts_vfs_unless_told),
        cmocka_unit_test(full_heartbeats_carry_the_nics_and_deltas_do_not),
    };
    return cmocka_run_group_tests_name("agent_sriov", tests, NULL, NULL);
}

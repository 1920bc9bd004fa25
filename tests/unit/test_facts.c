/*
 * test_facts.c - agent/facts.c: host facts read from fixture sysfs/proc trees.
 *
 * tests/fixtures/sysroot-2socket: 2 sockets x 4 cores x 2 threads (cpu0..15)
 *   plus an offline cpu16; 257658 MiB; NICs enp59s0f0 (ixgbe, 10G, 63 VFs) and
 *   eno1 (tg3, 1G, no SR-IOV) under /sys/devices/pci*, and the virtual lo,
 *   br0 and VLAN enp59s0f0.100 plus the bonding_masters file in /sys/class/net.
 * tests/fixtures/sysroot-tiny: a 2-vCPU VM, 1982 MiB, one virtio NIC ens3
 *   whose speed is unknown (-1), and lo.
 * The sysroot-sriov-* trees (NICs with VFs) are compared in full by test_agent_sriov.c.
 * Links are relative, as in the kernel's sysfs, so the trees work from any checkout.
 */
#include "bic_test.h"

#include <unistd.h>

#include "facts.h"

static json_t *collect(const char *fixture)
{
    char root[4096];
    test_fixture(root, sizeof(root), fixture);
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/proc/meminfo", root);
    if (access(probe, R_OK) != 0) test_fail("fixture %s is missing (BIC_REPO?)", probe);
    json_t *f = facts_collect(root);
    assert_non_null(f);
    assert_true(json_is_object(f));
    return f;
}

static long long int_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) test_fail("'%s' is not an integer", key);
    return json_integer_value(v);
}

static const json_t *nic_named(const json_t *facts, const char *name)
{
    const json_t *nics = json_object_get(facts, "nics");
    size_t i;
    const json_t *n;
    json_array_foreach(nics, i, n)
    {
        if (!strcmp(json_string_value(json_object_get(n, "name")), name)) return n;
    }
    return NULL;
}

struct nic_want {
    const char *name, *pci, *driver, *vendor, *device, *mac;
    long long speed;
    const char *link;
    bool sriov;
    long long total_vfs, num_vfs;
};

static const char *str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s) test_fail("'%s' is not a string", key);
    return s;
}

/* The NIC has exactly the keys of the contract (docs/agent-protocol.md) with these values. */
static void expect_nic(const json_t *facts, const struct nic_want *w)
{
    const json_t *n = nic_named(facts, w->name);
    if (!n) test_fail("NIC %s not reported", w->name);
    assert_int_equal(json_object_size(n), 12);
    assert_string_equal(str_of(n, "pci"), w->pci);
    assert_string_equal(str_of(n, "driver"), w->driver);
    assert_string_equal(str_of(n, "vendor"), w->vendor);
    assert_string_equal(str_of(n, "device"), w->device);
    assert_string_equal(str_of(n, "mac"), w->mac);
    assert_int_equal(int_of(n, "speed_mbps"), w->speed);
    assert_string_equal(str_of(n, "link"), w->link);
    assert_true(json_is_boolean(json_object_get(n, "sriov_capable")));
    assert_int_equal(json_is_true(json_object_get(n, "sriov_capable")), w->sriov);
    assert_int_equal(int_of(n, "sriov_total_vfs"), w->total_vfs);
    assert_int_equal(int_of(n, "sriov_num_vfs"), w->num_vfs);
    /* these trees have no VFs enabled: sysroot-sriov-* (test_agent_sriov.c) have */
    assert_true(json_is_array(json_object_get(n, "vfs")));
    assert_int_equal(json_array_size(json_object_get(n, "vfs")), 0);
}

static void result_has_exactly_the_documented_keys(void **state)
{
    (void)state;
    json_t *f = collect("sysroot-2socket");
    assert_int_equal(json_object_size(f), 4);
    assert_true(json_is_integer(json_object_get(f, "cpus")));
    assert_true(json_is_integer(json_object_get(f, "cores")));
    assert_true(json_is_integer(json_object_get(f, "memory_mib")));
    assert_true(json_is_array(json_object_get(f, "nics")));
    json_decref(f);
}

static void two_socket_host_counts_online_logical_cpus(void **state)
{
    (void)state;
    json_t *f = collect("sysroot-2socket");
    /* cpu0..cpu15 are online (cpu0 has no online file, as on x86); cpu16 is offline */
    assert_int_equal(int_of(f, "cpus"), 16);
    json_decref(f);
}

static void two_socket_host_counts_cores_per_package(void **state)
{
    (void)state;
    json_t *f = collect("sysroot-2socket");
    /* core ids 0..3 repeat in each package: 2 x 4 = 8 cores, not 4, not 16 */
    assert_int_equal(int_of(f, "cores"), 8);
    json_decref(f);
}

static void two_socket_host_reports_memtotal_in_mib(void **state)
{
    (void)state;
    json_t *f = collect("sysroot-2socket");
    assert_int_equal(int_of(f, "memory_mib"), 263842580LL / 1024); /* 257658 */
    json_decref(f);
}

static void two_socket_host_lists_both_physical_nics(void **state)
{
    (void)state;
    json_t *f = collect("sysroot-2socket");
    assert_int_equal(json_array_size(json_object_get(f, "nics")), 2);
    /* no carrier file and operstate "up": the link is "unknown" (carrier decides) */
    const struct nic_want ixgbe = {
        "enp59s0f0", "0000:3b:00.0", "ixgbe", "0x8086", "0x10fb", "90:e2:ba:12:34:56",
        10000,       "unknown",      true,    63,       0};
    const struct nic_want tg3 = {
        "eno1", "0000:5e:00.0", "tg3", "0x14e4", "0x165f", "d0:94:66:aa:bb:cc",
        1000,   "unknown",      false, 0,        0};
    expect_nic(f, &ixgbe);
    expect_nic(f, &tg3);
    /* ordered by name */
    assert_string_equal(str_of(json_array_get(json_object_get(f, "nics"), 0), "name"), "eno1");
    json_decref(f);
}

static void virtual_interfaces_are_excluded(void **state)
{
    (void)state;
    json_t *f = collect("sysroot-2socket");
    const char *virt[] = {"lo", "br0", "enp59s0f0.100", "bonding_masters"};
    for (size_t i = 0; i < sizeof(virt) / sizeof(virt[0]); i++)
        if (nic_named(f, virt[i])) test_fail("virtual interface %s was reported", virt[i]);
    json_decref(f);
}

static void tiny_vm_has_two_cpus_and_two_cores(void **state)
{
    (void)state;
    json_t *f = collect("sysroot-tiny");
    assert_int_equal(int_of(f, "cpus"), 2);
    assert_int_equal(int_of(f, "cores"), 2);
    assert_int_equal(int_of(f, "memory_mib"), 2030420LL / 1024); /* 1982 */
    json_decref(f);
}

static void tiny_vm_lists_its_one_nic_without_sriov(void **state)
{
    (void)state;
    json_t *f = collect("sysroot-tiny");
    assert_int_equal(json_array_size(json_object_get(f, "nics")), 1);
    /*
     * virtio reports speed -1 (unknown): shown as 0; the driver is the virtio one; the device
     * (virtio0) is not PCI, its parent 0000:00:03.0 is; virtio0 has no vendor/device files
     */
    const struct nic_want virtio = {
        "ens3", "0000:00:03.0", "virtio_net", "", "", "52:54:00:12:34:56",
        0,      "unknown",      false,        0,  0};
    expect_nic(f, &virtio);
    assert_null(nic_named(f, "lo"));
    json_decref(f);
}

static void trailing_slash_on_the_root_changes_nothing(void **state)
{
    (void)state;
    char root[4096];
    test_fixture(root, sizeof(root), "sysroot-2socket/");
    json_t *a = facts_collect(root);
    json_t *b = collect("sysroot-2socket");
    assert_non_null(a);
    assert_int_equal(int_of(a, "cpus"), int_of(b, "cpus"));
    assert_int_equal(int_of(a, "cores"), int_of(b, "cores"));
    assert_int_equal(int_of(a, "memory_mib"), int_of(b, "memory_mib"));
    assert_int_equal(json_array_size(json_object_get(a, "nics")),
                     json_array_size(json_object_get(b, "nics")));
    json_decref(a);
    json_decref(b);
}

static void missing_root_gives_zeros_and_no_nics(void **state)
{
    (void)state;
    json_t *f = facts_collect("/nonexistent/bic-test-root");
    assert_non_null(f);
    assert_int_equal(int_of(f, "cpus"), 0);
    assert_int_equal(int_of(f, "cores"), 0);
    assert_int_equal(int_of(f, "memory_mib"), 0);
    assert_true(json_is_array(json_object_get(f, "nics")));
    assert_int_equal(json_array_size(json_object_get(f, "nics")), 0);
    json_decref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(result_has_exactly_the_documented_keys),
        cmocka_unit_test(two_socket_host_counts_online_logical_cpus),
        cmocka_unit_test(two_socket_host_counts_cores_per_package),
        cmocka_unit_test(two_socket_host_reports_memtotal_in_mib),
        cmocka_unit_test(two_socket_host_lists_both_physical_nics),
        cmocka_unit_test(virtual_interfaces_are_excluded),
        cmocka_unit_test(tiny_vm_has_two_cpus_and_two_cores),
        cmocka_unit_test(tiny_vm_lists_its_one_nic_without_sriov),
        cmocka_unit_test(trailing_slash_on_the_root_changes_nothing),
        cmocka_unit_test(missing_root_gives_zeros_and_no_nics),
    };
    return cmocka_run_group_tests_name("facts", tests, NULL, NULL);
}

/*
 * test_agent_hoststats.c - agent/ag_hoststats.c: host CPU, memory and network
 * load from fixture /proc trees (tests/fixtures/agent-proc-*, described in
 * agent-proc-t0/README.md): two samples of one host taken 10 s apart.
 */
#include "bic_test.h"

#include <unistd.h>

#include "ag_hoststats.h"

static void sample(const char *fixture, long long at_ms, ag_host_sample *s, int expect_rc)
{
    char root[4096];
    test_fixture(root, sizeof(root), fixture);
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/proc/stat", root);
    if (access(probe, R_OK) != 0) test_fail("fixture %s is missing (BIC_REPO?)", probe);
    assert_int_equal(ag_host_sample_read(root, at_ms, s), expect_rc);
}

static void cpu_busy_share_between_two_samples(void **state)
{
    (void)state;
    ag_host_sample a, b;
    ag_host_stats st;
    sample("agent-proc-t0", 0, &a, 0);
    sample("agent-proc-t1", 10000, &b, 0);
    ag_host_stats_compute(&a, &b, &st);
    /* 2000 jiffies passed, 800 of them idle or iowait */
    assert_float_equal(st.cpu_pct, 60.0, 0.001);
}

static void first_sample_reports_cpu_since_boot_and_no_network_rate(void **state)
{
    (void)state;
    ag_host_sample a;
    ag_host_stats st;
    sample("agent-proc-t0", 0, &a, 0);
    ag_host_stats_compute(NULL, &a, &st);
    assert_float_equal(st.cpu_pct, 15.0, 0.001);
    assert_int_equal(st.net_rx_bps, 0);
    assert_int_equal(st.net_tx_bps, 0);
}

static void memory_used_is_total_minus_available(void **state)
{
    (void)state;
    ag_host_sample b;
    ag_host_stats st;
    sample("agent-proc-t1", 0, &b, 0);
    ag_host_stats_compute(NULL, &b, &st);
    assert_int_equal(st.mem_total_mib, 16000);
    assert_int_equal(st.mem_used_mib, 4000);
}

static void memory_without_memavailable_uses_free_buffers_cached(void **state)
{
    (void)state;
    ag_host_sample a;
    ag_host_stats st;
    sample("agent-proc-t0", 0, &a, 0);
    ag_host_stats_compute(NULL, &a, &st);
    assert_int_equal(st.mem_total_mib, 16000);
    assert_int_equal(st.mem_used_mib, 5000);
}

static void network_rate_counts_physical_nics_only_in_bits(void **state)
{
    (void)state;
    ag_host_sample a, b;
    ag_host_stats st;
    sample("agent-proc-t0", 0, &a, 0);
    sample("agent-proc-t1", 10000, &b, 0);
    /* eno1 + enp2s0 only: not lo, virbr0, vnet0 or the VLAN eno1.100 */
    assert_int_equal(a.rx_bytes, 1500000);
    assert_int_equal(a.tx_bytes, 2000000);
    assert_int_equal(b.rx_bytes, 14000000);
    ag_host_stats_compute(&a, &b, &st);
    assert_int_equal(st.net_rx_bps, 10000000);
    assert_int_equal(st.net_tx_bps, 1000000);
}

static void network_rate_scales_with_the_time_between_samples(void **state)
{
    (void)state;
    ag_host_sample a, b;
    ag_host_stats st;
    sample("agent-proc-t0", 1000, &a, 0);
    sample("agent-proc-t1", 21000, &b, 0); /* 20 s */
    ag_host_stats_compute(&a, &b, &st);
    assert_int_equal(st.net_rx_bps, 5000000);
    assert_int_equal(st.net_tx_bps, 500000);
}

static void counters_going_backwards_give_zero_not_garbage(void **state)
{
    (void)state;
    ag_host_sample a, b;
    ag_host_stats st;
    sample("agent-proc-t1", 0, &a, 0);
    sample("agent-proc-t0", 10000, &b, 0); /* as after a reboot or a counter wrap */
    ag_host_stats_compute(&a, &b, &st);
    assert_int_equal(st.net_rx_bps, 0);
    assert_int_equal(st.net_tx_bps, 0);
    assert_true(st.cpu_pct >= 0.0 && st.cpu_pct <= 100.0);
}

static void without_sys_every_interface_but_lo_counts(void **state)
{
    (void)state;
    ag_host_sample s;
    sample("agent-proc-nosys", 0, &s, 0);
    assert_int_equal(s.rx_bytes, 1300);
    assert_int_equal(s.tx_bytes, 2400);
}

static void missing_root_is_reported_and_gives_zeros(void **state)
{
    (void)state;
    ag_host_sample s;
    ag_host_stats st;
    assert_int_equal(ag_host_sample_read("/nonexistent/bic-test-root", 0, &s), -1);
    assert_false(s.have_cpu || s.have_mem || s.have_net);
    ag_host_stats_compute(NULL, &s, &st);
    assert_float_equal(st.cpu_pct, 0.0, 0.0001);
    assert_int_equal(st.mem_total_mib, 0);
}

static void json_has_exactly_the_protocol_keys(void **state)
{
    (void)state;
    ag_host_stats st = {12.5, 515000, 120000, 1200000, 800000};
    json_t *j = ag_host_stats_json(&st);
    assert_int_equal(json_object_size(j), 5);
    assert_float_equal(json_real_value(json_object_get(j, "cpu_pct")), 12.5, 0.0001);
    assert_int_equal(json_integer_value(json_object_get(j, "mem_total_mib")), 515000);
    assert_int_equal(json_integer_value(json_object_get(j, "mem_used_mib")), 120000);
    assert_int_equal(json_integer_value(json_object_get(j, "net_rx_bps")), 1200000);
    assert_int_equal(json_integer_value(json_object_get(j, "net_tx_bps")), 800000);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cpu_busy_share_between_two_samples),
        cmocka_unit_test(first_sample_reports_cpu_since_boot_and_no_network_rate),
        cmocka_unit_test(memory_used_is_total_minus_available),
        cmocka_unit_test(memory_without_memavailable_uses_free_buffers_cached),
        cmocka_unit_test(network_rate_counts_physical_nics_only_in_bits),
        cmocka_unit_test(network_rate_scales_with_the_time_between_samples),
        cmocka_unit_test(counters_going_backwards_give_zero_not_garbage),
        cmocka_unit_test(without_sys_every_interface_but_lo_counts),
        cmocka_unit_test(missing_root_is_reported_and_gives_zeros),
        cmocka_unit_test(json_has_exactly_the_protocol_keys),
    };
    return cmocka_run_group_tests_name("agent_hoststats", tests, NULL, NULL);
}

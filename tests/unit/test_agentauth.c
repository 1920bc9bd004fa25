/*
 * test_agentauth.c - the management-network check behind /metrics (fcgi/agentauth.c).
 */
#include "bic_test.h"

#include "agentauth.h"

static void addresses_inside_and_outside_networks(void **state)
{
    (void)state;
    const char *nets = "10.0.0.0/8, 192.168.1.0/24,::1/128";
    assert_true(cidr_list_contains(nets, "10.200.3.4"));
    assert_true(cidr_list_contains(nets, "192.168.1.77"));
    assert_false(cidr_list_contains(nets, "192.168.2.1"));
    assert_true(cidr_list_contains(nets, "::1"));
    assert_false(cidr_list_contains(nets, "::2"));
    assert_false(cidr_list_contains(nets, "11.0.0.1"));
    assert_true(cidr_list_contains("203.0.113.7", "203.0.113.7")); /* a bare address is a /32 */
    assert_false(cidr_list_contains("203.0.113.7", "203.0.113.8"));
    assert_true(cidr_list_contains("172.16.0.0/12", "172.31.255.255"));
    assert_false(cidr_list_contains("172.16.0.0/12", "172.32.0.0"));
}

static void malformed_networks_match_nothing(void **state)
{
    (void)state;
    const char *bad[] = {"10.0.0.0/", "10.0.0.0/abc", "10.0.0.0/33", "10.0.0.0/-1",
                         "nonsense",  "10.0.0.0/8x",  "::/129",      ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cidr_list_contains(bad[i], "203.0.113.7")) test_fail("'%s' let everyone in", bad[i]);
    assert_false(cidr_list_contains(NULL, "10.0.0.1"));
    assert_false(cidr_list_contains("10.0.0.0/8", NULL));
    assert_false(cidr_list_contains("10.0.0.0/8", "not-an-address"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(addresses_inside_and_outside_networks),
        cmocka_unit_test(malformed_networks_match_nothing),
    };
    return cmocka_run_group_tests_name("agentauth", tests, NULL, NULL);
}

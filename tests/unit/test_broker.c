/*
 * test_broker.c - fcgi/broker.c's pure parts: the CIDR check of allowed_networks and the VNC
 * passwords a connect hands out.
 */
#include "bic_test.h"

#include <ctype.h>

#include "broker.h"

static void cidr_check_accepts_networks_and_addresses_only(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } rows[] = {
        {"10.0.0.0/8", true},     {"127.0.0.1", true},       {"0.0.0.0/0", true},
        {"192.168.1.0/24", true}, {"fd00::/8", true},        {"::1", true},
        {"::/0", true},           {"2001:db8::/128", true},  {"10.0.0.0/33", false},
        {"fd00::/129", false},    {"10.0.0.0/", false},      {"10.0.0.0/-1", false},
        {"10.0.0.0/+8", false},   {"10.0.0.0/8x", false},    {"not-a-net", false},
        {"", false},              {"10.0.0/8", false},       {"1.2.3.4 ", false},
        {"300.0.0.0/8", false},   {"10.0.0.0/8/8", false},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (broker_cidr_valid(rows[i].s) != rows[i].ok)
            test_fail("'%s': got %d, want %d", rows[i].s, !rows[i].ok, rows[i].ok);
}

static void vnc_passwords_are_8_alphanumerics_and_differ(void **state)
{
    (void)state;
    char seen[64][9];
    for (int i = 0; i < 64; i++) {
        assert_int_equal(broker_vnc_password(seen[i]), 0);
        assert_int_equal(strlen(seen[i]), 8);
        for (int k = 0; k < 8; k++)
            if (!isalnum((unsigned char)seen[i][k])) test_fail("'%s' has a symbol", seen[i]);
        for (int j = 0; j < i; j++)
            if (!strcmp(seen[i], seen[j])) test_fail("password %d repeats %d: %s", i, j, seen[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cidr_check_accepts_networks_and_addresses_only),
        cmocka_unit_test(vnc_passwords_are_8_alphanumerics_and_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

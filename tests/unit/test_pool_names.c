/*
 * test_pool_names.c - fcgi/h_pools.c pools_format_name(): desktop names from a pool's pattern.
 */
#include "bic_test.h"

#include "pools.h"

static void formats_the_number_with_and_without_width(void **state)
{
    (void)state;
    static const struct {
        const char *pattern;
        long long n;
        const char *want; /* NULL: refused */
    } rows[] = {
        {"sales-{n:3}", 7, "sales-007"},
        {"sales-{n:3}", 1234, "sales-1234"},
        {"{n}-lab", 42, "42-lab"},
        {"pc{n:6}", 1, "pc000001"},
        {"a-{n}-b", 10, "a-10-b"},
        {"sales", 1, NULL},            /* no number */
        {"a{n}b{n}", 1, NULL},         /* two numbers */
        {"a-{n:0}", 1, NULL},          /* width 1..6 */
        {"a-{n:7}", 1, NULL},
        {"a-{n:33}", 1, NULL},
        {"a-{n", 1, NULL},             /* unclosed */
        {"a_{n}", 1, NULL},            /* not a host name character */
        {"-{n}", 1, NULL},             /* starts with '-' */
        {"{n}-", 1, NULL},             /* ends with '-' */
        {"x{n:2}ü", 1, NULL},          /* not ASCII */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa{n}", 1, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa{n}", 10, NULL}, /* 64 > 63 */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char out[128] = "";
        bool ok = pools_format_name(rows[i].pattern, rows[i].n, out, sizeof(out));
        if (ok != (rows[i].want != NULL))
            test_fail("%s with %lld: %s", rows[i].pattern, rows[i].n, ok ? out : "refused");
        if (ok && strcmp(out, rows[i].want))
            test_fail("%s with %lld: got %s, want %s", rows[i].pattern, rows[i].n, out, rows[i].want);
    }
}

static void a_short_buffer_is_refused_not_overrun(void **state)
{
    (void)state;
    char out[6];
    assert_false(pools_format_name("sales-{n:3}", 1, out, sizeof(out)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formats_the_number_with_and_without_width),
        cmocka_unit_test(a_short_buffer_is_refused_not_overrun),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

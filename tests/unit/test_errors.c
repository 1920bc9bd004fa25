/*
 * test_errors.c - fcgi/errors.c: the one error table (status, wire name, message).
 */
#include "bic_test.h"

#include <ctype.h>

#include "errors.h"

static void every_code_has_a_status_between_200_and_599(void **state)
{
    (void)state;
    for (int e = 0; e < BIC_E__MAX; e++) {
        int s = bic_err_status((bic_err)e);
        assert_in_range(s, 200, 599);
    }
}

static void only_ok_has_a_success_status(void **state)
{
    (void)state;
    assert_int_equal(bic_err_status(BIC_E_OK), 200);
    for (int e = 1; e < BIC_E__MAX; e++)
        assert_in_range(bic_err_status((bic_err)e), 400, 599);
}

static void every_code_has_a_distinct_snake_case_wire_name(void **state)
{
    (void)state;
    for (int e = 0; e < BIC_E__MAX; e++) {
        const char *n = bic_err_name((bic_err)e);
        assert_non_null(n);
        assert_true(strlen(n) > 0);
        for (const char *p = n; *p; p++)
            assert_true(islower((unsigned char)*p) || *p == '_');
        for (int f = 0; f < e; f++) {
            if (!strcmp(n, bic_err_name((bic_err)f)))
                test_fail("codes %d and %d share the wire name '%s'", f, e, n);
        }
    }
}

static void every_code_has_a_non_empty_message(void **state)
{
    (void)state;
    for (int e = 0; e < BIC_E__MAX; e++) {
        const char *m = bic_err_message((bic_err)e);
        assert_non_null(m);
        assert_true(strlen(m) > 0);
    }
}

static void table_rows_match_the_declaration(void **state)
{
    (void)state;
#define CHECK_ROW(name, status, wire, msg)                                                         \
    assert_int_equal(bic_err_status(BIC_E_##name), status);                                        \
    assert_string_equal(bic_err_name(BIC_E_##name), wire);                                         \
    assert_string_equal(bic_err_message(BIC_E_##name), msg);
    BIC_ERRORS(CHECK_ROW)
#undef CHECK_ROW
}

static void well_known_codes_have_the_expected_status(void **state)
{
    (void)state;
    assert_int_equal(bic_err_status(BIC_E_NOT_FOUND), 404);
    assert_string_equal(bic_err_name(BIC_E_NOT_FOUND), "not_found");
    assert_int_equal(bic_err_status(BIC_E_METHOD_NOT_ALLOWED), 405);
    assert_int_equal(bic_err_status(BIC_E_TOO_LARGE), 413);
    assert_int_equal(bic_err_status(BIC_E_VALIDATION), 422);
    assert_int_equal(bic_err_status(BIC_E_INTERNAL), 500);
    assert_int_equal(bic_err_status(BIC_E_DB_UNAVAILABLE), 503);
}

static void out_of_range_codes_map_to_internal(void **state)
{
    (void)state;
    const bic_err bad[] = {BIC_E__MAX, (bic_err)(BIC_E__MAX + 1), (bic_err)1000, (bic_err)-1};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(bic_err_status(bad[i]), 500);
        assert_string_equal(bic_err_name(bad[i]), "internal");
        assert_non_null(bic_err_message(bad[i]));
        assert_true(strlen(bic_err_message(bad[i])) > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_has_a_status_between_200_and_599),
        cmocka_unit_test(only_ok_has_a_success_status),
        cmocka_unit_test(every_code_has_a_distinct_snake_case_wire_name),
        cmocka_unit_test(every_code_has_a_non_empty_message),
        cmocka_unit_test(table_rows_match_the_declaration),
        cmocka_unit_test(well_known_codes_have_the_expected_status),
        cmocka_unit_test(out_of_range_codes_map_to_internal),
    };
    return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}

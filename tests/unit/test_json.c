/*
 * test_json.c - fcgi/json.c: strict request bodies checked against a field table.
 */
#include "bic_test.h"

#include "json.h"

static const char *const colours[] = {"red", "green", NULL};

/* A table exercising every field type and option. */
static const bic_field fields[] = {
    {.name = "name", .type = F_STR, .required = true, .min = 1, .max = 8},
    {.name = "count", .type = F_INT, .min = 1, .max = 10},
    {.name = "enabled", .type = F_BOOL},
    {.name = "colour", .type = F_STR, .max = 16, .choices = colours},
    {.name = "note", .type = F_STR, .max = 20, .nullable = true},
    {.name = "tags", .type = F_STR_ARRAY, .min = 0, .max = 3},
    {.name = "ids", .type = F_INT_ARRAY, .min = 1, .max = 2},
    {.name = "free", .type = F_STR}, /* max 0: no upper bound */
    {.name = NULL},
};

static char msg[256];

/* Parses s against the table; stores the object in *out when not NULL. */
static bic_err parse(const char *s, json_t **out)
{
    json_t *o = NULL;
    msg[0] = '\0';
    bic_err e = json_body_parse(s, strlen(s), fields, &o, msg, sizeof(msg));
    if (e != BIC_E_OK) assert_null(o);
    if (out)
        *out = o;
    else
        json_decref(o);
    return e;
}

/* Asserts that s is rejected with code and that the message mentions word. */
static void expect_reject(const char *s, bic_err code, const char *word)
{
    bic_err e = parse(s, NULL);
    if (e != code)
        test_fail("%s: got %s, want %s (%s)", s, bic_err_name(e), bic_err_name(code), msg);
    if (word && !test_contains(msg, word)) test_fail("%s: message '%s' lacks '%s'", s, msg, word);
}

static void expect_accept(const char *s)
{
    bic_err e = parse(s, NULL);
    if (e != BIC_E_OK) test_fail("%s: rejected with %s: %s", s, bic_err_name(e), msg);
}

static void valid_object_is_accepted_and_returned(void **state)
{
    (void)state;
    json_t *o = NULL;
    bic_err e = parse("{\"name\":\"ann\",\"count\":3,\"enabled\":true,\"colour\":\"green\","
                      "\"note\":\"hi\",\"tags\":[\"a\",\"b\"],\"ids\":[7]}",
                      &o);
    assert_int_equal(e, BIC_E_OK);
    assert_non_null(o);
    assert_true(json_is_object(o));
    assert_string_equal(json_get_str(o, "name", NULL), "ann");
    assert_int_equal(json_get_int(o, "count", 0), 3);
    assert_true(json_get_bool(o, "enabled", false));
    assert_int_equal(json_array_size(json_object_get(o, "tags")), 2);
    json_decref(o);
}

static void minimal_object_with_only_required_fields_is_accepted(void **state)
{
    (void)state;
    expect_accept("{\"name\":\"a\"}");
    expect_accept("  {\"name\" : \"a\"}\n");
}

static void invalid_json_is_bad_json(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "{",
                         "{\"name\":}",
                         "{'name':'a'}",
                         "{\"name\":\"a\",}",
                         "{\"name\":\"a\"} {}",
                         "{\"name\":\"a\"}x",
                         "nul"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_reject(bad[i], BIC_E_BAD_JSON, NULL);
        assert_true(strlen(msg) > 0);
    }
}

static void only_len_bytes_of_the_body_are_parsed(void **state)
{
    (void)state;
    const char body[] = "{\"name\":\"a\"}GARBAGE";
    json_t *o = NULL;
    bic_err e = json_body_parse(body, strlen("{\"name\":\"a\"}"), fields, &o, msg, sizeof(msg));
    assert_int_equal(e, BIC_E_OK);
    json_decref(o);
    e = json_body_parse(body, sizeof(body) - 1, fields, &o, msg, sizeof(msg));
    assert_int_equal(e, BIC_E_BAD_JSON);
    assert_null(o);
}

static void non_object_body_is_bad_json(void **state)
{
    (void)state;
    const char *bad[] = {"[]", "[{\"name\":\"a\"}]", "\"name\"", "42", "true", "null"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_reject(bad[i], BIC_E_BAD_JSON, NULL);
    expect_reject("[1]", BIC_E_BAD_JSON, "object");
}

static void duplicate_keys_are_rejected(void **state)
{
    (void)state;
    expect_reject("{\"name\":\"a\",\"name\":\"b\"}", BIC_E_BAD_JSON, NULL);
    expect_reject("{\"name\":\"a\",\"count\":1,\"count\":2}", BIC_E_BAD_JSON, NULL);
}

static void unknown_key_is_a_validation_error_naming_it(void **state)
{
    (void)state;
    expect_reject("{\"name\":\"a\",\"colur\":\"red\"}", BIC_E_VALIDATION, "'colur'");
    expect_reject("{\"NAME\":\"a\"}", BIC_E_VALIDATION, "'NAME'"); /* keys are case-sensitive */
}

static void unknown_key_name_in_message_is_bounded(void **state)
{
    (void)state;
    char body[600], key[400];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    snprintf(body, sizeof(body), "{\"%s\":1}", key);
    expect_reject(body, BIC_E_VALIDATION, "unknown");
    assert_true(strlen(msg) < 100);
}

static void any_key_is_unknown_when_the_route_has_no_fields(void **state)
{
    (void)state;
    json_t *o = NULL;
    assert_int_equal(json_body_parse("{}", 2, NULL, &o, msg, sizeof(msg)), BIC_E_OK);
    assert_non_null(o);
    json_decref(o);
    assert_int_equal(json_body_parse("{\"a\":1}", 7, NULL, &o, msg, sizeof(msg)), BIC_E_VALIDATION);
    assert_null(o);
    assert_true(test_contains(msg, "'a'"));
}

static void missing_required_field_is_a_validation_error(void **state)
{
    (void)state;
    expect_reject("{}", BIC_E_VALIDATION, "'name'");
    expect_reject("{\"count\":2}", BIC_E_VALIDATION, "required");
}

static void wrong_types_are_validation_errors_naming_the_field(void **state)
{
    (void)state;
    expect_reject("{\"name\":5}", BIC_E_VALIDATION, "'name'");
    expect_reject("{\"name\":[\"a\"]}", BIC_E_VALIDATION, "'name'");
    expect_reject("{\"name\":{}}", BIC_E_VALIDATION, "'name'");
    expect_reject("{\"name\":\"a\",\"count\":\"5\"}", BIC_E_VALIDATION, "'count'");
    expect_reject("{\"name\":\"a\",\"count\":1.5}", BIC_E_VALIDATION, "'count'");
    expect_reject("{\"name\":\"a\",\"count\":2.0}", BIC_E_VALIDATION, "'count'");
    expect_reject("{\"name\":\"a\",\"count\":true}", BIC_E_VALIDATION, "'count'");
    expect_reject("{\"name\":\"a\",\"enabled\":1}", BIC_E_VALIDATION, "'enabled'");
    expect_reject("{\"name\":\"a\",\"enabled\":\"true\"}", BIC_E_VALIDATION, "'enabled'");
    expect_reject("{\"name\":\"a\",\"tags\":\"x\"}", BIC_E_VALIDATION, "'tags'");
    expect_reject("{\"name\":\"a\",\"tags\":[1]}", BIC_E_VALIDATION, "'tags'");
    expect_reject("{\"name\":\"a\",\"tags\":[\"a\",null]}", BIC_E_VALIDATION, "'tags'");
    expect_reject("{\"name\":\"a\",\"ids\":[\"1\"]}", BIC_E_VALIDATION, "'ids'");
    expect_reject("{\"name\":\"a\",\"ids\":[1.5]}", BIC_E_VALIDATION, "'ids'");
    expect_reject("{\"name\":\"a\",\"ids\":{}}", BIC_E_VALIDATION, "'ids'");
}

static void null_is_rejected_unless_the_field_is_nullable(void **state)
{
    (void)state;
    expect_reject("{\"name\":null}", BIC_E_VALIDATION, "'name'");
    expect_reject("{\"name\":\"a\",\"count\":null}", BIC_E_VALIDATION, "'count'");
    expect_reject("{\"name\":\"a\",\"tags\":null}", BIC_E_VALIDATION, "'tags'");
    json_t *o = NULL;
    assert_int_equal(parse("{\"name\":\"a\",\"note\":null}", &o), BIC_E_OK);
    assert_true(json_is_null(json_object_get(o, "note"))); /* kept: null means "clear" */
    assert_string_equal(json_get_str(o, "note", "dflt"), "dflt");
    json_decref(o);
}

static void string_length_bounds_are_inclusive_byte_counts(void **state)
{
    (void)state;
    expect_reject("{\"name\":\"\"}", BIC_E_VALIDATION, "'name'");
    expect_accept("{\"name\":\"x\"}");
    expect_accept("{\"name\":\"12345678\"}");
    expect_reject("{\"name\":\"123456789\"}", BIC_E_VALIDATION, "'name'");
    /* 4 characters but 8 bytes: fits; 5 characters, 10 bytes: too long */
    expect_accept("{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}");
    expect_reject("{\"name\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}", BIC_E_VALIDATION, "'name'");
}

static void string_without_max_has_no_upper_bound(void **state)
{
    (void)state;
    char body[5000];
    char big[4000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(body, sizeof(body), "{\"name\":\"a\",\"free\":\"%s\"}", big);
    expect_accept(body);
    expect_accept("{\"name\":\"a\",\"free\":\"\"}");
}

static void integer_range_is_inclusive(void **state)
{
    (void)state;
    expect_reject("{\"name\":\"a\",\"count\":0}", BIC_E_VALIDATION, "'count'");
    expect_reject("{\"name\":\"a\",\"count\":-1}", BIC_E_VALIDATION, "'count'");
    expect_accept("{\"name\":\"a\",\"count\":1}");
    expect_accept("{\"name\":\"a\",\"count\":10}");
    expect_reject("{\"name\":\"a\",\"count\":11}", BIC_E_VALIDATION, "between 1 and 10");
    expect_reject("{\"name\":\"a\",\"count\":9223372036854775807}", BIC_E_VALIDATION, "'count'");
    expect_reject("{\"name\":\"a\",\"count\":-9223372036854775808}", BIC_E_VALIDATION, "'count'");
}

static void integer_beyond_64_bits_is_not_accepted(void **state)
{
    (void)state;
    bic_err e = parse("{\"name\":\"a\",\"count\":99999999999999999999}", NULL);
    assert_int_not_equal(e, BIC_E_OK);
}

static void choices_restrict_string_values_exactly(void **state)
{
    (void)state;
    expect_accept("{\"name\":\"a\",\"colour\":\"red\"}");
    expect_accept("{\"name\":\"a\",\"colour\":\"green\"}");
    expect_reject("{\"name\":\"a\",\"colour\":\"blue\"}", BIC_E_VALIDATION, "'colour'");
    expect_reject("{\"name\":\"a\",\"colour\":\"Red\"}", BIC_E_VALIDATION, "'colour'");
    expect_reject("{\"name\":\"a\",\"colour\":\"red \"}", BIC_E_VALIDATION, "'colour'");
    expect_reject("{\"name\":\"a\",\"colour\":\"\"}", BIC_E_VALIDATION, "'colour'");
}

static void c0_control_characters_in_strings_are_rejected(void **state)
{
    (void)state;
    expect_reject("{\"name\":\"a\\nb\"}", BIC_E_VALIDATION, "control");
    expect_reject("{\"name\":\"a\\rb\"}", BIC_E_VALIDATION, "control");
    expect_reject("{\"name\":\"a\\u0001b\"}", BIC_E_VALIDATION, "control");
    expect_reject("{\"name\":\"\\u001b[2J\"}", BIC_E_VALIDATION, "control");
    expect_reject("{\"name\":\"a\",\"note\":\"x\\u0008y\"}", BIC_E_VALIDATION, "'note'");
    /* the tab is allowed on purpose */
    expect_accept("{\"name\":\"a\\tb\"}");
}

static void embedded_nul_in_a_string_is_rejected(void **state)
{
    (void)state;
    /* jansson refuses \u0000 without JSON_ALLOW_NUL; either way it must not pass */
    bic_err e = parse("{\"name\":\"a\\u0000b\"}", NULL);
    assert_int_not_equal(e, BIC_E_OK);
}

static void del_and_c1_control_characters_in_strings_are_rejected(void **state)
{
    (void)state;
    /* U+007F DELETE and U+0080..U+009F are control characters (Unicode Cc) too */
    expect_reject("{\"name\":\"a\\u007fb\"}", BIC_E_VALIDATION, "control");
    expect_reject("{\"name\":\"a\\u0085b\"}", BIC_E_VALIDATION, "control");
    expect_reject("{\"name\":\"a\\u009bb\"}", BIC_E_VALIDATION, "control");
    /* ordinary non-ASCII text stays accepted */
    expect_accept("{\"name\":\"J\\u00fcrgen\"}");
}

static void string_array_items_obey_the_control_character_rule(void **state)
{
    (void)state;
    expect_accept("{\"name\":\"a\",\"tags\":[\"ok\",\"fine\"]}");
    expect_reject("{\"name\":\"a\",\"tags\":[\"ok\",\"bad\\nitem\"]}", BIC_E_VALIDATION, "'tags'");
    expect_reject("{\"name\":\"a\",\"tags\":[\"\\u001b[31m\"]}", BIC_E_VALIDATION, "'tags'");
}

static void array_item_counts_are_bounded(void **state)
{
    (void)state;
    expect_accept("{\"name\":\"a\",\"tags\":[]}");
    expect_accept("{\"name\":\"a\",\"tags\":[\"1\",\"2\",\"3\"]}");
    expect_reject("{\"name\":\"a\",\"tags\":[\"1\",\"2\",\"3\",\"4\"]}", BIC_E_VALIDATION,
                  "'tags'");
    expect_reject("{\"name\":\"a\",\"ids\":[]}", BIC_E_VALIDATION, "'ids'");
    expect_accept("{\"name\":\"a\",\"ids\":[1]}");
    expect_accept("{\"name\":\"a\",\"ids\":[1,-2]}");
    expect_reject("{\"name\":\"a\",\"ids\":[1,2,3]}", BIC_E_VALIDATION, "items");
}

static void message_is_truncated_to_msglen(void **state)
{
    (void)state;
    char small[12];
    memset(small, 'x', sizeof(small));
    json_t *o = NULL;
    const char *body = "{\"a_rather_long_unknown_key\":1}";
    assert_int_equal(json_body_parse(body, strlen(body), fields, &o, small, sizeof(small)),
                     BIC_E_VALIDATION);
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void getters_return_values_or_defaults(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:s, s:i, s:b, s:n, s:s, s:i}", "s", "text", "i", 42, "b", 1, "null",
                          "str_not_int", "7", "int_not_str", 7);
    assert_non_null(o);
    assert_string_equal(json_get_str(o, "s", "d"), "text");
    assert_int_equal(json_get_int(o, "i", -1), 42);
    assert_true(json_get_bool(o, "b", false));
    /* absent */
    assert_string_equal(json_get_str(o, "missing", "d"), "d");
    assert_null(json_get_str(o, "missing", NULL));
    assert_int_equal(json_get_int(o, "missing", -1), -1);
    assert_false(json_get_bool(o, "missing", false));
    assert_true(json_get_bool(o, "missing", true));
    /* null */
    assert_string_equal(json_get_str(o, "null", "d"), "d");
    assert_int_equal(json_get_int(o, "null", 5), 5);
    assert_true(json_get_bool(o, "null", true));
    /* wrong type */
    assert_int_equal(json_get_int(o, "str_not_int", 9), 9);
    assert_string_equal(json_get_str(o, "int_not_str", "d"), "d");
    assert_false(json_get_bool(o, "i", false));
    /* a false value is not the default */
    json_object_set_new(o, "f", json_false());
    assert_false(json_get_bool(o, "f", true));
    json_decref(o);
}

static void getters_on_null_object_return_defaults(void **state)
{
    (void)state;
    assert_string_equal(json_get_str(NULL, "k", "d"), "d");
    assert_int_equal(json_get_int(NULL, "k", 3), 3);
    assert_true(json_get_bool(NULL, "k", true));
}

static void field_type_names_are_distinct_api_words(void **state)
{
    (void)state;
    const bic_ftype types[] = {F_STR, F_INT, F_BOOL, F_STR_ARRAY, F_INT_ARRAY};
    const size_t n = sizeof(types) / sizeof(types[0]);
    for (size_t i = 0; i < n; i++) {
        const char *a = json_ftype_name(types[i]);
        assert_non_null(a);
        assert_string_not_equal(a, "?");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(a, json_ftype_name(types[j]));
    }
    assert_string_equal(json_ftype_name(F_STR), "string");
    assert_string_equal(json_ftype_name(F_INT), "integer");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_object_is_accepted_and_returned),
        cmocka_unit_test(minimal_object_with_only_required_fields_is_accepted),
        cmocka_unit_test(invalid_json_is_bad_json),
        cmocka_unit_test(only_len_bytes_of_the_body_are_parsed),
        cmocka_unit_test(non_object_body_is_bad_json),
        cmocka_unit_test(duplicate_keys_are_rejected),
        cmocka_unit_test(unknown_key_is_a_validation_error_naming_it),
        cmocka_unit_test(unknown_key_name_in_message_is_bounded),
        cmocka_unit_test(any_key_is_unknown_when_the_route_has_no_fields),
        cmocka_unit_test(missing_required_field_is_a_validation_error),
        cmocka_unit_test(wrong_types_are_validation_errors_naming_the_field),
        cmocka_unit_test(null_is_rejected_unless_the_field_is_nullable),
        cmocka_unit_test(string_length_bounds_are_inclusive_byte_counts),
        cmocka_unit_test(string_without_max_has_no_upper_bound),
        cmocka_unit_test(integer_range_is_inclusive),
        cmocka_unit_test(integer_beyond_64_bits_is_not_accepted),
        cmocka_unit_test(choices_restrict_string_values_exactly),
        cmocka_unit_test(c0_control_characters_in_strings_are_rejected),
        cmocka_unit_test(embedded_nul_in_a_string_is_rejected),
        cmocka_unit_test(del_and_c1_control_characters_in_strings_are_rejected),
        cmocka_unit_test(string_array_items_obey_the_control_character_rule),
        cmocka_unit_test(array_item_counts_are_bounded),
        cmocka_unit_test(message_is_truncated_to_msglen),
        cmocka_unit_test(getters_return_values_or_defaults),
        cmocka_unit_test(getters_on_null_object_return_defaults),
        cmocka_unit_test(field_type_names_are_distinct_api_words),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}

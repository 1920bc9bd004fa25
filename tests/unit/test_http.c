/*
 * test_http.c - fcgi/http.c: query and cookie parsing, fail(), error bodies,
 * roles and the security headers.
 */
#include "bic_test.h"

#include "http.h"
#include "log.h"

static bic_req req;
static bic_resp resp;

static int group_setup(void **state)
{
    (void)state;
    /* fail() logs 5xx details; keep them out of the test output */
    return log_open("", "/dev/null");
}

static int group_teardown(void **state)
{
    (void)state;
    log_close();
    return 0;
}

static int setup(void **state)
{
    (void)state;
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    req.arena = arena_new(0);
    snprintf(req.request_id, sizeof(req.request_id), "rid-42");
    return req.arena ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(req.arena);
    return 0;
}

/* ---- req_query ---- */

static void query_values_are_percent_and_plus_decoded(void **state)
{
    (void)state;
    req.query = "a=1&b=hello%20world&c=x+y&d=%41%62%2b%2F&e=caf%C3%A9";
    assert_string_equal(req_query(&req, "a"), "1");
    assert_string_equal(req_query(&req, "b"), "hello world");
    assert_string_equal(req_query(&req, "c"), "x y");
    assert_string_equal(req_query(&req, "d"), "Ab+/");
    assert_string_equal(req_query(&req, "e"), "caf\xc3\xa9");
}

static void query_missing_key_is_null(void **state)
{
    (void)state;
    req.query = "alpha=1&beta=2";
    assert_null(req_query(&req, "gamma"));
    assert_null(req_query(&req, "alp"));    /* a prefix of a key is not the key */
    assert_null(req_query(&req, "alpha1")); /* nor is a longer name */
    assert_null(req_query(&req, "1"));      /* values are not keys */
    req.query = NULL;
    assert_null(req_query(&req, "alpha"));
    req.query = "";
    assert_null(req_query(&req, "alpha"));
}

static void query_empty_value_and_bare_key_are_empty_strings(void **state)
{
    (void)state;
    req.query = "empty=&flag&x=1";
    assert_string_equal(req_query(&req, "empty"), "");
    assert_string_equal(req_query(&req, "flag"), "");
    assert_string_equal(req_query(&req, "x"), "1");
}

static void query_first_occurrence_wins(void **state)
{
    (void)state;
    req.query = "k=first&k=second";
    assert_string_equal(req_query(&req, "k"), "first");
}

static void query_key_after_empty_segments_is_found(void **state)
{
    (void)state;
    req.query = "&&a=1&&b=2&";
    assert_string_equal(req_query(&req, "a"), "1");
    assert_string_equal(req_query(&req, "b"), "2");
}

static void query_malformed_escape_is_null(void **state)
{
    (void)state;
    const char *bad[] = {"v=%", "v=%4", "v=%zz", "v=%4g", "v=ab%", "v=%%41", "v=%G1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req.query = bad[i];
        if (req_query(&req, "v")) test_fail("'%s' decoded to '%s'", bad[i], req_query(&req, "v"));
    }
    /* a bad escape in another parameter does not matter */
    req.query = "bad=%zz&good=%41";
    assert_string_equal(req_query(&req, "good"), "A");
}

static void query_escape_at_the_end_of_a_value_is_decoded(void **state)
{
    (void)state;
    req.query = "v=a%41&w=%42";
    assert_string_equal(req_query(&req, "v"), "aA");
    assert_string_equal(req_query(&req, "w"), "B");
}

static void query_encoded_nul_is_rejected(void **state)
{
    (void)state;
    req.query = "v=a%00b";
    assert_null(req_query(&req, "v"));
}

/* ---- req_cookie ---- */

static void cookie_is_found_among_several(void **state)
{
    (void)state;
    req.cookie = "theme=dark; __Host-bic_session=abc.def.ghi; lang=en";
    assert_string_equal(req_cookie(&req, "theme"), "dark");
    assert_string_equal(req_cookie(&req, "__Host-bic_session"), "abc.def.ghi");
    assert_string_equal(req_cookie(&req, "lang"), "en");
}

static void cookie_spacing_variants_are_accepted(void **state)
{
    (void)state;
    req.cookie = "  a=1;b=2;   c=3 ;d=4";
    assert_string_equal(req_cookie(&req, "a"), "1");
    assert_string_equal(req_cookie(&req, "b"), "2");
    assert_string_equal(req_cookie(&req, "d"), "4");
}

static void cookie_value_may_contain_equals_signs(void **state)
{
    (void)state;
    req.cookie = "tok=YWJj==; x=1";
    assert_string_equal(req_cookie(&req, "tok"), "YWJj==");
}

static void cookie_missing_or_prefix_name_is_null(void **state)
{
    (void)state;
    req.cookie = "session=abc; xsession=def";
    assert_null(req_cookie(&req, "sess"));
    assert_null(req_cookie(&req, "sessions"));
    assert_null(req_cookie(&req, "abc"));
    assert_null(req_cookie(&req, "other"));
    req.cookie = "x=session=1";
    assert_null(req_cookie(&req, "session"));
    req.cookie = NULL;
    assert_null(req_cookie(&req, "session"));
    req.cookie = "";
    assert_null(req_cookie(&req, "session"));
    req.cookie = " ; ;";
    assert_null(req_cookie(&req, "session"));
}

static void cookie_with_empty_value_is_empty_string(void **state)
{
    (void)state;
    req.cookie = "a=; b=2";
    assert_string_equal(req_cookie(&req, "a"), "");
    assert_string_equal(req_cookie(&req, "b"), "2");
}

static void cookie_first_occurrence_wins(void **state)
{
    (void)state;
    req.cookie = "dup=one; dup=two";
    assert_string_equal(req_cookie(&req, "dup"), "one");
}

/* ---- fail() ---- */

static void fail_keeps_the_message_of_a_4xx_error(void **state)
{
    (void)state;
    bic_err e = fail(&req, BIC_E_NOT_FOUND, "no user %s (id %d)", "bob", 7);
    assert_int_equal(e, BIC_E_NOT_FOUND);
    assert_string_equal(req.err_msg, "no user bob (id 7)");
    e = fail(&req, BIC_E_VALIDATION, "field '%s' is wrong", "x");
    assert_int_equal(e, BIC_E_VALIDATION);
    assert_string_equal(req.err_msg, "field 'x' is wrong");
}

static void fail_hides_the_message_of_a_5xx_error(void **state)
{
    (void)state;
    bic_err e = fail(&req, BIC_E_INTERNAL, "mysql said: table users is corrupt");
    assert_int_equal(e, BIC_E_INTERNAL);
    assert_string_equal(req.err_msg, "");
    fail(&req, BIC_E_CONFLICT, "a client-visible detail");
    e = fail(&req, BIC_E_DB_UNAVAILABLE, "connect to 10.0.0.5 failed");
    assert_int_equal(e, BIC_E_DB_UNAVAILABLE);
    assert_string_equal(req.err_msg, ""); /* the earlier 4xx text is gone as well */
}

static void fail_truncates_long_messages(void **state)
{
    (void)state;
    char big[1000];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fail(&req, BIC_E_BAD_REQUEST, "%s", big);
    assert_int_equal(strlen(req.err_msg), sizeof(req.err_msg) - 1);
}

/* ---- resp_error ---- */

static json_t *error_object(void)
{
    assert_non_null(resp.body);
    assert_int_equal(json_object_size(resp.body), 1);
    json_t *err = json_object_get(resp.body, "error");
    assert_true(json_is_object(err));
    assert_int_equal(json_object_size(err), 3);
    assert_string_equal(json_string_value(json_object_get(err, "request_id")), "rid-42");
    return err;
}

static const char *error_field(const char *k)
{
    return json_string_value(json_object_get(error_object(), k));
}

static const char *header_with(const char *prefix)
{
    const char *found = NULL;
    for (size_t i = 0; i < resp.nheaders; i++)
        if (!strncmp(resp.header[i], prefix, strlen(prefix))) {
            if (found) test_fail("two %s headers", prefix);
            found = resp.header[i];
        }
    return found;
}

static void error_body_has_code_message_and_request_id(void **state)
{
    (void)state;
    resp_error(&req, &resp, fail(&req, BIC_E_NOT_FOUND, "no such group"));
    assert_int_equal(resp.status, 404);
    assert_string_equal(error_field("code"), "not_found");
    assert_string_equal(error_field("message"), "no such group");
}

static void error_without_a_recorded_message_uses_the_default(void **state)
{
    (void)state;
    resp_error(&req, &resp, BIC_E_FORBIDDEN);
    assert_int_equal(resp.status, 403);
    assert_string_equal(error_field("code"), "forbidden");
    assert_string_equal(error_field("message"), bic_err_message(BIC_E_FORBIDDEN));
}

static void server_error_body_shows_only_the_default_message(void **state)
{
    (void)state;
    resp_error(&req, &resp, fail(&req, BIC_E_INTERNAL, "secret: stack trace here"));
    assert_int_equal(resp.status, 500);
    assert_string_equal(error_field("code"), "internal");
    assert_string_equal(error_field("message"), bic_err_message(BIC_E_INTERNAL));
}

static void server_error_never_shows_an_earlier_client_message(void **state)
{
    (void)state;
    /* a handler recorded a 4xx text, then ended with a database error it returned as is */
    fail(&req, BIC_E_NOT_FOUND, "user 12 (alice@example.com) not found");
    resp_error(&req, &resp, BIC_E_DB_UNAVAILABLE);
    assert_int_equal(resp.status, 503);
    assert_string_equal(error_field("code"), "database_unavailable");
    assert_string_equal(error_field("message"), bic_err_message(BIC_E_DB_UNAVAILABLE));
}

static void error_message_that_is_not_utf8_falls_back_to_the_default(void **state)
{
    (void)state;
    resp_error(&req, &resp, fail(&req, BIC_E_NOT_FOUND, "no file \xff\xfe"));
    assert_int_equal(resp.status, 404);
    assert_string_equal(error_field("message"), bic_err_message(BIC_E_NOT_FOUND));
}

static void retry_after_accompanies_throttling_and_outages(void **state)
{
    (void)state;
    const struct {
        bic_err code;
        const char *header;
    } cases[] = {
        {BIC_E_RATE_LIMITED, "Retry-After: 1"},
        {BIC_E_LOCKED, "Retry-After: 30"},
        {BIC_E_UNAVAILABLE, "Retry-After: 1"},
        {BIC_E_DB_UNAVAILABLE, "Retry-After: 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        teardown(NULL);
        setup(NULL);
        resp_error(&req, &resp, cases[i].code);
        const char *h = header_with("Retry-After:");
        if (!h) test_fail("%s has no Retry-After", bic_err_name(cases[i].code));
        assert_string_equal(h, cases[i].header);
    }
}

static void retry_after_is_absent_for_other_errors(void **state)
{
    (void)state;
    const bic_err codes[] = {BIC_E_BAD_REQUEST, BIC_E_NOT_FOUND, BIC_E_UNAUTHENTICATED,
                             BIC_E_INTERNAL,    BIC_E_CONFLICT,  BIC_E_TOO_LARGE};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        teardown(NULL);
        setup(NULL);
        resp_error(&req, &resp, codes[i]);
        assert_null(header_with("Retry-After:"));
    }
}

static void handler_set_retry_after_is_kept_and_not_duplicated(void **state)
{
    (void)state;
    resp_header(&req, &resp, "Retry-After: %d", 120);
    resp_error(&req, &resp, fail(&req, BIC_E_LOCKED, "locked for 120 seconds"));
    assert_string_equal(header_with("Retry-After:"), "Retry-After: 120");
    assert_int_equal(resp.status, 423);
}

/* ---- responses ---- */

static void resp_json_sets_status_and_body_owned_by_the_arena(void **state)
{
    (void)state;
    json_t *b = json_pack("{s:i}", "n", 1);
    resp_json(&req, &resp, 201, b);
    assert_int_equal(resp.status, 201);
    assert_ptr_equal(resp.body, b);
    /* no json_decref here: the arena reset in teardown releases it (LSan checks) */
}

static void resp_header_formats_and_caps_the_count(void **state)
{
    (void)state;
    for (int i = 0; i < BIC_MAX_HEADERS + 3; i++)
        resp_header(&req, &resp, "X-N: %d", i);
    assert_int_equal(resp.nheaders, BIC_MAX_HEADERS);
    assert_string_equal(resp.header[0], "X-N: 0");
    assert_string_equal(resp.header[BIC_MAX_HEADERS - 1], "X-N: 7");
}

/* ---- roles and headers ---- */

static void role_parse_accepts_assignable_roles_only(void **state)
{
    (void)state;
    assert_int_equal(role_parse("user"), ROLE_USER);
    assert_int_equal(role_parse("operator"), ROLE_OPERATOR);
    assert_int_equal(role_parse("admin"), ROLE_ADMIN);
    const char *bad[] = {"anonymous", "Admin", "ADMIN", "", "root", "admin ", "use"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(role_parse(bad[i]), ROLE__MAX);
    assert_int_equal(role_parse(NULL), ROLE__MAX);
}

static void role_name_round_trips_and_orders_privilege(void **state)
{
    (void)state;
    assert_string_equal(role_name(ROLE_ANON), "anonymous");
    assert_string_equal(role_name(ROLE_USER), "user");
    assert_string_equal(role_name(ROLE_OPERATOR), "operator");
    assert_string_equal(role_name(ROLE_ADMIN), "admin");
    /* only the user hierarchy can be named in data (users.role); machine roles cannot */
    for (int r = ROLE_USER; r <= ROLE_ADMIN; r++)
        assert_int_equal(role_parse(role_name((bic_role)r)), r);
    for (int r = ROLE_ADMIN + 1; r < ROLE__MAX; r++) {
        assert_string_not_equal(role_name((bic_role)r), "unknown");
        assert_int_equal(role_parse(role_name((bic_role)r)), ROLE__MAX);
    }
    assert_string_equal(role_name(ROLE__MAX), "unknown");
    assert_true(ROLE_ANON < ROLE_USER && ROLE_USER < ROLE_OPERATOR && ROLE_OPERATOR < ROLE_ADMIN);
}

static void security_headers_include_nosniff_and_deny(void **state)
{
    (void)state;
    int nosniff = 0, deny = 0, n = 0;
    for (const char *const *h = http_security_headers; *h; h++, n++) {
        if (!strcmp(*h, "X-Content-Type-Options: nosniff")) nosniff++;
        if (!strcmp(*h, "X-Frame-Options: DENY")) deny++;
        assert_non_null(strstr(*h, ": ")); /* "Name: value" */
        assert_null(strpbrk(*h, "\r\n"));
    }
    assert_int_equal(nosniff, 1);
    assert_int_equal(deny, 1);
    assert_true(n >= 2 && n < 32); /* NULL-terminated */
}

static void security_headers_forbid_caching_and_framing(void **state)
{
    (void)state;
    int no_store = 0, frame_ancestors = 0;
    for (const char *const *h = http_security_headers; *h; h++) {
        if (!strncmp(*h, "Cache-Control:", 14) && strstr(*h, "no-store")) no_store = 1;
        if (!strncmp(*h, "Content-Security-Policy:", 24) && strstr(*h, "frame-ancestors 'none'"))
            frame_ancestors = 1;
    }
    assert_true(no_store);
    assert_true(frame_ancestors);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(query_values_are_percent_and_plus_decoded),
        T(query_missing_key_is_null),
        T(query_empty_value_and_bare_key_are_empty_strings),
        T(query_first_occurrence_wins),
        T(query_key_after_empty_segments_is_found),
        T(query_malformed_escape_is_null),
        T(query_escape_at_the_end_of_a_value_is_decoded),
        T(query_encoded_nul_is_rejected),
        T(cookie_is_found_among_several),
        T(cookie_spacing_variants_are_accepted),
        T(cookie_value_may_contain_equals_signs),
        T(cookie_missing_or_prefix_name_is_null),
        T(cookie_with_empty_value_is_empty_string),
        T(cookie_first_occurrence_wins),
        T(fail_keeps_the_message_of_a_4xx_error),
        T(fail_hides_the_message_of_a_5xx_error),
        T(fail_truncates_long_messages),
        T(error_body_has_code_message_and_request_id),
        T(error_without_a_recorded_message_uses_the_default),
        T(server_error_body_shows_only_the_default_message),
        T(server_error_never_shows_an_earlier_client_message),
        T(error_message_that_is_not_utf8_falls_back_to_the_default),
        T(retry_after_accompanies_throttling_and_outages),
        T(retry_after_is_absent_for_other_errors),
        T(handler_set_retry_after_is_kept_and_not_duplicated),
        T(resp_json_sets_status_and_body_owned_by_the_arena),
        T(resp_header_formats_and_caps_the_count),
        T(role_parse_accepts_assignable_roles_only),
        T(role_name_round_trips_and_orders_privilege),
        T(security_headers_include_nosniff_and_deny),
        T(security_headers_forbid_caching_and_framing),
    };
    return cmocka_run_group_tests_name("http", tests, group_setup, group_teardown);
}

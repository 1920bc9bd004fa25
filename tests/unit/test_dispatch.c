/*
 * test_dispatch.c - fcgi/dispatch.c: the checks every route shares.
 *
 * Drives dispatch() directly with a bic_req (no FastCGI, no database). Only
 * the outcomes decided before identity and CSRF are tested here (404, 405,
 * 413), so no handler and no session code ever runs.
 */
#include "bic_test.h"

#include "dispatch.h"
#include "routes.h"

static bic_req req;
static bic_resp resp;
static int body_reads;

static bic_err counting_read_body(bic_req *r)
{
    (void)r;
    body_reads++;
    return BIC_E_OK;
}

static int setup(void **state)
{
    (void)state;
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    req.arena = arena_new(0);
    req.fcgx = NULL;
    req.db = NULL;
    req.content_length = -1;
    snprintf(req.request_id, sizeof(req.request_id), "test-req-0001");
    body_reads = 0;
    dispatch_read_body = counting_read_body;
    return req.arena ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    dispatch_read_body = NULL;
    arena_free(req.arena); /* releases resp.body too; LSan checks */
    return 0;
}

/* Checks resp holds {"error":{"code":code,"message":...,"request_id":...}} only. */
static const char *expect_error_body(const char *code)
{
    assert_non_null(resp.body);
    assert_true(json_is_object(resp.body));
    assert_int_equal(json_object_size(resp.body), 1);
    json_t *err = json_object_get(resp.body, "error");
    assert_true(json_is_object(err));
    assert_int_equal(json_object_size(err), 3);
    assert_string_equal(json_string_value(json_object_get(err, "code")), code);
    assert_string_equal(json_string_value(json_object_get(err, "request_id")), "test-req-0001");
    const char *msg = json_string_value(json_object_get(err, "message"));
    assert_non_null(msg);
    assert_true(strlen(msg) > 0);
    return msg;
}

static const char *find_header(const char *prefix)
{
    for (size_t i = 0; i < resp.nheaders; i++)
        if (!strncmp(resp.header[i], prefix, strlen(prefix))) return resp.header[i];
    return NULL;
}

static void unknown_path_is_404_with_a_json_error_body(void **state)
{
    (void)state;
    req.method_str = "GET";
    req.path = "/api/v1/no-such-thing";
    assert_int_equal(dispatch(&req, &resp), BIC_E_NOT_FOUND);
    assert_int_equal(resp.status, 404);
    expect_error_body("not_found");
    assert_null(find_header("Allow:"));
    assert_int_equal(body_reads, 0);
}

static void missing_path_is_404(void **state)
{
    (void)state;
    req.method_str = "GET";
    req.path = NULL;
    assert_int_equal(dispatch(&req, &resp), BIC_E_NOT_FOUND);
    assert_int_equal(resp.status, 404);
    expect_error_body("not_found");
}

static void paths_outside_the_api_are_404(void **state)
{
    (void)state;
    const char *paths[] = {"/", "/index.html", "/api/v1/health/", "/api/v1/HEALTH"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        teardown(NULL);
        setup(NULL);
        req.method_str = "GET";
        req.path = paths[i];
        assert_int_equal(dispatch(&req, &resp), BIC_E_NOT_FOUND);
        assert_int_equal(resp.status, 404);
    }
}

static void wrong_method_is_405_with_an_allow_header(void **state)
{
    (void)state;
    req.method_str = "POST";
    req.path = "/api/v1/health";
    assert_int_equal(dispatch(&req, &resp), BIC_E_METHOD_NOT_ALLOWED);
    assert_int_equal(resp.status, 405);
    const char *msg = expect_error_body("method_not_allowed");
    assert_true(test_contains(msg, "POST"));
    const char *allow = find_header("Allow:");
    assert_non_null(allow);
    assert_string_equal(allow, "Allow: GET");
    assert_int_equal(body_reads, 0);
}

static void unknown_or_missing_method_is_405(void **state)
{
    (void)state;
    const char *methods[] = {"BREW", "HEAD", "OPTIONS", "get", NULL};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        teardown(NULL);
        setup(NULL);
        req.method_str = methods[i];
        req.path = "/api/v1/health";
        assert_int_equal(dispatch(&req, &resp), BIC_E_METHOD_NOT_ALLOWED);
        assert_int_equal(resp.status, 405);
        assert_non_null(find_header("Allow: GET"));
        expect_error_body("method_not_allowed");
    }
}

static void body_over_the_route_limit_is_413(void **state)
{
    (void)state;
    req.method_str = "GET";
    req.path = "/api/v1/version";
    req.content_length = 1;
    req.content_type = "application/json";
    assert_int_equal(dispatch(&req, &resp), BIC_E_TOO_LARGE);
    assert_int_equal(resp.status, 413);
    expect_error_body("payload_too_large");
    assert_int_equal(body_reads, 0); /* decided before reading the body */
}

/* Turns a route pattern into a concrete path, each {x} replaced by "1". */
static void concrete(const char *pat, char *out, size_t len)
{
    size_t o = 0;
    while (*pat && o + 2 < len) {
        if (*pat == '{') {
            out[o++] = '1';
            pat = strchr(pat, '}') + 1;
        } else {
            out[o++] = *pat++;
        }
    }
    out[o] = '\0';
}

static void every_route_answers_413_before_identity_and_csrf(void **state)
{
    (void)state;
    const long long extra[] = {1, 1000000, 1LL << 40};
    for (size_t i = 0; i < bic_nroutes; i++) {
        const bic_route *r = &bic_routes[i];
        for (size_t k = 0; k < sizeof(extra) / sizeof(extra[0]); k++) {
            char path[256];
            concrete(r->path, path, sizeof(path));
            teardown(NULL);
            setup(NULL);
            req.method_str = method_name(r->method);
            req.path = path;
            req.content_length = (long long)r->body_limit + extra[k];
            req.content_type = "application/json";
            /* no cookie, Origin or CSRF header: identity or CSRF would answer 401/403 */
            bic_err e = dispatch(&req, &resp);
            if (e != BIC_E_TOO_LARGE)
                test_fail("%s %s with %lld bytes: got %s, want payload_too_large", req.method_str,
                          path, req.content_length, bic_err_name(e));
            assert_int_equal(resp.status, 413);
            assert_ptr_equal(req.route, r);
            expect_error_body("payload_too_large");
            assert_int_equal(body_reads, 0);
        }
    }
}

static void not_found_wins_over_a_large_body(void **state)
{
    (void)state;
    req.method_str = "POST";
    req.path = "/api/v1/nothing-here";
    req.content_length = 1LL << 30;
    assert_int_equal(dispatch(&req, &resp), BIC_E_NOT_FOUND);
    assert_int_equal(resp.status, 404);
}

static void method_not_allowed_wins_over_a_large_body(void **state)
{
    (void)state;
    req.method_str = "DELETE";
    req.path = "/api/v1/health";
    req.content_length = 1LL << 30;
    assert_int_equal(dispatch(&req, &resp), BIC_E_METHOD_NOT_ALLOWED);
    assert_int_equal(resp.status, 405);
    assert_non_null(find_header("Allow: GET"));
}

static void error_message_from_dispatch_is_the_specific_one(void **state)
{
    (void)state;
    req.method_str = "GET";
    req.path = "/api/v1/version";
    req.content_length = 10;
    dispatch(&req, &resp);
    const char *msg = expect_error_body("payload_too_large");
    /* the limit is named, not just the generic default message */
    assert_true(test_contains(msg, "0 bytes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(unknown_path_is_404_with_a_json_error_body, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(missing_path_is_404, setup, teardown),
        cmocka_unit_test_setup_teardown(paths_outside_the_api_are_404, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_method_is_405_with_an_allow_header, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_or_missing_method_is_405, setup, teardown),
        cmocka_unit_test_setup_teardown(body_over_the_route_limit_is_413, setup, teardown),
        cmocka_unit_test_setup_teardown(every_route_answers_413_before_identity_and_csrf, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(not_found_wins_over_a_large_body, setup, teardown),
        cmocka_unit_test_setup_teardown(method_not_allowed_wins_over_a_large_body, setup, teardown),
        cmocka_unit_test_setup_teardown(error_message_from_dispatch_is_the_specific_one, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("dispatch", tests, NULL, NULL);
}

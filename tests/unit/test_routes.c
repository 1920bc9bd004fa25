/*
 * test_routes.c - fcgi/routes.c: the route table and the path matcher.
 *
 * Runs against the real table (bic_routes). Checks that depend on what the
 * table holds (path parameters, Allow lists) are derived from the table
 * itself, so they keep working as routes are added.
 */
#include "bic_test.h"

#include "routes.h"

static bic_req req;

static int setup(void **state)
{
    (void)state;
    memset(&req, 0, sizeof(req));
    req.arena = arena_new(0);
    return req.arena ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(req.arena);
    req.arena = NULL;
    return 0;
}

/* Turns a pattern into a concrete path, each {x} replaced by "v<i>". */
static void concrete(const char *pat, char *out, size_t len, size_t *nparams)
{
    size_t o = 0, n = 0;
    while (*pat && o + 8 < len) {
        if (*pat == '{') {
            const char *end = strchr(pat, '}');
            assert_non_null(end);
            o += (size_t)snprintf(out + o, len - o, "v%zu", n++);
            pat = end + 1;
        } else {
            out[o++] = *pat++;
        }
    }
    assert_int_equal(*pat, '\0');
    out[o] = '\0';
    if (nparams) *nparams = n;
}

static const bic_route *match(bic_method m, const char *path, bic_err *why, char *allow,
                              size_t allowlen)
{
    *why = BIC_E_OK;
    return route_match(&req, m, path, why, allow, allowlen);
}

static void get_health_matches_the_health_route(void **state)
{
    (void)state;
    char allow[64];
    bic_err why;
    req.nparams = 3; /* stale value from an earlier match must be reset */
    const bic_route *r = match(M_GET, "/api/v1/health", &why, allow, sizeof(allow));
    assert_non_null(r);
    assert_string_equal(r->path, "/api/v1/health");
    assert_int_equal(r->method, M_GET);
    assert_string_equal(r->handler_name, "h_health_get");
    assert_non_null(r->handler);
    assert_int_equal(req.nparams, 0);
}

static void post_to_health_is_method_not_allowed_with_allow_get(void **state)
{
    (void)state;
    char allow[64] = "junk";
    bic_err why;
    const bic_route *r = match(M_POST, "/api/v1/health", &why, allow, sizeof(allow));
    assert_null(r);
    assert_int_equal(why, BIC_E_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "GET");
}

static void unsupported_method_on_a_known_path_is_method_not_allowed(void **state)
{
    (void)state;
    char allow[64];
    bic_err why;
    assert_null(match(M__MAX, "/api/v1/health", &why, allow, sizeof(allow)));
    assert_int_equal(why, BIC_E_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "GET");
}

static void unknown_paths_are_not_found(void **state)
{
    (void)state;
    const char *paths[] = {
        "/api/v1/nope",    "/", "", "/api/v2/health", "/API/V1/HEALTH", "api/v1/health",
        "/api/v1/health\n"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char allow[64] = "junk";
        bic_err why;
        const bic_route *r = match(M_GET, paths[i], &why, allow, sizeof(allow));
        if (r) test_fail("'%s' matched %s", paths[i], r->path);
        assert_int_equal(why, BIC_E_NOT_FOUND);
        assert_string_equal(allow, "");
    }
}

static void trailing_slash_and_prefix_paths_do_not_match(void **state)
{
    (void)state;
    const char *paths[] = {"/api/v1/health/",  "/api/v1/healt",     "/api/v1/healthz",
                           "/api/v1/health/x", "/api/v1",           "/api/v1/",
                           "//api/v1/health",  "/api/v1//health",   "/api/v1/health?x=1",
                           "/api/v1/./health", "/api/v1/health/..", "/api/v1/version/"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char allow[64];
        bic_err why;
        const bic_route *r = match(M_GET, paths[i], &why, allow, sizeof(allow));
        if (r) test_fail("'%s' matched %s", paths[i], r->path);
        assert_int_equal(why, BIC_E_NOT_FOUND);
    }
}

static void trailing_slash_on_every_route_does_not_match(void **state)
{
    (void)state;
    for (size_t i = 0; i < bic_nroutes; i++) {
        char path[256], allow[64];
        concrete(bic_routes[i].path, path, sizeof(path) - 1, NULL);
        strcat(path, "/");
        bic_err why;
        const bic_route *r = match(bic_routes[i].method, path, &why, allow, sizeof(allow));
        if (r == &bic_routes[i]) test_fail("'%s' matched %s", path, r->path);
    }
}

static void method_parse_knows_exactly_the_served_methods(void **state)
{
    (void)state;
    assert_int_equal(method_parse("GET"), M_GET);
    assert_int_equal(method_parse("POST"), M_POST);
    assert_int_equal(method_parse("PUT"), M_PUT);
    assert_int_equal(method_parse("PATCH"), M_PATCH);
    assert_int_equal(method_parse("DELETE"), M_DELETE);
    for (int m = 0; m < M__MAX; m++)
        assert_int_equal(method_parse(method_name((bic_method)m)), m);
    const char *bad[] = {"get",     "Get", "HEAD", "OPTIONS", "TRACE",
                         "CONNECT", "",    "GETX", "GE",      " GET"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(method_parse(bad[i]), M__MAX);
    assert_int_equal(method_parse(NULL), M__MAX);
    assert_string_equal(method_name(M__MAX), "?");
}

static void routes_json_has_one_entry_per_route_with_its_fields(void **state)
{
    (void)state;
    json_t *a = routes_json();
    assert_non_null(a);
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), bic_nroutes);
    for (size_t i = 0; i < bic_nroutes; i++) {
        const bic_route *r = &bic_routes[i];
        json_t *e = json_array_get(a, i);
        assert_true(json_is_object(e));
        assert_string_equal(json_string_value(json_object_get(e, "method")),
                            method_name(r->method));
        assert_string_equal(json_string_value(json_object_get(e, "path")), r->path);
        assert_string_equal(json_string_value(json_object_get(e, "role")), role_name(r->role));
        assert_string_equal(json_string_value(json_object_get(e, "handler")), r->handler_name);
        assert_non_null(json_string_value(json_object_get(e, "summary")));
        assert_int_equal(json_integer_value(json_object_get(e, "body_limit")), r->body_limit);
        json_t *f = json_object_get(e, "fields");
        assert_true(json_is_array(f));
        size_t nf = 0;
        for (const bic_field *fp = r->fields; fp && fp->name; fp++)
            nf++;
        assert_int_equal(json_array_size(f), nf);
        for (size_t k = 0; k < nf; k++) {
            const bic_field *fd = &r->fields[k];
            json_t *fj = json_array_get(f, k);
            assert_string_equal(json_string_value(json_object_get(fj, "name")), fd->name);
            assert_string_equal(json_string_value(json_object_get(fj, "type")),
                                json_ftype_name(fd->type));
            assert_int_equal(json_is_true(json_object_get(fj, "required")), fd->required);
            assert_int_equal(json_is_true(json_object_get(fj, "nullable")), fd->nullable);
            assert_int_equal(json_integer_value(json_object_get(fj, "min")), fd->min);
            assert_int_equal(json_integer_value(json_object_get(fj, "max")), fd->max);
            json_t *ch = json_object_get(fj, "choices");
            assert_true(json_is_array(ch));
            size_t nc = 0;
            for (const char *const *c = fd->choices; c && *c; c++, nc++)
                assert_string_equal(json_string_value(json_array_get(ch, nc)), *c);
            assert_int_equal(json_array_size(ch), nc);
        }
    }
    json_decref(a);
}

static void no_two_routes_share_method_and_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < bic_nroutes; i++)
        for (size_t j = i + 1; j < bic_nroutes; j++)
            if (bic_routes[i].method == bic_routes[j].method &&
                !strcmp(bic_routes[i].path, bic_routes[j].path))
                test_fail("%s %s is declared twice", method_name(bic_routes[i].method),
                          bic_routes[i].path);
}

static void get_routes_take_no_body_and_other_methods_declare_a_limit(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < bic_nroutes; i++) {
        const bic_route *r = &bic_routes[i];
        if (r->method == M_GET && r->body_limit != 0) {
            print_error("GET %s has body_limit %zu, want 0\n", r->path, r->body_limit);
            bad++;
        }
        if (r->method != M_GET && r->body_limit == 0) {
            print_error("%s %s has body_limit 0, want > 0\n", method_name(r->method), r->path);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void routes_with_a_field_table_accept_a_body(void **state)
{
    (void)state;
    for (size_t i = 0; i < bic_nroutes; i++) {
        const bic_route *r = &bic_routes[i];
        if (r->fields && r->body_limit == 0)
            test_fail("%s %s declares fields but body_limit 0", method_name(r->method), r->path);
        if (r->fields && r->method == M_GET) test_fail("GET %s declares body fields", r->path);
    }
}

static void route_declarations_are_well_formed(void **state)
{
    (void)state;
    for (size_t i = 0; i < bic_nroutes; i++) {
        const bic_route *r = &bic_routes[i];
        assert_true(r->method < M__MAX);
        assert_true(r->role < ROLE__MAX);
        assert_non_null(r->handler);
        assert_non_null(r->summary);
        assert_true(strlen(r->summary) > 0);
        /*
         * /metrics is outside the API prefix, where scrapers expect it; /_bic/console-check is
         * nginx's internal auth_request location, unreachable from outside
         */
        if (strncmp(r->path, "/api/v1/", 8) && strcmp(r->path, "/metrics") &&
            strcmp(r->path, "/_bic/console-check"))
            test_fail("%s is not under /api/v1/", r->path);
        size_t n = strlen(r->path);
        if (r->path[n - 1] == '/') test_fail("%s ends with a slash", r->path);
        /* each {name} is a whole, non-empty segment, at most BIC_MAX_PATH_PARAMS of them */
        size_t params = 0;
        for (const char *p = r->path; *p; p++) {
            if (*p == '}') test_fail("%s: unbalanced '}'", r->path);
            if (*p != '{') continue;
            const char *end = strchr(p, '}');
            if (!end || end == p + 1) test_fail("%s: bad parameter", r->path);
            if (p[-1] != '/' || (end[1] != '/' && end[1] != '\0'))
                test_fail("%s: a parameter must be a whole segment", r->path);
            params++;
            p = end;
        }
        assert_true(params <= BIC_MAX_PATH_PARAMS);
    }
}

static void every_route_is_reached_by_its_own_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < bic_nroutes; i++) {
        const bic_route *want = &bic_routes[i];
        char path[256], allow[64];
        concrete(want->path, path, sizeof(path), NULL);
        bic_err why;
        const bic_route *r = match(want->method, path, &why, allow, sizeof(allow));
        if (r != want)
            test_fail("%s %s is reached as %s (shadowed by %s)", method_name(want->method), path,
                      want->path, r ? r->path : "nothing");
    }
}

static void path_parameters_are_extracted_in_order(void **state)
{
    (void)state;
    size_t tested = 0;
    for (size_t i = 0; i < bic_nroutes; i++) {
        const bic_route *want = &bic_routes[i];
        if (!strchr(want->path, '{')) continue;
        char path[256], allow[64];
        size_t n;
        concrete(want->path, path, sizeof(path), &n);
        bic_err why;
        const bic_route *r = match(want->method, path, &why, allow, sizeof(allow));
        assert_ptr_equal(r, want);
        assert_int_equal(req.nparams, n);
        for (size_t k = 0; k < n; k++) {
            char v[32];
            snprintf(v, sizeof(v), "v%zu", k);
            assert_non_null(req.param[k]);
            assert_string_equal(req.param[k], v);
        }
        /* the values are copies, not pointers into the caller's path */
        memset(path, 'X', strlen(path));
        for (size_t k = 0; k < n; k++)
            assert_int_equal(req.param[k][0], 'v');
        tested++;
    }
    if (!tested) {
        print_message("# no route with a {parameter} in the table yet\n");
        skip();
    }
}

/* Replaces the first {x} of pat with value. */
static void with_first_param(const char *pat, const char *value, char *out, size_t len)
{
    const char *b = strchr(pat, '{'), *e = strchr(pat, '}');
    assert_non_null(b);
    assert_non_null(e);
    char rest[256];
    concrete(e + 1, rest, sizeof(rest), NULL);
    int n = snprintf(out, len, "%.*s%s%s", (int)(b - pat), pat, value, rest);
    assert_true(n > 0 && (size_t)n < len);
}

static void parameters_are_single_non_empty_segments(void **state)
{
    (void)state;
    size_t tested = 0;
    for (size_t i = 0; i < bic_nroutes; i++) {
        const bic_route *want = &bic_routes[i];
        if (!strchr(want->path, '{')) continue;
        const char *bad[] = {"", "a/b", "a/"};
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            char path[256], allow[64];
            with_first_param(want->path, bad[k], path, sizeof(path));
            bic_err why;
            const bic_route *r = match(want->method, path, &why, allow, sizeof(allow));
            if (r == want) test_fail("'%s' matched %s", path, want->path);
            if (r)
                for (size_t p = 0; p < req.nparams; p++)
                    if (!*req.param[p] || strchr(req.param[p], '/'))
                        test_fail("'%s' gave parameter '%s'", path, req.param[p]);
        }
        tested++;
    }
    if (!tested) {
        print_message("# no route with a {parameter} in the table yet\n");
        skip();
    }
}

static void parameter_values_may_hold_any_segment_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < bic_nroutes; i++) {
        const bic_route *want = &bic_routes[i];
        if (!strchr(want->path, '{')) continue;
        char path[256], allow[64];
        with_first_param(want->path, "12345678901234567890%41.x", path, sizeof(path));
        bic_err why;
        const bic_route *r = match(want->method, path, &why, allow, sizeof(allow));
        if (r != want) continue; /* a literal sibling route may take it; fine */
        assert_string_equal(req.param[0], "12345678901234567890%41.x");
        return;
    }
    print_message("# no route with a {parameter} in the table yet\n");
    skip();
}

static void allow_lists_every_method_of_the_path_once(void **state)
{
    (void)state;
    size_t tested = 0;
    for (size_t i = 0; i < bic_nroutes; i++) {
        char path[256];
        concrete(bic_routes[i].path, path, sizeof(path), NULL);
        /* the methods the table serves for this concrete path */
        bool served[M__MAX] = {false};
        for (size_t j = 0; j < bic_nroutes; j++) {
            bic_req probe = {0};
            probe.arena = req.arena;
            bic_err w;
            char a[64];
            if (route_match(&probe, bic_routes[j].method, path, &w, a, sizeof(a)) == &bic_routes[j])
                served[bic_routes[j].method] = true;
        }
        int other = -1;
        for (int m = 0; m < M__MAX; m++)
            if (!served[m]) other = m;
        if (other < 0) continue;
        char allow[64];
        bic_err why;
        assert_null(match((bic_method)other, path, &why, allow, sizeof(allow)));
        assert_int_equal(why, BIC_E_METHOD_NOT_ALLOWED);
        /* allow is "A, B, C": every served method exactly once, nothing else */
        int count[M__MAX] = {0};
        char copy[64];
        snprintf(copy, sizeof(copy), "%s", allow);
        for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t;
             t = strtok_r(NULL, ", ", &save)) {
            bic_method m = method_parse(t);
            if (m == M__MAX) test_fail("%s: Allow '%s' holds '%s'", path, allow, t);
            count[m]++;
        }
        for (int m = 0; m < M__MAX; m++)
            if (count[m] != (served[m] ? 1 : 0))
                test_fail("%s: Allow '%s' lists %s %d times", path, allow,
                          method_name((bic_method)m), count[m]);
        tested++;
    }
    assert_true(tested > 0);
}

static void allow_never_overflows_a_small_buffer(void **state)
{
    (void)state;
    for (size_t len = 1; len < 12; len++) {
        char *allow = malloc(len); /* exact size, so ASan sees any overflow */
        assert_non_null(allow);
        bic_err why;
        assert_null(route_match(&req, M__MAX, "/api/v1/health", &why, allow, len));
        assert_int_equal(why, BIC_E_METHOD_NOT_ALLOWED);
        assert_true(strlen(allow) < len);
        free(allow);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(get_health_matches_the_health_route, setup, teardown),
        cmocka_unit_test_setup_teardown(post_to_health_is_method_not_allowed_with_allow_get, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unsupported_method_on_a_known_path_is_method_not_allowed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_paths_are_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(trailing_slash_and_prefix_paths_do_not_match, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(trailing_slash_on_every_route_does_not_match, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(method_parse_knows_exactly_the_served_methods, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(routes_json_has_one_entry_per_route_with_its_fields, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(no_two_routes_share_method_and_path, setup, teardown),
        cmocka_unit_test_setup_teardown(get_routes_take_no_body_and_other_methods_declare_a_limit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(routes_with_a_field_table_accept_a_body, setup, teardown),
        cmocka_unit_test_setup_teardown(route_declarations_are_well_formed, setup, teardown),
        cmocka_unit_test_setup_teardown(every_route_is_reached_by_its_own_path, setup, teardown),
        cmocka_unit_test_setup_teardown(path_parameters_are_extracted_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(parameters_are_single_non_empty_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(parameter_values_may_hold_any_segment_text, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(allow_lists_every_method_of_the_path_once, setup, teardown),
        cmocka_unit_test_setup_teardown(allow_never_overflows_a_small_buffer, setup, teardown),
    };
    return cmocka_run_group_tests_name("routes", tests, NULL, NULL);
}

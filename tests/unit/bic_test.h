/*
 * bic_test.h - shared includes and helpers for the cmocka unit tests.
 *
 * Each tests/unit/test_*.c is its own binary (see the Makefile). The runner
 * sets BIC_REPO to the repository root and runs from there; `make unit` runs
 * from the root without it, so "." is the fallback.
 */
#ifndef BIC_TEST_H
#define BIC_TEST_H

/* cmocka needs these before its own header */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* fcgi/http.h defines its own fail(req, code, ...); use test_fail() or _fail() here */
#undef fail

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Fails the current test with a printf-style message. cmocka's fail_msg()
 * expands to fail(), which fcgi/http.h redefines for handlers.
 */
#define test_fail(...)                                                                             \
    do {                                                                                           \
        print_error("ERROR: " __VA_ARGS__);                                                        \
        print_error("\n");                                                                         \
        _fail(__FILE__, __LINE__);                                                                 \
    } while (0)

static inline const char *test_repo_root(void)
{
    const char *r = getenv("BIC_REPO");
    return r && *r ? r : ".";
}

/* Writes <repo>/tests/fixtures/<name> into buf and returns buf. */
static inline const char *test_fixture(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/tests/fixtures/%s", test_repo_root(), name);
    return buf;
}

/* True when haystack contains needle (both may be NULL: false). */
static inline int test_contains(const char *haystack, const char *needle)
{
    return haystack && needle && strstr(haystack, needle) != NULL;
}

#endif

/*
 * test_agent_nonce.c - agent/ag_nonce.c: the replay cache of task nonces.
 */
#include "bic_test.h"

#include <pthread.h>

#include "ag_nonce.h"

static void new_nonce_is_recorded_and_second_use_is_seen(void **state)
{
    (void)state;
    ag_nonces *n = ag_nonces_new(600, 100);
    assert_int_equal(ag_nonces_add(n, "aaaaaaaaaaaaaaaaaaaaaa", 1000), AG_NONCE_NEW);
    assert_int_equal(ag_nonces_add(n, "aaaaaaaaaaaaaaaaaaaaaa", 1001), AG_NONCE_SEEN);
    assert_int_equal(ag_nonces_add(n, "bbbbbbbbbbbbbbbbbbbbbb", 1001), AG_NONCE_NEW);
    assert_int_equal(ag_nonces_count(n), 2);
    ag_nonces_free(n);
}

static void nonce_is_forgotten_after_the_window_and_not_before(void **state)
{
    (void)state;
    ag_nonces *n = ag_nonces_new(600, 100);
    assert_int_equal(ag_nonces_add(n, "cccccccccccccccccccccc", 1000), AG_NONCE_NEW);
    assert_int_equal(ag_nonces_add(n, "cccccccccccccccccccccc", 1599), AG_NONCE_SEEN);
    assert_int_equal(ag_nonces_add(n, "cccccccccccccccccccccc", 1600), AG_NONCE_NEW);
    /* the re-recorded nonce counts from 1600 */
    assert_int_equal(ag_nonces_add(n, "cccccccccccccccccccccc", 2199), AG_NONCE_SEEN);
    ag_nonces_free(n);
}

static void expired_entries_are_pruned(void **state)
{
    (void)state;
    ag_nonces *n = ag_nonces_new(600, 1000);
    char buf[32];
    for (int i = 0; i < 50; i++) {
        snprintf(buf, sizeof(buf), "nonce-%04d-xxxxxxxxxxxx", i);
        assert_int_equal(ag_nonces_add(n, buf, 1000 + i), AG_NONCE_NEW);
    }
    assert_int_equal(ag_nonces_count(n), 50);
    /* at 1625, entries seen at 1000..1025 are older than 600 s */
    assert_int_equal(ag_nonces_add(n, "late-nonce-xxxxxxxxxxxxx", 1625), AG_NONCE_NEW);
    assert_int_equal(ag_nonces_count(n), 50 - 26 + 1);
    ag_nonces_free(n);
}

static void full_cache_refuses_instead_of_forgetting(void **state)
{
    (void)state;
    ag_nonces *n = ag_nonces_new(600, 3);
    assert_int_equal(ag_nonces_add(n, "n1-xxxxxxxxxxxxxxxxxxxx", 10), AG_NONCE_NEW);
    assert_int_equal(ag_nonces_add(n, "n2-xxxxxxxxxxxxxxxxxxxx", 10), AG_NONCE_NEW);
    assert_int_equal(ag_nonces_add(n, "n3-xxxxxxxxxxxxxxxxxxxx", 10), AG_NONCE_NEW);
    assert_int_equal(ag_nonces_add(n, "n4-xxxxxxxxxxxxxxxxxxxx", 11), AG_NONCE_FULL);
    /* a replay is still recognised as one when full */
    assert_int_equal(ag_nonces_add(n, "n1-xxxxxxxxxxxxxxxxxxxx", 11), AG_NONCE_SEEN);
    /* room again once the old ones expire */
    assert_int_equal(ag_nonces_add(n, "n4-xxxxxxxxxxxxxxxxxxxx", 610), AG_NONCE_NEW);
    ag_nonces_free(n);
}

struct racer {
    ag_nonces *n;
    int wins;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    char buf[40];
    for (int i = 0; i < 500; i++) {
        snprintf(buf, sizeof(buf), "shared-nonce-%04d-xxxxxx", i);
        if (ag_nonces_add(r->n, buf, 5000) == AG_NONCE_NEW) r->wins++;
    }
    return NULL;
}

static void concurrent_adds_accept_each_nonce_once(void **state)
{
    (void)state;
    ag_nonces *n = ag_nonces_new(600, 10000);
    struct racer r[4] = {{n, 0}, {n, 0}, {n, 0}, {n, 0}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, race, &r[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(r[0].wins + r[1].wins + r[2].wins + r[3].wins, 500);
    ag_nonces_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_nonce_is_recorded_and_second_use_is_seen),
        cmocka_unit_test(nonce_is_forgotten_after_the_window_and_not_before),
        cmocka_unit_test(expired_entries_are_pruned),
        cmocka_unit_test(full_cache_refuses_instead_of_forgetting),
        cmocka_unit_test(concurrent_adds_accept_each_nonce_once),
    };
    return cmocka_run_group_tests_name("agent_nonce", tests, NULL, NULL);
}

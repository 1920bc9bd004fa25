/*
 * test_arena.c - fcgi/arena.c: the per-request arena and its deferred cleanups.
 */
#include "bic_test.h"

#include <stdalign.h>

#include "arena.h"

static int aligned(const void *p)
{
    return ((uintptr_t)p % alignof(max_align_t)) == 0;
}

static void alloc_is_aligned_for_max_align_t_for_every_size(void **state)
{
    (void)state;
    bic_arena *a = arena_new(256);
    assert_non_null(a);
    for (size_t n = 0; n < 300; n++) {
        void *p = arena_alloc(a, n);
        assert_non_null(p);
        assert_true(aligned(p));
    }
    arena_free(a);
}

static void alloc_of_zero_bytes_returns_distinct_usable_pointers(void **state)
{
    (void)state;
    bic_arena *a = arena_new(0);
    char *p = arena_alloc(a, 0);
    char *q = arena_alloc(a, 0);
    assert_non_null(p);
    assert_non_null(q);
    assert_ptr_not_equal(p, q);
    arena_free(a);
}

static void alloc_returns_zeroed_memory(void **state)
{
    (void)state;
    bic_arena *a = arena_new(128);
    for (int round = 0; round < 20; round++) {
        unsigned char *p = arena_alloc(a, 100);
        for (size_t i = 0; i < 100; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xAB, 100);
    }
    arena_free(a);
}

static void memory_reused_after_reset_is_zeroed_again(void **state)
{
    (void)state;
    bic_arena *a = arena_new(512);
    unsigned char *p = arena_alloc(a, 200);
    memset(p, 0xCD, 200);
    arena_reset(a);
    unsigned char *q = arena_alloc(a, 200);
    assert_ptr_equal(p, q); /* the default-size chunk is kept and reused */
    for (size_t i = 0; i < 200; i++)
        assert_int_equal(q[i], 0);
    arena_free(a);
}

static void allocations_never_overlap_across_chunks(void **state)
{
    (void)state;
    bic_arena *a = arena_new(64);
    enum { N = 200, SZ = 40 };
    unsigned char *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = arena_alloc(a, SZ);
        memset(blocks[i], i & 0xff, SZ);
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < SZ; j++)
            assert_int_equal(blocks[i][j], i & 0xff);
    arena_free(a);
}

static void allocation_larger_than_chunk_size_is_fully_usable(void **state)
{
    (void)state;
    bic_arena *a = arena_new(64);
    (void)arena_alloc(a, 8);
    unsigned char *big = arena_alloc(a, 10000);
    assert_true(aligned(big));
    memset(big, 0x5A, 10000); /* ASan would flag a short chunk */
    assert_int_equal(big[9999], 0x5A);
    assert_true(arena_bytes(a) >= 10000 + 64);
    /* small allocations still work after a big one */
    char *s = arena_strdup(a, "after");
    assert_string_equal(s, "after");
    assert_int_equal(big[0], 0x5A);
    arena_free(a);
}

static void reset_keeps_one_default_chunk_and_frees_the_rest(void **state)
{
    (void)state;
    bic_arena *a = arena_new(64);
    assert_int_equal(arena_bytes(a), 0);
    (void)arena_alloc(a, 8);
    assert_int_equal(arena_bytes(a), 64);
    (void)arena_alloc(a, 5000);
    (void)arena_alloc(a, 48);
    assert_true(arena_bytes(a) >= 64 + 5000);
    arena_reset(a);
    assert_int_equal(arena_bytes(a), 64);
    /* and the kept chunk serves the next request without growing */
    (void)arena_alloc(a, 32);
    assert_int_equal(arena_bytes(a), 64);
    arena_free(a);
}

static void reset_of_arena_that_only_held_a_large_chunk_releases_it(void **state)
{
    (void)state;
    bic_arena *a = arena_new(64);
    (void)arena_alloc(a, 4096);
    assert_true(arena_bytes(a) >= 4096);
    arena_reset(a);
    assert_int_equal(arena_bytes(a), 0);
    char *s = arena_strdup(a, "still usable");
    assert_string_equal(s, "still usable");
    arena_free(a);
}

static void arena_bytes_counts_whole_chunks(void **state)
{
    (void)state;
    bic_arena *a = arena_new(1024);
    assert_int_equal(arena_bytes(a), 0);
    (void)arena_alloc(a, 1);
    assert_int_equal(arena_bytes(a), 1024);
    (void)arena_alloc(a, 1000); /* does not fit in what is left */
    assert_int_equal(arena_bytes(a), 2048);
    arena_free(a);
}

static void default_chunk_size_is_used_when_zero_is_given(void **state)
{
    (void)state;
    bic_arena *a = arena_new(0);
    (void)arena_alloc(a, 1);
    assert_true(arena_bytes(a) >= 1024);
    arena_free(a);
}

static void strdup_copies_and_null_stays_null(void **state)
{
    (void)state;
    bic_arena *a = arena_new(0);
    char src[] = "hello arena";
    char *s = arena_strdup(a, src);
    assert_string_equal(s, "hello arena");
    assert_ptr_not_equal(s, src);
    src[0] = 'J';
    assert_string_equal(s, "hello arena");
    assert_null(arena_strdup(a, NULL));
    assert_string_equal(arena_strdup(a, ""), "");
    arena_free(a);
}

static void strndup_copies_n_bytes_and_terminates(void **state)
{
    (void)state;
    bic_arena *a = arena_new(0);
    const char *src = "/api/v1/users/42";
    char *s = arena_strndup(a, src, 7);
    assert_string_equal(s, "/api/v1");
    assert_int_equal(strlen(s), 7);
    char *e = arena_strndup(a, src, 0);
    assert_string_equal(e, "");
    arena_free(a);
}

static void printf_formats_into_the_arena(void **state)
{
    (void)state;
    bic_arena *a = arena_new(64);
    char *s = arena_printf(a, "%s-%d-%05.1f", "req", 42, 3.25);
    assert_string_equal(s, "req-42-003.2");
    char *e = arena_printf(a, "%s", "");
    assert_string_equal(e, "");
    arena_free(a);
}

static void printf_output_longer_than_a_chunk_is_complete(void **state)
{
    (void)state;
    bic_arena *a = arena_new(64);
    char *s = arena_printf(a, "%0*d|%s", 3000, 7, "end");
    assert_int_equal(strlen(s), 3004);
    assert_int_equal(s[0], '0');
    assert_string_equal(s + 2999, "7|end");
    arena_free(a);
}

/* Records the order in which cleanups run. */
static int cleanup_log[16];
static int cleanup_n;

static void record_cleanup(void *p)
{
    assert_true(cleanup_n < 16);
    cleanup_log[cleanup_n++] = *(int *)p;
}

static void defer_runs_cleanups_at_reset_newest_first_exactly_once(void **state)
{
    (void)state;
    static int ids[] = {1, 2, 3};
    cleanup_n = 0;
    bic_arena *a = arena_new(0);
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(arena_defer(a, record_cleanup, &ids[i]), &ids[i]);
    assert_int_equal(cleanup_n, 0); /* nothing runs before the reset */
    arena_reset(a);
    assert_int_equal(cleanup_n, 3);
    assert_int_equal(cleanup_log[0], 3);
    assert_int_equal(cleanup_log[1], 2);
    assert_int_equal(cleanup_log[2], 1);
    arena_reset(a); /* a second reset must not run them again */
    assert_int_equal(cleanup_n, 3);
    arena_free(a);
    assert_int_equal(cleanup_n, 3);
}

static void defer_of_null_registers_nothing(void **state)
{
    (void)state;
    cleanup_n = 0;
    bic_arena *a = arena_new(0);
    assert_null(arena_defer(a, record_cleanup, NULL));
    arena_reset(a);
    assert_int_equal(cleanup_n, 0);
    arena_free(a);
}

static void free_runs_pending_cleanups(void **state)
{
    (void)state;
    static int id = 7;
    cleanup_n = 0;
    bic_arena *a = arena_new(0);
    arena_defer(a, record_cleanup, &id);
    arena_free(a);
    assert_int_equal(cleanup_n, 1);
    assert_int_equal(cleanup_log[0], 7);
}

static void cleanups_registered_after_reset_belong_to_the_next_reset(void **state)
{
    (void)state;
    static int ids[] = {10, 20};
    cleanup_n = 0;
    bic_arena *a = arena_new(64);
    arena_defer(a, record_cleanup, &ids[0]);
    arena_reset(a);
    arena_defer(a, record_cleanup, &ids[1]);
    arena_reset(a);
    assert_int_equal(cleanup_n, 2);
    assert_int_equal(cleanup_log[0], 10);
    assert_int_equal(cleanup_log[1], 20);
    arena_free(a);
}

static int frees;

static void counting_free(void *p)
{
    frees++;
    free(p);
}

static void defer_releases_heap_objects(void **state)
{
    (void)state;
    frees = 0;
    bic_arena *a = arena_new(64); /* small chunks: the records span many chunks */
    for (int i = 0; i < 100; i++) {
        void *p = malloc(32);
        assert_non_null(p);
        arena_defer(a, counting_free, p);
    }
    arena_reset(a);
    assert_int_equal(frees, 100); /* LeakSanitizer also checks at exit */
    arena_free(a);
    assert_int_equal(frees, 100);
}

static void free_of_null_is_harmless(void **state)
{
    (void)state;
    arena_free(NULL);
    bic_arena *a = arena_new(0);
    assert_non_null(a);
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(alloc_is_aligned_for_max_align_t_for_every_size),
        cmocka_unit_test(alloc_of_zero_bytes_returns_distinct_usable_pointers),
        cmocka_unit_test(alloc_returns_zeroed_memory),
        cmocka_unit_test(memory_reused_after_reset_is_zeroed_again),
        cmocka_unit_test(allocations_never_overlap_across_chunks),
        cmocka_unit_test(allocation_larger_than_chunk_size_is_fully_usable),
        cmocka_unit_test(reset_keeps_one_default_chunk_and_frees_the_rest),
        cmocka_unit_test(reset_of_arena_that_only_held_a_large_chunk_releases_it),
        cmocka_unit_test(arena_bytes_counts_whole_chunks),
        cmocka_unit_test(default_chunk_size_is_used_when_zero_is_given),
        cmocka_unit_test(strdup_copies_and_null_stays_null),
        cmocka_unit_test(strndup_copies_n_bytes_and_terminates),
        cmocka_unit_test(printf_formats_into_the_arena),
        cmocka_unit_test(printf_output_longer_than_a_chunk_is_complete),
        cmocka_unit_test(defer_runs_cleanups_at_reset_newest_first_exactly_once),
        cmocka_unit_test(defer_of_null_registers_nothing),
        cmocka_unit_test(free_runs_pending_cleanups),
        cmocka_unit_test(cleanups_registered_after_reset_belong_to_the_next_reset),
        cmocka_unit_test(defer_releases_heap_objects),
        cmocka_unit_test(free_of_null_is_harmless),
    };
    return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}

/*
 * arena.h - per-request memory arena with deferred cleanups.
 *
 * Everything a request allocates comes from its arena and is released at once
 * by arena_reset() after the response is written. Resources that are not arena
 * memory (jansson objects, tokens) are handed to the arena with arena_defer();
 * their cleanup runs at reset, newest first. Not thread-safe: one per worker.
 */
#ifndef BIC_ARENA_H
#define BIC_ARENA_H

#include <stddef.h>

typedef struct bic_arena bic_arena;

/* Returns an owned arena, or NULL when out of memory. */
bic_arena *arena_new(size_t chunk_size);
void arena_free(bic_arena *a);
/* Runs deferred cleanups (newest first) and forgets every allocation. */
void arena_reset(bic_arena *a);

/* Allocates n zeroed bytes aligned for any type; aborts on out-of-memory. */
void *arena_alloc(bic_arena *a, size_t n);
char *arena_strdup(bic_arena *a, const char *s);
char *arena_strndup(bic_arena *a, const char *s, size_t n);
/* Copies exactly n bytes (binary-safe) and adds a NUL after them. */
char *arena_memdup(bic_arena *a, const void *s, size_t n);
char *arena_printf(bic_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Registers fn(ptr) to run at the next reset. Returns ptr for chaining. */
void *arena_defer(bic_arena *a, void (*fn)(void *), void *ptr);

/* Bytes currently held in chunks (for tests and metrics). */
size_t arena_bytes(const bic_arena *a);

#endif

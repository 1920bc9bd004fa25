#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chunk {
    struct chunk *next;
    size_t size, used;
    max_align_t data[];
};

struct cleanup {
    struct cleanup *next;
    void (*fn)(void *);
    void *ptr;
};

struct bic_arena {
    struct chunk *head;
    struct cleanup *cleanups;
    size_t chunk_size;
};

static void oom(void)
{
    fputs("bic: out of memory\n", stderr);
    abort();
}

bic_arena *arena_new(size_t chunk_size)
{
    bic_arena *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->chunk_size = chunk_size ? chunk_size : 16384;
    return a;
}

static void free_chunks(struct chunk *c, struct chunk *keep)
{
    while (c) {
        struct chunk *next = c->next;
        if (c != keep) free(c);
        c = next;
    }
}

void arena_reset(bic_arena *a)
{
    while (a->cleanups) {
        struct cleanup *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->ptr); /* cleanup records live in the arena: freed with the chunks */
    }
    /* Keep the oldest chunk (the tail) for reuse if it is of the default size. */
    struct chunk *tail = a->head;
    while (tail && tail->next)
        tail = tail->next;
    if (tail && tail->size == a->chunk_size) {
        free_chunks(a->head, tail);
        tail->used = 0;
        tail->next = NULL;
        a->head = tail;
    } else {
        free_chunks(a->head, NULL);
        a->head = NULL;
    }
}

void arena_free(bic_arena *a)
{
    if (!a) return;
    arena_reset(a);
    free_chunks(a->head, NULL);
    free(a);
}

void *arena_alloc(bic_arena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    if (n > SIZE_MAX - align) oom();
    n = (n + align - 1) / align * align;
    if (n == 0) n = align;
    struct chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > a->chunk_size ? n : a->chunk_size;
        c = malloc(sizeof(*c) + size);
        if (!c) oom();
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *arena_strndup(bic_arena *a, const char *s, size_t n)
{
    n = strnlen(s, n); /* like strndup(3): stop at a NUL */
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_memdup(bic_arena *a, const void *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(bic_arena *a, const char *s)
{
    return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

char *arena_printf(bic_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void *arena_defer(bic_arena *a, void (*fn)(void *), void *ptr)
{
    if (!ptr) return NULL;
    struct cleanup *c = arena_alloc(a, sizeof(*c));
    c->fn = fn;
    c->ptr = ptr;
    c->next = a->cleanups;
    a->cleanups = c;
    return ptr;
}

size_t arena_bytes(const bic_arena *a)
{
    size_t n = 0;
    for (const struct chunk *c = a->head; c; c = c->next)
        n += c->size;
    return n;
}

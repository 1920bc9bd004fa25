#include "ag_sched.h"

#include <stdlib.h>

#define NOT_QUEUED ((size_t)-1)

struct ag_sched {
    size_t n, count;
    size_t *heap;   /* items, heap[0] the earliest */
    size_t *pos;    /* pos[item]: index in heap, or NOT_QUEUED */
    long long *due; /* due[item] */
};

ag_sched *ag_sched_new(size_t n)
{
    ag_sched *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->n = n;
    s->heap = calloc(n ? n : 1, sizeof(*s->heap));
    s->pos = malloc((n ? n : 1) * sizeof(*s->pos));
    s->due = calloc(n ? n : 1, sizeof(*s->due));
    if (!s->heap || !s->pos || !s->due) {
        ag_sched_free(s);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        s->pos[i] = NOT_QUEUED;
    return s;
}

void ag_sched_free(ag_sched *s)
{
    if (!s) return;
    free(s->heap);
    free(s->pos);
    free(s->due);
    free(s);
}

/* True when item a comes before item b. */
static int before(const ag_sched *s, size_t a, size_t b)
{
    return s->due[a] < s->due[b] || (s->due[a] == s->due[b] && a < b);
}

static void place(ag_sched *s, size_t at, size_t item)
{
    s->heap[at] = item;
    s->pos[item] = at;
}

static void sift_up(ag_sched *s, size_t at)
{
    size_t item = s->heap[at];
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        if (!before(s, item, s->heap[parent])) break;
        place(s, at, s->heap[parent]);
        at = parent;
    }
    place(s, at, item);
}

static void sift_down(ag_sched *s, size_t at)
{
    size_t item = s->heap[at];
    for (;;) {
        size_t child = 2 * at + 1;
        if (child >= s->count) break;
        if (child + 1 < s->count && before(s, s->heap[child + 1], s->heap[child])) child++;
        if (!before(s, s->heap[child], item)) break;
        place(s, at, s->heap[child]);
        at = child;
    }
    place(s, at, item);
}

void ag_sched_put(ag_sched *s, size_t item, long long due)
{
    if (item >= s->n) return;
    if (s->pos[item] == NOT_QUEUED) {
        s->due[item] = due;
        place(s, s->count++, item);
        sift_up(s, s->count - 1);
        return;
    }
    long long old = s->due[item];
    s->due[item] = due;
    if (due < old)
        sift_up(s, s->pos[item]);
    else
        sift_down(s, s->pos[item]);
}

int ag_sched_earlier(ag_sched *s, size_t item, long long due)
{
    if (item >= s->n || s->pos[item] == NOT_QUEUED || s->due[item] <= due) return 0;
    s->due[item] = due;
    sift_up(s, s->pos[item]);
    return 1;
}

long ag_sched_peek(const ag_sched *s, long long *due)
{
    if (!s->count) return -1;
    if (due) *due = s->due[s->heap[0]];
    return (long)s->heap[0];
}

long ag_sched_pop(ag_sched *s)
{
    if (!s->count) return -1;
    size_t top = s->heap[0];
    s->pos[top] = NOT_QUEUED;
    if (--s->count) {
        place(s, 0, s->heap[s->count]);
        sift_down(s, 0);
    }
    return (long)top;
}

int ag_sched_queued(const ag_sched *s, size_t item)
{
    return item < s->n && s->pos[item] != NOT_QUEUED;
}

size_t ag_sched_count(const ag_sched *s)
{
    return s->count;
}

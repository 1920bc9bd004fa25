/*
 * ag_sched.h - when each of n items (0 .. n-1) is due next: a binary min-heap
 * ordered by (due, item), with the position of every item kept so that an
 * item can be moved earlier or taken out. Not thread-safe: the owner locks.
 *
 * The fleet (ag_fleet.c) keeps its agents here: a stepper thread pops the
 * earliest due agent, steps it, and puts it back at the time the step asked for.
 */
#ifndef BIC_AG_SCHED_H
#define BIC_AG_SCHED_H

#include <stddef.h>

typedef struct ag_sched ag_sched;

/* A schedule for items 0 .. n-1, none queued. NULL when out of memory. */
ag_sched *ag_sched_new(size_t n);
void ag_sched_free(ag_sched *s);

/* Queues item at due, or moves it there when it is queued already. */
void ag_sched_put(ag_sched *s, size_t item, long long due);

/*
 * Moves a queued item to due when that is earlier than its time. Returns 1
 * when it moved, 0 when it was not queued or already due by then.
 */
int ag_sched_earlier(ag_sched *s, size_t item, long long due);

/* The earliest item (ties: the lowest number) and its time, or -1 when none is queued. */
long ag_sched_peek(const ag_sched *s, long long *due);

/* Takes the earliest item out and returns it, or -1 when none is queued. */
long ag_sched_pop(ag_sched *s);

/* True when item is queued. */
int ag_sched_queued(const ag_sched *s, size_t item);

/* Number of queued items. */
size_t ag_sched_count(const ag_sched *s);

#endif

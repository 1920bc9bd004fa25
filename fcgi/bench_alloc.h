/*
 * bench_alloc.h - `bicd bench-alloc`: the raw allocation rate of one hot pool, measured through
 * db.c (same connection settings, prepared statements and db_tx retries as the broker).
 */
#ifndef BIC_BENCH_ALLOC_H
#define BIC_BENCH_ALLOC_H

#include "config.h"

/*
 * argv[0] is "bench-alloc"; options --threads N (4), --seconds S (10), --rows R (10000).
 * Creates the scratch table bench_alloc (as the migration account), runs N threads (as the
 * runtime account) that each loop over one READ COMMITTED transaction: SELECT one free row
 * FOR UPDATE SKIP LOCKED, UPDATE it taken, COMMIT; when no free row is left, a thread frees
 * them all and goes on. Prints {"threads","seconds","allocations","per_s","p50_ms","p99_ms",
 * "resets","errors"} on one line and drops the table. Returns a process exit code.
 */
int bench_alloc_run(const bic_config *cfg, int argc, char **argv);

#endif

/*
 * bench_place.h - `bicd bench-place`: many placements of one pool at once, each in its own
 * transaction on its own connection, through the reconciler's placing code
 * (pools_place_one: server choice, SR-IOV VF reservation, desktop insert, MAC).
 *
 * The leader places one desktop at a time; this runs the same transaction from N threads
 * to show that the VF reservation holds under real concurrency (tests/api/test_sriov.py)
 * and to time placements (make bench).
 *
 * argv[0] is "bench-place"; options --pool ID (required), --count N (200), --threads T (N,
 * at most 256). Prints one JSON line: placed, sriov, virtio, refused, errors, seconds,
 * per_s and the first refusal. Exit 0 when every placement ended (placed or refused), 1 on
 * a database error.
 */
#ifndef BIC_BENCH_PLACE_H
#define BIC_BENCH_PLACE_H

#include "config.h"

int bench_place_run(const bic_config *cfg, int argc, char **argv);

#endif

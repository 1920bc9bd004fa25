/*
 * pools.h - platform groups (desktop pools), managed desktops and the reconciler.
 *
 * h_pools.c answers the API; reconcile.c is the leader's loop that turns pool
 * sizes and desktop phases into agent tasks (see docs/architecture.md, "Pools").
 */
#ifndef BIC_POOLS_H
#define BIC_POOLS_H

#include <stdbool.h>

#include "json.h"

struct bic_db;
struct bic_config;
struct bic_arena;
struct pl_server;
struct pl_rules;
struct pl_request;

extern const bic_field fields_pool_create[], fields_pool_update[], fields_pool_pause[];
extern const bic_field fields_desktop_spec[];

/* Capacity rules of the paper from the [pools] configuration. */
void pools_rules(const struct bic_config *cfg, struct pl_rules *out);

/*
 * Loads the placement input of every server in the modules bound to pool_id into
 * *out (arena array), n in *n, and the pool's module ids into *modules. BIC_E_OK or
 * the database error.
 */
bic_err pools_server_load(struct bic_db *db, struct bic_arena *a, long long pool_id, int per_gbps,
                          struct pl_server **out, size_t *n, long long **modules,
                          const char ***module_names, size_t *nmodules);

/*
 * placement_choose(), and when a request for a VF finds no server and the pool allows
 * the fallback, once more without the VF (a virtio NIC on the bridge): *fell_back says
 * so. why gets the refusal of the request as asked.
 */
long pools_choose(const struct pl_server *s, size_t n, struct pl_request *r,
                  const struct pl_rules *rules, bool fallback, bool *fell_back, char *why,
                  size_t len);

/*
 * One placement of pool_id's desktop number seq in its own transaction, exactly as the
 * reconciler places (server, VF reservation, insert, MAC), but without the pool lock:
 * `bicd bench-place` runs it from many threads at once. *id = the desktop, or 0 with the
 * refusal in *why (arena).
 */
bic_err pools_place_one(struct bic_db *db, struct bic_arena *a, const struct bic_config *cfg,
                        long long pool_id, long long seq, long long *id, const char **why);

/* Formats desktop number n with a pool's name pattern ("sales-{n:3}", 7 → "sales-007"). */
bool pools_format_name(const char *pattern, long long n, char *out, size_t len);

/*
 * The leader's reconciler pass: applies finished desktop tasks, sends the tasks
 * waiting desktops need, and brings every active pool to its size. holder names
 * this bicd in pools.reconciled_by.
 */
void reconcile_tick(struct bic_db *db, struct bic_arena *a, const struct bic_config *cfg,
                    const char *holder);

#endif

/*
 * broker.h - the connection broker (bCenter): desktop sessions, per-pool security
 * policies and one-time console tickets.
 *
 * h_broker.c answers the API (connect, sessions, policies, nginx's console check);
 * broker.c holds what the API and the leader share: ending a session, the
 * synchronous call that sets a desktop's VNC password on its agent, and the leader's
 * pass that applies the timeouts of the policies (docs/architecture.md, "Broker").
 */
#ifndef BIC_BROKER_H
#define BIC_BROKER_H

#include <stdbool.h>

#include "http.h"
#include "json.h"

struct bic_db;
struct bic_config;
struct bic_arena;

extern const bic_field fields_connect[], fields_power[], fields_activity[], fields_policy[];

/* A policy row selected with POLICY_COLS starting at column c. New reference. */
json_t *broker_policy_json(const bic_rows *r, size_t i, size_t c);

/* true when s is an IPv4 or IPv6 address with an optional /prefix in range. */
bool broker_cidr_valid(const char *s);

/*
 * Asks the agent at listen_url (server_id) to run a synchronous call (POST <url>/v1/call,
 * signed like a task) and waits at most cfg->broker_agent_timeout_ms. 0 with the
 * answer's "result" object in *result (new reference, may be NULL), or -1 with a
 * reason in err.
 */
int broker_agent_call(const struct bic_config *cfg, long long server_id, const char *listen_url,
                      const char *type, json_t *params, json_t **result, char *err, size_t errlen);

/* Writes 8 random characters of [A-Za-z0-9] and a NUL (a VNC password). 0 or -1. */
int broker_vnc_password(char out[9]);

/*
 * Ends session id (logged off for reason, by who): a floating desktop goes back to its
 * pool (refreshed when the pool says so); audited as session.logoff with req's actor.
 * Runs inside the caller's transaction (req->db). Sets
 * *kick to the desktop whose console must be closed (0: none, e.g. it is refreshed)
 * and *ended to whether the session was live.
 */
bic_err broker_end_session(bic_req *req, long long id, const char *reason, const char *by,
                           long long *kick, bool *ended);

/*
 * Closes every console of desktop_id now by giving the desktop a new random VNC
 * password with connected='disconnect'. Best effort: failures are logged.
 */
void broker_kick(struct bic_db *db, struct bic_arena *a, const struct bic_config *cfg,
                 long long desktop_id);

/* The leader's pass: marks lost consoles disconnected and applies policy timeouts. */
void broker_tick(struct bic_db *db, struct bic_arena *a, const struct bic_config *cfg);

#endif

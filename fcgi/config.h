/*
 * config.h - bicd configuration: an INI file (libinih) with environment overrides.
 *
 * Every key is declared once in BIC_CONFIG_KEYS with its section, type and
 * default. A key [section] name=value can be overridden by the environment
 * variable BIC_<SECTION>_<NAME> (upper case), e.g. BIC_DATABASE_SOCKET.
 */
#ifndef BIC_CONFIG_H
#define BIC_CONFIG_H

#include <stdbool.h>

/* X(section, name, type: STR|INT, default) ; the struct field is section_name */
#define BIC_CONFIG_KEYS(X)                                                                         \
    X(server, socket, STR, "/run/bic/bicd.sock")                                                   \
    X(server, socket_mode, INT, 0660)                                                              \
    X(server, threads, INT, 4)                                                                     \
    X(server, agent_socket, STR, "/run/bic/bicd-agent.sock")                                       \
    X(server, agent_threads, INT, 2)                                                               \
    X(server, backlog, INT, 1024)                                                                  \
    X(server, pidfile, STR, "")                                                                    \
    X(server, public_origin, STR, "")                                                              \
    X(database, host, STR, "")                                                                     \
    X(database, port, INT, 3306)                                                                   \
    X(database, socket, STR, "/run/mysqld/mysqld.sock")                                            \
    X(database, name, STR, "bic")                                                                  \
    X(database, user, STR, "bic")                                                                  \
    X(database, password, STR, "")                                                                 \
    X(database, connect_timeout, INT, 2)                                                           \
    X(database, io_timeout, INT, 5)                                                                \
    X(migrate, user, STR, "bic_migrate")                                                           \
    X(migrate, password, STR, "")                                                                  \
    X(migrate, dir, STR, "/usr/share/bic/sql")                                                     \
    X(log, access, STR, "")                                                                        \
    X(log, error, STR, "")                                                                         \
    X(auth, secret_file, STR, "/etc/bic/jwt.key")                                                  \
    X(auth, issuer, STR, "bic")                                                                    \
    X(auth, audience, STR, "bic-portal")                                                           \
    X(auth, access_ttl, INT, 900)                                                                  \
    X(auth, refresh_ttl, INT, 43200)                                                               \
    X(auth, argon2_memory_kib, INT, 19456)                                                         \
    X(auth, argon2_time, INT, 2)                                                                   \
    X(auth, argon2_lanes, INT, 1)                                                                  \
    X(auth, max_concurrent_hashes, INT, 0)                                                         \
    X(auth, lockout_threshold, INT, 5)                                                             \
    X(auth, lockout_base_seconds, INT, 30)                                                         \
    X(auth, lockout_max_seconds, INT, 900)                                                         \
    X(auth, sign_key_file, STR, "/etc/bic/ccc-sign.key")                                           \
    X(agents, heartbeat_interval, INT, 10)                                                         \
    X(agents, task_timeout, INT, 120)                                                              \
    X(agents, task_max_attempts, INT, 5)                                                           \
    X(agents, push_timeout_ms, INT, 5000)                                                          \
    X(agents, event_retention_days, INT, 30)                                                       \
    X(leader, lease_seconds, INT, 10)                                                              \
    X(leader, tick_ms, INT, 500)                                                                   \
    X(catalog, image_store, STR, "/var/lib/bic/images")                                            \
    X(pools, max_per_server, INT, 100)                                                             \
    X(pools, per_core, INT, 6)                                                                     \
    X(pools, per_gbps, INT, 50)                                                                    \
    X(pools, mem_overcommit_pct, INT, 150)                                                         \
    X(pools, host_reserve_mib, INT, 0)                                                             \
    X(pools, max_failures, INT, 5)                                                                 \
    X(pools, batch, INT, 200)                                                                      \
    X(broker, ticket_ttl, INT, 20)                                                                 \
    X(broker, client_grace, INT, 90)                                                               \
    X(broker, agent_timeout_ms, INT, 15000)                                                        \
    X(metrics, token, STR, "")                                                                     \
    X(metrics, networks, STR, "127.0.0.0/8, ::1/128")                                              \
    X(directory, sync_interval, INT, 900)                                                          \
    /* oidc: HTTPS to providers, cache of discovery and keys, sign-in state lifetime, clock */    \
    X(oidc, http_timeout_ms, INT, 5000)                                                            \
    X(oidc, cache_ttl, INT, 3600)                                                                  \
    X(oidc, state_ttl, INT, 600)                                                                   \
    X(oidc, clock_skew, INT, 60)                                                                   \
    /* recovery (issue 8, fcgi/recovery.c): */                                                    \
    /* power and balancing (issue 8, fcgi/power.c, fcgi/drs.c): */                                \
    X(power, tick_ms, INT, 2000)                                                                   \
    X(balance, tick_ms, INT, 2000)                                                                 \
    /* console and security limits (issue 12): */                                              \
    /* console tickets a user may mint per window (s); 0: no limit (docs/security.md) */        \
    X(security, ticket_rate, INT, 30)                                                              \
    X(security, ticket_rate_window, INT, 60)

#define BIC_CFG_TYPE_STR char *
#define BIC_CFG_TYPE_INT long

typedef struct bic_config {
#define BIC_X_FIELD(sec, name, type, def) BIC_CFG_TYPE_##type sec##_##name;
    BIC_CONFIG_KEYS(BIC_X_FIELD)
#undef BIC_X_FIELD
} bic_config;

/*
 * Fills cfg with defaults, then the file at path (NULL: defaults only), then the
 * environment. Returns 0, or -1 with a message in err (unknown key, bad number,
 * unreadable file). Strings are owned by cfg; release with config_free().
 */
int config_load(bic_config *cfg, const char *path, char *err, unsigned errlen);
void config_free(bic_config *cfg);

#endif

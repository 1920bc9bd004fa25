/*
 * fuzz_bicd.h - a bicd worker for fuzz targets: the default configuration, logs to
 * /dev/null, a fixed token key, and a database handle whose every statement fails at
 * once with "database unavailable" (its socket does not exist), so a handler runs its
 * input checks and stops at its first statement exactly as in a database outage.
 */
#ifndef BIC_FUZZ_BICD_H
#define BIC_FUZZ_BICD_H

#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "token.h"

#define FZ_TOKEN_KEY  "bic-fuzz-token-key-0123456789abcdef0123456789"
#define FZ_ISSUER     "bic"
#define FZ_AUDIENCE   "bic-portal"
#define FZ_NOW        1790000000L /* the clock of every verification: seeds are made for it */
#define FZ_HOST       "bic.test:443"
#define FZ_ORIGIN     "https://bic.test"

static bic_config fz_cfg;
static bic_db *fz_db;

static inline void fz_bicd_init(void)
{
    static int done;
    if (done) return;
    done = 1;
    char err[256];
    if (config_load(&fz_cfg, NULL, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        abort();
    }
    free(fz_cfg.database_host);
    fz_cfg.database_host = strdup("");
    free(fz_cfg.database_socket);
    fz_cfg.database_socket = strdup("/nonexistent/bic-fuzz/mysqld.sock");
    fz_cfg.database_connect_timeout = 1;
    if (log_open("/dev/null", "/dev/null") < 0) abort();
    if (token_init_key((const unsigned char *)FZ_TOKEN_KEY, strlen(FZ_TOKEN_KEY), FZ_ISSUER,
                       FZ_AUDIENCE) < 0)
        abort();
    fz_db = db_new(&fz_cfg, "bic", "fuzz");
    if (!fz_db) abort();
}

#endif

/*
 * server.h - the FastCGI server: worker threads, one request at a time each.
 */
#ifndef BIC_SERVER_H
#define BIC_SERVER_H

#include "config.h"

/*
 * Opens the unix socket from cfg, starts cfg->server_threads workers, serves
 * until SIGTERM or SIGINT, then finishes in-flight requests and returns 0.
 * Returns 1 when the socket cannot be opened.
 */
int server_run(const bic_config *cfg);

#endif

/*
 * controller.h - periodic work of the control plane, run by whichever bicd holds
 * the "controller" leader lease (a row in MariaDB, renewed every tick, taken over
 * by another bicd when it expires): pushing tasks to agents, retrying and
 * failing them, and marking servers offline after missed heartbeats.
 */
#ifndef BIC_CONTROLLER_H
#define BIC_CONTROLLER_H

#include <signal.h>
#include <stdbool.h>

#include "config.h"

/* Starts the controller thread; it ends when *stopping becomes non-zero and controller_stop() runs.
 */
void controller_start(const bic_config *cfg, volatile sig_atomic_t *stopping);
/* Waits for the thread and gives the lease up. */
void controller_stop(void);

#endif

/*
 * admin_cli.h - `bicd useradd`: create or reset a local account from the shell
 * (used by `make up` and the packages to create the first admin).
 */
#ifndef BIC_ADMIN_CLI_H
#define BIC_ADMIN_CLI_H

#include "config.h"

/* argv[0] is "useradd". Returns a process exit code. */
int admin_cli_useradd(const bic_config *cfg, int argc, char **argv);

#endif

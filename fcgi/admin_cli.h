/*
 * admin_cli.h - `bicd useradd`: create or reset a local account from the shell
 * (used by `make up` and the packages to create the first admin).
 */
#ifndef BIC_ADMIN_CLI_H
#define BIC_ADMIN_CLI_H

#include "config.h"

/* argv[0] is "useradd". Returns a process exit code. */
int admin_cli_useradd(const bic_config *cfg, int argc, char **argv);

/*
 * `bicd bench-argon2 [N]`: hashes N times (default 20) on one thread with the
 * configured cost and prints {"ms_per_hash", "cores", "concurrent_hashes",
 * "bound_logins_per_s"} -
 * the sign-in capacity this machine can reach at best. Used by `make bench`.
 */
int admin_cli_bench_argon2(const bic_config *cfg, int argc, char **argv);

#endif

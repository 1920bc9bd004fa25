/*
 * migrate.h - the schema migration runner.
 */
#ifndef BIC_MIGRATE_H
#define BIC_MIGRATE_H

#include "config.h"

/*
 * Applies every dir/NNN_name.sql whose number is not yet recorded in
 * schema_migrations, in order, as the migration account, holding a named lock
 * so two runners never interleave. Refuses to run when an applied file's
 * sha256 changed since it ran. Safe to run any number of times. Returns 0 or 1.
 */
int migrate_run(const bic_config *cfg, const char *dir);

#endif

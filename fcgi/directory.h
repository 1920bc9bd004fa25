/*
 * directory.h - LDAP / Active Directory sign-in and sync over the database: a directory's
 * settings from its row, signing a user in through his directory (found with the service
 * account, then a bind as him), creating and updating his BIC user and the memberships his
 * directory groups give, and the leader's scheduled sync. The LDAP side is dir_ldap.c, the
 * admin API h_directories.c. Design: docs/directories.md.
 */
#ifndef BIC_DIRECTORY_H
#define BIC_DIRECTORY_H

#include <stdbool.h>

#include "dir_ldap.h"
#include "http.h"

#define DIR_SYNC_BATCH 50 /* users one leader tick looks up in one directory */

/*
 * The directory of row i (DIR_CONN_COLS) into *out, its service account's password opened
 * (arena; wiped when the arena is reset). BIC_E_OK, or BIC_E_UNAVAILABLE (reported) when the
 * password does not open (was [auth] secret_file replaced?).
 */
bic_err dir_config_from(bic_req *req, const bic_rows *rows, size_t i, dir_config *out);

/*
 * Seals password for directory id (stored as bind_password_enc): *out (arena) and *n.
 * BIC_E_OK or BIC_E_UNAVAILABLE/INTERNAL (reported).
 */
bic_err dir_seal_password(bic_req *req, long long id, const char *password, unsigned char **out,
                          size_t *n);

/*
 * The BIC groups the mappings of directory dir_id give to a user in the directory groups of e.
 * *ids and *names (arena) get n distinct groups. BIC_E_OK or a reported database error.
 */
bic_err dir_mapped_groups(bic_req *req, long long dir_id, const dir_entry *e, long long **ids,
                          const char ***names, size_t *n);

/*
 * Sign-in through a directory, called by h_auth_login after the lock check and the lookup of
 * *username (rows: STMT_user_auth_by_name's answer, 0 or 1 row).
 *
 * *handled false: not a directory matter (a user with a local password, a non-directory user,
 * or an unknown name while no directory is enabled); the password path goes on.
 * *handled true: the directory decided. *ok true: the password was right, the user is not
 * disabled in the directory, and his BIC user was created or updated (display name, e-mail,
 * directory memberships); *rows then holds his row (STMT_user_auth_by_name's columns) and
 * *username his name as the directory spells it (lockout counts on that name). *ok false:
 * *why says why for the audit row ("unknown user", "wrong password", "disabled in the
 * directory", ...); a dummy password hash was spent so the answer takes as long as a local one.
 *
 * Errors (reported): BIC_E_UNAVAILABLE with reason "directory_unavailable" when the directory
 * cannot be reached or its settings do not work (the log says which and why); BIC_E_LOCKED when
 * the directory's spelling of the name is locked; database errors.
 */
bic_err dir_login(bic_req *req, bic_resp *resp, const char **username, const char *password,
                  bic_rows *rows, bool *handled, bool *ok, const char **why);

/*
 * Leader tick: the scheduled sync. When a directory is due ([directory] sync_interval, or its
 * own sync_interval) its users are looked up DIR_SYNC_BATCH per tick with the service account:
 * name, e-mail, disabled state and directory memberships are brought up to date; a user the
 * directory no longer has is marked disabled. Audited as "system". Never blocks longer than
 * the directory's timeout per server and operation.
 */
void dir_tick(bic_db *db, bic_arena *a, const bic_config *cfg);

#endif

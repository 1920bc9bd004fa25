/*
 * handlers.h - every route handler and body field table, declared from routes.def.
 * Handlers live in h_<resource>.c, one file per resource family.
 */
#ifndef BIC_HANDLERS_H
#define BIC_HANDLERS_H

#include "http.h"
#include "json.h"

/* field tables of the catalog and pool routes */
#include "catalog.h"
#include "pools.h"
#include "broker.h"

#define ROUTE(m, p, h, r, lim, f, s) bic_err h(bic_req *req, bic_resp *resp);
#include "routes.def"
#undef ROUTE

extern const bic_field fields_login[], fields_password_change[];
extern const bic_field fields_user_create[], fields_user_update[], fields_user_password[];
extern const bic_field fields_group[], fields_group_update[];
extern const bic_field fields_bb[], fields_bb_update[], fields_module[], fields_module_update[];
extern const bic_field fields_server_update[], fields_token[], fields_task[];
extern const bic_field fields_enroll[], fields_heartbeat[], fields_events[], fields_task_status[];

/* A server row selected with SERVER_COLS, with capacity by the paper's rules. New reference. */
json_t *server_json(bic_req *req, const bic_rows *r, size_t i);
/* A task row selected with TASK_COLS. New reference. */
json_t *task_json(bic_req *req, const bic_rows *r, size_t i);

/* A user row selected with USER_COLS as the API shows it. New reference. */
json_t *user_json(bic_req *req, const bic_rows *r, size_t i);

/* mfa */
#include "totp.h"
extern const bic_field fields_login_mfa[], fields_login_mfa_enroll[], fields_mfa_start[];
extern const bic_field fields_mfa_confirm[], fields_mfa_proof[], fields_group_mfa[];
#define MFA_CHALLENGE_TTL      300 /* seconds a sign-in's second step stays open */
#define MFA_CHALLENGE_ATTEMPTS 5   /* wrong codes one second step allows */
#define RECOVERY_CODE_SIZE     (RECOVERY_CODE_LEN + RECOVERY_CODE_LEN / 4) /* with dashes, NUL */
/* What a sign-in needs after the password: nothing, a code, or enrolment first. */
typedef enum { MFA_NONE, MFA_VERIFY, MFA_ENROLL } bic_mfa_step;
/* Outcome of checking a code or recovery code against the stored factor. */
typedef enum { MFA_OK, MFA_WRONG, MFA_REUSED, MFA_ABSENT } bic_mfa_check;
/* Sets *out for user_id: MFA_VERIFY with a confirmed TOTP, MFA_ENROLL when a group requires
 * MFA and there is none, else MFA_NONE. BIC_E_OK or a reported database error. */
bic_err mfa_step_for(bic_req *req, long long user_id, bic_mfa_step *out);
/* In the caller's transaction: a new second-step token for user_id (RANDOM_TOKEN_LEN chars
 * + NUL into token; only its sha256 is stored), valid MFA_CHALLENGE_TTL seconds. */
bic_err mfa_challenge_create(bic_req *req, bic_db *db, long long user_id, bic_mfa_step step,
                             char *token);
/* Looks up an open second step by its token: one row (0 id, 1 user_id, 2 purpose, 3 attempts,
 * 4 username, 5 display_name, 6 role) or 401 unauthenticated (reason mfa_expired). */
bic_err mfa_challenge_find(bic_req *req, const char *token, bic_rows *rows);
/* In the caller's transaction: locks user_id's TOTP and checks code (6 digits). pending: the
 * factor must be an unconfirmed enrolment (it is confirmed on a match), else a confirmed one.
 * On MFA_OK the code's step is stored, so it never works again. */
bic_err mfa_totp_verify(bic_req *req, bic_db *db, long long user_id, bool pending, const char *code,
                        bic_mfa_check *out);
/* In the caller's transaction: spends one unused recovery code (canonical form). *left gets
 * the unused codes remaining. */
bic_err mfa_recovery_spend(bic_req *req, bic_db *db, long long user_id, const char *canonical,
                           bic_mfa_check *out, long long *left);
/* New recovery codes for display (before a transaction). 0 or -1. */
int mfa_recovery_generate(char codes[RECOVERY_CODES][RECOVERY_CODE_SIZE]);
/* In the caller's transaction: replaces user_id's recovery codes with these (stored hashed). */
bic_err mfa_recovery_store(bic_req *req, bic_db *db, long long user_id,
                           char codes[RECOVERY_CODES][RECOVERY_CODE_SIZE]);
/* The codes as a JSON array of strings. New reference. */
json_t *mfa_recovery_json(char codes[RECOVERY_CODES][RECOVERY_CODE_SIZE]);
/* In the caller's transaction: counts a failed sign-in for username (login_throttle, as a
 * wrong password does) and audits action as failed with summary (stolen). */
bic_err mfa_count_failure(bic_req *req, bic_db *db, long long user_id, const char *username,
                          const char *action, const char *target_id, json_t *summary);
/* Starts (or restarts) a TOTP enrolment of user_id: a new secret stored sealed and
 * unconfirmed, audited auth.mfa.enroll_start; *out gets {secret, otpauth_uri, qr_svg, issuer,
 * account, algorithm, digits, period} (new reference). 409 when a confirmed TOTP exists. */
bic_err mfa_enroll_begin(bic_req *req, long long user_id, const char *username, json_t **out);
/* Removes user_id's TOTP, recovery codes and open sign-in steps in one transaction, audited as
 * action with summary (stolen) when there was something to remove; *removed says so. */
bic_err mfa_remove(bic_req *req, long long user_id, const char *action, json_t *summary,
                   bool *removed);
/* {totp: {enabled, pending, confirmed_at, last_used_at}, recovery_codes_left, required,
 * required_by: [{id, name}]} of user_id into *out (new reference). */
bic_err mfa_status_json(bic_req *req, long long user_id, json_t **out);

/* auth: in the caller's transaction, a sign-in succeeded: clears the throttle, creates the
 * session and its cookies (resp->nheaders reset to nheaders first, so a retried transaction does
 * not repeat them) and writes the auth.login audit row; detail (stolen, may be NULL) goes into
 * its summary next to the session id. */
bic_err auth_login_ok(bic_db *db, bic_req *req, bic_resp *resp, size_t nheaders, long long user_id,
                      const char *username, json_t *detail, const char **csrf);

/* oidc */
extern const bic_field fields_oidc_provider[], fields_oidc_provider_update[];
extern const bic_field fields_oidc_group_map[];

/* directories */
extern const bic_field fields_dir_create[], fields_dir_update[], fields_dir_test[];
extern const bic_field fields_dir_map[];

/* failure recovery (issue 8) */
#include "h_recovery.h"
/* power control and balancing (issue 8) */
#include "h_power.h"

#endif

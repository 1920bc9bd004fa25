/*
 * h_mfa.c - the second factor (TOTP, RFC 6238) of the signed-in user: status, enrolment,
 * removal and recovery codes; the list of groups that require MFA; and the helpers that the
 * sign-in (h_auth.c), user (h_users.c) and group (h_groups.c) handlers share. The design,
 * the flows and the API are in docs/mfa.md.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "handlers.h"
#include "log.h"
#include "password.h"
#include "seal.h"
#include "session.h"
#include "util.h"

#define MFA_ISSUER "BIC"

const bic_field fields_mfa_start[] = {
    {"password", F_STR, true, 1, PASSWORD_MAX_LEN},
    {0},
};

const bic_field fields_mfa_confirm[] = {
    {"code", F_STR, true, 1, 16},
    {0},
};

const bic_field fields_mfa_proof[] = {
    {"password", F_STR, false, 1, PASSWORD_MAX_LEN},
    {"code", F_STR, false, 1, 16},
    {0},
};

static const char *owner_aad(bic_req *req, long long user_id)
{
    return arena_printf(req->arena, "user:%lld", user_id);
}

/* ---- shared with h_auth.c, h_users.c and h_groups.c ---- */

bic_err mfa_step_for(bic_req *req, long long user_id, bic_mfa_step *out)
{
    bic_rows rows;
    bic_err e =
        DB_EXEC(req->db, req->arena, STMT_mfa_user_state, &rows, P_INT(user_id), P_INT(user_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot read the second factor of user %lld", user_id);
    *out = rows_int(&rows, 0, 0) ? MFA_VERIFY : rows_int(&rows, 0, 1) ? MFA_ENROLL : MFA_NONE;
    return BIC_E_OK;
}

bic_err mfa_challenge_create(bic_req *req, bic_db *db, long long user_id, bic_mfa_step step,
                             char *token)
{
    if (random_token(token) < 0) return fail(req, BIC_E_INTERNAL, "no randomness");
    unsigned char h[32];
    sha256_bytes(token, h);
    bic_err e = DB_EXEC(db, req->arena, STMT_mfa_challenge_prune, NULL, P_INT(user_id));
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_mfa_challenge_insert, NULL, P_BLOB(h, 32), P_INT(user_id),
                    P_STR(step == MFA_ENROLL ? "enroll" : "verify"),
                    P_STR(req->remote_addr ? req->remote_addr : ""), P_INT(MFA_CHALLENGE_TTL));
    return e == BIC_E_OK ? e : fail(req, e, "cannot store the second sign-in step");
}

bic_err mfa_challenge_find(bic_req *req, const char *token, bic_rows *rows)
{
    if (strlen(token) == RANDOM_TOKEN_LEN) {
        unsigned char h[32];
        sha256_bytes(token, h);
        bic_err e = DB_EXEC(req->db, req->arena, STMT_mfa_challenge_find, rows, P_BLOB(h, 32));
        if (e != BIC_E_OK) return fail(req, e, "cannot look up the second sign-in step");
        if (rows->nrows == 1) return BIC_E_OK;
    }
    req->err_reason = "mfa_expired";
    return fail(req, BIC_E_UNAUTHENTICATED,
                "this sign-in step is unknown, used or expired; sign in again");
}

bic_err mfa_totp_verify(bic_req *req, bic_db *db, long long user_id, bool pending, const char *code,
                        bic_mfa_check *out)
{
    const unsigned char *key;
    bic_err e = seal_key(req, SEAL_TOTP, &key);
    if (e != BIC_E_OK) return e;
    bic_rows rows;
    e = DB_EXEC(db, req->arena, STMT_totp_get_for_update, &rows, P_INT(user_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot read the TOTP of user %lld", user_id);
    if (rows.nrows != 1 || (rows_int(&rows, 0, 1) != 0) == pending) {
        *out = MFA_ABSENT;
        return BIC_E_OK;
    }
    unsigned char secret[TOTP_SECRET_LEN + 1];
    if (rows.len[0] != TOTP_SEALED_LEN ||
        seal_decrypt(key, owner_aad(req, user_id), (const unsigned char *)rows_str(&rows, 0, 0),
                     rows.len[0], secret) < 0)
        return fail(req, BIC_E_INTERNAL,
                    "the TOTP secret of user %lld does not open (was [auth] secret_file replaced?)",
                    user_id);
    int64_t step = 0;
    totp_result r = totp_check(secret, code, time(NULL), rows_int(&rows, 0, 2), &step);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (r != TOTP_MATCH) {
        *out = r == TOTP_REPLAYED ? MFA_REUSED : MFA_WRONG;
        return BIC_E_OK;
    }
    if (pending)
        e = DB_EXEC(db, req->arena, STMT_totp_confirm, NULL, P_INT(step), P_INT(user_id));
    else
        e = DB_EXEC(db, req->arena, STMT_totp_use, NULL, P_INT(step), P_INT(user_id), P_INT(step));
    if (e != BIC_E_OK) return fail(req, e, "cannot record the TOTP step of user %lld", user_id);
    /* the row is locked, so only a bug could make this 0; never accept a code twice */
    *out = db_affected(db) == 1 ? MFA_OK : MFA_REUSED;
    return BIC_E_OK;
}

bic_err mfa_recovery_spend(bic_req *req, bic_db *db, long long user_id, const char *canonical,
                           bic_mfa_check *out, long long *left)
{
    unsigned char h[32];
    sha256_bytes(canonical, h);
    bic_rows rows;
    bic_err e = DB_EXEC(db, req->arena, STMT_recovery_use, NULL, P_INT(user_id), P_BLOB(h, 32));
    if (e != BIC_E_OK) return fail(req, e, "cannot spend a recovery code");
    *out = db_affected(db) == 1 ? MFA_OK : MFA_WRONG;
    e = DB_EXEC(db, req->arena, STMT_recovery_left, &rows, P_INT(user_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot count recovery codes");
    *left = rows_int(&rows, 0, 0);
    return BIC_E_OK;
}

int mfa_recovery_generate(char codes[RECOVERY_CODES][RECOVERY_CODE_SIZE])
{
    for (int i = 0; i < RECOVERY_CODES; i++)
        if (totp_recovery_new(codes[i]) < 0) return -1;
    return 0;
}

bic_err mfa_recovery_store(bic_req *req, bic_db *db, long long user_id,
                           char codes[RECOVERY_CODES][RECOVERY_CODE_SIZE])
{
    bic_err e = DB_EXEC(db, req->arena, STMT_recovery_delete_all, NULL, P_INT(user_id));
    for (int i = 0; e == BIC_E_OK && i < RECOVERY_CODES; i++) {
        char canon[RECOVERY_CODE_LEN + 1];
        unsigned char h[32];
        if (!totp_recovery_normalize(codes[i], canon))
            return fail(req, BIC_E_INTERNAL, "a new recovery code is malformed");
        sha256_bytes(canon, h);
        OPENSSL_cleanse(canon, sizeof(canon));
        e = DB_EXEC(db, req->arena, STMT_recovery_insert, NULL, P_INT(user_id), P_BLOB(h, 32));
    }
    return e == BIC_E_OK ? e : fail(req, e, "cannot store the recovery codes");
}

json_t *mfa_recovery_json(char codes[RECOVERY_CODES][RECOVERY_CODE_SIZE])
{
    json_t *a = json_array();
    for (int i = 0; i < RECOVERY_CODES; i++)
        json_array_append_new(a, json_string(codes[i]));
    return a;
}

bic_err mfa_count_failure(bic_req *req, bic_db *db, long long user_id, const char *username,
                          const char *action, const char *target_id, json_t *summary)
{
    const bic_config *cfg = req->cfg;
    bic_err e = DB_EXEC(db, req->arena, STMT_throttle_fail, NULL, P_STR(username),
                        P_INT(cfg->auth_lockout_threshold), P_INT(cfg->auth_lockout_base_seconds),
                        P_INT(cfg->auth_lockout_threshold), P_INT(cfg->auth_lockout_max_seconds));
    if (e != BIC_E_OK) {
        json_decref(summary);
        return fail(req, e, "cannot record the failed attempt");
    }
    return audit_write_as(req, user_id, username, action, "user", target_id, false, summary);
}

/* "alice@vdi.example.org": the account name an authenticator app lists, with the site's host. */
static const char *account_name(bic_req *req, const char *username)
{
    const char *host = req->host;
    if (!host || !*host) return username;
    size_t n = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
    return arena_printf(req->arena, "%s@%.*s", username, (int)n, host);
}

struct enroll_ctx {
    bic_req *req;
    long long user_id;
    const char *username;
    const unsigned char *sealed;
};

static bic_err enroll_begin_tx(bic_db *db, void *arg)
{
    struct enroll_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows rows;
    bic_err e = DB_EXEC(db, req->arena, STMT_totp_get_for_update, &rows, P_INT(c->user_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot read the TOTP of user %lld", c->user_id);
    if (rows.nrows == 1 && rows_int(&rows, 0, 1))
        return fail(req, BIC_E_CONFLICT,
                    "TOTP is already set up; remove it before enrolling again");
    e = DB_EXEC(db, req->arena, STMT_totp_upsert_pending, NULL, P_INT(c->user_id),
                P_BLOB(c->sealed, TOTP_SEALED_LEN));
    if (e != BIC_E_OK) return fail(req, e, "cannot store the new TOTP secret");
    return audit_write_as(req, c->user_id, c->username, "auth.mfa.enroll_start", "user",
                          arena_printf(req->arena, "%lld", c->user_id), true, NULL);
}

bic_err mfa_enroll_begin(bic_req *req, long long user_id, const char *username, json_t **out)
{
    const unsigned char *key;
    bic_err e = seal_key(req, SEAL_TOTP, &key);
    if (e != BIC_E_OK) return e;
    unsigned char secret[TOTP_SECRET_LEN], sealed[TOTP_SEALED_LEN];
    char b32[TOTP_B32_LEN + 1];
    if (totp_secret_new(secret) < 0) return fail(req, BIC_E_INTERNAL, "no randomness");
    if (seal_encrypt(key, owner_aad(req, user_id), secret, sizeof(secret), sealed) < 0) {
        OPENSSL_cleanse(secret, sizeof(secret));
        return fail(req, BIC_E_INTERNAL, "cannot seal a TOTP secret");
    }
    const char *account = account_name(req, username);
    char *uri = totp_uri(req->arena, MFA_ISSUER, account, secret);
    base32_encode(secret, sizeof(secret), b32, sizeof(b32));
    OPENSSL_cleanse(secret, sizeof(secret));
    char *svg = totp_qr_svg(req->arena, uri);
    if (!svg) return fail(req, BIC_E_INTERNAL, "cannot draw the QR code");
    struct enroll_ctx c = {req, user_id, username, sealed};
    e = db_tx(req->db, enroll_begin_tx, &c);
    if (e == BIC_E_OK)
        *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "secret", b32, "otpauth_uri",
                         uri, "qr_svg", svg, "issuer", MFA_ISSUER, "account", account, "algorithm",
                         "SHA1", "digits", TOTP_DIGITS, "period", TOTP_PERIOD);
    OPENSSL_cleanse(b32, sizeof(b32));
    return e;
}

bic_err mfa_status_json(bic_req *req, long long user_id, json_t **out)
{
    bic_rows st, req_by;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_mfa_status, &st, P_INT(user_id));
    if (e == BIC_E_OK)
        e = DB_EXEC(req->db, req->arena, STMT_mfa_required_by, &req_by, P_INT(user_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot read the second factor of user %lld", user_id);
    bool has = st.nrows == 1, enabled = has && rows_int(&st, 0, 0);
    json_t *groups = json_array();
    for (size_t i = 0; i < req_by.nrows; i++)
        json_array_append_new(groups,
                              json_pack("{s:I, s:s}", "id", (json_int_t)rows_int(&req_by, i, 0),
                                        "name", rows_str(&req_by, i, 1)));
    *out =
        json_pack("{s:{s:b, s:b, s:o, s:o}, s:I, s:b, s:o}", "totp", "enabled", enabled, "pending",
                  has && !enabled, "confirmed_at", json_time(req, has ? rows_str(&st, 0, 1) : NULL),
                  "last_used_at", json_time(req, has ? rows_str(&st, 0, 2) : NULL),
                  "recovery_codes_left", (json_int_t)(enabled ? rows_int(&st, 0, 3) : 0),
                  "required", req_by.nrows > 0, "required_by", groups);
    return BIC_E_OK;
}

/* ---- the signed-in user's own factor ---- */

bic_err h_mfa_status(bic_req *req, bic_resp *resp)
{
    json_t *j = NULL;
    bic_err e = mfa_status_json(req, req->who.user_id, &j);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, j);
    return BIC_E_OK;
}

static const char *self_id(bic_req *req)
{
    return arena_printf(req->arena, "%lld", req->who.user_id);
}

/* Answers 423 with Retry-After while the caller's name is locked by failed attempts. */
static bic_err check_not_locked(bic_req *req, bic_resp *resp)
{
    bic_rows rows;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_throttle_locked, &rows, P_STR(req->who.username));
    if (e != BIC_E_OK) return fail(req, e, "throttle lookup failed");
    if (!rows.nrows) return BIC_E_OK;
    long long wait = rows_int(&rows, 0, 0);
    resp_header(req, resp, "Retry-After: %lld", wait > 0 ? wait : 1);
    return fail(req, BIC_E_LOCKED, "too many failed attempts; try again in %lld seconds",
                wait > 0 ? wait : 1);
}

struct proof_ctx {
    bic_req *req;
    const char *action;
    const char *code;
    const char *reason; /* set when the proof failed */
    bic_mfa_check check;
};

static bic_err proof_fail_tx(bic_db *db, void *arg)
{
    struct proof_ctx *c = arg;
    bic_req *req = c->req;
    return mfa_count_failure(req, db, req->who.user_id, req->who.username, c->action, self_id(req),
                             json_pack("{s:s}", "reason", c->reason));
}

static bic_err proof_code_tx(bic_db *db, void *arg)
{
    struct proof_ctx *c = arg;
    bic_req *req = c->req;
    bic_err e = mfa_totp_verify(req, db, req->who.user_id, false, c->code, &c->check);
    if (e != BIC_E_OK || c->check == MFA_OK) return e;
    c->reason = c->check == MFA_REUSED ? "reused code" : "wrong code";
    return proof_fail_tx(db, c);
}

/*
 * The caller proves it is still them before a change to the factor: exactly one of
 * "password" or "code" (a current TOTP code, spent like one at sign-in). A wrong one counts
 * as a failed sign-in and answers 403 with reason password_wrong, mfa_code_invalid or
 * mfa_code_reused; while the name is locked the answer is 423. *method gets which was used.
 */
static bic_err check_proof(bic_req *req, bic_resp *resp, const char *action, const char **method)
{
    const char *pw = json_get_str(req->json, "password", NULL);
    const char *code_in = json_get_str(req->json, "code", NULL);
    if (!pw == !code_in)
        return fail(req, BIC_E_VALIDATION, "give either password or code (a current TOTP code)");
    char code[TOTP_DIGITS + 1];
    if (code_in && !totp_code_normalize(code_in, code))
        return fail(req, BIC_E_VALIDATION, "code must be the 6 digits the authenticator app shows");
    bic_err e = check_not_locked(req, resp);
    if (e != BIC_E_OK) return e;
    struct proof_ctx c = {req, action, code, NULL, MFA_WRONG};
    if (pw) {
        *method = "password";
        bic_rows rows;
        bool ok = false;
        e = DB_EXEC(req->db, req->arena, STMT_user_auth_by_id, &rows, P_INT(req->who.user_id));
        if (e != BIC_E_OK) return fail(req, e, "user lookup failed");
        e = password_verify(pw, rows.nrows ? rows_str(&rows, 0, 0) : NULL, &ok);
        if (e != BIC_E_OK) return fail(req, e, "password check unavailable");
        if (ok) return BIC_E_OK;
        c.reason = "wrong password";
        e = db_tx(req->db, proof_fail_tx, &c);
        if (e != BIC_E_OK) return e;
        req->err_reason = "password_wrong";
        return fail(req, BIC_E_FORBIDDEN, "the password is wrong");
    }
    *method = "code";
    e = db_tx(req->db, proof_code_tx, &c);
    if (e != BIC_E_OK) return e;
    switch (c.check) {
    case MFA_OK:
        return BIC_E_OK;
    case MFA_ABSENT:
        return fail(req, BIC_E_CONFLICT, "TOTP is not set up; prove it with the password");
    case MFA_REUSED:
        req->err_reason = "mfa_code_reused";
        return fail(req, BIC_E_FORBIDDEN, "this code was already used; wait for the next one");
    case MFA_WRONG:
        break;
    }
    req->err_reason = "mfa_code_invalid";
    return fail(req, BIC_E_FORBIDDEN, "the code is wrong");
}

bic_err h_mfa_totp_start(bic_req *req, bic_resp *resp)
{
    const char *method = NULL;
    bic_err e = check_proof(req, resp, "auth.mfa.enroll_start", &method);
    if (e != BIC_E_OK) return e;
    json_t *j = NULL;
    e = mfa_enroll_begin(req, req->who.user_id, req->who.username, &j);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, j);
    return BIC_E_OK;
}

struct confirm_ctx {
    bic_req *req;
    const char *code;
    char (*codes)[RECOVERY_CODE_SIZE];
    bic_mfa_check check;
};

static bic_err confirm_tx(bic_db *db, void *arg)
{
    struct confirm_ctx *c = arg;
    bic_req *req = c->req;
    bic_err e = mfa_totp_verify(req, db, req->who.user_id, true, c->code, &c->check);
    if (e != BIC_E_OK || c->check != MFA_OK) return e;
    e = mfa_recovery_store(req, db, req->who.user_id, c->codes);
    if (e != BIC_E_OK) return e;
    return audit_write(req, "auth.mfa.enroll", "user", self_id(req), true,
                       json_pack("{s:s}", "factor", "totp"));
}

bic_err h_mfa_totp_confirm(bic_req *req, bic_resp *resp)
{
    char code[TOTP_DIGITS + 1], codes[RECOVERY_CODES][RECOVERY_CODE_SIZE];
    if (!totp_code_normalize(json_get_str(req->json, "code", ""), code))
        return fail(req, BIC_E_VALIDATION, "code must be the 6 digits the authenticator app shows");
    if (mfa_recovery_generate(codes) < 0) return fail(req, BIC_E_INTERNAL, "no randomness");
    struct confirm_ctx c = {req, code, codes, MFA_WRONG};
    bic_err e = db_tx(req->db, confirm_tx, &c);
    if (e == BIC_E_OK && c.check == MFA_ABSENT)
        e = fail(req, BIC_E_CONFLICT, "there is no enrolment to confirm; start one first");
    if (e == BIC_E_OK && c.check != MFA_OK) {
        /* nothing to guess here: the caller was just shown the secret */
        req->err_reason = "mfa_code_invalid";
        e = fail(req, BIC_E_VALIDATION,
                 "the code does not match the new secret; check the device's clock and try the "
                 "next code");
    }
    if (e == BIC_E_OK)
        resp_json(
            req, resp, 200,
            json_pack("{s:b, s:o}", "enabled", true, "recovery_codes", mfa_recovery_json(codes)));
    OPENSSL_cleanse(codes, sizeof(codes));
    return e;
}

struct remove_ctx {
    bic_req *req;
    long long user_id;
    const char *action;
    json_t *summary; /* stolen by the audit row */
    bool removed;
};

/* Removes user_id's TOTP, recovery codes and open sign-in steps; audits only a real removal. */
static bic_err remove_tx(bic_db *db, void *arg)
{
    struct remove_ctx *c = arg;
    bic_req *req = c->req;
    bic_err e = DB_EXEC(db, req->arena, STMT_totp_delete, NULL, P_INT(c->user_id));
    c->removed = e == BIC_E_OK && db_affected(db) > 0;
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_recovery_delete_all, NULL, P_INT(c->user_id));
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_mfa_challenges_drop_user, NULL, P_INT(c->user_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot remove the TOTP of user %lld", c->user_id);
    if (!c->removed) return BIC_E_OK;
    return audit_write(req, c->action, "user", arena_printf(req->arena, "%lld", c->user_id), true,
                       json_incref(c->summary));
}

bic_err mfa_remove(bic_req *req, long long user_id, const char *action, json_t *summary,
                   bool *removed)
{
    struct remove_ctx c = {req, user_id, action, summary, false};
    bic_err e = db_tx(req->db, remove_tx, &c);
    json_decref(summary);
    *removed = c.removed;
    return e;
}

bic_err h_mfa_totp_delete(bic_req *req, bic_resp *resp)
{
    bic_rows st;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_mfa_status, &st, P_INT(req->who.user_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot read the second factor");
    if (st.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "TOTP is not set up");
    const char *method = NULL;
    /* a pending enrolment has no code yet: only the password removes it */
    if (!rows_int(&st, 0, 0) && json_get_str(req->json, "code", NULL))
        return fail(req, BIC_E_CONFLICT, "TOTP is not confirmed yet; prove it with the password");
    e = check_proof(req, resp, "auth.mfa.disable", &method);
    if (e != BIC_E_OK) return e;
    bool removed = false;
    e = mfa_remove(req, req->who.user_id, "auth.mfa.disable",
                   json_pack("{s:s, s:s}", "factor", "totp", "proof", method), &removed);
    if (e != BIC_E_OK) return e;
    if (!removed) return fail(req, BIC_E_NOT_FOUND, "TOTP is not set up");
    resp->status = 204;
    return BIC_E_OK;
}

struct regen_ctx {
    bic_req *req;
    char (*codes)[RECOVERY_CODE_SIZE];
    const char *method;
};

static bic_err regen_tx(bic_db *db, void *arg)
{
    struct regen_ctx *c = arg;
    bic_req *req = c->req;
    bic_err e = mfa_recovery_store(req, db, req->who.user_id, c->codes);
    if (e != BIC_E_OK) return e;
    return audit_write(req, "auth.mfa.recovery_regenerate", "user", self_id(req), true,
                       json_pack("{s:s, s:i}", "proof", c->method, "codes", RECOVERY_CODES));
}

bic_err h_mfa_recovery_regenerate(bic_req *req, bic_resp *resp)
{
    bic_rows st;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_mfa_status, &st, P_INT(req->who.user_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot read the second factor");
    if (st.nrows != 1 || !rows_int(&st, 0, 0))
        return fail(req, BIC_E_CONFLICT,
                    "recovery codes belong to a confirmed TOTP; set one up first");
    const char *method = NULL;
    e = check_proof(req, resp, "auth.mfa.recovery_regenerate", &method);
    if (e != BIC_E_OK) return e;
    char codes[RECOVERY_CODES][RECOVERY_CODE_SIZE];
    if (mfa_recovery_generate(codes) < 0) return fail(req, BIC_E_INTERNAL, "no randomness");
    struct regen_ctx c = {req, codes, method};
    e = db_tx(req->db, regen_tx, &c);
    if (e == BIC_E_OK)
        resp_json(req, resp, 200, json_pack("{s:o}", "recovery_codes", mfa_recovery_json(codes)));
    OPENSSL_cleanse(codes, sizeof(codes));
    return e;
}

/* ---- policy ---- */

bic_err h_mfa_policy_list(bic_req *req, bic_resp *resp)
{
    bic_rows rows;
    bic_err e = DB_EXEC0(req->db, req->arena, STMT_mfa_policy_list, &rows);
    if (e != BIC_E_OK) return fail(req, e, "cannot list the MFA policy");
    json_t *items = json_array();
    for (size_t i = 0; i < rows.nrows; i++)
        json_array_append_new(
            items, json_pack("{s:I, s:s, s:I, s:b}", "id", (json_int_t)rows_int(&rows, i, 0),
                             "name", rows_str(&rows, i, 1), "members",
                             (json_int_t)rows_int(&rows, i, 2), "mfa_required", true));
    resp_json(req, resp, 200, json_pack("{s:o}", "items", items));
    return BIC_E_OK;
}

/*
 * h_auth.c - sign-in (password, then a second factor when the user has one or a group
 * requires it: docs/mfa.md), sign-out, session refresh, "who am I" and password change.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "directory.h"
#include "handlers.h"
#include "password.h"
#include "session.h"

const bic_field fields_login[] = {
    {"username", F_STR, true, 1, 64},
    {"password", F_STR, true, 1, PASSWORD_MAX_LEN},
    {0},
};

const bic_field fields_login_mfa[] = {
    {"mfa_token", F_STR, true, 1, 128},
    {"code", F_STR, false, 1, 16},
    {"recovery_code", F_STR, false, 1, 64},
    {0},
};

const bic_field fields_login_mfa_enroll[] = {
    {"mfa_token", F_STR, true, 1, 128},
    {0},
};

const bic_field fields_password_change[] = {
    {"current_password", F_STR, true, 1, PASSWORD_MAX_LEN},
    {"new_password", F_STR, true, 1, PASSWORD_MAX_LEN},
    {0},
};

static json_t *me_json(long long id, const char *username, const char *display, bic_role role,
                       const char *csrf, long expires_in)
{
    return json_pack("{s:{s:I, s:s, s:s, s:s}, s:s, s:i}", "user", "id", (json_int_t)id, "username",
                     username, "display_name", display ? display : "", "role", role_name(role),
                     "csrf_token", csrf, "expires_in", (int)expires_in);
}

bic_err h_auth_csrf_get(bic_req *req, bic_resp *resp)
{
    char tok[RANDOM_TOKEN_LEN + 1];
    if (random_token(tok) < 0) return fail(req, BIC_E_INTERNAL, "no randomness");
    resp_header(req, resp, "Set-Cookie: %s=%s; Path=/; Secure; HttpOnly; SameSite=Strict",
                COOKIE_CSRF, tok);
    resp_json(req, resp, 200, json_pack("{s:s}", "csrf_token", tok));
    return BIC_E_OK;
}

struct login_fail_ctx {
    bic_req *req;
    const char *username;
    long long user_id;
    const char *reason;
};

static bic_err login_fail_tx(bic_db *db, void *arg)
{
    struct login_fail_ctx *c = arg;
    bic_req *req = c->req;
    const bic_config *cfg = req->cfg;
    bic_err e = DB_EXEC(db, req->arena, STMT_throttle_fail, NULL, P_STR(c->username),
                        P_INT(cfg->auth_lockout_threshold), P_INT(cfg->auth_lockout_base_seconds),
                        P_INT(cfg->auth_lockout_threshold), P_INT(cfg->auth_lockout_max_seconds));
    if (e != BIC_E_OK) return e;
    return audit_write_as(req, c->user_id, c->username, "auth.login", "user", c->username, false,
                          json_pack("{s:s}", "reason", c->reason));
}

struct login_ok_ctx {
    bic_req *req;
    bic_resp *resp;
    size_t nheaders;
    const char *username;
    long long user_id;
    const char *csrf;
    const char *mfa; /* the second factor used, or NULL */
};

bic_err auth_login_ok(bic_db *db, bic_req *req, bic_resp *resp, size_t nheaders, long long user_id,
                      const char *username, json_t *detail, const char **csrf)
{
    resp->nheaders = nheaders; /* a retried transaction must not repeat cookies */
    bic_err e = DB_EXEC(db, req->arena, STMT_throttle_clear, NULL, P_STR(username));
    if (e == BIC_E_OK) e = DB_EXEC(db, req->arena, STMT_user_touch_login, NULL, P_INT(user_id));
    if (e == BIC_E_OK) e = session_create(req, resp, user_id, csrf);
    if (e != BIC_E_OK) {
        json_decref(detail);
        return e;
    }
    json_t *sum = detail ? detail : json_object();
    json_object_set_new(sum, "session", json_integer((json_int_t)req->who.session_id));
    return audit_write_as(req, user_id, username, "auth.login", "user", username, true, sum);
}

static bic_err login_ok(bic_db *db, struct login_ok_ctx *c)
{
    return auth_login_ok(db, c->req, c->resp, c->nheaders, c->user_id, c->username,
                         c->mfa ? json_pack("{s:s}", "mfa", c->mfa) : NULL, &c->csrf);
}

static bic_err login_ok_tx(bic_db *db, void *arg)
{
    return login_ok(db, arg);
}

struct challenge_ctx {
    bic_req *req;
    long long user_id;
    const char *username;
    bic_mfa_step step;
    char token[RANDOM_TOKEN_LEN + 1];
};

static bic_err challenge_tx(bic_db *db, void *arg)
{
    struct challenge_ctx *c = arg;
    bic_req *req = c->req;
    bic_err e = mfa_challenge_create(req, db, c->user_id, c->step, c->token);
    if (e != BIC_E_OK) return e;
    return audit_write_as(req, c->user_id, c->username, "auth.mfa.challenge", "user", c->username,
                          true,
                          json_pack("{s:s}", "step", c->step == MFA_ENROLL ? "enroll" : "verify"));
}

bic_err h_auth_login(bic_req *req, bic_resp *resp)
{
    const char *username = json_get_str(req->json, "username", "");
    const char *pw = json_get_str(req->json, "password", "");
    bic_rows rows;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_throttle_locked, &rows, P_STR(username));
    if (e != BIC_E_OK) return fail(req, e, "throttle lookup failed");
    if (rows.nrows) {
        long long wait = rows_int(&rows, 0, 0);
        resp_header(req, resp, "Retry-After: %lld", wait > 0 ? wait : 1);
        audit_write_as(req, 0, username, "auth.login", "user", username, false,
                       json_pack("{s:s}", "reason", "locked"));
        return fail(req, BIC_E_LOCKED, "too many failed sign-ins; try again in %lld seconds",
                    wait > 0 ? wait : 1);
    }
    e = DB_EXEC(req->db, req->arena, STMT_user_auth_by_name, &rows, P_STR(username));
    if (e != BIC_E_OK) return fail(req, e, "user lookup failed");
    const char *hash = rows.nrows ? rows_str(&rows, 0, 1) : NULL;
    bool ok = false, by_dir = false;
    const char *why = NULL;
    /* directory users, and unknown names while a directory is enabled (docs/directories.md) */
    e = dir_login(req, resp, &username, pw, &rows, &by_dir, &ok, &why);
    if (e != BIC_E_OK) return e;
    if (!by_dir) e = password_verify(pw, hash, &ok);
    if (e != BIC_E_OK) return fail(req, e, "password check unavailable");
    long long uid = rows.nrows ? rows_int(&rows, 0, 0) : 0;
    bool disabled = rows.nrows && rows_int(&rows, 0, 2) != 0;
    bic_role role = rows.nrows ? role_parse(rows_str(&rows, 0, 3)) : ROLE__MAX;
    if (!ok || disabled || role == ROLE__MAX) {
        struct login_fail_ctx c = {req, username, uid,
                                   why           ? why
                                   : !rows.nrows ? "unknown user"
                                   : disabled    ? "disabled"
                                                 : "wrong password"};
        e = db_tx(req->db, login_fail_tx, &c);
        if (e != BIC_E_OK) return fail(req, e, "cannot record the failed sign-in");
        /* one answer for unknown user, wrong password and disabled account */
        return fail(req, BIC_E_BAD_CREDENTIALS, "wrong user name or password");
    }
    bic_mfa_step step = MFA_NONE;
    e = mfa_step_for(req, uid, &step);
    if (e != BIC_E_OK) return e;
    if (step != MFA_NONE) {
        /* the password was right, but no session yet, and the failure count stays until the
         * second step passes: otherwise the password alone would reset the lockout */
        struct challenge_ctx ch = {req, uid, username, step, {0}};
        e = db_tx(req->db, challenge_tx, &ch);
        if (e != BIC_E_OK) return e;
        resp_json(req, resp, 200,
                  json_pack("{s:b, s:s, s:s, s:i}", "mfa_required", true, "mfa_step",
                            step == MFA_ENROLL ? "enroll" : "verify", "mfa_token", ch.token,
                            "expires_in", MFA_CHALLENGE_TTL));
        OPENSSL_cleanse(ch.token, sizeof(ch.token));
        return BIC_E_OK;
    }
    struct login_ok_ctx c = {req, resp, resp->nheaders, username, uid, NULL, NULL};
    e = db_tx(req->db, login_ok_tx, &c);
    if (e != BIC_E_OK) return e;
    resp_json(
        req, resp, 200,
        me_json(uid, username, rows_str(&rows, 0, 4), role, c.csrf, req->cfg->auth_access_ttl));
    return BIC_E_OK;
}

enum mfa_outcome { MFA_DONE, MFA_EXPIRED, MFA_FAILED };

struct mfa_login_ctx {
    struct login_ok_ctx ok;
    long long challenge_id;
    bool enroll;
    const char *code;                  /* 6 digits, or NULL */
    const char *recovery;              /* canonical recovery code, or NULL */
    char (*codes)[RECOVERY_CODE_SIZE]; /* new recovery codes (enrolment) */
    enum mfa_outcome outcome;
    bic_mfa_check check;
    long long left; /* recovery codes left after spending one */
};

static bic_err mfa_login_tx(bic_db *db, void *arg)
{
    struct mfa_login_ctx *c = arg;
    bic_req *req = c->ok.req;
    c->ok.resp->nheaders = c->ok.nheaders;
    c->outcome = MFA_EXPIRED;
    bic_rows lock;
    bic_err e = DB_EXEC(db, req->arena, STMT_mfa_challenge_lock, &lock, P_INT(c->challenge_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot lock the second sign-in step");
    if (lock.nrows != 1) return BIC_E_OK; /* a concurrent request used it up */
    const char *method = c->recovery ? "recovery_code" : c->enroll ? "totp_enroll" : "totp";
    if (c->code)
        e = mfa_totp_verify(req, db, c->ok.user_id, c->enroll, c->code, &c->check);
    else
        e = mfa_recovery_spend(req, db, c->ok.user_id, c->recovery, &c->check, &c->left);
    if (e != BIC_E_OK) return e;
    if (c->check == MFA_ABSENT) {
        if (c->enroll)
            return fail(req, BIC_E_CONFLICT,
                        "there is no enrolment to confirm; start one with /auth/login/mfa/enroll");
        /* the factor was removed (e.g. reset by an admin) since the password step */
        e = DB_EXEC(db, req->arena, STMT_mfa_challenge_use, NULL, P_INT(c->challenge_id));
        if (e != BIC_E_OK) return fail(req, e, "cannot close the second sign-in step");
        return audit_write_as(req, c->ok.user_id, c->ok.username, "auth.mfa.verify", "user",
                              c->ok.username, false,
                              json_pack("{s:s, s:s}", "method", method, "reason", "no factor"));
    }
    if (c->check != MFA_OK) {
        c->outcome = MFA_FAILED;
        e = DB_EXEC(db, req->arena, STMT_mfa_challenge_fail, NULL, P_INT(MFA_CHALLENGE_ATTEMPTS),
                    P_INT(c->challenge_id));
        if (e != BIC_E_OK) return fail(req, e, "cannot count the failed code");
        const char *why = c->check == MFA_REUSED ? "reused code" : "wrong code";
        /* a wrong code while confirming a new enrolment guesses nothing: not a lockout failure */
        if (c->enroll)
            return audit_write_as(req, c->ok.user_id, c->ok.username, "auth.mfa.verify", "user",
                                  c->ok.username, false,
                                  json_pack("{s:s, s:s}", "method", method, "reason", why));
        return mfa_count_failure(req, db, c->ok.user_id, c->ok.username, "auth.mfa.verify",
                                 c->ok.username,
                                 json_pack("{s:s, s:s}", "method", method, "reason", why));
    }
    e = DB_EXEC(db, req->arena, STMT_mfa_challenge_use, NULL, P_INT(c->challenge_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot close the second sign-in step");
    if (c->enroll) {
        e = mfa_recovery_store(req, db, c->ok.user_id, c->codes);
        if (e == BIC_E_OK)
            e = audit_write_as(req, c->ok.user_id, c->ok.username, "auth.mfa.enroll", "user",
                               arena_printf(req->arena, "%lld", c->ok.user_id), true,
                               json_pack("{s:s, s:b}", "factor", "totp", "at_sign_in", true));
        if (e != BIC_E_OK) return e;
    }
    c->ok.mfa = method;
    e = login_ok(db, &c->ok);
    if (e == BIC_E_OK) c->outcome = MFA_DONE;
    return e;
}

bic_err h_auth_login_mfa(bic_req *req, bic_resp *resp)
{
    const char *code_in = json_get_str(req->json, "code", NULL);
    const char *rec_in = json_get_str(req->json, "recovery_code", NULL);
    if (!code_in == !rec_in)
        return fail(req, BIC_E_VALIDATION, "give either code or recovery_code");
    char code[TOTP_DIGITS + 1], rec[RECOVERY_CODE_LEN + 1];
    if (code_in && !totp_code_normalize(code_in, code))
        return fail(req, BIC_E_VALIDATION, "code must be the 6 digits the authenticator app shows");
    if (rec_in && !totp_recovery_normalize(rec_in, rec))
        return fail(req, BIC_E_VALIDATION,
                    "recovery_code must be one of your 16-character recovery codes");
    bic_rows ch, rows;
    bic_err e = mfa_challenge_find(req, json_get_str(req->json, "mfa_token", ""), &ch);
    if (e != BIC_E_OK) return e;
    long long uid = rows_int(&ch, 0, 1);
    const char *username = rows_str(&ch, 0, 4);
    bool enroll = !strcmp(rows_str(&ch, 0, 2), "enroll");
    if (enroll && rec_in)
        return fail(req, BIC_E_VALIDATION,
                    "recovery codes come with the enrolment; give the new authenticator's code");
    e = DB_EXEC(req->db, req->arena, STMT_throttle_locked, &rows, P_STR(username));
    if (e != BIC_E_OK) return fail(req, e, "throttle lookup failed");
    if (rows.nrows) {
        long long wait = rows_int(&rows, 0, 0);
        resp_header(req, resp, "Retry-After: %lld", wait > 0 ? wait : 1);
        audit_write_as(req, uid, username, "auth.mfa.verify", "user", username, false,
                       json_pack("{s:s}", "reason", "locked"));
        return fail(req, BIC_E_LOCKED, "too many failed sign-ins; try again in %lld seconds",
                    wait > 0 ? wait : 1);
    }
    char codes[RECOVERY_CODES][RECOVERY_CODE_SIZE];
    if (enroll && mfa_recovery_generate(codes) < 0)
        return fail(req, BIC_E_INTERNAL, "no randomness");
    struct mfa_login_ctx c = {{req, resp, resp->nheaders, username, uid, NULL, NULL},
                              rows_int(&ch, 0, 0),
                              enroll,
                              code_in ? code : NULL,
                              rec_in ? rec : NULL,
                              codes,
                              MFA_EXPIRED,
                              MFA_WRONG,
                              0};
    e = db_tx(req->db, mfa_login_tx, &c);
    OPENSSL_cleanse(rec, sizeof(rec));
    if (e == BIC_E_OK && c.outcome == MFA_EXPIRED) {
        req->err_reason = "mfa_expired";
        e = fail(req, BIC_E_UNAUTHENTICATED,
                 "this sign-in step is unknown, used or expired; sign in again");
    } else if (e == BIC_E_OK && c.outcome == MFA_FAILED) {
        bool reused = c.check == MFA_REUSED;
        req->err_reason = reused ? "mfa_code_reused" : "mfa_code_invalid";
        e = fail(req, BIC_E_BAD_CREDENTIALS, "%s",
                 reused   ? "this code was already used; wait for the next one"
                 : rec_in ? "the recovery code is wrong or was already used"
                 : enroll ? "the code does not match the new secret; check the device's clock"
                          : "the code is wrong");
    }
    if (e == BIC_E_OK) {
        json_t *me = me_json(uid, username, rows_str(&ch, 0, 5), role_parse(rows_str(&ch, 0, 6)),
                             c.ok.csrf, req->cfg->auth_access_ttl);
        if (enroll) json_object_set_new(me, "recovery_codes", mfa_recovery_json(codes));
        if (rec_in) json_object_set_new(me, "recovery_codes_left", json_integer(c.left));
        resp_json(req, resp, 200, me);
    }
    OPENSSL_cleanse(codes, sizeof(codes));
    return e;
}

bic_err h_auth_login_mfa_enroll(bic_req *req, bic_resp *resp)
{
    bic_rows ch;
    bic_err e = mfa_challenge_find(req, json_get_str(req->json, "mfa_token", ""), &ch);
    if (e != BIC_E_OK) return e;
    if (strcmp(rows_str(&ch, 0, 2), "enroll"))
        return fail(req, BIC_E_CONFLICT, "this sign-in needs a code from your authenticator");
    json_t *j = NULL;
    e = mfa_enroll_begin(req, rows_int(&ch, 0, 1), rows_str(&ch, 0, 4), &j);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, j);
    return BIC_E_OK;
}

static bic_err logout_tx(bic_db *db, void *arg)
{
    bic_req *req = arg;
    bic_err e = DB_EXEC(db, req->arena, STMT_session_revoke, NULL, P_INT(req->who.session_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot revoke the session");
    return audit_write(req, "auth.logout", "session",
                       arena_printf(req->arena, "%lld", req->who.session_id), true, NULL);
}

bic_err h_auth_logout(bic_req *req, bic_resp *resp)
{
    bic_err e = db_tx(req->db, logout_tx, req);
    if (e != BIC_E_OK) return e;
    session_clear_cookies(req, resp);
    resp->status = 204;
    return BIC_E_OK;
}

bic_err h_auth_me(bic_req *req, bic_resp *resp)
{
    long left = (long)(req->who.token_exp - time(NULL));
    resp_json(req, resp, 200,
              me_json(req->who.user_id, req->who.username, req->who.display_name, req->who.role,
                      req->who.csrf, left > 0 ? left : 0));
    return BIC_E_OK;
}

bic_err h_auth_refresh(bic_req *req, bic_resp *resp)
{
    const char *old = req_cookie(req, COOKIE_REFRESH);
    if (!old || strlen(old) != RANDOM_TOKEN_LEN) {
        session_clear_cookies(req, resp);
        return fail(req, BIC_E_UNAUTHENTICATED, "no session to refresh; sign in");
    }
    unsigned char oh[32], nh[32];
    sha256_bytes(old, oh);
    bic_rows rows;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_session_by_refresh, &rows, P_BLOB(oh, 32));
    if (e != BIC_E_OK) return fail(req, e, "session lookup failed");
    if (rows.nrows != 1) {
        session_clear_cookies(req, resp);
        return fail(req, BIC_E_UNAUTHENTICATED, "the session ended; sign in again");
    }
    long long sid = rows_int(&rows, 0, 0), uid = rows_int(&rows, 0, 1);
    char fresh[RANDOM_TOKEN_LEN + 1];
    if (random_token(fresh) < 0) return fail(req, BIC_E_INTERNAL, "no randomness");
    sha256_bytes(fresh, nh);
    e = DB_EXEC(req->db, req->arena, STMT_session_rotate, NULL, P_BLOB(nh, 32), P_INT(sid),
                P_BLOB(oh, 32));
    if (e != BIC_E_OK) return fail(req, e, "cannot rotate the session");
    if (db_affected(req->db) != 1) { /* a concurrent refresh won */
        session_clear_cookies(req, resp);
        return fail(req, BIC_E_UNAUTHENTICATED,
                    "the session was refreshed elsewhere; sign in again");
    }
    e = session_set_access_cookie(req, resp, uid, sid);
    if (e != BIC_E_OK) return e;
    resp_header(req, resp,
                "Set-Cookie: %s=%s; Path=/; Max-Age=%ld; Secure; HttpOnly; SameSite=Strict",
                COOKIE_REFRESH, fresh, req->cfg->auth_refresh_ttl);
    resp_json(req, resp, 200,
              me_json(uid, rows_str(&rows, 0, 3), rows_str(&rows, 0, 4),
                      role_parse(rows_str(&rows, 0, 5)), rows_str(&rows, 0, 2),
                      req->cfg->auth_access_ttl));
    return BIC_E_OK;
}

struct pwchange_ctx {
    bic_req *req;
    const char *hash;
};

static bic_err pwchange_tx(bic_db *db, void *arg)
{
    struct pwchange_ctx *c = arg;
    bic_req *req = c->req;
    bic_err e = DB_EXEC(db, req->arena, STMT_user_set_password, NULL, P_STR(c->hash),
                        P_INT(req->who.user_id));
    if (e == BIC_E_OK) e = session_revoke_user(req, req->who.user_id);
    if (e == BIC_E_OK)
        e = audit_write(req, "auth.password_change", "user",
                        arena_printf(req->arena, "%lld", req->who.user_id), true, NULL);
    return e;
}

bic_err h_auth_password(bic_req *req, bic_resp *resp)
{
    const char *cur = json_get_str(req->json, "current_password", "");
    const char *next = json_get_str(req->json, "new_password", "");
    char why[128];
    if (!password_acceptable(next, why, sizeof(why))) return fail(req, BIC_E_VALIDATION, "%s", why);
    if (!strcmp(cur, next))
        return fail(req, BIC_E_VALIDATION, "the new password must differ from the current one");
    bic_rows rows;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_user_auth_by_id, &rows, P_INT(req->who.user_id));
    if (e != BIC_E_OK) return fail(req, e, "user lookup failed");
    bool ok = false;
    e = password_verify(cur, rows.nrows ? rows_str(&rows, 0, 0) : NULL, &ok);
    if (e != BIC_E_OK) return fail(req, e, "password check unavailable");
    if (!ok) {
        struct login_fail_ctx c = {req, req->who.username, req->who.user_id,
                                   "wrong current password"};
        db_tx(req->db, login_fail_tx, &c);
        return fail(req, BIC_E_FORBIDDEN, "the current password is wrong");
    }
    char hash[PASSWORD_HASH_LEN];
    e = password_hash(next, hash);
    if (e != BIC_E_OK) return fail(req, e, "cannot hash the new password");
    struct pwchange_ctx c = {req, hash};
    e = db_tx(req->db, pwchange_tx, &c);
    if (e != BIC_E_OK) return fail(req, e, "cannot change the password");
    session_clear_cookies(req, resp);
    resp->status = 204;
    return BIC_E_OK;
}

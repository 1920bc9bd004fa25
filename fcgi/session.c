#include "session.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "token.h"

int random_token(char out[RANDOM_TOKEN_LEN + 1])
{
    unsigned char raw[32];
    unsigned char b64[48];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) return -1;
    EVP_EncodeBlock(b64, raw, sizeof(raw)); /* 44 chars with one '=' */
    for (int i = 0; i < RANDOM_TOKEN_LEN; i++)
        out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
    out[RANDOM_TOKEN_LEN] = '\0';
    return 0;
}

void sha256_bytes(const char *s, unsigned char out[32])
{
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL);
}

static bool same_token(const char *a, const char *b)
{
    if (!a || !b) return false;
    size_t n = strlen(a);
    return n == strlen(b) && n >= 16 && CRYPTO_memcmp(a, b, n) == 0;
}

bic_err session_identify(bic_req *req, bic_resp *resp)
{
    (void)resp;
    req->who = (bic_principal){0};
    const char *tok = req_cookie(req, COOKIE_SESSION);
    if (!tok) return BIC_E_OK;
    bic_token_claims claims;
    bic_token_status st = token_verify(tok, time(NULL), &claims);
    if (st != TOKEN_OK) return BIC_E_OK; /* anonymous; expired tokens are refreshed */
    bic_rows rows;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_session_lookup, &rows, P_INT(claims.session_id),
                        P_INT(claims.user_id));
    if (e != BIC_E_OK) return fail(req, e, "session lookup failed");
    if (rows.nrows != 1) return BIC_E_OK; /* revoked, expired or user disabled */
    bic_role role = role_parse(rows_str(&rows, 0, 3));
    if (role == ROLE__MAX) return BIC_E_OK;
    req->who.user_id = rows_int(&rows, 0, 0);
    req->who.username = rows_str(&rows, 0, 1);
    req->who.display_name = rows_str(&rows, 0, 2);
    req->who.role = role;
    req->who.session_id = claims.session_id;
    req->who.csrf = rows_str(&rows, 0, 4);
    req->who.token_exp = claims.exp;
    return BIC_E_OK;
}

bool session_origin_allowed(bic_req *req)
{
    const char *o = req->origin;
    if (!o || !*o) return false;
    const char *list = req->cfg ? req->cfg->server_public_origin : "";
    if (list && *list) {
        size_t on = strlen(o);
        for (const char *p = list; *p;) {
            while (*p == ' ' || *p == ',')
                p++;
            size_t n = strcspn(p, ", ");
            if (n && n == on && !strncmp(p, o, n)) return true;
            p += n;
        }
        return false;
    }
    /*
     * No configured origin: the page must come from the host and port the request
     * was sent to (nginx passes them as BIC_HOST = $host:$server_port). Behind port
     * forwarding, set [server] public_origin instead.
     */
    if (!req->host || strncmp(o, "https://", 8)) return false;
    o += 8;
    size_t hn = strlen(req->host);
    if (hn > 4 && !strcmp(req->host + hn - 4, ":443")) hn -= 4; /* default port is implicit */
    return strlen(o) == hn && !strncmp(o, req->host, hn);
}

bic_err session_check_csrf(bic_req *req)
{
    if (!session_origin_allowed(req))
        return fail(req, BIC_E_CSRF, "the request must come from this site (Origin)");
    const char *hdr = req->csrf_header;
    if (!hdr || !*hdr) return fail(req, BIC_E_CSRF, "the X-CSRF-Token header is missing");
    if (req->who.user_id) {
        if (same_token(hdr, req->who.csrf)) return BIC_E_OK;
        return fail(req, BIC_E_CSRF, "the CSRF token does not match this session");
    }
    if (same_token(hdr, req_cookie(req, COOKIE_CSRF))) return BIC_E_OK;
    const char *refresh = req_cookie(req, COOKIE_REFRESH);
    if (refresh && strlen(refresh) == RANDOM_TOKEN_LEN) {
        unsigned char h[32];
        sha256_bytes(refresh, h);
        bic_rows rows;
        bic_err e = DB_EXEC(req->db, req->arena, STMT_session_by_refresh, &rows, P_BLOB(h, 32));
        if (e != BIC_E_OK) return fail(req, e, "session lookup failed");
        if (rows.nrows == 1 && same_token(hdr, rows_str(&rows, 0, 2))) return BIC_E_OK;
    }
    return fail(req, BIC_E_CSRF, "the CSRF token does not match");
}

static void set_cookie(bic_req *req, bic_resp *resp, const char *name, const char *value,
                       long max_age)
{
    resp_header(req, resp,
                "Set-Cookie: %s=%s; Path=/; Max-Age=%ld; Secure; HttpOnly; SameSite=Strict", name,
                value, max_age);
}

bic_err session_set_access_cookie(bic_req *req, bic_resp *resp, long long user_id,
                                  long long session_id)
{
    char *tok = token_issue(user_id, session_id, req->cfg->auth_access_ttl, time(NULL));
    if (!tok) return fail(req, BIC_E_INTERNAL, "cannot sign an access token");
    set_cookie(req, resp, COOKIE_SESSION, tok, req->cfg->auth_access_ttl);
    free(tok);
    return BIC_E_OK;
}

bic_err session_create(bic_req *req, bic_resp *resp, long long user_id, const char **csrf_out)
{
    char refresh[RANDOM_TOKEN_LEN + 1], *csrf = arena_alloc(req->arena, RANDOM_TOKEN_LEN + 1);
    if (random_token(refresh) < 0 || random_token(csrf) < 0)
        return fail(req, BIC_E_INTERNAL, "no randomness for a session");
    unsigned char h[32];
    sha256_bytes(refresh, h);
    char ua[256];
    snprintf(ua, sizeof(ua), "%s", req->user_agent ? req->user_agent : "");
    bic_err e = DB_EXEC(req->db, req->arena, STMT_session_insert, NULL, P_INT(user_id),
                        P_BLOB(h, 32), P_STR(csrf), P_STR(req->remote_addr ? req->remote_addr : ""),
                        P_STR(ua), P_INT(req->cfg->auth_refresh_ttl));
    if (e != BIC_E_OK) return fail(req, e, "cannot store the session");
    long long sid = (long long)db_insert_id(req->db);
    e = session_set_access_cookie(req, resp, user_id, sid);
    if (e != BIC_E_OK) return e;
    set_cookie(req, resp, COOKIE_REFRESH, refresh, req->cfg->auth_refresh_ttl);
    memset(refresh, 0, sizeof(refresh));
    req->who.session_id = sid;
    *csrf_out = csrf;
    return BIC_E_OK;
}

void session_clear_cookies(bic_req *req, bic_resp *resp)
{
    set_cookie(req, resp, COOKIE_SESSION, "", 0);
    set_cookie(req, resp, COOKIE_REFRESH, "", 0);
}

bic_err session_revoke_user(bic_req *req, long long user_id)
{
    bic_err e = DB_EXEC(req->db, req->arena, STMT_sessions_revoke_user, NULL, P_INT(user_id));
    return e == BIC_E_OK ? e : fail(req, e, "cannot revoke sessions of user %lld", user_id);
}

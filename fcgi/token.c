#include "token.h"

#include <errno.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static struct {
    unsigned char key[256];
    size_t len;
    char issuer[128], audience[128];
} tk;

int token_init_key(const unsigned char *key, size_t len, const char *issuer, const char *audience)
{
    if (len < 32) return -1;
    if (len > sizeof(tk.key)) len = sizeof(tk.key);
    memcpy(tk.key, key, len);
    tk.len = len;
    snprintf(tk.issuer, sizeof(tk.issuer), "%s", issuer);
    snprintf(tk.audience, sizeof(tk.audience), "%s", audience);
    return 0;
}

int token_init(const bic_config *cfg)
{
    FILE *f = fopen(cfg->auth_secret_file, "rb");
    if (!f) {
        LOG_ERROR(NULL, "cannot read the token key %s: %s", cfg->auth_secret_file, strerror(errno));
        return -1;
    }
    unsigned char key[256];
    size_t n = fread(key, 1, sizeof(key), f);
    fclose(f);
    if (token_init_key(key, n, cfg->auth_issuer, cfg->auth_audience) < 0) {
        LOG_ERROR(NULL, "the token key %s must hold at least 32 bytes", cfg->auth_secret_file);
        return -1;
    }
    memset(key, 0, sizeof(key));
    return 0;
}

char *token_issue(long long user_id, long long session_id, long ttl, time_t now)
{
    jwt_t *jwt = NULL;
    char *out = NULL, sub[32];
    if (jwt_new(&jwt)) return NULL;
    snprintf(sub, sizeof(sub), "%lld", user_id);
    if (jwt_add_grant(jwt, "iss", tk.issuer) || jwt_add_grant(jwt, "aud", tk.audience) ||
        jwt_add_grant(jwt, "sub", sub) || jwt_add_grant_int(jwt, "sid", (long)session_id) ||
        jwt_add_grant_int(jwt, "iat", (long)now) || jwt_add_grant_int(jwt, "nbf", (long)now) ||
        jwt_add_grant_int(jwt, "exp", (long)(now + ttl)) ||
        jwt_set_alg(jwt, JWT_ALG_HS256, tk.key, (int)tk.len))
        goto out;
    out = jwt_encode_str(jwt);
out:
    jwt_free(jwt);
    return out;
}

static long grant_int(jwt_t *jwt, const char *name, int *missing)
{
    errno = 0;
    long v = jwt_get_grant_int(jwt, name);
    if (errno) *missing = 1;
    return v;
}

bic_token_status token_verify(const char *token, time_t now, bic_token_claims *out)
{
    if (!token || !*token || strlen(token) > TOKEN_MAX_LEN || tk.len == 0) return TOKEN_MALFORMED;
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, tk.key, (int)tk.len) != 0 || !jwt) return TOKEN_MALFORMED;
    bic_token_status st = TOKEN_OK;
    int missing = 0;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
        st = TOKEN_BAD_ALG;
        goto out;
    }
    long exp = grant_int(jwt, "exp", &missing);
    long nbf = grant_int(jwt, "nbf", &missing);
    long sid = grant_int(jwt, "sid", &missing);
    const char *iss = jwt_get_grant(jwt, "iss");
    const char *aud = jwt_get_grant(jwt, "aud");
    const char *sub = jwt_get_grant(jwt, "sub");
    if (missing || !sub) {
        st = TOKEN_BAD_CLAIMS;
        goto out;
    }
    if (now >= (time_t)exp) {
        st = TOKEN_EXPIRED;
        goto out;
    }
    if (now < (time_t)nbf) {
        st = TOKEN_NOT_YET;
        goto out;
    }
    if (!iss || strcmp(iss, tk.issuer)) {
        st = TOKEN_BAD_ISSUER;
        goto out;
    }
    if (!aud || strcmp(aud, tk.audience)) {
        st = TOKEN_BAD_AUDIENCE;
        goto out;
    }
    char *end;
    long long uid = strtoll(sub, &end, 10);
    if (*end || uid <= 0 || sid <= 0) {
        st = TOKEN_BAD_CLAIMS;
        goto out;
    }
    out->user_id = uid;
    out->session_id = sid;
    out->exp = (time_t)exp;
out:
    jwt_free(jwt);
    return st;
}

const char *token_status_name(bic_token_status s)
{
    static const char *const names[] = {"ok",      "malformed",  "bad_alg",      "expired",
                                        "not_yet", "bad_issuer", "bad_audience", "bad_claims"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

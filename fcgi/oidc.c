#include "oidc.h"

#include <ctype.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>

/* ---- encodings ---- */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

int oidc_b64url_decode(bic_arena *a, const char *in, size_t n, unsigned char **out, size_t *outlen)
{
    if (n % 4 == 1) return -1;
    unsigned char *buf = arena_alloc(a, n / 4 * 3 + 3 + 1);
    size_t o = 0;
    unsigned int acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value(in[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) return -1; /* the unused low bits must be zero: one encoding per value */
    buf[o] = 0;
    *out = buf;
    *outlen = o;
    return 0;
}

char *oidc_b64url_encode(bic_arena *a, const unsigned char *in, size_t n)
{
    char *out = arena_alloc(a, (n + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *o++ = B64URL[v >> 18];
        *o++ = B64URL[(v >> 12) & 63];
        *o++ = B64URL[(v >> 6) & 63];
        *o++ = B64URL[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        *o++ = B64URL[v >> 18];
        *o++ = B64URL[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        *o++ = B64URL[v >> 18];
        *o++ = B64URL[(v >> 12) & 63];
        *o++ = B64URL[(v >> 6) & 63];
    }
    *o = '\0';
    return out;
}

char *oidc_url_encode(bic_arena *a, const char *s)
{
    char *out = arena_alloc(a, strlen(s) * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = '\0';
    return out;
}

void oidc_pkce_s256(const char *verifier, char out[OIDC_PKCE_LEN + 1])
{
    unsigned char h[32];
    unsigned int n = 0;
    EVP_Digest(verifier, strlen(verifier), h, &n, EVP_sha256(), NULL);
    /* 32 bytes are 10 groups of 3 and 2 left over: 43 characters */
    size_t o = 0;
    for (size_t i = 0; i < 30; i += 3) {
        unsigned v = (unsigned)h[i] << 16 | (unsigned)h[i + 1] << 8 | h[i + 2];
        out[o++] = B64URL[v >> 18];
        out[o++] = B64URL[(v >> 12) & 63];
        out[o++] = B64URL[(v >> 6) & 63];
        out[o++] = B64URL[v & 63];
    }
    unsigned v = (unsigned)h[30] << 16 | (unsigned)h[31] << 8;
    out[o++] = B64URL[v >> 18];
    out[o++] = B64URL[(v >> 12) & 63];
    out[o++] = B64URL[(v >> 6) & 63];
    out[o] = '\0';
}

/* ---- keys ---- */

static bool str_is(const json_t *o, const char *key, const char *want)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) && !strcmp(json_string_value(v), want);
}

static int b64url_member(bic_arena *a, const json_t *o, const char *key, unsigned char **out,
                         size_t *n)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) return -1;
    return oidc_b64url_decode(a, json_string_value(v), json_string_length(v), out, n);
}

EVP_PKEY *oidc_jwk_rsa(bic_arena *a, const json_t *jwk, const char **why)
{
    unsigned char *nb, *eb;
    size_t nn, en;
    *why = NULL;
    if (!json_is_object(jwk) || !str_is(jwk, "kty", "RSA")) {
        *why = "not an RSA key";
        return NULL;
    }
    if (b64url_member(a, jwk, "n", &nb, &nn) < 0 || b64url_member(a, jwk, "e", &eb, &en) < 0 ||
        nn == 0 || en == 0) {
        *why = "n or e is missing or not base64url";
        return NULL;
    }
    while (nn && nb[0] == 0) { /* leading zero bytes carry no bits */
        nb++;
        nn--;
    }
    while (en && eb[0] == 0) {
        eb++;
        en--;
    }
    if (en == 0 || en > 8 || !(eb[en - 1] & 1) || (en == 1 && eb[0] < 3)) {
        *why = "the public exponent e is not an odd number from 3 to 2^64";
        return NULL;
    }
    if (nn * 8 < OIDC_MIN_RSA_BITS - 7 || nn * 8 > OIDC_MAX_RSA_BITS) {
        *why = "the modulus is shorter than 2048 or longer than 16384 bits";
        return NULL;
    }
    EVP_PKEY *key = NULL;
    BIGNUM *n = BN_bin2bn(nb, (int)nn, NULL), *e = BN_bin2bn(eb, (int)en, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (n && e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1 &&
        (params = OSSL_PARAM_BLD_to_param(bld)) &&
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) && EVP_PKEY_fromdata_init(ctx) == 1)
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    if (!key) {
        *why = "OpenSSL does not accept the key";
        return NULL;
    }
    if (EVP_PKEY_get_bits(key) < OIDC_MIN_RSA_BITS) {
        EVP_PKEY_free(key);
        *why = "the modulus is shorter than 2048 or longer than 16384 bits";
        return NULL;
    }
    return key;
}

bool oidc_jwk_for_rs256(const json_t *jwk)
{
    if (!json_is_object(jwk) || !str_is(jwk, "kty", "RSA")) return false;
    const json_t *use = json_object_get(jwk, "use"), *alg = json_object_get(jwk, "alg");
    if (use && !str_is(jwk, "use", "sig")) return false;
    if (alg && !str_is(jwk, "alg", "RS256")) return false;
    const json_t *ops = json_object_get(jwk, "key_ops");
    if (ops) {
        size_t i;
        const json_t *op;
        bool verify = false;
        if (!json_is_array(ops)) return false;
        json_array_foreach(ops, i, op) if (json_is_string(op) &&
                                           !strcmp(json_string_value(op), "verify")) verify = true;
        if (!verify) return false;
    }
    return true;
}

size_t oidc_jwks_rs256_count(bic_arena *a, const json_t *jwks)
{
    const json_t *keys = json_object_get(jwks, "keys");
    size_t i, count = 0;
    const json_t *k;
    if (!json_is_array(keys)) return 0;
    json_array_foreach(keys, i, k)
    {
        if (!oidc_jwk_for_rs256(k)) continue;
        const char *why;
        EVP_PKEY *key = oidc_jwk_rsa(a, k, &why);
        if (key) count++;
        EVP_PKEY_free(key);
    }
    return count;
}

/* ---- the ID token ---- */

static json_t *part_json(bic_arena *a, const char *s, size_t n)
{
    unsigned char *raw;
    size_t len;
    if (n == 0 || oidc_b64url_decode(a, s, n, &raw, &len) < 0) return NULL;
    json_t *j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The RS256 key of jwks named kid; without a kid, the only RS256 key. NULL when none fits. */
static EVP_PKEY *find_key(bic_arena *a, const json_t *jwks, const char *kid)
{
    const json_t *keys = json_object_get(jwks, "keys"), *k, *only = NULL;
    size_t i, usable = 0;
    if (!json_is_array(keys)) return NULL;
    json_array_foreach(keys, i, k)
    {
        if (!oidc_jwk_for_rs256(k)) continue;
        usable++;
        if (kid) {
            if (str_is(k, "kid", kid)) {
                only = k;
                break;
            }
        } else {
            only = k;
        }
    }
    if (!only || (!kid && usable != 1)) return NULL;
    const char *why;
    return oidc_jwk_rsa(a, only, &why);
}

static bool verify_rs256(EVP_PKEY *key, const char *signed_part, size_t n, const unsigned char *sig,
                         size_t siglen)
{
    if ((int)siglen != EVP_PKEY_get_size(key)) return false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = md && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
              EVP_DigestVerify(md, sig, siglen, (const unsigned char *)signed_part, n) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* A NumericDate claim (RFC 7519 2): an integer or a real number of seconds. */
static bool numeric_date(const json_t *claims, const char *name, double *out)
{
    const json_t *v = json_object_get(claims, name);
    if (!json_is_number(v)) return false;
    *out = json_number_value(v);
    return true;
}

static oidc_token_status check_claims(const json_t *c, const oidc_expect *x)
{
    if (!str_is(c, "iss", x->issuer)) return OIDC_TOKEN_BAD_ISSUER;
    const json_t *aud = json_object_get(c, "aud"), *item;
    size_t i, naud = 0;
    bool ours = false;
    if (json_is_string(aud)) {
        naud = 1;
        ours = !strcmp(json_string_value(aud), x->client_id);
    } else if (json_is_array(aud)) {
        json_array_foreach(aud, i, item)
        {
            if (!json_is_string(item)) return OIDC_TOKEN_BAD_AUDIENCE;
            naud++;
            if (!strcmp(json_string_value(item), x->client_id)) ours = true;
        }
    }
    if (!ours) return OIDC_TOKEN_BAD_AUDIENCE;
    const json_t *azp = json_object_get(c, "azp");
    if (azp ? !str_is(c, "azp", x->client_id) : naud > 1) return OIDC_TOKEN_BAD_AZP;
    double exp, iat, nbf;
    double now = (double)x->now;
    if (!numeric_date(c, "exp", &exp) || exp + (double)x->skew <= now) return OIDC_TOKEN_EXPIRED;
    if (!numeric_date(c, "iat", &iat)) return OIDC_TOKEN_TOO_OLD;
    if (iat > now + (double)x->skew) return OIDC_TOKEN_NOT_YET;
    if (iat < now - (double)x->max_age - (double)x->skew) return OIDC_TOKEN_TOO_OLD;
    if (numeric_date(c, "nbf", &nbf) && nbf > now + (double)x->skew) return OIDC_TOKEN_NOT_YET;
    const json_t *nonce = json_object_get(c, "nonce");
    size_t want = strlen(x->nonce);
    if (!json_is_string(nonce) || json_string_length(nonce) != want || want == 0 ||
        CRYPTO_memcmp(json_string_value(nonce), x->nonce, want) != 0)
        return OIDC_TOKEN_BAD_NONCE;
    const json_t *sub = json_object_get(c, "sub");
    if (!json_is_string(sub) || json_string_length(sub) == 0 || json_string_length(sub) > 255 ||
        strlen(json_string_value(sub)) != json_string_length(sub))
        return OIDC_TOKEN_NO_SUBJECT;
    return OIDC_TOKEN_OK;
}

oidc_token_status oidc_id_token_verify(bic_arena *a, const char *token, const json_t *jwks,
                                       const oidc_expect *x, const char **kid, json_t **claims)
{
    *kid = NULL;
    *claims = NULL;
    size_t len = token ? strlen(token) : 0;
    if (len == 0 || len > OIDC_TOKEN_MAX) return OIDC_TOKEN_MALFORMED;
    const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot1 || !dot2 || strchr(dot2 + 1, '.')) return OIDC_TOKEN_MALFORMED;
    json_t *head = part_json(a, token, (size_t)(dot1 - token));
    if (!head) return OIDC_TOKEN_MALFORMED;
    oidc_token_status st = OIDC_TOKEN_OK;
    const json_t *kv = json_object_get(head, "kid");
    if (json_is_string(kv)) *kid = arena_strdup(a, json_string_value(kv));
    EVP_PKEY *key = NULL;
    json_t *body = NULL;
    unsigned char *sig;
    size_t siglen;
    if (json_object_get(head, "crit") || (kv && !json_is_string(kv))) {
        st = OIDC_TOKEN_MALFORMED; /* no extension is understood here */
        goto out;
    }
    if (!str_is(head, "alg", "RS256")) {
        st = OIDC_TOKEN_BAD_ALG;
        goto out;
    }
    if (oidc_b64url_decode(a, dot2 + 1, strlen(dot2 + 1), &sig, &siglen) < 0 || siglen == 0) {
        st = OIDC_TOKEN_MALFORMED;
        goto out;
    }
    key = find_key(a, jwks, *kid);
    if (!key) {
        st = OIDC_TOKEN_UNKNOWN_KEY;
        goto out;
    }
    if (!verify_rs256(key, token, (size_t)(dot2 - token), sig, siglen)) {
        st = OIDC_TOKEN_BAD_SIGNATURE;
        goto out;
    }
    body = part_json(a, dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!body) {
        st = OIDC_TOKEN_MALFORMED;
        goto out;
    }
    st = check_claims(body, x);
out:
    EVP_PKEY_free(key);
    json_decref(head);
    if (st == OIDC_TOKEN_OK)
        *claims = body;
    else
        json_decref(body);
    return st;
}

const char *oidc_token_status_name(oidc_token_status s)
{
    static const char *const names[OIDC_TOKEN__MAX] = {
        "ok",         "malformed",    "bad_alg",    "unknown_key", "bad_signature",
        "bad_issuer", "bad_audience", "bad_azp",    "expired",     "not_yet_valid",
        "too_old",    "bad_nonce",    "no_subject",
    };
    return (unsigned)s < OIDC_TOKEN__MAX ? names[s] : "?";
}

/* ---- discovery ---- */

static bool array_has(const json_t *arr, const char *want)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i,
                       v) if (json_is_string(v) && !strcmp(json_string_value(v), want)) return true;
    return false;
}

const char *oidc_discovery_problem(bic_arena *a, const json_t *doc, const char *issuer)
{
    const json_t *iss = json_object_get(doc, "issuer");
    if (!json_is_string(iss))
        return "the discovery document does not name its issuer, so it is not an OpenID Connect "
               "discovery document";
    if (strcmp(json_string_value(iss), issuer))
        return arena_printf(a,
                            "the provider calls itself '%s' but BIC is configured with the issuer "
                            "'%s'; they must match exactly, including a trailing slash",
                            json_string_value(iss), issuer);
    static const char *const endpoints[] = {"authorization_endpoint", "token_endpoint", "jwks_uri"};
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
        const json_t *v = json_object_get(doc, endpoints[i]);
        if (!json_is_string(v))
            return arena_printf(a, "the discovery document has no %s", endpoints[i]);
        if (strncmp(json_string_value(v), "https://", 8))
            return arena_printf(a, "the %s '%s' is not an https:// address", endpoints[i],
                                json_string_value(v));
    }
    const json_t *rt = json_object_get(doc, "response_types_supported");
    if (json_is_array(rt) && !array_has(rt, "code"))
        return "the provider does not offer the authorization code flow (response type 'code')";
    const json_t *cc = json_object_get(doc, "code_challenge_methods_supported");
    if (json_is_array(cc) && !array_has(cc, "S256"))
        return "the provider does not offer PKCE with S256, which BIC requires";
    const json_t *algs = json_object_get(doc, "id_token_signing_alg_values_supported");
    if (json_is_array(algs) && !array_has(algs, "RS256"))
        return "the provider does not sign ID tokens with RS256, the only algorithm BIC accepts";
    return NULL;
}
